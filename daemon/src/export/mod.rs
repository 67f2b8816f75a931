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
pub mod guard;
pub mod https;
pub mod ipfix;
pub mod nats;
pub mod project;
pub mod spool;
pub mod tcp;
pub mod trail_pages;
pub mod udp;

#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use time::OffsetDateTime;

use crate::audit::AuditLog;
use crate::config::audit::Role;
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
    /// Sends several views; one result per view, in order. A sink that
    /// can have many in flight (NATS: pipelined acknowledgements)
    /// overrides it; this one sends them one by one and, after the first
    /// failure that is not `unencodable`, does not try the rest.
    fn send_batch(&mut self, views: &[(usize, &project::View)]) -> Vec<std::io::Result<()>> {
        let mut out = Vec::with_capacity(views.len());
        let mut failed = false;
        for (grant, view) in views {
            if failed {
                out.push(Err(std::io::Error::new(std::io::ErrorKind::NotConnected, "not tried")));
                continue;
            }
            let r = self.send(*grant, view);
            failed = r.as_ref().is_err_and(|e| !unencodable(e));
            out.push(r);
        }
        out
    }
    /// Views the collector said it already had (a resend de-duplicated)
    /// since last asked.
    fn duplicates(&mut self) -> u64 {
        0
    }
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
    /// Set by `join`: a recipient waiting for the audit trail gives up
    /// (drops and counts its batch) instead of holding the stop.
    stopping: Arc<AtomicBool>,
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
        SinkKind::Nats(n) => nats::NatsJetStream::open(n)
            .map(|x| Box::new(x) as Box<dyn Sink>)
            .map_err(|source| ExportStartError::Sink {
                recipient: r.name.clone(),
                kind: "nats",
                source,
            }),
    }
}

/// One view to deliver: the grant it was projected under, its record's
/// measure (None for a row), whether it is an aggregate row.
struct Item<'a> {
    grant: usize,
    measure: Option<&'a str>,
    row: bool,
    view: &'a project::View,
}

/// A sink with its spool: views go to the collector, or — while it is
/// unreachable, and until the spool is empty again — to the spool, so
/// order is kept.
struct Outlet {
    sink: Box<dyn Sink>,
    spool: spool::Spool,
}

/// One recipient's thread's view of its configuration, for its outlets.
struct Ctx<'a> {
    r: &'a Recipient,
    /// `spool::grant_id` of each of the recipient's grants, by number.
    ids: Vec<String>,
    m: &'a Metrics,
    audit: &'a AuditLog,
}

/// Whether a spooled entry may still be sent, and under which grant
/// number: only under the very grant it was projected for (the same
/// content hash), while that grant's consent window is open.
fn still_granted(c: &Ctx<'_>, e: &spool::Entry, now: OffsetDateTime) -> Result<usize, &'static str> {
    let i = c.ids.iter().position(|id| *id == e.grant_id).ok_or("grant_withdrawn")?;
    let g = &c.r.grants[i];
    if g.aggregate != e.row {
        return Err("grant_withdrawn");
    }
    if let Some(m) = &e.measure {
        match crate::classify::Measure::from_name(m) {
            Some(m) if g.measures.contains(&m) => {}
            _ => return Err("grant_withdrawn"),
        }
    }
    let open = g
        .consent
        .as_ref()
        .is_none_or(|c| c.not_before <= now && now < c.not_after);
    if open {
        Ok(i)
    } else {
        Err("consent_expired")
    }
}

/// A sink refused a view it can never carry (`InvalidInput`: not its
/// grant's template): it is dropped, not spooled.
fn unencodable(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::InvalidInput
}

/// Counts views dropped from a spool by reason, and records them in the
/// audit trail (one entry per drain that dropped any).
fn count_dropped(c: &Ctx<'_>, sink: &str, dropped: &[(&'static str, u64)]) {
    let name = c.r.name.as_str();
    let mut reasons = serde_json::Map::new();
    for (reason, n) in dropped.iter().filter(|(_, n)| *n > 0) {
        c.m.export_dropped.with_label_values(&[name, reason]).inc_by(*n);
        reasons.insert(reason.to_string(), serde_json::Value::from(*n));
    }
    if !reasons.is_empty() {
        tracing::warn!(recipient = name, sink, "spooled views dropped: {:?}", reasons);
        c.audit.record(
            "spool_dropped",
            serde_json::json!({"recipient": name, "sink": sink, "dropped": reasons}),
            false,
        );
    }
}

