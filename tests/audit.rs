//! The audit trail on a running daemon: start, authorization windows,
//! signed counter checkpoints and stop are recorded and verify with the
//! public key alone; the trail survives `kill -9` at random moments; a
//! tampered trail stops the next start unless a new segment is asked for.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

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
    assert_eq!(start["ruleset_sha256"], "", "no rules configured");
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
/// trail verifies, the next start (which verifies it too) succeeds, and
/// every record the daemon acknowledged (counted as written) is in the
/// retention store and opens with its epoch key.
#[test]
fn the_trail_and_the_store_survive_kill_9_at_random_moments() {
    let rig = Rig::new();
    let dir = rig.path("audit");
    let retention = furui::config::retention::Retention {
        dir: rig.path("store"),
        key_dir: rig.path("rkeys"),
        epoch: Duration::from_secs(3600),
        inbound: Duration::from_secs(86_400),
        outbound: Duration::from_secs(86_400),
        transit: Duration::from_secs(86_400),
    };
    let cfg = rig.config(
        "",
        &format!(
            "{BODY}\n[flows]\nidle_timeout_secs = 1\n\n[audit]\ndir = \"{}\"\ncheckpoint_secs = 1\n\n[retention]\ndir = \"{}\"\nkey_dir = \"{}\"\n",
            dir.display(),
            retention.dir.display(),
            retention.key_dir.display()
        ),
    );
    let mut seed = std::process::id() as u64;
    let mut acknowledged = Vec::new();
    for round in 0..20 {
        let mut d = Daemon::start(&rig, &cfg);
        rig.send(&[
            "--count",
            "3",
            "--flow",
            &format!("203.0.113.{},192.0.2.1", 100 + round),
        ]);
        if round % 2 == 0 {
            // Half the rounds: this round's flow is acknowledged first, so
            // the check below always has records to find.
            d.wait_for_metric("furui_records_written_total", 1, "the round's record");
        }
        let mut gen = rig.send_background(&["--duration", "2", "--pps", "5000", "--flow", "203.0.113.9,192.0.2.1"]);
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(100 + (seed >> 33) % 1500));
        d.child.kill().unwrap();
        let _ = d.child.wait();
        let _ = gen.kill();
        let _ = gen.wait();
        let (ok, out) = verify(&dir);
        assert!(ok, "round {round}: {out}");
        // Every record acknowledged so far (the even rounds' flows, seen
        // in furui_records_written_total: with [retention] a record counts
        // as written once its batch is committed) is in the store.
        if round % 2 == 0 {
            acknowledged.push(format!("203.0.113.{}", 100 + round));
        }
        let mut store = furui::store::Store::open(&retention).unwrap();
        let mut stored = Vec::new();
        for (epoch, _, _) in store.epochs().unwrap() {
            for r in store.read_epoch(&epoch).unwrap() {
                stored.push(serde_json::from_str::<serde_json::Value>(&r).unwrap());
            }
        }
        drop(store);
        for a in &acknowledged {
            assert!(
                stored.iter().any(|r| r["initiator"] == a.as_str()),
                "round {round}: the acknowledged record of {a} is missing from the store"
            );
        }
        let plaintext = std::fs::read_to_string(rig.path("records.jsonl")).unwrap_or_default();
        assert!(
            plaintext.is_empty(),
            "round {round}: a plaintext record beside the store"
        );
    }
    assert_eq!(acknowledged.len(), 10);
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

