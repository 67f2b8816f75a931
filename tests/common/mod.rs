//! Test rig for end-to-end tests: two network namespaces joined by a veth
//! pair, all with unique names, deleted on drop (success or failure). The
//! daemon runs in the capture namespace; the generator in the other. No
//! traffic leaves these namespaces.
#![allow(dead_code)]

pub mod certs;
pub mod collectors;
pub mod export;
pub mod quic;
pub mod taxii;

use std::fs::File;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const FURUI: &str = env!("CARGO_BIN_EXE_furui");
pub const FURUI_GEN: &str = env!("CARGO_BIN_EXE_furui-gen");
/// The appliance id `Rig::config` gives the daemon.
pub const APPLIANCE: &str = "link-1";

/// A capture from ../shared/pcaps.
pub fn shared_pcap(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/pcaps")
        .join(name)
}

/// A file from tests/data.
pub fn data_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data").join(name)
}

static SEQ: AtomicU32 = AtomicU32::new(0);

fn sh(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn must(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().expect("run command");
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        args,
        String::from_utf8_lossy(&out.stderr)
    );
}

pub struct Rig {
    pub ns_cap: String,
    pub ns_gen: String,
    pub cap_if: String,
    pub gen_if: String,
    pub dir: tempfile::TempDir,
}

impl Rig {
    /// Creates the namespaces and the veth pair (capture end: GRO off, IPv6
    /// off so the kernel sends nothing of its own).
    pub fn new() -> Rig {
        Rig::with_queues(1)
    }

