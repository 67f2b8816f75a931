//! Behavioural thresholds: one source contacting more than N distinct
//! destinations (or destination ports) within T seconds — scanning — or
//! sending more than N matching packets within T seconds (Suricata's
//! `detection_filter: track by_src`).
//!
//! Memory is bounded: at most `MAX_SOURCES` sources per rule are tracked
//! (a full table drops the quietest half, counted), and each source keeps
//! two fixed-size bitmaps (linear counting) for the current and previous
//! window. The sliding count is the current window plus the share of the
//! previous window that still overlaps it.

use std::collections::HashMap;
use std::net::IpAddr;

use ahash::RandomState;

/// What is counted per source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distinct {
    Destinations,
    Ports,
    /// Every matching packet counts (not distinct targets).
    Packets,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScanCondition {
    pub distinct: Distinct,
    pub more_than: u32,
    pub within_ns: u64,
}

/// Sources tracked per rule.
pub const MAX_SOURCES: usize = 65_536;
const BITS: usize = 2048;
const WORDS: usize = BITS / 64;

#[derive(Clone)]
struct Window {
    start_ns: u64,
    cur: [u64; WORDS],
    prev: [u64; WORDS],
    /// Packets counted in the current and previous window (`Packets`).
    cur_n: u32,
    prev_n: u32,
}

/// Linear-counting estimate of distinct items hashed into `bits`.
fn estimate(bits: &[u64; WORDS]) -> f64 {
    let zeros = bits.iter().map(|w| w.count_zeros()).sum::<u32>() as f64;
    if zeros == 0.0 {
        return BITS as f64 * (BITS as f64).ln();
    }
    BITS as f64 * (BITS as f64 / zeros).ln()
}

/// Per-rule tracking state (one per worker).
#[derive(Clone, Default)]
pub struct ScanTracker {
    sources: HashMap<IpAddr, Window, RandomState>,
    hasher: RandomState,
    /// Sources forgotten because the table was full.
    pub dropped_sources: u64,
}

impl ScanTracker {
    /// Records that `src` contacted `target` at `now_ns`; true when the
    /// source is above the threshold.
    pub fn observe(&mut self, c: &ScanCondition, src: IpAddr, dst: IpAddr, dport: u16, now_ns: u64) -> bool {
        if self.sources.len() >= MAX_SOURCES && !self.sources.contains_key(&src) {
            self.shed(now_ns, c.within_ns);
        }
        let w = self.sources.entry(src).or_insert(Window {
            start_ns: now_ns,
            cur: [0; WORDS],
            prev: [0; WORDS],
            cur_n: 0,
            prev_n: 0,
        });
        let elapsed = now_ns.saturating_sub(w.start_ns);
        if elapsed >= 2 * c.within_ns {
            w.prev = [0; WORDS];
            w.cur = [0; WORDS];
            (w.prev_n, w.cur_n) = (0, 0);
            w.start_ns = now_ns;
        } else if elapsed >= c.within_ns {
            w.prev = w.cur;
            w.cur = [0; WORDS];
            (w.prev_n, w.cur_n) = (w.cur_n, 0);
            w.start_ns += c.within_ns;
        }
        let into = now_ns.saturating_sub(w.start_ns) as f64 / c.within_ns as f64;
        if c.distinct == Distinct::Packets {
            w.cur_n = w.cur_n.saturating_add(1);
            let count = f64::from(w.cur_n) + f64::from(w.prev_n) * (1.0 - into.min(1.0));
            // The sliding estimate rounds down: the window's own packets
            // are counted exactly.
            return count.floor() > f64::from(c.more_than);
        }
        let h = match c.distinct {
            Distinct::Destinations => self.hasher.hash_one(dst),
            Distinct::Ports | Distinct::Packets => self.hasher.hash_one((dst, dport)),
        } as usize
            % BITS;
        w.cur[h / 64] |= 1 << (h % 64);
        let count = estimate(&w.cur) + estimate(&w.prev) * (1.0 - into.min(1.0));
        count > f64::from(c.more_than)
    }

    /// Drops sources idle for two windows, and if that is not enough, half
    /// of the table.
    fn shed(&mut self, now_ns: u64, within_ns: u64) {
        let before = self.sources.len();
        self.sources
            .retain(|_, w| now_ns.saturating_sub(w.start_ns) < 2 * within_ns);
        if self.sources.len() >= MAX_SOURCES {
            let mut n = 0usize;
            self.sources.retain(|_, _| {
                n += 1;
                n.is_multiple_of(2)
            });
        }
        self.dropped_sources += (before - self.sources.len()) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_scanner_crosses_the_threshold_and_a_talker_does_not() {
        let c = ScanCondition {
            distinct: Distinct::Destinations,
            more_than: 50,
            within_ns: 10_000_000_000,
        };
        let mut t = ScanTracker::default();
        let scanner = ip("203.0.113.1");
        let mut crossed_at = None;
        for i in 0..200u32 {
            let dst = IpAddr::from(std::net::Ipv4Addr::from(0xc633_6400 + i));
            if t.observe(&c, scanner, dst, 22, u64::from(i) * 1_000_000) && crossed_at.is_none() {
                crossed_at = Some(i);
            }
        }
        let at = crossed_at.expect("the scan was detected");
        assert!(
            (45..=60).contains(&at),
            "detected after {at} destinations (threshold 50)"
        );
        // One source talking to one destination a thousand times: 1 distinct.
        let talker = ip("203.0.113.2");
        assert!((0..1000u64).all(|i| !t.observe(&c, talker, ip("198.51.100.1"), 443, i)));
    }

    #[test]
    fn a_packet_count_fires_after_more_than_n_within_the_window() {
        let c = ScanCondition {
            distinct: Distinct::Packets,
            more_than: 5,
            within_ns: 60_000_000_000,
        };
        let mut t = ScanTracker::default();
        let src = ip("203.0.113.9");
        let dst = ip("192.0.2.1");
        let fired: Vec<bool> = (0..8u64).map(|i| t.observe(&c, src, dst, 22, i * 1_000_000)).collect();
        assert_eq!(fired, [false, false, false, false, false, true, true, true]);
        // Another source is counted apart.
        assert!(!t.observe(&c, ip("203.0.113.10"), dst, 22, 9_000_000));
        // Two windows later the count starts again.
        assert!(!t.observe(&c, src, dst, 22, 130_000_000_000));
    }

    #[test]
    fn the_window_slides_and_memory_is_bounded() {
        let c = ScanCondition {
            distinct: Distinct::Ports,
            more_than: 20,
            within_ns: 1_000_000_000,
        };
        let mut t = ScanTracker::default();
        let src = ip("203.0.113.1");
        // 15 ports per second for 5 seconds: never 20 in any window.
        let mut hit = false;
        for s in 0..5u64 {
            for p in 0..15u16 {
                hit |= t.observe(
                    &c,
                    src,
                    ip("198.51.100.1"),
                    1000 + p + (s as u16) * 15,
                    s * 1_000_000_000 + u64::from(p) * 60_000_000,
                );
            }
        }
        assert!(!hit, "a slow scan under the rate stays under the threshold");
        for i in 0..(MAX_SOURCES as u32 + 10) {
            t.observe(
                &c,
                IpAddr::from(std::net::Ipv4Addr::from(i)),
                ip("198.51.100.1"),
                1,
                10_000_000_000,
            );
        }
        assert!(t.sources.len() <= MAX_SOURCES);
        assert!(t.dropped_sources > 0);
    }
}
