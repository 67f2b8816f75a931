//! Not the product (`testkit`): what each fuzz target checks, one file
//! per target. `fuzz/fuzz_targets/*` hand libFuzzer's inputs to these,
//! and `tests/fuzz_regressions.rs` replays every input kept under
//! `fuzz/regressions/<target>/` (each once crashed a target) through the
//! same checks, so `make test` fails if one comes back.

pub mod parse_frame;
pub mod pipeline_sequence;
pub mod capture_file;
pub mod spool_file;
pub mod audit_trail;
pub mod config_files;
pub mod feed_files;
pub mod api_query;
pub mod control_line;

/// The check of target `name`, if there is one.
pub fn check(name: &str) -> Option<fn(&[u8])> {
    Some(match name {
        "parse_frame" => parse_frame::check,
        "pipeline_sequence" => pipeline_sequence::check,
        "capture_file" => capture_file::check,
        "spool_file" => spool_file::check,
        "audit_trail" => audit_trail::check,
        "config_files" => config_files::check,
        "feed_files" => feed_files::check,
        "api_query" => api_query::check,
        "control_line" => control_line::check,
        _ => return None,
    })
}