    /// The same with `queues` RX and TX queues on both veth ends: the
    /// generator's flows spread over the TX queues by their hash, and each
    /// arrives on the capture end's RX queue of the same number.
    pub fn with_queues(queues: u32) -> Rig {
        let id = format!(
            "{:x}{:x}",
            std::process::id() & 0xffff,
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        let rig = Rig {
            ns_cap: format!("fut-c-{id}"),
            ns_gen: format!("fut-g-{id}"),
            cap_if: format!("fuc{id}"),
            gen_if: format!("fug{id}"),
            dir: tempfile::tempdir().expect("tempdir"),
        };
        must(&["ip", "netns", "add", &rig.ns_cap]);
        must(&["ip", "netns", "add", &rig.ns_gen]);
        for ns in [&rig.ns_cap, &rig.ns_gen] {
            must(&[
                "ip",
                "netns",
                "exec",
                ns,
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ]);
            must(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        let n = queues.to_string();
        let q: &[&str] = if queues > 1 {
            &["numtxqueues", &n, "numrxqueues", &n]
        } else {
            &[]
        };
        let mut add = vec!["ip", "-n", &rig.ns_cap, "link", "add", &rig.cap_if];
        add.extend_from_slice(q);
        add.extend_from_slice(&["type", "veth", "peer", "name", &rig.gen_if]);
        add.extend_from_slice(q);
        add.extend_from_slice(&["netns", &rig.ns_gen]);
        must(&add);
        must(&["ip", "-n", &rig.ns_cap, "link", "set", &rig.cap_if, "up"]);
        must(&["ip", "-n", &rig.ns_gen, "link", "set", &rig.gen_if, "up"]);
        sh(&[
            "ip",
            "netns",
            "exec",
            &rig.ns_cap,
            "ethtool",
            "-K",
            &rig.cap_if,
            "gro",
            "off",
        ]);
        rig
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The daemon's records (JSON lines) and the file's text.
    pub fn records(&self) -> (Vec<serde_json::Value>, String) {
        let text = std::fs::read_to_string(self.path("records.jsonl")).unwrap_or_default();
        let recs = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad record ({e}): {l}")))
            .collect();
        (recs, text)
    }

    /// The initiator ports of the records, in the order they were written
    /// (the order the flows were selected and ended).
    pub fn record_ports(&self) -> Vec<u64> {
        self.records()
            .0
            .iter()
            .map(|r| r["initiator_port"].as_u64().unwrap())
            .collect()
    }

    /// Writes a config for this rig: `body` is everything after [capture].
    pub fn config(&self, capture_extra: &str, body: &str) -> PathBuf {
        self.config_as(APPLIANCE, capture_extra, body)
    }

    /// `config`, for the appliance named `appliance`.
    pub fn config_as(&self, appliance: &str, capture_extra: &str, body: &str) -> PathBuf {
        let p = self.path("furui.toml");
        let text = format!(
            "[appliance]\nid = \"{appliance}\"\n\n[capture]\ninterface = \"{}\"\nframe_count = 2048\nfill_ring_size = 1024\nrx_ring_size = 1024\n{capture_extra}\n\n[records]\npath = \"{}\"\n\n[control]\nsocket = \"{}\"\n\n{body}\n",
            self.cap_if,
            self.path("records.jsonl").display(),
            self.path("control.sock").display()
        );
        std::fs::write(&p, text).expect("write config");
        p
    }

    /// Sends frames from the generator namespace; waits for it to finish.
    pub fn send(&self, args: &[&str]) {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns_gen, FURUI_GEN, "--iface", &self.gen_if])
            .args(args)
            .output()
            .expect("run furui-gen");
        assert!(
            out.status.success(),
            "furui-gen failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `send` with the arguments written as one line, split at spaces
    /// (`"--count 10 --size 100 --flow 203.0.113.5,192.0.2.10,tcp,4444,80"`).
    pub fn send_line(&self, args: &str) {
        self.send(&args.split_whitespace().collect::<Vec<_>>());
    }

    /// Starts the generator in the background (continuous mode).
    pub fn send_background(&self, args: &[&str]) -> Child {
        Command::new("ip")
            .args(["netns", "exec", &self.ns_gen, FURUI_GEN, "--iface", &self.gen_if])
            .args(args)
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn furui-gen")
    }

    /// True if an XDP program is attached to the capture interface.
    pub fn xdp_attached(&self) -> bool {
        let out = Command::new("ip")
            .args(["-n", &self.ns_cap, "-d", "link", "show", "dev", &self.cap_if])
            .output()
            .expect("ip link");
        String::from_utf8_lossy(&out.stdout).contains("prog/xdp")
    }

    /// Runs `furui` with `args` inside the capture namespace to completion.
    /// `furui reload` through the rig daemon's control socket, with `extra`
    /// arguments: its exit code and its answer.
    pub fn reload(&self, extra: &[&str]) -> (Option<i32>, String) {
        let o = Command::new(FURUI)
            .args(["reload", "--socket"])
            .arg(self.path("control.sock"))
            .args(extra)
            .output()
            .expect("run furui reload");
        (o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned())
    }

    pub fn furui_output(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns_cap, FURUI])
            .args(args)
            .envs(env.iter().copied())
            .output()
            .expect("run furui")
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end inside it (and its peer).
        sh(&["ip", "netns", "del", &self.ns_cap]);
        sh(&["ip", "netns", "del", &self.ns_gen]);
    }
}

/// Runs `f` on a thread that has entered network namespace `ns`.
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let fd = File::open(&path).expect("open netns");
        nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
    .join()
    .expect("netns thread")
}

pub struct Daemon {
    pub child: Child,
    pub ns: String,
    pub log: PathBuf,
    pub metrics: SocketAddr,
}

impl Daemon {
    pub fn start(rig: &Rig, config: &Path) -> Daemon {
        Self::start_with_env(rig, config, &[])
    }

    pub fn start_with_env(rig: &Rig, config: &Path, env: &[(&str, &str)]) -> Daemon {
        Self::start_wrapped(rig, config, env, &[])
    }

