//! Stage 7: the JSON-lines record sink. Records arrive over
//! a bounded queue; a full queue drops the record and counts it, so a
//! slow disk never stalls capture.
//!
//! With `[retention]`, each batch is first sealed and committed to the
//! retention store (`store`), and only then written: the records file lists
//! only what the store holds. The same thread runs the store's purges.
//!
//! Invariant kept: every record is written or counted as dropped with a
//! reason (`furui_records_dropped_total{reason}`).

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::json;
use time::OffsetDateTime;

use crate::audit::{rfc3339, AuditLog};
use crate::store::Store;

use std::sync::Arc;

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};

use crate::flow::MechanicalRecord;
use crate::telemetry::Metrics;

#[derive(Debug, thiserror::Error)]
#[error("cannot open the record sink {path}; check that its directory exists and is writable by furui")]
pub struct SinkOpenError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// The sending half, cloned into each worker.
#[derive(Clone)]
pub struct RecordTx {
    tx: Sender<Arc<MechanicalRecord>>,
    metrics: Metrics,
    export: crate::export::ExportTx,
}

impl RecordTx {
    /// The same, also handing every record to the recipients' exporters.
    pub fn with_exports(mut self, export: crate::export::ExportTx) -> RecordTx {
        self.export = export;
        self
    }

    /// Queues a record; a full queue drops it and counts the drop.
    pub fn send(&self, r: MechanicalRecord) {
        self.metrics.records_selected.inc();
        let r = Arc::new(r);
        if !self.export.is_empty() {
            self.export.send(&r);
        }
        match self.tx.try_send(r) {
            Ok(()) => self.metrics.records_queue_depth.set(self.tx.len() as i64),
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.metrics.records_dropped.with_label_values(&["sink_full"]).inc();
            }
        }
    }
}

pub struct JsonLinesSink {
    handle: Option<JoinHandle<()>>,
}

pub fn open_file(path: &Path) -> Result<File, SinkOpenError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| SinkOpenError {
            path: path.to_path_buf(),
            source,
        })
}

impl JsonLinesSink {
    /// Starts the writer thread. The sink ends when every `RecordTx` is
    /// dropped, after writing what is queued.
    pub fn start(path: &Path, capacity: usize, metrics: Metrics) -> Result<(JsonLinesSink, RecordTx), SinkOpenError> {
        Self::start_on(open_file(path)?, path, capacity, metrics, None)
    }

    /// The same, on a file opened earlier with [`open_file`] (the daemon
    /// opens it before attaching, and starts the writer thread once it
    /// has dropped its capabilities).
    pub fn start_on(
        file: File,
        path: &Path,
        capacity: usize,
        metrics: Metrics,
        retain: Option<Retain>,
    ) -> Result<(JsonLinesSink, RecordTx), SinkOpenError> {
        let (tx, rx) = bounded(capacity);
        metrics.records_queue_capacity.set(capacity as i64);
        let m = metrics.clone();
        let handle = std::thread::Builder::new()
            .name("furui-sink".into())
            .spawn(move || write_loop(BufWriter::new(file), rx, m, retain))
            .map_err(|source| SinkOpenError {
                path: path.to_path_buf(),
                source,
            })?;
        Ok((
            JsonLinesSink { handle: Some(handle) },
            RecordTx {
                tx,
                metrics,
                export: Default::default(),
            },
        ))
    }

    /// Waits for the writer to flush and exit (all senders must be gone).
    pub fn join(mut self) {
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The retention store and the trail its epochs and purges are recorded in.
pub struct Retain {
    pub store: Store,
    pub audit: AuditLog,
}

/// Records written per store commit at most.
const BATCH: usize = 256;

impl Retain {
    /// Commits a batch; the records that could not be stored are counted
    /// as dropped (they are not written to the records file either: the
    /// file lists only what the store holds).
    fn put(&mut self, batch: &[Arc<MechanicalRecord>], m: &Metrics) -> bool {
        let audit = &self.audit;
        let result = self.store.put(batch, OffsetDateTime::now_utc(), |o| {
            audit.record(
                "retention_open",
                json!({ "epoch": o.epoch, "measure": o.measure.name(), "expires": rfc3339(o.expires) }),
                false,
            );
        });
        match result {
            Ok(_) => {
                m.store_records.inc_by(batch.len() as u64);
                true
            }
            Err(e) => {
                m.records_dropped
                    .with_label_values(&["store_error"])
                    .inc_by(batch.len() as u64);
                tracing::error!(error = %e, records = batch.len(), "storing records failed; they are dropped and counted");
                false
            }
        }
    }

    /// Purges what is due, recording each purge.
    fn purge(&mut self, m: &Metrics) {
        match self.store.purge_due(OffsetDateTime::now_utc()) {
            Ok(purged) => {
                for p in purged {
                    m.store_purged.inc_by(p.records);
                    tracing::info!(epoch = %p.epoch, records = p.records, "retention epoch purged; its key is destroyed");
                    self.audit.record(
                        "purge",
                        json!({ "epoch": p.epoch, "records": p.records, "expires": rfc3339(p.expires), "key_destroyed": true }),
                        false,
                    );
                }
            }
            Err(e) => tracing::error!(error = %e, "purging expired retention epochs failed; retrying"),
        }
        if let Ok(e) = self.store.epochs() {
            m.store_epochs.set(e.len() as i64);
        }
    }
}

fn write_loop(mut w: BufWriter<File>, rx: Receiver<Arc<MechanicalRecord>>, m: Metrics, mut retain: Option<Retain>) {
    let mut failing = false;
    let mut batch = Vec::with_capacity(BATCH);
    let mut last_purge = Instant::now() - Duration::from_secs(60);
    loop {
        if last_purge.elapsed() >= PURGE_EVERY {
            if let Some(r) = retain.as_mut() {
                r.purge(&m);
            }
            last_purge = Instant::now();
        }
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(first) => {
                batch.push(first);
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(r) => batch.push(r),
                        Err(_) => break,
                    }
                }
                let stored = retain.as_mut().is_none_or(|r| r.put(&batch, &m));
                for r in batch.drain(..).filter(|_| stored) {
                    let ok = serde_json::to_writer(&mut w, &*r).is_ok() && w.write_all(b"\n").is_ok();
                    if ok {
                        m.records_written.inc();
                        failing = false;
                    } else {
                        m.records_dropped.with_label_values(&["sink_error"]).inc();
                        if !failing {
                            tracing::error!("writing to the record sink failed; records are being dropped and counted");
                            failing = true;
                        }
                    }
                }
                batch.clear();
                m.records_queue_depth.set(rx.len() as i64);
                if rx.is_empty() {
                    let _ = w.flush();
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                let _ = w.flush();
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    let _ = w.flush();
}

/// How often expired retention epochs are looked for.
const PURGE_EVERY: Duration = Duration::from_secs(1);
