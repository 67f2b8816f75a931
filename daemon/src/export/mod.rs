//! Stage 7: export. Each configured recipient has its own bounded queue and
//! thread, so a slow or dead recipient never slows capture or another
//! recipient: a full queue drops the record and counts it. The thread
//! projects each record through every grant that covers it (granted fields
//! only, addresses de-identified) and hands the view to the recipient's
//! sinks.
//!
//! Invariant kept: what leaves for a recipient is a `View` built from its
//! grant — never the record itself, never a field outside the grant.

pub mod ipfix;
pub mod project;
pub mod udp;

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use time::OffsetDateTime;

use crate::config::export::{Export, Recipient, SinkKind};
use crate::deid::{KeyError, KeyStore};
use crate::flow::MechanicalRecord;
use crate::select::SharedSelection;
use crate::telemetry::Metrics;

/// A sink of one recipient: takes views, sends them somewhere.
pub trait Sink: Send {
    /// Label value for metrics (`ipfix-udp`, …).
    fn kind(&self) -> &'static str;
    /// Sends one view projected under grant number `grant`.
    fn send(&mut self, grant: usize, view: &project::View) -> std::io::Result<()>;
}

/// The producer side, cloned into every capture worker's record path.
#[derive(Clone, Default)]
pub struct ExportTx {
    queues: Vec<(Arc<str>, Sender<Arc<MechanicalRecord>>)>,
    metrics: Option<Metrics>,
}

impl ExportTx {
    /// Queues `r` for every recipient; a full queue drops it for that
    /// recipient only, and counts it.
    pub fn send(&self, r: &Arc<MechanicalRecord>) {
        let Some(m) = &self.metrics else { return };
        for (name, q) in &self.queues {
            match q.try_send(r.clone()) {
                Ok(()) => m.export_queue_depth.with_label_values(&[name]).set(q.len() as i64),
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                    m.export_dropped.with_label_values(&[name, "queue_full"]).inc();
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }
}

/// The recipients' threads; they end when every `ExportTx` is dropped,
/// after sending what is queued.
pub struct Exporters {
    handles: Vec<JoinHandle<()>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportStartError {
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("cannot open sink {kind} for recipient `{recipient}`")]
    Sink {
        recipient: String,
        kind: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the export thread")]
    Thread(#[source] std::io::Error),
}

fn open_sink(r: &Recipient, s: &SinkKind) -> Result<Box<dyn Sink>, ExportStartError> {
    match s {
        SinkKind::IpfixUdp {
            to,
            template_refresh_secs,
        } => udp::IpfixUdp::open(*to, r, *template_refresh_secs)
            .map(|x| Box::new(x) as Box<dyn Sink>)
            .map_err(|source| ExportStartError::Sink {
                recipient: r.name.clone(),
                kind: "ipfix-udp",
                source,
            }),
    }
}

impl Exporters {
    /// Opens the key store and every recipient's sinks, and starts one
    /// thread per recipient. `selection` supplies the domestic prefixes
    /// (always pseudonymized), as reloaded.
    pub fn start(
        cfg: &Export,
        selection: SharedSelection,
        metrics: &Metrics,
    ) -> Result<(Exporters, ExportTx), ExportStartError> {
        let mut tx = ExportTx {
            queues: Vec::new(),
            metrics: Some(metrics.clone()),
        };
        let mut handles = Vec::new();
        if cfg.recipients.is_empty() {
            return Ok((Exporters { handles }, tx));
        }
        let keys = Arc::new(Mutex::new(KeyStore::open(
            &cfg.deid.key_dir,
            cfg.deid.epoch,
            cfg.deid.keep_epochs,
        )?));
        // Fail at start, not on the first record, if the key store is unusable.
        keys.lock()
            .map_err(|_| ExportStartError::Thread(std::io::Error::other("key store")))?
            .at(OffsetDateTime::now_utc())?;
        for r in &cfg.recipients {
            let sinks = r.sinks.iter().map(|s| open_sink(r, s)).collect::<Result<Vec<_>, _>>()?;
            let (q_tx, q_rx) = bounded(r.queue_capacity);
            let name: Arc<str> = Arc::from(r.name.as_str());
            for reason in ["queue_full", "send_failed"] {
                metrics.export_dropped.with_label_values(&[&name, reason]);
            }
            for s in &sinks {
                metrics.export_records.with_label_values(&[&name, s.kind()]);
            }
            tx.queues.push((name.clone(), q_tx));
            let (r, keys, sel, m) = (r.clone(), keys.clone(), selection.clone(), metrics.clone());
            let h = std::thread::Builder::new()
                .name(format!("furui-x-{}", r.name))
                .spawn(move || recipient_loop(&r, sinks, q_rx, &keys, &sel, &m))
                .map_err(ExportStartError::Thread)?;
            handles.push(h);
        }
        Ok((Exporters { handles }, tx))
    }

    /// Waits for every recipient's thread to send what is queued and exit
    /// (all `ExportTx` must be gone).
    pub fn join(self) {
        for h in self.handles {
            let _ = h.join();
        }
    }
}

fn recipient_loop(
    r: &Recipient,
    mut sinks: Vec<Box<dyn Sink>>,
    rx: Receiver<Arc<MechanicalRecord>>,
    keys: &Mutex<KeyStore>,
    selection: &SharedSelection,
    m: &Metrics,
) {
    let name = r.name.as_str();
    let depth = m.export_queue_depth.with_label_values(&[name]);
    for rec in rx.iter() {
        depth.set(rx.len() as i64);
        let Some(measure) = rec.class.measure() else { continue };
        let now = OffsetDateTime::now_utc();
        let key = match keys.lock().map_err(|_| ()).and_then(|mut k| k.at(now).map_err(|_| ())) {
            Ok(k) => k,
            Err(()) => {
                // Without a key nothing may leave: count and drop.
                m.export_errors.with_label_values(&[name, "keys"]).inc();
                m.export_dropped.with_label_values(&[name, "no_key"]).inc();
                continue;
            }
        };
        let domestic = selection.load();
        // A record no grant covers is simply not this recipient's.
        for (i, g) in r.grants.iter().enumerate() {
            if !g.covers(measure, now) {
                continue;
            }
            let view = project::project(&rec, g, &key, &domestic.domestic);
            for s in sinks.iter_mut() {
                match s.send(i, &view) {
                    Ok(()) => m.export_records.with_label_values(&[name, s.kind()]).inc(),
                    Err(e) => {
                        m.export_errors.with_label_values(&[name, "send"]).inc();
                        m.export_dropped.with_label_values(&[name, "send_failed"]).inc();
                        tracing::debug!(recipient = name, sink = s.kind(), error = %e, "export send failed");
                    }
                }
            }
        }
    }
    depth.set(0);
}
