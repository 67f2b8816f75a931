//! Stage 7: the JSON-lines record sink. Records arrive over
//! a bounded queue; a full queue drops the record and counts it, so a
//! slow disk never stalls capture.
//!
//! Without `[retention]`, each batch is appended to the records file as
//! JSON lines and fsynced before it counts as written. With `[retention]`,
//! each batch is sealed and committed to the retention store (`store`)
//! instead, and no plaintext file is written at all: nothing readable
//! outlives an epoch's purge. The same thread runs the store's purges.
//!
//! Invariant kept: every record is written or counted as dropped with a
//! reason (`furui_records_dropped_total{reason}`).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
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
        Self::start_on(Some(open_file(path)?), path, capacity, metrics, None)
    }

    /// The same, on a file opened earlier with [`open_file`] (the daemon
    /// opens it before attaching, and starts the writer thread once it
    /// has dropped its capabilities). With `retain`, records go to the
    /// sealed store only and `file` is not used (pass None): no plaintext
    /// copy outlives the store's purge.
    pub fn start_on(
        file: Option<File>,
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
            .spawn(move || write_loop(file, rx, m, retain))
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

/// Where records are written: the JSON-lines file, or (with
/// `[retention]`) the sealed store only.
enum Out {
    Plain(File),
    Sealed(Box<Retain>),
}

fn write_loop(file: Option<File>, rx: Receiver<Arc<MechanicalRecord>>, m: Metrics, retain: Option<Retain>) {
    let mut out = match (retain, file) {
        (Some(r), _) => Out::Sealed(Box::new(r)),
        (None, Some(f)) => Out::Plain(f),
        (None, None) => return,
    };
    let mut failing = false;
    let mut batch = Vec::with_capacity(BATCH);
    let mut buf = Vec::with_capacity(BATCH * 512);
    let mut last_purge = Instant::now() - Duration::from_secs(60);
    loop {
        if last_purge.elapsed() >= PURGE_EVERY {
            if let Out::Sealed(r) = &mut out {
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
                let n = batch.len() as u64;
                let written = match &mut out {
                    // Committed (and fsynced) to the store: written.
                    Out::Sealed(r) => r.put(&batch, &m),
                    Out::Plain(f) => match append_batch(f, &batch, &mut buf) {
                        Ok(()) => true,
                        Err(e) => {
                            m.records_dropped.with_label_values(&["sink_error"]).inc_by(n);
                            if !failing {
                                tracing::error!(error = %e, "writing to the record sink failed; records are being dropped and counted");
                            }
                            false
                        }
                    },
                };
                if written {
                    m.records_written.inc_by(n);
                    if failing {
                        tracing::info!("the record sink is written again");
                    }
                }
                failing = !written;
                batch.clear();
                m.records_queue_depth.set(rx.len() as i64);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
}

/// Appends a batch of records as JSON lines: written and fsynced whole,
/// or — if any step fails (a full disk, an I/O error) — cut back to where
/// the file was, so no partial line is left and none counts as written.
fn append_batch(f: &mut File, batch: &[Arc<MechanicalRecord>], buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    for r in batch {
        serde_json::to_writer(&mut *buf, &**r).map_err(io::Error::other)?;
        buf.push(b'\n');
    }
    let before = f.metadata()?.len();
    let done = f.write_all(buf).and_then(|_| f.sync_data());
    if done.is_err() {
        let _ = f.set_len(before);
    }
    done
}

/// How often expired retention epochs are looked for.
const PURGE_EVERY: Duration = Duration::from_secs(1);
