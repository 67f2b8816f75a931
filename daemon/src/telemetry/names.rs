//! Every metric name furui exports, in one place (Vector style). Units are
//! in the names, counters end in `_total`, labels are few and bounded —
//! never an address, a port or anything read from a packet.

pub const XDP_PACKETS: &str = "furui_xdp_packets_total";
pub const XDP_BYTES: &str = "furui_xdp_bytes_total";
pub const XDP_ENCAP_PACKETS: &str = "furui_xdp_encap_packets_total";
pub const FRAMES_RECEIVED: &str = "furui_frames_received_total";
pub const FRAMES_ERASED: &str = "furui_frames_erased_total";
pub const BYTES_ERASED: &str = "furui_bytes_erased_total";
pub const FRAMES_WITHOUT_METADATA: &str = "furui_frames_without_metadata_total";
pub const ERASE_LATENCY: &str = "furui_erase_latency_seconds";
pub const PARSE_ERRORS: &str = "furui_parse_errors_total";
pub const RECORDS_SELECTED: &str = "furui_records_selected_total";
pub const RECORDS_WRITTEN: &str = "furui_records_written_total";
pub const RECORDS_DROPPED: &str = "furui_records_dropped_total";
pub const FLOWS_ACTIVE: &str = "furui_flows_active";
pub const FLOWS_EVICTED: &str = "furui_flows_evicted_total";
pub const FRAGMENTS: &str = "furui_fragments_total";
pub const IDLE_NAP: &str = "furui_idle_nap_seconds";
pub const XSK_RX_DROPPED: &str = "furui_xsk_rx_dropped_total";
pub const XSK_RX_INVALID_DESCS: &str = "furui_xsk_rx_invalid_descs_total";
pub const XSK_RX_RING_FULL: &str = "furui_xsk_rx_ring_full_total";
pub const XSK_RX_FILL_RING_EMPTY: &str = "furui_xsk_rx_fill_ring_empty_descs_total";
pub const MEASURE_AUTHORIZED: &str = "furui_measure_authorized";
pub const MEASURE_WINDOW_END: &str = "furui_measure_window_end_timestamp_seconds";
pub const RECORDS_QUEUE_DEPTH: &str = "furui_records_queue_depth";
pub const RECORDS_QUEUE_CAPACITY: &str = "furui_records_queue_capacity";
pub const BUILD_INFO: &str = "furui_build_info";
pub const CONFIG_RELOADS: &str = "furui_config_reloads_total";
pub const CLASS_MAP_WRITE_FAILURES: &str = "furui_class_map_write_failures_total";
pub const RULESET_VERSION: &str = "furui_ruleset_version";
pub const RULE_MATCHES: &str = "furui_rule_matches_total";
pub const EXPORT_RECORDS: &str = "furui_export_records_total";
pub const EXPORT_DROPPED: &str = "furui_export_dropped_total";
pub const EXPORT_QUEUE_DEPTH: &str = "furui_export_queue_depth";
pub const EXPORT_ERRORS: &str = "furui_export_errors_total";
pub const EXPORT_SPOOL_BYTES: &str = "furui_export_spool_bytes";
pub const EXPORT_SPOOLED: &str = "furui_export_spooled_total";
pub const API_REQUESTS: &str = "furui_api_requests_total";
pub const EXPORT_QUEUE_CAPACITY: &str = "furui_export_queue_capacity";
pub const AUDIT_ENTRIES: &str = "furui_audit_entries_total";
pub const AUDIT_CHECKPOINT_TIME: &str = "furui_audit_checkpoint_timestamp_seconds";
pub const STORE_RECORDS: &str = "furui_store_records_total";
pub const STORE_PURGED: &str = "furui_store_purged_records_total";
pub const STORE_EPOCHS: &str = "furui_store_epochs";
