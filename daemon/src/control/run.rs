//! `furui run`: brings the data path up in order (classifier, sink, attach,
//! workers, sockets into the XSKMAP), supervises it, and takes it down in
//! the reverse order on SIGTERM/SIGINT.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::capture::{CaptureError, QueueWorker, WorkerReport, WorkerSignals};
use crate::classify::walk::{Encap, Outcome};
use crate::classify::{Action, Class};
use crate::config::{CaptureMode, Config};
use crate::pipeline::Pipeline;
use crate::sink::{JsonLinesSink, SinkOpenError};
use crate::sys;
use crate::telemetry::{http, raise_to, Metrics};
use crate::xdp::{AttachError, Classifier, XdpError};

use super::socket::ReloadAsk;
use super::windows::{classes, Hold, Now, WindowTracker};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("interface `{interface}` does not exist; check `interface` in [capture] (`ip link` lists the names)")]
    NoInterface { interface: String },
    #[error(transparent)]
    Xdp(#[from] XdpError),
    #[error(transparent)]
    Attach(#[from] AttachError),
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error(transparent)]
    Sink(#[from] SinkOpenError),
    #[error("cannot listen for metrics on {addr}; is another process using it? set `listen` in [metrics]")]
    MetricsListen {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("[capture] cpus pins queue {queue} to CPU {cpu}, which this process may not run on (allowed: {allowed}); change `cpus` or the service's CPUAffinity")]
    CpuNotAllowed { queue: u32, cpu: u32, allowed: String },
    #[error("the capture worker of queue {queue} stopped unexpectedly")]
    WorkerDied { queue: u32 },
    #[error("the XDP class authorization map could not be written for {secs} s; capture was stopped rather than run with windows furui cannot enforce")]
    ClassMapUnwritable { secs: u64 },
    #[error("the per-frame path of queue {queue} panicked; the frames in hand were zeroed and capture was stopped (see the log)")]
    WorkerPanicked { queue: u32 },
    #[error(
        "cannot open the control socket {path}; check that its directory is writable, or set `socket` in [control]"
    )]
    ControlSocket {
        path: std::path::PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Export(#[from] crate::export::ExportStartError),
    #[error("the audit trail cannot be used; furui does not run without it (`furui run --new-segment` starts a new segment, which is itself recorded)")]
    Audit(#[source] crate::audit::AuditError),
    #[error("the retention store cannot be opened; check [retention] dir and key_dir")]
    Store(#[source] crate::store::StoreError),
    #[error("dropping capabilities after start-up failed")]
    DropCapabilities(#[source] io::Error),
    #[error("starting the runtime failed")]
    Runtime(#[source] io::Error),
}

/// Runs the daemon until SIGTERM or SIGINT. Nothing stays attached to the
/// interface when this returns, on success or on error.
pub fn run(cfg: Config) -> Result<(), RunError> {
    run_with(cfg, false)
}

/// The audit trail's view of the counters: every series of the metrics
/// that oversight checks (per queue, class, action and recipient).
fn checkpoint_counters(metrics: &Metrics) -> serde_json::Value {
    use crate::telemetry::names;
    const NAMES: [&str; 8] = [
        names::FRAMES_RECEIVED,
        names::FRAMES_ERASED,
        names::XDP_PACKETS,
        names::RECORDS_SELECTED,
        names::RECORDS_WRITTEN,
        names::RECORDS_DROPPED,
        names::EXPORT_RECORDS,
        names::EXPORT_DROPPED,
    ];
    let mut m = serde_json::Map::new();
    for (series, v) in crate::telemetry::parse_exposition(&metrics.encode()) {
        let name = series.split('{').next().unwrap_or("");
        if NAMES.contains(&name) && v != 0.0 {
            m.insert(series, serde_json::Value::from(v as u64));
        }
    }
    serde_json::Value::Object(m)
}

fn config_digest(path: &std::path::Path) -> String {
    std::fs::read(path)
        .map(|b| {
            use sha2::Digest;
            crate::hex::encode(&sha2::Sha256::digest(&b))
        })
        .unwrap_or_default()
}

/// `run`, with `new_segment`: start a new audit segment if the trail
/// fails verification (recorded in the new segment).
pub fn run_with(mut cfg: Config, new_segment: bool) -> Result<(), RunError> {
    if let Err(e) = sys::set_non_dumpable() {
        tracing::warn!(error = %e, "could not mark the process non-dumpable");
    }
    let metrics = Metrics::new();
    // The trail first: a trail that fails verification stops the start
    // before anything is attached.
    let trail = match &cfg.audit {
        Some(a) => crate::audit::AuditLog::new(
            Some(crate::audit::Trail::open_as(&a.dir, new_segment, Some(&cfg.appliance)).map_err(RunError::Audit)?),
            &metrics,
        ),
        None => crate::audit::AuditLog::disabled(&metrics),
    };
    log_refusals(&cfg.rules);
    trail.record(
        "start",
        serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "config": cfg.path.display().to_string(),
            "config_sha256": config_digest(&cfg.path),
            "ruleset_version": cfg.rules.version.to_string(),
            "ruleset_sha256": cfg.rules.sha256,
            "ruleset_imports": &cfg.rules.imports.counts,
            "interface": cfg.capture.interface,
            "recipients": crate::audit::policy::of(&cfg.export),
            "approvals": cfg.signed_approvals(),
        }),
        false,
    );
    let c = &cfg.capture;
    let ifindex = sys::ifindex(&c.interface).map_err(|_| RunError::NoInterface {
        interface: c.interface.clone(),
    })?;

    check_cpus(c)?;
    let bound = crate::config::memory::MemoryBound::of(&cfg);
    tracing::info!(bound = %bound, "memory bound of this configuration");
    if let Some(max) = sys::cgroup_memory_max().filter(|m| *m < bound.total()) {
        tracing::warn!(
            memory_max_mib = crate::config::memory::mib(max),
            bound_mib = crate::config::memory::mib(bound.total()),
            "the cgroup's memory.max is below this configuration's memory bound: under a flood the kernel may kill the daemon; raise MemoryMax or lower [flows] max_flows / reassembly_budget_mib"
        );
    }
    let classifier = Classifier::load(c.mode == CaptureMode::Inline)?;
    classifier.set_decap(&cfg.decap)?;
    classifier.set_snap(&cfg.snap())?;
    tracing::info!(snap = %cfg.snap(), "what of a captured frame reaches user space");
    for w in &cfg.warnings {
        tracing::warn!(warning = %w, "configuration accepted with a warning");
    }
    let t0 = std::time::Instant::now();
    classifier.set_domestic(&cfg.domestic_list)?;
    tracing::info!(
        prefixes = cfg.domestic_list.len(),
        elapsed_ms = t0.elapsed().as_millis() as u64,
        "domestic prefixes loaded into the XDP tries"
    );
    let mut tracker = match &cfg.audit {
        Some(a) => {
            let (t, remembered) = WindowTracker::remembering(a.dir.join(super::windows::ENDED_FILE));
            match remembered {
                Ok(n) => tracing::info!(windows = n, "ended windows remembered from earlier runs"),
                Err(e) => tracing::error!(
                    error = %e,
                    "the record of ended windows cannot be read: every measure is held closed until an accepted reload (fix or remove the file first)"
                ),
            }
            t
        }
        None => WindowTracker::default(),
    };
    apply_windows(&cfg, &classifier, &metrics, &mut tracker, &trail, Now::read())?;

    // Opened now, so a bad records path fails before the interface is
    // touched; its writer thread starts after the capabilities are gone.
    // With [retention], records go to the sealed store only.
    let records_file = match &cfg.retention {
        None => Some(crate::sink::open_file(&cfg.records.path)?),
        Some(_) => {
            if std::fs::metadata(&cfg.records.path).is_ok_and(|m| m.len() > 0) {
                tracing::warn!(
                    path = %cfg.records.path.display(),
                    "a plaintext records file from a run without [retention] exists; with [retention] furui writes none, and this one is never purged: remove it"
                );
            }
            None
        }
    };
    let store = match &cfg.retention {
        Some(r) => Some(crate::store::Store::open(r).map_err(RunError::Store)?),
        None => None,
    };

    let link = classifier.attach(&c.interface, ifindex, c.xdp_mode)?;
    if let Some(id) = link.replaced_stale {
        tracing::warn!(interface = %c.interface, prog_id = id, "replaced a stale furui XDP program left attached by an earlier run");
    }
    tracing::info!(interface = %c.interface, mode = ?c.xdp_mode, "XDP classifier attached");

    // From here on, an error return drops `link`, which detaches.
    let mut workers = Vec::new();
    for q in &c.queues {
        let w = QueueWorker::open(c, *q)?;
        classifier.set_socket(*q, w.fd())?;
        tracing::info!(queue = q, zero_copy = w.zero_copy, "AF_XDP socket bound");
        workers.push((*q, w));
    }

    // Everything privileged is done: drop every capability before any
    // thread starts, so no thread of the running daemon holds one.
    sys::drop_all_capabilities().map_err(RunError::DropCapabilities)?;
    tracing::info!(
        effective = format!("{:#x}", sys::effective_capabilities()),
        "all capabilities dropped; capture continues unprivileged"
    );
    let (sink, records) = JsonLinesSink::start_on(
        records_file,
        &cfg.records.path,
        cfg.records.queue_capacity,
        metrics.clone(),
        store.map(|store| crate::sink::Retain {
            store,
            audit: trail.clone(),
        }),
    )?;

    let selection = crate::select::shared(cfg.selection_state());
    let (exporters, export_tx) = crate::export::Exporters::start(&cfg.export, selection.clone(), &metrics, &trail)?;
    if !cfg.export.recipients.is_empty() {
        tracing::info!(recipients = cfg.export.recipients.len(), "exporters started");
    }
    let records = records.with_exports(export_tx);
    let api = match &cfg.export.api {
        Some(a) => Some(
            crate::export::https::start(a, exporters.api_clients.clone(), &metrics, &trail)
                .map_err(crate::export::ExportStartError::from)?,
        ),
        None => None,
    };
    metrics.ruleset_version.with_label_values(&[&cfg.rules.version]).set(1);
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    let mut signals = Vec::new();
    for (q, w) in workers {
        let pipeline = Pipeline::with_shared(&cfg, q, selection.clone());
        let (m, r, s) = (metrics.clone(), records.clone(), stop.clone());
        let a = Arc::new(WorkerSignals::default());
        signals.push((q, a.clone()));
        let cpu = cfg.capture.cpu_of(q);
        let h = std::thread::Builder::new()
            .name(format!("furui-q{q}"))
            .spawn(move || {
                // Checked against the allowed CPUs before any worker started.
                if let Some(cpu) = cpu {
                    match sys::pin_to_cpu(cpu) {
                        Ok(()) => tracing::info!(queue = q, cpu, "worker pinned"),
                        Err(e) => {
                            tracing::warn!(queue = q, cpu, error = %e, "pinning the worker failed; it runs unpinned")
                        }
                    }
                }
                w.run(pipeline, &m, &r, &s, &a)
            })
            .map_err(RunError::Runtime)?;
        handles.push((q, h));
    }
    drop(records);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RunError::Runtime)?;
    let outcome = rt.block_on(supervise(
        &mut cfg,
        &selection,
        &classifier,
        &metrics,
        &mut tracker,
        &handles,
        &signals,
        &trail,
    ));

    // Shutdown in reverse: stop redirecting, let workers drain and erase,
    // flush records, then detach.
    for (q, _) in &handles {
        classifier.clear_socket(*q);
    }
    stop.store(true, Ordering::Release);
    let mut reports: Vec<WorkerReport> = Vec::new();
    for (q, h) in handles {
        match h.join() {
            Ok(r) => {
                if let Some(zeroed) = r.panicked {
                    trail.record(
                        "capture_stopped",
                        serde_json::json!({
                            "queue": q,
                            "reason": "the per-frame path panicked",
                            "frames_zeroed_by_guard": zeroed,
                        }),
                        true,
                    );
                }
                reports.push(r)
            }
            Err(_) => tracing::error!(queue = q, "capture worker panicked"),
        }
    }
    sink.join();
    exporters.join();
    if let Some(api) = api {
        api.stop();
    }
    refresh_xdp_stats(&classifier, &metrics);
    drop(link);
    let frames: u64 = reports.iter().map(|r| r.frames).sum();
    let total = |v: &prometheus::IntCounterVec| -> u64 {
        reports
            .iter()
            .map(|r| v.with_label_values(&[&r.queue.to_string()]).get())
            .sum()
    };
    trail.record("stop", checkpoint_counters(&metrics), true);
    tracing::info!(
        frames,
        received = total(&metrics.frames_received),
        erased = total(&metrics.frames_erased),
        records = metrics.records_written.get(),
        "stopped; XDP program detached"
    );
    outcome
}

fn apply_windows(
    cfg: &Config,
    classifier: &Classifier,
    metrics: &Metrics,
    tracker: &mut WindowTracker,
    trail: &crate::audit::AuditLog,
    now: Now,
) -> Result<(), RunError> {
    if let Some(step) = tracker.observe(now) {
        metrics.clock_steps.inc();
        metrics.clock_last_step.set(step.secs);
        let held: Vec<&str> = step.held.iter().map(|m| m.name()).collect();
        tracing::warn!(
            step_secs = step.secs,
            from = %step.from,
            to = %step.to,
            held = ?held,
            "the wall clock stepped; windows that were closed stay closed until a reload, and ended windows stay closed"
        );
        trail.record(
            "clock_step",
            serde_json::json!({
                "step_secs": step.secs,
                "from": step.from.unix_timestamp(),
                "to": step.to.unix_timestamp(),
                "held": held,
            }),
            true,
        );
    }
    // Window ends are published whether or not anything changed: a reload
    // may move them (the expiry alert reads them).
    for m in crate::classify::Measure::ALL {
        let end = cfg
            .measures
            .get(&m)
            .filter(|w| w.enabled)
            .map_or(0, |w| w.not_after.unix_timestamp());
        metrics.measure_window_end.with_label_values(&[m.name()]).set(end);
    }
    // The class map is written from the desired state on every tick, not
    // only on a change: a failed write is retried at the next tick, and a
    // map changed behind furui's back is put right.
    let want = tracker.desired(cfg, now.wall);
    publish_holds(cfg, tracker, metrics, trail, now);
    let changed = tracker.pending(&want);
    if let Err(e) = classifier.set_authorized(&classes(&want)) {
        metrics.class_map_write_failures.inc();
        let first = tracker.failing_since.is_none();
        let failing = tracker.failed(now.mono);
        if first {
            tracing::error!(error = %e, "writing the class authorization map failed; retrying every tick, capture stops if it keeps failing");
            trail.record(
                "window_write_failed",
                serde_json::json!({
                    "error": e.to_string(),
                    "pending": changed.iter().map(|(m, on)| serde_json::json!({"measure": m.name(), "authorized": on})).collect::<Vec<_>>(),
                }),
                true,
            );
        }
        if failing >= super::windows::WRITE_FAILURE_BOUND {
            trail.record(
                "capture_stopped",
                serde_json::json!({
                    "reason": "the class authorization map could not be written",
                    "failing_secs": failing.as_secs(),
                }),
                true,
            );
            return Err(RunError::ClassMapUnwritable {
                secs: failing.as_secs(),
            });
        }
        return Ok(());
    }
    if tracker.failing_since.is_some() {
        tracing::info!("the class authorization map is written again");
        trail.record("window_write_recovered", serde_json::json!({}), false);
    }
    tracker.written(want);
    for (m, on) in changed {
        metrics
            .measure_authorized
            .with_label_values(&[m.name()])
            .set(i64::from(on));
        let approval = cfg
            .measures
            .get(&m)
            .and_then(|w| w.approval.clone())
            .unwrap_or_default();
        tracing::info!(measure = m.name(), authorized = on, approval = %approval, "authorization window state");
        trail.record(
            "window",
            serde_json::json!({ "measure": m.name(), "authorized": on, "approval": approval }),
            false,
        );
    }
    Ok(())
}

/// Publishes which measures are held closed against the configuration
/// (metric every tick; log and audit entry when a hold begins).
fn publish_holds(cfg: &Config, tracker: &WindowTracker, metrics: &Metrics, trail: &crate::audit::AuditLog, now: Now) {
    let held = tracker.held(cfg, now.wall);
    for m in crate::classify::Measure::ALL {
        for h in Hold::ALL {
            let g = metrics.measure_held.with_label_values(&[m.name(), h.name()]);
            let on = held.contains(&(m, h));
            if on && g.get() == 0 {
                let approval = cfg
                    .measures
                    .get(&m)
                    .and_then(|w| w.approval.clone())
                    .unwrap_or_default();
                tracing::warn!(measure = m.name(), reason = h.name(), approval = %approval, "the configuration opens this window but furui holds it closed");
                trail.record(
                    "window_held",
                    serde_json::json!({ "measure": m.name(), "reason": h.name(), "approval": approval }),
                    false,
                );
            }
            g.set(i64::from(on));
        }
    }
}

/// Every CPU `[capture] cpus` names is one this process may run on.
fn check_cpus(c: &crate::config::Capture) -> Result<(), RunError> {
    if c.cpus.is_empty() {
        return Ok(());
    }
    let allowed = sys::allowed_cpus().map_err(RunError::Runtime)?;
    for q in &c.queues {
        if let Some(cpu) = c.cpu_of(*q).filter(|cpu| !allowed.contains(cpu)) {
            let list: Vec<String> = allowed.iter().map(u32::to_string).collect();
            return Err(RunError::CpuNotAllowed {
                queue: *q,
                cpu,
                allowed: list.join(","),
            });
        }
    }
    Ok(())
}

fn refresh_xdp_stats(classifier: &Classifier, metrics: &Metrics) {
    let Ok(s) = classifier.stats() else { return };
    for c in Class::ALL {
        for a in Action::ALL {
            raise_to(
                &metrics.xdp_packets.with_label_values(&[c.name(), a.name()]),
                s.packets(c, a),
            );
        }
        raise_to(&metrics.xdp_bytes.with_label_values(&[c.name()]), s.class_bytes(c));
    }
    if let Ok((started, completed)) = classifier.hello_follows() {
        raise_to(&metrics.xdp_hello_follows.with_label_values(&["started"]), started);
        raise_to(&metrics.xdp_hello_follows.with_label_values(&["completed"]), completed);
    }
    let Ok(e) = classifier.encap_stats() else { return };
    for encap in Encap::ALL {
        for o in Outcome::ALL {
            raise_to(
                &metrics.xdp_encap_packets.with_label_values(&[encap.name(), o.name()]),
                e.packets(encap, o),
            );
        }
    }
}

/// SIGHUP: re-reads the config (and its prefixes and rules), builds the new
/// selection state off the data path and swaps it in atomically. A config
/// that fails validation, or changes what only a restart can, leaves the
/// running state untouched; every error is logged.
fn reload(
    cfg: &mut Config,
    ask: ReloadAsk,
    selection: &crate::select::SharedSelection,
    classifier: &Classifier,
    metrics: &Metrics,
) -> Result<String, Vec<String>> {
    let new = match Config::load(&cfg.path) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors.0 {
                tracing::error!(error = %e, "reload rejected: configuration invalid; the running configuration stays");
            }
            metrics.config_reloads.with_label_values(&["invalid"]).inc();
            return Err(errors.0.iter().map(|e| e.to_string()).collect());
        }
    };
    log_refusals(&new.rules);
    if let Some(section) = cfg.restart_required(&new) {
        tracing::error!(
            section,
            "reload rejected: this section cannot change without a restart; the running configuration stays"
        );
        metrics.config_reloads.with_label_values(&["rejected"]).inc();
        return Err(vec![format!(
            "{section} cannot change without a restart; the running configuration stays"
        )]);
    }
    // A reload that stops covering much of the domestic set (a prefix file
    // emptied or half-written, a wrong file) needs the operator's explicit
    // confirmation; the limit in force is the running configuration's.
    if let Err(e) = domestic_removal_allowed(cfg, &new, ask).and_then(|()| rules_removal_allowed(cfg, &new, ask)) {
        tracing::error!(error = %e, "reload rejected; the running configuration stays");
        metrics.config_reloads.with_label_values(&["rejected"]).inc();
        return Err(vec![e]);
    }
    // Domestic tries: add first, then remove, so that during the change
    // the domestic set is the union of old and new — the direction in
    // which nothing domestic can leave the kernel.
    let old: std::collections::HashSet<_> = cfg.domestic_list.iter().copied().collect();
    let new_set: std::collections::HashSet<_> = new.domestic_list.iter().copied().collect();
    let added: Vec<_> = new.domestic_list.iter().copied().filter(|n| !old.contains(n)).collect();
    let removed: Vec<_> = cfg
        .domestic_list
        .iter()
        .copied()
        .filter(|n| !new_set.contains(n))
        .collect();
    // The walk's settings before the state user space parses with: a
    // frame judged under either setting is judged on the header that
    // setting names, and one neither opens is never captured.
    if new.decap != cfg.decap {
        if let Err(e) = classifier.set_decap(&new.decap) {
            tracing::error!(error = %e, "reload failed while writing the decapsulation settings; the running configuration stays");
            // Best effort back to what user space still parses with.
            let _ = classifier.set_decap(&cfg.decap);
            metrics.config_reloads.with_label_values(&["failed"]).inc();
            return Err(vec![format!(
                "writing the [decap] settings to the XDP program failed: {e}"
            )]);
        }
    }
    // The snap before the rules that need it: a frame cut under the old
    // snap and judged by new rules that read further is possible only for
    // the frames in flight at the switch.
    if new.snap() != cfg.snap() {
        if let Err(e) = classifier.set_snap(&new.snap()) {
            tracing::error!(error = %e, "reload failed while writing the snap; the running configuration stays");
            let _ = classifier.set_snap(&cfg.snap());
            let _ = classifier.set_decap(&cfg.decap);
            metrics.config_reloads.with_label_values(&["failed"]).inc();
            return Err(vec![format!("writing the snap to the XDP program failed: {e}")]);
        }
        tracing::info!(snap = %new.snap(), "what of a captured frame reaches user space");
    }
    for w in &new.warnings {
        tracing::warn!(warning = %w, "configuration accepted with a warning");
    }
    if let Err(e) = classifier.set_domestic(&added) {
        tracing::error!(error = %e, "reload failed while adding domestic prefixes; removing what was added");
        classifier.remove_domestic(&added);
        let _ = classifier.set_snap(&cfg.snap());
        let _ = classifier.set_decap(&cfg.decap);
        metrics.config_reloads.with_label_values(&["failed"]).inc();
        return Err(vec![format!("updating the domestic prefixes failed: {e}")]);
    }
    let mut state = new.selection_state();
    state.generation = selection.load().generation + 1;
    selection.store(Arc::new(state));
    classifier.remove_domestic(&removed);
    if new.rules.version != cfg.rules.version {
        let _ = metrics.ruleset_version.remove_label_values(&[&cfg.rules.version]);
        metrics.ruleset_version.with_label_values(&[&new.rules.version]).set(1);
    }
    tracing::info!(
        ruleset_version = %new.rules.version,
        rules = new.rules.rules.len(),
        domestic_added = added.len(),
        domestic_removed = removed.len(),
        "configuration reloaded"
    );
    let report = format!(
        "reloaded: ruleset version {}, {} rules",
        new.rules.version,
        new.rules.rules.len()
    );
    *cfg = new;
    Ok(report)
}

