//! Control plane: the configuration, parsed and validated in one pass that
//! reports every error with its file and line (Vector style).
//!
//! Invariant kept: a `Config` value exists only if the whole file is valid,
//! so a daemon never runs on half a configuration.

// Sections in the order of a config file; each file holds a section's
// TOML shape, its validated type and its validation.
pub mod appliance;
pub mod approvals;
pub mod capture;
pub mod decap;
pub mod domestic;
pub mod measures;
pub mod selection;
pub mod flows;
pub mod records;
pub mod control;
pub mod deid;
pub mod purposes;
pub mod recipients;
pub mod sinks;
pub mod api;
pub mod aggregates;
pub mod export;
pub mod audit;
pub mod retention;
pub mod taxii;
// Shared: reading values, errors with lines, prefix lists, rules files,
// the memory bound a configuration implies.
pub mod errors;
pub mod memory;
pub mod prefixes;
mod read;
pub mod rules;
mod sections;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use time::OffsetDateTime;
use toml::de::DeTable;

pub use capture::{BindMode, Capture, CaptureMode, SnapMode, XdpMode, MAX_QUEUE_ID};
pub use errors::{ConfigError, ConfigErrors};
pub use flows::Flows;
pub use measures::Window;
pub use records::Records;

use crate::classify::{Measure, PrefixSet};
pub(crate) use errors::Collector;
pub(crate) use read::de;
use sections::Sections;

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    /// `[appliance] id` (default: the host's name).
    pub appliance: String,
    /// `[approvals]`: windows open only under signed approvals.
    pub approvals: Option<approvals::Approvals>,
    pub capture: Capture,
    /// Domestic prefixes as configured (for the BPF tries) ...
    pub domestic_list: Vec<IpNet>,
    /// ... and as a lookup set (for the daemon's own classification).
    pub domestic: PrefixSet,
    /// `[domestic] reload_max_removed_percent`.
    pub domestic_max_removed_percent: u8,
    pub measures: BTreeMap<Measure, Window>,
    pub indicators: Vec<crate::select::IndicatorSet>,
    /// Selection rules (empty when no `[selection] rules_dir`).
    pub rules: std::sync::Arc<crate::select::rules::RuleSet>,
    /// `[selection] reload_max_removed_percent`.
    pub rules_max_removed_percent: u8,
    /// `[[selection.taxii]]` feeds.
    pub taxii: Vec<taxii::Taxii>,
    pub flows: Flows,
    pub records: Records,
    pub metrics_listen: SocketAddr,
    /// Unix socket of the control command (`furui reload`).
    pub control_socket: PathBuf,
    /// De-identification and the recipients records may be exported to.
    pub export: export::Export,
    /// The audit trail, when configured.
    pub audit: Option<audit::Audit>,
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
        if self.appliance != new.appliance {
            Some("[appliance]")
        } else if self.capture != new.capture {
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
        } else if self.taxii != new.taxii {
            Some("[[selection.taxii]]")
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

    /// What of a captured frame the XDP program keeps under this
    /// configuration and its rules.
    pub fn snap(&self) -> crate::select::Snap {
        match self.capture.snap {
            SnapMode::Ruleset => crate::select::Snap::of_rules(&self.rules),
            SnapMode::Whole => crate::select::Snap::WHOLE,
        }
    }

    /// The signed approvals the windows were cut to, as the audit trail
    /// keeps them (in `start` and `reload` entries).
    pub fn signed_approvals(&self) -> Vec<serde_json::Value> {
        self.measures
            .values()
            .filter_map(|w| w.signed.as_ref().map(crate::approvals::Signed::to_json))
            .collect()
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

fn parse_into(path: &Path, text: &str, c: &mut Collector<'_>) -> Option<Config> {
    let (root, syntax) = DeTable::parse_recoverable(text);
    for e in &syntax {
        c.from_toml(e);
    }
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut s = Sections::read(root.get_ref(), c);

    let appliance = appliance::validate(std::mem::take(&mut s.appliance), c);
    let capture = s.capture.and_then(|x| capture::validate(x, c));
    let mut warnings = Vec::new();
    let decap = decap::validate(s.decap, c, &mut warnings);
    let domestic = domestic::validate(s.domestic.unwrap_or_default(), &base, c);
    let approvals = approvals::validate(s.approvals.take(), &base, c);
    let measures = measures::validate(
        s.measures,
        approvals.as_ref(),
        appliance.as_deref().unwrap_or(""),
        c,
        &mut warnings,
    );
    domestic::check_covers_enabled_measures(&domestic, measures.as_ref(), s.domestic_span, c);
    let indicators = selection::validate_indicators(s.indicators, &base, c);
    let rules_dir = s
        .selection
        .rules_dir
        .as_ref()
        .map(|d| prefixes::resolve(&base, d.get_ref()));
    let taxii = taxii::validate(std::mem::take(&mut s.selection.taxii), rules_dir.as_deref(), &base, c);
    // Bundles TAXII pulls keep outside the rules directory load with it.
    let bundles: Vec<_> = taxii
        .iter()
        .flatten()
        .filter(|t| t.bundle.parent() != rules_dir.as_deref() && t.bundle.exists())
        .map(|t| t.bundle.clone())
        .collect();
    let rules = selection::load_rules(&s.selection, &base, &bundles, c);
    let rules_max_removed_percent = selection::max_removed_percent(&s.selection, c);
    let flows = flows::validate(s.flows, c);
    let records = s.records.and_then(|r| records::validate(r, &base, c));
    let metrics_listen = control::validate_metrics(&s.metrics, c);
    let audit = audit::validate(s.audit, &base, c);
    let retention = retention::validate(s.retention, audit.is_some(), &base, c);
    let export = export::validate(s.export, appliance.as_deref().unwrap_or(""), &base, c);

    if !s.ok {
        return None;
    }
    Some(Config {
        path: path.to_path_buf(),
        appliance: appliance?,
        approvals,
        capture: capture?,
        domestic: domestic.list.iter().copied().collect(),
        domestic_list: domestic.list,
        domestic_max_removed_percent: domestic.max_removed_percent?,
        measures: measures?,
        indicators: indicators?,
        rules: std::sync::Arc::new(rules?),
        rules_max_removed_percent: rules_max_removed_percent?,
        taxii: taxii?,
        flows: flows?,
        records: records?,
        metrics_listen: metrics_listen?,
        control_socket: prefixes::resolve(&base, &s.control.socket),
        export: export?,
        audit,
        retention,
        decap: decap?,
        warnings,
    })
}

#[cfg(test)]
mod tests;
