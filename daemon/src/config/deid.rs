//! `[deid]`: where the pseudonymization keys live, how long an epoch lasts
//! and how many epochs' keys are kept before they are destroyed.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::errors::Collector;
use super::prefixes;
use super::read::unspanned;
use crate::deid::EpochPeriod;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeidSection {
    #[serde(default = "default_key_dir")]
    pub key_dir: Spanned<String>,
    #[serde(default = "default_epoch")]
    pub epoch: EpochPeriod,
    /// Key files kept, the current epoch's included; older ones are deleted.
    #[serde(default = "default_keep")]
    pub keep_epochs: Spanned<u32>,
    /// Fleet keys: the file a fleet seed is delivered in (64 hex digits,
    /// 0600). Imported into `<key_dir>/fleet.chain` and erased at the
    /// first start; a new seed there later re-seeds.
    #[serde(default)]
    pub fleet_seed_file: Option<Spanned<String>>,
}

impl Default for DeidSection {
    fn default() -> Self {
        DeidSection {
            key_dir: default_key_dir(),
            epoch: default_epoch(),
            keep_epochs: default_keep(),
            fleet_seed_file: None,
        }
    }
}

fn default_key_dir() -> Spanned<String> {
    unspanned("/var/lib/furui/keys".to_string())
}
fn default_epoch() -> EpochPeriod {
    EpochPeriod::Daily
}
fn default_keep() -> Spanned<u32> {
    unspanned(2)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deid {
    pub key_dir: PathBuf,
    pub epoch: EpochPeriod,
    pub keep_epochs: usize,
    /// Some: keys derived from the fleet chain (`deid::fleet`).
    pub fleet_seed_file: Option<PathBuf>,
}

pub(super) fn validate(s: DeidSection, base: &Path, c: &mut Collector<'_>) -> Deid {
    if *s.keep_epochs.get_ref() == 0 {
        c.at(
            s.keep_epochs.span(),
            "keep_epochs must be at least 1 (the current epoch)",
        );
    }
    Deid {
        key_dir: prefixes::resolve(base, s.key_dir.get_ref()),
        epoch: s.epoch,
        keep_epochs: *s.keep_epochs.get_ref() as usize,
        fleet_seed_file: s.fleet_seed_file.map(|f| prefixes::resolve(base, f.get_ref())),
    }
}
