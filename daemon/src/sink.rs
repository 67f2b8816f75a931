//! Stage 7 (issue 2 form): the JSON-lines record sink. Records arrive over
//! a bounded queue; a full queue drops the record and counts it, so a
//! slow disk never stalls capture.
//!
//! Invariant kept: every record is written or counted as dropped with a
//! reason (`furui_records_dropped_total{reason}`).

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

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
        Self::start_on(open_file(path)?, path, capacity, metrics)
    }

    /// The same, on a file opened earlier with [`open_file`] (the daemon
    /// opens it before attaching, and starts the writer thread once it
    /// has dropped its capabilities).
    pub fn start_on(
        file: File,
        path: &Path,
        capacity: usize,
        metrics: Metrics,
    ) -> Result<(JsonLinesSink, RecordTx), SinkOpenError> {
        let (tx, rx) = bounded(capacity);
        metrics.records_queue_capacity.set(capacity as i64);
        let m = metrics.clone();
        let handle = std::thread::Builder::new()
            .name("furui-sink".into())
            .spawn(move || write_loop(BufWriter::new(file), rx, m))
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

fn write_loop(mut w: BufWriter<File>, rx: Receiver<Arc<MechanicalRecord>>, m: Metrics) {
    let mut failing = false;
    loop {
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(r) => {
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
