//! Control plane: the configuration, parsed and validated in one pass that
//! reports every error with its file and line (Vector style).
//!
//! Invariant kept: a `Config` value exists only if the whole file is valid,
//! so a daemon never runs on half a configuration.

pub mod decap;
pub mod errors;
pub mod export;
pub mod memory;
pub mod prefixes;
pub mod retention;
pub mod rules;
pub mod schema;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::de::DeserializeOwned;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

pub use errors::{ConfigError, ConfigErrors};
pub use schema::{BindMode, CaptureMode, XdpMode};

use crate::classify::{Measure, PrefixSet};
pub(crate) use errors::Collector;
use schema::*;

/// Highest queue id the XSKMAP has room for (FURUI_MAX_QUEUES - 1).
pub const MAX_QUEUE_ID: u32 = 63;

#[derive(Debug, Clone, PartialEq)]
pub struct Capture {
    pub interface: String,
    pub queues: Vec<u32>,
    pub xdp_mode: XdpMode,
    pub mode: CaptureMode,
    pub bind: BindMode,
    pub frame_count: u32,
    pub frame_size: u32,
    pub fill_ring_size: u32,
    pub rx_ring_size: u32,
    pub batch_size: u32,
    pub huge_pages: bool,
    pub idle_nap: Duration,
}

impl Capture {
    /// Bytes of UMEM one queue's worker locks.
    pub fn umem_bytes(&self) -> u64 {
        u64::from(self.frame_count) * u64::from(self.frame_size)
    }
}

/// An authorization window of one measure (Art. 18 approval).
#[derive(Debug, Clone)]
pub struct Window {
    pub enabled: bool,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub approval: Option<String>,
}

impl Window {
    /// Authorized at `now`: enabled, and not_before <= now < not_after.
    pub fn is_open(&self, now: OffsetDateTime) -> bool {
        self.enabled && self.not_before <= now && now < self.not_after
    }
}

pub use crate::select::IndicatorSet;

#[derive(Debug, Clone, PartialEq)]
pub struct Flows {
    pub idle_timeout: Duration,
    pub active_timeout: Duration,
    pub max_flows: usize,
    pub max_fragments: usize,
    pub fragment_timeout: Duration,
    /// Bytes the reassembly buffers of one queue may hold at once.
    pub reassembly_budget: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Records {
    pub path: PathBuf,
    pub queue_capacity: usize,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub capture: Capture,
    /// Domestic prefixes as configured (for the BPF tries) ...
    pub domestic_list: Vec<IpNet>,
    /// ... and as a lookup set (for the daemon's own classification).
    pub domestic: PrefixSet,
    /// `[domestic] reload_max_removed_percent`.
    pub domestic_max_removed_percent: u8,
    pub measures: BTreeMap<Measure, Window>,
    pub indicators: Vec<IndicatorSet>,
    /// Selection rules (empty when no `[selection] rules_dir`).
    pub rules: std::sync::Arc<crate::select::rules::RuleSet>,
    pub flows: Flows,
    pub records: Records,
    pub metrics_listen: SocketAddr,
    /// Unix socket of the control command (`furui reload`).
    pub control_socket: PathBuf,
    /// De-identification and the recipients records may be exported to.
    pub export: export::Export,
    /// The audit trail, when configured.
    pub audit: Option<export::Audit>,
    /// The retention store, when configured.
    pub retention: Option<retention::Retention>,
    /// Which encapsulations the XDP walk opens (`[decap]`).
    pub decap: crate::classify::walk::DecapConfig,
    /// What is valid but weakens a guarantee (`check-config` prints them,
    /// the daemon logs them at start and reload).
    pub warnings: Vec<ConfigError>,
}

impl Config {
    /// What differs between `self` and `new` that only a restart can
    /// apply (the capture plumbing, the flow tables, the sink, the metrics
    /// endpoint), or None if `new` can be loaded into a running daemon.
    pub fn restart_required(&self, new: &Config) -> Option<&'static str> {
        if self.capture != new.capture {
            Some("[capture]")
        } else if self.flows != new.flows {
            Some("[flows]")
        } else if self.records != new.records {
            Some("[records]")
        } else if self.metrics_listen != new.metrics_listen {
            Some("[metrics]")
        } else if self.control_socket != new.control_socket {
            Some("[control]")
        } else if self.audit != new.audit {
            Some("[audit]")
        } else if self.retention != new.retention {
            Some("[retention]")
        } else if self.export != new.export {
            Some("[deid], [export], [api], [aggregates], [[purposes]], [[consents]] or [[recipients]]")
        } else {
            None
        }
    }

