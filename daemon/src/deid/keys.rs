//! Pseudonymization keys, one per epoch (a UTC day or hour). A key file
//! `<dir>/<epoch>.key` holds 32 random bytes, is created `0600` by the
//! daemon's user, and is refused if anyone else could read it. Keys older
//! than `keep` epochs are deleted, so their pseudonyms can no longer be
//! linked to anything. Key bytes never leave this module: not in logs,
//! errors, `Debug` output or records — only the epoch name does.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
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
    #[error("key file {path} is not a regular file of 32 bytes")]
    BadLength { path: PathBuf },
    #[error("key file {path} is a symbolic link; key files must be regular files")]
    Symlink { path: PathBuf },
    #[error("key file {path} is owned by uid {owner}, not by the daemon's user (uid {me})")]
    Owner { path: PathBuf, owner: u32, me: u32 },
    #[error("{0}")]
    Fleet(String),
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
/// Each epoch's key is random (per appliance), or derived from the fleet
/// chain (`fleet`), the same on every appliance of the fleet.
#[derive(Debug)]
pub struct KeyStore {
    dir: PathBuf,
    period: EpochPeriod,
    keep: usize,
    current: Option<Arc<EpochKey>>,
    fleet: Option<super::fleet::Chain>,
}

fn random_key() -> std::io::Result<[u8; 32]> {
    let mut k = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut k)?;
    Ok(k)
}

/// A 32-byte key file: created `0600` with fresh random bytes if it does
/// not exist, otherwise read. The caller erases the bytes after use.
///
/// Created whole or not at all: the bytes go to a temporary file beside
/// it (`<name>.tmp-<pid>-<n>`), which is fsynced and then hard-linked to the
/// final name (which fails if the name exists, so two creators never
/// overwrite each other's key) — a full disk leaves no short key file
/// that would block its epoch. Read with `O_NOFOLLOW` and checked on the
/// open descriptor: a symlink is refused, and so is a file that is not a
/// regular file, is not owned by the daemon's user, can be read by anyone
/// else, or is not 32 bytes.
pub fn key_file(path: &Path) -> Result<[u8; 32], KeyError> {
    key_file_with(path, random_key)
}

/// `key_file`, with the bytes of a new key from `make`.
fn key_file_with(path: &Path, make: impl FnOnce() -> std::io::Result<[u8; 32]>) -> Result<[u8; 32], KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    match read_key(path) {
        Err(KeyError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
        other => return other,
    }
    let mut key = make().map_err(io)?;
    // Unique within this process (threads may create keys at once); a
    // file of the same name can only be a dead process's leftover.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut tmp_name = path.as_os_str().to_os_string();
    tmp_name.push(format!(".tmp-{}-{n}", std::process::id()));
    let tmp = PathBuf::from(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&key).and_then(|_| f.sync_all()))
        .and_then(|_| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    match written {
        Ok(()) => {
            if let Some(dir) = path.parent() {
                let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
            }
            Ok(key)
        }
        // Someone else created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            erase(&mut key);
            read_key(path)
        }
        Err(e) => {
            erase(&mut key);
            Err(io(e))
        }
    }
}

/// Removes the temporary key files (`<name>.tmp-<pid>[-<n>]`) that a
/// process which died while creating a key left in `dir`: whole or not,
/// such a file may hold a key that would otherwise outlive its epoch's
/// destruction. A file of this process or of a living one is left alone
/// (it is being written). The number removed; logged as a warning.
pub fn remove_dead_temporaries(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
    let me = std::process::id();
    let mut removed = 0;
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some((_, rest)) = name.rsplit_once(".tmp-") else {
            continue;
        };
        let Ok(pid) = rest.split('-').next().unwrap_or("").parse::<u32>() else {
            continue;
        };
        if pid == me || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if std::fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    if removed > 0 {
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
        tracing::warn!(
            dir = %dir.display(),
            removed,
            "removed temporary key files a crashed process left"
        );
    }
    removed
}

