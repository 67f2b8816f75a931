//! Stage 5: automated selection. A cross-border packet is selected when
//! its remote address is in an indicator set or a rule matches it (header
//! conditions, sealed payload signatures, JA4/JA3 of its flow's first
//! ClientHello, behavioural thresholds).
//!
//! Invariant kept: only the index of the matching set leaves this stage —
//! never the packet.

pub mod handshakes;
pub mod hello;
pub mod quic;
pub mod rules;
pub mod snap;
pub mod ssh;
mod stage;
pub mod tls;

pub use handshakes::Handshakes;
pub use hello::Hello;
pub use snap::{Snap, Snapper};
pub use stage::{judge_addresses, Matcher};

use std::net::IpAddr;

use crate::classify::{Class, PrefixSet};
use crate::parse::Headers;

/// A named set of prefixes whose traffic is selected (an indicator list).
#[derive(Debug, Clone)]
pub struct IndicatorSet {
    pub name: String,
    pub prefixes: PrefixSet,
}

/// Everything selection reads, swapped as one unit on reload: a batch sees
/// either the old state or the new one, never a mix.
#[derive(Debug, Clone)]
pub struct SelectionState {
    pub domestic: PrefixSet,
    pub selector: Selector,
    pub rules: std::sync::Arc<rules::RuleSet>,
    /// The encapsulations parsing opens: the same as the XDP walk's.
    pub decap: crate::classify::walk::DecapConfig,
    /// 0 at start, +1 per reload. Each worker publishes the generation it
    /// runs, so a reload is acknowledged only once all of them run it.
    pub generation: u64,
}

impl SelectionState {
    /// Generation 0 of a state (the control plane numbers reloads).
    pub fn new(
        domestic: PrefixSet,
        indicators: Vec<IndicatorSet>,
        rules: std::sync::Arc<rules::RuleSet>,
        decap: crate::classify::walk::DecapConfig,
    ) -> SelectionState {
        SelectionState {
            domestic,
            selector: Selector::new(indicators),
            rules,
            decap,
            generation: 0,
        }
    }
}

/// The selection state shared by the workers and the control plane.
pub type SharedSelection = std::sync::Arc<arc_swap::ArcSwap<SelectionState>>;

pub fn shared(state: SelectionState) -> SharedSelection {
    std::sync::Arc::new(arc_swap::ArcSwap::from_pointee(state))
}

/// Index into `Selector::names()`.
pub type SetId = u16;

#[derive(Debug, Clone, Default)]
pub struct Selector {
    sets: Vec<IndicatorSet>,
    names: Vec<std::sync::Arc<str>>,
}

impl Selector {
    pub fn new(sets: Vec<IndicatorSet>) -> Self {
        let names = sets.iter().map(|s| std::sync::Arc::from(s.name.as_str())).collect();
        Selector { sets, names }
    }

    pub fn name(&self, id: SetId) -> &str {
        self.names.get(usize::from(id)).map_or("", |s| s)
    }

    /// The shared name of set `id` (what flows keep).
    pub fn shared_name(&self, id: SetId) -> Option<&std::sync::Arc<str>> {
        self.names.get(usize::from(id))
    }

    /// The remote side(s) of a packet of `class`: the foreign end. A
    /// transit packet has two foreign ends.
    fn remotes(class: Class, src: IpAddr, dst: IpAddr) -> [Option<IpAddr>; 2] {
        match class {
            Class::Inbound => [Some(src), None],
            Class::Outbound => [Some(dst), None],
            Class::Transit => [Some(src), Some(dst)],
            _ => [None, None],
        }
    }

    /// First indicator set that holds a remote address of the packet.
    pub fn select(&self, class: Class, h: &Headers) -> Option<SetId> {
        let (src, dst) = (h.src?, h.dst?);
        let remotes = Self::remotes(class, src, dst);
        self.sets
            .iter()
            .position(|s| remotes.iter().flatten().any(|a| s.prefixes.contains(*a)))
            .map(|i| i as SetId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::craft::FrameSpec;
    use crate::parse::parse_ethernet;

    fn selector() -> Selector {
        Selector::new(vec![IndicatorSet {
            name: "c2".into(),
            prefixes: ["203.0.113.0/24".parse().unwrap()].into_iter().collect(),
        }])
    }

    #[test]
    fn remote_end_decides() {
        let s = selector();
        let h = parse_ethernet(&FrameSpec::new("203.0.113.9", "192.0.2.1").build()).unwrap();
        assert_eq!(s.select(Class::Inbound, &h), Some(0));
        // Same packet classed outbound: the remote end is the destination,
        // which is not an indicator.
        assert_eq!(s.select(Class::Outbound, &h), None);
        assert_eq!(s.select(Class::Transit, &h), Some(0));
        assert_eq!(s.select(Class::Domestic, &h), None, "domestic is never selected");
        assert_eq!(s.name(0), "c2");
    }
}
