//! Selection rules over mechanical information: the compiled rule and the
//! per-packet matcher (`config::rules` compiles `config/rules/*.toml`).
//! Every condition of a rule must hold for a packet to match it.
//!
//! Invariant kept: a match yields rule ids only. Payload signatures are
//! matched in place and sealed: neither the bytes nor the offset of a
//! match leaves `signatures`.

pub mod behaviour;
pub mod signatures;

use std::collections::HashSet;
use std::sync::Arc;

use crate::classify::{Class, PrefixSet};
use crate::parse::{Headers, L4};
use crate::select::tls::Fingerprints;
use signatures::SignatureMatcher;

/// A compiled rule. Absent conditions always hold.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: Arc<str>,
    pub description: String,
    pub classes: [bool; crate::classify::NUM_CLASSES],
    pub remote: Option<PrefixSet>,
    pub local: Option<PrefixSet>,
    pub source: Option<PrefixSet>,
    pub destination: Option<PrefixSet>,
    pub protocols: Option<Vec<u8>>,
    pub src_ports: Option<Vec<(u16, u16)>>,
    pub dst_ports: Option<Vec<(u16, u16)>>,
    pub tcp_flags: Option<(u8, u8)>,
    pub icmp_type: Option<u8>,
    pub icmp_code: Option<u8>,
    pub ttl: Option<(u8, u8)>,
    pub size: Option<(u16, u16)>,
    pub ja4: Option<HashSet<String>>,
    pub ja3: Option<HashSet<String>>,
    pub has_signatures: bool,
    pub scan: Option<behaviour::ScanCondition>,
}

/// Per-worker state the matcher reuses from packet to packet.
#[derive(Clone, Default)]
pub struct MatchState {
    /// Behavioural-condition trackers, by rule index.
    scan: Vec<behaviour::ScanTracker>,
    /// Scratch for the signature automaton's per-rule result.
    sig_hits: Vec<bool>,
}

/// Index of a rule in its `RuleSet`.
pub type RuleIdx = u16;

/// A validated, compiled ruleset.
#[derive(Debug, Clone)]
pub struct RuleSet {
    pub version: Arc<str>,
    /// SHA-256 over every loaded file's name and text, in load order (the
    /// audit trail records it with each load); empty without rules.
    pub sha256: String,
    pub rules: Vec<Rule>,
    signatures: SignatureMatcher,
}

fn in_ranges(v: u16, r: &[(u16, u16)]) -> bool {
    r.iter().any(|(lo, hi)| *lo <= v && v <= *hi)
}

impl Rule {
    /// The packet-level conditions (everything but payload signatures).
    fn header_match(&self, class: Class, h: &Headers, fp: Option<&Fingerprints>) -> bool {
        if !self.classes[class as usize] {
            return false;
        }
        let (Some(src), Some(dst)) = (h.src, h.dst) else {
            return false;
        };
        // The remote end is the foreign one; transit has two foreign ends.
        let (remotes, locals): (&[_], &[_]) = match class {
            Class::Inbound => (&[src][..], &[dst][..]),
            Class::Outbound => (&[dst][..], &[src][..]),
            _ => (&[src, dst][..], &[][..]),
        };
        let any_in = |set: &Option<PrefixSet>, addrs: &[std::net::IpAddr]| {
            set.as_ref().is_none_or(|s| addrs.iter().any(|a| s.contains(*a)))
        };
        if !any_in(&self.remote, remotes) || !any_in(&self.local, locals) {
            return false;
        }
        if !any_in(&self.source, &[src]) || !any_in(&self.destination, &[dst]) {
            return false;
        }
        if self.protocols.as_ref().is_some_and(|p| !p.contains(&h.protocol)) {
            return false;
        }
        let (sp, dp) = h.ports();
        if self.src_ports.as_ref().is_some_and(|r| !in_ranges(sp, r))
            || self.dst_ports.as_ref().is_some_and(|r| !in_ranges(dp, r))
        {
            return false;
        }
        if let Some((mask, value)) = self.tcp_flags {
            match h.l4 {
                L4::Tcp { flags, .. } if flags & mask == value => {}
                _ => return false,
            }
        }
        if self.icmp_type.is_some() || self.icmp_code.is_some() {
            match h.l4 {
                L4::Icmp { icmp_type, code }
                    if self.icmp_type.is_none_or(|t| t == icmp_type) && self.icmp_code.is_none_or(|c| c == code) => {}
                _ => return false,
            }
        }
        if self.ttl.is_some_and(|(lo, hi)| h.ttl < lo || h.ttl > hi) {
            return false;
        }
        if self.size.is_some_and(|(lo, hi)| h.ip_len < lo || h.ip_len > hi) {
            return false;
        }
        if self.ja4.is_some() || self.ja3.is_some() {
            let Some(fp) = fp else { return false };
            if self.ja4.as_ref().is_some_and(|s| !s.contains(&fp.ja4))
                || self.ja3.as_ref().is_some_and(|s| !s.contains(&fp.ja3))
            {
                return false;
            }
        }
        true
    }
}

