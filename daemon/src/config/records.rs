//! `[records]`: the JSON-lines file selected records are written to, and
//! the bounded queue in front of it.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::errors::Collector;
use super::prefixes;
use super::read::unspanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordsSection {
    pub path: Spanned<String>,
    #[serde(default = "default_records_queue")]
    pub queue_capacity: Spanned<u32>,
}

fn default_records_queue() -> Spanned<u32> {
    unspanned(65_536)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Records {
    pub path: PathBuf,
    pub queue_capacity: usize,
}

pub(super) fn validate(r: RecordsSection, base: &Path, c: &mut Collector<'_>) -> Option<Records> {
    if r.path.get_ref().is_empty() {
        c.at(
            r.path.span(),
            "records.path is empty: give the JSON-lines file to write records to",
        );
        return None;
    }
    if *r.queue_capacity.get_ref() == 0 {
        c.at(r.queue_capacity.span(), "queue_capacity must be at least 1");
        return None;
    }
    Some(Records {
        path: prefixes::resolve(base, r.path.get_ref()),
        queue_capacity: *r.queue_capacity.get_ref() as usize,
    })
}
