//! Bad input and failed starts: one clear sentence each, exit codes that
//! say what kind of failure it was, and nothing left attached. Needs root.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const BODY: &str = "[domestic]\nprefixes = [\"192.0.2.0/24\"]\n[measures.transit]\nenabled = true\nnot_before = \"2026-01-01T00:00:00Z\"\nnot_after = \"2099-01-01T00:00:00Z\"\n";

#[test]
fn a_config_with_several_mistakes_lists_them_all_with_lines() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(
        &p,
        "[capture]\ninterface = \"eth0\"\nqueues = [0, 0]\nxdp_mode = \"turbo\"\n\n[domestic]\nprefixes = [\"10.0.0.0/8\", \"10.0.0.0/99\"]\n\n[measures.transit]\nenabled = true\nnot_before = \"2026-13-01T00:00:00Z\"\nnot_after = \"2027-01-01T00:00:00Z\"\n\n[records]\npath = \"r.jsonl\"\ncolour = 1\n",
    )
    .unwrap();
    let o = Command::new(FURUI).arg("check-config").arg(&p).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    let f = p.display().to_string();
    for (line, what) in [(4, "turbo"), (7, "10.0.0.0/99"), (11, "2026-13-01"), (16, "colour")] {
        assert!(
            e.contains(&format!("{f}:{line}:")) && e.contains(what),
            "missing error at line {line} ({what}):\n{e}"
        );
    }
    assert!(e.starts_with("4 configuration errors"), "{e}");
    // `run` refuses the same file before touching the system, with exit 2.
    let o = Command::new(FURUI).args(["run", "--config"]).arg(&p).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn every_shipped_config_is_valid() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../config");
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            let o = Command::new(FURUI).arg("check-config").arg(&p).output().unwrap();
            assert!(o.status.success(), "{}: {}", p.display(), stderr(&o));
            n += 1;
        }
    }
    assert!(n >= 1);
    let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/rules");
    let o = Command::new(FURUI).args(["check-rules", rules]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("4 rules"));
    // One example of each imported format, all honoured.
    let feeds = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/feeds");
    let o = Command::new(FURUI).args(["check-rules", feeds]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("(8 rules; 9 imported items, 0 refused;"), "{out}");
    for format in [
        "misp loaded: 2",
        "stix loaded: 1",
        "suricata loaded: 4",
        "zeek loaded: 2",
    ] {
        assert!(out.contains(format), "{format}: {out}");
    }
}