/// A normal run with a recipient and the retention store: all four
/// oversight checks say PASS. Then four copies of the trail, each doctored
/// (and re-chained and re-signed with the appliance key, as an operator
/// holding the key could) to show one violation: a domestic packet
/// redirected, a frame not erased, an export outside the grant, a late
/// purge. Each still verifies, and the matching check says FAIL.
#[test]
fn the_four_checks_pass_after_a_run_and_fail_on_doctored_trails() {
    let rig = Rig::new();
    let dir = rig.path("audit");
    let cfg = rig.config(
        "",
        &format!(
            "{BODY}\n[flows]\nidle_timeout_secs = 1\n\n[audit]\ndir = \"{}\"\ncheckpoint_secs = 1\n\n[retention]\ndir = \"{}\"\nkey_dir = \"{}\"\nepoch_secs = 1\ninbound_secs = 1\n\n[deid]\nkey_dir = \"{}\"\n\n[[purposes]]\nid = \"damage-prevention\"\ndamage_prevention = true\n\n[[recipients]]\nname = \"cert-team\"\nrole = \"analyst\"\nidentity = \"sha256:{}\"\n[[recipients.grants]]\nmeasures = [\"inbound\"]\nfields = [\"first_seen_ns\", \"protocol\", \"responder_port\", \"packets_forward\"]\npurpose = \"damage-prevention\"\n[[recipients.sinks]]\nkind = \"ipfix-udp\"\naddress = \"127.0.0.1:4799\"\n",
            dir.display(),
            rig.path("store").display(),
            rig.path("rkeys").display(),
            rig.path("pkeys").display(),
            "ab".repeat(32),
        ),
    );
    let d = Daemon::start(&rig, &cfg);
    for i in 0..3 {
        let flow = format!("203.0.113.{},192.0.2.10,udp,{},53", 30 + i, 6000 + i);
        rig.send(&["--count", "4", "--flow", &flow]);
    }
    d.wait_for_metric(
        "furui_audit_entries_total{kind=\"export\"}",
        1,
        "an audited export batch",
    );
    d.wait_for_metric("furui_store_purged_records_total", 3, "the purge of all three records");
    assert_eq!(d.stop(), 0);
    for what in ["capture", "erasure", "exports", "retention"] {
        let (ok, out) = audit_cmd(&["check", what], &dir);
        assert!(ok && out.starts_with("PASS"), "{what}: {out}");
    }
    let (_, out) = audit_cmd(&["check", "exports"], &dir);
    assert!(out.contains("cert-team: 3"), "{out}");
    let exports: Vec<_> = entries(&dir).into_iter().filter(|e| e["kind"] == "export").collect();
    assert_eq!(exports[0]["data"]["grants"][0]["fields"][2], "responder_port");

    let doctored = |name: &str, kind: &str, data: serde_json::Value, sign: bool| -> std::path::PathBuf {
        let copy = rig.path(name);
        std::fs::create_dir_all(&copy).unwrap();
        for f in ["trail.jsonl", "appliance.key", "appliance.pub"] {
            std::fs::copy(dir.join(f), copy.join(f)).unwrap();
        }
        let mut t = furui::audit::Trail::open(&copy, false).unwrap();
        t.append(kind, data, sign).unwrap();
        let (ok, out) = verify(&copy);
        assert!(ok, "a doctored trail that verifies: {out}");
        copy
    };
    let c = doctored(
        "d-capture",
        "checkpoint",
        serde_json::json!({ "furui_xdp_packets_total{action=\"redirect\",class=\"domestic\"}": 1 }),
        true,
    );
    let (ok, out) = audit_cmd(&["check", "capture"], &c);
    assert!(!ok && out.contains("1 domestic packets redirected"), "{out}");
    let c = doctored(
        "d-erasure",
        "checkpoint",
        serde_json::json!({ "furui_frames_received_total{queue=\"0\"}": 12, "furui_frames_erased_total{queue=\"0\"}": 11 }),
        true,
    );
    let (ok, out) = audit_cmd(&["check", "erasure"], &c);
    assert!(!ok && out.contains("12 frames received but 11 erased"), "{out}");
    let mut outside = exports[0]["data"].clone();
    outside["grants"][0]["fields"] = serde_json::json!(["first_seen_ns", "initiator"]);
    let c = doctored("d-exports", "export", outside, false);
    let (ok, out) = audit_cmd(&["check", "exports"], &c);
    assert!(!ok && out.contains("field `initiator` is not granted"), "{out}");
    let c = doctored(
        "d-retention",
        "retention_open",
        serde_json::json!({ "epoch": "inbound-2020-01-01T00:00:00Z", "measure": "inbound", "expires": "2020-01-01T00:00:02Z" }),
        false,
    );
    let mut t = furui::audit::Trail::open(&c, false).unwrap();
    t.append(
        "purge",
        serde_json::json!({ "epoch": "inbound-2020-01-01T00:00:00Z", "records": 1, "expires": "2020-01-01T00:00:02Z" }),
        false,
    )
    .unwrap();
    drop(t);
    let (ok, out) = audit_cmd(&["check", "retention"], &c);
    assert!(
        !ok && out.contains("purged") && out.contains("after it expired"),
        "{out}"
    );
}

