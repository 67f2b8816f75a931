//! Telemetry: the Prometheus registry (every metric furui has) and the
//! HTTP endpoint that serves it.
//!
//! Invariant kept: labels are bounded enums (queue, class, action, kind,
//! measure, reason) — no metric can carry a packet's field.

pub mod http;
pub mod names;
pub mod queue;
pub mod summary;

use prometheus::{
    CounterVec, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

use crate::classify::walk::{Encap, Outcome};
use crate::classify::{Action, Class, Measure};
use crate::parse::ParseError;

/// All of furui's metrics, registered once.
#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub xdp_packets: IntCounterVec,
    pub xdp_bytes: IntCounterVec,
    pub xdp_encap_packets: IntCounterVec,
    pub frames_received: IntCounterVec,
    pub frames_erased: IntCounterVec,
    pub bytes_erased: IntCounterVec,
    pub frames_without_metadata: IntCounterVec,
    pub frames_truncated: IntCounterVec,
    pub batch_seconds: CounterVec,
    pub frame_bytes_seen: IntCounterVec,
    pub xdp_hello_follows: IntCounterVec,
    pub erase_latency: Histogram,
    pub parse_errors: IntCounterVec,
    pub records_selected: IntCounter,
    pub records_written: IntCounter,
    pub records_dropped: IntCounterVec,
    pub flows_active: IntGauge,
    pub flows_evicted: IntCounterVec,
    pub fragments: IntCounterVec,
    pub reassembly_bytes: IntGaugeVec,
    pub reassembly_budget: IntGaugeVec,
    pub reassembly_refused: IntCounterVec,
    pub reassembly_timed_out: IntCounterVec,
    pub idle_nap: GaugeVec,
    pub xsk_rx_dropped: IntCounterVec,
    pub xsk_rx_invalid_descs: IntCounterVec,
    pub xsk_rx_ring_full: IntCounterVec,
    pub xsk_rx_fill_ring_empty: IntCounterVec,
    pub measure_authorized: IntGaugeVec,
    pub measure_window_end: IntGaugeVec,
    pub records_queue_depth: IntGauge,
    pub records_queue_capacity: IntGauge,
    pub config_reloads: IntCounterVec,
    /// TAXII pulls by feed and outcome, and the indicators each feed's
    /// bundle holds.
    pub taxii_pulls: IntCounterVec,
    pub taxii_indicators: IntGaugeVec,
    pub class_map_write_failures: IntCounter,
    pub clock_steps: IntCounter,
    pub clock_last_step: prometheus::Gauge,
    pub measure_held: IntGaugeVec,
    pub ruleset_version: IntGaugeVec,
    pub rule_matches: IntCounterVec,
    pub export_records: IntCounterVec,
    pub export_dropped: IntCounterVec,
    pub export_queue_depth: IntGaugeVec,
    pub export_errors: IntCounterVec,
    pub export_spool_bytes: IntGaugeVec,
    pub export_spooled: IntCounterVec,
    pub export_duplicates: IntCounterVec,
    pub api_requests: IntCounterVec,
    pub api_connections: IntGauge,
    pub api_connections_refused: IntCounterVec,
    pub export_queue_capacity: IntGaugeVec,
    pub audit_entries: IntCounterVec,
    pub audit_checkpoint_time: IntGauge,
    /// 1 while the trail takes entries, 0 while it cannot be written.
    pub audit_writable: IntGauge,
    /// 1 while a recipient's exports wait for the audit trail.
    pub export_paused: IntGaugeVec,
    pub store_records: IntCounter,
    pub store_purged: IntCounter,
    pub store_epochs: IntGauge,
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("metric definition is valid");
    r.register(Box::new(c.clone())).expect("metric names are unique");
    c
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("metric definition is valid");
    r.register(Box::new(g.clone())).expect("metric names are unique");
    g
}