    /// What the selection stage reads from this configuration.
    pub fn selection_state(&self) -> crate::select::SelectionState {
        crate::select::SelectionState::new(
            self.domestic.clone(),
            self.indicators.clone(),
            self.rules.clone(),
            self.decap,
        )
    }

    /// Which measures are authorized at `now`.
    pub fn authorized_at(&self, now: OffsetDateTime) -> BTreeMap<Measure, bool> {
        Measure::ALL
            .iter()
            .map(|m| (*m, self.measures.get(m).is_some_and(|w| w.is_open(now))))
            .collect()
    }

    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: path.to_path_buf(),
                line: 0,
                column: 0,
                message: format!("cannot read the configuration file: {e}"),
            }])
        })?;
        Self::parse(path, &text)
    }

    /// Parses and validates `text` (read from `path`, which also anchors
    /// relative prefix-file paths).
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigErrors> {
        let mut errors = Vec::new();
        let cfg = {
            let mut c = Collector::new(path, text, &mut errors);
            parse_into(path, text, &mut c)
        };
        errors.sort_by_key(|e| (e.file.clone(), e.line, e.column));
        match cfg {
            Some(cfg) if errors.is_empty() => Ok(cfg),
            _ => Err(ConfigErrors(errors)),
        }
    }
}

const SECTIONS: &str =
    "capture, decap, domestic, measures, indicators, selection, flows, records, metrics, control, deid, export, api, aggregates, audit, retention, purposes, consents, recipients";

pub(crate) fn de<T: DeserializeOwned>(v: &Spanned<DeValue<'_>>, c: &mut Collector<'_>) -> Option<T> {
    match T::deserialize(ValueDeserializer::from(v.clone())) {
        Ok(t) => Some(t),
        Err(e) => {
            c.from_toml(&e);
            None
        }
    }
}

/// An array of tables (`[[name]]`): each item deserialized on its own, so
/// every bad item is reported. False if any item failed.
fn array_of<T: DeserializeOwned>(
    name: &str,
    value: &Spanned<DeValue<'_>>,
    out: &mut Vec<T>,
    c: &mut Collector<'_>,
) -> bool {
    match value.get_ref() {
        DeValue::Array(a) => {
            let mut ok = true;
            for item in a.iter() {
                match de::<T>(item, c) {
                    Some(s) => out.push(s),
                    None => ok = false,
                }
            }
            ok
        }
        _ => {
            c.at(
                value.span(),
                format!("`{name}` must be an array of tables ([[{name}]])"),
            );
            false
        }
    }
}

