//! `[measures.*]`: the authorization window of each measure (Art. 18
//! approval). A measure outside its window is never captured.

use std::collections::BTreeMap;

use serde::Deserialize;
use time::OffsetDateTime;
use toml::de::DeValue;
use toml::Spanned;

use super::errors::Collector;
use super::read::{de, parse_time};
use crate::classify::Measure;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasureSection {
    #[serde(default)]
    pub enabled: bool,
    /// RFC 3339, as a string or a TOML datetime.
    pub not_before: Spanned<toml::Value>,
    pub not_after: Spanned<toml::Value>,
    /// Reference of the committee's approval (Art. 18), recorded in logs.
    #[serde(default)]
    pub approval: Option<String>,
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

/// The `[measures]` table: one `[measures.<name>]` per measure. False if
/// any of them could not be read.
pub(super) fn read(
    value: &Spanned<DeValue<'_>>,
    out: &mut Vec<(Measure, Spanned<MeasureSection>)>,
    c: &mut Collector<'_>,
) -> bool {
    let DeValue::Table(t) = value.get_ref() else {
        c.at(
            value.span(),
            "`measures` must be a table of [measures.transit], [measures.inbound], [measures.outbound]",
        );
        return true;
    };
    let mut ok = true;
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
            Some(s) => out.push((m, Spanned::new(mv.span(), s))),
            None => ok = false,
        }
    }
    ok
}

pub(super) fn validate(
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
