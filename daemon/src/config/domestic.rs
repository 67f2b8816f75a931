//! `[domestic]`: the domestic address space, which decides every packet's
//! class, and how much of it one reload may remove unconfirmed. Fail safe:
//! an empty set while a measure is enabled is refused, because every
//! domestic packet would then be classified transit and captured.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

use super::errors::Collector;
use super::measures::Window;
use super::prefixes;
use crate::classify::Measure;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomesticSection {
    #[serde(default)]
    pub prefixes: Vec<Spanned<String>>,
    #[serde(default)]
    pub files: Vec<Spanned<String>>,
    /// Percent of the domestic address space in force that one reload may
    /// stop covering unless `furui reload --confirm-domestic-removal`.
    pub reload_max_removed_percent: Option<Spanned<u8>>,
}

pub const DEFAULT_RELOAD_MAX_REMOVED_PERCENT: u8 = 10;

/// The domestic prefixes as configured, and whether all of them could be
/// read (an unreadable file is reported on its own).
pub(super) struct Domestic {
    pub list: Vec<IpNet>,
    pub read: bool,
    pub max_removed_percent: Option<u8>,
}

pub(super) fn validate(s: DomesticSection, base: &Path, c: &mut Collector<'_>) -> Domestic {
    let before = c.errors.len();
    let list = prefixes::load(&s.prefixes, &s.files, base, c);
    let read = c.errors.len() == before;
    let max_removed_percent = c.percent(
        &s.reload_max_removed_percent,
        "reload_max_removed_percent",
        DEFAULT_RELOAD_MAX_REMOVED_PERCENT,
    );
    Domestic {
        list,
        read,
        max_removed_percent,
    }
}

/// Refuses an empty domestic set while any measure is enabled, at the
/// `[domestic]` line (or line 1 when there is no such section).
pub(super) fn check_covers_enabled_measures(
    d: &Domestic,
    measures: Option<&BTreeMap<Measure, Window>>,
    section: Option<Range<usize>>,
    c: &mut Collector<'_>,
) {
    let Some(m) = measures else { return };
    let enabled: Vec<&str> = m.iter().filter(|(_, w)| w.enabled).map(|(m, _)| m.name()).collect();
    if !d.list.is_empty() || !d.read || enabled.is_empty() {
        return;
    }
    let msg = format!(
        "[domestic] holds no prefix while measure(s) {} are enabled: every domestic packet would be \
         classified transit and captured; list the domestic address space (prefixes or files) or \
         disable the measures",
        enabled.join(", ")
    );
    match section {
        Some(span) => c.at(span, msg),
        None => c.at_line(1, msg),
    }
}