fn parse_into(path: &Path, text: &str, c: &mut Collector<'_>) -> Option<Config> {
    let (root, syntax) = DeTable::parse_recoverable(text);
    for e in &syntax {
        c.from_toml(e);
    }
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();

    let mut capture: Option<CaptureSection> = None;
    let mut decap: Option<decap::DecapSection> = None;
    let mut domestic: Option<DomesticSection> = None;
    let mut domestic_line: Option<std::ops::Range<usize>> = None;
    let mut measures: Vec<(Measure, Spanned<MeasureSection>)> = Vec::new();
    let mut indicators: Vec<IndicatorSection> = Vec::new();
    let mut selection = SelectionSection::default();
    let mut control = ControlSection::default();
    let mut flows = FlowsSection::default();
    let mut records: Option<RecordsSection> = None;
    let mut metrics = MetricsSection::default();
    let mut deid = export::DeidSection::default();
    let mut export_section = export::ExportSection::default();
    let mut api: Option<export::ApiSection> = None;
    let mut aggregates = export::AggregatesSection::default();
    let mut audit: Option<export::AuditSection> = None;
    let mut retention: Option<retention::RetentionSection> = None;
    let mut purposes: Vec<export::PurposeSection> = Vec::new();
    let mut consents: Vec<export::ConsentSection> = Vec::new();
    let mut recipients: Vec<export::RecipientSection> = Vec::new();
    let mut ok = true;

    for (key, value) in root.get_ref().iter() {
        match key.get_ref().as_ref() {
            "capture" => capture = de(value, c),
            "decap" => {
                decap = de(value, c);
                ok &= decap.is_some();
            }
            "domestic" => {
                domestic_line = Some(key.span());
                domestic = de(value, c)
            }
            "flows" => {
                flows = de(value, c).unwrap_or_else(|| {
                    ok = false;
                    FlowsSection::default()
                })
            }
            "records" => records = de(value, c),
            "control" => {
                control = de(value, c).unwrap_or_else(|| {
                    ok = false;
                    ControlSection::default()
                })
            }
            "selection" => {
                selection = de(value, c).unwrap_or_else(|| {
                    ok = false;
                    SelectionSection::default()
                })
            }
            "metrics" => {
                metrics = de(value, c).unwrap_or_else(|| {
                    ok = false;
                    MetricsSection::default()
                })
            }
            "measures" => match value.get_ref() {
                DeValue::Table(t) => {
                    for (mk, mv) in t.iter() {
                        let Some(m) = Measure::from_name(mk.get_ref()) else {
                            c.at(
                                mk.span(),
                                format!(
                                    "unknown measure `{}`; expected transit, inbound or outbound",
                                    mk.get_ref()
                                ),
                            );
                            continue;
                        };
                        match de::<MeasureSection>(mv, c) {
                            Some(s) => measures.push((m, Spanned::new(mv.span(), s))),
                            None => ok = false,
                        }
                    }
                }
                _ => c.at(
                    value.span(),
                    "`measures` must be a table of [measures.transit], [measures.inbound], [measures.outbound]",
                ),
            },
            "indicators" => ok &= array_of(key.get_ref(), value, &mut indicators, c),
            "deid" => {
                deid = de(value, c).unwrap_or_else(|| {
                    ok = false;
                    export::DeidSection::default()
                })
            }
            "export" => {
                export_section = de(value, c).unwrap_or_else(|| {
                    ok = false;
                    export::ExportSection::default()
                })
            }
            "audit" => {
                audit = de(value, c);
                ok &= audit.is_some();
            }
            "retention" => {
                retention = de(value, c);
                ok &= retention.is_some();
            }
            "aggregates" => {
                aggregates = de(value, c).unwrap_or_else(|| {
                    ok = false;
                    export::AggregatesSection::default()
                })
            }
            "api" => {
                api = de(value, c);
                ok &= api.is_some();
            }
            "purposes" => ok &= array_of(key.get_ref(), value, &mut purposes, c),
            "consents" => ok &= array_of(key.get_ref(), value, &mut consents, c),
            "recipients" => ok &= array_of(key.get_ref(), value, &mut recipients, c),
            other => c.at(
                key.span(),
                format!("unknown section `{other}`; expected one of: {SECTIONS}"),
            ),
        }
    }

    if capture.is_none() && !root.get_ref().keys().any(|k| k.get_ref() == "capture") {
        c.at_line(1, "missing section [capture] (at least `interface = \"...\"`)");
    }
    if records.is_none() && !root.get_ref().keys().any(|k| k.get_ref() == "records") {
        c.at_line(1, "missing section [records] (at least `path = \"...\"`)");
    }

    let capture = capture.and_then(|s| validate_capture(s, c));
    let mut warnings = Vec::new();
    let decap = decap::validate(decap, c, &mut warnings);
    let domestic = domestic.unwrap_or_default();
    let errors_before_domestic = c.errors.len();
    let domestic_list = prefixes::load(&domestic.prefixes, &domestic.files, &base, c);
    let domestic_read = c.errors.len() == errors_before_domestic;
    let domestic_max_removed = match &domestic.reload_max_removed_percent {
        None => Some(DEFAULT_RELOAD_MAX_REMOVED_PERCENT),
        Some(p) if *p.get_ref() <= 100 => Some(*p.get_ref()),
        Some(p) => {
            c.at(
                p.span(),
                format!(
                    "reload_max_removed_percent = {} is not a percentage (0-100)",
                    p.get_ref()
                ),
            );
            None
        }
    };
    let measures = validate_measures(measures, c);
    // Fail safe: with no domestic prefix every domestic packet is transit
    // and would be captured. (When a prefix file could not be read, that
    // error is already reported.)
    if let Some(m) = &measures {
        let enabled: Vec<&str> = m.iter().filter(|(_, w)| w.enabled).map(|(m, _)| m.name()).collect();
        if domestic_list.is_empty() && domestic_read && !enabled.is_empty() {
            let msg = format!(
                "[domestic] holds no prefix while measure(s) {} are enabled: every domestic packet would be \
                 classified transit and captured; list the domestic address space (prefixes or files) or \
                 disable the measures",
                enabled.join(", ")
            );
            match &domestic_line {
                Some(span) => c.at(span.clone(), msg),
                None => c.at_line(1, msg),
            }
        }
    }
    let indicators = validate_indicators(indicators, &base, c);
    let rules = match &selection.rules_dir {
        None => Some(crate::select::rules::RuleSet::empty()),
        Some(d) => match rules::load_dir(&prefixes::resolve(&base, d.get_ref())) {
            Ok(rs) => Some(rs),
            Err(e) => {
                // Errors inside the rules files carry their own file and line.
                c.errors.extend(e.0);
                None
            }
        },
    };
    let flows = validate_flows(flows, c);
    let records = records.and_then(|r| validate_records(r, &base, c));
    let metrics_listen = match metrics.listen.get_ref().parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            c.at(
                metrics.listen.span(),
                format!(
                    "metrics listen address `{}` is not ADDR:PORT (e.g. 127.0.0.1:9464)",
                    metrics.listen.get_ref()
                ),
            );
            None
        }
    };

    let audit = export::validate_audit(audit, &base, c);
    let retention = retention::validate(retention, audit.is_some(), &base, c);
    let export = export::validate(
        aggregates,
        api,
        export_section,
        deid,
        purposes,
        consents,
        recipients,
        &base,
        c,
    );

    if !ok {
        return None;
    }
    let domestic_set: PrefixSet = domestic_list.iter().copied().collect();
    Some(Config {
        path: path.to_path_buf(),
        capture: capture?,
        domestic_list,
        domestic: domestic_set,
        domestic_max_removed_percent: domestic_max_removed?,
        measures: measures?,
        indicators: indicators?,
        rules: std::sync::Arc::new(rules?),
        flows: flows?,
        records: records?,
        metrics_listen: metrics_listen?,
        control_socket: prefixes::resolve(&base, &control.socket),
        export: export?,
        audit,
        retention,
        decap: decap?,
        warnings,
    })
}

