//! A bounded on-disk queue of views for one sink of one recipient, used
//! while its collector is unreachable and drained, in order, when it comes
//! back. Only de-identified views are written (granted fields, pseudonyms),
//! never records; the file is 0600. Beyond `max_bytes`, views are refused
//! and the caller counts them as dropped.
//!
//! Each entry names the grant it was projected under by the grant's
//! content hash (`grant_id`), and the file is named by the sink's content
//! hash (`sink_id`), so that after a restart or reload a view is sent only
//! to the same collector, under the same grant, if that grant is still in
//! force: the caller decides per entry (`Disposition`).
//!
//! The file, one entry per line: a status byte (`-` waiting, `+` done:
//! sent or dropped) then the entry's JSON. An entry is written, flushed and
//! fsynced before it counts as spooled; a write that fails part-way is cut
//! off again, and a torn last line found at open is cut off and counted, so
//! a torn entry never runs into the next. Draining marks each entry done in
//! place (overwriting its status byte needs no new disk space), so a full
//! disk cannot make a drain send an entry twice; the file is compacted (or
//! removed) when that is possible.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::project::{Value, View};
use crate::config::recipients::Grant;
use crate::config::sinks::SinkKind;
use crate::flow::MechanicalRecord;

const WAITING: u8 = b'-';
const DONE: u8 = b'+';

/// A view as spooled, with what the drain checks it against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// `grant_id` of the grant the view was projected under.
    pub grant_id: String,
    /// The record's measure (None for an aggregate summary row).
    pub measure: Option<String>,
    /// An aggregate row rather than a record's view.
    pub row: bool,
    pub key_epoch: String,
    pub fields: Vec<(String, Value)>,
    /// The view's appliance id and sequence number (absent from spools
    /// written before they existed).
    #[serde(default)]
    pub appliance: String,
    #[serde(default)]
    pub seq: u64,
}

impl Entry {
    pub fn new(grant_id: &str, measure: Option<&str>, row: bool, view: &View) -> Entry {
        Entry {
            grant_id: grant_id.to_string(),
            measure: measure.map(str::to_string),
            row,
            key_epoch: view.key_epoch.clone(),
            fields: view.fields.iter().map(|(n, v)| (n.to_string(), v.clone())).collect(),
            appliance: view.appliance.clone(),
            seq: view.seq,
        }
    }

    /// The view again: fields known to this build only (a field name that
    /// is neither a record field nor an aggregate row's is left out).
    pub fn view(&self) -> View {
        let known = |n: &str| {
            MechanicalRecord::FIELDS
                .iter()
                .chain(super::aggregate::ROW_FIELDS)
                .find(|f| **f == n)
                .copied()
        };
        View {
            key_epoch: self.key_epoch.clone(),
            fields: self
                .fields
                .iter()
                .filter_map(|(n, v)| known(n).map(|f| (f, v.clone())))
                .collect(),
            appliance: self.appliance.clone(),
            seq: self.seq,
        }
    }
}

fn short_hash(text: &str) -> String {
    let d = Sha256::digest(text.as_bytes());
    crate::hex::encode(&d[..8])
}

/// A grant's identity: the hash of everything that decides what a view
/// under it may hold and when it may be sent (fields, measures, purpose,
/// consent and its window, address policy).
pub fn grant_id(g: &Grant) -> String {
    short_hash(&format!(
        "grant|{}|{:?}|{:?}|{}|{:?}|{:?}",
        g.aggregate, g.measures, g.fields, g.purpose, g.consent, g.addresses
    ))
}

/// A sink's identity: the hash of its kind and destination (and, for TLS,
/// the files it trusts and presents).
pub fn sink_id(s: &SinkKind) -> String {
    short_hash(&format!("sink|{s:?}"))
}

/// The spool file of sink `s` in its recipient's spool directory.
pub fn file_name(s: &SinkKind) -> String {
    format!("{}-{}.spool", s.name(), sink_id(s))
}

/// What the caller did with one spooled entry.
pub enum Disposition {
    Sent,
    /// Not sent, and never will be (the grant is gone, say): counted
    /// under this reason.
    Dropped(&'static str),
}

/// What one drain did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Drained {
    pub sent: u64,
    /// Entries dropped, by reason (in the order first met).
    pub dropped: Vec<(&'static str, u64)>,
    /// Entries that did not parse (counted once, then marked done).
    pub corrupt: u64,
}

impl Drained {
    fn drop_one(&mut self, reason: &'static str) {
        match self.dropped.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, n)) => *n += 1,
            None => self.dropped.push((reason, 1)),
        }
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().map(|(_, n)| n).sum::<u64>() + self.corrupt
    }
}