impl Metrics {
    pub fn new() -> Metrics {
        use names::*;
        let r = Registry::new();
        let xdp_packets = counter_vec(
            &r,
            XDP_PACKETS,
            "Packets seen by the XDP classifier, by class and action.",
            &["class", "action"],
        );
        let xdp_bytes = counter_vec(&r, XDP_BYTES, "Bytes seen by the XDP classifier, by class.", &["class"]);
        let xdp_encap_packets = counter_vec(
            &r,
            XDP_ENCAP_PACKETS,
            "Packets per encapsulation layer the XDP walk met, by how it left it (opened, not_opened, too_deep, malformed, outer).",
            &["encap", "outcome"],
        );
        let frames_received = counter_vec(&r, FRAMES_RECEIVED, "Frames taken from the AF_XDP RX ring.", &["queue"]);
        let frames_erased = counter_vec(
            &r,
            FRAMES_ERASED,
            "Frames zeroed before their buffer went back to the fill ring.",
            &["queue"],
        );
        let bytes_erased = counter_vec(&r, BYTES_ERASED, "Bytes zeroed in erased frames.", &["queue"]);
        let frames_without_metadata = counter_vec(
            &r,
            FRAMES_WITHOUT_METADATA,
            "Captured frames that came without the XDP program's metadata (the driver had no room): user space walked them itself.",
            &["queue"],
        );
        let frames_truncated = counter_vec(
            &r,
            FRAMES_TRUNCATED,
            "Captured frames the XDP snap cut to what selection can use (the rest was never copied).",
            &["queue"],
        );
        let frame_bytes_seen = counter_vec(
            &r,
            FRAME_BYTES_SEEN,
            "Bytes of the captured frames as they arrived, before the snap; against furui_bytes_erased_total (every byte copied), what the snap kept out of user space.",
            &["queue"],
        );
        let xdp_hello_follows = counter_vec(
            &r,
            XDP_HELLO_FOLLOWS,
            "TCP flows whose ClientHello spans several segments, which the XDP program kept whole until it was complete (started, completed).",
            &["event"],
        );
        let erase_latency = Histogram::with_opts(
            HistogramOpts::new(ERASE_LATENCY, "Time from taking a batch off the RX ring to its last frame being zeroed (per batch: the worst frame of the batch).")
                .buckets(vec![1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 1e-2, 1e-1]),
        )
        .expect("histogram definition is valid");
        r.register(Box::new(erase_latency.clone())).expect("unique");
        let batch_seconds = CounterVec::new(
            Opts::new(BATCH_SECONDS, "Seconds the queue's worker spent inside batches (taking frames off the RX ring to the last one erased): its busy time. Frames received over this is the worker's in-batch throughput; its rate near 1 means the worker is saturated."),
            &["queue"],
        )
        .expect("metric definition is valid");
        r.register(Box::new(batch_seconds.clone()))
            .expect("metric names are unique");
        let parse_errors = counter_vec(
            &r,
            PARSE_ERRORS,
            "Captured frames that failed parsing, by kind (they are erased like all others).",
            &["kind"],
        );
        let records_selected =
            IntCounter::new(RECORDS_SELECTED, "Mechanical records produced from selected flows.").expect("valid");
        r.register(Box::new(records_selected.clone())).expect("unique");
        let records_written =
            IntCounter::new(RECORDS_WRITTEN, "Mechanical records written to the JSON-lines sink.").expect("valid");
        r.register(Box::new(records_written.clone())).expect("unique");
        let records_dropped = counter_vec(&r, RECORDS_DROPPED, "Mechanical records lost, by reason.", &["reason"]);
        let flows_active =
            IntGauge::new(FLOWS_ACTIVE, "Selected flows currently held in the flow tables.").expect("valid");
        r.register(Box::new(flows_active.clone())).expect("unique");
        let fragments = counter_vec(
            &r,
            FRAGMENTS,
            "IP fragments by what became of them: first, attributed (to their first fragment's flow), out_of_order (came before their first, attributed when it came), orphaned (their first never came), overlap, tiny (RFC 1858), evicted (a datagram dropped from the full table).",
            &["kind"],
        );
        let flows_evicted = counter_vec(
            &r,
            FLOWS_EVICTED,
            "Flows ended early because the flow table was full, by reason.",
            &["reason"],
        );
        let idle_nap = GaugeVec::new(
            Opts::new(
                IDLE_NAP,
                "The nap a worker takes when its RX ring runs empty (adapts to the rate; at most idle_nap_us): also the longest a frame waits on the ring before it is read and erased.",
            ),
            &["queue"],
        )
        .expect("valid");
        r.register(Box::new(idle_nap.clone())).expect("unique");
        let xsk_rx_dropped = counter_vec(&r, XSK_RX_DROPPED, "Kernel AF_XDP statistic rx_dropped.", &["queue"]);
        let xsk_rx_invalid_descs = counter_vec(
            &r,
            XSK_RX_INVALID_DESCS,
            "Kernel AF_XDP statistic rx_invalid_descs.",
            &["queue"],
        );
        let xsk_rx_ring_full = counter_vec(
            &r,
            XSK_RX_RING_FULL,
            "Kernel AF_XDP statistic rx_ring_full: packets lost because the RX ring was full.",
            &["queue"],
        );
        let xsk_rx_fill_ring_empty = counter_vec(
            &r,
            XSK_RX_FILL_RING_EMPTY,
            "Kernel AF_XDP statistic rx_fill_ring_empty_descs.",
            &["queue"],
        );
        let reassembly_bytes = IntGaugeVec::new(
            Opts::new(
                REASSEMBLY_BYTES,
                "Bytes held by the queue's reassembly buffers (split TCP ClientHellos, QUIC CRYPTO data), updated every 250 ms.",
            ),
            &["queue"],
        )
        .expect("valid");
        r.register(Box::new(reassembly_bytes.clone())).expect("unique");
        let reassembly_budget = IntGaugeVec::new(
            Opts::new(
                REASSEMBLY_BUDGET,
                "The queue's reassembly budget ([flows] reassembly_budget_mib), bytes.",
            ),
            &["queue"],
        )
        .expect("valid");
        r.register(Box::new(reassembly_budget.clone())).expect("unique");
        let reassembly_refused = counter_vec(
            &r,
            REASSEMBLY_REFUSED,
            "Reassembly buffers refused (or not grown) because the queue's budget was spent: the flow is tracked without a fingerprint.",
            &["queue"],
        );
        let reassembly_timed_out = counter_vec(
            &r,
            REASSEMBLY_TIMED_OUT,
            "Reassemblies given up because the rest of the ClientHello did not come within 2 s: the buffer goes back to the budget, the flow goes on without a fingerprint.",
            &["queue"],
        );
        let measure_authorized = IntGaugeVec::new(
            Opts::new(
                MEASURE_AUTHORIZED,
                "1 while the measure's authorization window is open.",
            ),
            &["measure"],
        )
        .expect("valid");
        r.register(Box::new(measure_authorized.clone())).expect("unique");
        let measure_window_end = IntGaugeVec::new(
            Opts::new(
                MEASURE_WINDOW_END,
                "End of the measure's authorization window (not_after), Unix seconds; 0 when the measure is disabled.",
            ),
            &["measure"],
        )
        .expect("valid");
        r.register(Box::new(measure_window_end.clone())).expect("unique");
        let records_queue_depth = gauge(&r, RECORDS_QUEUE_DEPTH, "Records waiting in the record sink's queue.");
        let records_queue_capacity = gauge(
            &r,
            RECORDS_QUEUE_CAPACITY,
            "Capacity of the record sink's queue; beyond it records are dropped and counted.",
        );
        let class_map_write_failures = IntCounter::new(
            CLASS_MAP_WRITE_FAILURES,
            "Failed writes of the XDP class authorization map (retried every 200 ms; capture stops after 10 s of failures).",
        )
        .expect("valid");
        r.register(Box::new(class_map_write_failures.clone())).expect("unique");
        let clock_steps = IntCounter::new(
            CLOCK_STEPS,
            "Wall-clock steps: the wall clock moved against the monotonic clock by more than 2 s between two ticks.",
        )
        .expect("valid");
        r.register(Box::new(clock_steps.clone())).expect("unique");
        let clock_last_step = prometheus::Gauge::new(
            CLOCK_LAST_STEP,
            "Size of the last wall-clock step, seconds (negative: set back); 0 before any.",
        )
        .expect("valid");
        r.register(Box::new(clock_last_step.clone())).expect("unique");
        let measure_held = IntGaugeVec::new(
            Opts::new(
                MEASURE_HELD,
                "1 while the configuration calls the measure's window open but furui holds it closed, by reason (window_ended: its approval's window ended earlier; clock_step: it was closed when the clock stepped, until a reload).",
            ),
            &["measure", "reason"],
        )
        .expect("valid");
        r.register(Box::new(measure_held.clone())).expect("unique");
        let config_reloads = counter_vec(
            &r,
            CONFIG_RELOADS,
            "Configuration reloads, by result (ok, invalid, rejected, failed).",
            &["result"],
        );
        for res in ["ok", "invalid", "rejected", "failed"] {
            config_reloads.with_label_values(&[res]);
        }
        let taxii_pulls = counter_vec(
            &r,
            TAXII_PULLS,
            "TAXII 2.1 pulls, by feed and outcome (ok, failed).",
            &["feed", "outcome"],
        );
        let taxii_indicators = IntGaugeVec::new(
            Opts::new(
                TAXII_INDICATORS,
                "Indicators a TAXII feed's bundle holds after its last pull.",
            ),
            &["feed"],
        )
        .expect("valid");
        r.register(Box::new(taxii_indicators.clone())).expect("unique");
        let ruleset_version = IntGaugeVec::new(
            Opts::new(
                RULESET_VERSION,
                "1 for the ruleset version in force (label: the version string from the rules files).",
            ),
            &["version"],
        )
        .expect("valid");
        r.register(Box::new(ruleset_version.clone())).expect("unique");
        let rule_matches = counter_vec(
            &r,
            RULE_MATCHES,
            "Packets matched, by rule id (ids come from the rules files).",
            &["rule"],
        );
        let export_records = counter_vec(
            &r,
            EXPORT_RECORDS,
            "Records sent, by recipient (a configured name) and sink kind.",
            &["recipient", "sink"],
        );
        let export_dropped = counter_vec(
            &r,
            EXPORT_DROPPED,
            "Records not sent to a recipient, by reason (queue_full, spool_full, spool_error, no_key, buffer_full: pushed out of the API buffer unread).",
            &["recipient", "reason"],
        );
        let export_queue_depth = IntGaugeVec::new(
            Opts::new(EXPORT_QUEUE_DEPTH, "Records waiting in a recipient's queue."),
            &["recipient"],
        )
        .expect("valid");
        r.register(Box::new(export_queue_depth.clone())).expect("unique");
        let export_errors = counter_vec(
            &r,
            EXPORT_ERRORS,
            "Export errors, by recipient and kind (send, spool, keys).",
            &["recipient", "kind"],
        );
        let export_spool_bytes = IntGaugeVec::new(
            Opts::new(
                EXPORT_SPOOL_BYTES,
                "Bytes of views waiting on disk for an unreachable collector, by recipient and sink.",
            ),
            &["recipient", "sink"],
        )
        .expect("valid");
        r.register(Box::new(export_spool_bytes.clone())).expect("unique");
        let export_spooled = counter_vec(
            &r,
            EXPORT_SPOOLED,
            "Views written to a sink's spool because its collector was unreachable (or the spool was not yet empty).",
            &["recipient", "sink"],
        );
        let export_duplicates = counter_vec(
            &r,
            EXPORT_DUPLICATES,
            "Views sent again (from the spool, after a lost acknowledgement) that the collector already had and dropped by their message id, by recipient and sink.",
            &["recipient", "sink"],
        );
        let api_requests = counter_vec(
            &r,
            API_REQUESTS,
            "HTTPS API requests, by recipient (\"unknown\" for a certificate of no recipient) and status.",
            &["recipient", "status"],
        );
        let api_connections = gauge(&r, API_CONNECTIONS, "HTTPS API connections open.");
        let api_connections_refused = counter_vec(
            &r,
            API_CONNECTIONS_REFUSED,
            "HTTPS API connections refused at a cap or cut at a timeout, by reason (max_connections, max_per_address, handshake_timeout, header_timeout, idle_timeout).",
            &["reason"],
        );
        let export_queue_capacity = IntGaugeVec::new(
            Opts::new(
                EXPORT_QUEUE_CAPACITY,
                "Capacity of a recipient's queue; a full queue drops records for that recipient.",
            ),
            &["recipient"],
        )
        .expect("valid");
        r.register(Box::new(export_queue_capacity.clone())).expect("unique");
        let audit_entries = counter_vec(
            &r,
            AUDIT_ENTRIES,
            "Audit trail entries written, by kind (write_failed counts failures).",
            &["kind"],
        );
        let audit_checkpoint_time = gauge(
            &r,
            AUDIT_CHECKPOINT_TIME,
            "Time of the last signed audit checkpoint (Unix seconds); 0 before the first or without [audit].",
        );
        let audit_writable = gauge(
            &r,
            AUDIT_WRITABLE,
            "1 while the audit trail takes entries (or there is none); 0 while it cannot be written: exports and API reads pause.",
        );
        audit_writable.set(1);
        let export_paused = IntGaugeVec::new(
            prometheus::Opts::new(
                EXPORT_PAUSED,
                "1 while a recipient's exports wait for the audit trail to take their batch entry (views wait in its queue).",
            ),
            &["recipient"],
        )
        .expect("valid");
        r.register(Box::new(export_paused.clone())).expect("unique");
        let store_records = IntCounter::new(
            STORE_RECORDS,
            "Records committed (sealed, fsynced) to the retention store.",
        )
        .expect("valid");
        r.register(Box::new(store_records.clone())).expect("unique");
        let store_purged = IntCounter::new(
            STORE_PURGED,
            "Records purged from the retention store at their epoch's expiry (key destroyed).",
        )
        .expect("valid");
        r.register(Box::new(store_purged.clone())).expect("unique");
        let store_epochs = gauge(&r, STORE_EPOCHS, "Retention epochs held (each with its own data key).");
        let build = IntGaugeVec::new(Opts::new(BUILD_INFO, "Build information."), &["version"]).expect("valid");
        r.register(Box::new(build.clone())).expect("unique");
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);