/// Reads an existing key file (see `key_file` for what is refused).
fn read_key(path: &Path) -> Result<[u8; 32], KeyError> {
    let buf = read_secret_file(path, 32..=32)?;
    let mut key = [0u8; 32];
    key.copy_from_slice(&buf);
    Ok(key)
}

/// Reads a secret file whose length is in `len`: refused if it is a
/// symlink, not a regular file, not the daemon user's, or readable by
/// anyone else (`BadLength` if its length is out of range).
pub(crate) fn read_secret_file(
    path: &Path,
    len: std::ops::RangeInclusive<usize>,
) -> Result<zeroize::Zeroizing<Vec<u8>>, KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = match OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path) {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(KeyError::Symlink {
                path: path.to_path_buf(),
            })
        }
        Err(e) => return Err(io(e)),
    };
    let meta = f.metadata().map_err(io)?;
    let mode = meta.permissions().mode() & 0o777;
    if !meta.is_file() {
        return Err(KeyError::BadLength {
            path: path.to_path_buf(),
        });
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(KeyError::Owner {
            path: path.to_path_buf(),
            owner: meta.uid(),
            me,
        });
    }
    if mode & 0o077 != 0 {
        return Err(KeyError::Exposed {
            path: path.to_path_buf(),
            mode,
        });
    }
    let mut buf = zeroize::Zeroizing::new(Vec::with_capacity(len.end() + 1));
    (&mut f).take(*len.end() as u64 + 1).read_to_end(&mut buf).map_err(io)?;
    if !len.contains(&buf.len()) {
        return Err(KeyError::BadLength {
            path: path.to_path_buf(),
        });
    }
    Ok(buf)
}

impl KeyStore {
    /// `keep`: how many epochs' key files to keep (the current one included).
    pub fn open(dir: &Path, period: EpochPeriod, keep: usize) -> Result<KeyStore, KeyError> {
        std::fs::create_dir_all(dir).map_err(|source| KeyError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        remove_dead_temporaries(dir);
        Ok(KeyStore {
            dir: dir.to_path_buf(),
            period,
            keep: keep.max(1),
            current: None,
            fleet: None,
        })
    }

    /// `open`, deriving each epoch's key from the fleet chain fed by the
    /// seed file `seed_file` (see `deid::fleet`).
    pub fn open_fleet(dir: &Path, period: EpochPeriod, keep: usize, seed_file: &Path) -> Result<KeyStore, KeyError> {
        let mut ks = KeyStore::open(dir, period, keep)?;
        ks.fleet = Some(super::fleet::Chain::new(dir, seed_file, period));
        Ok(ks)
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
                let pan = match self.fleet.is_some() {
                    true => self.derive(&epoch, super::fleet::epoch_index(self.period, t))?,
                    false => self.load_or_create(&epoch)?,
                };
                let k = Arc::new(EpochKey { epoch, pan });
                if crate::sys::lock_value_in_ram(&k.pan).is_err() {
                    tracing::warn!(
                        "could not lock a pseudonymization key in RAM (RLIMIT_MEMLOCK); it is still wiped on drop"
                    );
                }
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

    /// The fleet key of epoch `index` (named `epoch`), kept in its key
    /// file like a random one. A key file that holds another key (the
    /// fleet was re-seeded) is replaced.
    fn derive(&mut self, epoch: &str, index: u64) -> Result<CryptoPan, KeyError> {
        let chain = self.fleet.as_mut().expect("fleet mode");
        let want = chain.at(index)?.epoch_key();
        let path = self.path(epoch);
        let mut have = key_file_with(&path, || Ok(*want))?;
        if have != *want {
            erase(&mut have);
            tracing::warn!(
                epoch,
                "this epoch's key file is not the fleet's key (re-seeded): replaced"
            );
            let _ = std::fs::remove_file(&path);
            have = key_file_with(&path, || Ok(*want))?;
        }
        let pan = CryptoPan::new(&have);
        erase(&mut have);
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

    /// A symlink in place of a key file is refused, even one pointing at
    /// a good key; so is a key file of another owner (root only: it needs
    /// chown) and anything that is not a regular file.
    #[test]
    fn symlinks_and_files_of_another_owner_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("elsewhere");
        std::fs::write(&real, [7u8; 32]).unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(key_file(&real).unwrap(), [7u8; 32]);
        let link = dir.path().join("2026-11-22.key");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let e = key_file(&link).unwrap_err();
        assert!(matches!(e, KeyError::Symlink { .. }), "{e}");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        // A dangling symlink is not "missing": nothing is created through it.
        std::fs::remove_file(&real).unwrap();
        assert!(matches!(key_file(&link), Err(KeyError::Symlink { .. })));
        assert!(!real.exists(), "a key was written through a symlink");

        let sub = dir.path().join("a-directory.key");
        std::fs::create_dir(&sub).unwrap();
        assert!(matches!(key_file(&sub), Err(KeyError::BadLength { .. })));

        assert!(nix::unistd::geteuid().is_root(), "the test suite runs as root");
        let theirs = dir.path().join("theirs.key");
        std::fs::write(&theirs, [7u8; 32]).unwrap();
        std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o600)).unwrap();
        nix::unistd::chown(&theirs, Some(nix::unistd::Uid::from_raw(1)), None).unwrap();
        let e = key_file(&theirs).unwrap_err();
        assert!(matches!(e, KeyError::Owner { owner: 1, me: 0, .. }), "{e}");
    }

