//! Fleet keys: every appliance given the same fleet seed derives the same
//! Crypto-PAn key for the same epoch, so one address has one pseudonym
//! across the fleet within an epoch; and the derivation only runs
//! forward, so an epoch whose key was destroyed cannot be recomputed from
//! anything an appliance still holds.
//!
//! A one-way chain (HKDF-SHA-256, RFC 5869), one link per epoch, counted
//! from the Unix epoch (epoch index = days or hours since 1970-01-01):
//!
//! - `chain[0] = HKDF(salt "furui fleet v1", seed).expand("chain 0")`
//! - `chain[n+1] = HKDF-Expand(PRK = chain[n], "furui fleet next")`
//! - `key[n] = HKDF-Expand(PRK = chain[n], "furui cryptopan <period> <n>")`
//!
//! An appliance keeps the current link only (`fleet.chain`, 0600), and the
//! key files of the last `keep_epochs` epochs; the seed file is erased
//! once imported. From `chain[n]` the later links and keys follow;
//! `chain[n-1]` does not (HKDF is one-way), nor does `key[n-1]` (derived
//! under another label). Trade-off: whoever takes an appliance's current
//! link (or the seed) can compute every later epoch's key until the
//! fleet is re-seeded — see README "Running a fleet".

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use hkdf::Hkdf;
use sha2::Sha256;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::keys::{read_secret_file, EpochPeriod, KeyError};

pub const CHAIN_FILE: &str = "fleet.chain";
const MAGIC: &[u8; 8] = b"furuiFC1";
const CHAIN_LEN: usize = 8 + 1 + 8 + 8 + 32;

/// The position of `t`'s epoch in the chain.
pub fn epoch_index(period: EpochPeriod, t: OffsetDateTime) -> u64 {
    let s = t.unix_timestamp().max(0) as u64;
    match period {
        EpochPeriod::Daily => s / 86_400,
        EpochPeriod::Hourly => s / 3_600,
    }
}

fn period_code(p: EpochPeriod) -> u8 {
    match p {
        EpochPeriod::Daily => 0,
        EpochPeriod::Hourly => 1,
    }
}

/// One link of the chain: its index, the seed it descends from (an id
/// that reveals nothing of the seed), and its key.
pub struct Link {
    pub period: EpochPeriod,
    pub index: u64,
    pub seed_id: [u8; 8],
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Link {{ index: {}, key: <withheld> }}", self.index)
    }
}

/// The id of a seed (8 bytes of an HKDF output under its own label).
pub fn seed_id(seed: &[u8; 32]) -> [u8; 8] {
    let mut id = [0u8; 8];
    Hkdf::<Sha256>::new(Some(b"furui fleet id"), seed)
        .expand(b"seed id", &mut id)
        .expect("8 bytes");
    id
}

impl Link {
    /// The first link (index 0) of the chain of `seed`.
    pub fn first(seed: &[u8; 32], period: EpochPeriod) -> Link {
        let mut key = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::new(Some(b"furui fleet v1"), seed)
            .expand(format!("chain 0 {}", period_code(period)).as_bytes(), &mut key[..])
            .expect("32 bytes");
        Link {
            period,
            index: 0,
            seed_id: seed_id(seed),
            key,
        }
    }

    fn prk(&self) -> Hkdf<Sha256> {
        Hkdf::<Sha256>::from_prk(&self.key[..]).expect("a 32-byte PRK")
    }

    /// The next link; this one is wiped.
    pub fn next(self) -> Link {
        let mut key = Zeroizing::new([0u8; 32]);
        self.prk().expand(b"furui fleet next", &mut key[..]).expect("32 bytes");
        Link {
            period: self.period,
            index: self.index + 1,
            seed_id: self.seed_id,
            key,
        }
    }

    /// This link moved forward to `index` (not before it).
    pub fn forward_to(mut self, index: u64) -> Link {
        while self.index < index {
            self = self.next();
        }
        self
    }

    /// The Crypto-PAn key of this link's epoch.
    pub fn epoch_key(&self) -> Zeroizing<[u8; 32]> {
        let mut k = Zeroizing::new([0u8; 32]);
        let label = format!("furui cryptopan {} {}", period_code(self.period), self.index);
        self.prk().expand(label.as_bytes(), &mut k[..]).expect("32 bytes");
        k
    }

    fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut b = Zeroizing::new(Vec::with_capacity(CHAIN_LEN));
        b.extend_from_slice(MAGIC);
        b.push(period_code(self.period));
        b.extend_from_slice(&self.index.to_be_bytes());
        b.extend_from_slice(&self.seed_id);
        b.extend_from_slice(&self.key[..]);
        b
    }

    fn decode(b: &[u8], path: &Path) -> Result<Link, KeyError> {
        let bad = || KeyError::Fleet(format!("{} is not a fleet chain file", path.display()));
        if b.len() != CHAIN_LEN || &b[..8] != MAGIC {
            return Err(bad());
        }
        let period = match b[8] {
            0 => EpochPeriod::Daily,
            1 => EpochPeriod::Hourly,
            _ => return Err(bad()),
        };
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&b[25..57]);
        Ok(Link {
            period,
            index: u64::from_be_bytes(b[9..17].try_into().expect("8")),
            seed_id: b[17..25].try_into().expect("8"),
            key,
        })
    }
}

