//! `[approvals]`: signed authorizations. With this section a measure's
//! window opens only under an approval document signed by the approving
//! authority (`crate::approvals`): the `approval` of `[measures.<m>]`
//! names the document's reference, and the window is the configured one
//! cut to the document's interval. Editing the configuration can narrow a
//! window, never open or extend one.

use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;
use serde::Deserialize;
use toml::Spanned;

use super::errors::Collector;
use super::prefixes;
use crate::approvals::Signed;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalsSection {
    /// The authority's Ed25519 public key (64 hex digits).
    pub authority_key_file: Spanned<String>,
    /// The signed approval documents (`*.json`).
    pub dir: Spanned<String>,
}

/// The authority's key and every document in the directory (those that
/// could not be read are reported as errors).
#[derive(Debug, Clone)]
pub struct Approvals {
    pub authority: VerifyingKey,
    pub dir: PathBuf,
    pub docs: Vec<(PathBuf, Signed)>,
}

pub(super) fn validate(s: Option<ApprovalsSection>, base: &Path, c: &mut Collector<'_>) -> Option<Approvals> {
    let s = s?;
    let key_path = prefixes::resolve(base, s.authority_key_file.get_ref());
    let authority = match crate::approvals::read_authority(&key_path) {
        Ok(k) => Some(k),
        Err(e) => {
            c.at(s.authority_key_file.span(), format!("authority_key_file: {e}"));
            None
        }
    };
    let dir = prefixes::resolve(base, s.dir.get_ref());
    let mut docs = Vec::new();
    match std::fs::read_dir(&dir) {
        Ok(rd) => {
            let mut paths: Vec<PathBuf> = rd
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            paths.sort();
            for p in paths {
                match Signed::read(&p) {
                    Ok(d) => docs.push((p, d)),
                    Err(e) => c.at(s.dir.span(), e.to_string()),
                }
            }
        }
        Err(e) => c.at(s.dir.span(), format!("approvals dir `{}`: {e}", dir.display())),
    }
    Some(Approvals {
        authority: authority?,
        dir,
        docs,
    })
}