/// How long a reload waits for every worker to run the new state.
const ADOPT_TIMEOUT: Duration = Duration::from_secs(5);

/// After a reload swapped the state in: waits until every worker runs it
/// (each publishes the generation it runs; an idle worker adopts within
/// its poll interval), then counts the reload. Only then is it "ok".
async fn in_force(
    result: Result<String, Vec<String>>,
    selection: &crate::select::SharedSelection,
    adopted: &[(u32, Arc<WorkerSignals>)],
    metrics: &Metrics,
    timeout: Duration,
) -> Result<String, Vec<String>> {
    let report = result?;
    let generation = selection.load().generation;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let behind: Vec<u32> = adopted
            .iter()
            .filter(|(_, a)| a.adopted.load(Ordering::Acquire) < generation)
            .map(|(q, _)| *q)
            .collect();
        if behind.is_empty() {
            metrics.config_reloads.with_label_values(&["ok"]).inc();
            return Ok(format!("{report}; in force on {} queue(s)", adopted.len()));
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::error!(?behind, "reload swapped in, but these queues do not run it yet");
            metrics.config_reloads.with_label_values(&["failed"]).inc();
            return Err(vec![format!(
                "the new configuration was swapped in, but queue(s) {behind:?} have not adopted it within {} s; \
                 their workers may be stuck: check furui_frames_received_total and the log",
                timeout.as_secs_f64()
            )]);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Whether `new` may replace `cfg`'s domestic set: it stops covering at
/// most `reload_max_removed_percent` of the prefixes in force, or the
/// operator confirmed it. The error says how much and what to do.
fn domestic_removal_allowed(cfg: &Config, new: &Config, ask: ReloadAsk) -> Result<(), String> {
    let total = cfg.domestic_list.len();
    if total == 0 {
        return Ok(());
    }
    let gone = crate::config::prefixes::uncovered(&cfg.domestic_list, &new.domestic_list).len();
    let limit = usize::from(cfg.domestic_max_removed_percent);
    // gone / total > limit / 100, in integers.
    if gone * 100 <= limit * total || ask.confirm_domestic_removal {
        return Ok(());
    }
    Err(format!(
        "the new configuration stops covering {gone} of the {total} domestic prefixes in force \
         (more than [domestic] reload_max_removed_percent = {limit}); the running configuration stays. \
         If the domestic set really shrinks, run `furui reload --confirm-domestic-removal`"
    ))
}

/// Imported rules refused and left out (`[selection] skip_refused_rules`),
/// each with its file, line and keyword.
fn log_refusals(rules: &crate::select::rules::RuleSet) {
    for r in &rules.imports.refusals {
        tracing::warn!(refusal = %r, "imported rule refused and left out");
    }
}

/// A reload may shrink the rules in force by at most `[selection]
/// reload_max_removed_percent` of their number (a feed emptied, revoked
/// wholesale or cut short), or the operator confirms. Rules replaced by
/// as many new ones are not a shrink.
fn rules_removal_allowed(cfg: &Config, new: &Config, ask: ReloadAsk) -> Result<(), String> {
    let total = cfg.rules.rules.len();
    if total == 0 || ask.confirm_rules_removal {
        return Ok(());
    }
    let gone = total.saturating_sub(new.rules.rules.len());
    let limit = usize::from(cfg.rules_max_removed_percent);
    if gone * 100 <= limit * total {
        return Ok(());
    }
    Err(format!(
        "the new rules drop {gone} of the {total} rules in force (more than [selection] \
         reload_max_removed_percent = {limit}); the running configuration stays. \
         If the rules really go, run `furui reload --confirm-rules-removal`"
    ))
}

fn audit_reload(trail: &crate::audit::AuditLog, cfg: &Config, ask: ReloadAsk, result: &Result<String, Vec<String>>) {
    trail.record(
        "reload",
        serde_json::json!({
            "requested_by": match (ask.uid, ask.feed) {
                (Some(uid), _) => serde_json::json!({ "uid": uid }),
                (None, Some(feed)) => serde_json::json!(feed),
                (None, None) => serde_json::json!("SIGHUP"),
            },
            "confirmed_domestic_removal": ask.confirm_domestic_removal,
            "confirmed_rules_removal": ask.confirm_rules_removal,
            "ruleset_imports": &cfg.rules.imports.counts,
            "accepted": result.is_ok(),
            "errors": result.as_ref().err().map_or(0, Vec::len),
            "config_sha256": config_digest(&cfg.path),
            "ruleset_version": cfg.rules.version.to_string(),
            "ruleset_sha256": cfg.rules.sha256,
            "recipients": crate::audit::policy::of(&cfg.export),
            "approvals": cfg.signed_approvals(),
        }),
        false,
    );
}

/// Applies the windows after a reload. An accepted reload releases the
/// holds of a clock step (the operator has looked at the clock); the reply
/// names every window the configuration opens that furui keeps closed.
fn windows_after_reload(
    mut result: Result<String, Vec<String>>,
    cfg: &Config,
    classifier: &Classifier,
    metrics: &Metrics,
    tracker: &mut WindowTracker,
    trail: &crate::audit::AuditLog,
) -> Result<Result<String, Vec<String>>, RunError> {
    if result.is_ok() {
        let released = tracker.reloaded();
        if !released.is_empty() {
            let names: Vec<&str> = released.iter().map(|m| m.name()).collect();
            tracing::info!(measures = ?names, "reload accepted: windows held since a clock step or an unreadable record of ended windows are released");
            trail.record("window_hold_released", serde_json::json!({ "measures": names }), false);
        }
    }
    let now = Now::read();
    apply_windows(cfg, classifier, metrics, tracker, trail, now)?;
    if let Ok(msg) = &mut result {
        for (m, h) in tracker.held(cfg, now.wall) {
            msg.push_str(&format!("; {} stays closed: {}", m.name(), h.why()));
        }
    }
    Ok(result)
}

#[allow(clippy::too_many_arguments)]
async fn supervise(
    cfg: &mut Config,
    selection: &crate::select::SharedSelection,
    classifier: &Classifier,
    metrics: &Metrics,
    tracker: &mut WindowTracker,
    handles: &[(u32, std::thread::JoinHandle<WorkerReport>)],
    adopted: &[(u32, Arc<WorkerSignals>)],
    trail: &crate::audit::AuditLog,
) -> Result<(), RunError> {
    use tokio::signal::unix::{signal, SignalKind};
    let listener = tokio::net::TcpListener::bind(cfg.metrics_listen)
        .await
        .map_err(|source| RunError::MetricsListen {
            addr: cfg.metrics_listen,
            source,
        })?;
    let m = metrics.clone();
    tokio::spawn(http::serve(listener, Arc::new(move || m.encode())));
    tracing::info!(listen = %cfg.metrics_listen, "metrics endpoint up");

    let mut term = signal(SignalKind::terminate()).map_err(RunError::Runtime)?;
    let mut int = signal(SignalKind::interrupt()).map_err(RunError::Runtime)?;
    let mut hup = signal(SignalKind::hangup()).map_err(RunError::Runtime)?;
    let mut requests = super::socket::listen(&cfg.control_socket).map_err(|source| RunError::ControlSocket {
        path: cfg.control_socket.clone(),
        source,
    })?;
    // TAXII feeds pull off the data path; a changed bundle asks for a
    // reload here, which the same guards judge as any other.
    let (feed_tx, mut feed_rx) = tokio::sync::mpsc::channel::<String>(8);
    for feed in &cfg.taxii {
        tokio::spawn(crate::feeds::taxii::run(feed.clone(), feed_tx.clone(), metrics.clone()));
    }
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let every = Duration::from_secs(cfg.audit.as_ref().map_or(3600, |a| u64::from(a.checkpoint_secs)));
    let mut checkpoint = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM: stopping"); return Ok(()); }
            _ = int.recv() => { tracing::info!("SIGINT: stopping"); return Ok(()); }
            _ = hup.recv() => {
                let result = reload(cfg, ReloadAsk::SIGHUP, selection, classifier, metrics);
                let result = in_force(result, selection, adopted, metrics, ADOPT_TIMEOUT).await;
                audit_reload(trail, cfg, ReloadAsk::SIGHUP, &result);
                // Windows of the new config take effect at once.
                let _ = windows_after_reload(result, cfg, classifier, metrics, tracker, trail)?;
            }
            Some(feed) = feed_rx.recv() => {
                tracing::info!(feed = %feed, "a TAXII pull changed its bundle: reloading");
                let result = reload(cfg, ReloadAsk::FEED, selection, classifier, metrics);
                let result = in_force(result, selection, adopted, metrics, ADOPT_TIMEOUT).await;
                audit_reload(trail, cfg, ReloadAsk::FEED, &result);
                let _ = windows_after_reload(result, cfg, classifier, metrics, tracker, trail)?;
            }
            Some(req) = requests.recv() => {
                let result = reload(cfg, req.ask, selection, classifier, metrics);
                let result = in_force(result, selection, adopted, metrics, ADOPT_TIMEOUT).await;
                audit_reload(trail, cfg, req.ask, &result);
                let result = windows_after_reload(result, cfg, classifier, metrics, tracker, trail)?;
                let _ = req.reply.send(result);
            }
            _ = checkpoint.tick(), if trail.is_enabled() => {
                refresh_xdp_stats(classifier, metrics);
                trail.record("checkpoint", checkpoint_counters(metrics), true);
            }
            _ = tick.tick() => {
                refresh_xdp_stats(classifier, metrics);
                apply_windows(cfg, classifier, metrics, tracker, trail, Now::read())?;
                if let Some((q, _)) = handles.iter().find(|(_, h)| h.is_finished()) {
                    return Err(RunError::WorkerDied { queue: *q });
                }
                if let Some((q, _)) = adopted.iter().find(|(_, s)| s.failed.load(Ordering::Acquire)) {
                    return Err(RunError::WorkerPanicked { queue: *q });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(generation: u64) -> crate::select::SharedSelection {
        let cfg = crate::config::Config::parse(
            std::path::Path::new("t.toml"),
            "[capture]\ninterface = \"x\"\n[records]\npath = \"r\"\n",
        )
        .unwrap();
        let mut st = cfg.selection_state();
        st.generation = generation;
        Arc::new(arc_swap::ArcSwap::from_pointee(st))
    }

    #[test]
    fn a_reload_is_ok_only_once_every_worker_runs_it() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let metrics = Metrics::new();
        let selection = state(3);
        let slot = |g| {
            let s = WorkerSignals::default();
            s.adopted.store(g, Ordering::Relaxed);
            Arc::new(s)
        };
        let adopted = vec![(0, slot(3)), (1, slot(2))];
        // Queue 1 adopts 50 ms later, from a worker thread.
        let late = adopted[1].1.clone();
        let started = std::time::Instant::now();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            late.adopted.store(3, Ordering::Release);
        });
        let r = rt.block_on(in_force(
            Ok("reloaded".into()),
            &selection,
            &adopted,
            &metrics,
            Duration::from_secs(5),
        ));
        t.join().unwrap();
        assert_eq!(r, Ok("reloaded; in force on 2 queue(s)".to_string()));
        assert!(
            started.elapsed() >= Duration::from_millis(50),
            "answered before queue 1 adopted"
        );
        assert_eq!(metrics.config_reloads.with_label_values(&["ok"]).get(), 1);
        // A queue that never adopts: an error naming it, counted as failed.
        adopted[1].1.adopted.store(2, Ordering::Release);
        let r = rt.block_on(in_force(
            Ok("reloaded".into()),
            &selection,
            &adopted,
            &metrics,
            Duration::from_millis(30),
        ));
        let e = r.unwrap_err();
        assert!(e[0].contains("queue(s) [1] have not adopted it"), "{e:?}");
        assert_eq!(metrics.config_reloads.with_label_values(&["failed"]).get(), 1);
        // A rejected reload passes through untouched and uncounted here.
        let r = rt.block_on(in_force(
            Err(vec!["bad".into()]),
            &selection,
            &adopted,
            &metrics,
            Duration::from_millis(30),
        ));
        assert_eq!(r, Err(vec!["bad".to_string()]));
        assert_eq!(metrics.config_reloads.with_label_values(&["ok"]).get(), 1);
    }
}