    /// Starts the daemon through `wrapper` (e.g. prlimit/setpriv, which
    /// exec it: the PID stays the daemon's).
    pub fn start_wrapped(rig: &Rig, config: &Path, env: &[(&str, &str)], wrapper: &[&str]) -> Daemon {
        let log = rig.path("furui.log");
        let child = Command::new("ip")
            .args(["netns", "exec", &rig.ns_cap])
            .args(wrapper)
            .args([FURUI, "run", "--config"])
            .arg(config)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn furui");
        let mut d = Daemon {
            child,
            ns: rig.ns_cap.clone(),
            log,
            metrics: "127.0.0.1:9464".parse().unwrap(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(st)) = d.child.try_wait() {
                panic!("furui exited during start ({st}):\n{}", d.log_text());
            }
            if d.try_metrics().is_some() {
                return d;
            }
            assert!(Instant::now() < deadline, "furui did not come up:\n{}", d.log_text());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn try_metrics(&self) -> Option<Vec<(String, f64)>> {
        let addr = self.metrics;
        in_netns(&self.ns, move || furui::telemetry::http::scrape(addr).ok())
            .map(|t| furui::telemetry::parse_exposition(&t))
    }

    pub fn metrics(&self) -> Metrics {
        Metrics(
            self.try_metrics()
                .unwrap_or_else(|| panic!("metrics unreachable:\n{}", self.log_text())),
        )
    }

    /// Waits (at most 20 s) until `series` reaches `n`; panics with the
    /// log, naming `what`, if it does not.
    pub fn wait_for_metric(&self, series: &str, n: u64, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.metrics().get(series);
            if got >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: {series} = {got}, want {n}\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Scrapes until two scrapes 600 ms apart agree (counters settled).
    pub fn settled_metrics(&self) -> Metrics {
        let mut last = self.metrics();
        for _ in 0..30 {
            std::thread::sleep(Duration::from_millis(600));
            let m = self.metrics();
            if m.0 == last.0 {
                return m;
            }
            last = m;
        }
        last
    }

    /// Waits (bounded) for the daemon to exit by itself; its exit code.
    pub fn wait_exit(mut self, within: Duration) -> i32 {
        self.exit_code(within, "exit by itself")
    }

    /// SIGTERM, then wait (bounded) and return the exit code.
    pub fn stop(mut self) -> i32 {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        self.exit_code(Duration::from_secs(15), "stop after SIGTERM")
    }

    /// The exit code once the process ends; past `within`, kills it and
    /// fails the test saying what it did not do.
    fn exit_code(&mut self, within: Duration, what: &str) -> i32 {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("furui did not {what} within {within:?}:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[derive(Debug, Clone)]
pub struct Metrics(pub Vec<(String, f64)>);

impl Metrics {
    /// Value of an exact series, e.g. `furui_xdp_packets_total{action="drop",class="domestic"}`.
    pub fn get(&self, series: &str) -> u64 {
        self.0.iter().filter(|(k, _)| k == series).map(|(_, v)| *v as u64).sum()
    }

    /// Value of an exact series as a float (gauges that can be negative).
    pub fn value(&self, series: &str) -> f64 {
        self.0.iter().filter(|(k, _)| k == series).map(|(_, v)| *v).sum()
    }

    pub fn xdp(&self, class: &str, action: &str) -> u64 {
        self.get(&format!(
            "furui_xdp_packets_total{{action=\"{action}\",class=\"{class}\"}}"
        ))
    }

    /// Packets of `class` whatever the XDP program did with them.
    pub fn sum_class(&self, class: &str) -> u64 {
        ["redirect", "drop", "pass", "no_socket"]
            .iter()
            .map(|a| self.xdp(class, a))
            .sum()
    }

    pub fn sum(&self, name: &str) -> u64 {
        self.0
            .iter()
            .filter(|(k, _)| k == name || k.starts_with(&format!("{name}{{")))
            .map(|(_, v)| *v as u64)
            .sum()
    }
}

/// Counts occurrences of `needle` in the readable memory of process `pid`.
pub fn count_in_process_memory(pid: u32, needle: &[u8]) -> usize {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).expect("read maps");
    let mut mem = File::open(format!("/proc/{pid}/mem")).expect("open mem");
    let mut n = 0;
    for line in maps.lines() {
        let mut it = line.split_whitespace();
        let (Some(range), Some(perms)) = (it.next(), it.next()) else {
            continue;
        };
        if !perms.starts_with('r') || line.ends_with("[vvar]") || line.contains("[vsyscall]") {
            continue;
        }
        let (s, e) = range.split_once('-').unwrap();
        let (s, e) = (u64::from_str_radix(s, 16).unwrap(), u64::from_str_radix(e, 16).unwrap());
        let mut buf = vec![0u8; (e - s) as usize];
        use std::io::{Seek, SeekFrom};
        if mem.seek(SeekFrom::Start(s)).is_err() || mem.read_exact(&mut buf).is_err() {
            continue;
        }
        n += buf.windows(needle.len()).filter(|w| *w == needle).count();
    }
    n
}

pub const WINDOW_OPEN: &str = "not_before = \"2026-01-01T00:00:00Z\"\nnot_after = \"2099-01-01T00:00:00Z\"";

/// A child process the test started: SIGTERM, then SIGKILL, when dropped
/// (also when the test fails).
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.0.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