/// Erase on unwind (fault injection, test builds only): the per-frame path
/// panics at the 10th frame, before erasing it. The guard zeroes that frame
/// and the rest of its batch, every later frame is zeroed unprocessed, and
/// the daemon stops capture by itself: exit code 1, XDP detached, the log
/// says why (without packet bytes), the trail records it, and the erasure
/// check passes on the trail: received = erased.
#[test]
fn a_panic_in_the_per_frame_path_erases_the_batch_and_stops_capture() {
    let (rig, cfg, dir) = audit_rig();
    let d = Daemon::start_with_env(&rig, &cfg, &[("FURUI_FAULT_PANIC_AT", "10")]);
    let marker = format!("PANIC-MARKER-{:08x}", std::process::id());
    rig.send(&["--count", "40", "--marker", &marker, "--flow", "203.0.113.7,192.0.2.1"]);
    let log_path = d.log.clone();
    assert_eq!(d.wait_exit(Duration::from_secs(15)), 1);
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("the per-frame path panicked") && log.contains("capture stops"),
        "{log}"
    );
    assert!(!log.contains(&marker), "packet bytes in the log");
    assert!(!rig.xdp_attached(), "XDP left attached after the panic");
    let (ok, out) = verify(&dir);
    assert!(ok && out.starts_with("PASS"), "{out}");
    let (ok, out) = audit_cmd(&["check", "erasure"], &dir);
    assert!(ok && out.starts_with("PASS"), "{out}");
    let e = entries(&dir);
    let stopped = e
        .iter()
        .find(|x| x["kind"] == "capture_stopped")
        .expect("a capture_stopped entry");
    assert_eq!(stopped["data"]["reason"], "the per-frame path panicked");
    assert!(stopped["data"]["frames_zeroed_by_guard"].as_u64().unwrap() >= 1);
    let stop = &e.last().unwrap()["data"];
    let received = stop["furui_frames_received_total{queue=\"0\"}"].as_u64().unwrap();
    assert!(received >= 10, "{stop}");
    assert_eq!(
        stop["furui_frames_erased_total{queue=\"0\"}"].as_u64().unwrap(),
        received,
        "{stop}"
    );
    // Every frame XDP handed to the socket was received and so erased,
    // the panicked batch included (without the guard it went uncounted).
    let redirected = stop["furui_xdp_packets_total{action=\"redirect\",class=\"inbound\"}"]
        .as_u64()
        .unwrap();
    assert_eq!(received, redirected, "{stop}");
}

/// The class map cannot be written (fault injection: every write after the
/// first fails). furui retries on every tick, audits the failure once, and
/// after 10 s stops capture rather than run windows it cannot enforce:
/// exit code 1, XDP detached, the trail says why.
#[test]
fn a_class_map_that_cannot_be_written_stops_capture() {
    let (rig, cfg, dir) = audit_rig();
    let d = Daemon::start_with_env(&rig, &cfg, &[("FURUI_FAULT_CLASS_MAP_FAIL_AFTER", "1")]);
    d.wait_for_metric("furui_class_map_write_failures_total", 5, "retried failed writes");
    let log_path = d.log.clone();
    assert_eq!(d.wait_exit(Duration::from_secs(30)), 1);
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("writing the class authorization map failed") && log.contains("could not be written for 10 s"),
        "{log}"
    );
    assert!(!rig.xdp_attached(), "XDP left attached");
    let (ok, out) = verify(&dir);
    assert!(ok && out.starts_with("PASS"), "{out}");
    let e = entries(&dir);
    let kinds: Vec<&str> = e.iter().map(|x| x["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "window_write_failed").count(),
        1,
        "{kinds:?}"
    );
    let stopped = e
        .iter()
        .find(|x| x["kind"] == "capture_stopped")
        .expect("a capture_stopped entry");
    assert_eq!(
        stopped["data"]["reason"],
        "the class authorization map could not be written"
    );
    assert!(stopped["data"]["failing_secs"].as_u64().unwrap() >= 10);
}

