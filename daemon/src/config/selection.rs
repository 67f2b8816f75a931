//! `[[indicators]]` and `[selection]`: the named indicator sets (CIDR
//! lists) and the directory of rules files that decide what is selected.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::errors::Collector;
use super::rules::import::ImportOptions;
use super::{prefixes, rules};
use crate::select::rules::RuleSet;
use crate::select::IndicatorSet;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndicatorSection {
    pub name: Spanned<String>,
    #[serde(default)]
    pub prefixes: Vec<Spanned<String>>,
    #[serde(default)]
    pub files: Vec<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectionSection {
    /// Directory of rules files (`*.toml` and imported formats), relative
    /// to the config file.
    #[serde(default)]
    pub rules_dir: Option<Spanned<String>>,
    /// Suricata address variables (`NAME = "[192.0.2.0/24,…]"`); they add
    /// to or replace suricata.yaml's defaults, except HOME_NET and
    /// EXTERNAL_NET, which are the domestic set and its complement.
    #[serde(default)]
    pub address_vars: Option<Spanned<HashMap<String, String>>>,
    /// Suricata port variables (`HTTP_PORTS = "[80,8080]"`).
    #[serde(default)]
    pub port_vars: Option<Spanned<HashMap<String, String>>>,
    /// Load the rest of an imported feed when some of its rules are
    /// refused (each refusal is logged and counted); off: the load fails.
    #[serde(default)]
    pub skip_refused_rules: bool,
    /// The largest share of the number of rules in force a reload may take away
    /// without `furui reload --confirm-rules-removal`.
    #[serde(default)]
    pub reload_max_removed_percent: Option<Spanned<u8>>,
    /// TAXII 2.1 collections pulled into the rules directory.
    #[serde(default)]
    pub taxii: Vec<super::taxii::TaxiiSection>,
    /// The measures imported rules apply to (default: all three).
    #[serde(default)]
    pub import_measures: Option<Spanned<Vec<String>>>,
}

pub(super) fn validate_indicators(
    list: Vec<IndicatorSection>,
    base: &Path,
    c: &mut Collector<'_>,
) -> Option<Vec<IndicatorSet>> {
    let before = c.errors.len();
    let mut names = HashSet::new();
    let mut out = Vec::new();
    for s in list {
        let name = s.name.get_ref();
        c.plain_name(&s.name, "indicator set name");
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

/// The rules of `rules_dir` (none without one), and the TAXII `bundles`
/// kept elsewhere. Errors inside the rules files carry their own file and
/// line.
pub(super) fn load_rules(
    s: &SelectionSection,
    base: &Path,
    bundles: &[std::path::PathBuf],
    c: &mut Collector<'_>,
) -> Option<RuleSet> {
    let opts = import_options(s, c)?;
    let Some(dir) = &s.rules_dir else {
        return Some(RuleSet::empty());
    };
    match rules::load_dir_and(&prefixes::resolve(base, dir.get_ref()), bundles, &opts) {
        Ok(rs) => Some(rs),
        Err(e) => {
            c.errors.extend(e.0);
            None
        }
    }
}

/// The options imported rules are compiled with.
pub fn import_options(s: &SelectionSection, c: &mut Collector<'_>) -> Option<ImportOptions> {
    let before = c.errors.len();
    let mut o = ImportOptions::default();
    for (vars, into) in [(&s.address_vars, &mut o.address_vars), (&s.port_vars, &mut o.port_vars)] {
        let Some(vars) = vars else { continue };
        for (k, v) in vars.get_ref() {
            if k == "HOME_NET" || k == "EXTERNAL_NET" {
                c.at(
                    vars.span(),
                    format!("`{k}` cannot be set: it is the domestic set ([domestic]) or its complement"),
                );
            } else if k.is_empty() || !k.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') {
                c.at(
                    vars.span(),
                    format!("variable name `{k}` must be ASCII letters, digits or '_'"),
                );
            } else {
                into.insert(k.clone(), v.clone());
            }
        }
    }
    o.skip_refused = s.skip_refused_rules;
    if let Some(m) = &s.import_measures {
        o.classes = [false; crate::classify::NUM_CLASSES];
        if m.get_ref().is_empty() {
            c.at(
                m.span(),
                "`import_measures` is empty: imported rules would select nothing",
            );
        }
        for name in m.get_ref() {
            match crate::classify::Measure::from_name(name) {
                Some(x) => o.classes[x.class() as usize] = true,
                None => c.at(
                    m.span(),
                    format!("unknown measure `{name}`; expected transit, inbound or outbound"),
                ),
            }
        }
    }
    (c.errors.len() == before).then_some(o)
}

/// Default of `[selection] reload_max_removed_percent`.
pub const DEFAULT_RULES_MAX_REMOVED_PERCENT: u8 = 50;

pub(super) fn max_removed_percent(s: &SelectionSection, c: &mut Collector<'_>) -> Option<u8> {
    c.percent(
        &s.reload_max_removed_percent,
        "reload_max_removed_percent",
        DEFAULT_RULES_MAX_REMOVED_PERCENT,
    )
}
