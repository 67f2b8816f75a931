//! Full disks during traffic: the audit trail, the records file, a spool,
//! the retention store and its key directory each on their own small tmpfs, filled by the test while flows are
//! selected, then freed. Nothing selected is lost without a counter, the
//! trail fails closed (exports wait while it cannot be written, capture and
//! erasure go on) and verifies afterwards, no file is left with a partial
//! line, and the daemon never crashes.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::collectors::Collector;
use common::export::*;
use common::*;

/// A small tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: PathBuf, size: &str) -> Tmpfs {
        std::fs::create_dir_all(&path).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
            .arg(&path)
            .status()
            .unwrap()
            .success();
        assert!(ok, "cannot mount a tmpfs at {}", path.display());
        Tmpfs(path)
    }

    /// Fills what is left with a filler file (until ENOSPC).
    fn fill(&self) {
        let mut f = std::fs::File::create(self.0.join("filler")).unwrap();
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
        let _ = f.flush();
        // Smaller writes take the last partial page.
        while f.write_all(&block[..64]).is_ok() {}
    }

    fn free(&self) {
        std::fs::remove_file(self.0.join("filler")).unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn wait_until(what: &str, d: &Daemon, within: Duration, mut f: impl FnMut(&Metrics) -> bool) -> Metrics {
    let deadline = Instant::now() + within;
    loop {
        let m = d.metrics();
        if f(&m) {
            return m;
        }
        assert!(Instant::now() < deadline, "{what}:\n{:?}\n{}", m.0, d.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Three new inbound flows, each its own record (distinct source ports).
fn flows(rig: &Rig, first_port: u16) {
    for p in first_port..first_port + 3 {
        rig.send_line(&format!("--count 3 --flow 203.0.113.5,192.0.2.10,tcp,{p},80"));
    }
}

const R: &str = "recipient=\"sock\"";

fn exported(m: &Metrics) -> u64 {
    m.get(&format!("furui_export_records_total{{{R},sink=\"ipfix-tcp\"}}"))
}

fn export_dropped(m: &Metrics) -> u64 {
    m.0.iter()
        .filter(|(k, _)| k.starts_with("furui_export_dropped_total{") && k.contains(R))
        .map(|(_, v)| *v as u64)
        .sum()
}

fn whole_lines(path: &Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "{} ends in a partial line",
        path.display()
    );
    for l in text.lines() {
        serde_json::from_str::<serde_json::Value>(l)
            .unwrap_or_else(|e| panic!("{}: a line that does not parse ({e}): {l}", path.display()));
    }
    text.lines().count()
}

#[test]
fn full_disks_lose_nothing_uncounted_and_the_trail_fails_closed() {
    let rig = Rig::new();
    let audit = Tmpfs::mount(rig.path("audit"), "256k");
    let records = Tmpfs::mount(rig.path("records"), "256k");
    let spool = Tmpfs::mount(rig.path("spool"), "256k");
    let records_path = records.0.join("records.jsonl");
    let cfg = rig.config(
        "",
        &format!(
            "{DOMESTIC}{MEASURES}{SELECT}\n[flows]\nidle_timeout_secs = 1\n\n[deid]\nkey_dir = \"{keys}\"\n\n[export]\nspool_dir = \"{spool}\"\n\n[audit]\ndir = \"{audit}\"\ncheckpoint_secs = 1\n\n[[purposes]]\nid = \"damage-prevention\"\ndamage_prevention = true\n\n[[recipients]]\nname = \"sock\"\nrole = \"analyst\"\nidentity = \"{IDENTITY}\"\n[[recipients.grants]]\nmeasures = [\"inbound\"]\nfields = [\"protocol\", \"initiator_port\", \"packets_forward\"]\npurpose = \"damage-prevention\"\n[[recipients.sinks]]\nkind = \"ipfix-tcp\"\naddress = \"127.0.0.1:4755\"\n",
            keys = rig.path("keys").display(),
            spool = spool.0.display(),
            audit = audit.0.display(),
        ),
    );
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = text.replace(
        &format!("path = \"{}\"", rig.path("records.jsonl").display()),
        &format!("path = \"{}\"", records_path.display()),
    );
    std::fs::write(&cfg, text).unwrap();
    let collector = Collector::start(&rig.ns_cap, 4755, None);
    let d = Daemon::start(&rig, &cfg);

    // 1. Normal: three records written and exported.
    flows(&rig, 1000);
    wait_until("three records exported", &d, Duration::from_secs(20), |m| {
        exported(m) >= 3
    });

    // 2. The trail's disk fills: exports pause, capture and erasure go on.
    audit.fill();
    wait_until("the trail reported unwritable", &d, Duration::from_secs(20), |m| {
        m.get("furui_audit_trail_writable") == 0
    });
    flows(&rig, 2000);
    let m = wait_until("the recipient paused", &d, Duration::from_secs(20), |m| {
        m.get(&format!("furui_export_paused{{{R}}}")) == 1 && m.get("furui_records_written_total") >= 6
    });
    let sent_before = collector.data_messages();
    assert_eq!(exported(&m), 3, "nothing exported while the trail cannot be written");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(collector.data_messages(), sent_before, "a view left unaudited");
    let m = d.settled_metrics();
    assert_eq!(m.sum("furui_frames_received_total"), 18, "capture went on");
    assert_eq!(m.sum("furui_frames_erased_total"), 18, "erasure went on");
    assert!(m.get("furui_audit_entries_total{kind=\"write_failed\"}") >= 1);

    // 3. Space returns: the trail continues and the paused views go out.
    audit.free();
    wait_until("exports resumed", &d, Duration::from_secs(20), |m| {
        m.get(&format!("furui_export_paused{{{R}}}")) == 0 && exported(m) == 6
    });
    assert_eq!(d.metrics().get("furui_audit_trail_writable"), 1);

    // 4. The records file's disk fills: batches are dropped and counted,
    // never half-written.
    records.fill();
    flows(&rig, 3000);
    wait_until("records dropped as sink_error", &d, Duration::from_secs(20), |m| {
        m.get("furui_records_dropped_total{reason=\"sink_error\"}") >= 1 && exported(m) == 9
    });
    whole_lines(&records_path);
    records.free();

    // 5. The collector goes away and the spool's disk is full: the views
    // that cannot be spooled are dropped and counted.
    drop(collector);
    spool.fill();
    flows(&rig, 4000);
    // (A view the kernel took just before the collector closed counts as
    // sent: IPFIX over TCP has no acknowledgement.)
    wait_until("views dropped as spool_error", &d, Duration::from_secs(20), |m| {
        let spooled = m.get(&format!("furui_export_spooled_total{{{R},sink=\"ipfix-tcp\"}}"));
        m.get(&format!("furui_export_dropped_total{{reason=\"spool_error\",{R}}}")) >= 1
            && exported(m) + spooled + export_dropped(m) == 12
    });
    spool.free();

    // The account: every selected record was written or dropped with a
    // reason; every view was sent, spooled or dropped with a reason.
    let m = d.settled_metrics();
    let selected = m.get("furui_records_selected_total");
    assert_eq!(selected, 12);
    assert_eq!(
        m.get("furui_records_written_total") + m.sum("furui_records_dropped_total"),
        selected,
        "{:?}",
        m.0
    );
    let spooled = m.get(&format!("furui_export_spooled_total{{{R},sink=\"ipfix-tcp\"}}"));
    assert_eq!(exported(&m) + spooled + export_dropped(&m), selected, "{:?}", m.0);
    assert_eq!(d.stop(), 0, "the daemon exits cleanly");

    // Files: whole lines only; the trail verifies and says what it lost.
    let written = whole_lines(&records_path);
    assert_eq!(written as u64, m.get("furui_records_written_total"));
    let out = Command::new(FURUI)
        .args(["audit", "verify"])
        .arg(&audit.0)
        .arg("--pubkey")
        .arg(audit.0.join("appliance.pub"))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && report.starts_with("PASS"), "{report}");
    let trail = std::fs::read_to_string(audit.0.join("trail.jsonl")).unwrap();
    let gaps: Vec<serde_json::Value> = trail
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["kind"] == "audit_gap")
        .collect();
    assert!(!gaps.is_empty(), "no audit_gap entry after the trail's disk was full");
    assert!(
        gaps[0]["data"]["lost"].as_object().is_some_and(|o| !o.is_empty()),
        "{gaps:?}"
    );
}

fn key_dir_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "filler")
        .collect();
    v.sort();
    v
}

