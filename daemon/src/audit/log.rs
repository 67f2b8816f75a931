//! The shared handle every part of the daemon writes audit entries
//! through: the supervisor (start, windows, reloads, checkpoints, stop),
//! the exporters (every batch), the API (every read) and the retention
//! store (every epoch opened and purged). One trail, one lock: entries are
//! appended and fsynced one at a time, in the order they happen.
//!
//! A write failure (a full disk, an I/O error) is logged and counted
//! (`furui_audit_entries_total{kind="write_failed"}`), leaves no partial
//! line (what is on disk stays verifiable) and sets
//! `furui_audit_trail_writable` to 0. `record` says whether the entry was
//! written, so that what must not happen unaudited (an export batch, an
//! API read) waits or is refused: the trail fails closed. Capture and
//! erasure go on. The first entry written after a failure is preceded by
//! an `audit_gap` entry counting the entries lost, by kind.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use time::OffsetDateTime;

use super::Trail;
use crate::telemetry::Metrics;

/// The trail, and the entries lost since it last took one.
struct State {
    trail: Trail,
    lost: BTreeMap<String, u64>,
    lost_since: Option<OffsetDateTime>,
}

#[derive(Clone)]
pub struct AuditLog {
    trail: Option<Arc<Mutex<State>>>,
    metrics: Metrics,
    /// The newest signed entry (the witness recipients may keep).
    latest_signed: Arc<Mutex<Option<String>>>,
    /// False while the last entry tried could not be written.
    writable: Arc<AtomicBool>,
}

impl AuditLog {
    pub fn new(trail: Option<Trail>, metrics: &Metrics) -> AuditLog {
        AuditLog {
            trail: trail.map(|trail| {
                Arc::new(Mutex::new(State {
                    trail,
                    lost: BTreeMap::new(),
                    lost_since: None,
                }))
            }),
            metrics: metrics.clone(),
            latest_signed: Arc::default(),
            writable: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Without a trail (no `[audit]`): every entry is a no-op.
    pub fn disabled(metrics: &Metrics) -> AuditLog {
        AuditLog::new(None, metrics)
    }

    pub fn is_enabled(&self) -> bool {
        self.trail.is_some()
    }

    /// Appends one entry (signed if `sign`). True if it was written (or
    /// there is no trail); false if the trail could not take it.
    pub fn record(&self, kind: &str, data: Value, sign: bool) -> bool {
        let Some(t) = &self.trail else { return true };
        let result = match t.lock() {
            Ok(mut st) => Self::append(&mut st, kind, data, sign),
            Err(_) => Err(super::AuditError::Bad("audit trail lock poisoned".into())),
        };
        match result {
            Ok(line) => {
                self.metrics.audit_entries.with_label_values(&[kind]).inc();
                self.metrics.audit_writable.set(1);
                self.writable.store(true, Ordering::Relaxed);
                if sign {
                    self.metrics
                        .audit_checkpoint_time
                        .set(OffsetDateTime::now_utc().unix_timestamp());
                    if let Ok(mut l) = self.latest_signed.lock() {
                        *l = Some(line.trim_end().to_string());
                    }
                }
                true
            }
            Err(e) => {
                self.metrics.audit_entries.with_label_values(&["write_failed"]).inc();
                if self.writable.swap(false, Ordering::Relaxed) {
                    tracing::error!(error = %e, kind, "writing the audit trail failed; exports and API reads pause until it can be written");
                }
                self.metrics.audit_writable.set(0);
                false
            }
        }
    }

    /// Writes the gap entry owed (if entries were lost), then the entry.
    fn append(st: &mut State, kind: &str, data: Value, sign: bool) -> Result<String, super::AuditError> {
        if !st.lost.is_empty() {
            let since = st.lost_since.map(super::rfc3339);
            let gap = serde_json::json!({ "lost": st.lost, "since": since });
            if let Err(e) = st.trail.append("audit_gap", gap, false) {
                *st.lost.entry(kind.to_string()).or_default() += 1;
                return Err(e);
            }
            tracing::warn!(
                "the audit trail is written again; the entries lost meanwhile are counted in an audit_gap entry"
            );
            st.lost.clear();
            st.lost_since = None;
        }
        st.trail.append(kind, data, sign).inspect_err(|_| {
            *st.lost.entry(kind.to_string()).or_default() += 1;
            st.lost_since.get_or_insert_with(OffsetDateTime::now_utc);
        })
    }

    /// False while the trail cannot be written (the last entry tried
    /// failed): what must not happen unaudited waits.
    pub fn writable(&self) -> bool {
        self.writable.load(Ordering::Relaxed)
    }

    /// The trail file, to serve it read-only (oversight API).
    pub fn trail_path(&self) -> Option<std::path::PathBuf> {
        let t = self.trail.as_ref()?.lock().ok()?;
        Some(t.trail.path().to_path_buf())
    }

    /// The newest signed checkpoint line, if any was written by this run.
    pub fn latest_signed(&self) -> Option<String> {
        self.latest_signed.lock().ok().and_then(|l| l.clone())
    }
}
