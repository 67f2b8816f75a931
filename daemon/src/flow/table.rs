//! The per-worker flow table: bounded, with timeouts and counted eviction.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use ahash::RandomState;
use std::net::IpAddr;
use std::time::Duration;

use super::hello::Hello;
use super::key::FlowKey;
use super::record::{EndReason, MechanicalRecord};
use crate::budget::Budget;
use crate::classify::Class;
use crate::parse::Headers;
use crate::select::tls::Fingerprints;
use crate::select::SetId;
use std::sync::Arc;

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
    pub set: Option<SetId>,
}

struct FlowState {
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
    hello: Hello,
    /// The selection-state generation `lo_to_hi` and `set_id` are from.
    judged_gen: u64,
    /// The class of a packet sent from the key's `lo` end to its `hi` end
    /// (the other direction has the reversed class).
    lo_to_hi: Class,
    /// The indicator set of the flow's remote end(s): the same for both
    /// directions, as the remote (foreign) end is.
    set_id: Option<SetId>,
}

/// Most selected flows one expiry sweep ends (turns into records).
pub const RECORDS_PER_SWEEP: usize = 16_384;

/// Bytes one flow takes in the table (key, state, control byte), for the
/// memory bound.
pub const ENTRY_BYTES: u64 = (std::mem::size_of::<FlowKey>() + std::mem::size_of::<FlowState>() + 1) as u64;

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

impl FlowState {
    fn new(h: &Headers, src_is_lo: bool, now_ns: u64, j: Judged, gen: u64) -> FlowState {
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
            hello: Hello::default(),
            judged_gen: gen,
            lo_to_hi: orient(j.class, src_is_lo),
            set_id: j.set,
        }
    }
}

/// A packet's flow, after the packet was counted.
pub struct FlowRef<'a> {
    st: &'a mut FlowState,
    budget: &'a Budget,
    /// The packet was sent by the flow's initiator.
    pub from_initiator: bool,
}

