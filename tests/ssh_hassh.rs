//! HASSH and hasshServer from a real OpenSSH handshake: Debian's sshd and
//! ssh talk over loopback inside a test namespace, tcpdump records it, and
//! `furui replay` must give the fingerprints tshark's SSH dissector
//! computes from the same capture — in the record, and as a rule's
//! condition that selects the flow.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::FURUI;

/// A namespace of our own, deleted on drop with what runs in it.
struct Ns {
    name: String,
    children: Vec<Child>,
}

impl Ns {
    fn new() -> Ns {
        let name = format!("fut-ssh-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).status();
        assert!(Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap()
            .success());
        assert!(Command::new("ip")
            .args(["-n", &name, "link", "set", "lo", "up"])
            .status()
            .unwrap()
            .success());
        Ns {
            name,
            children: Vec::new(),
        }
    }

    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    fn spawn(&mut self, mut c: Command) -> usize {
        self.children.push(c.spawn().expect("spawn in the namespace"));
        self.children.len() - 1
    }

    /// Stops a child by its PID (SIGINT lets tcpdump flush) and waits.
    fn stop(&mut self, i: usize) {
        let pid = self.children[i].id().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.children[i].try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.children[i].kill();
        let _ = self.children[i].wait();
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(Instant::now() < deadline, "{what} did not happen");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// sshd and ssh in the namespace, recorded: the capture's path.
fn record_handshake(ns: &mut Ns, dir: &Path) -> std::path::PathBuf {
    let key = dir.join("hostkey");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen (openssh-client)");
    assert!(st.success());
    std::fs::create_dir_all("/run/sshd").unwrap();
    let conf = dir.join("sshd_config");
    std::fs::write(
        &conf,
        format!(
            "Port 2222\nListenAddress 127.0.0.1\nHostKey {}\nPidFile none\nUsePAM no\nStrictModes no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\n",
            key.display()
        ),
    )
    .unwrap();
    let pcap = dir.join("ssh.pcap");
    let mut td = ns.cmd("tcpdump");
    td.args(["-i", "lo", "-U", "-w"])
        .arg(&pcap)
        .args(["tcp", "port", "2222"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let tcpdump = ns.spawn(td);
    let mut sshd = ns.cmd("/usr/sbin/sshd");
    sshd.args(["-D", "-e", "-f"])
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("sshd.log")).unwrap());
    let sshd = ns.spawn(sshd);
    let name = ns.name.clone();
    wait_for("sshd listening", || {
        let out = Command::new("ip")
            .args(["netns", "exec", &name, "ss", "-ltn"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains("127.0.0.1:2222")
    });
    wait_for("tcpdump writing", || pcap.exists());
    std::thread::sleep(Duration::from_millis(500));
    // Authentication fails (no key is authorized): the key exchange,
    // which is what HASSH reads, has happened by then.
    let out = ns
        .cmd("ssh")
        .args([
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=10",
            "-p",
            "2222",
            "nobody@127.0.0.1",
            "true",
        ])
        .output()
        .expect("ssh (openssh-client)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Permission denied"),
        "ssh did not reach authentication: {err}"
    );
    std::thread::sleep(Duration::from_millis(500));
    ns.stop(tcpdump);
    ns.stop(sshd);
    pcap
}

fn tshark_hassh(pcap: &Path) -> (String, String) {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .args([
            "-d",
            "tcp.port==2222,ssh",
            "-T",
            "fields",
            "-e",
            "ssh.kex.hassh",
            "-e",
            "ssh.kex.hasshserver",
        ])
        .output()
        .expect("tshark");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut client = String::new();
    let mut server = String::new();
    for line in text.lines() {
        let mut f = line.split('\t');
        let (c, s) = (f.next().unwrap_or(""), f.next().unwrap_or(""));
        if !c.is_empty() {
            client = c.to_string();
        }
        if !s.is_empty() {
            server = s.to_string();
        }
    }
    assert_eq!(client.len(), 32, "tshark found no client HASSH:\n{text}");
    assert_eq!(server.len(), 32, "tshark found no hasshServer:\n{text}");
    (client, server)
}

#[test]
fn an_openssh_handshake_gives_the_hassh_tshark_computes_and_selects_by_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut ns = Ns::new();
    let pcap = record_handshake(&mut ns, d);
    drop(ns);
    let (client, server) = tshark_hassh(&pcap);

    // 127.0.0.1 on both ends is transit for this domestic set; the rule
    // needs both fingerprints, and the snap keeps headers only otherwise.
    std::fs::create_dir(d.join("rules")).unwrap();
    std::fs::write(
        d.join("rules/ssh.toml"),
        format!(
            "version = \"ssh-1\"\n[[rule]]\nid = \"openssh-pair\"\nmeasures = [\"transit\"]\nhassh = [\"{client}\"]\nhassh_server = [\"{server}\"]\n"
        ),
    )
    .unwrap();
    let cfg = d.join("furui.toml");
    std::fs::write(
        &cfg,
        "[capture]\ninterface = \"lo\"\n[domestic]\nprefixes = [\"192.0.2.0/24\"]\n[selection]\nrules_dir = \"rules\"\n[records]\npath = \"records.jsonl\"\n",
    )
    .unwrap();
    let out = Command::new(FURUI)
        .args(["replay", "--config"])
        .arg(&cfg)
        .arg("--pcap")
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let records: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 1, "one SSH flow: {records:?}");
    let r = &records[0];
    assert_eq!(r["hassh"], client.as_str(), "{r}");
    assert_eq!(r["hassh_server"], server.as_str(), "{r}");
    assert_eq!(r["rules"], serde_json::json!(["openssh-pair"]), "{r}");
    assert_eq!(r["responder_port"], 2222);
    assert!(r["ja3s"].is_null() && r["ja4"].is_null());
}
