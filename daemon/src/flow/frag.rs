//! IP fragments: a non-first fragment carries no ports, so it is attributed
//! to the flow of its datagram's first fragment through a bounded table
//! keyed by (addresses, protocol, IP identification, tunnel). Nothing is
//! reassembled: the table holds the first fragment's transport fields, the
//! byte ranges seen (for overlap detection) and counts — never data.
//!
//! Invariant kept: bounded memory (`max_entries`, each entry a fixed size)
//! and every fragment is accounted for: attributed to a flow, or counted
//! as orphaned when its datagram's first fragment never came.

use std::collections::HashMap;
use std::net::IpAddr;

use ahash::RandomState;

use crate::parse::{Fragment, Headers, L4};

/// What happened to fragments; the metric label `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FragEvent {
    /// A first fragment (it has the ports).
    First,
    /// A later fragment attributed to its first fragment's flow.
    Attributed,
    /// A later fragment that came before its first fragment, attributed
    /// when the first came.
    OutOfOrder,
    /// A later fragment whose first fragment never came (timed out or
    /// evicted): counted, in no flow.
    Orphaned,
    /// A fragment whose bytes overlap another fragment of its datagram.
    Overlap,
    /// RFC 1858 tiny fragment (see `Fragment::tiny`).
    Tiny,
    /// A datagram's entry dropped because the table was full.
    Evicted,
}

impl FragEvent {
    pub const ALL: [FragEvent; 7] = [
        FragEvent::First,
        FragEvent::Attributed,
        FragEvent::OutOfOrder,
        FragEvent::Orphaned,
        FragEvent::Overlap,
        FragEvent::Tiny,
        FragEvent::Evicted,
    ];

    pub fn kind(self) -> &'static str {
        match self {
            FragEvent::First => "first",
            FragEvent::Attributed => "attributed",
            FragEvent::OutOfOrder => "out_of_order",
            FragEvent::Orphaned => "orphaned",
            FragEvent::Overlap => "overlap",
            FragEvent::Tiny => "tiny",
            FragEvent::Evicted => "evicted",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct FragKey {
    src: u128,
    dst: u128,
    id: u32,
    protocol: u8,
    tunnel: u64,
}

fn bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(v.to_ipv6_mapped()),
        IpAddr::V6(v) => u128::from(v),
    }
}

/// Byte ranges of a datagram kept for overlap detection; beyond this many
/// fragments, overlaps are no longer looked for in that datagram.
const RANGES: usize = 16;

struct Entry {
    created_ns: u64,
    /// The first fragment's transport fields, once it came.
    l4: Option<L4>,
    ranges: [(u32, u32); RANGES],
    n_ranges: u8,
    /// Later fragments that came before the first: packets and IP bytes.
    held: (u64, u64),
}

impl Entry {
    /// Records `f`'s byte range; true if it overlaps one seen before.
    fn overlaps(&mut self, f: &Fragment) -> bool {
        let start = u32::from(f.offset) * 8;
        let end = start + u32::from(f.len);
        let seen = &self.ranges[..usize::from(self.n_ranges)];
        let hit = seen.iter().any(|(s, e)| start < *e && *s < end);
        if usize::from(self.n_ranges) < RANGES {
            self.ranges[usize::from(self.n_ranges)] = (start, end);
            self.n_ranges += 1;
        }
        hit
    }
}

/// Bytes one tracked datagram takes in the table (key, entry, control
/// byte), for the memory bound.
pub const ENTRY_BYTES: u64 = (std::mem::size_of::<FragKey>() + std::mem::size_of::<Entry>() + 1) as u64;

/// What the pipeline does with a fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FragVerdict {
    /// Count it into its flow (a later fragment now carries its first
    /// fragment's ports); `held` later fragments (packets, bytes) came
    /// before this first one and are counted into the flow with it.
    Track { held: (u64, u64) },
    /// A later fragment whose first has not come: held (counted) in the
    /// table, in no flow yet.
    Hold,
}

pub struct FragTable {
    map: HashMap<FragKey, Entry, RandomState>,
    max_entries: usize,
    timeout_ns: u64,
    /// Events since the caller last took them, indexed like `FragEvent::ALL`.
    pub counts: [u64; FragEvent::ALL.len()],
}

