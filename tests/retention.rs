//! Retention on a running daemon (Art. 25): selected records are stored
//! sealed under their epoch's key; at expiry the key file is destroyed and
//! the records deleted, so a copy of the store taken before the purge can
//! no longer be read; the trail records each epoch and purge, and `furui
//! audit check retention` passes — and fails when a purge is skipped.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use furui::config::retention::Retention;
use furui::store::{Store, StoreError, DB_FILE};

const BODY: &str = "[domestic]\nprefixes = [\"192.0.2.0/24\"]\n\n[measures.inbound]\nenabled = true\nnot_before = \"2020-01-01T00:00:00Z\"\nnot_after = \"2099-01-01T00:00:00Z\"\n\n[[indicators]]\nname = \"c2\"\nprefixes = [\"203.0.113.0/24\"]\n\n[flows]\nidle_timeout_secs = 1\n";

struct Paths {
    audit: PathBuf,
    store: PathBuf,
    keys: PathBuf,
}

fn rig_with_retention() -> (Rig, PathBuf, Paths) {
    let rig = Rig::new();
    let p = Paths {
        audit: rig.path("audit"),
        store: rig.path("store"),
        keys: rig.path("keys"),
    };
    let cfg = rig.config(
        "",
        &format!(
            "{BODY}\n[audit]\ndir = \"{}\"\ncheckpoint_secs = 1\n\n[retention]\ndir = \"{}\"\nkey_dir = \"{}\"\nepoch_secs = 2\ninbound_secs = 3\n",
            p.audit.display(),
            p.store.display(),
            p.keys.display()
        ),
    );
    (rig, cfg, p)
}

