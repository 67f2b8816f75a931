//! Export to real collectors, started by the test in the rig's namespace:
//! nfcapd (nfdump) receives furui's IPFIX over UDP; the flows it stores,
//! read back with `nfdump -o json`, match the records furui selected —
//! addresses pseudonymized under the epoch key, counts equal — and no raw
//! address or field outside the grant reaches it.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const DOMESTIC: &str = "[domestic]\nprefixes = [\"192.0.2.0/24\"]\n";
const MEASURES: &str = "[measures.inbound]\nenabled = true\nnot_before = \"2020-01-01T00:00:00Z\"\nnot_after = \"2099-01-01T00:00:00Z\"\n[measures.transit]\nenabled = true\nnot_before = \"2020-01-01T00:00:00Z\"\nnot_after = \"2099-01-01T00:00:00Z\"\n";
const SELECT: &str = "[[indicators]]\nname = \"c2\"\nprefixes = [\"203.0.113.0/24\"]\n";
const IDENTITY: &str = "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// nfcapd in the capture namespace, on loopback (`-E` prints what it
/// receives, and its start-up lines, to the log).
struct Nfcapd {
    child: Child,
    dir: PathBuf,
    log: PathBuf,
}

impl Nfcapd {
    fn start(rig: &Rig, port: u16) -> Nfcapd {
        let dir = rig.path("nfcapd");
        std::fs::create_dir_all(&dir).unwrap();
        let log = rig.path("nfcapd.log");
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &rig.ns_cap,
                "nfcapd",
                "-E",
                "-b",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-t",
                "3600",
                "-w",
            ])
            .arg(&dir)
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("nfcapd (make deps installs nfdump)");
        let n = Nfcapd { child, dir, log };
        // Ready when its UDP socket is bound (its stdout is buffered).
        let bound = format!("0100007F:{port:04X}");
        let udp = format!("/proc/{}/net/udp", n.child.id());
        let deadline = Instant::now() + Duration::from_secs(10);
        while !std::fs::read_to_string(&udp).unwrap_or_default().contains(&bound) {
            assert!(Instant::now() < deadline, "nfcapd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        n
    }

    /// Stops nfcapd (it writes out its file on SIGTERM) and reads every
    /// stored flow back with nfdump.
    fn stop_and_read(mut self) -> (Vec<serde_json::Value>, String) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
        let out = Command::new("nfdump")
            .arg("-R")
            .arg(&self.dir)
            .args(["-o", "json"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let flows = serde_json::from_str::<Vec<serde_json::Value>>(&text).unwrap_or_else(|e| {
            panic!(
                "nfdump output is not JSON ({e}):\n{text}\n{}\nnfcapd log:\n{}",
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(&self.log).unwrap_or_default()
            )
        });
        (flows, text)
    }
}

impl Drop for Nfcapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn recipient(port: u16, fields: &str) -> String {
    format!(
        "[[purposes]]\nid = \"damage-prevention\"\ndamage_prevention = true\n\n[[recipients]]\nname = \"nfcapd\"\nrole = \"analyst\"\nidentity = \"{IDENTITY}\"\n[[recipients.grants]]\nmeasures = [\"inbound\"]\nfields = [{fields}]\npurpose = \"damage-prevention\"\n[[recipients.sinks]]\nkind = \"ipfix-udp\"\naddress = \"127.0.0.1:{port}\"\n"
    )
}

#[test]
fn ipfix_over_udp_reaches_nfcapd_pseudonymized_with_equal_counts() {
    let rig = Rig::new();
    let keys = rig.path("keys");
    let fields = "\"first_seen_ns\", \"last_seen_ns\", \"protocol\", \"initiator\", \"initiator_port\", \"responder\", \"responder_port\", \"packets_forward\", \"bytes_forward\", \"tcp_flags_forward\"";
    let cfg = rig.config(
        "",
        &format!(
            "{DOMESTIC}{MEASURES}{SELECT}\n[deid]\nkey_dir = \"{}\"\n\n{}",
            keys.display(),
            recipient(4739, fields)
        ),
    );
    let nf = Nfcapd::start(&rig, 4739);
    let d = Daemon::start(&rig, &cfg);
    rig.send(&[
        "--count",
        "10",
        "--size",
        "100",
        "--flow",
        "203.0.113.5,192.0.2.10,tcp,4444,80",
    ]);
    rig.send(&[
        "--count",
        "5",
        "--size",
        "90",
        "--flow",
        "203.0.113.6,192.0.2.11,udp,5353,53",
    ]);
    // Transit with a listed peer: selected, but the grant covers inbound only.
    rig.send(&["--count", "3", "--flow", "203.0.113.7,198.51.100.9,udp,1000,2000"]);
    // Inbound from an unlisted peer: not selected at all.
    rig.send(&["--count", "7", "--flow", "198.18.0.1,192.0.2.12,udp,1111,2222"]);
    let m = d.settled_metrics();
    assert_eq!(m.sum("furui_frames_received_total"), 25);
    // Flows end (and are exported) when the daemon stops.
    assert_eq!(d.stop(), 0);
    let (flows, text) = nf.stop_and_read();

    let (recs, _) = rig.records();
    assert_eq!(recs.len(), 3, "three selected flows recorded locally");
    let inbound: Vec<&serde_json::Value> = recs.iter().filter(|r| r["class"] == "inbound").collect();
    assert_eq!(
        flows.len(),
        inbound.len(),
        "exactly the granted (inbound) records reached nfcapd:\n{text}"
    );

    // The test derives the expected pseudonyms from the same epoch key file.
    let mut ks = furui::deid::KeyStore::open(&keys, furui::deid::EpochPeriod::Daily, 2).unwrap();
    let key = ks.at(time::OffsetDateTime::now_utc()).unwrap();
    for r in inbound {
        let port = r["initiator_port"].as_u64().unwrap();
        let f = flows
            .iter()
            .find(|f| f["src_port"].as_u64() == Some(port))
            .unwrap_or_else(|| panic!("no flow with source port {port}:\n{text}"));
        let ip = |v: &serde_json::Value| -> std::net::IpAddr { v.as_str().unwrap().parse().unwrap() };
        assert_eq!(ip(&f["src4_addr"]), key.pan.ip(ip(&r["initiator"])), "{f}");
        assert_eq!(ip(&f["dst4_addr"]), key.pan.ip(ip(&r["responder"])), "{f}");
        assert_eq!(f["dst_port"], r["responder_port"]);
        assert_eq!(f["proto"], r["protocol"]);
        assert_eq!(f["in_packets"], r["packets_forward"], "{f}");
        assert_eq!(f["in_bytes"], r["bytes_forward"], "{f}");
    }
    for raw in ["203.0.113.", "192.0.2.1", "198.51.100."] {
        assert!(!text.contains(raw), "raw address {raw} reached the collector:\n{text}");
    }
}

/// The same export, received by pmacct's nfacctd (a second, independent
/// IPFIX implementation), printing its aggregates as JSON.
#[test]
fn ipfix_over_udp_reaches_nfacctd_pseudonymized_with_equal_counts() {
    let rig = Rig::new();
    let keys = rig.path("keys");
    let fields = "\"first_seen_ns\", \"last_seen_ns\", \"protocol\", \"initiator\", \"initiator_port\", \"responder\", \"responder_port\", \"packets_forward\", \"bytes_forward\"";
    let cfg = rig.config(
        "",
        &format!(
            "{DOMESTIC}{MEASURES}{SELECT}\n[deid]\nkey_dir = \"{}\"\n\n{}",
            keys.display(),
            recipient(4740, fields)
        ),
    );
    let out = rig.path("nfacctd.json");
    let conf = rig.path("nfacctd.conf");
    std::fs::write(
        &conf,
        format!(
            "daemonize: false\nnfacctd_ip: 127.0.0.1\nnfacctd_port: 4740\nplugins: print[p]\naggregate[p]: src_host, dst_host, src_port, dst_port, proto\nprint_output[p]: json\nprint_output_file[p]: {}\nprint_refresh_time[p]: 1\nprint_output_file_append[p]: true\n",
            out.display()
        ),
    )
    .unwrap();
    let nfacctd = Command::new("ip")
        .args(["netns", "exec", &rig.ns_cap, "nfacctd", "-f"])
        .arg(&conf)
        .stdout(std::fs::File::create(rig.path("nfacctd.log")).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("nfacctd (make deps installs pmacct)");
    let guard = KillOnDrop(nfacctd);
    let udp = format!("/proc/{}/net/udp", guard.0.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&udp)
        .unwrap_or_default()
        .contains("0100007F:1284")
    {
        assert!(Instant::now() < deadline, "nfacctd did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let d = Daemon::start(&rig, &cfg);
    rig.send(&[
        "--count",
        "12",
        "--size",
        "100",
        "--flow",
        "203.0.113.5,192.0.2.10,tcp,4444,80",
    ]);
    rig.send(&[
        "--count",
        "4",
        "--size",
        "90",
        "--flow",
        "203.0.113.6,192.0.2.11,udp,5353,53",
    ]);
    d.settled_metrics();
    assert_eq!(d.stop(), 0);
    // nfacctd writes its aggregates every second.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut lines: Vec<serde_json::Value> = Vec::new();
    while lines.len() < 2 {
        assert!(Instant::now() < deadline, "nfacctd wrote {} of 2 flows", lines.len());
        std::thread::sleep(Duration::from_millis(300));
        lines = std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
    }
    drop(guard);
    let text = std::fs::read_to_string(&out).unwrap();
    let mut ks = furui::deid::KeyStore::open(&keys, furui::deid::EpochPeriod::Daily, 2).unwrap();
    let key = ks.at(time::OffsetDateTime::now_utc()).unwrap();
    let (recs, _) = rig.records();
    assert_eq!(recs.len(), 2);
    for r in &recs {
        let ip = |v: &serde_json::Value| -> std::net::IpAddr { v.as_str().unwrap().parse().unwrap() };
        let f = lines
            .iter()
            .find(|f| f["port_src"] == r["initiator_port"])
            .unwrap_or_else(|| panic!("no aggregate for {r}:\n{text}"));
        assert_eq!(ip(&f["ip_src"]), key.pan.ip(ip(&r["initiator"])), "{f}");
        assert_eq!(ip(&f["ip_dst"]), key.pan.ip(ip(&r["responder"])), "{f}");
        assert_eq!(f["port_dst"], r["responder_port"]);
        assert_eq!(f["packets"], r["packets_forward"], "{f}");
        assert_eq!(f["bytes"], r["bytes_forward"], "{f}");
    }
    for raw in ["203.0.113.", "192.0.2.1"] {
        assert!(!text.contains(raw), "raw address {raw} reached the collector:\n{text}");
    }
}

/// No address (raw, or pseudonymized under the rig's epoch key) among
/// `wire`'s bytes: `addrs` and the domestic responder 192.0.2.10.
fn assert_no_address_bytes(wire: &[u8], keys: &std::path::Path, addrs: &[std::net::Ipv4Addr]) {
    let mut ks = furui::deid::KeyStore::open(keys, furui::deid::EpochPeriod::Daily, 2).unwrap();
    let key = ks.at(time::OffsetDateTime::now_utc()).unwrap();
    assert!(wire.len() > 16, "nothing received");
    for a in addrs.iter().copied().chain([std::net::Ipv4Addr::new(192, 0, 2, 10)]) {
        let std::net::IpAddr::V4(p) = key.pan.ip(a.into()) else {
            unreachable!()
        };
        for needle in [a.octets(), p.octets()] {
            assert!(
                !wire.windows(4).any(|w| w == needle),
                "address bytes {needle:?} sent outside the grant"
            );
        }
    }
}

/// A child process the test started: SIGTERM, then SIGKILL, when dropped
/// (also when the test fails).
struct KillOnDrop(Child);

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

/// An IPFIX collector over TCP, or TLS requiring a client certificate, in
/// the capture namespace: accepts one connection at a time, keeps every
/// byte received and (TLS) the client's identity.
struct Collector {
    bytes: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    peer: std::sync::Arc<std::sync::Mutex<Option<[u8; 32]>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A TLS server config from `certs`/server.{pem,key} that requires a client
/// certificate signed by `certs`/`ca`.
fn tls_server(certs: &std::path::Path, ca: &str) -> std::sync::Arc<tokio_rustls::rustls::ServerConfig> {
    use tokio_rustls::rustls;
    let pem = |f: &str| std::fs::read(certs.join(f)).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut pem(ca).as_slice()) {
        roots.add(c.unwrap()).unwrap();
    }
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(std::sync::Arc::new(roots), provider.clone())
            .build()
            .unwrap();
    let chain: Vec<_> = rustls_pemfile::certs(&mut pem("server.pem").as_slice())
        .map(Result::unwrap)
        .collect();
    let key = rustls_pemfile::private_key(&mut pem("server.key").as_slice())
        .unwrap()
        .unwrap();
    std::sync::Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .unwrap(),
    )
}

impl Collector {
    fn start(ns: &str, port: u16, tls: Option<std::sync::Arc<tokio_rustls::rustls::ServerConfig>>) -> Collector {
        use std::io::Read;
        use std::sync::atomic::Ordering;
        let bytes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let peer = std::sync::Arc::new(std::sync::Mutex::new(None));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (b, p, s, path) = (
            bytes.clone(),
            peer.clone(),
            stop.clone(),
            format!("/var/run/netns/{ns}"),
        );
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            nix::sched::setns(
                std::fs::File::open(&path).unwrap(),
                nix::sched::CloneFlags::CLONE_NEWNET,
            )
            .unwrap();
            let l = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
            l.set_nonblocking(true).unwrap();
            ready_tx.send(()).unwrap();
            while !s.load(Ordering::Relaxed) {
                let Ok((tcp, _)) = l.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                tcp.set_nonblocking(false).unwrap();
                tcp.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
                let mut stream: Box<dyn Read> = match &tls {
                    None => Box::new(tcp),
                    Some(cfg) => {
                        let conn = tokio_rustls::rustls::ServerConnection::new(cfg.clone()).unwrap();
                        Box::new(PeerRecorder(
                            tokio_rustls::rustls::StreamOwned::new(conn, tcp),
                            p.clone(),
                        ))
                    }
                };
                let mut buf = [0u8; 4096];
                while !s.load(Ordering::Relaxed) {
                    match stream.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => b.lock().unwrap().extend_from_slice(&buf[..n]),
                        Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                        }
                        Err(_) => break, // handshake refused (wrong client CA) or reset
                    }
                }
            }
        });
        ready_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        Collector {
            bytes,
            peer,
            stop,
            thread: Some(thread),
        }
    }

    /// IPFIX messages received so far: (sequence number, has a data set).
    fn messages(&self) -> Vec<(u32, bool)> {
        let b = self.bytes.lock().unwrap();
        let mut out = Vec::new();
        let mut at = 0;
        while at + 16 <= b.len() {
            assert_eq!(
                u16::from_be_bytes([b[at], b[at + 1]]),
                10,
                "not an IPFIX message at {at}"
            );
            let len = usize::from(u16::from_be_bytes([b[at + 2], b[at + 3]]));
            if at + len > b.len() {
                break;
            }
            let seq = u32::from_be_bytes(b[at + 8..at + 12].try_into().unwrap());
            let mut set = at + 16;
            let mut data = false;
            while set + 4 <= at + len {
                data |= u16::from_be_bytes([b[set], b[set + 1]]) >= 256;
                set += usize::from(u16::from_be_bytes([b[set + 2], b[set + 3]])).max(4);
            }
            out.push((seq, data));
            at += len;
        }
        out
    }

    fn data_messages(&self) -> usize {
        self.messages().iter().filter(|(_, d)| *d).count()
    }
}