/// How many spooled views a drain offers the sink at once (NATS keeps up
/// to its `ack_window` of them in flight).
const DRAIN_BATCH: usize = 1024;

impl Outlet {
    /// Sends what waits in the spool, oldest first, while the collector
    /// takes it; a view whose grant is no longer in force (or that the
    /// sink cannot carry) is dropped and counted instead.
    fn drain(&mut self, c: &Ctx<'_>) {
        self.drain_at(c, OffsetDateTime::now_utc());
    }

    /// `drain`, judging consent windows at `now`.
    fn drain_at(&mut self, c: &Ctx<'_>, now: OffsetDateTime) {
        if !c.audit.writable() {
            // Exports pause while the trail cannot be written.
            return;
        }
        let torn = self.spool.take_torn();
        let kind = self.sink.kind();
        if torn > 0 {
            count_dropped(c, kind, &[("spool_torn", torn)]);
        }
        if self.spool.is_empty() {
            return;
        }
        let name = c.r.name.as_str();
        let sink = &mut self.sink;
        let drained = self.spool.drain_batched(DRAIN_BATCH, |entries| {
            // Entries whose grant lapsed are dropped; the rest go out as
            // one batch (pipelined where the sink can).
            let mut results: Vec<Option<std::io::Result<spool::Disposition>>> = Vec::with_capacity(entries.len());
            let mut views = Vec::new();
            for (k, e) in entries.iter().enumerate() {
                match still_granted(c, e, now) {
                    Err(reason) => results.push(Some(Ok(spool::Disposition::Dropped(reason)))),
                    Ok(i) => {
                        results.push(None);
                        views.push((k, i, e.view()));
                    }
                }
            }
            if !views.is_empty() {
                let batch: Vec<(usize, &project::View)> = views.iter().map(|(_, i, v)| (*i, v)).collect();
                for ((k, _, _), r) in views.iter().zip(sink.send_batch(&batch)) {
                    results[*k] = Some(match r {
                        Ok(()) => Ok(spool::Disposition::Sent),
                        Err(err) if unencodable(&err) => Ok(spool::Disposition::Dropped("unencodable")),
                        Err(err) => Err(err),
                    });
                }
            }
            results
                .into_iter()
                .map(|r| r.unwrap_or_else(|| Err(std::io::Error::other("no result from the sink"))))
                .collect()
        });
        self.count_duplicates(c);
        match drained {
            Ok(d) => {
                if d.sent > 0 {
                    c.m.export_records.with_label_values(&[name, kind]).inc_by(d.sent);
                    tracing::info!(recipient = name, sink = kind, records = d.sent, "spooled records sent");
                }
                let mut dropped = d.dropped.clone();
                dropped.push(("spool_corrupt", d.corrupt));
                count_dropped(c, kind, &dropped);
            }
            Err(e) => {
                c.m.export_errors.with_label_values(&[name, "spool"]).inc();
                tracing::error!(recipient = name, sink = kind, error = %e, "reading the spool failed");
            }
        }
        c.m.export_spool_bytes
            .with_label_values(&[name, kind])
            .set(self.spool.bytes() as i64);
    }

