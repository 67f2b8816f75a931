//! Selection rules over mechanical information: the compiled rule and the
//! per-packet matcher (`config::rules` compiles `config/rules/*.toml`).
//! Every condition of a rule must hold for a packet to match it.
//!
//! Invariant kept: a match yields rule ids only. Payload signatures are
//! matched in place and sealed: neither the bytes nor the offset of a
//! match leaves `signatures`.

pub mod behaviour;
pub mod endpoints;
pub mod imports;
pub mod signatures;

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use crate::classify::{Class, PrefixSet};
use crate::flow::Prints;
use crate::parse::{Headers, L4};
use endpoints::{addr_matches, port_matches, AddrExpr, PortExpr};
use signatures::SignatureMatcher;

/// What a rule does when it matches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Action {
    /// Select the packet (and name the rule in its record).
    #[default]
    Alert,
    /// An exception: a packet a `pass` rule matches is selected by no rule.
    Pass,
}

/// Which side of a flow a packet must come from (Suricata's `flow:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the flow's initiator.
    ToServer,
    /// From the responder.
    ToClient,
}

/// A compiled rule. Absent conditions always hold.
#[derive(Debug, Clone, Default)]
pub struct Rule {
    pub id: Arc<str>,
    pub description: String,
    pub classes: [bool; crate::classify::NUM_CLASSES],
    pub action: Action,
    pub remote: Option<PrefixSet>,
    pub local: Option<PrefixSet>,
    pub source: Option<AddrExpr>,
    pub destination: Option<AddrExpr>,
    pub src_ports: Option<PortExpr>,
    pub dst_ports: Option<PortExpr>,
    /// The source/destination conditions hold in either direction (`<>`).
    pub both_directions: bool,
    pub direction: Option<Direction>,
    pub protocols: Option<Vec<u8>>,
    pub tcp_flags: Option<(u8, u8)>,
    pub icmp_type: Option<(u8, u8)>,
    pub icmp_code: Option<(u8, u8)>,
    pub ttl: Option<(u8, u8)>,
    pub size: Option<(u16, u16)>,
    /// Inclusive range of the transport payload's length on the wire.
    pub payload_size: Option<(u16, u16)>,
    pub ja4: Option<HashSet<String>>,
    pub ja3: Option<HashSet<String>>,
    pub ja3s: Option<HashSet<String>>,
    pub hassh: Option<HashSet<String>>,
    pub hassh_server: Option<HashSet<String>>,
    pub has_signatures: bool,
    pub scan: Option<behaviour::ScanCondition>,
    /// Wall-clock nanoseconds [from, until) in which the rule applies (a
    /// STIX indicator's valid_from/valid_until).
    pub valid_ns: Option<(u64, u64)>,
}

/// Per-worker state the matcher reuses from packet to packet.
#[derive(Clone, Default)]
pub struct MatchState {
    /// Behavioural-condition trackers, by rule index.
    scan: Vec<behaviour::ScanTracker>,
    /// Scratch for the signature automaton's per-rule result.
    sig_hits: Vec<bool>,
    /// Scratch: which of each rule's patterns were found.
    sig_masks: Vec<u64>,
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
    /// What the imported formats loaded, refused and skipped.
    pub imports: imports::ImportSummary,
}

fn in_range<T: PartialOrd>(v: T, r: Option<(T, T)>) -> bool {
    r.is_none_or(|(lo, hi)| lo <= v && v <= hi)
}

impl Rule {
    /// The source/destination address and port conditions for one
    /// direction: `src_home`/`dst_home` say which ends are domestic.
    fn endpoints_match(
        &self,
        (src, sp, src_home): (IpAddr, u16, bool),
        (dst, dp, dst_home): (IpAddr, u16, bool),
    ) -> bool {
        self.source.as_ref().is_none_or(|e| addr_matches(e, src, src_home))
            && self.destination.as_ref().is_none_or(|e| addr_matches(e, dst, dst_home))
            && self.src_ports.as_ref().is_none_or(|e| port_matches(e, sp))
            && self.dst_ports.as_ref().is_none_or(|e| port_matches(e, dp))
    }

    /// The packet-level conditions (everything but payload signatures).
    fn header_match(&self, class: Class, h: &Headers, fp: &Prints<'_>, from_initiator: bool) -> bool {
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
        let any_in = |set: &Option<PrefixSet>, addrs: &[IpAddr]| {
            set.as_ref().is_none_or(|s| addrs.iter().any(|a| s.contains(*a)))
        };
        if !any_in(&self.remote, remotes) || !any_in(&self.local, locals) {
            return false;
        }
        let (sp, dp) = h.ports();
        let s = (src, sp, class == Class::Outbound);
        let d = (dst, dp, class == Class::Inbound);
        let either_way = self.endpoints_match(s, d) || (self.both_directions && self.endpoints_match(d, s));
        if !either_way {
            return false;
        }
        match self.direction {
            Some(Direction::ToServer) if !from_initiator => return false,
            Some(Direction::ToClient) if from_initiator => return false,
            _ => {}
        }
        if self.protocols.as_ref().is_some_and(|p| !p.contains(&h.protocol)) {
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
                    if in_range(icmp_type, self.icmp_type) && in_range(code, self.icmp_code) => {}
                _ => return false,
            }
        }
        if !in_range(h.ttl, self.ttl) || !in_range(h.ip_len, self.size) {
            return false;
        }
        if !in_range(h.wire_payload_len, self.payload_size) {
            return false;
        }
        // A fingerprint condition holds once the flow's handshake gave that
        // fingerprint and it is in the rule's set.
        let holds = |set: &Option<HashSet<String>>, v: Option<&str>| {
            set.as_ref().is_none_or(|s| v.is_some_and(|v| s.contains(v)))
        };
        holds(&self.ja4, fp.ja4)
            && holds(&self.ja3, fp.ja3)
            && holds(&self.ja3s, fp.ja3s)
            && holds(&self.hassh, fp.hassh)
            && holds(&self.hassh_server, fp.hassh_server)
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
            imports: Default::default(),
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
            sig_masks: Vec::new(),
        }
    }

    /// Rules matching a packet of `class`; `payload` is scanned in place
    /// for the signature conditions. Appends indices to `out`; when a
    /// `pass` rule matches, appends none. `state` must come from this
    /// ruleset's `new_match_state` (with a smaller one, rules with a
    /// behavioural condition never match).
    #[allow(clippy::too_many_arguments)]
    pub fn matching<'f>(
        &self,
        class: Class,
        h: &Headers,
        payload: &[u8],
        fp: impl Into<Prints<'f>>,
        from_initiator: bool,
        state: &mut MatchState,
        now_ns: u64,
        out: &mut Vec<RuleIdx>,
    ) {
        let fp = fp.into();
        let mut scanned = false;
        let first = out.len();
        let mut passed = false;
        for (i, r) in self.rules.iter().enumerate() {
            if passed && r.action == Action::Alert && r.scan.is_none() {
                continue;
            }
            if r.valid_ns.is_some_and(|(from, until)| now_ns < from || now_ns >= until) {
                continue;
            }
            if !r.header_match(class, h, &fp, from_initiator) {
                continue;
            }
            if r.has_signatures {
                // The automaton runs at most once per packet, and only when
                // a rule with signatures passed its header conditions.
                if !scanned {
                    self.signatures
                        .rules_hit(payload, self.rules.len(), &mut state.sig_masks, &mut state.sig_hits);
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
            match r.action {
                Action::Alert => out.push(i as RuleIdx),
                Action::Pass => passed = true,
            }
        }
        if passed {
            out.truncate(first);
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
            imports: Default::default(),
        }
    }
}
