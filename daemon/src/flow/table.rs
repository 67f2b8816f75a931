//! The per-worker flow table: bounded, with timeouts and counted eviction.
//!
//! A packet's flow is looked up first (`lookup`); a flow's first packet,
//! or its first under a new selection state, comes back `Unjudged` and the
//! caller has the selection stage judge it (class, indicator set) before
//! the flow is created or updated (`Pending::judged`). What selection keeps
//! per flow (its ClientHello reassembly) is opaque here: any `PerFlow`.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use ahash::RandomState;
use std::net::IpAddr;
use std::time::Duration;

use super::key::FlowKey;
use super::record::{EndReason, MechanicalRecord};
use crate::classify::Class;
use crate::parse::Headers;
use std::sync::Arc;

/// A flow's handshake fingerprints, each once it is known: the first
/// ClientHello's JA4 and JA3, the ServerHello's JA3S, and the SSH
/// KEXINITs' HASSH (client) and hasshServer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prints<'a> {
    pub ja4: Option<&'a str>,
    pub ja3: Option<&'a str>,
    pub ja3s: Option<&'a str>,
    pub hassh: Option<&'a str>,
    pub hassh_server: Option<&'a str>,
}

/// What the selection stage keeps per flow, opaque to this stage.
pub trait PerFlow: Default {
    /// The flow's fingerprints so far, for its record.
    fn fingerprints(&self) -> Prints<'_>;
    /// Gives up work in progress (a reassembly that did not complete in
    /// time); true if there was some.
    fn abandon(&mut self) -> bool;
}

/// No per-flow selection state (tests, tools).
impl PerFlow for () {
    fn fingerprints(&self) -> Prints<'_> {
        Prints::default()
    }
    fn abandon(&mut self) -> bool {
        false
    }
}

/// How long per-flow selection work (a ClientHello split over packets) may
/// take before `expire` gives it up. A real client sends the rest within a
/// round trip.
pub const PER_FLOW_TIMEOUT: Duration = Duration::from_secs(2);

/// What selected a packet: the names are shared with the selection state
/// that was current when the packet was processed, so a reload never
/// relabels a flow.
#[derive(Debug, Clone, Copy)]
pub struct Selected<'a> {
    pub set: Option<&'a Arc<str>>,
    pub rules: &'a [Arc<str>],
    pub ruleset_version: &'a Arc<str>,
}

/// What the selection state says about a packet: its class and the
/// indicator set its remote end is in. Both follow from the flow's two
/// addresses, so a flow keeps them (for one selection-state generation)
/// and its later packets skip the prefix lookups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judged {
    pub class: Class,
    /// The index the selection stage gave the indicator set.
    pub set: Option<u16>,
}

struct FlowState<S> {
    first_seen_ns: u64,
    last_seen_ns: u64,
    /// True when the initiator is the key's `lo` end.
    initiator_is_lo: bool,
    packets: [u64; 2],
    bytes: [u64; 2],
    tcp_flags: [u8; 2],
    min_ttl: u8,
    max_ttl: u8,
    class: Class,
    vlan_depth: u8,
    /// The encapsulations of the flow's first packet, and its tunnel id.
    encap: crate::classify::walk::EncapChain,
    tunnel_id: Option<u32>,
    /// Packets of the flow that were IP fragments.
    fragments: u64,
    /// Set once a packet of the flow was selected: it ends as a record.
    /// Boxed: most flows are never selected, and every byte of the state
    /// is paid for each of `max_flows`.
    selection: Option<Box<Selection>>,
    /// The selection stage's own per-flow state.
    extra: S,
    /// The selection-state generation `lo_to_hi` and `set_id` are from.
    judged_gen: u64,
    /// The class of a packet sent from the key's `lo` end to its `hi` end
    /// (the other direction has the reversed class).
    lo_to_hi: Class,
    /// The indicator set of the flow's remote end(s): the same for both
    /// directions, as the remote (foreign) end is.
    set_id: Option<u16>,
}

/// Most selected flows one expiry sweep ends (turns into records).
pub const RECORDS_PER_SWEEP: usize = 16_384;

/// Bytes one flow takes in a table whose per-flow selection state is `S`
/// (key, state, control byte), for the memory bound.
pub const fn entry_bytes<S>() -> u64 {
    (std::mem::size_of::<FlowKey>() + std::mem::size_of::<FlowState<S>>() + 1) as u64
}

