//! `[audit]` and the recipients' roles: where the signed audit trail lives,
//! how often a counter checkpoint is written, and who may read the trail
//! (an `oversight` recipient) besides receiving records.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::errors::Collector;
use super::prefixes;
use super::read::unspanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    pub dir: Spanned<String>,
    #[serde(default = "default_checkpoint")]
    pub checkpoint_secs: Spanned<u32>,
}

fn default_checkpoint() -> Spanned<u32> {
    unspanned(60)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    pub dir: PathBuf,
    pub checkpoint_secs: u32,
}

pub(super) fn validate(a: Option<AuditSection>, base: &Path, c: &mut Collector<'_>) -> Option<Audit> {
    let a = a?;
    if *a.checkpoint_secs.get_ref() == 0 {
        c.at(a.checkpoint_secs.span(), "checkpoint_secs must be at least 1");
    }
    Some(Audit {
        dir: prefixes::resolve(base, a.dir.get_ref()),
        checkpoint_secs: (*a.checkpoint_secs.get_ref()).max(1),
    })
}

/// A recipient's role: what the API shows it besides its own records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Analyst,
    /// Reads the audit trail and the configuration history.
    Oversight,
    Operator,
}

impl Role {
    /// The name used in the config, the audit trail and the API's entries.
    pub fn name(self) -> &'static str {
        match self {
            Role::Analyst => "analyst",
            Role::Oversight => "oversight",
            Role::Operator => "operator",
        }
    }

    pub(super) fn parse(s: &Spanned<String>, c: &mut Collector<'_>) -> Option<Role> {
        match s.get_ref().as_str() {
            "analyst" => Some(Role::Analyst),
            "oversight" => Some(Role::Oversight),
            "operator" => Some(Role::Operator),
            other => {
                c.at(
                    s.span(),
                    format!("role `{other}` must be analyst, oversight or operator"),
                );
                None
            }
        }
    }
}
