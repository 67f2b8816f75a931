//! The shared handle every part of the daemon writes audit entries
//! through: the supervisor (start, windows, reloads, checkpoints, stop),
//! the exporters (every batch), the API (every read) and the retention
//! store (every epoch opened and purged). One trail, one lock: entries are
//! appended and fsynced one at a time, in the order they happen.
//!
//! A write failure is logged and counted (`furui_audit_entries_total{kind=
//! "write_failed"}`), never fatal: what is on disk stays verifiable.

use std::sync::{Arc, Mutex};

use serde_json::Value;
use time::OffsetDateTime;

use super::Trail;
use crate::telemetry::Metrics;

#[derive(Clone)]
pub struct AuditLog {
    trail: Option<Arc<Mutex<Trail>>>,
    metrics: Metrics,
    /// The newest signed entry (the witness recipients may keep).
    latest_signed: Arc<Mutex<Option<String>>>,
}

impl AuditLog {
    pub fn new(trail: Option<Trail>, metrics: &Metrics) -> AuditLog {
        AuditLog {
            trail: trail.map(|t| Arc::new(Mutex::new(t))),
            metrics: metrics.clone(),
            latest_signed: Arc::default(),
        }
    }

    /// Without a trail (no `[audit]`): every entry is a no-op.
    pub fn disabled(metrics: &Metrics) -> AuditLog {
        AuditLog::new(None, metrics)
    }

    pub fn is_enabled(&self) -> bool {
        self.trail.is_some()
    }

    /// Appends one entry (signed if `sign`).
    pub fn record(&self, kind: &str, data: Value, sign: bool) {
        let Some(t) = &self.trail else { return };
        let result = match t.lock() {
            Ok(mut t) => t.append(kind, data, sign),
            Err(_) => Err(super::AuditError::Bad("audit trail lock poisoned".into())),
        };
        match result {
            Ok(line) => {
                self.metrics.audit_entries.with_label_values(&[kind]).inc();
                if sign {
                    self.metrics
                        .audit_checkpoint_time
                        .set(OffsetDateTime::now_utc().unix_timestamp());
                    if let Ok(mut l) = self.latest_signed.lock() {
                        *l = Some(line.trim_end().to_string());
                    }
                }
            }
            Err(e) => {
                self.metrics.audit_entries.with_label_values(&["write_failed"]).inc();
                tracing::error!(error = %e, kind, "writing the audit trail failed");
            }
        }
    }

    /// The trail file, to serve it read-only (oversight API).
    pub fn trail_path(&self) -> Option<std::path::PathBuf> {
        let t = self.trail.as_ref()?.lock().ok()?;
        Some(t.path().to_path_buf())
    }

    /// The newest signed checkpoint line, if any was written by this run.
    pub fn latest_signed(&self) -> Option<String> {
        self.latest_signed.lock().ok().and_then(|l| l.clone())
    }
}
