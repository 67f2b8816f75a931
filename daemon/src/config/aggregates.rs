//! `[aggregates]`: the Art. 29 counts' period, and the smallest count a
//! published cell may have.

use serde::Deserialize;
use toml::Spanned;

use super::errors::Collector;
use super::read::unspanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregatesSection {
    #[serde(default = "default_period")]
    pub period_secs: Spanned<u32>,
    #[serde(default = "default_min_count")]
    pub min_count: Spanned<u32>,
}

impl Default for AggregatesSection {
    fn default() -> Self {
        AggregatesSection {
            period_secs: default_period(),
            min_count: default_min_count(),
        }
    }
}

fn default_period() -> Spanned<u32> {
    unspanned(3600)
}
fn default_min_count() -> Spanned<u32> {
    unspanned(10)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aggregates {
    pub period_secs: u32,
    pub min_count: u32,
}

pub(super) fn validate(s: &AggregatesSection, c: &mut Collector<'_>) -> Aggregates {
    if *s.period_secs.get_ref() < 1 {
        c.at(s.period_secs.span(), "period_secs must be at least 1");
    }
    Aggregates {
        period_secs: (*s.period_secs.get_ref()).max(1),
        min_count: *s.min_count.get_ref(),
    }
}