/// Heap a flow may hold besides its entry, at most: a boxed fingerprint
/// (48 B, JA4 36 B, JA3 32 B: three allocations of 64, 48 and 48 bytes)
/// and a boxed selection (56 B) with up to four matched rules (a 64-byte
/// vector), at glibc's 16-byte chunk granularity plus 8 bytes of header.
pub const HEAP_BYTES: u64 = 64 + 48 + 48 + 64 + 80;

/// What selected a flow.
struct Selection {
    set: Option<Arc<str>>,
    /// Every rule that matched a packet of the flow, sorted.
    rules: Vec<Arc<str>>,
    /// The ruleset version active when the flow was first selected.
    ruleset_version: Arc<str>,
}

/// A packet's class as the class of the flow's `lo` → `hi` direction, and
/// back: the same for a packet from `lo`, reversed for one from `hi`.
fn orient(class: Class, src_is_lo: bool) -> Class {
    if src_is_lo {
        class
    } else {
        class.reversed()
    }
}

impl<S: PerFlow> FlowState<S> {
    fn new(h: &Headers, src_is_lo: bool, now_ns: u64, j: Judged, gen: u64) -> FlowState<S> {
        FlowState {
            first_seen_ns: now_ns,
            last_seen_ns: now_ns,
            initiator_is_lo: src_is_lo,
            packets: [0; 2],
            bytes: [0; 2],
            tcp_flags: [0; 2],
            min_ttl: u8::MAX,
            max_ttl: 0,
            class: j.class,
            vlan_depth: h.vlan_depth,
            encap: h.encap,
            tunnel_id: h.tunnel.map(|(_, id)| id),
            fragments: 0,
            selection: None,
            extra: S::default(),
            judged_gen: gen,
            lo_to_hi: orient(j.class, src_is_lo),
            set_id: j.set,
        }
    }
}

/// A packet's flow, after the packet was counted.
pub struct FlowRef<'a, S> {
    st: &'a mut FlowState<S>,
    /// The packet was sent by the flow's initiator.
    pub from_initiator: bool,
}

impl<S> FlowRef<'_, S> {
    /// The selection stage's state for this flow.
    pub fn extra(&mut self) -> &mut S {
        &mut self.st.extra
    }

    /// Counts later fragments of this packet's datagram that came before
    /// it (the first fragment) and were held: they went the same way.
    pub fn count_held(&mut self, packets: u64, bytes: u64) {
        let dir = usize::from(!self.from_initiator);
        self.st.packets[dir] += packets;
        self.st.bytes[dir] += bytes;
        self.st.fragments += packets;
    }

    /// Marks the flow selected, with what selected this packet.
    pub fn select(&mut self, sel: Selected<'_>) {
        let s = self.st.selection.get_or_insert_with(|| {
            Box::new(Selection {
                set: None,
                rules: Vec::new(),
                ruleset_version: sel.ruleset_version.clone(),
            })
        });
        if s.set.is_none() {
            s.set = sel.set.cloned();
        }
        for r in sel.rules {
            if let Err(at) = s.rules.binary_search(r) {
                s.rules.insert(at, r.clone());
            }
        }
    }
}

