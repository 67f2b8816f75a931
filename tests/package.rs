//! `make deb` builds a package that installs on this machine, configures
//! nothing to run, and removes cleanly. The test installs the real package
//! (dpkg -i), checks what it put where, then removes and purges it, also
//! on failure. The `furui` system user it creates stays, as Debian
//! packages leave system users behind.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(p)
}

fn run(cmd: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

struct PurgeOnDrop;

impl Drop for PurgeOnDrop {
    fn drop(&mut self) {
        let _ = run("dpkg", &["--purge", "furui"]);
    }
}

/// PIDs whose executable is the installed binary.
fn installed_binary_running() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/exe"))
                .is_ok_and(|p| p.to_string_lossy().starts_with("/usr/bin/furui"))
        })
        .collect()
}

#[test]
fn the_deb_installs_starts_nothing_and_removes_cleanly() {
    let (installed, _) = run("dpkg", &["-s", "furui"]);
    assert!(
        !installed,
        "furui is already installed on this machine; this test installs and purges it"
    );
    let release = repo("target/release/furui");
    let mut build = Command::new("bash");
    build.arg(repo("deploy/deb/build.sh"));
    if release.exists() {
        build.env("FURUI_BIN", &release);
    }
    let out = build.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let deb = repo(String::from_utf8_lossy(&out.stdout).trim());
    assert!(deb.exists(), "{}", deb.display());

    let _guard = PurgeOnDrop;
    let (ok, text) = run("dpkg", &["-i", deb.to_str().unwrap()]);
    assert!(ok, "dpkg -i failed:\n{text}");
    assert!(text.contains("installed, not started"), "{text}");

    for f in [
        "/usr/bin/furui",
        "/lib/systemd/system/furui.service",
        "/usr/share/furui/grafana/furui.json",
        "/usr/share/furui/prometheus/furui-alerts.yml",
        "/etc/furui/rules/example.toml",
    ] {
        assert!(Path::new(f).exists(), "{f} not installed");
    }
    let (ok, passwd) = run("getent", &["passwd", "furui"]);
    assert!(ok, "no furui user");
    assert!(passwd.trim_end().ends_with("/usr/sbin/nologin"), "{passwd}");
    let furui_gid = passwd.split(':').nth(3).unwrap().parse::<u32>().unwrap();
    let furui_uid = passwd.split(':').nth(2).unwrap().parse::<u32>().unwrap();
    let cfg = std::fs::metadata("/etc/furui/furui.toml").unwrap();
    assert_eq!(
        (cfg.uid(), cfg.gid(), cfg.permissions().mode() & 0o777),
        (0, furui_gid, 0o640)
    );
    let state = std::fs::metadata("/var/lib/furui").unwrap();
    assert_eq!((state.uid(), state.permissions().mode() & 0o777), (furui_uid, 0o700));
    // The shipped template is valid as installed (paths resolve under /etc/furui).
    let (ok, text) = run("/usr/bin/furui", &["check-config", "/etc/furui/furui.toml"]);
    assert!(ok, "{text}");
    let (ok, text) = run("/usr/bin/furui", &["check-rules", "/etc/furui/rules"]);
    assert!(ok, "{text}");
    assert!(installed_binary_running().is_empty(), "the package started furui");

    let (ok, text) = run("dpkg", &["-r", "furui"]);
    assert!(ok, "dpkg -r failed:\n{text}");
    assert!(!Path::new("/usr/bin/furui").exists());
    assert!(!Path::new("/lib/systemd/system/furui.service").exists());
    assert!(!Path::new("/usr/share/furui").exists());
    assert!(Path::new("/etc/furui/furui.toml").exists(), "dpkg -r keeps conffiles");
    let (ok, text) = run("dpkg", &["--purge", "furui"]);
    assert!(ok, "dpkg --purge failed:\n{text}");
    assert!(!Path::new("/etc/furui").exists());
    assert!(!Path::new("/var/lib/furui").exists());
    let (installed, _) = run("dpkg", &["-s", "furui"]);
    assert!(!installed);
}
