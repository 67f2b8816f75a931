//! Pseudonymization keys, one per epoch (a UTC day or hour). A key file
//! `<dir>/<epoch>.key` holds 32 random bytes, is created `0600` by the
//! daemon's user, and is refused if anyone else could read it. Keys older
//! than `keep` epochs are deleted, so their pseudonyms can no longer be
//! linked to anything. Key bytes never leave this module: not in logs,
//! errors, `Debug` output or records — only the epoch name does.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use time::OffsetDateTime;

use super::cryptopan::CryptoPan;
use crate::erase::erase;

/// How long one key is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EpochPeriod {
    Daily,
    Hourly,
}

impl EpochPeriod {
    /// The epoch's name at `t`: `2026-11-22` (daily) or `2026-11-22T07` (hourly).
    pub fn epoch_of(self, t: OffsetDateTime) -> String {
        let d = t.date();
        match self {
            EpochPeriod::Daily => format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()),
            EpochPeriod::Hourly => format!(
                "{:04}-{:02}-{:02}T{:02}",
                d.year(),
                u8::from(d.month()),
                d.day(),
                t.hour()
            ),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot create the key directory {path}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "key file {path} can be read by other users (mode {mode:o}); it must be 0600 and owned by the daemon's user"
    )]
    Exposed { path: PathBuf, mode: u32 },
    #[error("key file {path} is not 32 bytes")]
    BadLength { path: PathBuf },
    #[error("cannot read or write key file {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The key of one epoch, ready to use.
pub struct EpochKey {
    pub epoch: String,
    pub pan: CryptoPan,
}

impl std::fmt::Debug for EpochKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EpochKey {{ epoch: {}, key: <withheld> }}", self.epoch)
    }
}

/// Epoch keys in a directory; holds the current epoch's key in memory.
#[derive(Debug)]
pub struct KeyStore {
    dir: PathBuf,
    period: EpochPeriod,
    keep: usize,
    current: Option<Arc<EpochKey>>,
}

fn random_key() -> std::io::Result<[u8; 32]> {
    let mut k = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut k)?;
    Ok(k)
}

/// A 32-byte key file: created `0600` with fresh random bytes (and
/// fsynced) if it does not exist, otherwise read — and refused if others
/// could read it or it is not 32 bytes. The caller erases the bytes after use.
pub fn key_file(path: &Path) -> Result<[u8; 32], KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut key = [0u8; 32];
    match OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(mut f) => {
            key = random_key().map_err(io)?;
            f.write_all(&key).and_then(|_| f.sync_all()).map_err(io)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyError::Exposed {
                    path: path.to_path_buf(),
                    mode,
                });
            }
            let mut f = std::fs::File::open(path).map_err(io)?;
            let mut buf = Vec::with_capacity(33);
            f.read_to_end(&mut buf).map_err(io)?;
            if buf.len() != 32 {
                erase(&mut buf);
                return Err(KeyError::BadLength {
                    path: path.to_path_buf(),
                });
            }
            key.copy_from_slice(&buf);
            erase(&mut buf);
        }
        Err(e) => return Err(io(e)),
    }
    Ok(key)
}

impl KeyStore {
    /// `keep`: how many epochs' key files to keep (the current one included).
    pub fn open(dir: &Path, period: EpochPeriod, keep: usize) -> Result<KeyStore, KeyError> {
        std::fs::create_dir_all(dir).map_err(|source| KeyError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        Ok(KeyStore {
            dir: dir.to_path_buf(),
            period,
            keep: keep.max(1),
            current: None,
        })
    }

    fn path(&self, epoch: &str) -> PathBuf {
        self.dir.join(format!("{epoch}.key"))
    }

    /// The key for `t`'s epoch: loaded, or created on the first use of a
    /// new epoch (which also deletes keys beyond `keep`).
    pub fn at(&mut self, t: OffsetDateTime) -> Result<Arc<EpochKey>, KeyError> {
        let epoch = self.period.epoch_of(t);
        match &self.current {
            Some(k) if k.epoch == epoch => Ok(k.clone()),
            _ => {
                let pan = self.load_or_create(&epoch)?;
                let k = Arc::new(EpochKey { epoch, pan });
                self.current = Some(k.clone());
                self.prune();
                Ok(k)
            }
        }
    }

    fn load_or_create(&self, epoch: &str) -> Result<CryptoPan, KeyError> {
        let mut key = key_file(&self.path(epoch))?;
        let pan = CryptoPan::new(&key);
        erase(&mut key);
        Ok(pan)
    }

    /// Deletes key files beyond the newest `keep` epochs (epoch names sort
    /// in time order).
    fn prune(&self) {
        let Ok(rd) = std::fs::read_dir(&self.dir) else { return };
        let mut epochs: Vec<String> = rd
            .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".key").map(str::to_string))
            .collect();
        epochs.sort();
        let n = epochs.len();
        for old in epochs.into_iter().take(n.saturating_sub(self.keep)) {
            if std::fs::remove_file(self.path(&old)).is_ok() {
                tracing::info!(epoch = %old, "pseudonymization key of an expired epoch destroyed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn epoch_names() {
        let t = datetime!(2026-11-22 07:59:59 UTC);
        assert_eq!(EpochPeriod::Daily.epoch_of(t), "2026-11-22");
        assert_eq!(EpochPeriod::Hourly.epoch_of(t), "2026-11-22T07");
    }

    /// The mapping is stable within an epoch (also across a restart: the
    /// key file is reused), changes at the boundary, and old keys go.
    #[test]
    fn keys_rotate_at_the_epoch_boundary_and_old_ones_are_destroyed() {
        let dir = tempfile::tempdir().unwrap();
        let a: std::net::IpAddr = "203.0.113.7".parse().unwrap();
        let mut ks = KeyStore::open(dir.path(), EpochPeriod::Daily, 2).unwrap();
        let d1 = ks.at(datetime!(2026-11-22 23:59:59 UTC)).unwrap().pan.ip(a);
        let d1_again = ks.at(datetime!(2026-11-22 00:00:00 UTC)).unwrap().pan.ip(a);
        assert_eq!(d1, d1_again);
        let mode = std::fs::metadata(dir.path().join("2026-11-22.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // A restart reuses the epoch's key.
        let mut ks2 = KeyStore::open(dir.path(), EpochPeriod::Daily, 2).unwrap();
        assert_eq!(ks2.at(datetime!(2026-11-22 12:00:00 UTC)).unwrap().pan.ip(a), d1);
        let k = ks.at(datetime!(2026-11-23 00:00:00 UTC)).unwrap();
        assert_eq!(k.epoch, "2026-11-23");
        assert_ne!(k.pan.ip(a), d1, "a new epoch must change the mapping");
        ks.at(datetime!(2026-11-24 00:00:00 UTC)).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["2026-11-23.key", "2026-11-24.key"]);
        assert!(!format!("{ks:?}").contains("pad"), "{ks:?}");
    }

    #[test]
    fn a_key_file_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("2026-11-22.key");
        std::fs::write(&p, [7u8; 32]).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut ks = KeyStore::open(dir.path(), EpochPeriod::Daily, 2).unwrap();
        let e = ks.at(datetime!(2026-11-22 10:00:00 UTC)).unwrap_err();
        assert!(e.to_string().contains("can be read by other users"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&p, [7u8; 31]).unwrap();
        assert!(matches!(
            ks.at(datetime!(2026-11-22 10:00:00 UTC)),
            Err(KeyError::BadLength { .. })
        ));
    }
}