pub struct Spool {
    path: PathBuf,
    max_bytes: u64,
    /// Bytes in the file; 0 means empty.
    bytes: u64,
    /// Bytes at the file's start whose entries are all done.
    done_prefix: u64,
    /// Entries found torn (a partial last line) when the spool was opened.
    torn_at_open: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool full")]
    Full,
    #[error("spool file {path} failed")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Spool {
    /// Opens (or resumes) the spool at `path`: views spooled before a
    /// restart are still sent first. A partial last line (a write cut by a
    /// crash) is cut off and counted (`take_torn`).
    pub fn open(path: &Path, max_bytes: u64) -> std::io::Result<Spool> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut s = Spool {
            path: path.to_path_buf(),
            max_bytes,
            bytes: 0,
            done_prefix: 0,
            torn_at_open: 0,
        };
        let mut data = Vec::new();
        match File::open(path) {
            Ok(mut f) => {
                f.read_to_end(&mut data)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(s),
            Err(e) => return Err(e),
        }
        let whole = data.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        if whole < data.len() {
            let f = OpenOptions::new().write(true).open(path)?;
            f.set_len(whole as u64)?;
            f.sync_data()?;
            s.torn_at_open = 1;
        }
        s.bytes = whole as u64;
        Ok(s)
    }

    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Entries found torn at open, once.
    pub fn take_torn(&mut self) -> u64 {
        std::mem::take(&mut self.torn_at_open)
    }

    fn io(&self, source: std::io::Error) -> SpoolError {
        SpoolError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Appends one entry: written, flushed and fsynced, or not there at all.
    pub fn push(&mut self, e: &Entry) -> Result<(), SpoolError> {
        let mut line = vec![WAITING];
        serde_json::to_writer(&mut line, e).map_err(|e| self.io(std::io::Error::other(e)))?;
        line.push(b'\n');
        if self.bytes + line.len() as u64 > self.max_bytes {
            return Err(SpoolError::Full);
        }
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)
            .map_err(|e| self.io(e))?;
        let before = self.bytes;
        let wrote = f.write_all(&line).and_then(|_| f.flush()).and_then(|_| f.sync_data());
        if let Err(err) = wrote {
            // Cut a partial line off again, so it cannot run into the next.
            let _ = f.set_len(before).and_then(|_| f.sync_data());
            return Err(self.io(err));
        }
        self.bytes += line.len() as u64;
        Ok(())
    }

    /// Offers the waiting entries, oldest first, to `handle` until it
    /// fails (that entry and the rest wait for the next drain). Each entry
    /// handled (sent or dropped) and each that does not parse is marked
    /// done in place; the marks are fsynced before this returns.
    pub fn drain(
        &mut self,
        mut handle: impl FnMut(&Entry) -> std::io::Result<Disposition>,
    ) -> Result<Drained, SpoolError> {
        self.drain_batched(1, |entries| entries.iter().map(&mut handle).collect())
    }