        // Pre-create every bounded label so dashboards see zeros, not gaps.
        for c in Class::ALL {
            xdp_bytes.with_label_values(&[c.name()]);
            for a in Action::ALL {
                xdp_packets.with_label_values(&[c.name(), a.name()]);
            }
        }
        for e in Encap::ALL {
            for o in Outcome::ALL {
                xdp_encap_packets.with_label_values(&[e.name(), o.name()]);
            }
        }
        for e in ParseError::ALL {
            parse_errors.with_label_values(&[e.kind()]);
        }
        for e in ["started", "completed"] {
            xdp_hello_follows.with_label_values(&[e]);
        }
        for m in Measure::ALL {
            measure_authorized.with_label_values(&[m.name()]);
            measure_window_end.with_label_values(&[m.name()]);
        }
        for reason in ["sink_full", "sink_error", "store_error"] {
            records_dropped.with_label_values(&[reason]);
        }
        flows_evicted.with_label_values(&["table_full"]);
        for e in crate::flow::FragEvent::ALL {
            fragments.with_label_values(&[e.kind()]);
        }

        Metrics {
            registry: r,
            xdp_packets,
            xdp_bytes,
            xdp_encap_packets,
            frames_received,
            frames_erased,
            bytes_erased,
            frames_without_metadata,
            frames_truncated,
            batch_seconds,
            frame_bytes_seen,
            xdp_hello_follows,
            erase_latency,
            parse_errors,
            records_selected,
            records_written,
            records_dropped,
            flows_active,
            flows_evicted,
            fragments,
            reassembly_bytes,
            reassembly_budget,
            reassembly_refused,
            reassembly_timed_out,
            idle_nap,
            xsk_rx_dropped,
            xsk_rx_invalid_descs,
            xsk_rx_ring_full,
            xsk_rx_fill_ring_empty,
            measure_authorized,
            measure_window_end,
            records_queue_depth,
            records_queue_capacity,
            config_reloads,
            taxii_pulls,
            taxii_indicators,
            class_map_write_failures,
            clock_steps,
            clock_last_step,
            measure_held,
            ruleset_version,
            rule_matches,
            export_records,
            export_dropped,
            export_queue_depth,
            export_errors,
            export_spool_bytes,
            export_spooled,
            export_duplicates,
            api_requests,
            api_connections,
            api_connections_refused,
            export_queue_capacity,
            audit_entries,
            audit_checkpoint_time,
            audit_writable,
            export_paused,
            store_records,
            store_purged,
            store_epochs,
        }
    }

    /// Prometheus text exposition of everything registered.
    pub fn encode(&self) -> String {
        use prometheus::Encoder;
        let mut buf = Vec::new();
        let enc = prometheus::TextEncoder::new();
        if enc.encode(&self.registry.gather(), &mut buf).is_err() {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Raises a counter to an absolute value read elsewhere (kernel counters),
/// never lowering it.
pub fn raise_to(c: &IntCounter, value: u64) {
    let cur = c.get();
    if value > cur {
        c.inc_by(value - cur);
    }
}

/// Parses a Prometheus text exposition into (name{labels}, value) pairs —
/// used by `furui stats`, the demo and the tests.
pub fn parse_exposition(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_declared_name_is_registered() {
        let m = Metrics::new();
        let text = m.encode();
        for n in [
            names::XDP_PACKETS,
            names::XDP_BYTES,
            names::PARSE_ERRORS,
            names::RECORDS_SELECTED,
            names::FLOWS_ACTIVE,
            names::MEASURE_AUTHORIZED,
        ] {
            assert!(text.contains(n), "{n} missing");
        }
        let parsed = parse_exposition(&text);
        assert!(parsed
            .iter()
            .any(|(k, v)| k == "furui_xdp_packets_total{action=\"redirect\",class=\"transit\"}" && *v == 0.0));
    }

    #[test]
    fn raise_to_never_lowers() {
        let c = IntCounter::new("x_total", "x").unwrap();
        raise_to(&c, 5);
        raise_to(&c, 3);
        assert_eq!(c.get(), 5);
    }
}
