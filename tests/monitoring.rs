//! The operator's view, checked with the real tools: promtool validates and
//! unit-tests the alert rules, a real Prometheus server (Debian's) scrapes
//! the daemon in the test namespace and evaluates the shipped alerts, and
//! the dashboard and alerts use only metrics the daemon exports.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(p)
}

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .output()
        .expect("promtool (make deps installs prometheus)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn alert_rules_and_scrape_config_pass_promtool_and_the_rule_unit_tests() {
    let rules = repo("deploy/prometheus/furui-alerts.yml");
    let out = promtool(&["check", "rules", rules.to_str().unwrap()]);
    assert!(out.contains("SUCCESS: 16 rules found"), "{out}");
    promtool(&[
        "check",
        "config",
        repo("deploy/prometheus/prometheus.yml").to_str().unwrap(),
    ]);
    let out = promtool(&[
        "test",
        "rules",
        repo("deploy/prometheus/furui-alerts.test.yml").to_str().unwrap(),
    ]);
    assert!(out.contains("SUCCESS"), "{out}");
}

/// Every `furui_*` name in the alert rules and the dashboard is declared in
/// `telemetry/names.rs`, the one list of what the daemon exports
/// (histograms: with their `_bucket`/`_sum`/`_count`).
#[test]
fn dashboard_and_alerts_use_only_metrics_the_daemon_exports() {
    let names = std::fs::read_to_string(repo("daemon/src/telemetry/names.rs")).unwrap();
    let mut known = BTreeSet::new();
    for decl in names.split('"').skip(1).step_by(2) {
        for suffix in ["", "_bucket", "_sum", "_count"] {
            known.insert(format!("{decl}{suffix}"));
        }
    }
    assert!(
        known.contains("furui_frames_erased_total"),
        "names.rs not parsed: {known:?}"
    );
    for file in ["deploy/prometheus/furui-alerts.yml", "deploy/grafana/furui.json"] {
        let text = std::fs::read_to_string(repo(file)).unwrap();
        let mut used = BTreeSet::new();
        let b = text.as_bytes();
        let mut i = 0;
        while let Some(pos) = text[i..].find("furui_") {
            let start = i + pos;
            let end = start
                + b[start..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                    .count();
            used.insert(text[start..end].to_string());
            i = end;
        }
        assert!(used.len() >= 5, "{file}: too few metrics referenced: {used:?}");
        let unknown: Vec<_> = used.iter().filter(|n| !known.contains(*n)).collect();
        assert!(
            unknown.is_empty(),
            "{file} uses metrics the daemon does not export: {unknown:?}"
        );
    }
    let dash: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo("deploy/grafana/furui.json")).unwrap()).unwrap();
    let panels = dash["panels"].as_array().expect("dashboard panels");
    for p in panels {
        if p["type"] != "row" {
            assert!(
                p["targets"].as_array().is_some_and(|t| !t.is_empty()),
                "panel without a query: {}",
                p["title"]
            );
        }
    }
}

/// A Prometheus server in the rig's capture namespace, on loopback.
struct Prometheus {
    child: Child,
    ns: String,
    addr: SocketAddr,
    log: PathBuf,
}