fn check(what: &str, dir: &Path, grace: &str) -> (bool, String) {
    let out = Command::new(FURUI)
        .args(["audit", "check", what])
        .arg(dir)
        .arg("--pubkey")
        .arg(dir.join("appliance.pub"))
        .args(["--grace-secs", grace])
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

fn entries(dir: &Path, kind: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("trail.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["kind"] == kind)
        .collect()
}

/// A copy of the store's database, opened with the live key directory.
fn open_copy(copy: &Path, keys: &Path) -> Store {
    Store::open(&Retention {
        dir: copy.to_path_buf(),
        key_dir: keys.to_path_buf(),
        epoch: Duration::from_secs(2),
        inbound: Duration::from_secs(3),
        outbound: Duration::from_secs(3),
        transit: Duration::from_secs(3),
    })
    .unwrap()
}

/// Calls `f` with every regular file under `dir` and its bytes.
fn scan(dir: PathBuf, f: &mut dyn FnMut(&Path, &[u8])) {
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let path = e.path();
        let kind = e.file_type().unwrap();
        if kind.is_dir() {
            scan(path, f);
        } else if kind.is_file() {
            f(&path, &std::fs::read(&path).unwrap());
        }
    }
}

fn key_files(keys: &Path) -> usize {
    std::fs::read_dir(keys).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn records_are_purged_at_expiry_and_an_earlier_copy_of_the_store_cannot_be_read() {
    let (rig, cfg, p) = rig_with_retention();
    let d = Daemon::start(&rig, &cfg);
    rig.send(&["--count", "5", "--flow", "203.0.113.7,192.0.2.1"]);
    d.wait_for_metric("furui_store_records_total", 1, "a stored record");
    d.wait_for_metric("furui_records_written_total", 1, "a written record");
    assert_eq!(key_files(&p.keys), 1, "one epoch key");
    let opened = entries(&p.audit, "retention_open");
    assert_eq!(opened.len(), 1, "{opened:?}");
    let epoch = opened[0]["data"]["epoch"].as_str().unwrap().to_string();
    assert!(epoch.starts_with("inbound-"), "{epoch}");

    // A backup of the store, taken now: readable while the key exists,
    // and it holds exactly the record the daemon wrote.
    let copy = rig.path("backup");
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::copy(p.store.join(DB_FILE), copy.join(DB_FILE)).unwrap();
    let raw = std::fs::read(copy.join(DB_FILE)).unwrap();
    assert!(!raw.windows(9).any(|w| w == b"initiator"), "records are sealed on disk");
    let stored = open_copy(&copy, &p.keys).read_epoch(&epoch).unwrap();
    assert_eq!(stored.len(), 1);
    let rec = serde_json::from_str::<serde_json::Value>(&stored[0]).unwrap();
    assert_eq!(rec["initiator"], "203.0.113.7");
    assert_eq!(rec["responder"], "192.0.2.1");
    assert_eq!(rec["packets_forward"], 5);
    // With [retention] there is no plaintext copy: the store is the sink.
    let (written, text) = rig.records();
    assert!(
        written.is_empty() && text.is_empty(),
        "a plaintext record was written: {text}"
    );

    // Expiry: epoch end + 3 s. The purge destroys the key and the records.
    d.wait_for_metric("furui_store_purged_records_total", 1, "the purge");
    assert_eq!(key_files(&p.keys), 0, "the epoch key file is destroyed");
    assert_eq!(d.metrics().get("furui_store_epochs"), 0);
    assert_eq!(d.stop(), 0);
    let mut live = open_copy(&p.store, &p.keys);
    assert_eq!(live.len().unwrap(), 0, "no record left in the store");
    drop(live);
    let mut backup = open_copy(&copy, &p.keys);
    assert_eq!(backup.len().unwrap(), 1, "the copy still holds the sealed record");
    assert!(
        matches!(backup.read_epoch(&epoch), Err(StoreError::Sealed { .. })),
        "but it cannot be opened any more"
    );

    // Nothing readable of the record is left anywhere in the data
    // directory (store, keys, trail, records file, logs), the earlier
    // copy included: every file is scanned for the flow's addresses and
    // its port pair as text.
    let mut leaks = Vec::new();
    scan(rig.path(""), &mut |path, bytes| {
        for needle in [&b"203.0.113.7"[..], b"192.0.2.1\"", b"\"initiator\""] {
            if bytes.windows(needle.len()).any(|w| w == needle) {
                leaks.push(format!("{} holds {}", path.display(), String::from_utf8_lossy(needle)));
            }
        }
    });
    assert!(leaks.is_empty(), "{leaks:#?}");

    let purges = entries(&p.audit, "purge");
    assert_eq!(purges.len(), 1);
    assert_eq!(purges[0]["data"]["epoch"], epoch.as_str());
    assert_eq!(purges[0]["data"]["records"], 1);
    let (ok, out) = check("retention", &p.audit, "60");
    assert!(ok && out.starts_with("PASS"), "{out}");
    assert!(out.contains("1 retention epochs opened: 1 purged (1 records"), "{out}");
}

#[test]
fn a_skipped_purge_makes_the_retention_check_fail() {
    let (rig, cfg, p) = rig_with_retention();
    let d = Daemon::start_with_env(&rig, &cfg, &[("FURUI_FAULT_SKIP_PURGE", "1")]);
    rig.send(&["--count", "5", "--flow", "203.0.113.7,192.0.2.1"]);
    d.wait_for_metric("furui_store_records_total", 1, "a stored record");
    let expires = entries(&p.audit, "retention_open")[0]["data"]["expires"]
        .as_str()
        .unwrap()
        .to_string();
    let expires = time::OffsetDateTime::parse(&expires, &time::format_description::well_known::Rfc3339).unwrap();
    // Past expiry plus a 1 s grace, with a checkpoint written after it.
    while time::OffsetDateTime::now_utc() < expires + Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(d.metrics().get("furui_store_purged_records_total"), 0);
    assert_eq!(key_files(&p.keys), 1, "the key was not destroyed");
    assert_eq!(d.stop(), 0);
    let (ok, out) = check("retention", &p.audit, "1");
    assert!(!ok && out.starts_with("FAIL"), "{out}");
    assert!(out.contains("not purged by the trail's last entry"), "{out}");
}
