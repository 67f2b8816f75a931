//! One queue's metric handles, resolved once: what a capture worker
//! publishes after each batch and at each housekeeping tick.
//!
//! Invariant kept: a batch's received and erased counts are published
//! together, after the whole batch is erased, so a scrape sees received ==
//! erased unless erasure failed.

use prometheus::{Counter, Gauge, Histogram, IntCounter, IntCounterVec, IntGauge};

use super::{raise_to, Metrics};
use crate::budget::Budget;
use crate::flow::FragEvent;
use crate::parse::ParseError;
use crate::pipeline::BatchCounters;

pub struct QueuePublisher {
    received: IntCounter,
    erased: IntCounter,
    bytes_erased: IntCounter,
    without_meta: IntCounter,
    truncated: IntCounter,
    bytes_seen: IntCounter,
    parse_errors: Vec<IntCounter>,
    rule_matches: IntCounterVec,
    erase_latency: Histogram,
    batch_seconds: Counter,
    flows_active: IntGauge,
    flows_evicted: IntCounter,
    fragments: Vec<IntCounter>,
    reassembly_bytes: IntGauge,
    reassembly_refused: IntCounter,
    reassembly_timed_out: IntCounter,
    /// rx_dropped, rx_invalid_descs, rx_ring_full, rx_fill_ring_empty_descs.
    xsk: [IntCounter; 4],
    nap: Gauge,
    /// The flows this queue added to `furui_flows_active` (a shared gauge).
    flows_reported: i64,
}

impl QueuePublisher {
    pub fn new(metrics: &Metrics, queue: u32, budget: &Budget) -> QueuePublisher {
        let q = queue.to_string();
        let q = [q.as_str()];
        metrics
            .reassembly_budget
            .with_label_values(&q)
            .set(budget.limit() as i64);
        QueuePublisher {
            received: metrics.frames_received.with_label_values(&q),
            erased: metrics.frames_erased.with_label_values(&q),
            bytes_erased: metrics.bytes_erased.with_label_values(&q),
            without_meta: metrics.frames_without_metadata.with_label_values(&q),
            truncated: metrics.frames_truncated.with_label_values(&q),
            bytes_seen: metrics.frame_bytes_seen.with_label_values(&q),
            parse_errors: ParseError::ALL
                .iter()
                .map(|e| metrics.parse_errors.with_label_values(&[e.kind()]))
                .collect(),
            rule_matches: metrics.rule_matches.clone(),
            erase_latency: metrics.erase_latency.clone(),
            batch_seconds: metrics.batch_seconds.with_label_values(&q),
            flows_active: metrics.flows_active.clone(),
            flows_evicted: metrics.flows_evicted.with_label_values(&["table_full"]),
            fragments: FragEvent::ALL
                .iter()
                .map(|e| metrics.fragments.with_label_values(&[e.kind()]))
                .collect(),
            reassembly_bytes: metrics.reassembly_bytes.with_label_values(&q),
            reassembly_refused: metrics.reassembly_refused.with_label_values(&q),
            reassembly_timed_out: metrics.reassembly_timed_out.with_label_values(&q),
            xsk: [
                metrics.xsk_rx_dropped.with_label_values(&q),
                metrics.xsk_rx_invalid_descs.with_label_values(&q),
                metrics.xsk_rx_ring_full.with_label_values(&q),
                metrics.xsk_rx_fill_ring_empty.with_label_values(&q),
            ],
            nap: metrics.idle_nap.with_label_values(&q),
            flows_reported: 0,
        }
    }

    /// A batch of `received` frames, all erased, with what the pipeline
    /// counted and how long the batch took.
    pub fn batch(&self, received: u64, c: &BatchCounters, secs: f64) {
        self.erase_latency.observe(secs);
        self.batch_seconds.inc_by(secs);
        self.received.inc_by(received);
        self.erased.inc_by(c.frames_erased);
        self.bytes_erased.inc_by(c.bytes_erased);
        self.without_meta.inc_by(c.frames_without_meta);
        self.truncated.inc_by(c.frames_truncated);
        self.bytes_seen.inc_by(c.bytes_seen);
        for (counter, v) in self.parse_errors.iter().zip(c.parse_errors) {
            if v > 0 {
                counter.inc_by(v);
            }
        }
        for (rule, n) in &c.rule_matches {
            self.rule_matches.with_label_values(&[rule]).inc_by(*n);
        }
    }

    /// Frames zeroed without processing (after a panic): received and
    /// erased at once.
    pub fn zeroed(&self, frames: u64, bytes: u64) {
        self.received.inc_by(frames);
        self.erased.inc_by(frames);
        self.bytes_erased.inc_by(bytes);
        self.bytes_seen.inc_by(bytes);
    }

    /// The flow and fragment tables and the reassembly budget, at a
    /// housekeeping tick.
    pub fn tables(&mut self, flows: usize, evicted: u64, fragments: &[u64], budget: &Budget) {
        self.flows_evicted.inc_by(evicted);
        for (counter, n) in self.fragments.iter().zip(fragments) {
            if *n > 0 {
                counter.inc_by(*n);
            }
        }
        let flows = flows as i64;
        self.flows_active.add(flows - self.flows_reported);
        self.flows_reported = flows;
        self.reassembly_bytes.set(budget.used() as i64);
        raise_to(&self.reassembly_refused, budget.refused());
        raise_to(&self.reassembly_timed_out, budget.timed_out());
    }

    /// The kernel's AF_XDP statistics (absolute values).
    pub fn xsk(&self, stats: [u64; 4]) {
        for (c, v) in self.xsk.iter().zip(stats) {
            raise_to(c, v);
        }
    }

    pub fn nap(&self, secs: f64) {
        self.nap.set(secs);
    }
}
