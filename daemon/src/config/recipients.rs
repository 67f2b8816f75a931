//! `[[recipients]]` and their `[[recipients.grants]]`: who may receive
//! which records, with which fields, for which purpose, and how addresses
//! are de-identified for them (Arts. 23, 24, 26).

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::audit::Role;
use super::errors::Collector;
use super::purposes::{Consent, Consents, Purposes};
use super::read::unspanned;
use super::sinks::{self, SinkKind, SinkSection};
use crate::classify::Measure;
use crate::deid::AddressPolicy;
use crate::flow::MechanicalRecord;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientSection {
    pub name: Spanned<String>,
    pub role: Spanned<String>,
    /// `sha256:` + 64 hex digits: the SHA-256 of the recipient's TLS client
    /// certificate's SubjectPublicKeyInfo.
    pub identity: Spanned<String>,
    #[serde(default)]
    pub grants: Vec<GrantSection>,
    #[serde(default)]
    pub sinks: Vec<SinkSection>,
    #[serde(default = "default_queue")]
    pub queue_capacity: Spanned<u32>,
    /// Bound of each sink's on-disk spool; beyond it views are dropped
    /// and counted.
    #[serde(default = "default_spool_max")]
    pub spool_max_bytes: Spanned<u64>,
    /// Push every signed audit checkpoint to this recipient's sinks that
    /// can carry it (NATS: `<subject>.witness`), so it holds a witness.
    #[serde(default)]
    pub witness: bool,
}

fn default_spool_max() -> Spanned<u64> {
    unspanned(64 << 20)
}