/// A config whose inbound window (approval `approval`) ends at `not_after`.
fn window_config(rig: &Rig, dir: &std::path::Path, approval: &str, not_after: &str) -> std::path::PathBuf {
    let body = BODY.replace(
        "not_after = \"2099-01-01T00:00:00Z\"",
        &format!("approval = \"{approval}\"\nnot_after = \"{not_after}\""),
    );
    rig.config(
        "",
        &format!("{body}\n[audit]\ndir = \"{}\"\ncheckpoint_secs = 60\n", dir.display()),
    )
}

fn furui_reload(rig: &Rig) -> String {
    let (code, out) = rig.reload(&[]);
    assert_eq!(code, Some(0), "{out}");
    out
}

#[test]
fn an_ended_window_stays_closed_when_the_clock_is_set_back() {
    use time::format_description::well_known::Rfc3339;
    let rig = Rig::new();
    let dir = rig.path("audit");
    let clock = rig.path("clock-offset");
    let ends = (time::OffsetDateTime::now_utc() + time::Duration::seconds(8))
        .replace_nanosecond(0)
        .unwrap();
    let cfg = window_config(&rig, &dir, "A-1", &ends.format(&Rfc3339).unwrap());
    let d = Daemon::start_with_env(&rig, &cfg, &[("FURUI_FAULT_CLOCK_FILE", clock.to_str().unwrap())]);
    assert_eq!(d.metrics().get("furui_measure_authorized{measure=\"inbound\"}"), 1);
    let closed = Instant::now() + Duration::from_secs(20);
    while d.metrics().get("furui_measure_authorized{measure=\"inbound\"}") != 0 {
        assert!(Instant::now() < closed, "the window did not close:\n{}", d.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    // Set the clock back an hour: by the clock the window is open again.
    std::fs::write(&clock, "-3600").unwrap();
    d.wait_for_metric("furui_clock_steps_total", 1, "the step is seen");
    d.wait_for_metric(
        "furui_measure_held{measure=\"inbound\",reason=\"window_ended\"}",
        1,
        "the ended window is held",
    );
    let m = d.metrics();
    assert_eq!(m.get("furui_measure_authorized{measure=\"inbound\"}"), 0);
    assert!(m.value("furui_clock_last_step_seconds") < -3500.0);
    // Inbound traffic stays in the kernel.
    let received = m.get("furui_frames_received_total{queue=\"0\"}");
    let dropped = m.get("furui_xdp_packets_total{action=\"drop\",class=\"inbound\"}");
    rig.send(&["--count", "20", "--flow", "203.0.113.7,192.0.2.1"]);
    let m = d.settled_metrics();
    assert_eq!(m.get("furui_frames_received_total{queue=\"0\"}"), received);
    assert_eq!(
        m.get("furui_xdp_packets_total{action=\"drop\",class=\"inbound\"}"),
        dropped + 20
    );
    // A reload of the same approval, even with a later end, keeps it closed.
    window_config(&rig, &dir, "A-1", "2099-01-01T00:00:00Z");
    let out = furui_reload(&rig);
    assert!(
        out.contains("inbound stays closed: its approval's window has ended"),
        "{out}"
    );
    assert_eq!(d.metrics().get("furui_measure_authorized{measure=\"inbound\"}"), 0);
    // A new approval opens it.
    window_config(&rig, &dir, "A-2", "2099-01-01T00:00:00Z");
    let out = furui_reload(&rig);
    assert!(!out.contains("stays closed"), "{out}");
    let m = d.metrics();
    assert_eq!(m.get("furui_measure_authorized{measure=\"inbound\"}"), 1);
    assert_eq!(
        m.get("furui_measure_held{measure=\"inbound\",reason=\"window_ended\"}"),
        0
    );
    assert_eq!(d.stop(), 0);
    let (ok, out) = verify(&dir);
    assert!(ok && out.starts_with("PASS"), "{out}");
    let e = entries(&dir);
    let step = e
        .iter()
        .find(|x| x["kind"] == "clock_step")
        .expect("a clock_step entry");
    assert!(step["data"]["step_secs"].as_f64().unwrap() < -3500.0, "{step}");
    let held = e
        .iter()
        .find(|x| x["kind"] == "window_held")
        .expect("a window_held entry");
    assert_eq!(held["data"]["measure"], "inbound");
    assert_eq!(held["data"]["reason"], "window_ended");
    assert_eq!(held["data"]["approval"], "A-1");
    let opened: Vec<_> = e
        .iter()
        .filter(|x| x["kind"] == "window" && x["data"]["measure"] == "inbound" && x["data"]["authorized"] == true)
        .map(|x| x["data"]["approval"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(opened, ["A-1", "A-2"], "opened once under each approval");
}

/// The ended-window latch outlives a restart: a window that ended, with
/// the daemon restarted and the clock set back an hour, stays closed
/// (held `window_ended`) and inbound traffic stays in the kernel; a record
/// of ended windows that cannot be read holds every measure until a reload
/// finds it readable again.
#[test]
fn an_ended_window_stays_closed_across_a_restart_with_the_clock_set_back() {
    use time::format_description::well_known::Rfc3339;
    let rig = Rig::new();
    let dir = rig.path("audit");
    let clock = rig.path("clock-offset");
    let env = [("FURUI_FAULT_CLOCK_FILE", clock.to_str().unwrap())];
    let ends = (time::OffsetDateTime::now_utc() + time::Duration::seconds(4))
        .replace_nanosecond(0)
        .unwrap();
    let cfg = window_config(&rig, &dir, "A-1", &ends.format(&Rfc3339).unwrap());
    let d = Daemon::start_with_env(&rig, &cfg, &env);
    let inbound = "furui_measure_authorized{measure=\"inbound\"}";
    assert_eq!(d.metrics().get(inbound), 1);
    let closed = Instant::now() + Duration::from_secs(20);
    while d.metrics().get(inbound) != 0 {
        assert!(Instant::now() < closed, "the window did not close:\n{}", d.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(d.stop(), 0);
    let record = dir.join("windows-ended");
    assert_eq!(std::fs::read_to_string(&record).unwrap(), "inbound/approval:A-1\n");

    // Restarted an hour earlier by the clock: the window would be open.
    std::fs::write(&clock, "-3600").unwrap();
    let d = Daemon::start_with_env(&rig, &cfg, &env);
    let m = d.metrics();
    assert_eq!(m.get(inbound), 0, "{}", d.log_text());
    assert_eq!(
        m.get("furui_measure_held{measure=\"inbound\",reason=\"window_ended\"}"),
        1
    );
    rig.send(&["--count", "20", "--flow", "203.0.113.7,192.0.2.1"]);
    let m = d.settled_metrics();
    assert_eq!(m.get("furui_frames_received_total{queue=\"0\"}"), 0);
    assert_eq!(m.get("furui_xdp_packets_total{action=\"drop\",class=\"inbound\"}"), 20);
    assert_eq!(d.stop(), 0);

    // A torn record: every measure held until it reads again.
    std::fs::write(&record, "inbound/approval:A-1\ninbou").unwrap();
    let d = Daemon::start_with_env(&rig, &cfg, &env);
    assert_eq!(
        d.metrics()
            .get("furui_measure_held{measure=\"inbound\",reason=\"state_unknown\"}"),
        1
    );
    assert!(d.log_text().contains("the record of ended windows cannot be read"));
    let (code, out) = rig.reload(&[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("inbound stays closed: the record of ended windows cannot be read"),
        "{out}"
    );
    std::fs::write(&record, "inbound/approval:A-1\n").unwrap();
    let out = furui_reload(&rig);
    assert!(
        out.contains("inbound stays closed: its approval's window has ended"),
        "{out}"
    );
    let m = d.metrics();
    assert_eq!(m.get(inbound), 0);
    assert_eq!(
        m.get("furui_measure_held{measure=\"inbound\",reason=\"state_unknown\"}"),
        0
    );
    assert_eq!(d.stop(), 0);
    let (ok, out) = verify(&dir);
    assert!(ok && out.starts_with("PASS"), "{out}");
}
