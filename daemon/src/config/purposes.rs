//! `[[purposes]]` and `[[consents]]`: the purposes records may be used
//! for, and the written consents a purpose other than damage prevention
//! needs (Art. 23): the data covered, who uses it, what for, and when.

use std::collections::HashMap;

use serde::Deserialize;
use time::OffsetDateTime;
use toml::Spanned;

use super::errors::Collector;
use super::read::parse_time;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurposeSection {
    pub id: Spanned<String>,
    #[serde(default)]
    pub description: String,
    /// The law's own purpose (preventing damage from attacks): grants for
    /// it need no consent record.
    #[serde(default)]
    pub damage_prevention: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentSection {
    pub id: Spanned<String>,
    pub scope: Spanned<String>,
    pub users: Spanned<String>,
    pub purpose: Spanned<String>,
    pub not_before: Spanned<toml::Value>,
    pub not_after: Spanned<toml::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub id: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

/// Purpose id → is it damage prevention.
pub(super) type Purposes = HashMap<String, bool>;
/// Consent id → the consent.
pub(super) type Consents = HashMap<String, Consent>;

pub(super) fn validate_purposes(list: &[PurposeSection], c: &mut Collector<'_>) -> Purposes {
    let mut out = Purposes::new();
    for p in list {
        if out.insert(p.id.get_ref().clone(), p.damage_prevention).is_some() {
            c.at(p.id.span(), format!("purpose `{}` is defined twice", p.id.get_ref()));
        }
    }
    out
}

pub(super) fn validate_consents(list: Vec<ConsentSection>, c: &mut Collector<'_>) -> Consents {
    let mut out = Consents::new();
    for k in list {
        for (v, what) in [
            (&k.scope, "scope (the data covered)"),
            (&k.users, "users (who uses the data)"),
            (&k.purpose, "purpose (the specific purpose)"),
        ] {
            if v.get_ref().trim().is_empty() {
                c.at(v.span(), format!("consent `{}` must state its {what}", k.id.get_ref()));
            }
        }
        let nb = parse_time(&k.not_before, "not_before", c);
        let na = parse_time(&k.not_after, "not_after", c);
        let (Some(nb), Some(na)) = (nb, na) else { continue };
        if nb >= na {
            c.at(k.not_after.span(), "consent not_after must be later than not_before");
        }
        let consent = Consent {
            id: k.id.get_ref().clone(),
            not_before: nb,
            not_after: na,
        };
        if out.insert(k.id.get_ref().clone(), consent).is_some() {
            c.at(k.id.span(), format!("consent `{}` is defined twice", k.id.get_ref()));
        }
    }
    out
}