fn validate_capture(s: CaptureSection, c: &mut Collector<'_>) -> Option<Capture> {
    let before = c.errors.len();
    let iface = s.interface.get_ref();
    if iface.is_empty() || iface.len() > 15 || iface.contains('/') || iface.contains(char::is_whitespace) {
        c.at(
            s.interface.span(),
            format!("interface name `{iface}` is not a valid Linux interface name (1-15 characters, no '/' or spaces)"),
        );
    }
    let queues = s.queues.get_ref();
    if queues.is_empty() {
        c.at(
            s.queues.span(),
            "`queues` is empty: list at least one RX queue, e.g. [0]",
        );
    }
    let mut seen = HashSet::new();
    for q in queues {
        if *q > MAX_QUEUE_ID {
            c.at(
                s.queues.span(),
                format!("queue {q} is above the maximum {MAX_QUEUE_ID}"),
            );
        }
        if !seen.insert(*q) {
            c.at(s.queues.span(), format!("queue {q} is listed twice"));
        }
    }
    let fs = *s.frame_size.get_ref();
    if fs != 2048 && fs != 4096 {
        c.at(s.frame_size.span(), format!("frame_size {fs} must be 2048 or 4096"));
    }
    for (name, v) in [("fill_ring_size", &s.fill_ring_size), ("rx_ring_size", &s.rx_ring_size)] {
        let n = *v.get_ref();
        if !n.is_power_of_two() || !(64..=65536).contains(&n) {
            c.at(
                v.span(),
                format!("{name} {n} must be a power of two between 64 and 65536"),
            );
        }
    }
    let fc = *s.frame_count.get_ref();
    if fc < *s.fill_ring_size.get_ref() {
        c.at(
            s.frame_count.span(),
            format!(
                "frame_count {fc} is smaller than fill_ring_size {}; the fill ring could never be filled",
                s.fill_ring_size.get_ref()
            ),
        );
    }
    let b = *s.batch_size.get_ref();
    if b == 0 || b > *s.rx_ring_size.get_ref() {
        c.at(
            s.batch_size.span(),
            format!("batch_size {b} must be between 1 and rx_ring_size"),
        );
    }
    // Zero-copy puts every frame of the queue in the UMEM, the ones XDP
    // drops (domestic, unauthorized) or passes included, and nothing
    // zeroes those: only on the operator's explicit word, never inline.
    if *s.bind.get_ref() == BindMode::ZeroCopy {
        if s.mode == CaptureMode::Inline {
            c.at(
                s.bind.span(),
                "bind = \"zero_copy\" cannot be used with mode = \"inline\": the frames XDP passes to the stack \
                 stay in the UMEM and cannot be zeroed; use bind = \"copy\"",
            );
        } else if !s.zero_copy_exposes_dropped_frames {
            c.at(
                s.bind.span(),
                "bind = \"zero_copy\" makes the NIC write every frame of the queue into furui's memory, the domestic \
                 and unauthorized frames XDP drops included, and those are never zeroed; use bind = \"copy\", or \
                 set zero_copy_exposes_dropped_frames = true if that is accepted",
            );
        }
    }
    let nap = *s.idle_nap_us.get_ref();
    if nap > 20_000 {
        c.at(
            s.idle_nap_us.span(),
            format!("idle_nap_us {nap} is above 20000; a long nap lets the RX ring overflow under load and keeps frames waiting unerased"),
        );
    }
    if c.errors.len() != before {
        return None;
    }
    Some(Capture {
        interface: iface.clone(),
        queues: queues.clone(),
        xdp_mode: s.xdp_mode,
        mode: s.mode,
        bind: *s.bind.get_ref(),
        frame_count: fc,
        frame_size: fs,
        fill_ring_size: *s.fill_ring_size.get_ref(),
        rx_ring_size: *s.rx_ring_size.get_ref(),
        batch_size: b,
        huge_pages: s.huge_pages,
        idle_nap: Duration::from_micros(u64::from(nap)),
    })
}

