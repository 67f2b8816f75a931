//! Sealed payload signatures ("command information"): one Aho-Corasick
//! automaton over every rule's patterns, run over the payload where it lies
//! in the frame.
//!
//! Invariant kept: the only output is "rule i matched" (a bool per rule).
//! Pattern bytes are private to this module and the type's `Debug` does
//! not show them; match offsets never leave `rules_hit`.

use std::fmt;

use aho_corasick::AhoCorasick;

use super::RuleIdx;

/// One pattern of one rule.
#[derive(Clone)]
pub struct Pattern {
    pub rule: RuleIdx,
    pub bytes: Vec<u8>,
    /// Match must start at or after this payload offset.
    pub offset: u32,
    /// Match must end within `offset + depth` (0 = anywhere).
    pub depth: u32,
    /// ASCII letters match either case.
    pub nocase: bool,
    /// The rule needs all of its patterns (Suricata's `content` list)
    /// rather than any one (the TOML rules' `payload` list).
    pub all: bool,
}

/// Patterns one rule may have when it needs all of them (a bit each).
pub const MAX_PATTERNS_PER_RULE: usize = 64;

/// One automaton and, per its pattern ids, (rule, slot, offset, depth).
#[derive(Clone)]
struct Automaton {
    ac: AhoCorasick,
    meta: Vec<(RuleIdx, u8, u32, u32)>,
}

#[derive(Clone, Default)]
pub struct SignatureMatcher {
    /// Case-sensitive patterns, then `nocase` ones.
    automata: Vec<Automaton>,
    /// Per rule: the slots that must all be found (0: any one will do).
    need: Vec<u64>,
    /// (offset, depth) of every pattern, for the window.
    windows: Vec<(u32, u32)>,
}

impl fmt::Debug for SignatureMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignatureMatcher {{ patterns: {} (sealed) }}", self.windows.len())
    }
}

impl SignatureMatcher {
    /// Builds the automata. A rule needing all of its patterns must
    /// have at most `MAX_PATTERNS_PER_RULE` (the compiler checks).
    pub fn new(patterns: Vec<Pattern>) -> SignatureMatcher {
        let mut m = SignatureMatcher::default();
        let mut slots: Vec<u8> = Vec::new();
        for p in &patterns {
            let r = usize::from(p.rule);
            if slots.len() <= r {
                slots.resize(r + 1, 0);
                m.need.resize(r + 1, 0);
            }
            let slot = slots[r];
            slots[r] = slot.saturating_add(1);
            if p.all {
                m.need[r] |= 1u64 << (u32::from(slot) % 64);
            }
            m.windows.push((p.offset, p.depth));
        }
        for nocase in [false, true] {
            let mut bytes = Vec::new();
            let mut meta = Vec::new();
            let mut seen: Vec<u8> = vec![0; slots.len()];
            for p in &patterns {
                let r = usize::from(p.rule);
                let slot = seen[r];
                seen[r] = slot.saturating_add(1);
                if p.nocase == nocase {
                    bytes.push(p.bytes.as_slice());
                    meta.push((p.rule, slot % 64, p.offset, p.depth));
                }
            }
            if bytes.is_empty() {
                continue;
            }
            let ac = aho_corasick::AhoCorasickBuilder::new()
                .ascii_case_insensitive(nocase)
                .build(bytes)
                .ok();
            if let Some(ac) = ac {
                m.automata.push(Automaton { ac, meta });
            }
        }
        m
    }

    /// How many payload bytes the patterns can look at: the largest
    /// `offset + depth`; None if a pattern may match anywhere (depth 0).
    /// Some(0) without patterns.
    pub fn window(&self) -> Option<u32> {
        self.windows.iter().try_fold(0u32, |w, (offset, depth)| match depth {
            0 => None,
            d => Some(w.max(offset.saturating_add(*d))),
        })
    }

    /// Sets `hit[i]` for each of `n_rules` rules whose patterns were found
    /// in `payload` within their offset/depth windows (all of them or any
    /// one, as the rule needs). `masks` and `hit` are caller-owned
    /// scratch, so the per-packet path does not allocate.
    pub fn rules_hit(&self, payload: &[u8], n_rules: usize, masks: &mut Vec<u64>, hit: &mut Vec<bool>) {
        masks.clear();
        masks.resize(n_rules, 0);
        for a in &self.automata {
            for m in a.ac.find_overlapping_iter(payload) {
                let (rule, slot, offset, depth) = a.meta[m.pattern().as_usize()];
                let start_ok = m.start() as u64 >= u64::from(offset);
                let end_ok = depth == 0 || m.end() as u64 <= u64::from(offset) + u64::from(depth);
                if start_ok && end_ok {
                    if let Some(mask) = masks.get_mut(usize::from(rule)) {
                        *mask |= 1u64 << slot;
                    }
                }
            }
        }
        hit.clear();
        hit.extend(masks.iter().enumerate().map(|(r, mask)| {
            let need = self.need.get(r).copied().unwrap_or(0);
            *mask != 0 && mask & need == need
        }));
    }
}