    /// Sends `items` (views projected under a grant number, of a record
    /// of a measure or an aggregate row), or spools them: from the first
    /// that failed on, in order. (A view after it that the collector did
    /// take is sent again from the spool; NATS drops such a resend by its
    /// message id.)
    fn deliver(&mut self, c: &Ctx<'_>, items: &[Item<'_>]) {
        if items.is_empty() {
            return;
        }
        self.drain(c);
        let (name, m) = (c.r.name.as_str(), c.m);
        let kind = self.sink.kind();
        let mut from = 0;
        if self.spool.is_empty() {
            let views: Vec<(usize, &project::View)> = items.iter().map(|i| (i.grant, i.view)).collect();
            let results = self.sink.send_batch(&views);
            let (mut sent, mut unencodable_n) = (0u64, 0u64);
            from = items.len();
            for (k, r) in results.into_iter().enumerate() {
                match r {
                    Ok(()) => sent += 1,
                    Err(e) if unencodable(&e) => unencodable_n += 1,
                    Err(e) => {
                        m.export_errors.with_label_values(&[name, "send"]).inc();
                        tracing::debug!(recipient = name, sink = kind, error = %e, "export send failed; spooling");
                        from = k;
                        break;
                    }
                }
            }
            m.export_records.with_label_values(&[name, kind]).inc_by(sent);
            count_dropped(c, kind, &[("unencodable", unencodable_n)]);
            self.count_duplicates(c);
        }
        for i in &items[from..] {
            let entry = spool::Entry::new(&c.ids[i.grant], i.measure, i.row, i.view);
            match self.spool.push(&entry) {
                Ok(()) => m.export_spooled.with_label_values(&[name, kind]).inc(),
                Err(spool::SpoolError::Full) => m.export_dropped.with_label_values(&[name, "spool_full"]).inc(),
                Err(e) => {
                    m.export_dropped.with_label_values(&[name, "spool_error"]).inc();
                    tracing::error!(recipient = name, sink = kind, error = %e, "spooling failed; record dropped");
                }
            }
        }
        m.export_spool_bytes
            .with_label_values(&[name, kind])
            .set(self.spool.bytes() as i64);
    }

    fn count_duplicates(&mut self, c: &Ctx<'_>) {
        let d = self.sink.duplicates();
        if d > 0 {
            c.m.export_duplicates
                .with_label_values(&[c.r.name.as_str(), self.sink.kind()])
                .inc_by(d);
        }
    }
}

/// Spool files no configured sink will drain (a sink or a recipient was
/// removed from the configuration): the views still waiting in them are
/// counted as dropped (`sink_removed`, `recipient_removed`), recorded in
/// the audit trail, and the files removed, so they can never reach
/// another collector.
fn discard_orphan_spools(spool_dir: &std::path::Path, recipients: &[Recipient], m: &Metrics, audit: &AuditLog) {
    let Ok(dirs) = std::fs::read_dir(spool_dir) else { return };
    for dir in dirs.flatten() {
        let Ok(recipient) = dir.file_name().into_string() else {
            continue;
        };
        if !dir.path().is_dir() {
            continue;
        }
        let r = recipients.iter().find(|r| r.name == recipient);
        let keep: Vec<String> = r.map_or(Vec::new(), |r| r.sinks.iter().map(spool::file_name).collect());
        let Ok(files) = std::fs::read_dir(dir.path()) else {
            continue;
        };
        for f in files.flatten() {
            let file = f.file_name().to_string_lossy().into_owned();
            let is_spool = file.ends_with(".spool") || file.ends_with(".tmp");
            if !is_spool || keep.contains(&file) {
                continue;
            }
            let reason = if r.is_some() {
                "sink_removed"
            } else {
                "recipient_removed"
            };
            match spool::discard(&f.path()) {
                Ok(n) => {
                    m.export_dropped.with_label_values(&[&recipient, reason]).inc_by(n);
                    tracing::warn!(
                        recipient,
                        file,
                        views = n,
                        reason,
                        "a spool no sink drains was discarded"
                    );
                    audit.record(
                        "spool_dropped",
                        serde_json::json!({"recipient": recipient, "file": file, "dropped": {reason: n}}),
                        false,
                    );
                }
                Err(e) => tracing::error!(recipient, file, error = %e, "cannot discard an orphaned spool"),
            }
        }
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
        discard_orphan_spools(&cfg.spool_dir, &cfg.recipients, metrics, audit);
        let stopping = Arc::new(AtomicBool::new(false));
        if cfg.recipients.is_empty() {
            return Ok((
                Exporters {
                    handles,
                    api_clients,
                    stopping,
                },
                tx,
            ));
        }
        let keys = Arc::new(Mutex::new(match &cfg.deid.fleet_seed_file {
            Some(seed) => KeyStore::open_fleet(&cfg.deid.key_dir, cfg.deid.epoch, cfg.deid.keep_epochs, seed)?,
            None => KeyStore::open(&cfg.deid.key_dir, cfg.deid.epoch, cfg.deid.keep_epochs)?,
        }));
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
            for s in &r.sinks {
                let path = cfg.spool_dir.join(&r.name).join(spool::file_name(s));
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
                metrics.export_duplicates.with_label_values(&[&name, o.sink.kind()]);
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
            let (audit, stop) = (audit.clone(), stopping.clone());
            let mut namer = Namer::new(&cfg.appliance);
            metrics.export_paused.with_label_values(&[&name]).set(0);
            let h = std::thread::Builder::new()
                .name(format!("furui-x-{}", r.name))
                .spawn(move || recipient_loop(&r, agg, sinks, q_rx, &keys, &sel, &m, &audit, &stop, &mut namer))
                .map_err(ExportStartError::Thread)?;
            handles.push(h);
        }
        Ok((
            Exporters {
                handles,
                api_clients,
                stopping,
            },
            tx,
        ))
    }

    /// Waits for every recipient's thread to send what is queued and exit
    /// (all `ExportTx` must be gone).
    pub fn join(self) {
        self.stopping.store(true, Ordering::Relaxed);
        for h in self.handles {
            let _ = h.join();
        }
    }
}