/// Reads a fleet seed file: 64 hex digits (surrounding space allowed),
/// a regular file of the daemon's user, readable by it alone.
pub fn read_seed(path: &Path) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let text = read_secret_file(path, 0..=200)?;
    let hex = std::str::from_utf8(&text).unwrap_or("").trim();
    let mut seed = Zeroizing::new([0u8; 32]);
    match crate::hex::decode(hex) {
        Some(mut b) if b.len() == 32 => {
            seed.copy_from_slice(&b);
            crate::erase::erase(&mut b);
            Ok(seed)
        }
        Some(mut b) => {
            crate::erase::erase(&mut b);
            Err(KeyError::Fleet(format!(
                "fleet seed file {} must hold 64 hex digits (32 bytes)",
                path.display()
            )))
        }
        None => Err(KeyError::Fleet(format!(
            "fleet seed file {} must hold 64 hex digits (32 bytes)",
            path.display()
        ))),
    }
}

/// A new random seed, as a seed file holds it.
pub fn new_seed_hex() -> std::io::Result<Zeroizing<String>> {
    let mut b = [0u8; 32];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut b)?;
    let s = Zeroizing::new(crate::hex::encode(&b));
    crate::erase::erase(&mut b);
    Ok(s)
}

/// The chain of one appliance: `<key_dir>/fleet.chain`, fed from the seed
/// file when there is none (or when the seed file holds another seed: a
/// re-seeding).
#[derive(Debug)]
pub struct Chain {
    path: PathBuf,
    seed_file: PathBuf,
    period: EpochPeriod,
    link: Option<Link>,
}

impl Chain {
    pub fn new(key_dir: &Path, seed_file: &Path, period: EpochPeriod) -> Chain {
        Chain {
            path: key_dir.join(CHAIN_FILE),
            seed_file: seed_file.to_path_buf(),
            period,
            link: None,
        }
    }

    /// The link of epoch `index`: the stored one moved forward (and
    /// stored again, the older one gone), or a new chain from the seed
    /// file if it holds a seed the stored chain does not descend from.
    /// A seed file that was imported is erased.
    pub fn at(&mut self, index: u64) -> Result<&Link, KeyError> {
        if self.link.is_none() {
            self.link = match std::fs::symlink_metadata(&self.path) {
                Ok(_) => {
                    let b = read_secret_file(&self.path, CHAIN_LEN..=CHAIN_LEN)?;
                    Some(Link::decode(&b, &self.path)?)
                }
                Err(_) => None,
            };
        }
        let seed = match std::fs::symlink_metadata(&self.seed_file) {
            Ok(_) => Some(read_seed(&self.seed_file)?),
            Err(_) => None,
        };
        if let Some(seed) = &seed {
            let id = seed_id(seed);
            let same = self
                .link
                .as_ref()
                .is_some_and(|l| l.seed_id == id && l.period == self.period);
            if !same {
                if self.link.is_some() {
                    tracing::warn!("a new fleet seed: the fleet chain starts again from it (re-seeding)");
                }
                self.link = Some(Link::first(seed, self.period));
            }
        }
        let link = match self.link.take() {
            Some(l) if l.period != self.period => {
                return Err(KeyError::Fleet(format!(
                    "the fleet chain {} is for {} epochs, and [deid] epoch is {}: re-seed the fleet (a new seed file) to change the period",
                    self.path.display(),
                    if l.period == EpochPeriod::Daily { "daily" } else { "hourly" },
                    if self.period == EpochPeriod::Daily { "daily" } else { "hourly" },
                )))
            }
            Some(l) if l.index > index => {
                let stored = l.index;
                self.link = Some(l);
                return Err(KeyError::Fleet(format!(
                    "the fleet chain is at epoch {stored}, past epoch {index}: its key cannot be derived any more (the clock went back?)"
                )));
            }
            Some(l) => l,
            None => {
                return Err(KeyError::Fleet(format!(
                    "fleet keys need the fleet seed: neither {} nor {} exists",
                    self.path.display(),
                    self.seed_file.display()
                )))
            }
        };
        let moved = link.index != index || seed.is_some();
        let link = link.forward_to(index);
        if moved {
            store(&self.path, &link)?;
        }
        if seed.is_some() {
            erase_seed(&self.seed_file);
        }
        self.link = Some(link);
        Ok(self.link.as_ref().expect("set"))
    }
}

/// Writes the link whole (a temporary file renamed over the old one).
fn store(path: &Path, link: &Link) -> Result<(), KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&link.encode()).and_then(|_| f.sync_all()))
        .and_then(|_| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(io)?;
    if let Some(dir) = path.parent() {
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

/// Overwrites the seed file with zeros and removes it: as long as it
/// exists, every epoch's key can be recomputed from it.
fn erase_seed(path: &Path) {
    let zeroed = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .and_then(|mut f| {
            let n = f.metadata()?.len() as usize;
            f.write_all(&vec![0u8; n])?;
            f.sync_all()
        });
    match zeroed.and_then(|_| std::fs::remove_file(path)) {
        Ok(()) => tracing::info!(seed = %path.display(), "fleet seed imported and erased"),
        Err(e) => {
            tracing::warn!(seed = %path.display(), error = %e, "fleet seed imported but not erased: remove it by hand; while it exists every epoch's key can be recomputed")
        }
    }
}

#[cfg(test)]
mod tests;
