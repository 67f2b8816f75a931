//! Stage 8 (records, second branch): the retention store (Art. 25). Selected records are kept for
//! their measure's retention period in an embedded, crash-safe database
//! (redb: pure Rust, ACID, copy-on-write pages, every commit fsynced),
//! each sealed with the data key of its retention epoch
//! (`<measure>-<epoch start>`). When the epoch expires (its end plus the
//! measure's period) the epoch's key file is destroyed first and its
//! records deleted after: crypto-shredding, so a copy of the store taken
//! earlier cannot be read either.
//!
//! Invariant kept: a record is committed (durably) before it is written to
//! the records file, so every record the appliance acknowledged is in the
//! store until its purge; an epoch exists exactly while its key file does,
//! so purges are rescheduled from the key files after a restart.

pub mod seal;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableTable, TableDefinition};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::audit::rfc3339;
use crate::classify::Measure;
use crate::config::retention::Retention;
use crate::deid::KeyError;
use crate::flow::MechanicalRecord;
use seal::SealKey;

const RECORDS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("records");
/// Epoch name → (expiry as Unix seconds, records stored).
const EPOCHS: TableDefinition<&str, (i64, u64)> = TableDefinition::new("epochs");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub const DB_FILE: &str = "records.redb";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the retention store failed: {0}")]
    Db(#[source] Box<redb::Error>),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("cannot use the retention key directory {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("record {seq} of epoch {epoch} cannot be opened: its key is gone or it was altered")]
    Sealed { epoch: String, seq: u64 },
}

fn dberr<E: Into<redb::Error>>(e: E) -> StoreError {
    StoreError::Db(Box::new(e.into()))
}

/// An epoch created by [`Store::put`]: the caller records it in the trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub epoch: String,
    pub measure: Measure,
    pub expires: OffsetDateTime,
}

/// An epoch purged by [`Store::purge_due`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purged {
    pub epoch: String,
    pub records: u64,
    pub expires: OffsetDateTime,
}

pub struct Store {
    /// None after a failed write: redb refuses every later transaction
    /// once an I/O error has happened (`PreviousIo`), so the database is
    /// closed and opened again (which repairs it) on the next use.
    db: Option<Database>,
    key_dir: PathBuf,
    cfg: Retention,
    keys: HashMap<String, SealKey>,
    next_seq: u64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store {{ key_dir: {}, keys: <withheld> }}", self.key_dir.display())
    }
}

fn measure_of(epoch: &str) -> Option<Measure> {
    Measure::ALL
        .into_iter()
        .find(|m| epoch.starts_with(&format!("{}-", m.name())))
}

