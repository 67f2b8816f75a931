//! The appliance as it is installed: the systemd unit's hardening, and the
//! daemon running with exactly the user, capabilities and limits the unit
//! gives it. This machine has no systemd as PID 1, so the unit itself cannot
//! be started here; the second test applies the unit's own settings (read
//! from the unit file) with prlimit and setpriv instead.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(p)
}

fn unit() -> String {
    std::fs::read_to_string(repo("deploy/systemd/furui.service")).unwrap()
}

/// Values of `Key=` lines in the unit (in order).
fn unit_values(key: &str) -> Vec<String> {
    unit()
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_unit_has_the_required_hardening_and_an_ok_exposure_level() {
    for (key, want) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("ProtectClock", "yes"),
        ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6 AF_NETLINK AF_XDP"),
        ("RestrictNamespaces", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("LimitCORE", "0"),
        ("UMask", "0077"),
        ("Restart", "on-failure"),
        ("User", "furui"),
    ] {
        assert_eq!(unit_values(key), vec![want.to_string()], "{key}");
    }
    assert!(unit_values("ExecStartPre")[0].contains("furui check-config"));
    assert!(!unit_values("LimitMEMLOCK").is_empty());
    assert!(!unit_values("ReadWritePaths").is_empty());

    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(repo("deploy/systemd/furui.service"))
        .output()
        .expect("systemd-analyze");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no exposure level:\n{text}"));
    let level: f64 = line
        .split(':')
        .nth(1)
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("unparsable: {line}"));
    eprintln!("{line}");
    assert!(level <= 2.0, "{line}");
    assert!(line.contains("OK"), "{line}");
}

/// `CAP_BPF CAP_NET_ADMIN` → `+bpf,+net_admin` (setpriv's spelling).
fn setpriv_caps(unit_caps: &str) -> String {
    unit_caps
        .split_whitespace()
        .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_lowercase()))
        .collect::<Vec<_>>()
        .join(",")
}

fn size_bytes(s: &str) -> u64 {
    let (num, mult) = match s.as_bytes().last() {
        Some(b'K') => (&s[..s.len() - 1], 1 << 10),
        Some(b'M') => (&s[..s.len() - 1], 1 << 20),
        Some(b'G') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().unwrap() * mult
}

fn proc_status(pid: u32, key: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")).map(|v| v.trim().to_string()))
        .unwrap()
}

/// An unused uid, standing in for the `furui` system user (no passwd entry
/// is needed for setpriv, and the machine's user database is left alone).
const UID: u32 = 64_123;

#[test]
fn capture_works_as_an_unprivileged_user_with_only_the_units_capabilities_and_limits() {
    let caps = setpriv_caps(&unit_values("AmbientCapabilities")[0]);
    assert_eq!(caps, "+bpf,+perfmon,+net_admin,+net_raw,+ipc_lock");
    // The unit's LimitMEMLOCK, or the machine's hard limit if that is lower
    // and this (containerised) root lacks CAP_SYS_RESOURCE to raise it. A
    // lower limit is the harder test: the UMEM is locked under
    // CAP_IPC_LOCK either way.
    let unit_memlock = size_bytes(&unit_values("LimitMEMLOCK")[0]);
    let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_MEMLOCK).unwrap();
    let memlock = unit_memlock.min(hard);
    if memlock < unit_memlock {
        eprintln!("applying LimitMEMLOCK={memlock} (this machine's hard limit) instead of the unit's {unit_memlock}");
    }
    let rig = Rig::new();
    let cfg = rig.config(
        "",
        "[domestic]\nprefixes = [\"192.0.2.0/24\"]\n\n[measures.inbound]\nenabled = true\nnot_before = \"2020-01-01T00:00:00Z\"\nnot_after = \"2099-01-01T00:00:00Z\"\n\n[[indicators]]\nname = \"c2\"\nprefixes = [\"203.0.113.0/24\"]\n",
    );
    // The unit's StateDirectory= is owned by the service user; here, the rig.
    Command::new("chown")
        .args(["-R", &format!("{UID}:{UID}")])
        .arg(rig.dir.path())
        .status()
        .unwrap();
    let memlock_arg = format!("--memlock={memlock}:{memlock}");
    let uid = UID.to_string();
    let bounding = format!("--bounding-set=-all,{caps}");
    let inh = format!("--inh-caps=-all,{caps}");
    let amb = format!("--ambient-caps={caps}");
    let log_format = unit_values("Environment")
        .iter()
        .find_map(|e| e.strip_prefix("FURUI_LOG_FORMAT=").map(str::to_string))
        .expect("the unit sets FURUI_LOG_FORMAT");
    let d = Daemon::start_wrapped(
        &rig,
        &cfg,
        &[("FURUI_LOG_FORMAT", &log_format)],
        &[
            "prlimit",
            &memlock_arg,
            "--core=0",
            "--",
            "setpriv",
            "--reuid",
            &uid,
            "--regid",
            &uid,
            "--clear-groups",
            &inh,
            &amb,
            &bounding,
            "--no-new-privs",
            "--",
        ],
    );
    let pid = d.pid();
    // Who is running, with what, once started: the unit's user, no
    // capability left (the daemon dropped them after attaching), not
    // dumpable (its /proc files belong to root, not to its own uid).
    assert_eq!(proc_status(pid, "Uid").split_whitespace().next(), Some(uid.as_str()));
    assert_eq!(proc_status(pid, "CapEff"), "0000000000000000");
    assert_eq!(proc_status(pid, "CapPrm"), "0000000000000000");
    assert_eq!(proc_status(pid, "CapAmb"), "0000000000000000");
    assert_eq!(proc_status(pid, "NoNewPrivs"), "1");
    assert_eq!(
        std::fs::metadata(format!("/proc/{pid}/environ")).unwrap().uid(),
        0,
        "dumpable"
    );
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let memlock_line = limits.lines().find(|l| l.starts_with("Max locked memory")).unwrap();
    assert!(memlock_line.contains(&memlock.to_string()), "{memlock_line}");
    // Structured logs, as journald gets them: every line one JSON object.
    let log = d.log_text();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["message"]
            .as_str()
            .is_some_and(|m| m.contains("all capabilities dropped"))
            && l["effective"] == "0x0"),
        "{log}"
    );

    rig.send(&["--count", "50", "--flow", "203.0.113.7,192.0.2.1"]);
    let m = d.settled_metrics();
    assert_eq!(m.sum("furui_frames_received_total"), 50);
    assert_eq!(m.sum("furui_frames_erased_total"), 50);
    // A reload without capabilities (the class map and tries are updated
    // through the descriptors the daemon holds).
    let sock = rig.path("control.sock");
    let out = rig.furui_output(&["reload", "--socket", sock.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(d.stop(), 0);
    assert!(!rig.xdp_attached());
    let recs = rig.path("records.jsonl");
    let meta = std::fs::metadata(&recs).unwrap();
    assert_eq!(meta.uid(), UID);
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert_eq!(std::fs::read_to_string(&recs).unwrap().lines().count(), 1);
}
