//! Stage 8 (records, first branch): export. Each configured recipient has its own bounded queue and
//! thread, so a slow or dead recipient never slows capture or another
//! recipient: a full queue drops the record and counts it. The thread
//! projects each record through every grant that covers it (granted fields
//! only, addresses de-identified) and hands the view to the recipient's
//! sinks.
//!
//! Invariant kept: what leaves for a recipient is a `View` built from its
//! grant — never the record itself, never a field outside the grant.

pub mod aggregate;
pub mod api;
pub mod https;
pub mod ipfix;
pub mod nats;
pub mod project;
pub mod spool;
pub mod tcp;
pub mod udp;

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use time::OffsetDateTime;

use crate::audit::AuditLog;
use crate::config::export::Export;
use crate::config::recipients::Recipient;
use crate::config::sinks::SinkKind;
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
    /// Whether the sink carries Art. 29 aggregate rows (JSON sinks do;
    /// IPFIX templates describe records only).
    fn takes_rows(&self) -> bool {
        false
    }
    /// Pushes a signed audit checkpoint (a witness); `false` if this kind
    /// of sink cannot carry one.
    fn witness(&mut self, _checkpoint: &str) -> std::io::Result<bool> {
        Ok(false)
    }
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
    /// Every recipient by certificate identity, for the HTTPS API.
    pub api_clients: std::collections::HashMap<[u8; 32], https::Client>,
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
    #[error(transparent)]
    Api(#[from] https::ApiError),
    #[error("cannot start the export thread")]
    Thread(#[source] std::io::Error),
}

fn open_sink(
    r: &Recipient,
    s: &SinkKind,
    ring: &Arc<api::Ring>,
    m: &Metrics,
) -> Result<Box<dyn Sink>, ExportStartError> {
    match s {
        SinkKind::Api => Ok(Box::new(api::ApiSink {
            ring: ring.clone(),
            evicted: Some(m.export_dropped.with_label_values(&[&r.name, "buffer_full"])),
        })),
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
        SinkKind::IpfixTcp { to } => Ok(Box::new(tcp::IpfixTcp::open(*to, r, None))),
        SinkKind::IpfixTls {
            to,
            server_ca,
            server_name,
            client_cert,
            client_key,
        } => {
            let tls = https::tls_client(server_ca, server_name, client_cert, client_key)?;
            Ok(Box::new(tcp::IpfixTcp::open(*to, r, Some(tls))))
        }
        SinkKind::Nats {
            address,
            stream,
            subject,
        } => nats::NatsJetStream::open(address, stream, subject)
            .map(|x| Box::new(x) as Box<dyn Sink>)
            .map_err(|source| ExportStartError::Sink {
                recipient: r.name.clone(),
                kind: "nats",
                source,
            }),
    }
}

/// A sink with its spool: views go to the collector, or — while it is
/// unreachable, and until the spool is empty again — to the spool, so
/// order is kept.
struct Outlet {
    sink: Box<dyn Sink>,
    spool: spool::Spool,
}

impl Outlet {
    /// Sends what waits in the spool, oldest first, while the collector
    /// takes it.
    fn drain(&mut self, name: &str, m: &Metrics) {
        if self.spool.is_empty() {
            return;
        }
        let sink = &mut self.sink;
        let kind = sink.kind();
        match self.spool.drain(|g, v| sink.send(g, v)) {
            Ok(n) => {
                if n > 0 {
                    m.export_records.with_label_values(&[name, kind]).inc_by(n);
                    tracing::info!(recipient = name, sink = kind, records = n, "spooled records sent");
                }
            }
            Err(e) => {
                m.export_errors.with_label_values(&[name, "spool"]).inc();
                tracing::error!(recipient = name, sink = kind, error = %e, "reading the spool failed");
            }
        }
        m.export_spool_bytes
            .with_label_values(&[name, kind])
            .set(self.spool.bytes() as i64);
    }

    fn deliver(&mut self, grant: usize, view: &project::View, name: &str, m: &Metrics) {
        self.drain(name, m);
        let kind = self.sink.kind();
        if self.spool.is_empty() {
            match self.sink.send(grant, view) {
                Ok(()) => {
                    m.export_records.with_label_values(&[name, kind]).inc();
                    return;
                }
                Err(e) => {
                    m.export_errors.with_label_values(&[name, "send"]).inc();
                    tracing::debug!(recipient = name, sink = kind, error = %e, "export send failed; spooling");
                }
            }
        }
        match self.spool.push(grant, view) {
            Ok(()) => m.export_spooled.with_label_values(&[name, kind]).inc(),
            Err(spool::SpoolError::Full) => m.export_dropped.with_label_values(&[name, "spool_full"]).inc(),
            Err(e) => {
                m.export_dropped.with_label_values(&[name, "spool_error"]).inc();
                tracing::error!(recipient = name, sink = kind, error = %e, "spooling failed; record dropped");
            }
        }
        m.export_spool_bytes
            .with_label_values(&[name, kind])
            .set(self.spool.bytes() as i64);
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
        audit: &AuditLog,
    ) -> Result<(Exporters, ExportTx), ExportStartError> {
        let mut tx = ExportTx {
            queues: Vec::new(),
            metrics: Some(metrics.clone()),
        };
        let mut handles = Vec::new();
        let mut api_clients = std::collections::HashMap::new();
        if cfg.recipients.is_empty() {
            return Ok((Exporters { handles, api_clients }, tx));
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
            let has_api = r.sinks.contains(&SinkKind::Api);
            let ring = api::Ring::new(cfg.api.as_ref().map_or(1, |a| a.buffer));
            api_clients.insert(
                r.identity,
                https::Client {
                    name: r.name.clone(),
                    role: r.role,
                    ring: has_api.then(|| ring.clone()),
                },
            );
            let mut sinks = Vec::new();
            for (i, s) in r.sinks.iter().enumerate() {
                let path = cfg.spool_dir.join(&r.name).join(format!("{i}-{}.spool", s.name()));
                let spool = spool::Spool::open(&path, r.spool_max_bytes).map_err(|source| ExportStartError::Sink {
                    recipient: r.name.clone(),
                    kind: s.name(),
                    source,
                })?;
                sinks.push(Outlet {
                    sink: open_sink(r, s, &ring, metrics)?,
                    spool,
                });
            }
            let (q_tx, q_rx) = bounded(r.queue_capacity);
            metrics
                .export_queue_capacity
                .with_label_values(&[&r.name])
                .set(r.queue_capacity as i64);
            let name: Arc<str> = Arc::from(r.name.as_str());
            for reason in ["queue_full", "spool_full"] {
                metrics.export_dropped.with_label_values(&[&name, reason]);
            }
            for o in &sinks {
                metrics.export_records.with_label_values(&[&name, o.sink.kind()]);
                metrics.export_spooled.with_label_values(&[&name, o.sink.kind()]);
                metrics
                    .export_spool_bytes
                    .with_label_values(&[&name, o.sink.kind()])
                    .set(o.spool.bytes() as i64);
            }
            tx.queues.push((name.clone(), q_tx));
            let (r, keys, sel, m, agg) = (
                r.clone(),
                keys.clone(),
                selection.clone(),
                metrics.clone(),
                cfg.aggregates,
            );
            let audit = audit.clone();
            let h = std::thread::Builder::new()
                .name(format!("furui-x-{}", r.name))
                .spawn(move || recipient_loop(&r, agg, sinks, q_rx, &keys, &sel, &m, &audit))
                .map_err(ExportStartError::Thread)?;
            handles.push(h);
        }
        Ok((Exporters { handles, api_clients }, tx))
    }

    /// Waits for every recipient's thread to send what is queued and exit
    /// (all `ExportTx` must be gone).
    pub fn join(self) {
        for h in self.handles {
            let _ = h.join();
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn recipient_loop(
    r: &Recipient,
    aggregates: crate::config::aggregates::Aggregates,
    mut outlets: Vec<Outlet>,
    rx: Receiver<Arc<MechanicalRecord>>,
    keys: &Mutex<KeyStore>,
    selection: &SharedSelection,
    m: &Metrics,
    audit: &AuditLog,
) {
    let name = r.name.as_str();
    let depth = m.export_queue_depth.with_label_values(&[name]);
    let mut agg = r
        .grants
        .iter()
        .any(|g| g.aggregate)
        .then(|| aggregate::Aggregator::new(aggregates));
    let unix_now = || OffsetDateTime::now_utc().unix_timestamp().max(0) as u64;
    let rows_out = |rows: Vec<project::View>, outlets: &mut Vec<Outlet>| {
        for row in &rows {
            for o in outlets.iter_mut().filter(|o| o.sink.takes_rows()) {
                o.deliver(0, row, name, m);
            }
        }
    };
    let mut witnessed: Option<String> = None;
    let mut batch: Vec<Arc<MechanicalRecord>> = Vec::with_capacity(BATCH);
    let mut views: Vec<(usize, project::View)> = Vec::with_capacity(BATCH);
    loop {
        if r.witness {
            push_witness(audit, &mut witnessed, &mut outlets, name, m);
        }
        let first = match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(rec) => rec,
            Err(RecvTimeoutError::Timeout) => {
                // Idle: retry what waits in the spools; close a period.
                for o in outlets.iter_mut() {
                    o.drain(name, m);
                }
                if let Some(a) = agg.as_mut() {
                    rows_out(a.tick(unix_now()), &mut outlets);
                }
                // Rotate on schedule even without traffic: a new epoch's
                // key is made and expired ones are destroyed.
                if keys
                    .lock()
                    .map_err(|_| ())
                    .and_then(|mut k| k.at(OffsetDateTime::now_utc()).map_err(|_| ()))
                    .is_err()
                {
                    m.export_errors.with_label_values(&[name, "keys"]).inc();
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        // A batch: what is queued now, up to BATCH records. It is
        // projected, recorded in the audit trail, then delivered.
        batch.push(first);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        depth.set(rx.len() as i64);
        let now = OffsetDateTime::now_utc();
        let key = match keys.lock().map_err(|_| ()).and_then(|mut k| k.at(now).map_err(|_| ())) {
            Ok(k) => k,
            Err(()) => {
                // Without a key nothing may leave: count and drop.
                m.export_errors.with_label_values(&[name, "keys"]).inc();
                m.export_dropped
                    .with_label_values(&[name, "no_key"])
                    .inc_by(batch.len() as u64);
                batch.clear();
                continue;
            }
        };
        let domestic = selection.load();
        let mut rows = Vec::new();
        for rec in batch.drain(..) {
            let Some(measure) = rec.class.measure() else { continue };
            if let Some(a) = agg.as_mut() {
                if r.grants.iter().any(|g| g.aggregate && g.covers(measure, now)) {
                    rows.extend(a.add(&rec, measure.name(), unix_now()));
                }
            }
            // A record no grant covers is simply not this recipient's.
            for (i, g) in r.grants.iter().enumerate() {
                if g.aggregate || !g.covers(measure, now) {
                    continue;
                }
                views.push((i, project::project(&rec, g, &key, &domestic.domestic)));
            }
        }
        audit_batch(audit, r, &views, &rows);
        rows_out(rows, &mut outlets);
        for (i, view) in views.drain(..) {
            for o in outlets.iter_mut() {
                o.deliver(i, &view, name, m);
            }
        }
    }
    // Shutdown: the period so far (marked partial), then one last try for
    // what is spooled; the rest stays on disk and is sent first after the
    // next start.
    if let Some(a) = agg.as_mut() {
        let rows = a.flush(true);
        audit_batch(audit, r, &[], &rows);
        rows_out(rows, &mut outlets);
    }
    for o in outlets.iter_mut() {
        o.drain(name, m);
    }
    depth.set(0);
}

/// Pushes the newest signed checkpoint to every sink that carries
/// witnesses, once per checkpoint; a failed push is counted and retried
/// with the next one.
fn push_witness(audit: &AuditLog, last: &mut Option<String>, outlets: &mut [Outlet], name: &str, m: &Metrics) {
    let Some(cp) = audit.latest_signed() else { return };
    if last.as_deref() == Some(cp.as_str()) {
        return;
    }
    for o in outlets.iter_mut() {
        if o.sink.witness(&cp).is_err() {
            m.export_errors.with_label_values(&[name, "witness"]).inc();
        }
    }
    *last = Some(cp);
}

/// Records in one export batch at most (also one audit entry at most).
const BATCH: usize = 1024;

/// One audit entry per batch: the recipient, its sinks, and per grant used
/// the grant itself (as the `exports` check compares it with the policy in
/// force) and how many records (or aggregate rows) it carried.
fn audit_batch(audit: &AuditLog, r: &Recipient, views: &[(usize, project::View)], rows: &[project::View]) {
    if views.is_empty() && rows.is_empty() {
        return;
    }
    let mut grants = Vec::new();
    for (i, g) in r.grants.iter().enumerate() {
        let n = if g.aggregate {
            rows.len()
        } else {
            views.iter().filter(|(gi, _)| *gi == i).count()
        };
        if n > 0 {
            let mut e = crate::audit::policy::grant(i, g);
            e["records"] = serde_json::Value::from(n);
            grants.push(e);
        }
    }
    audit.record(
        "export",
        serde_json::json!({
            "recipient": r.name,
            "sinks": r.sinks.iter().map(|s| s.name()).collect::<Vec<_>>(),
            "records": views.len() + rows.len(),
            "grants": grants,
        }),
        false,
    );
}