#[test]
fn a_missing_interface_is_one_clear_sentence() {
    let rig = Rig::new();
    let cfg = rig.config("", BODY);
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(&rig.cap_if, "fu-nosuch0");
    std::fs::write(&cfg, text).unwrap();
    let o = rig.furui_output(&["run", "--config", cfg.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("interface `fu-nosuch0` does not exist"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn native_xdp_unsupported_suggests_generic_and_leaves_nothing() {
    let rig = Rig::new();
    // Loopback has no native XDP support (and this kernel has no dummy
    // module); the namespace's own `lo` is private to the test.
    let dummy = "lo".to_string();
    let cfg = rig.config("xdp_mode = \"native\"", BODY);
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(&format!("\"{}\"", rig.cap_if), &format!("\"{dummy}\""));
    std::fs::write(&cfg, text).unwrap();
    let o = rig.furui_output(&["run", "--config", cfg.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("set `xdp_mode = \"generic\"`"), "{}", stderr(&o));
    let out = Command::new("ip")
        .args(["-n", &rig.ns_cap, "-d", "link", "show", &dummy])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("prog/xdp"));
}

#[test]
fn a_memlock_limit_too_low_says_what_to_do_and_leaves_nothing_attached() {
    let rig = Rig::new();
    let cfg = rig.config("", BODY);
    // Without CAP_IPC_LOCK and with a 1 MiB memlock limit, an 8 MiB UMEM
    // cannot be registered.
    let o = Command::new("ip")
        .args([
            "netns",
            "exec",
            &rig.ns_cap,
            "prlimit",
            "--memlock=1048576:1048576",
            "setpriv",
            "--bounding-set",
            "-ipc_lock",
            "--inh-caps",
            "-ipc_lock",
            FURUI,
            "run",
            "--config",
        ])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("memlock limit is 1048576 bytes") && e.contains("CAP_IPC_LOCK"),
        "{e}"
    );
    assert!(!rig.xdp_attached(), "a failed start left XDP attached");
}

#[test]
fn a_missing_queue_fails_after_attach_and_detaches() {
    let rig = Rig::new();
    let cfg = rig.config("queues = [0, 7]", BODY);
    let o = rig.furui_output(&["run", "--config", cfg.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("queue 7"), "{}", stderr(&o));
    assert!(!rig.xdp_attached(), "a failed start left XDP attached");
}

#[test]
fn a_crash_leaves_nothing_attached_and_a_stale_program_is_replaced() {
    let rig = Rig::new();
    let cfg = rig.config("xdp_mode = \"generic\"", BODY);
    let mut d = Daemon::start(&rig, &cfg);
    assert!(rig.xdp_attached());
    d.child.kill().unwrap(); // SIGKILL: no cleanup code runs
    d.child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(!rig.xdp_attached(), "the kernel released the link with the process");

    // What an older, netlink-style attach leaves after a crash: a furui
    // program attached with no owner. The daemon replaces it and says so.
    let ns = rig.ns_cap.clone();
    let iface = rig.cap_if.clone();
    in_netns(&ns, move || {
        let c = furui::xdp::Classifier::load(false).unwrap();
        c.attach_legacy_for_tests(furui::sys::ifindex(&iface).unwrap()).unwrap();
    });
    assert!(rig.xdp_attached());
    let d = Daemon::start(&rig, &cfg);
    assert!(
        d.log_text().contains("replaced a stale furui XDP program"),
        "{}",
        d.log_text()
    );
    assert_eq!(d.stop(), 0);
    assert!(!rig.xdp_attached());
}

#[test]
fn sigterm_during_traffic_exits_zero_erases_everything_and_detaches() {
    let rig = Rig::new();
    let cfg = rig.config(
        "",
        &format!("{BODY}\n[[indicators]]\nname = \"all\"\nprefixes = [\"0.0.0.0/0\"]\n"),
    );
    let d = Daemon::start(&rig, &cfg);
    let mut gen = rig.send_background(&["--duration", "4", "--pps", "20000", "--flow", "203.0.113.1,8.8.8.8"]);
    std::thread::sleep(Duration::from_millis(1500));
    let log = d.log.clone();
    assert_eq!(d.stop(), 0);
    let _ = gen.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("XDP program detached"), "{text}");
    assert!(!rig.xdp_attached());
    // The daemon's own account at exit: every received frame was erased,
    // the batch in flight included.
    let field = |name: &str| -> u64 {
        let line = text
            .lines()
            .find(|l| l.contains("stopped; XDP program detached"))
            .unwrap();
        let v = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .unwrap();
        v.parse().unwrap()
    };
    assert!(field("received") > 1000, "{text}");
    assert_eq!(field("received"), field("erased"), "{text}");
    let recs = std::fs::read_to_string(rig.path("records.jsonl")).unwrap();
    assert_eq!(recs.lines().count(), 1, "the in-flight flow was flushed as a record");
}

#[test]
fn a_bad_reload_keeps_the_running_configuration_and_says_why() {
    let (rig, rules_dir, cfg) = rig_with_rules("good");
    let d = Daemon::start(&rig, &cfg);
    let hup = || {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(d.pid() as i32),
            nix::sys::signal::Signal::SIGHUP,
        )
        .unwrap()
    };
    let wait_for = |series: &str, n: u64| {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while d.metrics().get(series) < n {
            assert!(
                std::time::Instant::now() < deadline,
                "{series} never reached {n}:\n{}",
                d.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // A rules file with a mistake on line 4.
    std::fs::write(
        rules_dir.join("r.toml"),
        "version = \"bad\"\n[[rule]]\nid = \"x\"\nmeasures = [\"sideways\"]\n",
    )
    .unwrap();
    hup();
    wait_for("furui_config_reloads_total{result=\"invalid\"}", 1);
    let log = d.log_text();
    assert!(
        log.contains("r.toml:4:") && log.contains("sideways") && log.contains("reload rejected"),
        "{log}"
    );
    let m = d.metrics();
    assert_eq!(m.get("furui_ruleset_version{version=\"good\"}"), 1);
    assert_eq!(m.get("furui_ruleset_version{version=\"bad\"}"), 0);
    // A change only a restart can apply.
    std::fs::write(
        rules_dir.join("r.toml"),
        "version = \"good\"\n[[rule]]\nid = \"x\"\nmeasures = [\"transit\"]\nprotocols = [\"udp\"]\n",
    )
    .unwrap();
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("frame_count = 2048", "frame_count = 4096");
    std::fs::write(&cfg, text).unwrap();
    hup();
    wait_for("furui_config_reloads_total{result=\"rejected\"}", 1);
    assert!(
        d.log_text().contains("section=\"[capture]\"") || d.log_text().contains("[capture]"),
        "{}",
        d.log_text()
    );
    assert_eq!(d.metrics().get("furui_config_reloads_total{result=\"ok\"}"), 0);
    assert_eq!(d.stop(), 0);
}

#[test]
fn furui_reload_reports_success_and_every_error() {
    let (rig, rules_dir, cfg) = rig_with_rules("one");
    let d = Daemon::start(&rig, &cfg);
    let sock = rig.path("control.sock");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&sock).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the control socket is root/daemon only");
    std::fs::write(
        rules_dir.join("r.toml"),
        "version = \"two\"\n[[rule]]\nid = \"x\"\nmeasures = [\"transit\"]\nprotocols = [\"udp\"]\n",
    )
    .unwrap();
    let (code, out) = rig.reload(&[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("ok: reloaded: ruleset version two, 1 rules"));
    std::fs::write(
        rules_dir.join("r.toml"),
        "version = \"three\"\n[[rule]]\nid = \"x y\"\nmeasures = [\"up\"]\n",
    )
    .unwrap();
    let (code, out) = rig.reload(&[]);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("r.toml:3:") && out.contains("r.toml:4:"),
        "every error, with its line:\n{out}"
    );
    assert_eq!(d.metrics().get("furui_ruleset_version{version=\"two\"}"), 1);
    assert_eq!(d.stop(), 0);
}

/// A rig whose config selects with a rules dir holding one trivial rule of
/// `version`; returns the rig, the rules dir and the config path.
fn rig_with_rules(version: &str) -> (Rig, std::path::PathBuf, std::path::PathBuf) {
    let rig = Rig::new();
    let rules_dir = rig.path("rules");
    std::fs::create_dir(&rules_dir).unwrap();
    std::fs::write(rules_dir.join("r.toml"), rule_file(version, "x", "transit")).unwrap();
    let cfg = rig.config("", &format!("{BODY}\n[selection]\nrules_dir = \"rules\"\n"));
    (rig, rules_dir, cfg)
}

fn rule_file(version: &str, id: &str, measure: &str) -> String {
    format!("version = \"{version}\"\n[[rule]]\nid = \"{id}\"\nmeasures = [\"{measure}\"]\nprotocols = [\"udp\"]\n")
}

/// A reload that would stop covering much of the domestic set (here a
/// prefix file cut down to one line of ten) is refused with the figures
/// and the way out; the kernel keeps classifying with the set in force.
/// Confirmed with `--confirm-domestic-removal`, it applies, and the audit
/// trail says who asked and that they confirmed.
#[test]
fn a_reload_that_drops_most_domestic_prefixes_needs_confirmation() {
    let rig = Rig::new();
    let audit = rig.path("audit");
    let mut prefixes = String::from("192.0.2.0/24\n198.51.100.0/24\n");
    for i in 0..8 {
        prefixes.push_str(&format!("10.{i}.0.0/16\n"));
    }
    std::fs::write(rig.path("dom.txt"), &prefixes).unwrap();
    let cfg = rig.config(
        "",
        &format!(
            "[domestic]\nfiles = [\"dom.txt\"]\n[measures.transit]\nenabled = true\nnot_before = \"2026-01-01T00:00:00Z\"\nnot_after = \"2099-01-01T00:00:00Z\"\n[audit]\ndir = \"{}\"\ncheckpoint_secs = 3600\n",
            audit.display()
        ),
    );
    let d = Daemon::start(&rig, &cfg);
    let reload = |confirm: bool| rig.reload(if confirm { &["--confirm-domestic-removal"] } else { &[] });
    let wait_class = |class: &str, n: u64| {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while d.metrics().sum_class(class) < n {
            assert!(std::time::Instant::now() < deadline, "{class} never reached {n}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // The file replaced (by rename) with one of its ten prefixes.
    std::fs::write(rig.path("dom.txt.new"), "192.0.2.0/24\n").unwrap();
    std::fs::rename(rig.path("dom.txt.new"), rig.path("dom.txt")).unwrap();
    let (code, out) = reload(false);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("stops covering 9 of the 10 domestic prefixes") && out.contains("--confirm-domestic-removal"),
        "{out}"
    );
    assert_eq!(d.metrics().get("furui_config_reloads_total{result=\"rejected\"}"), 1);
    // Still domestic in the kernel: both ends in the set in force.
    rig.send(&["--count", "40", "--flow", "198.51.100.7,192.0.2.1"]);
    wait_class("domestic", 40);
    assert_eq!(d.metrics().sum_class("inbound"), 0);
    // Confirmed: applied; 198.51.100.7 is now foreign.
    let (code, out) = reload(true);
    assert_eq!(code, Some(0), "{out}");
    rig.send(&["--count", "40", "--flow", "198.51.100.7,192.0.2.1"]);
    wait_class("inbound", 40);
    assert_eq!(d.metrics().sum_class("domestic"), 40);
    assert_eq!(d.stop(), 0);
    let trail = std::fs::read_to_string(audit.join("trail.jsonl")).unwrap();
    let reloads: Vec<serde_json::Value> = trail
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["kind"] == "reload")
        .collect();
    assert_eq!(reloads.len(), 2, "{trail}");
    let field = |e: &serde_json::Value, k: &str| e["data"][k].clone();
    assert_eq!(field(&reloads[0], "accepted"), false);
    assert_eq!(field(&reloads[0], "confirmed_domestic_removal"), false);
    assert_eq!(field(&reloads[0], "requested_by")["uid"], 0);
    assert_eq!(field(&reloads[1], "accepted"), true);
    assert_eq!(field(&reloads[1], "confirmed_domestic_removal"), true);
}

/// No domestic prefix while a measure is enabled: every domestic packet
/// would be transit. Refused by check-config and at start (exit 2), with
/// the section's line.
#[test]
fn an_empty_domestic_set_with_an_enabled_measure_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("empty.toml");
    std::fs::write(dir.path().join("dom.txt"), "# nothing yet\n").unwrap();
    std::fs::write(
        &p,
        "[capture]\ninterface = \"eth0\"\n\n[domestic]\nprefixes = []\nfiles = [\"dom.txt\"]\n\n[measures.inbound]\nenabled = true\nnot_before = \"2026-01-01T00:00:00Z\"\nnot_after = \"2099-01-01T00:00:00Z\"\n\n[records]\npath = \"r.jsonl\"\n",
    )
    .unwrap();
    let o = Command::new(FURUI).arg("check-config").arg(&p).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains(&format!("{}:4:", p.display())) && e.contains("holds no prefix while measure(s) inbound"),
        "{e}"
    );
    let o = Command::new(FURUI).args(["run", "--config"]).arg(&p).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("holds no prefix"), "{}", stderr(&o));
    // Disabled measures: nothing is captured, so an empty set is allowed.
    let text = std::fs::read_to_string(&p)
        .unwrap()
        .replace("enabled = true", "enabled = false");
    std::fs::write(&p, text).unwrap();
    let o = Command::new(FURUI).arg("check-config").arg(&p).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}
