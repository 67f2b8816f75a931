//! `[[indicators]]` and `[selection]`: the named indicator sets (CIDR
//! lists) and the directory of rules files that decide what is selected.

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::errors::Collector;
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
    /// Directory of rules files (`*.toml`), relative to the config file.
    #[serde(default)]
    pub rules_dir: Option<Spanned<String>>,
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

/// The rules of `rules_dir` (none without one). Errors inside the rules
/// files carry their own file and line.
pub(super) fn load_rules(s: &SelectionSection, base: &Path, c: &mut Collector<'_>) -> Option<RuleSet> {
    let Some(dir) = &s.rules_dir else {
        return Some(RuleSet::empty());
    };
    match rules::load_dir(&prefixes::resolve(base, dir.get_ref())) {
        Ok(rs) => Some(rs),
        Err(e) => {
            c.errors.extend(e.0);
            None
        }
    }
}
