//! `[measures.*]`: the authorization window of each measure (Art. 18
//! approval). A measure outside its window is never captured.

use std::collections::BTreeMap;

use serde::Deserialize;
use time::OffsetDateTime;
use toml::de::DeValue;
use toml::Spanned;

use super::approvals::Approvals;
use super::errors::{Collector, ConfigError};
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
    /// Under `[approvals]`: the signed document the window was cut to.
    pub signed: Option<crate::approvals::Signed>,
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
    signed: Option<&Approvals>,
    appliance: &str,
    c: &mut Collector<'_>,
    warnings: &mut Vec<ConfigError>,
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
                let mut w = Window {
                    enabled: s.enabled,
                    not_before: nb,
                    not_after: na,
                    approval: s.approval,
                    signed: None,
                };
                if let Some(a) = signed.filter(|_| w.enabled) {
                    ok &= under_approval(m, &mut w, a, appliance, span, c, warnings);
                }
                out.insert(m, w);
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

/// Cuts an enabled window to its signed approval. False (an error
/// reported) if there is none that verifies; an expired one closes the
/// window with a warning.
fn under_approval(
    m: Measure,
    w: &mut Window,
    a: &Approvals,
    appliance: &str,
    span: std::ops::Range<usize>,
    c: &mut Collector<'_>,
    warnings: &mut Vec<ConfigError>,
) -> bool {
    use crate::approvals::ApprovalError;
    let Some(reference) = w.approval.clone() else {
        c.at(
            span,
            format!(
                "measure {}: under [approvals] an enabled window needs `approval`, the reference of a signed approval document in {}",
                m.name(),
                a.dir.display()
            ),
        );
        return false;
    };
    let now = OffsetDateTime::now_utc();
    let mut best: Option<(&crate::approvals::Signed, OffsetDateTime, OffsetDateTime)> = None;
    let mut first_err = None;
    for (_, doc) in a.docs.iter().filter(|(_, d)| d.approval.reference == reference) {
        match doc.verify(&a.authority, m.name(), appliance, now) {
            Ok((nb, na)) if best.is_none_or(|(_, _, b)| na > b) => best = Some((doc, nb, na)),
            Ok(_) => {}
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    match (best, first_err) {
        (Some((doc, nb, na)), _) => {
            w.not_before = w.not_before.max(nb);
            w.not_after = w.not_after.min(na);
            if w.not_before >= w.not_after {
                c.at(
                    span,
                    format!(
                        "measure {}: the configured window does not overlap approval `{reference}` ({} to {})",
                        m.name(),
                        doc.approval.not_before,
                        doc.approval.not_after
                    ),
                );
                return false;
            }
            w.signed = Some(doc.clone());
            true
        }
        (None, Some(e @ ApprovalError::Expired { .. })) => {
            let (line, column) = c.line_col(span);
            warnings.push(ConfigError {
                file: c.file().to_path_buf(),
                line,
                column,
                message: format!("measure {}: {e}; the window stays closed", m.name()),
            });
            w.enabled = false;
            true
        }
        (None, Some(e)) => {
            c.at(span, format!("measure {}: {e}", m.name()));
            false
        }
        (None, None) => {
            c.at(
                span,
                format!(
                    "measure {}: no signed approval `{reference}` in {}",
                    m.name(),
                    a.dir.display()
                ),
            );
            false
        }
    }
}