/// Opens (or creates) the database file in `dir` with its tables, and
/// the next sequence number it has stored.
fn open_db(dir: &Path) -> Result<(Database, u64), StoreError> {
    // redb caches up to 1 GiB by default: bounded here, and counted in
    // the memory bound (`config::memory`).
    let db = redb::Builder::new()
        .set_cache_size(crate::config::retention::STORE_CACHE_BYTES)
        .create(dir.join(DB_FILE))
        .map_err(dberr)?;
    let txn = db.begin_write().map_err(dberr)?;
    let next_seq = {
        txn.open_table(RECORDS).map_err(dberr)?;
        txn.open_table(EPOCHS).map_err(dberr)?;
        let meta = txn.open_table(META).map_err(dberr)?;
        let v = meta.get("next_seq").map_err(dberr)?.map_or(1, |v| v.value());
        v
    };
    txn.commit().map_err(dberr)?;
    Ok((db, next_seq))
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

impl Store {
    /// Opens (or creates) the store in `cfg.dir`, keys in `cfg.key_dir`.
    pub fn open(cfg: &Retention) -> Result<Store, StoreError> {
        use std::os::unix::fs::PermissionsExt;
        for d in [&cfg.dir, &cfg.key_dir] {
            std::fs::create_dir_all(d)
                .and_then(|_| std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700)))
                .map_err(|source| StoreError::Io {
                    path: d.clone(),
                    source,
                })?;
        }
        crate::deid::remove_dead_temporaries(&cfg.key_dir);
        let (db, next_seq) = open_db(&cfg.dir)?;
        Ok(Store {
            db: Some(db),
            key_dir: cfg.key_dir.clone(),
            cfg: cfg.clone(),
            keys: HashMap::new(),
            next_seq,
        })
    }

    /// The database, opened again if a failed write closed it. The
    /// sequence never goes back: a number used by a write that failed may
    /// have reached the disk in a page that was never committed, so it is
    /// not used again (it is the seal's nonce).
    fn db(&mut self) -> Result<&Database, StoreError> {
        if self.db.is_none() {
            let (db, stored) = open_db(&self.cfg.dir)?;
            self.next_seq = self.next_seq.max(stored);
            tracing::info!("the retention store was opened again after a failed write");
            self.db = Some(db);
        }
        Ok(self.db.as_ref().expect("opened above"))
    }

    /// Closes the database after a failed write (see `db`).
    fn after<T>(&mut self, r: Result<T, StoreError>) -> Result<T, StoreError> {
        if matches!(r, Err(StoreError::Db(_))) {
            self.db = None;
        }
        r
    }

    fn key_path(&self, epoch: &str) -> PathBuf {
        self.key_dir.join(format!("{epoch}.key"))
    }

    /// The epoch a record selected at `t` belongs to, and when it expires.
    pub fn epoch_of(&self, m: Measure, t: OffsetDateTime) -> (String, OffsetDateTime) {
        let len = self.cfg.epoch.as_secs().max(1) as i64;
        let start = t.unix_timestamp().div_euclid(len) * len;
        let start = OffsetDateTime::from_unix_timestamp(start).unwrap_or(t);
        let expires = start + self.cfg.epoch + self.cfg.period(m);
        (format!("{}-{}", m.name(), rfc3339(start)), expires)
    }

    fn key(&mut self, epoch: &str) -> Result<&SealKey, StoreError> {
        if !self.keys.contains_key(epoch) {
            let path = self.key_path(epoch);
            if !path.exists() {
                return Err(StoreError::Sealed {
                    epoch: epoch.to_string(),
                    seq: 0,
                });
            }
            let mut raw = crate::deid::key_file(&path)?;
            self.keys.insert(epoch.to_string(), SealKey::new(&mut raw));
        }
        Ok(&self.keys[epoch])
    }

    /// Seals and commits `records` (one durable transaction). Returns the
    /// epochs this created; their key files exist (fsynced) before the
    /// commit, and `on_open` is called for each before the commit too, so
    /// the trail records an epoch before any record of it is stored.
    pub fn put(
        &mut self,
        records: &[Arc<MechanicalRecord>],
        now: OffsetDateTime,
        on_open: impl FnMut(&Opened),
    ) -> Result<Vec<Opened>, StoreError> {
        let r = self.put_once(records, now, on_open);
        self.after(r)
    }

    fn put_once(
        &mut self,
        records: &[Arc<MechanicalRecord>],
        now: OffsetDateTime,
        mut on_open: impl FnMut(&Opened),
    ) -> Result<Vec<Opened>, StoreError> {
        let mut opened = Vec::new();
        let txn = self.db()?.begin_write().map_err(dberr)?;
        {
            let mut table = txn.open_table(RECORDS).map_err(dberr)?;
            let mut epochs = txn.open_table(EPOCHS).map_err(dberr)?;
            for r in records {
                let Some(m) = r.class.measure() else { continue };
                let (epoch, expires) = self.epoch_of(m, now);
                let count = epochs.get(epoch.as_str()).map_err(dberr)?.map(|v| v.value().1);
                if count.is_none() && !self.key_path(&epoch).exists() {
                    let mut raw = crate::deid::key_file(&self.key_path(&epoch))?;
                    drop(SealKey::new(&mut raw));
                    sync_dir(&self.key_dir).map_err(|source| StoreError::Io {
                        path: self.key_dir.clone(),
                        source,
                    })?;
                    let o = Opened {
                        epoch: epoch.clone(),
                        measure: m,
                        expires,
                    };
                    on_open(&o);
                    opened.push(o);
                }
                let seq = self.next_seq;
                self.next_seq += 1;
                let mut buf = serde_json::to_vec(&**r).unwrap_or_default();
                let sealed = self.key(&epoch)?.seal(&epoch, seq, &mut buf);
                if sealed.is_err() {
                    crate::erase::erase(&mut buf);
                    return Err(StoreError::Sealed { epoch, seq });
                }
                table.insert((epoch.as_str(), seq), buf.as_slice()).map_err(dberr)?;
                epochs
                    .insert(epoch.as_str(), (expires.unix_timestamp(), count.unwrap_or(0) + 1))
                    .map_err(dberr)?;
            }
            txn.open_table(META)
                .map_err(dberr)?
                .insert("next_seq", self.next_seq)
                .map_err(dberr)?;
        }
        txn.commit().map_err(dberr)?;
        Ok(opened)
    }

    /// Every epoch: those with records, and those whose key exists without
    /// any (a crash between creating a key and the commit): name, expiry,
    /// records.
    pub fn epochs(&mut self) -> Result<Vec<(String, OffsetDateTime, u64)>, StoreError> {
        let r = self.epochs_once();
        self.after(r)
    }

    fn epochs_once(&mut self) -> Result<Vec<(String, OffsetDateTime, u64)>, StoreError> {
        let mut out: Vec<(String, OffsetDateTime, u64)> = Vec::new();
        let r = self.db()?.begin_read().map_err(dberr)?;
        let t = r.open_table(EPOCHS).map_err(dberr)?;
        for item in t.iter().map_err(dberr)? {
            let (k, v) = item.map_err(dberr)?;
            let (exp, n) = v.value();
            out.push((
                k.value().to_string(),
                OffsetDateTime::from_unix_timestamp(exp).unwrap_or(OffsetDateTime::UNIX_EPOCH),
                n,
            ));
        }
        let rd = std::fs::read_dir(&self.key_dir).map_err(|source| StoreError::Io {
            path: self.key_dir.clone(),
            source,
        })?;
        for name in rd.filter_map(|e| e.ok()?.file_name().into_string().ok()) {
            let Some(epoch) = name.strip_suffix(".key") else {
                continue;
            };
            if out.iter().any(|(e, _, _)| e == epoch) {
                continue;
            }
            let (Some(m), Some(start)) = (
                measure_of(epoch),
                epoch
                    .split_once('-')
                    .and_then(|(_, s)| OffsetDateTime::parse(s, &Rfc3339).ok()),
            ) else {
                continue;
            };
            out.push((epoch.to_string(), start + self.cfg.epoch + self.cfg.period(m), 0));
        }
        out.sort();
        Ok(out)
    }

    /// Purges every epoch expired at `now`: its key file is destroyed (and
    /// the key wiped from memory), then its records are deleted in one
    /// commit. `skip` (fault injection in tests only) leaves them alone.
    pub fn purge_due(&mut self, now: OffsetDateTime) -> Result<Vec<Purged>, StoreError> {
        let r = self.purge_due_once(now);
        self.after(r)
    }

    fn purge_due_once(&mut self, now: OffsetDateTime) -> Result<Vec<Purged>, StoreError> {
        let mut purged = Vec::new();
        for (epoch, expires, records) in self.epochs()? {
            if expires > now || fault_skip_purge() {
                continue;
            }
            self.keys.remove(&epoch);
            match std::fs::remove_file(self.key_path(&epoch)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(StoreError::Io {
                        path: self.key_path(&epoch),
                        source,
                    })
                }
            }
            sync_dir(&self.key_dir).map_err(|source| StoreError::Io {
                path: self.key_dir.clone(),
                source,
            })?;
            let txn = self.db()?.begin_write().map_err(dberr)?;
            {
                let mut t = txn.open_table(RECORDS).map_err(dberr)?;
                t.retain_in((epoch.as_str(), 0)..=(epoch.as_str(), u64::MAX), |_, _| false)
                    .map_err(dberr)?;
                txn.open_table(EPOCHS)
                    .map_err(dberr)?
                    .remove(epoch.as_str())
                    .map_err(dberr)?;
            }
            txn.commit().map_err(dberr)?;
            purged.push(Purged {
                epoch,
                records,
                expires,
            });
        }
        Ok(purged)
    }

    /// Opens every record of `epoch` (JSON text), in store order. Fails
    /// once the epoch's key is destroyed.
    pub fn read_epoch(&mut self, epoch: &str) -> Result<Vec<String>, StoreError> {
        let mut sealed = Vec::new();
        {
            let r = self.db()?.begin_read().map_err(dberr)?;
            let t = r.open_table(RECORDS).map_err(dberr)?;
            for item in t.range((epoch, 0)..=(epoch, u64::MAX)).map_err(dberr)? {
                let (k, v) = item.map_err(dberr)?;
                sealed.push((k.value().1, v.value().to_vec()));
            }
        }
        if sealed.is_empty() {
            return Ok(Vec::new());
        }
        let key = self.key(epoch)?;
        sealed
            .into_iter()
            .map(|(seq, s)| {
                key.open(epoch, seq, &s)
                    .map(|p| String::from_utf8_lossy(&p).into_owned())
                    .map_err(|_| StoreError::Sealed {
                        epoch: epoch.to_string(),
                        seq,
                    })
            })
            .collect()
    }

    /// Records stored (not yet purged), over all epochs.
    pub fn len(&mut self) -> Result<u64, StoreError> {
        Ok(self.epochs()?.iter().map(|(_, _, n)| n).sum())
    }

    pub fn is_empty(&mut self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }
}

/// Test builds only: `FURUI_FAULT_SKIP_PURGE=1` leaves expired epochs in
/// place, so the tests can show the retention check catches it.
fn fault_skip_purge() -> bool {
    cfg!(feature = "fault-injection") && std::env::var_os("FURUI_FAULT_SKIP_PURGE").is_some()
}

#[cfg(test)]
mod tests;