/// The retention store and its key directory each on a small tmpfs. A
/// full key directory when an epoch's first record arrives: the records
/// are dropped and counted, and no short key file is left to block the
/// epoch; when space returns the epoch opens with a whole key. A full
/// store: commits fail, are counted, and the store works again once
/// space returns. The account of selected records closes throughout.
#[test]
fn a_full_store_or_key_directory_drops_counted_and_recovers() {
    let rig = Rig::new();
    let store = Tmpfs::mount(rig.path("store"), "4m");
    let keys = Tmpfs::mount(rig.path("retention-keys"), "64k");
    let cfg = rig.config(
        "",
        &format!(
            "{DOMESTIC}{MEASURES}{SELECT}\n[flows]\nidle_timeout_secs = 1\n\n[deid]\nkey_dir = \"{dkeys}\"\n\n[audit]\ndir = \"{audit}\"\ncheckpoint_secs = 1\n\n[retention]\ndir = \"{store}\"\nkey_dir = \"{keys}\"\nepoch_secs = 3600\ninbound_secs = 3600\n",
            dkeys = rig.path("keys").display(),
            audit = rig.path("audit").display(),
            store = store.0.display(),
            keys = keys.0.display(),
        ),
    );
    let d = Daemon::start(&rig, &cfg);
    let stored = |m: &Metrics| m.get("furui_store_records_total");
    let store_error = |m: &Metrics| m.get("furui_records_dropped_total{reason=\"store_error\"}");

    // 1. The key directory is full before the epoch's first record.
    keys.fill();
    flows(&rig, 1000);
    let m = wait_until("records dropped as store_error", &d, Duration::from_secs(20), |m| {
        store_error(m) == 3
    });
    assert_eq!(stored(&m), 0);
    assert_eq!(
        key_dir_names(&keys.0),
        Vec::<String>::new(),
        "a partial key file was left"
    );

    // 2. Space returns: the epoch opens with a whole key.
    keys.free();
    flows(&rig, 2000);
    wait_until("records stored", &d, Duration::from_secs(20), |m| stored(m) == 3);
    let names = key_dir_names(&keys.0);
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(
        names[0].starts_with("inbound-") && names[0].ends_with(".key"),
        "{names:?}"
    );
    assert_eq!(std::fs::metadata(keys.0.join(&names[0])).unwrap().len(), 32);

    // 3. The store's disk fills: commits fail and are counted, until
    // space returns.
    store.fill();
    let mut port = 3000;
    let before = store_error(&d.metrics());
    while store_error(&d.metrics()) == before {
        assert!(port < 3300, "the store never ran out of space");
        flows(&rig, port);
        port += 3;
        std::thread::sleep(Duration::from_millis(300));
    }
    store.free();
    let m = d.settled_metrics();
    let now_stored = stored(&m);
    flows(&rig, 4000);
    wait_until("the store works again", &d, Duration::from_secs(20), |m| {
        stored(m) == now_stored + 3
    });

    let m = d.settled_metrics();
    let selected = m.get("furui_records_selected_total");
    assert_eq!(
        m.get("furui_records_written_total") + m.sum("furui_records_dropped_total"),
        selected,
        "{:?}",
        m.0
    );
    assert_eq!(stored(&m), m.get("furui_records_written_total"));
    assert_eq!(d.stop(), 0, "the daemon exits cleanly");
}