/// What `FlowTable::lookup` found.
pub enum Lookup<'a, S> {
    /// A tracked flow judged under the current selection state; the
    /// packet is counted.
    Known(FlowRef<'a, S>, Judged),
    /// A flow's first packet, or its first under a new selection state:
    /// the selection stage judges it, then `Pending::judged`.
    Unjudged(Pending<'a, S>),
    /// No addresses: not a flow.
    NotAFlow,
}

enum Slot<'a, S> {
    Stale(&'a mut FlowState<S>),
    Vacant(
        std::collections::hash_map::VacantEntry<'a, FlowKey, FlowState<S>>,
        &'a mut usize,
        usize,
    ),
    /// The table is full: a flow is evicted if this one is tracked.
    Full(&'a mut FlowTable<S>, FlowKey),
}

/// A packet whose flow waits for the selection stage's judgement.
pub struct Pending<'a, S> {
    slot: Slot<'a, S>,
    src_is_lo: bool,
    gen: u64,
    now_ns: u64,
}

impl<'a, S: PerFlow> Pending<'a, S> {
    /// Creates or updates the flow under judgement `j` and counts the
    /// packet; `None` (nothing kept, nothing counted) when `j` is not
    /// cross-border. A full table first ends some other flow, whose
    /// record, if selected, goes to `out`.
    pub fn judged(self, h: &Headers, j: Judged, out: &mut Vec<MechanicalRecord>) -> Option<(FlowRef<'a, S>, Judged)> {
        if !j.class.is_cross_border() {
            return None;
        }
        let (src_is_lo, gen, now_ns) = (self.src_is_lo, self.gen, self.now_ns);
        let st = match self.slot {
            Slot::Stale(st) => {
                st.judged_gen = gen;
                st.lo_to_hi = orient(j.class, src_is_lo);
                st.set_id = j.set;
                st
            }
            Slot::Vacant(v, peak, len) => {
                *peak = (*peak).max(len + 1);
                v.insert(FlowState::new(h, src_is_lo, now_ns, j, gen))
            }
            Slot::Full(table, key) => {
                table.evict_one(out);
                table.peak = table.peak.max(table.flows.len() + 1);
                table
                    .flows
                    .entry(key)
                    .or_insert_with(|| FlowState::new(h, src_is_lo, now_ns, j, gen))
            }
        };
        Some(FlowTable::count(st, h, src_is_lo, now_ns))
    }
}

pub struct FlowTable<S = ()> {
    flows: HashMap<FlowKey, FlowState<S>, RandomState>,
    idle_ns: u64,
    active_ns: u64,
    max_flows: usize,
    queue: u32,
    /// Flows ended early because the table was full.
    pub evicted: u64,
    /// The most flows tracked at once.
    pub peak: usize,
}

impl<S: PerFlow> FlowTable<S> {
    pub fn new(queue: u32, idle: Duration, active: Duration, max_flows: usize) -> Self {
        FlowTable {
            flows: HashMap::with_capacity_and_hasher(max_flows.min(65_536), RandomState::new()),
            idle_ns: idle.as_nanos() as u64,
            active_ns: active.as_nanos() as u64,
            max_flows,
            queue,
            evicted: 0,
            peak: 0,
        }
    }

    /// Gives up the table's up-front allocation: it grows as flows come.
    /// For offline input, where growing costs a pause no ring can
    /// overflow in, while a table sized for the most flows spreads a few
    /// flows over memory no cache holds.
    pub fn grow_on_demand(&mut self) {
        self.flows.shrink_to(self.flows.len());
    }

    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Finds a packet's flow. A flow judged under selection-state
    /// generation `gen` is counted and returned; otherwise the caller has
    /// the packet judged and hands the judgement to `Pending::judged`.
    #[inline]
    pub fn lookup(&mut self, h: &Headers, gen: u64, now_ns: u64) -> Lookup<'_, S> {
        let (Some(src), Some(dst)) = (h.src, h.dst) else {
            return Lookup::NotAFlow;
        };
        let (sport, dport) = h.ports();
        let (key, src_is_lo) = FlowKey::new(
            h.vlans,
            super::key::tunnel_key(h.tunnel),
            h.protocol,
            (src, sport),
            (dst, dport),
        );
        let pending = |slot| {
            Lookup::Unjudged(Pending {
                slot,
                src_is_lo,
                gen,
                now_ns,
            })
        };
        // Length first: the extra lookup runs only when the table is full.
        if self.flows.len() >= self.max_flows && !self.flows.contains_key(&key) {
            return pending(Slot::Full(self, key));
        }
        let len = self.flows.len();
        match self.flows.entry(key) {
            Entry::Occupied(o) => {
                let st = o.into_mut();
                if st.judged_gen != gen {
                    return pending(Slot::Stale(st));
                }
                let (f, j) = Self::count(st, h, src_is_lo, now_ns);
                Lookup::Known(f, j)
            }
            Entry::Vacant(v) => pending(Slot::Vacant(v, &mut self.peak, len)),
        }
    }

    /// Counts a packet and marks its flow selected (for callers that
    /// decided selection already, and tests).
    pub fn update(
        &mut self,
        h: &Headers,
        class: Class,
        sel: Selected<'_>,
        now_ns: u64,
        out: &mut Vec<MechanicalRecord>,
    ) {
        let j = Judged { class, set: None };
        let tracked = match self.lookup(h, 0, now_ns) {
            Lookup::Known(f, _) => Some(f),
            Lookup::Unjudged(p) => p.judged(h, j, out).map(|(f, _)| f),
            Lookup::NotAFlow => None,
        };
        if let Some(mut f) = tracked {
            f.select(sel);
        }
    }

    /// Counts a packet into its flow: the flow, and the packet's judgement
    /// as the flow keeps it.
    #[inline]
    fn count<'a>(st: &'a mut FlowState<S>, h: &Headers, src_is_lo: bool, now_ns: u64) -> (FlowRef<'a, S>, Judged) {
        let dir = usize::from(src_is_lo != st.initiator_is_lo);
        st.packets[dir] += 1;
        st.bytes[dir] += u64::from(h.ip_len);
        st.tcp_flags[dir] |= h.tcp_flags();
        st.min_ttl = st.min_ttl.min(h.ttl);
        st.max_ttl = st.max_ttl.max(h.ttl);
        st.last_seen_ns = st.last_seen_ns.max(now_ns);
        st.fragments += u64::from(h.frag.is_some());
        let judged = Judged {
            class: orient(st.lo_to_hi, src_is_lo),
            set: st.set_id,
        };
        let from_initiator = src_is_lo == st.initiator_is_lo;
        (FlowRef { st, from_initiator }, judged)
    }

    fn evict_one(&mut self, out: &mut Vec<MechanicalRecord>) {
        if let Some(k) = self.flows.keys().next().copied() {
            if let Some(st) = self.flows.remove(&k) {
                self.evicted += 1;
                if st.selection.is_some() {
                    out.push(Self::record(self.queue, &k, &st, EndReason::Evicted));
                }
            }
        }
    }

    /// Ends idle flows and flows past the active timeout; at most
    /// `RECORDS_PER_SWEEP` selected ones (the rest end at the next sweep,
    /// so the records of a mass expiry never pile up in memory at once),
    /// and gives up per-flow selection work older than `PER_FLOW_TIMEOUT`:
    /// returns how much it gave up.
    pub fn expire(&mut self, now_ns: u64, out: &mut Vec<MechanicalRecord>) -> u64 {
        let (idle, active, queue) = (self.idle_ns, self.active_ns, self.queue);
        let stale = PER_FLOW_TIMEOUT.as_nanos() as u64;
        let mut timed_out = 0;
        let mut room = RECORDS_PER_SWEEP;
        let ended = self.flows.extract_if(|_, st| {
            // A ClientHello is a flow's first payload: a reassembly older
            // than the timeout has waited since about first_seen.
            if now_ns.saturating_sub(st.first_seen_ns) >= stale && st.extra.abandon() {
                timed_out += 1;
            }
            let over =
                now_ns.saturating_sub(st.last_seen_ns) >= idle || now_ns.saturating_sub(st.first_seen_ns) >= active;
            if over && st.selection.is_some() {
                if room == 0 {
                    return false;
                }
                room -= 1;
            }
            over
        });
        for (k, st) in ended.filter(|(_, st)| st.selection.is_some()) {
            let r = if now_ns.saturating_sub(st.last_seen_ns) >= idle {
                EndReason::Idle
            } else {
                EndReason::Active
            };
            out.push(Self::record(queue, &k, &st, r));
        }
        timed_out
    }

    /// Ends at most `limit` flows (shutdown, in steps the caller sends on
    /// between); true while some are left.
    pub fn drain_some(&mut self, out: &mut Vec<MechanicalRecord>, limit: usize) -> bool {
        let queue = self.queue;
        for (k, st) in self.flows.extract_if(|_, _| true).take(limit) {
            if st.selection.is_some() {
                out.push(Self::record(queue, &k, &st, EndReason::Shutdown));
            }
        }
        !self.flows.is_empty()
    }

    /// Ends every flow.
    pub fn drain(&mut self, out: &mut Vec<MechanicalRecord>) {
        self.drain_some(out, usize::MAX);
    }

    fn record(queue: u32, k: &FlowKey, st: &FlowState<S>, reason: EndReason) -> MechanicalRecord {
        let prints = st.extra.fingerprints();
        let (init, resp): ((IpAddr, u16), (IpAddr, u16)) = if st.initiator_is_lo {
            (k.lo(), k.hi())
        } else {
            (k.hi(), k.lo())
        };
        let sel = st.selection.as_deref();
        MechanicalRecord {
            first_seen_ns: st.first_seen_ns,
            last_seen_ns: st.last_seen_ns,
            class: st.class,
            queue,
            vlans: k.vlans()[..usize::from(st.vlan_depth)].to_vec(),
            encap: st.encap.name(),
            tunnel_id: st.tunnel_id,
            fragments: st.fragments,
            protocol: k.protocol(),
            initiator: init.0,
            initiator_port: init.1,
            responder: resp.0,
            responder_port: resp.1,
            packets_forward: st.packets[0],
            bytes_forward: st.bytes[0],
            packets_reverse: st.packets[1],
            bytes_reverse: st.bytes[1],
            tcp_flags_forward: st.tcp_flags[0],
            tcp_flags_reverse: st.tcp_flags[1],
            min_ttl: st.min_ttl,
            max_ttl: st.max_ttl,
            indicator_set: sel.and_then(|s| s.set.as_deref()).unwrap_or_default().to_string(),
            rules: sel.map_or(Vec::new(), |s| s.rules.iter().map(|r| r.to_string()).collect()),
            ruleset_version: sel.map_or(String::new(), |s| s.ruleset_version.to_string()),
            ja4: prints.ja4.map(str::to_string),
            ja3: prints.ja3.map(str::to_string),
            ja3s: prints.ja3s.map(str::to_string),
            hassh: prints.hassh.map(str::to_string),
            hassh_server: prints.hassh_server.map(str::to_string),
            end_reason: reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::craft::{FrameSpec, Transport};
    use crate::parse::parse_ethernet;

    fn c2() -> Arc<str> {
        Arc::from("c2")
    }

    fn sel(set: &Arc<str>) -> Selected<'_> {
        static EMPTY: std::sync::OnceLock<Arc<str>> = std::sync::OnceLock::new();
        Selected {
            set: Some(set),
            rules: &[],
            ruleset_version: EMPTY.get_or_init(|| Arc::from("")),
        }
    }

    fn h(src: &str, dst: &str, sp: u16, dp: u16, flags: u8) -> Headers {
        parse_ethernet(
            &FrameSpec::new(src, dst)
                .vlans(&[7])
                .transport(Transport::Tcp {
                    src_port: sp,
                    dst_port: dp,
                    flags,
                })
                .build(),
        )
        .unwrap()
    }

    #[test]
    fn biflow_counts_per_direction_and_idle_expiry() {
        let mut t: FlowTable = FlowTable::new(3, Duration::from_secs(10), Duration::from_secs(100), 10);
        let mut out = Vec::new();
        t.update(
            &h("203.0.113.1", "192.0.2.1", 5000, 80, 0x02),
            Class::Inbound,
            sel(&c2()),
            1_000,
            &mut out,
        );
        t.update(
            &h("192.0.2.1", "203.0.113.1", 80, 5000, 0x12),
            Class::Outbound,
            sel(&c2()),
            2_000,
            &mut out,
        );
        t.update(
            &h("203.0.113.1", "192.0.2.1", 5000, 80, 0x10),
            Class::Inbound,
            sel(&c2()),
            3_000,
            &mut out,
        );
        assert_eq!(t.len(), 1);
        t.expire(5_000_000_000, &mut out);
        assert!(out.is_empty(), "not idle yet");
        t.expire(3_000 + 10_000_000_000, &mut out);
        assert_eq!(out.len(), 1);
        let r = &out[0];
        assert_eq!(r.initiator, "203.0.113.1".parse::<IpAddr>().unwrap());
        assert_eq!((r.initiator_port, r.responder_port), (5000, 80));
        assert_eq!((r.packets_forward, r.packets_reverse), (2, 1));
        assert_eq!((r.bytes_forward, r.bytes_reverse), (80, 40));
        assert_eq!((r.tcp_flags_forward, r.tcp_flags_reverse), (0x12, 0x12));
        assert_eq!(r.class, Class::Inbound);
        assert_eq!(r.queue, 3);
        assert_eq!(r.vlans, vec![7]);
        assert_eq!((r.first_seen_ns, r.last_seen_ns), (1_000, 3_000));
        assert_eq!(r.end_reason, EndReason::Idle);
        assert_eq!(r.indicator_set, "c2");
    }

    #[test]
    fn active_timeout_and_eviction_end_flows_as_records() {
        let mut t: FlowTable = FlowTable::new(0, Duration::from_secs(10), Duration::from_secs(20), 2);
        let mut out = Vec::new();
        for (i, n) in [1u16, 2, 3].iter().enumerate() {
            t.update(
                &h("203.0.113.1", "192.0.2.1", *n, 80, 0),
                Class::Inbound,
                sel(&c2()),
                i as u64,
                &mut out,
            );
        }
        assert_eq!(t.len(), 2);
        assert_eq!(t.evicted, 1);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].end_reason, EndReason::Evicted);
        // Which flow a full table ends is arbitrary (hash order); the active
        // timeout is checked on a table with room.
        let mut t: FlowTable = FlowTable::new(0, Duration::from_secs(10), Duration::from_secs(20), 2);
        out.clear();
        // Keep flows busy past the active timeout.
        for s in 1..=25u64 {
            for n in [2u16, 3] {
                t.update(
                    &h("203.0.113.1", "192.0.2.1", n, 80, 0),
                    Class::Inbound,
                    sel(&c2()),
                    s * 1_000_000_000,
                    &mut out,
                );
            }
        }
        assert!(out.is_empty());
        t.expire(25_000_000_001, &mut out);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|r| r.end_reason == EndReason::Active));
    }

    /// Selection work in progress on a flow, as a test stands it in.
    #[derive(Default)]
    struct Work(bool);

    impl PerFlow for Work {
        fn fingerprints(&self) -> Prints<'_> {
            Prints::default()
        }
        fn abandon(&mut self) -> bool {
            std::mem::take(&mut self.0)
        }
    }

    #[test]
    fn per_flow_work_is_given_up_after_the_timeout_and_the_flow_goes_on() {
        let mut t: FlowTable<Work> = FlowTable::new(0, Duration::from_secs(10), Duration::from_secs(100), 10);
        let mut out = Vec::new();
        let judged = Judged {
            class: Class::Inbound,
            set: None,
        };
        for (port, at) in [(5000, 0), (5001, 1_000)] {
            let h = h("203.0.113.1", "192.0.2.1", port, 443, 0x18);
            let Lookup::Unjudged(p) = t.lookup(&h, 0, at) else {
                panic!("a new flow is unjudged")
            };
            let (mut f, j) = p.judged(&h, judged, &mut out).unwrap();
            assert_eq!(j, judged);
            f.extra().0 = port == 5000;
        }
        // Not yet stale at 1.9 s; given up at 2 s, the flows still tracked.
        assert_eq!(t.expire(1_900_000_000, &mut out), 0);
        assert_eq!(t.expire(2_000_000_000, &mut out), 1);
        assert_eq!(t.expire(2_250_000_000, &mut out), 0);
        assert_eq!(t.len(), 2);
        // A later packet of a known flow needs no judgement.
        let h = h("192.0.2.1", "203.0.113.1", 443, 5000, 0x10);
        let Lookup::Known(f, j) = t.lookup(&h, 0, 3_000_000_000) else {
            panic!("a judged flow is known")
        };
        assert!(!f.from_initiator);
        assert_eq!(j.class, Class::Outbound, "the reply's class is the reverse");
        // Not cross-border: nothing kept, nothing counted.
        let dom = h_dom();
        let Lookup::Unjudged(p) = t.lookup(&dom, 0, 3_000_000_000) else {
            panic!()
        };
        let domestic = Judged {
            class: Class::Domestic,
            set: None,
        };
        assert!(p.judged(&dom, domestic, &mut out).is_none());
        assert_eq!(t.len(), 2);
    }

    fn h_dom() -> Headers {
        h("192.0.2.7", "192.0.2.1", 1, 2, 0x02)
    }

    #[test]
    fn a_mass_expiry_ends_selected_flows_a_sweep_at_a_time() {
        let n = RECORDS_PER_SWEEP + 16;
        let mut t: FlowTable = FlowTable::new(0, Duration::from_secs(10), Duration::from_secs(100), n);
        let mut out = Vec::new();
        let set = c2();
        for i in 0..n {
            let src = format!("203.0.{}.{}", 113 + i / 60_000, 1 + (i / 250) % 250);
            t.update(
                &h(&src, "192.0.2.1", 1024 + (i % 250) as u16, 80, 0x02),
                Class::Inbound,
                sel(&set),
                0,
                &mut out,
            );
        }
        assert_eq!(t.len(), n);
        t.expire(20_000_000_000, &mut out);
        assert_eq!((out.len(), t.len()), (RECORDS_PER_SWEEP, 16));
        out.clear();
        t.expire(20_250_000_000, &mut out);
        assert_eq!((out.len(), t.len()), (16, 0));
        assert!(out.iter().all(|r| r.end_reason == EndReason::Idle));
        // Shutdown in steps, too.
        for i in 0..10u16 {
            t.update(
                &h("203.0.113.9", "192.0.2.1", 2000 + i, 80, 0x02),
                Class::Inbound,
                sel(&set),
                0,
                &mut out,
            );
        }
        out.clear();
        assert!(t.drain_some(&mut out, 4));
        assert_eq!(out.len(), 4);
        assert!(!t.drain_some(&mut out, 100));
        assert_eq!(out.len(), 10);
    }
}
