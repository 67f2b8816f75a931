//! `[export]` and the export policy as a whole: de-identification, the
//! purposes and consents, the recipients with their grants and sinks, the
//! API and the aggregates, validated together because grants name purposes
//! and consents, and sinks name the API.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::aggregates::{self, Aggregates, AggregatesSection};
use super::api::{self, Api, ApiSection};
use super::deid::{self, Deid, DeidSection};
use super::errors::Collector;
use super::prefixes;
use super::purposes::{self, ConsentSection, PurposeSection};
use super::read::unspanned;
use super::recipients::{self, Recipient, RecipientSection};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportSection {
    /// Where views for unreachable collectors wait (one file per sink).
    #[serde(default = "default_spool_dir")]
    pub spool_dir: Spanned<String>,
}

impl Default for ExportSection {
    fn default() -> Self {
        ExportSection {
            spool_dir: default_spool_dir(),
        }
    }
}

fn default_spool_dir() -> Spanned<String> {
    unspanned("/var/lib/furui/spool".to_string())
}

/// The sections the export policy is read from, as written.
#[derive(Default)]
pub(super) struct ExportSections {
    pub deid: DeidSection,
    pub export: ExportSection,
    pub api: Option<ApiSection>,
    pub aggregates: AggregatesSection,
    pub purposes: Vec<PurposeSection>,
    pub consents: Vec<ConsentSection>,
    pub recipients: Vec<RecipientSection>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    /// `[appliance] id`: named in every view and row, and in NATS message ids.
    pub appliance: String,
    pub aggregates: Aggregates,
    pub api: Option<Api>,
    pub spool_dir: PathBuf,
    pub deid: Deid,
    pub recipients: Vec<Recipient>,
}

pub(super) fn validate(s: ExportSections, appliance: &str, base: &Path, c: &mut Collector<'_>) -> Option<Export> {
    let before = c.errors.len();
    let deid = deid::validate(s.deid, base, c);
    let purposes = purposes::validate_purposes(&s.purposes, c);
    let consents = purposes::validate_consents(s.consents, c);
    let ctx = recipients::Context {
        purposes: &purposes,
        consents: &consents,
        api_configured: s.api.is_some(),
        base,
        nats: Default::default(),
    };
    let mut names = BTreeSet::new();
    let recipients: Vec<Recipient> = s
        .recipients
        .into_iter()
        .filter_map(|r| recipients::validate(r, &mut names, &ctx, c))
        .collect();
    let api = s.api.and_then(|a| api::validate(a, base, c));
    let aggregates = aggregates::validate(&s.aggregates, c);
    (c.errors.len() == before).then_some(Export {
        appliance: appliance.to_string(),
        aggregates,
        api,
        spool_dir: prefixes::resolve(base, s.export.spool_dir.get_ref()),
        deid,
        recipients,
    })
}
