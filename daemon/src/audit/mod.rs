//! The audit trail: an append-only file of JSON lines, each entry
//! hash-chained to the one before (SHA-256), counter checkpoints signed
//! with the appliance's Ed25519 key, every entry written and fsynced before
//! the daemon goes on. An inspector verifies a copy of the files with the
//! public key alone (`furui audit verify`).
//!
//! Entry: `{"seq","time","kind"[,"appliance"],"data","prev","hash"[,"sig"]}`,
//! where `hash = SHA-256(prev + "\n" + seq + "\n" + time + "\n" + kind +
//! "\n" + [appliance + "\n" +] data as canonical JSON)`, and `sig`
//! (checkpoints and stops) is the Ed25519 signature of the hash bytes.
//! `appliance` is the `[appliance] id` of the appliance that wrote the
//! entry (trails written before ids existed have none).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::erase::erase;

pub mod check;
pub mod fleet;
mod log;
pub mod policy;

pub use log::AuditLog;

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
pub const TRAIL: &str = "trail.jsonl";
pub const KEY: &str = "appliance.key";
pub const PUBKEY: &str = "appliance.pub";

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit file {path} failed")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Bad(String),
}

use crate::hex::{decode as unhex, encode as hex};

fn entry_hash(prev: &str, seq: u64, time: &str, kind: &str, appliance: Option<&str>, data: &Value) -> String {
    let data = serde_json::to_string(data).unwrap_or_default();
    let body = match appliance {
        Some(a) => format!("{prev}\n{seq}\n{time}\n{kind}\n{a}\n{data}"),
        None => format!("{prev}\n{seq}\n{time}\n{kind}\n{data}"),
    };
    hex(&Sha256::digest(body.as_bytes()))
}

/// The head of a signed entry, as recipients keep it as a witness: its
/// sequence number, time, kind, hash and signature, without its data (a
/// checkpoint's data holds every recipient's export counts, which are not
/// another recipient's business). The signature covers the hash, so the
/// head verifies with the public key alone; `verify --witness` takes a
/// head as well as a whole entry. None if `line` is not a signed entry.
pub fn witness_head(line: &str) -> Option<String> {
    let e: Value = serde_json::from_str(line).ok()?;
    e.get("sig")?;
    let mut head = json!({ "seq": e["seq"], "time": e["time"], "kind": e["kind"], "hash": e["hash"], "sig": e["sig"] });
    if let Some(a) = e.get("appliance") {
        head["appliance"] = a.clone();
    }
    serde_json::to_string(&head).ok()
}

/// A time as the trail writes it (RFC 3339, UTC).
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A time the trail wrote (an RFC 3339 string value), if it is one.
pub fn time_of(v: &Value) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(v.as_str()?, &time::format_description::well_known::Rfc3339).ok()
}

/// The appliance key: created (0600) on first use, with its public half
/// beside it for inspectors. Read and created like every key file
/// (`deid::key_file`: whole or not at all, symlinks and files of another
/// owner or readable by others refused).
pub fn load_or_create_key(dir: &Path) -> Result<SigningKey, AuditError> {
    let path = dir.join(KEY);
    let mut bytes = crate::deid::key_file(&path).map_err(|e| AuditError::Bad(e.to_string()))?;
    let key = SigningKey::from_bytes(&bytes);
    erase(&mut bytes);
    let pubpath = dir.join(PUBKEY);
    std::fs::write(&pubpath, format!("{}\n", hex(key.verifying_key().as_bytes()))).map_err(|source| {
        AuditError::Io {
            path: pubpath.clone(),
            source,
        }
    })?;
    Ok(key)
}

/// A signing key file as `load_or_create_key` keeps one (32 bytes, 0600),
/// read; it must exist.
pub fn signing_key(path: &Path) -> Result<SigningKey, AuditError> {
    if !path.is_file() {
        return Err(AuditError::Bad(format!(
            "{} does not exist (make it with `furui approval keygen`)",
            path.display()
        )));
    }
    signing_key_created(path)
}

/// Creates a new signing key in `path` (refused if the file exists) and
/// its public half in `path`.pub; returns the public key in hex.
pub fn keygen(path: &Path) -> Result<String, AuditError> {
    if path.exists() {
        return Err(AuditError::Bad(format!(
            "{} exists: a key is never overwritten",
            path.display()
        )));
    }
    let key = signing_key_created(path)?;
    let public = hex(key.verifying_key().as_bytes());
    let mut pubpath = path.as_os_str().to_os_string();
    pubpath.push(".pub");
    std::fs::write(&pubpath, format!("{public}\n")).map_err(|source| AuditError::Io {
        path: pubpath.into(),
        source,
    })?;
    Ok(public)
}

fn signing_key_created(path: &Path) -> Result<SigningKey, AuditError> {
    let mut bytes = crate::deid::key_file(path).map_err(|e| AuditError::Bad(e.to_string()))?;
    let key = SigningKey::from_bytes(&bytes);
    erase(&mut bytes);
    Ok(key)
}