impl FlowRef<'_> {
    /// Feeds the initiator's first TCP payload(s) to the ClientHello
    /// fingerprinting (at most two segments).
    pub fn feed_tls(&mut self, payload: &[u8]) {
        if self.from_initiator {
            self.st.hello.feed_tcp(payload, self.budget);
        }
    }

    /// Feeds the initiator's first UDP datagrams to QUIC Initial
    /// decryption (at most a few); `scratch` is per-worker plaintext space.
    pub fn feed_quic(&mut self, datagram: &[u8], scratch: &mut Vec<u8>) {
        if self.from_initiator {
            self.st.hello.feed_quic(datagram, scratch, self.budget);
        }
    }

    /// Counts later fragments of this packet's datagram that came before
    /// it (the first fragment) and were held: they went the same way.
    pub fn count_held(&mut self, packets: u64, bytes: u64) {
        let dir = usize::from(!self.from_initiator);
        self.st.packets[dir] += packets;
        self.st.bytes[dir] += bytes;
        self.st.fragments += packets;
    }

    pub fn fingerprint(&self) -> Option<&Fingerprints> {
        self.st.hello.fingerprint()
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

pub struct FlowTable {
    flows: HashMap<FlowKey, FlowState, RandomState>,
    idle_ns: u64,
    active_ns: u64,
    max_flows: usize,
    queue: u32,
    /// Flows ended early because the table was full.
    pub evicted: u64,
    /// Every reassembly buffer of the table's flows is charged here.
    pub budget: Budget,
    /// The most flows tracked at once.
    pub peak: usize,
}

impl FlowTable {
    pub fn new(queue: u32, idle: Duration, active: Duration, max_flows: usize, budget: Budget) -> Self {
        FlowTable {
            flows: HashMap::with_capacity_and_hasher(max_flows.min(65_536), RandomState::new()),
            idle_ns: idle.as_nanos() as u64,
            active_ns: active.as_nanos() as u64,
            max_flows,
            queue,
            evicted: 0,
            budget,
            peak: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Counts one packet into its flow, creating it, and says what the
    /// selection state makes of the packet. `judge` classifies the packet
    /// and finds its indicator set; it runs only for a flow's first packet
    /// and for the first packet after the selection state changed (`gen`).
    /// A packet that is not cross-border is not counted (`None`). A full
    /// table first ends some other flow, whose record, if selected, goes
    /// to `out`.
    pub fn touch(
        &mut self,
        h: &Headers,
        gen: u64,
        now_ns: u64,
        out: &mut Vec<MechanicalRecord>,
        judge: impl Fn() -> Judged,
    ) -> Option<(FlowRef<'_>, Judged)> {
        let (Some(src), Some(dst)) = (h.src, h.dst) else {
            return None;
        };
        let (sport, dport) = h.ports();
        let (key, src_is_lo) = FlowKey::new(
            h.vlans,
            super::key::tunnel_key(h.tunnel),
            h.protocol,
            (src, sport),
            (dst, dport),
        );
        // Length first: the extra lookup runs only when the table is full.
        if self.flows.len() >= self.max_flows && !self.flows.contains_key(&key) {
            if !judge().class.is_cross_border() {
                return None;
            }
            self.evict_one(out);
        }
        let len = self.flows.len();
        let st = match self.flows.entry(key) {
            Entry::Occupied(o) => {
                let st = o.into_mut();
                if st.judged_gen != gen {
                    let j = judge();
                    if !j.class.is_cross_border() {
                        return None;
                    }
                    st.judged_gen = gen;
                    st.lo_to_hi = orient(j.class, src_is_lo);
                    st.set_id = j.set;
                }
                st
            }
            Entry::Vacant(v) => {
                let j = judge();
                if !j.class.is_cross_border() {
                    return None;
                }
                self.peak = self.peak.max(len + 1);
                v.insert(FlowState::new(h, src_is_lo, now_ns, j, gen))
            }
        };
        Self::count(st, h, src_is_lo, now_ns);
        let judged = Judged {
            class: orient(st.lo_to_hi, src_is_lo),
            set: st.set_id,
        };
        let from_initiator = src_is_lo == st.initiator_is_lo;
        Some((
            FlowRef {
                st,
                budget: &self.budget,
                from_initiator,
            },
            judged,
        ))
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
        if let Some((mut f, _)) = self.touch(h, 0, now_ns, out, || Judged { class, set: None }) {
            f.select(sel);
        }
    }

    #[inline]
    fn count(st: &mut FlowState, h: &Headers, src_is_lo: bool, now_ns: u64) {
        let dir = usize::from(src_is_lo != st.initiator_is_lo);
        st.packets[dir] += 1;
        st.bytes[dir] += u64::from(h.ip_len);
        st.tcp_flags[dir] |= h.tcp_flags();
        st.min_ttl = st.min_ttl.min(h.ttl);
        st.max_ttl = st.max_ttl.max(h.ttl);
        st.last_seen_ns = st.last_seen_ns.max(now_ns);
        st.fragments += u64::from(h.frag.is_some());
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
    /// and gives up reassemblies older than `REASSEMBLY_TIMEOUT`.
    pub fn expire(&mut self, now_ns: u64, out: &mut Vec<MechanicalRecord>) {
        let (idle, active, queue) = (self.idle_ns, self.active_ns, self.queue);
        let stale = super::hello::REASSEMBLY_TIMEOUT.as_nanos() as u64;
        let mut timed_out = 0;
        let mut room = RECORDS_PER_SWEEP;
        let ended = self.flows.extract_if(|_, st| {
            // A ClientHello is a flow's first payload: a reassembly older
            // than the timeout has waited since about first_seen.
            if now_ns.saturating_sub(st.first_seen_ns) >= stale && st.hello.abandon() {
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
        self.budget.count_timed_out(timed_out);
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

    fn record(queue: u32, k: &FlowKey, st: &FlowState, reason: EndReason) -> MechanicalRecord {
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
            ja4: st.hello.fingerprint().map(|f| f.ja4.clone()),
            ja3: st.hello.fingerprint().map(|f| f.ja3.clone()),
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
        let mut t = FlowTable::new(
            3,
            Duration::from_secs(10),
            Duration::from_secs(100),
            10,
            Budget::unlimited(),
        );
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
        let mut t = FlowTable::new(
            0,
            Duration::from_secs(10),
            Duration::from_secs(20),
            2,
            Budget::unlimited(),
        );
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
        let mut t = FlowTable::new(
            0,
            Duration::from_secs(10),
            Duration::from_secs(20),
            2,
            Budget::unlimited(),
        );
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

    #[test]
    fn a_reassembly_is_charged_to_the_budget_refused_beyond_it_and_given_up_after_the_timeout() {
        let budget = Budget::new(20_000);
        let mut t = FlowTable::new(0, Duration::from_secs(10), Duration::from_secs(100), 10, budget.clone());
        let mut out = Vec::new();
        // Two flows whose first segment claims a 16,000-byte ClientHello.
        let claim = [22, 3, 1, 0x3e, 0x84, 1, 0, 0x3e, 0x80, 3, 3];
        let judge = || Judged {
            class: Class::Inbound,
            set: None,
        };
        for (port, at) in [(5000, 0), (5001, 1_000)] {
            let (mut f, _) = t
                .touch(&h("203.0.113.1", "192.0.2.1", port, 443, 0x18), 0, at, &mut out, judge)
                .unwrap();
            f.feed_tls(&claim);
        }
        // The first took 16,009 bytes; the second did not fit.
        assert_eq!((budget.used(), budget.refused()), (16_009, 1));
        // Not yet stale at 1.9 s; given up at 2 s, the flow still tracked.
        t.expire(1_900_000_000, &mut out);
        assert_eq!(budget.used(), 16_009);
        t.expire(2_000_000_000, &mut out);
        assert_eq!((budget.used(), budget.timed_out(), t.len()), (0, 1, 2));
    }

    #[test]
    fn a_mass_expiry_ends_selected_flows_a_sweep_at_a_time() {
        let n = RECORDS_PER_SWEEP + 16;
        let mut t = FlowTable::new(
            0,
            Duration::from_secs(10),
            Duration::from_secs(100),
            n,
            Budget::unlimited(),
        );
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

#[cfg(test)]
mod sizes {
    /// Every byte here is paid `max_flows` times per queue (README: the
    /// memory formula). A change that grows it must update the formula.
    #[test]
    fn a_flow_entry_stays_small() {
        assert_eq!(std::mem::size_of::<super::FlowKey>(), 48);
        assert!(
            std::mem::size_of::<super::FlowState>() <= 120,
            "{}",
            std::mem::size_of::<super::FlowState>()
        );
        assert_eq!(super::ENTRY_BYTES, 169);
    }
}