pub(crate) fn parse_time(v: &Spanned<toml::Value>, what: &str, c: &mut Collector<'_>) -> Option<OffsetDateTime> {
    let s = match v.get_ref() {
        toml::Value::String(s) => s.clone(),
        toml::Value::Datetime(d) => d.to_string(),
        _ => {
            c.at(
                v.span(),
                format!("{what} must be an RFC 3339 date-time, e.g. \"2026-01-01T00:00:00Z\""),
            );
            return None;
        }
    };
    match OffsetDateTime::parse(&s, &Rfc3339) {
        Ok(t) => Some(t),
        Err(_) => {
            c.at(
                v.span(),
                format!("{what} `{s}` is not an RFC 3339 date-time with offset, e.g. \"2026-01-01T00:00:00Z\""),
            );
            None
        }
    }
}

fn validate_measures(
    list: Vec<(Measure, Spanned<MeasureSection>)>,
    c: &mut Collector<'_>,
) -> Option<BTreeMap<Measure, Window>> {
    let mut out = BTreeMap::new();
    let mut ok = true;
    for (m, s) in list {
        let span = s.span();
        let s = s.into_inner();
        let nb = parse_time(&s.not_before, "not_before", c);
        let na = parse_time(&s.not_after, "not_after", c);
        match (nb, na) {
            (Some(nb), Some(na)) if nb < na => {
                out.insert(
                    m,
                    Window {
                        enabled: s.enabled,
                        not_before: nb,
                        not_after: na,
                        approval: s.approval,
                    },
                );
            }
            (Some(_), Some(_)) => {
                c.at(
                    span,
                    format!("measure {}: not_before must be earlier than not_after", m.name()),
                );
                ok = false;
            }
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

fn validate_indicators(list: Vec<IndicatorSection>, base: &Path, c: &mut Collector<'_>) -> Option<Vec<IndicatorSet>> {
    let before = c.errors.len();
    let mut names = HashSet::new();
    let mut out = Vec::new();
    for s in list {
        let name = s.name.get_ref();
        if name.is_empty()
            || !name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
        {
            c.at(
                s.name.span(),
                format!("indicator set name `{name}` must be non-empty ASCII letters, digits, '-' or '_'"),
            );
        }
        if !names.insert(name.clone()) {
            c.at(s.name.span(), format!("indicator set `{name}` is defined twice"));
        }
        let nets = prefixes::load(&s.prefixes, &s.files, base, c);
        if nets.is_empty() && s.files.is_empty() {
            c.at(s.name.span(), format!("indicator set `{name}` has no prefixes"));
        }
        out.push(IndicatorSet {
            name: name.clone(),
            prefixes: nets.into_iter().collect(),
        });
    }
    (c.errors.len() == before).then_some(out)
}

fn validate_flows(s: FlowsSection, c: &mut Collector<'_>) -> Option<Flows> {
    let before = c.errors.len();
    let idle = *s.idle_timeout_secs.get_ref();
    let active = *s.active_timeout_secs.get_ref();
    if idle == 0 {
        c.at(s.idle_timeout_secs.span(), "idle_timeout_secs must be at least 1");
    }
    if active < idle {
        c.at(
            s.active_timeout_secs.span(),
            format!("active_timeout_secs {active} must not be shorter than idle_timeout_secs {idle}"),
        );
    }
    if *s.max_flows.get_ref() == 0 {
        c.at(s.max_flows.span(), "max_flows must be at least 1");
    }
    if *s.max_fragments.get_ref() == 0 {
        c.at(s.max_fragments.span(), "max_fragments must be at least 1");
    }
    let ft = *s.fragment_timeout_secs.get_ref();
    if !(1..=120).contains(&ft) {
        c.at(
            s.fragment_timeout_secs.span(),
            format!("fragment_timeout_secs {ft} must be between 1 and 120"),
        );
    }
    let budget = *s.reassembly_budget_mib.get_ref();
    if !(1..=4096).contains(&budget) {
        c.at(
            s.reassembly_budget_mib.span(),
            format!("reassembly_budget_mib {budget} must be between 1 and 4096"),
        );
    }
    (c.errors.len() == before).then(|| Flows {
        reassembly_budget: (budget as usize) << 20,
        idle_timeout: Duration::from_secs(idle),
        active_timeout: Duration::from_secs(active),
        max_flows: *s.max_flows.get_ref() as usize,
        max_fragments: *s.max_fragments.get_ref() as usize,
        fragment_timeout: Duration::from_secs(ft),
    })
}

fn validate_records(r: RecordsSection, base: &Path, c: &mut Collector<'_>) -> Option<Records> {
    if r.path.get_ref().is_empty() {
        c.at(
            r.path.span(),
            "records.path is empty: give the JSON-lines file to write records to",
        );
        return None;
    }
    if *r.queue_capacity.get_ref() == 0 {
        c.at(r.queue_capacity.span(), "queue_capacity must be at least 1");
        return None;
    }
    Some(Records {
        path: prefixes::resolve(base, r.path.get_ref()),
        queue_capacity: *r.queue_capacity.get_ref() as usize,
    })
}

#[cfg(test)]
mod tests;