pub fn read_pubkey(path: &Path) -> Result<VerifyingKey, AuditError> {
    let text = std::fs::read_to_string(path).map_err(|source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let b = unhex(text.trim())
        .filter(|b| b.len() == 32)
        .ok_or_else(|| AuditError::Bad(format!("{} is not a hex Ed25519 public key", path.display())))?;
    VerifyingKey::from_bytes(&b.try_into().expect("32 bytes"))
        .map_err(|e| AuditError::Bad(format!("{}: {e}", path.display())))
}

/// What a verified trail ends with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub entries: u64,
    pub last_hash: String,
    pub checkpoints: u64,
    /// The appliance ids the entries name, in order of first appearance.
    pub appliances: Vec<String>,
}

/// Checks every entry of the trail at `path`: sequence, chain, hash, and
/// the signature of every signed entry. `witness`: a checkpoint line kept
/// elsewhere, which the trail must still contain, unchanged (this catches
/// a truncated tail). The error names the first bad entry.
pub fn verify(path: &Path, key: &VerifyingKey, witness: Option<&str>) -> Result<Verified, AuditError> {
    let f = File::open(path).map_err(|source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    verify_from(BufReader::new(f), path, key, witness)
}

/// `verify` over a trail read from `f` (named `path` in errors).
pub fn verify_from(
    f: impl BufRead,
    path: &Path,
    key: &VerifyingKey,
    witness: Option<&str>,
) -> Result<Verified, AuditError> {
    let mut prev = GENESIS.to_string();
    let mut seq_expected = 1u64;
    let mut checkpoints = 0;
    let mut appliances: Vec<String> = Vec::new();
    let witness: Option<Value> = witness
        .map(|w| serde_json::from_str(w.trim()))
        .transpose()
        .map_err(|e| AuditError::Bad(format!("witness is not an entry: {e}")))?;
    if let Some(w) = &witness {
        if let Some(sig) = w.get("sig") {
            let ok = (sig.as_str().and_then(unhex))
                .and_then(|s| Signature::from_slice(&s).ok())
                .zip(w["hash"].as_str().and_then(unhex))
                .is_some_and(|(sig, h)| key.verify(&h, &sig).is_ok());
            if !ok {
                return Err(AuditError::Bad(
                    "the witness's signature does not verify with this public key".into(),
                ));
            }
        }
    }
    let mut witness_seen = false;
    for (i, line) in f.lines().enumerate() {
        let n = i + 1;
        let line = line.map_err(|source| AuditError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let bad = |why: String| AuditError::Bad(format!("{}: entry on line {n}: {why}", path.display()));
        let e: Value = serde_json::from_str(&line).map_err(|e| bad(format!("not a JSON entry ({e})")))?;
        let seq = e["seq"].as_u64().ok_or_else(|| bad("no seq".into()))?;
        if seq != seq_expected {
            return Err(bad(format!(
                "sequence {seq} where {seq_expected} was due (an entry removed or moved)"
            )));
        }
        let (time, kind) = (e["time"].as_str().unwrap_or(""), e["kind"].as_str().unwrap_or(""));
        if e["prev"].as_str() != Some(prev.as_str()) {
            return Err(bad("does not chain to the entry before".into()));
        }
        let appliance = match e.get("appliance") {
            None => None,
            Some(Value::String(a)) => Some(a.as_str()),
            Some(_) => return Err(bad("its appliance id is not a string".into())),
        };
        if let Some(a) = appliance.filter(|a| !appliances.iter().any(|x| x == a)) {
            appliances.push(a.to_string());
        }
        let h = entry_hash(&prev, seq, time, kind, appliance, &e["data"]);
        if e["hash"].as_str() != Some(h.as_str()) {
            return Err(bad("its hash does not match its content (altered)".into()));
        }
        if let Some(sig) = e.get("sig").and_then(Value::as_str) {
            let sig = unhex(sig)
                .and_then(|s| Signature::from_slice(&s).ok())
                .ok_or_else(|| bad("malformed signature".into()))?;
            key.verify(&unhex(&h).expect("own hex"), &sig)
                .map_err(|_| bad("signature does not verify with this public key".into()))?;
            checkpoints += 1;
        } else if matches!(kind, "checkpoint" | "stop") {
            return Err(bad(format!("{kind} without a signature")));
        }
        if let Some(w) = &witness {
            if w["seq"].as_u64() == Some(seq) {
                if w["hash"] != e["hash"] {
                    return Err(bad("differs from the witness's copy of this checkpoint".into()));
                }
                witness_seen = true;
            }
        }
        prev = h;
        seq_expected += 1;
    }
    if let Some(w) = &witness {
        if !witness_seen {
            return Err(AuditError::Bad(format!(
                "{}: the witness's checkpoint (entry {}) is missing: the trail was truncated after it was witnessed",
                path.display(),
                w["seq"]
            )));
        }
    }
    Ok(Verified {
        entries: seq_expected - 1,
        last_hash: prev,
        checkpoints,
        appliances,
    })
}

/// Verifies the trail in `dir` with the public key at `pubkey`, then
/// returns its entries (what the checks and the report read).
pub fn read_verified(dir: &Path, pubkey: &Path) -> Result<(Verified, Vec<Value>), AuditError> {
    let trail = dir.join(TRAIL);
    let v = verify(&trail, &read_pubkey(pubkey)?, None)?;
    let text = std::fs::read_to_string(&trail).map_err(|source| AuditError::Io {
        path: trail.clone(),
        source,
    })?;
    let entries = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    Ok((v, entries))
}

/// The daemon's writer.
pub struct Trail {
    path: PathBuf,
    file: File,
    /// Boxed: locked in RAM where it is, wiped on drop (ed25519-dalek's
    /// `zeroize`).
    key: Box<SigningKey>,
    seq: u64,
    prev: String,
    appliance: Option<String>,
}

impl std::fmt::Debug for Trail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Trail {{ path: {}, seq: {}, key: <withheld> }}",
            self.path.display(),
            self.seq
        )
    }
}