fn default_queue() -> Spanned<u32> {
    unspanned(65_536)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantSection {
    pub measures: Spanned<Vec<String>>,
    /// Record fields (a record grant); absent for an aggregate grant.
    #[serde(default)]
    pub fields: Option<Spanned<Vec<String>>>,
    /// An Art. 29 aggregate grant: counts per rule, destination port,
    /// measure and period, never records.
    #[serde(default)]
    pub aggregate: bool,
    pub purpose: Spanned<String>,
    #[serde(default)]
    pub consent: Option<Spanned<String>>,
    /// `pseudonymize` (default) or `truncate` (to truncate_v4/truncate_v6).
    #[serde(default)]
    pub addresses: Option<Spanned<String>>,
    #[serde(default)]
    pub truncate_v4: Option<Spanned<u8>>,
    #[serde(default)]
    pub truncate_v6: Option<Spanned<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// An Art. 29 aggregate grant (counts only; `fields` is empty).
    pub aggregate: bool,
    pub measures: BTreeSet<Measure>,
    /// Granted record fields, in `MechanicalRecord::FIELDS` order.
    pub fields: Vec<&'static str>,
    pub purpose: String,
    pub consent: Option<Consent>,
    pub addresses: AddressPolicy,
}

impl Grant {
    /// The grant covers a record of `measure` at `now` (a consent-based
    /// grant only inside the consent's window).
    pub fn covers(&self, measure: Measure, now: time::OffsetDateTime) -> bool {
        self.measures.contains(&measure)
            && self
                .consent
                .as_ref()
                .is_none_or(|c| c.not_before <= now && now < c.not_after)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// Metrics label and log name: `[a-z0-9-]`, at most 32 characters.
    pub name: String,
    pub role: Role,
    pub identity: [u8; 32],
    pub grants: Vec<Grant>,
    pub sinks: Vec<SinkKind>,
    pub queue_capacity: usize,
    pub spool_max_bytes: u64,
    pub witness: bool,
}

/// What a recipient's grants and sinks are checked against.
pub(super) struct Context<'a> {
    pub purposes: &'a Purposes,
    pub consents: &'a Consents,
    pub api_configured: bool,
    pub base: &'a Path,
    pub nats: super::sinks::NatsClaims,
}

/// One recipient (`names` holds those seen before it); None if its role
/// or identity is unusable (every error in it is reported either way).
pub(super) fn validate(
    r: RecipientSection,
    names: &mut BTreeSet<String>,
    ctx: &Context<'_>,
    c: &mut Collector<'_>,
) -> Option<Recipient> {
    let name = r.name.get_ref().clone();
    if name.is_empty()
        || name.len() > 32
        || !name
            .chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
    {
        c.at(
            r.name.span(),
            format!("recipient name `{name}` must be 1-32 of a-z, 0-9 and '-'"),
        );
    }
    if !names.insert(name.clone()) {
        c.at(r.name.span(), format!("recipient `{name}` is defined twice"));
    }
    let role = Role::parse(&r.role, c);
    let identity = identity(&r.identity, c);
    let grants: Vec<Grant> = r.grants.iter().map(|g| grant(g, ctx, c)).collect();
    if r.grants.is_empty() {
        c.at(
            r.name.span(),
            format!("recipient `{name}` has no [[recipients.grants]]: it could receive nothing"),
        );
    }
    let sinks: Vec<SinkKind> = r
        .sinks
        .iter()
        .filter_map(|s| sinks::validate(s, &name, ctx.api_configured, &ctx.nats, ctx.base, c))
        .collect();
    if grants.iter().any(|g| g.aggregate) && !sinks.iter().any(|s| matches!(s, SinkKind::Api | SinkKind::Nats(_))) {
        c.at(
            r.name.span(),
            format!("recipient `{name}` has an aggregate grant: aggregates go out over `nats` or `api` sinks, and it has neither"),
        );
    }
    let queue_capacity = *r.queue_capacity.get_ref() as usize;
    if queue_capacity == 0 {
        c.at(r.queue_capacity.span(), "queue_capacity must be at least 1");
    }
    Some(Recipient {
        name,
        role: role?,
        identity: identity?,
        grants,
        sinks,
        queue_capacity,
        spool_max_bytes: *r.spool_max_bytes.get_ref(),
        witness: r.witness,
    })
}

/// `sha256:` and 64 hex digits.
fn identity(s: &Spanned<String>, c: &mut Collector<'_>) -> Option<[u8; 32]> {
    let digest = s
        .get_ref()
        .strip_prefix("sha256:")
        .and_then(crate::hex::decode)
        .and_then(|b| <[u8; 32]>::try_from(b).ok());
    if digest.is_none() {
        c.at(
            s.span(),
            "identity must be `sha256:` and 64 hex digits: the SHA-256 of the client certificate's public key (see README)",
        );
    }
    digest
}

fn grant(g: &GrantSection, ctx: &Context<'_>, c: &mut Collector<'_>) -> Grant {
    let measures = grant_measures(&g.measures, c);
    let fields = grant_fields(g, c);
    let consent = grant_consent(g, ctx, c);
    let addresses = grant_addresses(g, c);
    Grant {
        measures,
        fields,
        purpose: g.purpose.get_ref().clone(),
        consent,
        addresses,
        aggregate: g.aggregate,
    }
}

fn grant_measures(list: &Spanned<Vec<String>>, c: &mut Collector<'_>) -> BTreeSet<Measure> {
    let mut measures = BTreeSet::new();
    for m in list.get_ref() {
        match Measure::from_name(m) {
            Some(m) => {
                measures.insert(m);
            }
            None => c.at(
                list.span(),
                format!("unknown measure `{m}`; expected transit, inbound or outbound"),
            ),
        }
    }
    if list.get_ref().is_empty() {
        c.at(list.span(), "a grant needs at least one measure");
    }
    measures
}

/// The granted fields in record order; an aggregate grant has none.
fn grant_fields(g: &GrantSection, c: &mut Collector<'_>) -> Vec<&'static str> {
    let mut fields = Vec::new();
    match (&g.fields, g.aggregate) {
        (Some(f), true) if !f.get_ref().is_empty() => c.at(
            f.span(),
            "an aggregate grant exports counts, never record fields: remove `fields`",
        ),
        (_, true) => {}
        (None, false) => c.at(
            g.measures.span(),
            "a record grant needs `fields` (or `aggregate = true`)",
        ),
        (Some(list), false) => {
            for f in list.get_ref() {
                match MechanicalRecord::FIELDS.iter().find(|x| **x == f.as_str()) {
                    Some(x) => fields.push(*x),
                    None => c.at(
                        list.span(),
                        format!("`{f}` is not an exportable record field; see the record fields in README"),
                    ),
                }
            }
            if list.get_ref().is_empty() {
                c.at(list.span(), "a grant needs at least one field");
            }
        }
    }
    fields.sort_by_key(|f| MechanicalRecord::FIELDS.iter().position(|x| x == f));
    fields.dedup();
    fields
}

/// The consent a grant rests on: none for damage prevention, a defined
/// consent for any other purpose (Art. 23).
fn grant_consent(g: &GrantSection, ctx: &Context<'_>, c: &mut Collector<'_>) -> Option<Consent> {
    let purpose = g.purpose.get_ref();
    match (ctx.purposes.get(purpose), &g.consent) {
        (None, _) => {
            c.at(
                g.purpose.span(),
                format!("purpose `{purpose}` is not defined in [[purposes]]"),
            );
            None
        }
        (Some(true), _) => None,
        (Some(false), None) => {
            c.at(
                g.purpose.span(),
                format!("purpose `{purpose}` is not damage prevention: the grant must name a `consent` (Art. 23)"),
            );
            None
        }
        (Some(false), Some(id)) => {
            let consent = ctx.consents.get(id.get_ref()).cloned();
            if consent.is_none() {
                c.at(
                    id.span(),
                    format!("consent `{}` is not defined in [[consents]]", id.get_ref()),
                );
            }
            consent
        }
    }
}

fn grant_addresses(g: &GrantSection, c: &mut Collector<'_>) -> AddressPolicy {
    let Some(a) = &g.addresses else {
        return AddressPolicy::Pseudonymize;
    };
    match a.get_ref().as_str() {
        "pseudonymize" => AddressPolicy::Pseudonymize,
        "truncate" => {
            let v4 = g.truncate_v4.as_ref().map_or(24, |v| *v.get_ref());
            let v6 = g.truncate_v6.as_ref().map_or(48, |v| *v.get_ref());
            if v4 > 32 || v6 > 128 {
                c.at(a.span(), "truncate_v4 must be at most 32 and truncate_v6 at most 128");
            }
            AddressPolicy::Truncate { v4, v6 }
        }
        other => {
            c.at(
                a.span(),
                format!("addresses `{other}` must be pseudonymize or truncate"),
            );
            AddressPolicy::Pseudonymize
        }
    }
}