    /// `drain`, offering up to `batch` waiting entries at a time (so a
    /// sink can have them in flight at once). `handle` returns one result
    /// per entry, in order; from the first error (or missing result) on,
    /// the entries wait for the next drain.
    pub fn drain_batched(
        &mut self,
        batch: usize,
        mut handle: impl FnMut(&[Entry]) -> Vec<std::io::Result<Disposition>>,
    ) -> Result<Drained, SpoolError> {
        let mut out = Drained::default();
        if self.is_empty() {
            return Ok(out);
        }
        let f = OpenOptions::new().read(true).write(true).open(&self.path);
        let f = f.map_err(|e| self.io(e))?;
        let mut data = Vec::new();
        (&f).read_to_end(&mut data).map_err(|e| self.io(e))?;
        // Each line's start and end (a torn last line has no newline).
        let mut lines = Vec::new();
        let mut at = 0usize;
        while at < data.len() {
            let end = data[at..]
                .iter()
                .position(|b| *b == b'\n')
                .map_or(data.len(), |i| at + i + 1);
            lines.push((at, end));
            at = end;
        }
        let mut done: Vec<bool> = lines.iter().map(|(a, _)| data[*a] == DONE).collect();
        let mut marked = false;
        let mut mark = |line: usize, done: &mut Vec<bool>| -> Result<(), SpoolError> {
            f.write_all_at(&[DONE], lines[line].0 as u64).map_err(|e| self.io(e))?;
            done[line] = true;
            marked = true;
            Ok(())
        };
        let mut next = 0;
        let mut stopped = false;
        while next < lines.len() && !stopped {
            let (mut which, mut entries) = (Vec::new(), Vec::new());
            while next < lines.len() && entries.len() < batch.max(1) {
                let (a, e) = lines[next];
                if !done[next] {
                    let parsed = match data[a] {
                        WAITING => serde_json::from_slice::<Entry>(&data[a + 1..e]).ok(),
                        _ => None,
                    };
                    match parsed {
                        Some(entry) => {
                            which.push(next);
                            entries.push(entry);
                        }
                        None => {
                            out.corrupt += 1;
                            mark(next, &mut done)?;
                        }
                    }
                }
                next += 1;
            }
            if entries.is_empty() {
                continue;
            }
            let mut results = handle(&entries).into_iter();
            for line in which {
                match results.next() {
                    Some(Ok(d)) => {
                        match d {
                            Disposition::Sent => out.sent += 1,
                            Disposition::Dropped(reason) => out.drop_one(reason),
                        }
                        mark(line, &mut done)?;
                    }
                    _ => {
                        stopped = true;
                        break;
                    }
                }
            }
        }
        if marked {
            f.sync_data().map_err(|e| self.io(e))?;
        }
        // The first offset not known to be done.
        let prefix = done.iter().take_while(|d| **d).count();
        self.done_prefix = prefix.checked_sub(1).map_or(0, |k| lines[k].1 as u64);
        drop(f);
        self.compact(&data);
        Ok(out)
    }

    /// Removes the file once every entry is done, or rewrites it without
    /// the done prefix; if that fails (a full disk) the marks keep it
    /// correct and the next drain tries again.
    fn compact(&mut self, data: &[u8]) {
        if self.done_prefix == 0 {
            return;
        }
        if self.done_prefix >= self.bytes {
            if std::fs::remove_file(&self.path).is_ok() {
                self.bytes = 0;
                self.done_prefix = 0;
            }
            return;
        }
        let rest = &data[self.done_prefix as usize..];
        let tmp = self.path.with_extension("tmp");
        let written = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| f.write_all(rest).and_then(|_| f.sync_data()))
            .and_then(|_| std::fs::rename(&tmp, &self.path));
        match written {
            Ok(()) => {
                self.bytes = rest.len() as u64;
                self.done_prefix = 0;
            }
            Err(_) => {
                let _ = std::fs::remove_file(&tmp);
            }
        }
    }
}