impl Trail {
    /// Opens the trail in `dir`, verifying what is there. If verification
    /// fails and `new_segment` is set, the bad file is kept aside
    /// (`trail.jsonl.failed-<n>`) and a new segment starts with an entry
    /// that says so; otherwise the error is returned and nothing starts.
    pub fn open(dir: &Path, new_segment: bool) -> Result<Trail, AuditError> {
        Trail::open_as(dir, new_segment, None)
    }

    /// `open`, naming `appliance` in every entry written.
    pub fn open_as(dir: &Path, new_segment: bool, appliance: Option<&str>) -> Result<Trail, AuditError> {
        std::fs::create_dir_all(dir).map_err(|source| AuditError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        crate::deid::remove_dead_temporaries(dir);
        let key = Box::new(load_or_create_key(dir)?);
        if crate::sys::lock_value_in_ram(&*key).is_err() {
            tracing::warn!(
                "could not lock the appliance signing key in RAM (RLIMIT_MEMLOCK); it is still wiped on drop"
            );
        }
        let path = dir.join(TRAIL);
        let (seq, prev, set_aside) = if path.exists() {
            match verify(&path, &key.verifying_key(), None) {
                Ok(v) => (v.entries, v.last_hash, None),
                Err(e) if new_segment => {
                    let n = (1..)
                        .find(|n| !dir.join(format!("{TRAIL}.failed-{n}")).exists())
                        .expect("free name");
                    let aside = dir.join(format!("{TRAIL}.failed-{n}"));
                    std::fs::rename(&path, &aside).map_err(|source| AuditError::Io {
                        path: aside.clone(),
                        source,
                    })?;
                    (0, GENESIS.to_string(), Some((aside, e.to_string())))
                }
                Err(e) => return Err(e),
            }
        } else {
            (0, GENESIS.to_string(), None)
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(|source| AuditError::Io {
                path: path.clone(),
                source,
            })?;
        let mut t = Trail {
            path,
            file,
            key,
            seq,
            prev,
            appliance: appliance.map(str::to_string),
        };
        if let Some((aside, why)) = set_aside {
            t.append(
                "new_segment",
                json!({ "reason": "the previous trail failed verification", "set_aside": aside.display().to_string(), "error": why }),
                true,
            )?;
        }
        Ok(t)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry (signed if `sign`) and fsyncs it; returns its line.
    pub fn append(&mut self, kind: &str, data: Value, sign: bool) -> Result<String, AuditError> {
        let seq = self.seq + 1;
        let time = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let hash = entry_hash(&self.prev, seq, &time, kind, self.appliance.as_deref(), &data);
        let mut e = json!({ "seq": seq, "time": time, "kind": kind, "data": data, "prev": self.prev, "hash": hash });
        if let Some(a) = &self.appliance {
            e["appliance"] = Value::String(a.clone());
        }
        if sign {
            let sig = self.key.sign(&unhex(&hash).expect("own hex"));
            e["sig"] = Value::String(hex(&sig.to_bytes()));
        }
        let mut line = serde_json::to_string(&e).unwrap_or_default();
        line.push('\n');
        let io = |source| AuditError::Io {
            path: self.path.clone(),
            source,
        };
        let before = self.file.metadata().map_err(io)?.len();
        let written = self.file.write_all(line.as_bytes()).and_then(|_| self.file.sync_data());
        if let Err(source) = written {
            // A partial line (a full disk) is cut off again: the trail on
            // disk stays a verifiable chain, and the next entry continues
            // it from the last one written.
            let _ = self.file.set_len(before).and_then(|_| self.file.sync_data());
            return Err(io(source));
        }
        self.seq = seq;
        self.prev = hash;
        Ok(line)
    }
}

#[cfg(test)]
mod tests;
