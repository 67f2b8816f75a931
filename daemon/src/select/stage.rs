//! The selection stage for one packet, in two calls the pipeline makes in
//! order: `judge_addresses` for a flow's first packet (its class and the
//! indicator set of its remote end, which the flow then keeps), and
//! `Matcher::judge` for every packet of a tracked flow (the flow's first
//! ClientHello, the rules, what selected the packet, the rule counts).
//!
//! Invariant kept: what leaves is names (an indicator set, rule ids, the
//! ruleset version) — never the packet; payload is read in place.

use std::sync::Arc;

use super::handshakes::Handshakes;
use super::rules::{MatchState, RuleIdx, RuleSet};
use super::SelectionState;
use crate::budget::Budget;
use crate::classify::class_of;
use crate::flow::{Judged, Selected};
use crate::parse::Headers;

/// A packet's class, and the indicator set its remote end is in (`None`
/// also for a class no measure captures).
pub fn judge_addresses(st: &SelectionState, h: &Headers) -> Judged {
    let (Some(src), Some(dst)) = (h.src, h.dst) else {
        return Judged {
            class: crate::classify::Class::NonIp,
            set: None,
        };
    };
    let class = class_of(st.domestic.contains(src), st.domestic.contains(dst));
    Judged {
        class,
        set: st.selector.select(class, h),
    }
}

/// A worker's selection stage: the scratch and state it reuses from
/// packet to packet, and the budget its reassembly buffers come from.
pub struct Matcher {
    /// The rules one packet matched (no per-packet allocation).
    rule_hits: Vec<RuleIdx>,
    rule_names: Vec<Arc<str>>,
    /// Behavioural trackers and signature scratch of the current ruleset.
    scan: MatchState,
    /// Plaintext of a QUIC Initial while its frames are read; zeroed
    /// after every packet.
    quic_scratch: Vec<u8>,
    budget: Budget,
}

impl Matcher {
    pub fn new(rules: &RuleSet, budget: Budget) -> Matcher {
        Matcher {
            rule_hits: Vec::new(),
            rule_names: Vec::new(),
            scan: rules.new_match_state(),
            quic_scratch: Vec::new(),
            budget,
        }
    }

    /// A new ruleset starts its behavioural counts afresh.
    pub fn reset(&mut self, rules: &RuleSet) {
        self.scan = rules.new_match_state();
    }

    /// The budget of this worker's reassembly buffers.
    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// Decides whether a packet of a tracked flow is selected, and by
    /// what. `j` is the flow's judgement; `hs` its handshakes, fed with
    /// the payload of every packet. Packets matched per rule are added to
    /// `rule_matches`.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub fn judge<'s>(
        &'s mut self,
        st: &'s SelectionState,
        j: Judged,
        h: &Headers,
        payload: &[u8],
        hs: &mut Handshakes,
        from_initiator: bool,
        now_ns: u64,
        rule_matches: &mut Vec<(Arc<str>, u64)>,
    ) -> Option<Selected<'s>> {
        let cut = usize::from(h.wire_payload_len) > payload.len();
        hs.feed(
            &h.l4,
            payload,
            cut,
            from_initiator,
            &mut self.quic_scratch,
            &self.budget,
        );
        self.rule_hits.clear();
        if !st.rules.rules.is_empty() {
            // Payload signatures are scanned here, in the frame, before the
            // pipeline erases it.
            st.rules.matching(
                j.class,
                h,
                payload,
                hs.prints(),
                from_initiator,
                &mut self.scan,
                now_ns,
                &mut self.rule_hits,
            );
        }
        if j.set.is_none() && self.rule_hits.is_empty() {
            return None;
        }
        self.rule_names.clear();
        self.rule_names.extend(
            self.rule_hits
                .iter()
                .map(|i| st.rules.rules[usize::from(*i)].id.clone()),
        );
        for id in &self.rule_names {
            match rule_matches.iter_mut().find(|(r, _)| Arc::ptr_eq(r, id)) {
                Some((_, n)) => *n += 1,
                None => rule_matches.push((id.clone(), 1)),
            }
        }
        Some(Selected {
            set: j.set.and_then(|i| st.selector.shared_name(i)),
            rules: &self.rule_names,
            ruleset_version: &st.rules.version,
        })
    }
}
