//! How much memory a configuration lets furui use, at most: the README's
//! formula as code. `furui check-config` prints it, the daemon logs it at
//! start and warns when its cgroup's `memory.max` is lower, and the unit's
//! `MemoryMax` is sized from it.
//!
//! Every term is bounded by configuration, never by traffic: flows by
//! `max_flows`, fragments by `max_fragments`, reassembly by
//! `reassembly_budget_mib`, queues by their capacities.

use super::Config;
use crate::flow::{frag, table};

/// The binary, the runtime, the metrics registry, the exporters' threads
/// and buffers, and allocator slack (a replay of 1,000 flows peaks at
/// 11 MiB).
pub const BASE_BYTES: u64 = 64 << 20;

/// Bytes one flow takes in a queue's table (key, state with the selection
/// stage's per-flow `Hello`, control byte).
pub const FLOW_ENTRY_BYTES: u64 = table::entry_bytes::<crate::select::Hello>();

/// A mechanical record waiting in a queue, with its strings, at most.
pub const RECORD_BYTES: u64 = 512;

/// A hash table holding up to `n` entries of `entry` bytes, at its peak:
/// hashbrown keeps at most 7/8 of a power-of-two number of buckets full,
/// and while it grows the old table (half the size) is still allocated.
pub fn hash_table(n: u64, entry: u64) -> u64 {
    let buckets = (n.saturating_mul(8).div_ceil(7)).next_power_of_two().max(16);
    buckets * entry * 3 / 2
}

/// The bound, term by term (bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBound {
    pub queues: u64,
    /// Per queue: the UMEM (locked).
    pub umem: u64,
    /// Per queue: the flow table at `max_flows`, growth included, and the
    /// heap of its flows (fingerprints, selections).
    pub flows: u64,
    /// Per queue: the fragment table at `max_fragments`.
    pub fragments: u64,
    /// Per queue: the reassembly budget.
    pub reassembly: u64,
    /// The record queue and every recipient's queue.
    pub queues_of_records: u64,
    /// The retention store's page cache.
    pub store_cache: u64,
    pub base: u64,
}

impl MemoryBound {
    pub fn of(cfg: &Config) -> MemoryBound {
        let f = &cfg.flows;
        let max_flows = f.max_flows as u64;
        let recipients: u64 = cfg.export.recipients.iter().map(|r| r.queue_capacity as u64).sum();
        MemoryBound {
            queues: cfg.capture.queues.len() as u64,
            umem: cfg.capture.umem_bytes(),
            flows: hash_table(max_flows, FLOW_ENTRY_BYTES) + max_flows * table::HEAP_BYTES,
            fragments: hash_table(f.max_fragments as u64, frag::ENTRY_BYTES),
            reassembly: f.reassembly_budget as u64,
            queues_of_records: (cfg.records.queue_capacity as u64 + recipients) * RECORD_BYTES,
            store_cache: if cfg.retention.is_some() {
                super::retention::STORE_CACHE_BYTES as u64
            } else {
                0
            },
            base: BASE_BYTES,
        }
    }

    /// What one queue's worker may hold besides its UMEM.
    pub fn per_queue_heap(&self) -> u64 {
        self.flows + self.fragments + self.reassembly
    }

    /// The whole daemon.
    pub fn total(&self) -> u64 {
        self.queues * (self.umem + self.per_queue_heap()) + self.queues_of_records + self.store_cache + self.base
    }

    /// `furui replay`: one pipeline, no UMEM, no queues.
    pub fn replay(&self) -> u64 {
        self.per_queue_heap() + self.base
    }
}

/// Bytes as MiB, rounded up.
pub fn mib(bytes: u64) -> u64 {
    bytes.div_ceil(1 << 20)
}

impl std::fmt::Display for MemoryBound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} MiB = {} queue(s) x ({} MiB UMEM + {} MiB flows + {} MiB fragments + {} MiB reassembly) + {} MiB record queues",
            mib(self.total()),
            self.queues,
            mib(self.umem),
            mib(self.flows),
            mib(self.fragments),
            mib(self.reassembly),
            mib(self.queues_of_records),
        )?;
        if self.store_cache > 0 {
            write!(f, " + {} MiB store cache", mib(self.store_cache))?;
        }
        write!(f, " + {} MiB base", mib(self.base))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_formula_uses_these_sizes() {
        assert_eq!(
            (FLOW_ENTRY_BYTES, table::HEAP_BYTES, frag::ENTRY_BYTES, RECORD_BYTES),
            (169, 304, 209, 512),
            "update README's Memory section"
        );
    }

    #[test]
    fn tables_are_sized_like_hashbrown_grows_them() {
        // 917,504 = 7/8 of 2^20: the largest count a 2^20-bucket table holds.
        assert_eq!(hash_table(917_504, 100), (1 << 20) * 150);
        assert_eq!(hash_table(917_505, 100), (1 << 21) * 150);
        let mut m: std::collections::HashMap<u64, u64> = std::collections::HashMap::new();
        for i in 0..917_504 {
            m.insert(i, i);
        }
        assert_eq!(m.capacity(), 917_504, "std's table sizing changed: update hash_table");
    }

    #[test]
    fn the_default_configuration_fits_the_units_memory_max() {
        let cfg = Config::load(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../config/furui.toml"
        )))
        .unwrap();
        let b = MemoryBound::of(&cfg);
        let unit =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/systemd/furui.service")).unwrap();
        let max: u64 = unit
            .lines()
            .find_map(|l| l.strip_prefix("MemoryMax="))
            .and_then(|v| v.strip_suffix('M'))
            .and_then(|v| v.parse().ok())
            .expect("MemoryMax=<n>M in the unit");
        // The unit allows four queues of the shipped configuration, like
        // its LimitMEMLOCK.
        let four = MemoryBound { queues: 4, ..b };
        assert!(mib(four.total()) <= max, "{four} > MemoryMax={max}M");
    }
}