impl RuleSet {
    /// An empty ruleset (selects nothing).
    pub fn empty() -> RuleSet {
        RuleSet {
            version: Arc::from(""),
            sha256: String::new(),
            rules: Vec::new(),
            signatures: SignatureMatcher::default(),
        }
    }

    /// The payload bytes (after the innermost transport header) any rule can
    /// read: the signatures' largest window; None for the whole payload.
    pub fn payload_window(&self) -> Option<u32> {
        self.signatures.window()
    }

    /// The sealed signature automaton (its `Debug` shows a count only).
    pub fn signatures(&self) -> &SignatureMatcher {
        &self.signatures
    }

    /// Per-worker matching state for this ruleset.
    pub fn new_match_state(&self) -> MatchState {
        MatchState {
            scan: vec![behaviour::ScanTracker::default(); self.rules.len()],
            sig_hits: Vec::new(),
        }
    }

    /// Rules matching a packet of `class`; `payload` is scanned in place
    /// for the signature conditions. Appends indices to `out`. `state`
    /// must come from this ruleset's `new_match_state` (with a smaller
    /// one, rules with a behavioural condition never match).
    #[allow(clippy::too_many_arguments)]
    pub fn matching(
        &self,
        class: Class,
        h: &Headers,
        payload: &[u8],
        fp: Option<&Fingerprints>,
        state: &mut MatchState,
        now_ns: u64,
        out: &mut Vec<RuleIdx>,
    ) {
        let mut scanned = false;
        for (i, r) in self.rules.iter().enumerate() {
            if !r.header_match(class, h, fp) {
                continue;
            }
            if r.has_signatures {
                // The automaton runs at most once per packet, and only when
                // a rule with signatures passed its header conditions.
                if !scanned {
                    self.signatures
                        .rules_hit(payload, self.rules.len(), &mut state.sig_hits);
                    scanned = true;
                }
                if !state.sig_hits[i] {
                    continue;
                }
            }
            if let Some(c) = &r.scan {
                let (Some(src), Some(dst), Some(t)) = (h.src, h.dst, state.scan.get_mut(i)) else {
                    continue;
                };
                if !t.observe(c, src, dst, h.ports().1, now_ns) {
                    continue;
                }
            }
            out.push(i as RuleIdx);
        }
    }

    /// A ruleset of compiled `rules` and their signature `patterns`
    /// (`config::rules` compiles them from TOML).
    pub fn new(version: Arc<str>, sha256: String, rules: Vec<Rule>, patterns: Vec<signatures::Pattern>) -> RuleSet {
        RuleSet {
            version,
            sha256,
            rules,
            signatures: SignatureMatcher::new(patterns),
        }
    }
}
