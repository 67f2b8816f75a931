//! The collectors export tests deliver to, each started by the test in
//! the rig's capture namespace and stopped when dropped: nfcapd (nfdump),
//! an IPFIX collector over TCP or TLS that keeps every byte and the
//! client's identity, and nats-server with JetStream.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::*;

/// nfcapd in the capture namespace, on loopback (`-E` prints what it
/// receives, and its start-up lines, to the log).
pub struct Nfcapd {
    pub child: Child,
    pub dir: PathBuf,
    pub log: PathBuf,
}

impl Nfcapd {
    pub fn start(rig: &Rig, port: u16) -> Nfcapd {
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
    pub fn stop_and_read(mut self) -> (Vec<serde_json::Value>, String) {
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

/// No address (raw, or pseudonymized under the rig's epoch key) among
/// `wire`'s bytes: `addrs` and the domestic responder 192.0.2.10.
pub fn assert_no_address_bytes(wire: &[u8], keys: &std::path::Path, addrs: &[std::net::Ipv4Addr]) {
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

/// An IPFIX collector over TCP, or TLS requiring a client certificate, in
/// the capture namespace: accepts one connection at a time, keeps every
/// byte received and (TLS) the client's identity.
pub struct Collector {
    pub bytes: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    pub peer: std::sync::Arc<std::sync::Mutex<Option<[u8; 32]>>>,
    pub stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pub thread: Option<std::thread::JoinHandle<()>>,
}

/// A TLS server config from `certs`/server.{pem,key} that requires a client
/// certificate signed by `certs`/`ca`.
pub fn tls_server(certs: &std::path::Path, ca: &str) -> std::sync::Arc<tokio_rustls::rustls::ServerConfig> {
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
    pub fn start(ns: &str, port: u16, tls: Option<std::sync::Arc<tokio_rustls::rustls::ServerConfig>>) -> Collector {
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
    pub fn messages(&self) -> Vec<(u32, bool)> {
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

    pub fn data_messages(&self) -> usize {
        self.messages().iter().filter(|(_, d)| *d).count()
    }
}

/// A TLS stream that notes the client's identity once it is known.
pub struct PeerRecorder(
    pub tokio_rustls::rustls::StreamOwned<tokio_rustls::rustls::ServerConnection, std::net::TcpStream>,
    pub std::sync::Arc<std::sync::Mutex<Option<[u8; 32]>>>,
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

/// nats-server with JetStream in the capture namespace, storing in `dir`.
pub fn nats_server(rig: &Rig, dir: &std::path::Path) -> KillOnDrop {
    nats_server_with(
        rig,
        &[
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            "4222",
            "-sd",
            &dir.display().to_string(),
        ],
    )
}

/// nats-server started from a configuration file (listening on
/// 127.0.0.1:4222 in the capture namespace).
pub fn nats_server_conf(rig: &Rig, conf: &std::path::Path) -> KillOnDrop {
    nats_server_with(rig, &["-c", &conf.display().to_string()])
}

fn nats_server_with(rig: &Rig, args: &[&str]) -> KillOnDrop {
    nats_server_on(rig, args, 4222)
}

/// Client ports of the three nodes `nats_cluster` starts.
pub const CLUSTER_PORTS: [u16; 3] = [4222, 4223, 4224];

/// A three-node JetStream cluster on loopback in the capture namespace:
/// node `n<i>` takes clients on `CLUSTER_PORTS[i]` and routes on 6222+i,
/// its store under `dir/n<i>`. Returns once every node listens and the
/// cluster has a JetStream meta leader.
pub fn nats_cluster(rig: &Rig, dir: &std::path::Path) -> Vec<KillOnDrop> {
    let mut nodes = Vec::new();
    for (i, port) in CLUSTER_PORTS.iter().enumerate() {
        let routes: Vec<String> = (0..3)
            .filter(|j| *j != i)
            .map(|j| format!("\"nats-route://127.0.0.1:{}\"", 6222 + j))
            .collect();
        let conf = dir.join(format!("n{i}.conf"));
        std::fs::create_dir_all(dir.join(format!("n{i}"))).unwrap();
        std::fs::write(
            &conf,
            format!(
                "server_name: n{i}\nlisten: \"127.0.0.1:{port}\"\njetstream {{ store_dir: \"{}\" }}\ncluster {{\n  name: furui-test\n  listen: \"127.0.0.1:{}\"\n  routes: [{}]\n}}\n",
                dir.join(format!("n{i}")).display(),
                6222 + i,
                routes.join(", ")
            ),
        )
        .unwrap();
        nodes.push(nats_server_on(rig, &["-c", &conf.display().to_string()], *port));
    }
    // JetStream answers once the nodes have elected a meta leader.
    let deadline = Instant::now() + Duration::from_secs(30);
    while nats_request(&rig.ns_cap, 4222, "$JS.API.INFO", "")
        .ok()
        .and_then(|v| v.get("error").is_none().then_some(()))
        .is_none()
    {
        assert!(
            Instant::now() < deadline,
            "the NATS cluster elected no JetStream leader"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    nodes
}

/// Runs `f` with a client of the server on 127.0.0.1:`port` in namespace
/// `ns`, connected as `options` say; the connection's error, or `f`'s.
fn with_client<T, F, Fut>(ns: &str, port: u16, options: async_nats::ConnectOptions, f: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce(async_nats::Client) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    in_netns(ns, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let client = options
                .connect(format!("127.0.0.1:{port}"))
                .await
                .map_err(|e| e.to_string())?;
            f(client).await
        })
    })
}

/// A request to the server on `port` in namespace `ns`; its JSON answer.
pub fn nats_request(ns: &str, port: u16, subject: &str, body: &str) -> Result<serde_json::Value, String> {
    let (subject, body) = (subject.to_string(), body.to_string());
    let options = async_nats::ConnectOptions::new().connection_timeout(Duration::from_secs(2));
    with_client(ns, port, options, move |client| async move {
        let ask = client.request(subject, body.into_bytes().into());
        let m = tokio::time::timeout(Duration::from_secs(3), ask)
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        serde_json::from_slice(&m.payload).map_err(|e| e.to_string())
    })
}

/// nats-server with `args`, returned once it listens on `port`.
fn nats_server_on(rig: &Rig, args: &[&str], port: u16) -> KillOnDrop {
    let child = Command::new("ip")
        .args(["netns", "exec", &rig.ns_cap, "nats-server"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server (make deps installs it)");
    let tcp = format!("/proc/{}/net/tcp", child.id());
    let listening = format!("0100007F:{port:04X} 00000000:0000 0A");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&tcp).unwrap_or_default().contains(&listening) {
        assert!(Instant::now() < deadline, "nats-server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    KillOnDrop(child)
}

/// Every message on `subject` in `stream`, in stream order (no TLS, no
/// credentials).
pub fn nats_read(ns: &str, stream: &str, subject: &str) -> Vec<serde_json::Value> {
    nats_read_as(ns, async_nats::ConnectOptions::new(), stream, subject).expect("the stream can be read")
}

/// `nats_read` through the server on `port`.
pub fn nats_read_at(ns: &str, port: u16, stream: &str, subject: &str) -> Vec<serde_json::Value> {
    nats_read_from(ns, port, async_nats::ConnectOptions::new(), stream, subject).expect("the stream can be read")
}

/// Every message on `subject` in `stream` as the client `options`
/// describe; the error if the server refuses.
pub fn nats_read_as(
    ns: &str,
    options: async_nats::ConnectOptions,
    stream: &str,
    subject: &str,
) -> Result<Vec<serde_json::Value>, String> {
    nats_read_from(ns, 4222, options, stream, subject)
}

fn nats_read_from(
    ns: &str,
    port: u16,
    options: async_nats::ConnectOptions,
    stream: &str,
    subject: &str,
) -> Result<Vec<serde_json::Value>, String> {
    let (stream, subject) = (stream.to_string(), subject.to_string());
    with_client(ns, port, options, move |client| async move {
        let js = async_nats::jetstream::new(client);
        let get = tokio::time::timeout(Duration::from_secs(3), js.get_stream(stream.as_str()));
        let mut st = get.await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
        let n = st.info().await.map_err(|e| e.to_string())?.state.messages;
        let mut out = Vec::new();
        for seq in 1..=n {
            let m = st.get_raw_message(seq).await.map_err(|e| e.to_string())?;
            if m.subject.as_str() == subject {
                out.push(serde_json::from_slice(&m.payload).unwrap());
            }
        }
        Ok(out)
    })
}