impl FragTable {
    pub fn new(max_entries: usize, timeout: std::time::Duration) -> FragTable {
        FragTable {
            map: HashMap::with_hasher(RandomState::new()),
            max_entries: max_entries.max(1),
            timeout_ns: timeout.as_nanos() as u64,
            counts: [0; FragEvent::ALL.len()],
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn count(&mut self, e: FragEvent, n: u64) {
        self.counts[e as usize] += n;
    }

    /// Takes the counts (for publishing).
    pub fn take_counts(&mut self) -> [u64; FragEvent::ALL.len()] {
        std::mem::take(&mut self.counts)
    }

    /// Handles one fragment packet `h` (its `frag` is set). A later
    /// fragment whose first is known gets that first's ports in `h.l4`.
    pub fn on_fragment(&mut self, h: &mut Headers, tunnel: u64, now_ns: u64) -> FragVerdict {
        let (Some(f), Some(src), Some(dst)) = (h.frag, h.src, h.dst) else {
            return FragVerdict::Track { held: (0, 0) };
        };
        if f.tiny {
            self.count(FragEvent::Tiny, 1);
        }
        let key = FragKey {
            src: bits(src),
            dst: bits(dst),
            id: f.id,
            protocol: h.protocol,
            tunnel,
        };
        if !self.map.contains_key(&key) && self.map.len() >= self.max_entries {
            self.evict_one();
        }
        let e = self.map.entry(key).or_insert_with(|| Entry {
            created_ns: now_ns,
            l4: None,
            ranges: [(0, 0); RANGES],
            n_ranges: 0,
            held: (0, 0),
        });
        let overlap = e.overlaps(&f);
        let verdict = if f.is_first() {
            e.l4 = Some(h.l4);
            let held = std::mem::take(&mut e.held);
            self.count(FragEvent::First, 1);
            self.count(FragEvent::OutOfOrder, held.0);
            FragVerdict::Track { held }
        } else if let Some(l4) = e.l4 {
            h.l4 = l4;
            self.count(FragEvent::Attributed, 1);
            FragVerdict::Track { held: (0, 0) }
        } else {
            e.held.0 += 1;
            e.held.1 += u64::from(h.ip_len);
            FragVerdict::Hold
        };
        if overlap {
            self.count(FragEvent::Overlap, 1);
        }
        verdict
    }

    fn evict_one(&mut self) {
        // The oldest entry (a linear scan, only when the table is full).
        let oldest = self.map.iter().min_by_key(|(_, e)| e.created_ns).map(|(k, _)| *k);
        if let Some(e) = oldest.and_then(|k| self.map.remove(&k)) {
            self.count(FragEvent::Evicted, 1);
            self.count(FragEvent::Orphaned, e.held.0);
        }
    }

    /// Ends datagrams older than the timeout; their held fragments are
    /// orphaned.
    pub fn expire(&mut self, now_ns: u64) {
        let timeout = self.timeout_ns;
        let mut orphaned = 0;
        self.map.retain(|_, e| {
            let keep = now_ns.saturating_sub(e.created_ns) < timeout;
            if !keep {
                orphaned += e.held.0;
            }
            keep
        });
        self.count(FragEvent::Orphaned, orphaned);
    }

    /// Ends every datagram (shutdown).
    pub fn drain(&mut self) {
        let orphaned: u64 = self.map.values().map(|e| e.held.0).sum();
        self.map.clear();
        self.count(FragEvent::Orphaned, orphaned);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_ip;

    fn fragments(id: u16, cuts: &[usize]) -> Vec<Vec<u8>> {
        crate::craft::ipv4_tcp_fragments(id, cuts)
    }

    fn run(t: &mut FragTable, p: &[u8]) -> (FragVerdict, (u16, u16)) {
        let mut h = parse_ip(p).unwrap();
        let v = t.on_fragment(&mut h, 0, 1);
        (v, h.ports())
    }

    fn counts(t: &FragTable) -> Vec<(&'static str, u64)> {
        FragEvent::ALL
            .iter()
            .filter(|e| t.counts[**e as usize] > 0)
            .map(|e| (e.kind(), t.counts[*e as usize]))
            .collect()
    }

    #[test]
    fn later_fragments_get_the_first_fragments_ports() {
        let mut t = FragTable::new(16, std::time::Duration::from_secs(30));
        let f = fragments(7, &[24, 32]);
        let track = FragVerdict::Track { held: (0, 0) };
        assert_eq!(run(&mut t, &f[0]), (track, (4444, 80)));
        assert_eq!(run(&mut t, &f[1]), (track, (4444, 80)));
        assert_eq!(run(&mut t, &f[2]), (track, (4444, 80)));
        assert_eq!(counts(&t), [("first", 1), ("attributed", 2)]);
    }

    #[test]
    fn out_of_order_fragments_wait_for_their_first() {
        let mut t = FragTable::new(16, std::time::Duration::from_secs(30));
        let f = fragments(8, &[24, 32]);
        assert_eq!(run(&mut t, &f[2]).0, FragVerdict::Hold);
        assert_eq!(run(&mut t, &f[1]).0, FragVerdict::Hold);
        // The first brings both held fragments (20+8 and 20+8 IP bytes).
        assert_eq!(run(&mut t, &f[0]).0, FragVerdict::Track { held: (2, 56) });
        assert_eq!(counts(&t), [("first", 1), ("out_of_order", 2)]);
    }

    #[test]
    fn overlaps_tiny_fragments_and_missing_firsts_are_counted() {
        let mut t = FragTable::new(16, std::time::Duration::from_secs(30));
        // A first fragment of 8 bytes: too short for the TCP header.
        let f = fragments(9, &[8]);
        run(&mut t, &f[0]);
        assert_eq!(t.counts[FragEvent::Tiny as usize], 1);
        // The same first fragment again: it overlaps itself.
        run(&mut t, &f[0]);
        assert_eq!(t.counts[FragEvent::Overlap as usize], 1);
        // Another datagram's later fragment, whose first never comes.
        let g = fragments(10, &[16]);
        assert_eq!(run(&mut t, &g[1]).0, FragVerdict::Hold);
        t.expire(1 + 29_000_000_000);
        assert_eq!(t.len(), 2, "not yet timed out");
        t.expire(1 + 30_000_000_000);
        assert_eq!(t.len(), 0);
        assert_eq!(t.counts[FragEvent::Orphaned as usize], 1);
    }

    #[test]
    fn a_full_table_evicts_its_oldest_datagram_and_counts_it() {
        let mut t = FragTable::new(2, std::time::Duration::from_secs(30));
        for id in 0..5u16 {
            let g = fragments(100 + id, &[16]);
            let mut h = parse_ip(&g[1]).unwrap();
            t.on_fragment(&mut h, 0, u64::from(id));
        }
        assert_eq!(t.len(), 2);
        assert_eq!(t.counts[FragEvent::Evicted as usize], 3);
        assert_eq!(t.counts[FragEvent::Orphaned as usize], 3);
    }
}