impl Prometheus {
    fn start(rig: &Rig, rules: &Path) -> Prometheus {
        let config = rig.path("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: furui\n    static_configs:\n      - targets: [\"127.0.0.1:9464\"]\n",
                rules.display()
            ),
        )
        .unwrap();
        let log = rig.path("prometheus.log");
        let child = Command::new("ip")
            .args(["netns", "exec", &rig.ns_cap, "prometheus"])
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", rig.path("tsdb").display()))
            .arg("--web.listen-address=127.0.0.1:9090")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start prometheus (make deps installs it)");
        let p = Prometheus {
            child,
            ns: rig.ns_cap.clone(),
            addr: "127.0.0.1:9090".parse().unwrap(),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while p.get("/-/ready").is_none_or(|b| !b.contains("Ready")) {
            assert!(Instant::now() < deadline, "prometheus not ready:\n{}", p.log_text());
            std::thread::sleep(Duration::from_millis(200));
        }
        p
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET `path` on the server (inside the namespace); the body on 200.
    fn get(&self, path: &str) -> Option<String> {
        let (addr, path) = (self.addr, path.to_string());
        in_netns(&self.ns, move || {
            let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
            s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
            write!(s, "GET {path} HTTP/1.0\r\nHost: prometheus\r\n\r\n").ok()?;
            let mut out = String::new();
            s.read_to_string(&mut out).ok()?;
            let (head, body) = out.split_once("\r\n\r\n")?;
            head.split(' ').nth(1).filter(|c| *c == "200").map(|_| body.to_string())
        })
    }

    /// An instant query's result vector.
    fn query(&self, promql: &str) -> Vec<serde_json::Value> {
        let enc: String = promql
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        let body = self
            .get(&format!("/api/v1/query?query={enc}"))
            .unwrap_or_else(|| panic!("query {promql} failed:\n{}", self.log_text()));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status"], "success", "{body}");
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    fn scalar(&self, promql: &str) -> Option<f64> {
        let r = self.query(promql);
        r.first()?["value"][1].as_str()?.parse().ok()
    }

    fn wait_for(&self, what: &str, timeout: Duration, mut ok: impl FnMut(&Prometheus) -> bool) {
        let deadline = Instant::now() + timeout;
        while !ok(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The erasure rule's state and health from /api/v1/rules.
    fn erasure_rule(&self) -> (String, String) {
        let body = self.get("/api/v1/rules").expect("rules API");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        for g in v["data"]["groups"].as_array().unwrap() {
            for r in g["rules"].as_array().unwrap() {
                if r["name"] == "FuruiErasureInvariantBroken" {
                    return (
                        r["state"].as_str().unwrap().into(),
                        r["health"].as_str().unwrap().into(),
                    );
                }
            }
        }
        panic!("erasure rule not loaded: {body}");
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const BODY: &str = "[domestic]\nprefixes = [\"192.0.2.0/24\"]\n\n[measures.inbound]\nenabled = true\nnot_before = \"2020-01-01T00:00:00Z\"\nnot_after = \"2099-01-01T00:00:00Z\"\n\n[[indicators]]\nname = \"c2\"\nprefixes = [\"203.0.113.0/24\"]\n";

/// The shipped alert rules, evaluated by a real Prometheus that scrapes the
/// daemon: received == erased and the erasure alert inactive on a healthy
/// daemon; with one frame's erasure skipped (test-only fault switch), the
/// alert fires. The rules file is used as shipped except its `for:`
/// durations, shortened so the test does not wait half a minute (the
/// durations themselves are covered by `promtool test rules`).
#[test]
fn a_real_prometheus_sees_received_equal_erased_and_fires_the_alert_when_one_frame_is_not_erased() {
    let rig = Rig::new();
    let rules = std::fs::read_to_string(repo("deploy/prometheus/furui-alerts.yml")).unwrap();
    let short = rules
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("for:") {
                "        for: 2s"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let rules_path = rig.path("furui-alerts.yml");
    std::fs::write(&rules_path, short).unwrap();
    let cfg = rig.config("", BODY);
    let prom = Prometheus::start(&rig, &rules_path);

    let d = Daemon::start(&rig, &cfg);
    rig.send(&["--count", "100", "--flow", "203.0.113.7,192.0.2.1"]);
    prom.wait_for("100 frames received in Prometheus", Duration::from_secs(30), |p| {
        p.scalar("sum(furui_frames_received_total)") == Some(100.0)
    });
    // Several evaluations later, still equal and the alert inactive (and
    // healthy: a rule that fails to evaluate is inactive too).
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(prom.scalar("sum(furui_frames_received_total)"), Some(100.0));
    assert_eq!(prom.scalar("sum(furui_frames_erased_total)"), Some(100.0));
    assert_eq!(prom.scalar("up{job=\"furui\"}"), Some(1.0));
    assert!(prom
        .query("ALERTS{alertname=\"FuruiErasureInvariantBroken\"}")
        .is_empty());
    assert_eq!(prom.erasure_rule(), ("inactive".to_string(), "ok".to_string()));
    assert_eq!(d.stop(), 0);

    let d = Daemon::start_with_env(&rig, &cfg, &[("FURUI_FAULT_SKIP_ERASE", "1")]);
    rig.send(&["--count", "10", "--flow", "203.0.113.7,192.0.2.1"]);
    prom.wait_for("the erasure alert to fire", Duration::from_secs(30), |p| {
        !p.query("ALERTS{alertname=\"FuruiErasureInvariantBroken\",alertstate=\"firing\"}")
            .is_empty()
    });
    let firing = prom.query("ALERTS{alertname=\"FuruiErasureInvariantBroken\",alertstate=\"firing\"}");
    assert_eq!(firing.len(), 1, "{firing:?}");
    assert_eq!(
        prom.scalar("sum(furui_frames_received_total) - sum(furui_frames_erased_total)"),
        Some(1.0)
    );
    assert_eq!(d.stop(), 0);
}