/// Entries still waiting in a spool file nobody will drain (its sink or
/// recipient was removed): counted, then the file is removed.
pub fn discard(path: &Path) -> std::io::Result<u64> {
    let data = std::fs::read(path)?;
    let waiting = data
        .split(|b| *b == b'\n')
        .filter(|l| l.first() == Some(&WAITING))
        .count() as u64;
    std::fs::remove_file(path)?;
    Ok(waiting)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(n: u64) -> View {
        View {
            key_epoch: "e".into(),
            fields: vec![
                ("packets_forward", Value::U64(n)),
                ("initiator", Value::Addr("192.0.2.1".parse().unwrap())),
            ],
            ..Default::default()
        }
    }

    fn entry(n: u64) -> Entry {
        Entry::new("g", Some("inbound"), false, &view(n))
    }

    fn sent(got: &mut Vec<Value>) -> impl FnMut(&Entry) -> std::io::Result<Disposition> + '_ {
        |e| {
            got.push(e.view().get("packets_forward").cloned().unwrap());
            Ok(Disposition::Sent)
        }
    }

    #[test]
    fn order_is_kept_across_failures_and_reopening_and_the_bound_holds() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.spool");
        let mut s = Spool::open(&p, 1000).unwrap();
        for i in 0..4 {
            s.push(&entry(i)).unwrap();
        }
        let full = (4..20).find(|i| s.push(&entry(*i)).is_err()).expect("bound reached");
        assert!(s.bytes() <= 1000, "{}", s.bytes());
        // The collector takes two, then fails.
        let mut got = Vec::new();
        let d = s
            .drain(|e| {
                if got.len() == 2 {
                    return Err(std::io::Error::other("down"));
                }
                got.push(e.view().get("packets_forward").cloned().unwrap());
                Ok(Disposition::Sent)
            })
            .unwrap();
        assert_eq!(d.sent, 2);
        assert_eq!(got, [Value::U64(0), Value::U64(1)]);
        // A restart resumes with the rest, in order.
        let mut s = Spool::open(&p, 1000).unwrap();
        let mut got = Vec::new();
        s.drain(sent(&mut got)).unwrap();
        let want: Vec<Value> = (2..full).map(Value::U64).collect();
        assert_eq!(got, want);
        assert!(s.is_empty() && !p.exists());
    }

    /// A line torn by a crash is cut off at open and counted; the entry
    /// written after it is intact, and a garbage line is counted, skipped
    /// and never takes its neighbours with it.
    #[test]
    fn torn_and_corrupt_entries_are_counted_and_never_swallow_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.spool");
        let mut s = Spool::open(&p, 10_000).unwrap();
        s.push(&entry(1)).unwrap();
        // Garbage that is a whole line, then a torn write.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"-{\"grant_id\":\"g\",\"meas\n-{\"grant_id\":\"g\",\"mea")
            .unwrap();
        drop(f);
        let mut s = Spool::open(&p, 10_000).unwrap();
        assert_eq!(s.take_torn(), 1);
        assert_eq!(s.take_torn(), 0, "counted once");
        s.push(&entry(2)).unwrap();
        let mut got = Vec::new();
        let d = s.drain(sent(&mut got)).unwrap();
        assert_eq!(got, [Value::U64(1), Value::U64(2)]);
        assert_eq!((d.sent, d.corrupt), (2, 1));
        assert!(!p.exists());
    }

    /// Dropped entries are counted by reason and, like sent ones, never
    /// offered again; a drain that stops keeps the rest.
    #[test]
    fn dropped_entries_are_counted_by_reason_and_marked_done() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.spool");
        let mut s = Spool::open(&p, 10_000).unwrap();
        for i in 0..6 {
            s.push(&entry(i)).unwrap();
        }
        let mut offered = 0;
        let d = s
            .drain(|e| {
                offered += 1;
                match e.view().get("packets_forward") {
                    Some(Value::U64(n)) if *n < 2 => Ok(Disposition::Dropped("grant_withdrawn")),
                    Some(Value::U64(3)) => Ok(Disposition::Dropped("grant_expired")),
                    Some(Value::U64(5)) => Err(std::io::Error::other("down")),
                    _ => Ok(Disposition::Sent),
                }
            })
            .unwrap();
        assert_eq!(offered, 6);
        assert_eq!(d.dropped, [("grant_withdrawn", 2), ("grant_expired", 1)]);
        assert_eq!(d.sent, 2);
        let mut got = Vec::new();
        let mut s = Spool::open(&p, 10_000).unwrap();
        s.drain(sent(&mut got)).unwrap();
        assert_eq!(got, [Value::U64(5)], "only the one that failed is offered again");
    }

    /// When the compaction cannot be written, the marks alone keep a
    /// drained entry from being sent again.
    #[test]
    fn marks_hold_when_the_file_cannot_be_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.spool");
        let mut s = Spool::open(&p, 10_000).unwrap();
        for i in 0..3 {
            s.push(&entry(i)).unwrap();
        }
        // The rewrite's temporary file cannot be created: a directory
        // stands in its place.
        std::fs::create_dir(p.with_extension("tmp")).unwrap();
        let mut n = 0;
        s.drain(|_| {
            n += 1;
            if n == 2 {
                Err(std::io::Error::other("down"))
            } else {
                Ok(Disposition::Sent)
            }
        })
        .unwrap();
        assert!(p.exists());
        let mut got = Vec::new();
        let mut s = Spool::open(&p, 10_000).unwrap();
        s.drain(sent(&mut got)).unwrap();
        assert_eq!(got, [Value::U64(1), Value::U64(2)], "entry 0 was not sent twice");
    }

    #[test]
    fn discard_counts_what_was_still_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.spool");
        let mut s = Spool::open(&p, 10_000).unwrap();
        for i in 0..3 {
            s.push(&entry(i)).unwrap();
        }
        let mut n = 0;
        s.drain(|_| {
            n += 1;
            if n == 1 {
                Ok(Disposition::Sent)
            } else {
                Err(std::io::Error::other("down"))
            }
        })
        .unwrap();
        assert_eq!(discard(&p).unwrap(), 2);
        assert!(!p.exists());
    }
}