    /// What a process that died while creating a key left behind is
    /// removed when the key directory is opened; a temporary file of this
    /// process or of a living one is not, nor is anything else.
    #[test]
    fn a_dead_creators_temporary_key_files_are_removed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // pid_max is at most 2^22: pid 4000000 and 4100000 cannot be alive
        // unless pid_max was raised, which the test checks.
        let max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let dead = if max < 4_000_000 { 4_000_000 } else { max + 1 };
        let me = std::process::id();
        let parent = std::os::unix::process::parent_id();
        let names = [
            format!("2026-11-22.key.tmp-{dead}-0"),
            format!("fleet.tmp-{}", dead + 1),
            format!("2026-11-23.key.tmp-{me}-4"),
            format!("2026-11-23.key.tmp-{parent}-0"),
            "2026-11-22.key".to_string(),
            "fleet.chain".to_string(),
            "notes.tmp-x".to_string(),
        ];
        for n in &names {
            std::fs::write(d.join(n), [9u8; 32]).unwrap();
        }
        KeyStore::open(d, EpochPeriod::Daily, 2).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let mut want: Vec<String> = names[2..].to_vec();
        want.sort();
        assert_eq!(left, want);
        assert_eq!(remove_dead_temporaries(d), 0, "nothing more to remove");
    }

    /// Creation goes through a temporary file that is linked into place
    /// only when whole: what a crashed creator left behind (a short
    /// temporary file) neither blocks the epoch nor becomes its key, and
    /// two stores creating the same epoch's key agree on one.
    #[test]
    fn a_key_is_created_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("2026-11-22.key");
        let leftover = dir.path().join("2026-11-22.key.tmp-4000000-0");
        std::fs::write(&leftover, [1u8; 5]).unwrap();
        let k = key_file(&p).unwrap();
        assert_ne!(k, [0u8; 32]);
        assert_eq!(std::fs::read(&p).unwrap(), k);
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["2026-11-22.key", "2026-11-22.key.tmp-4000000-0"],
            "no temporary file of ours stays"
        );
        assert_eq!(key_file(&p).unwrap(), k, "the second call reads the first one's key");
        let q = dir.path().join("2026-11-23.key");
        let a = std::thread::scope(|s| {
            let h: Vec<_> = (0..4).map(|_| s.spawn(|| key_file(&q).unwrap())).collect();
            h.into_iter().map(|h| h.join().unwrap()).collect::<Vec<_>>()
        });
        assert!(a.iter().all(|k| *k == a[0]), "racing creators got different keys");
    }
}