/// Names a recipient's views and rows: the appliance id and a sequence
/// number that starts at the start's Unix time in nanoseconds and counts
/// up by one, so that names never repeat across restarts (a run would
/// have to name more than 10^9 views a second to catch up with the next
/// start's clock).
pub struct Namer {
    appliance: String,
    next: u64,
}

impl Namer {
    pub fn new(appliance: &str) -> Namer {
        let now = OffsetDateTime::now_utc().unix_timestamp_nanos().max(1) as u64;
        Namer {
            appliance: appliance.to_string(),
            next: now,
        }
    }

    pub fn name(&mut self, v: &mut project::View) {
        v.appliance.clone_from(&self.appliance);
        v.seq = self.next;
        self.next += 1;
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
    stopping: &AtomicBool,
    namer: &mut Namer,
) {
    let name = r.name.as_str();
    let ctx = Ctx {
        r,
        ids: r.grants.iter().map(spool::grant_id).collect(),
        m,
        audit,
    };
    let c = &ctx;
    // Rows go out under the first aggregate grant.
    let row_grant = r.grants.iter().position(|g| g.aggregate).unwrap_or(0);
    let depth = m.export_queue_depth.with_label_values(&[name]);
    let mut agg = r
        .grants
        .iter()
        .any(|g| g.aggregate)
        .then(|| aggregate::Aggregator::new(aggregates));
    let unix_now = || OffsetDateTime::now_utc().unix_timestamp().max(0) as u64;
    let rows_out = |mut rows: Vec<project::View>, outlets: &mut Vec<Outlet>, namer: &mut Namer| {
        for row in rows.iter_mut() {
            namer.name(row);
        }
        let items: Vec<Item<'_>> = rows
            .iter()
            .map(|row| Item {
                grant: row_grant,
                measure: match row.get("measure") {
                    Some(project::Value::Str(s)) => Some(s.as_str()),
                    _ => None,
                },
                row: true,
                view: row,
            })
            .collect();
        for o in outlets.iter_mut().filter(|o| o.sink.takes_rows()) {
            o.deliver(c, &items);
        }
    };
    let mut witnessed: Option<String> = None;
    let mut batch: Vec<Arc<MechanicalRecord>> = Vec::with_capacity(BATCH);
    let mut views: Vec<(usize, &'static str, project::View)> = Vec::with_capacity(BATCH);
    loop {
        if r.witness {
            push_witness(audit, r.role == Role::Oversight, &mut witnessed, &mut outlets, name, m);
        }
        let first = match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(rec) => rec,
            Err(RecvTimeoutError::Timeout) => {
                // Idle: retry what waits in the spools; close a period.
                for o in outlets.iter_mut() {
                    o.drain(c);
                }
                if let Some(a) = agg.as_mut() {
                    rows_out(a.tick(unix_now()), &mut outlets, namer);
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
                views.push((i, measure.name(), project::project(&rec, g, &key, &domestic.domestic)));
            }
        }
        if !audited(audit, r, &views, &rows, stopping, m) {
            views.clear();
            continue;
        }
        rows_out(rows, &mut outlets, namer);
        for (_, _, view) in views.iter_mut() {
            namer.name(view);
        }
        let items: Vec<Item<'_>> = views
            .iter()
            .map(|(grant, measure, view)| Item {
                grant: *grant,
                measure: Some(measure),
                row: false,
                view,
            })
            .collect();
        for o in outlets.iter_mut() {
            o.deliver(c, &items);
        }
        drop(items);
        views.clear();
    }
    // Shutdown: the period so far (marked partial), then one last try for
    // what is spooled; the rest stays on disk and is sent first after the
    // next start.
    if let Some(a) = agg.as_mut() {
        let rows = a.flush(true);
        if audited(audit, r, &[], &rows, stopping, m) {
            rows_out(rows, &mut outlets, namer);
        }
    }
    for o in outlets.iter_mut() {
        o.drain(c);
    }
    depth.set(0);
}

/// Pushes the newest signed checkpoint to every sink that carries
/// witnesses, once per checkpoint; a failed push is counted and retried
/// with the next one.
fn push_witness(
    audit: &AuditLog,
    oversight: bool,
    last: &mut Option<String>,
    outlets: &mut [Outlet],
    name: &str,
    m: &Metrics,
) {
    let Some(cp) = audit.latest_signed() else { return };
    if last.as_deref() == Some(cp.as_str()) {
        return;
    }
    // A recipient gets the checkpoint's head; inspectors the whole of it.
    let Some(witness) = (if oversight {
        Some(cp.clone())
    } else {
        crate::audit::witness_head(&cp)
    }) else {
        return;
    };
    for o in outlets.iter_mut() {
        if o.sink.witness(&witness).is_err() {
            m.export_errors.with_label_values(&[name, "witness"]).inc();
        }
    }
    *last = Some(cp);
}

/// Records in one export batch at most (also one audit entry at most).
const BATCH: usize = 1024;

/// Writes a batch's audit entry; while the trail cannot take it, the
/// recipient waits (its queue fills and then drops, counted as
/// `queue_full`), retrying every second. False only if the daemon stops
/// while the trail is still unwritable: the batch is then dropped and
/// counted (`audit_unavailable`), never sent unaudited.
fn audited(
    audit: &AuditLog,
    r: &Recipient,
    views: &[(usize, &str, project::View)],
    rows: &[project::View],
    stopping: &AtomicBool,
    m: &Metrics,
) -> bool {
    if audit_batch(audit, r, views, rows) {
        return true;
    }
    let paused = m.export_paused.with_label_values(&[&r.name]);
    paused.set(1);
    tracing::warn!(
        recipient = r.name,
        "exports paused: the audit trail cannot take this batch's entry"
    );
    let mut waited = Duration::ZERO;
    let ok = loop {
        if stopping.load(Ordering::Relaxed) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
        waited += Duration::from_millis(100);
        if waited >= Duration::from_secs(1) {
            waited = Duration::ZERO;
            if audit_batch(audit, r, views, rows) {
                break true;
            }
        }
    };
    paused.set(0);
    if ok {
        tracing::info!(recipient = r.name, "exports resumed: the audit trail took the batch");
    } else {
        m.export_dropped
            .with_label_values(&[&r.name, "audit_unavailable"])
            .inc_by((views.len() + rows.len()) as u64);
    }
    ok
}

/// One audit entry per batch: the recipient, its sinks, and per grant used
/// the grant itself (as the `exports` check compares it with the policy in
/// force) and how many records (or aggregate rows) it carried.
fn audit_batch(
    audit: &AuditLog,
    r: &Recipient,
    views: &[(usize, &str, project::View)],
    rows: &[project::View],
) -> bool {
    if views.is_empty() && rows.is_empty() {
        return true;
    }
    let mut grants = Vec::new();
    for (i, g) in r.grants.iter().enumerate() {
        let n = if g.aggregate {
            rows.len()
        } else {
            views.iter().filter(|(gi, _, _)| *gi == i).count()
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
    )
}
