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
}

#[derive(Clone, Default)]
pub struct SignatureMatcher {
    ac: Option<AhoCorasick>,
    /// Per automaton pattern id: (rule, offset, depth).
    meta: Vec<(RuleIdx, u32, u32)>,
}

impl fmt::Debug for SignatureMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignatureMatcher {{ patterns: {} (sealed) }}", self.meta.len())
    }
}

impl SignatureMatcher {
    pub fn new(patterns: Vec<Pattern>) -> SignatureMatcher {
        if patterns.is_empty() {
            return SignatureMatcher::default();
        }
        let ac = AhoCorasick::new(patterns.iter().map(|p| p.bytes.as_slice())).ok();
        let meta = patterns.iter().map(|p| (p.rule, p.offset, p.depth)).collect();
        SignatureMatcher { ac, meta }
    }

    /// How many payload bytes the patterns can look at: the largest
    /// `offset + depth`; None if a pattern may match anywhere (depth 0).
    /// Some(0) without patterns.
    pub fn window(&self) -> Option<u32> {
        self.meta.iter().try_fold(0u32, |w, (_, offset, depth)| match depth {
            0 => None,
            d => Some(w.max(offset.saturating_add(*d))),
        })
    }

    /// Sets `hit[i]` for each of `n_rules` rules with a pattern in
    /// `payload` within its offset/depth window. `hit` is caller-owned
    /// scratch, so the per-packet path does not allocate.
    pub fn rules_hit(&self, payload: &[u8], n_rules: usize, hit: &mut Vec<bool>) {
        hit.clear();
        hit.resize(n_rules, false);
        let Some(ac) = &self.ac else { return };
        for m in ac.find_overlapping_iter(payload) {
            let (rule, offset, depth) = self.meta[m.pattern().as_usize()];
            let start_ok = m.start() as u64 >= u64::from(offset);
            let end_ok = depth == 0 || m.end() as u64 <= u64::from(offset) + u64::from(depth);
            if start_ok && end_ok {
                if let Some(h) = hit.get_mut(usize::from(rule)) {
                    *h = true;
                }
            }
        }
    }
}
