//! A bounded on-disk queue of views for one sink of one recipient, used
//! while its collector is unreachable and drained, in order, when it comes
//! back. Only de-identified views are written (granted fields, pseudonyms),
//! never records; the file is 0600. Beyond `max_bytes`, views are refused
//! and the caller counts them as dropped.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::project::{Value, View};
use crate::flow::MechanicalRecord;

#[derive(Serialize, Deserialize)]
struct Entry {
    grant: usize,
    key_epoch: String,
    fields: Vec<(String, Value)>,
}

pub struct Spool {
    path: PathBuf,
    max_bytes: u64,
    /// Bytes in the file; 0 means empty.
    bytes: u64,
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

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).mode(0o600).open(path)
}

impl Spool {
    /// Opens (or resumes) the spool at `path`: views spooled before a
    /// restart are still sent first.
    pub fn open(path: &Path, max_bytes: u64) -> std::io::Result<Spool> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let bytes = std::fs::metadata(path).map_or(0, |m| m.len());
        Ok(Spool {
            path: path.to_path_buf(),
            max_bytes,
            bytes,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    fn io(&self, source: std::io::Error) -> SpoolError {
        SpoolError::Io {
            path: self.path.clone(),
            source,
        }
    }

    pub fn push(&mut self, grant: usize, view: &View) -> Result<(), SpoolError> {
        let e = Entry {
            grant,
            key_epoch: view.key_epoch.clone(),
            fields: view.fields.iter().map(|(n, v)| (n.to_string(), v.clone())).collect(),
        };
        let mut line = serde_json::to_vec(&e).map_err(|e| self.io(std::io::Error::other(e)))?;
        line.push(b'\n');
        if self.bytes + line.len() as u64 > self.max_bytes {
            return Err(SpoolError::Full);
        }
        let mut f = open_append(&self.path).map_err(|e| self.io(e))?;
        f.write_all(&line).map_err(|e| self.io(e))?;
        self.bytes += line.len() as u64;
        Ok(())
    }

    /// Sends spooled views in order through `send` until one fails; keeps
    /// the rest (the failed one first). Returns how many were sent.
    pub fn drain(&mut self, mut send: impl FnMut(usize, &View) -> std::io::Result<()>) -> Result<u64, SpoolError> {
        if self.is_empty() {
            return Ok(0);
        }
        let f = File::open(&self.path).map_err(|e| self.io(e))?;
        let mut lines = BufReader::new(f).lines();
        let mut sent = 0;
        let mut rest: Vec<String> = Vec::new();
        for line in lines.by_ref() {
            let line = line.map_err(|e| self.io(e))?;
            let Ok(e) = serde_json::from_str::<Entry>(&line) else {
                continue; // a torn last line after a crash
            };
            let view = View {
                key_epoch: e.key_epoch,
                fields: e
                    .fields
                    .into_iter()
                    .filter_map(|(n, v)| MechanicalRecord::FIELDS.iter().find(|f| **f == n).map(|f| (*f, v)))
                    .collect(),
            };
            if send(e.grant, &view).is_err() {
                rest.push(line);
                break;
            }
            sent += 1;
        }
        for line in lines {
            rest.push(line.map_err(|e| self.io(e))?);
        }
        if rest.is_empty() {
            std::fs::remove_file(&self.path).map_err(|e| self.io(e))?;
            self.bytes = 0;
        } else {
            let tmp = self.path.with_extension("tmp");
            let mut f = OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(|e| self.io(e))?;
            let mut n = 0;
            for l in &rest {
                f.write_all(l.as_bytes())
                    .and_then(|_| f.write_all(b"\n"))
                    .map_err(|e| self.io(e))?;
                n += l.len() as u64 + 1;
            }
            std::fs::rename(&tmp, &self.path).map_err(|e| self.io(e))?;
            self.bytes = n;
        }
        Ok(sent)
    }
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
        }
    }

    #[test]
    fn order_is_kept_across_failures_and_reopening_and_the_bound_holds() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.spool");
        let mut s = Spool::open(&p, 1000).unwrap();
        for i in 0..4 {
            s.push(0, &view(i)).unwrap();
        }
        let full = (4..20).find(|i| s.push(0, &view(*i)).is_err()).expect("bound reached");
        assert!(s.bytes() <= 1000, "{}", s.bytes());
        // The collector takes two, then fails.
        let mut got = Vec::new();
        let sent = s
            .drain(|_, v| {
                if got.len() == 2 {
                    return Err(std::io::Error::other("down"));
                }
                got.push(v.get("packets_forward").cloned().unwrap());
                Ok(())
            })
            .unwrap();
        assert_eq!(sent, 2);
        assert_eq!(got, [Value::U64(0), Value::U64(1)]);
        // A restart resumes with the rest, in order.
        let mut s = Spool::open(&p, 1000).unwrap();
        let mut got = Vec::new();
        s.drain(|_, v| {
            got.push(v.get("packets_forward").cloned().unwrap());
            Ok(())
        })
        .unwrap();
        let want: Vec<Value> = (2..full).map(Value::U64).collect();
        assert_eq!(got, want);
        assert!(s.is_empty() && !p.exists());
    }
}
