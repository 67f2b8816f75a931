//! `[retention]`: the local store of selected records (Art. 25). Records
//! of one measure and one epoch share a data key; the epoch's records are
//! purged and its key destroyed once the measure's retention period after
//! the epoch has passed.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::errors::Collector;
use crate::classify::Measure;

const DAY: u64 = 86_400;

/// The retention store's page cache (redb's default would be 1 GiB).
pub const STORE_CACHE_BYTES: usize = 32 << 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSection {
    pub dir: Spanned<String>,
    /// Key files live apart from the store, so that a backup of the store
    /// does not carry the keys that could read it.
    pub key_dir: Spanned<String>,
    #[serde(default = "default_epoch")]
    pub epoch_secs: Spanned<u64>,
    #[serde(default = "default_period")]
    pub inbound_secs: Spanned<u64>,
    #[serde(default = "default_period")]
    pub outbound_secs: Spanned<u64>,
    #[serde(default = "default_period")]
    pub transit_secs: Spanned<u64>,
}

fn default_epoch() -> Spanned<u64> {
    Spanned::new(0..0, 3_600)
}

fn default_period() -> Spanned<u64> {
    Spanned::new(0..0, 30 * DAY)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    pub dir: PathBuf,
    pub key_dir: PathBuf,
    pub epoch: Duration,
    pub inbound: Duration,
    pub outbound: Duration,
    pub transit: Duration,
}

impl Retention {
    pub fn period(&self, m: Measure) -> Duration {
        match m {
            Measure::Inbound => self.inbound,
            Measure::Outbound => self.outbound,
            Measure::Transit => self.transit,
        }
    }
}

pub fn validate(
    r: Option<RetentionSection>,
    audit_configured: bool,
    base: &std::path::Path,
    c: &mut Collector<'_>,
) -> Option<Retention> {
    let r = r?;
    if !audit_configured {
        c.at(
            r.dir.span(),
            "[retention] needs [audit]: every retention epoch and purge is recorded in the audit trail",
        );
    }
    for (name, v) in [
        ("epoch_secs", &r.epoch_secs),
        ("inbound_secs", &r.inbound_secs),
        ("outbound_secs", &r.outbound_secs),
        ("transit_secs", &r.transit_secs),
    ] {
        if *v.get_ref() == 0 {
            c.at(v.span(), format!("{name} must be at least 1"));
        }
    }
    let dir = super::prefixes::resolve(base, r.dir.get_ref());
    let key_dir = super::prefixes::resolve(base, r.key_dir.get_ref());
    if key_dir.starts_with(&dir) {
        c.at(
            r.key_dir.span(),
            "key_dir must not be inside dir: a backup of the store would then carry the keys that read it",
        );
    }
    let secs = |v: &Spanned<u64>| Duration::from_secs((*v.get_ref()).max(1));
    Some(Retention {
        dir,
        key_dir,
        epoch: secs(&r.epoch_secs),
        inbound: secs(&r.inbound_secs),
        outbound: secs(&r.outbound_secs),
        transit: secs(&r.transit_secs),
    })
}
