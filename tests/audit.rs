//! The audit trail on a running daemon: start, authorization windows,
//! signed counter checkpoints and stop are recorded and verify with the
//! public key alone; the trail survives `kill -9` at random moments; a
//! tampered trail stops the next start unless a new segment is asked for.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

const BODY: &str = "[domestic]\nprefixes = [\"192.0.2.0/24\"]\n\n[measures.inbound]\nenabled = true\nnot_before = \"2020-01-01T00:00:00Z\"\nnot_after = \"2099-01-01T00:00:00Z\"\n\n[[indicators]]\nname = \"c2\"\nprefixes = [\"203.0.113.0/24\"]\n";

fn audit_rig() -> (Rig, std::path::PathBuf, std::path::PathBuf) {
    let rig = Rig::new();
    let dir = rig.path("audit");
    let cfg = rig.config(
        "",
        &format!("{BODY}\n[audit]\ndir = \"{}\"\ncheckpoint_secs = 1\n", dir.display()),
    );
    (rig, cfg, dir)
}

/// `furui audit <sub...> DIR --pubkey DIR/appliance.pub`: (exit code 0?, output).
fn audit_cmd(sub: &[&str], dir: &std::path::Path) -> (bool, String) {
    let out = Command::new(FURUI)
        .arg("audit")
        .args(sub)
        .arg(dir)
        .arg("--pubkey")
        .arg(dir.join("appliance.pub"))
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

fn verify(dir: &std::path::Path) -> (bool, String) {
    audit_cmd(&["verify"], dir)
}

fn entries(dir: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("trail.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_run_is_recorded_with_signed_checkpoints_and_verifies() {
    let (rig, cfg, dir) = audit_rig();
    let d = Daemon::start(&rig, &cfg);
    rig.send(&["--count", "40", "--flow", "203.0.113.7,192.0.2.1"]);
    d.wait_for_metric("furui_audit_entries_total{kind=\"checkpoint\"}", 2, "two checkpoints");
    assert!(d.metrics().get("furui_audit_checkpoint_timestamp_seconds") > 1_700_000_000);
    assert_eq!(d.stop(), 0);
    let (ok, out) = verify(&dir);
    assert!(ok && out.starts_with("PASS"), "{out}");
    for what in ["erasure", "capture"] {
        let (ok, out) = audit_cmd(&["check", what], &dir);
        assert!(ok && out.starts_with("PASS"), "{what}: {out}");
    }
    let e = entries(&dir);
    let kinds: Vec<&str> = e.iter().map(|x| x["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"start"));
    assert_eq!(kinds.last(), Some(&"stop"));
    assert!(kinds.contains(&"window") && kinds.contains(&"checkpoint"), "{kinds:?}");
    let start = &e[0]["data"];
    assert_eq!(start["config_sha256"].as_str().unwrap().len(), 64);
    // The stop entry's signed counters: every received frame erased.
    let stop = &e.last().unwrap()["data"];
    assert_eq!(stop["furui_frames_received_total{queue=\"0\"}"], 40, "{stop}");
    assert_eq!(stop["furui_frames_erased_total{queue=\"0\"}"], 40, "{stop}");
    assert!(e.last().unwrap()["sig"].is_string());
    // The key file is the daemon's alone.
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(dir.join("appliance.key")).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
}

/// `kill -9` at random moments during traffic, 20 times: after each, the
/// trail verifies, and the next start (which verifies it too) succeeds.
#[test]
fn the_trail_survives_kill_9_at_random_moments() {
    let (rig, cfg, dir) = audit_rig();
    let mut seed = std::process::id() as u64;
    for round in 0..20 {
        let mut d = Daemon::start(&rig, &cfg);
        let mut gen = rig.send_background(&["--duration", "2", "--pps", "5000", "--flow", "203.0.113.9,192.0.2.1"]);
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(100 + (seed >> 33) % 1200));
        d.child.kill().unwrap();
        let _ = d.child.wait();
        let _ = gen.kill();
        let _ = gen.wait();
        let (ok, out) = verify(&dir);
        assert!(ok, "round {round}: {out}");
    }
    let starts = entries(&dir).iter().filter(|e| e["kind"] == "start").count();
    assert_eq!(starts, 20);
}

#[test]
fn a_tampered_trail_stops_the_start_until_a_new_segment_is_asked_for() {
    let (rig, cfg, dir) = audit_rig();
    let d = Daemon::start(&rig, &cfg);
    d.wait_for_metric("furui_audit_entries_total{kind=\"checkpoint\"}", 1, "a checkpoint");
    assert_eq!(d.stop(), 0);
    // Rewrite history: the first entry's interface.
    let text = std::fs::read_to_string(dir.join("trail.jsonl")).unwrap();
    std::fs::write(
        dir.join("trail.jsonl"),
        text.replacen("\"interface\":\"", "\"interface\":\"x", 1),
    )
    .unwrap();
    let (ok, out) = verify(&dir);
    assert!(!ok && out.starts_with("FAIL") && out.contains("line 1"), "{out}");
    let o = rig.furui_output(&["run", "--config", cfg.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("audit trail") && err.contains("line 1") && err.contains("--new-segment"),
        "{err}"
    );
    assert!(!rig.xdp_attached(), "nothing attached when the trail is bad");
    let mut child = Command::new("ip")
        .args(["netns", "exec", &rig.ns_cap, FURUI, "run", "--new-segment", "--config"])
        .arg(&cfg)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    assert!(child.wait().unwrap().success());
    let (ok, out) = verify(&dir);
    assert!(ok, "{out}");
    assert_eq!(entries(&dir)[0]["kind"], "new_segment");
    assert!(dir.join("trail.jsonl.failed-1").exists());
}

/// With erasure of one frame skipped (the test-only fault switch), the
/// signed checkpoints record it and `furui audit check erasure` fails,
/// naming the numbers; `capture` still passes.
#[test]
fn the_erasure_check_fails_when_a_frame_was_not_erased() {
    let (rig, cfg, dir) = audit_rig();
    let d = Daemon::start_with_env(&rig, &cfg, &[("FURUI_FAULT_SKIP_ERASE", "1")]);
    rig.send(&["--count", "10", "--flow", "203.0.113.7,192.0.2.1"]);
    d.settled_metrics();
    assert_eq!(d.stop(), 0);
    let check = |what: &str| audit_cmd(&["check", what], &dir);
    let (ok, out) = check("erasure");
    assert!(
        !ok && out.starts_with("FAIL") && out.contains("10 frames received but 9 erased"),
        "{out}"
    );
    let (ok, out) = check("capture");
    assert!(ok, "{out}");
}