/// A TLS stream that notes the client's identity once it is known.
struct PeerRecorder(
    tokio_rustls::rustls::StreamOwned<tokio_rustls::rustls::ServerConnection, std::net::TcpStream>,
    std::sync::Arc<std::sync::Mutex<Option<[u8; 32]>>>,
);

impl std::io::Read for PeerRecorder {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.read(buf);
        if let Some(c) = self.0.conn.peer_certificates().and_then(|c| c.first()) {
            *self.1.lock().unwrap() = furui::export::https::spki_sha256(c.as_ref());
        }
        n
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Collectors down while records are selected, then up: the recipient with
/// room in its spool receives every record, in the order they were
/// selected, in a stream tshark's IPFIX dissector decodes; the recipient
/// with a tiny spool receives what fit, and the rest is counted as dropped.
#[test]
fn ipfix_over_tcp_spools_while_collectors_are_down_and_delivers_in_order() {
    let rig = Rig::new();
    let grant = "[[recipients.grants]]\nmeasures = [\"inbound\"]\nfields = [\"initiator_port\", \"packets_forward\"]\npurpose = \"damage-prevention\"\n";
    let cfg = rig.config(
        "",
        &format!(
            "{prelude}[[purposes]]\nid = \"damage-prevention\"\ndamage_prevention = true\n\n[[recipients]]\nname = \"keeper\"\nrole = \"analyst\"\nidentity = \"{IDENTITY}\"\n{grant}[[recipients.sinks]]\nkind = \"ipfix-tcp\"\naddress = \"127.0.0.1:4741\"\n\n[[recipients]]\nname = \"small\"\nrole = \"analyst\"\nidentity = \"{IDENTITY}\"\nspool_max_bytes = 300\n{grant}[[recipients.sinks]]\nkind = \"ipfix-tcp\"\naddress = \"127.0.0.1:4742\"\n",
            prelude = export_prelude(&rig),
        ),
    );
    let d = Daemon::start(&rig, &cfg);
    for i in 0..6 {
        let flow = format!("203.0.113.{},192.0.2.10,tcp,{},80", 20 + i, 5000 + i);
        rig.send(&["--count", &(i + 1).to_string(), "--flow", &flow]);
    }
    // The flows end after 1 s idle; their records find both collectors down.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = d.metrics();
        let keeper = m.get("furui_export_spooled_total{recipient=\"keeper\",sink=\"ipfix-tcp\"}");
        let small = m.get("furui_export_spooled_total{recipient=\"small\",sink=\"ipfix-tcp\"}")
            + m.get("furui_export_dropped_total{reason=\"spool_full\",recipient=\"small\"}");
        if keeper == 6 && small == 6 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "records not spooled: keeper {keeper}, small {small}, selected {}",
            m.get("furui_records_selected_total")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let m = d.metrics();
    let small_dropped = m.get("furui_export_dropped_total{reason=\"spool_full\",recipient=\"small\"}");
    assert!(small_dropped >= 1, "the 300-byte spool must overflow");
    assert!(m.get("furui_export_spool_bytes{recipient=\"small\",sink=\"ipfix-tcp\"}") <= 300);
    assert_eq!(
        m.get("furui_export_records_total{recipient=\"keeper\",sink=\"ipfix-tcp\"}"),
        0
    );

    // Collectors up; tcpdump records the keeper's stream for tshark.
    let pcap = rig.path("tcp.pcap");
    let tcpdump = Command::new("ip")
        .args(["netns", "exec", &rig.ns_cap, "tcpdump", "-i", "lo", "-U", "-w"])
        .arg(&pcap)
        .args(["tcp", "port", "4741"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let tcpdump_guard = KillOnDrop(tcpdump);
    std::thread::sleep(Duration::from_millis(500));
    let keeper = Collector::start(&rig.ns_cap, 4741, None);
    let small = Collector::start(&rig.ns_cap, 4742, None);
    let deadline = Instant::now() + Duration::from_secs(20);
    while keeper.data_messages() < 6 || small.data_messages() < (6 - small_dropped) as usize {
        assert!(Instant::now() < deadline, "spool not delivered:\n{}", d.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    let m = d.settled_metrics();
    assert_eq!(
        m.get("furui_export_records_total{recipient=\"keeper\",sink=\"ipfix-tcp\"}"),
        6
    );
    assert_eq!(
        m.get("furui_export_records_total{recipient=\"small\",sink=\"ipfix-tcp\"}"),
        6 - small_dropped
    );
    assert_eq!(
        m.get("furui_export_spool_bytes{recipient=\"keeper\",sink=\"ipfix-tcp\"}"),
        0
    );
    // Only the granted fields went over the wire: no address, raw or
    // pseudonymized (the grant has none).
    let addrs: Vec<std::net::Ipv4Addr> = (0..6).map(|i| std::net::Ipv4Addr::new(203, 0, 113, 20 + i)).collect();
    assert_no_address_bytes(&keeper.bytes.lock().unwrap(), &rig.path("keys"), &addrs);
    // Sequence numbers count data records: 0, 1, 2, ...
    let seqs: Vec<u32> = keeper.messages().iter().filter(|(_, d)| *d).map(|(s, _)| *s).collect();
    assert_eq!(seqs, (0..6).collect::<Vec<u32>>());
    assert_eq!(d.stop(), 0);
    drop(tcpdump_guard);

    // Order: as selected (the local records file has the selection order).
    let selected = rig.record_ports();
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&pcap)
        .args([
            "-d",
            "tcp.port==4741,cflow",
            "-Y",
            "cflow.srcport",
            "-T",
            "fields",
            "-e",
            "cflow.srcport",
            "-e",
            "cflow.packets",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let decoded: Vec<(u64, u64)> = text
        .lines()
        .flat_map(|l| {
            let mut f = l.split('\t');
            let ports: Vec<u64> = f
                .next()
                .unwrap_or("")
                .split(',')
                .filter_map(|x| x.parse().ok())
                .collect();
            let pkts: Vec<u64> = f
                .next()
                .unwrap_or("")
                .split(',')
                .filter_map(|x| x.parse().ok())
                .collect();
            ports.into_iter().zip(pkts).collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        decoded.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
        selected,
        "tshark:\n{text}"
    );
    for (port, pkts) in decoded {
        assert_eq!(pkts, port - 5000 + 1, "packet count of the flow from port {port}");
    }
}

/// nats-server with JetStream in the capture namespace, storing in `dir`.
fn nats_server(rig: &Rig, dir: &std::path::Path) -> KillOnDrop {
    let child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &rig.ns_cap,
            "nats-server",
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            "4222",
            "-sd",
        ])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server (make deps installs it)");
    let tcp = format!("/proc/{}/net/tcp", child.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&tcp)
        .unwrap_or_default()
        .contains("0100007F:107E")
    {
        assert!(Instant::now() < deadline, "nats-server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    KillOnDrop(child)
}

/// Every message on `subject` in the stream, in stream order.
fn nats_read(ns: &str, subject: &str) -> Vec<serde_json::Value> {
    let subject = subject.to_string();
    in_netns(ns, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let client = async_nats::connect("127.0.0.1:4222").await.unwrap();
            let js = async_nats::jetstream::new(client);
            let mut stream = js.get_stream("FURUI").await.unwrap();
            let n = stream.info().await.unwrap().state.messages;
            let mut out = Vec::new();
            for seq in 1..=n {
                let m = stream.get_raw_message(seq).await.unwrap();
                if m.subject.as_str() == subject {
                    out.push(serde_json::from_slice(&m.payload).unwrap());
                }
            }
            out
        })
    })
}

/// JetStream: each recipient's records on its own subject, acknowledged by
/// the server, only the granted fields; the server restarted mid-stream
/// (records selected meanwhile wait in the spool) and nothing is lost or
/// reordered.
#[test]
fn nats_jetstream_gets_exactly_the_granted_records_across_a_server_restart() {
    let rig = Rig::new();
    let store = rig.path("jetstream");
    let cfg = rig.config(
        "",
        &format!(
            "{prelude}[audit]\ndir = \"{audit}\"\ncheckpoint_secs = 1\n\n[[purposes]]\nid = \"damage-prevention\"\ndamage_prevention = true\n\n[[recipients]]\nname = \"bus\"\nrole = \"analyst\"\nidentity = \"{IDENTITY}\"\nwitness = true\n[[recipients.grants]]\nmeasures = [\"inbound\"]\nfields = [\"initiator_port\", \"responder\", \"packets_forward\"]\npurpose = \"damage-prevention\"\n[[recipients.sinks]]\nkind = \"nats\"\naddress = \"127.0.0.1:4222\"\n",
            prelude = export_prelude(&rig),
            audit = rig.path("audit").display(),
        ),
    );
    let nats = nats_server(&rig, &store);
    let d = Daemon::start(&rig, &cfg);
    let published = "furui_export_records_total{recipient=\"bus\",sink=\"nats\"}";
    for i in 0..3u64 {
        let flow = format!("203.0.113.{},192.0.2.10,tcp,{},80", 30 + i, 6000 + i);
        rig.send(&["--count", &(i + 1).to_string(), "--flow", &flow]);
    }
    d.wait_for_metric(published, 3, "records published");
    // The server goes away; three more flows end meanwhile.
    drop(nats);
    for i in 3..6u64 {
        let flow = format!("203.0.113.{},192.0.2.10,tcp,{},80", 30 + i, 6000 + i);
        rig.send(&["--count", &(i + 1).to_string(), "--flow", &flow]);
    }
    d.wait_for_metric(
        "furui_export_spooled_total{recipient=\"bus\",sink=\"nats\"}",
        3,
        "records not spooled while NATS was down",
    );
    let nats = nats_server(&rig, &store);
    d.wait_for_metric(published, 6, "records published after the restart");
    assert_eq!(d.stop(), 0);
    let got = nats_read(&rig.ns_cap, "furui.records.bus");
    let witnesses = nats_read(&rig.ns_cap, "furui.records.bus.witness");
    drop(nats);

    // The recipient holds signed checkpoints pushed to it: the newest
    // still verifies against the trail, as a witness.
    assert!(!witnesses.is_empty(), "no checkpoint pushed");
    let w = witnesses.last().unwrap();
    assert_eq!(w["kind"], "checkpoint", "{w}");
    let out = verify_with_witness(&rig, &w.to_string());
    assert!(
        out.starts_with("PASS") && out.contains("witness checkpoint present"),
        "{out}"
    );

    let selected = rig.record_ports();
    assert_eq!(selected.len(), 6);
    let ports: Vec<u64> = got.iter().map(|v| v["initiator_port"].as_u64().unwrap()).collect();
    assert_eq!(ports, selected, "every record once, in selection order");
    for v in &got {
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            ["initiator_port", "key_epoch", "packets_forward", "responder"],
            "{v}"
        );
        assert!(
            !v["responder"].as_str().unwrap().starts_with("192.0.2."),
            "responder not pseudonymized: {v}"
        );
        assert_eq!(
            v["packets_forward"].as_u64().unwrap(),
            v["initiator_port"].as_u64().unwrap() - 6000 + 1
        );
    }
}

/// `furui audit verify` of the rig's trail against a witness a recipient
/// kept (one checkpoint line); the command's output.
fn verify_with_witness(rig: &Rig, witness_line: &str) -> String {
    let witness = rig.path("witness.json");
    std::fs::write(&witness, witness_line).unwrap();
    let audit = rig.path("audit");
    let out = Command::new(FURUI)
        .args(["audit", "verify"])
        .arg(&audit)
        .arg("--pubkey")
        .arg(audit.join("appliance.pub"))
        .arg("--witness")
        .arg(&witness)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The common head of the live-export configs: every test's domestic
/// range, measures and indicator set, 1-second idle flows, and key and
/// spool directories inside the rig.
fn export_prelude(rig: &Rig) -> String {
    format!(
        "{DOMESTIC}{MEASURES}{SELECT}\n[flows]\nidle_timeout_secs = 1\n\n[deid]\nkey_dir = \"{}\"\n\n[export]\nspool_dir = \"{}\"\n\n",
        rig.path("keys").display(),
        rig.path("spool").display()
    )
}

/// A rig with a test CA and certificates (see `make_certs`): the rig, the
/// certificate directory, and each client's identity.
fn rig_with_certs(clients: &[&str]) -> (Rig, std::path::PathBuf, Vec<String>) {
    let rig = Rig::new();
    let certs = rig.path("certs");
    std::fs::create_dir(&certs).unwrap();
    let ids = make_certs(&certs, clients);
    (rig, certs, ids)
}

/// Runs a shell command; panics with its output on failure.
fn sh(cmd: &str) -> String {
    let out = Command::new("sh").args(["-c", cmd]).output().unwrap();
    assert!(out.status.success(), "{cmd}:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A test CA, a server certificate for 127.0.0.1, and client certificates
/// (openssl, as the README documents); returns each client's identity as
/// the README's command computes it.
fn make_certs(dir: &std::path::Path, clients: &[&str]) -> Vec<String> {
    let d = dir.display();
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    sh(&format!(
        "cd {d} && openssl req -x509 {ec} -keyout ca.key -out ca.pem -days 2 -subj /CN=furui-test-ca 2>/dev/null"
    ));
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for (name, ext) in std::iter::once(("server", "server.ext")).chain(clients.iter().map(|c| (*c, "client.ext"))) {
        sh(&format!(
            "cd {d} && openssl req {ec} -keyout {name}.key -out {name}.csr -subj /CN={name} 2>/dev/null && openssl x509 -req -in {name}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out {name}.pem -days 2 -extfile {ext} 2>/dev/null"
        ));
    }
    clients
        .iter()
        .map(|c| {
            let hex = sh(&format!(
                "cd {d} && openssl x509 -in {c}.pem -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum"
            ));
            format!("sha256:{}", hex.split_whitespace().next().unwrap())
        })
        .collect()
}

/// The mTLS API: a recipient's client certificate reads exactly its
/// granted fields as NDJSON from a cursor; no certificate fails the
/// handshake; a certificate of no recipient, the oversight role and a
/// recipient without an `api` grant get 403; plain HTTP gets nothing.
#[test]
fn the_https_api_requires_mutual_tls_and_serves_exactly_the_granted_fields() {
    let (rig, certs, ids) = rig_with_certs(&["analyst", "stranger", "inspector", "noapi"]);
    let grant = "[[recipients.grants]]\nmeasures = [\"inbound\"]\nfields = [\"initiator\", \"responder_port\", \"packets_forward\"]\npurpose = \"damage-prevention\"\n";
    let c = certs.display();
    let cfg = rig.config(
        "",
        &format!(
            "{prelude}[audit]\ndir = \"{audit}\"\ncheckpoint_secs = 1\n\n[api]\nlisten = \"127.0.0.1:9443\"\ncert = \"{c}/server.pem\"\nkey = \"{c}/server.key\"\nclient_ca = \"{c}/ca.pem\"\n\n[[purposes]]\nid = \"damage-prevention\"\ndamage_prevention = true\n\n[[recipients]]\nname = \"analyst\"\nrole = \"analyst\"\nidentity = \"{a}\"\n{grant}[[recipients.sinks]]\nkind = \"api\"\n\n[[recipients]]\nname = \"inspector\"\nrole = \"oversight\"\nidentity = \"{o}\"\n{grant}\n[[recipients]]\nname = \"noapi\"\nrole = \"analyst\"\nidentity = \"{n}\"\n{grant}",
            prelude = export_prelude(&rig),
            audit = rig.path("audit").display(),
            a = ids[0],
            o = ids[2],
            n = ids[3],
        ),
    );
    let d = Daemon::start(&rig, &cfg);
    for i in 0..3u64 {
        let flow = format!("203.0.113.{},192.0.2.10,tcp,{},{}", 40 + i, 7000 + i, 80 + i);
        rig.send(&["--count", &(i + 1).to_string(), "--flow", &flow]);
    }
    d.wait_for_metric(
        "furui_export_records_total{recipient=\"analyst\",sink=\"api\"}",
        3,
        "views not stored for the API",
    );
    let curl = |args: &str| -> (bool, String) {
        let out = Command::new("sh")
            .args([
                "-c",
                &format!(
                    "cd {c} && ip netns exec {} curl -sS -m 5 -w '\\nHTTP %{{http_code}}' {args}",
                    rig.ns_cap
                ),
            ])
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let url = "https://127.0.0.1:9443/v1/records";
    let as_client = |who: &str, q: &str| curl(&format!("--cacert ca.pem --cert {who}.pem --key {who}.key '{url}{q}'"));

    let (ok, body) = as_client("analyst", "?after=0");
    assert!(ok && body.ends_with("HTTP 200"), "{body}");
    let lines: Vec<serde_json::Value> = body
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{body}");
    for v in &lines {
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            ["cursor", "initiator", "key_epoch", "packets_forward", "responder_port"],
            "{v}"
        );
        assert!(
            !v["initiator"].as_str().unwrap().starts_with("203.0.113."),
            "not pseudonymized: {v}"
        );
    }
    let first = lines[0]["cursor"].as_u64().unwrap();
    let (_, rest) = as_client("analyst", &format!("?after={first}"));
    assert_eq!(
        rest.lines().filter(|l| l.starts_with('{')).count(),
        2,
        "paging from a cursor: {rest}"
    );

    for who in ["stranger", "inspector", "noapi"] {
        let (_, body) = as_client(who, "?after=0");
        assert!(body.ends_with("HTTP 403"), "{who}: {body}");
        assert!(!body.contains("packets_forward"), "{who} got records: {body}");
    }
    let (ok, body) = curl(&format!("--cacert ca.pem '{url}?after=0'"));
    assert!(
        !ok && !body.contains("packets_forward"),
        "no client certificate must fail: {body}"
    );
    let (_, body) = curl("'http://127.0.0.1:9443/v1/records?after=0'");
    assert!(
        !body.contains("HTTP 200") && !body.contains("packets_forward"),
        "plain HTTP served: {body}"
    );
    let m = d.metrics();
    assert!(m.get("furui_api_requests_total{recipient=\"unknown\",status=\"handshake_failed\"}") >= 1);
    assert_eq!(
        m.get("furui_api_requests_total{recipient=\"unknown\",status=\"403\"}"),
        1
    );

    // The oversight role: the audit trail, the configuration history and
    // the counters — and (above) never records. Others may not read them.
    let get = |who: &str, path: &str| {
        curl(&format!(
            "--cacert ca.pem --cert {who}.pem --key {who}.key 'https://127.0.0.1:9443{path}'"
        ))
        .1
    };
    let trail = get("inspector", "/v1/audit?after=0");
    assert!(
        trail.ends_with("HTTP 200") && trail.contains("\"kind\":\"start\""),
        "{trail}"
    );
    assert!(
        trail.contains("\"kind\":\"export\""),
        "export batches are in the trail: {trail}"
    );
    let history = get("inspector", "/v1/config-history");
    assert!(
        history.ends_with("HTTP 200") && history.contains("config_sha256"),
        "{history}"
    );
    assert!(!history.contains("\"kind\":\"export\""), "{history}");
    let counters = get("inspector", "/v1/counters");
    assert!(
        counters.ends_with("HTTP 200") && counters.contains("furui_frames_erased_total"),
        "{counters}"
    );
    for path in ["/v1/audit?after=0", "/v1/counters", "/v1/config-history"] {
        assert!(get("analyst", path).ends_with("HTTP 403"), "analyst read {path}");
    }
    // A witness: the analyst keeps the newest signed checkpoint.
    d.wait_for_metric("furui_audit_entries_total{kind=\"checkpoint\"}", 1, "a checkpoint");
    let w = get("analyst", "/v1/checkpoint");
    assert!(w.ends_with("HTTP 200"), "{w}");
    assert_eq!(d.stop(), 0);
    let out = verify_with_witness(&rig, w.lines().next().unwrap());
    assert!(
        out.starts_with("PASS") && out.contains("witness checkpoint present"),
        "{out}"
    );
    // Every API request is an audit entry, refusals included.
    let reads: Vec<serde_json::Value> = std::fs::read_to_string(rig.path("audit").join("trail.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["kind"] == "api_read")
        .map(|e| e["data"].clone())
        .collect();
    let has = |client: &str, resource: &str, status: u64| {
        reads
            .iter()
            .any(|r| r["client"] == client && r["resource"] == resource && r["status"] == status)
    };
    assert!(
        has("analyst", "records", 200) && has("unknown", "records", 403),
        "{reads:?}"
    );
    assert!(
        has("inspector", "records", 403) && has("inspector", "audit", 200),
        "{reads:?}"
    );
    assert!(
        has("analyst", "checkpoint", 200) && has("analyst", "counters", 403),
        "{reads:?}"
    );
    let records_read: u64 = reads
        .iter()
        .filter(|r| r["client"] == "analyst" && r["resource"] == "records")
        .map(|r| r["items"].as_u64().unwrap())
        .sum();
    assert_eq!(records_read, 5, "3 records, then 2 from the cursor");
}

/// IPFIX over TLS: the collector requires furui's client certificate and
/// sees the identity configured for it; records arrive. A collector that
/// trusts another CA refuses the handshake, and the records wait in the
/// spool instead of going anywhere else.
#[test]
fn ipfix_over_tls_presents_furuis_certificate_and_spools_when_refused() {
    let (rig, certs, ids) = rig_with_certs(&["exporter"]);
    // A second CA the refusing collector trusts instead.
    sh(&format!(
        "cd {} && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other-ca.key -out other-ca.pem -days 2 -subj /CN=other 2>/dev/null",
        certs.display()
    ));
    let c = certs.display();
    let sink = |name: &str, port: u16| {
        format!(
            "\n[[recipients]]\nname = \"{name}\"\nrole = \"analyst\"\nidentity = \"{IDENTITY}\"\n[[recipients.grants]]\nmeasures = [\"inbound\"]\nfields = [\"initiator_port\", \"packets_forward\"]\npurpose = \"damage-prevention\"\n[[recipients.sinks]]\nkind = \"ipfix-tls\"\naddress = \"127.0.0.1:{port}\"\nserver_ca = \"{c}/ca.pem\"\nclient_cert = \"{c}/exporter.pem\"\nclient_key = \"{c}/exporter.key\"\n"
        )
    };
    let cfg = rig.config(
        "",
        &format!(
            "{prelude}[[purposes]]\nid = \"damage-prevention\"\ndamage_prevention = true\n{}{}",
            sink("trusting", 4743),
            sink("refusing", 4744),
            prelude = export_prelude(&rig),
        ),
    );
    let trusting = Collector::start(&rig.ns_cap, 4743, Some(tls_server(&certs, "ca.pem")));
    let refusing = Collector::start(&rig.ns_cap, 4744, Some(tls_server(&certs, "other-ca.pem")));
    let d = Daemon::start(&rig, &cfg);
    for i in 0..3u64 {
        let flow = format!("203.0.113.{},192.0.2.10,tcp,{},80", 50 + i, 8000 + i);
        rig.send(&["--count", "2", "--flow", &flow]);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while trusting.data_messages() < 3
        || d.metrics()
            .get("furui_export_spooled_total{recipient=\"refusing\",sink=\"ipfix-tls\"}")
            < 3
    {
        assert!(
            Instant::now() < deadline,
            "trusting got {} messages; refusing: spooled {}, sent {}",
            trusting.data_messages(),
            d.metrics()
                .get("furui_export_spooled_total{recipient=\"refusing\",sink=\"ipfix-tls\"}"),
            d.metrics()
                .get("furui_export_records_total{recipient=\"refusing\",sink=\"ipfix-tls\"}")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let peer = trusting.peer.lock().unwrap().expect("client certificate seen");
    let hex: String = peer.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        format!("sha256:{hex}"),
        ids[0],
        "the collector saw furui's configured certificate"
    );
    assert_eq!(
        refusing.data_messages(),
        0,
        "a collector that does not trust furui got data"
    );
    let addrs: Vec<std::net::Ipv4Addr> = (0..3).map(|i| std::net::Ipv4Addr::new(203, 0, 113, 50 + i)).collect();
    assert_no_address_bytes(&trusting.bytes.lock().unwrap(), &rig.path("keys"), &addrs);
    let m = d.metrics();
    assert_eq!(
        m.get("furui_export_records_total{recipient=\"trusting\",sink=\"ipfix-tls\"}"),
        3
    );
    assert_eq!(
        m.get("furui_export_records_total{recipient=\"refusing\",sink=\"ipfix-tls\"}"),
        0
    );
    assert_eq!(d.stop(), 0);
}

/// Art. 29: a recipient holding only an aggregate grant reads counts per
/// rule, destination port, measure and period over the API — the cell
/// below the minimum count suppressed, and no record or address at all.
#[test]
fn an_aggregate_grant_gets_suppressed_counts_and_never_records() {
    let (rig, certs, ids) = rig_with_certs(&["statistician"]);
    let c = certs.display();
    let cfg = rig.config(
        "",
        &format!(
            "{prelude}[aggregates]\nperiod_secs = 4\nmin_count = 3\n\n[api]\nlisten = \"127.0.0.1:9443\"\ncert = \"{c}/server.pem\"\nkey = \"{c}/server.key\"\nclient_ca = \"{c}/ca.pem\"\n\n[[purposes]]\nid = \"damage-prevention\"\ndamage_prevention = true\n\n[[recipients]]\nname = \"statistician\"\nrole = \"analyst\"\nidentity = \"{id}\"\n[[recipients.grants]]\nmeasures = [\"inbound\"]\naggregate = true\npurpose = \"damage-prevention\"\n[[recipients.sinks]]\nkind = \"api\"\n",
            prelude = export_prelude(&rig),
            id = ids[0],
        ),
    );
    let d = Daemon::start(&rig, &cfg);
    // Start just after a 4-second period boundary, so that all five flows
    // (sent within ~0.5 s, ended ~1-2 s later) fall in one period.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    std::thread::sleep(Duration::from_millis(4000 - (now.as_millis() % 4000) as u64 + 50));
    for i in 0..4u64 {
        let flow = format!("203.0.113.{},192.0.2.10,tcp,{},80", 60 + i, 9000 + i);
        rig.send(&["--count", "2", "--flow", &flow]);
    }
    rig.send(&["--count", "2", "--flow", "203.0.113.70,192.0.2.10,tcp,9100,22"]);
    // Flows end after 1 s idle; the period closes on the next boundary.
    let read = || -> String {
        let out = Command::new("sh")
            .args([
                "-c",
                &format!(
                    "cd {c} && ip netns exec {} curl -sS -m 5 --cacert ca.pem --cert statistician.pem --key statistician.key 'https://127.0.0.1:9443/v1/records?after=0'",
                    rig.ns_cap
                ),
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut body = read();
    while !body.contains("suppressed_cells") {
        assert!(Instant::now() < deadline, "no aggregate rows: {body}\n{}", d.log_text());
        std::thread::sleep(Duration::from_millis(300));
        body = read();
    }
    let rows: Vec<serde_json::Value> = body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let flows: u64 = rows
        .iter()
        .filter(|r| r["dst_port"] == 80 && r["rule"] == "indicator:c2" && r["measure"] == "inbound")
        .map(|r| r["flows"].as_u64().unwrap())
        .sum();
    assert_eq!(flows, 4, "{body}");
    assert!(
        !rows.iter().any(|r| r["dst_port"] == 22),
        "the 1-flow cell must be suppressed: {body}"
    );
    assert!(rows.iter().any(|r| r["suppressed_cells"].as_u64() >= Some(1)), "{body}");
    for forbidden in ["initiator", "responder", "key_epoch", "203.0.113.", "packets_forward"] {
        assert!(!body.contains(forbidden), "{forbidden} in aggregates: {body}");
    }
    assert_eq!(d.stop(), 0);
}
