//! The transparency report from a real run's trail: the JSON's figures
//! equal the trail's signed counters and entries, and the HTML page,
//! rendered by headless Chromium, loads with no console error, shows the
//! same numbers, and leaves a screenshot in target/test-artifacts/.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const BODY: &str = "[domestic]\nprefixes = [\"192.0.2.0/24\"]\n\n[measures.inbound]\nenabled = true\nnot_before = \"2020-01-01T00:00:00Z\"\nnot_after = \"2099-01-01T00:00:00Z\"\n\n[[indicators]]\nname = \"c2\"\nprefixes = [\"203.0.113.0/24\"]\n\n[flows]\nidle_timeout_secs = 1\n";

fn artifacts() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// Headless Chromium on a local file: (DOM after load, stderr log).
fn chromium(page: &Path, profile: &Path, extra: &[&str]) -> (String, String) {
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=800,2000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium is installed by make deps");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn console_errors(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught") || l.contains("Content Security Policy"))
        .collect()
}

/// The text inside the element with `id` in a DOM dump, commas removed.
fn by_id(dom: &str, id: &str) -> String {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in the page"));
    let rest = &dom[at..];
    let start = rest.find('>').unwrap() + 1;
    let end = rest[start..].find('<').unwrap() + start;
    rest[start..end].replace(',', "")
}

#[test]
fn the_report_shows_the_trails_figures_and_renders_cleanly_in_chromium() {
    let rig = Rig::new();
    let dir = rig.path("audit");
    let cfg = rig.config(
        "",
        &format!(
            "{BODY}\n[audit]\ndir = \"{}\"\ncheckpoint_secs = 1\n\n[retention]\ndir = \"{}\"\nkey_dir = \"{}\"\nepoch_secs = 1\ninbound_secs = 1\n",
            dir.display(),
            rig.path("store").display(),
            rig.path("rkeys").display()
        ),
    );
    let d = Daemon::start(&rig, &cfg);
    for i in 0..3 {
        let flow = format!("203.0.113.{},192.0.2.10,udp,{},53", 40 + i, 7000 + i);
        rig.send(&["--count", "5", "--flow", &flow]);
    }
    rig.send(&["--count", "7", "--flow", "192.0.2.5,192.0.2.6"]);
    d.wait_for_metric("furui_store_purged_records_total", 3, "the purge");
    assert_eq!(d.stop(), 0);

    let now = time::OffsetDateTime::now_utc();
    let hour = time::OffsetDateTime::from_unix_timestamp(now.unix_timestamp() / 3600 * 3600).unwrap();
    let fmt = |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).unwrap();
    let out_dir = rig.path("report");
    let o = Command::new(FURUI)
        .args(["report", "--period", "hour", "--from"])
        .arg(fmt(hour - time::Duration::hours(2)))
        .arg("--to")
        .arg(fmt(hour + time::Duration::hours(1)))
        .arg("--out")
        .arg(&out_dir)
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("report.json")).unwrap()).unwrap();
    let t = &r["totals"];
    // The figures are the trail's: 15 inbound frames copied and erased, 3
    // records selected and purged, 7 domestic packets seen and not copied.
    assert_eq!(t["frames_received"], 15, "{r}");
    assert_eq!(t["frames_erased"], 15, "{r}");
    assert_eq!(t["records_selected"], 3, "{r}");
    assert_eq!(t["purged"]["inbound"], 3, "{r}");
    assert_eq!(t["packets_seen"]["domestic"], 7, "{r}");
    assert_eq!(t["packets_redirected"]["inbound"], 15, "{r}");
    assert!(t["packets_redirected"].get("domestic").is_none_or(|v| v == 0), "{r}");
    assert_eq!(r["periods"].as_array().unwrap().len(), 3, "three hourly periods");
    assert_eq!(r["windows"][0]["measure"], "inbound");
    assert_ne!(r["windows"][0]["closed"], "", "the stop ends the window: {r}");
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    for needle in ["203.0.113", "192.0.2", "initiator"] {
        assert!(
            !html.contains(needle),
            "the report must hold no address or record field: {needle}"
        );
    }

    // The page in a real browser.
    let page = out_dir.join("report.html");
    let shot = artifacts().join("transparency-report.png");
    let _ = std::fs::remove_file(&shot);
    let (_, log) = chromium(
        &page,
        &rig.path("chromium-1"),
        &[&format!("--screenshot={}", shot.display())],
    );
    assert!(
        console_errors(&log).is_empty(),
        "console errors: {:?}",
        console_errors(&log)
    );
    assert!(
        std::fs::metadata(&shot).map(|m| m.len() > 10_000).unwrap_or(false),
        "no screenshot: {log}"
    );
    let (dom, log) = chromium(&page, &rig.path("chromium-2"), &["--dump-dom"]);
    assert!(
        console_errors(&log).is_empty(),
        "console errors: {:?}",
        console_errors(&log)
    );
    let sum = |v: &serde_json::Value| {
        v.as_object()
            .map_or(0, |o| o.values().filter_map(|x| x.as_u64()).sum::<u64>())
    };
    assert_eq!(by_id(&dom, "total-frames-erased"), t["frames_erased"].to_string());
    assert_eq!(by_id(&dom, "total-records-selected"), t["records_selected"].to_string());
    assert_eq!(by_id(&dom, "total-records-purged"), sum(&t["purged"]).to_string());
    assert_eq!(by_id(&dom, "total-packets-seen"), sum(&t["packets_seen"]).to_string());
    assert_eq!(by_id(&dom, "never-copied"), "0");
    assert!(dom.matches("<svg").count() >= 4, "four charts");

    // The console check itself can fail: a page with a script error.
    let bad = rig.path("bad.html");
    std::fs::write(
        &bad,
        "<!DOCTYPE html><html><body><script>throw new Error('deliberate')</script></body></html>",
    )
    .unwrap();
    let (_, log) = chromium(&bad, &rig.path("chromium-3"), &["--dump-dom"]);
    assert!(!console_errors(&log).is_empty(), "a script error must be seen: {log}");
}
