//! Per-packet cost of the user-space data path: parse → classify → select
//! → flow → erase, at 64 B and 1500 B, beside the cost of the copy alone
//! (what the kernel does in copy mode) as a baseline.

use std::path::Path;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

use furui::config::Config;
use furui::craft::{FrameSpec, Transport};
use furui::pipeline::Pipeline;

fn cfg() -> Config {
    Config::parse(
        Path::new("bench.toml"),
        "[capture]\ninterface = \"x\"\n[domestic]\nprefixes = [\"192.0.2.0/24\", \"2001:db8::/32\"]\n[[indicators]]\nname = \"c2\"\nprefixes = [\"203.0.113.0/24\"]\n[records]\npath = \"r\"\n",
    )
    .expect("bench config")
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("per_frame");
    for size in [64usize, 1500] {
        // Half selected (indicator peer), half not: the common mix.
        let selected = FrameSpec::new("203.0.113.9", "192.0.2.1")
            .transport(Transport::Tcp {
                src_port: 4444,
                dst_port: 443,
                flags: 0x18,
            })
            .frame_len(size)
            .build();
        let unselected = FrameSpec::new("198.18.0.1", "192.0.2.1").frame_len(size).build();
        let mut buf = vec![0u8; size];
        g.throughput(Throughput::Elements(2));
        g.bench_function(format!("copy_only/{size}B"), |b| {
            b.iter(|| {
                buf.copy_from_slice(&selected);
                black_box(&buf);
                buf.copy_from_slice(&unselected);
                black_box(&buf);
            })
        });
        let mut p = Pipeline::new(&cfg(), 0);
        g.bench_function(format!("copy_parse_select_erase/{size}B"), |b| {
            b.iter(|| {
                buf.copy_from_slice(&selected);
                p.process_frame(&mut buf, 1);
                buf.copy_from_slice(&unselected);
                p.process_frame(&mut buf, 1);
                p.clear_counters();
            })
        });
        // As the live path runs: with the metadata the XDP program wrote
        // (the IP header at 14), so nothing is walked again.
        let meta = |class| furui::classify::meta::XdpMeta {
            ip_offset: 14,
            v6: false,
            class,
            chain: furui::classify::walk::EncapChain::NONE,
            tunnel: None,
            orig_len: size as u32,
        };
        let (ms, mu) = (
            meta(furui::classify::Class::Inbound),
            meta(furui::classify::Class::Inbound),
        );
        let mut p = Pipeline::new(&cfg(), 0);
        g.bench_function(format!("copy_parse_select_erase_with_metadata/{size}B"), |b| {
            b.iter(|| {
                buf.copy_from_slice(&selected);
                p.process_captured(&mut buf, Some(ms), 1);
                buf.copy_from_slice(&unselected);
                p.process_captured(&mut buf, Some(mu), 1);
                p.clear_counters();
            })
        });
    }
    g.finish();
}

/// The same path with the issue's load: 100,000 CIDR indicators, 1,000
/// sealed payload patterns and 1,000 JA4 values (`furui::benchkit`), over
/// a four-frame mix of which two are selected.
fn loaded(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    furui::benchkit::write_fixture(dir.path()).expect("bench fixture");
    let cfg = Config::load(&dir.path().join("furui.toml")).expect("bench fixture config");
    let mut g = c.benchmark_group("loaded_ruleset");
    for size in [64usize, 1500] {
        let mix = furui::benchkit::frame_mix(size);
        let mut buf = vec![0u8; size];
        let mut p = Pipeline::new(&cfg, 0);
        g.throughput(Throughput::Elements(mix.len() as u64));
        g.bench_function(format!("copy_parse_select_erase/{size}B"), |b| {
            b.iter(|| {
                for f in &mix {
                    buf.copy_from_slice(f);
                    p.process_frame(&mut buf, 1);
                }
                p.clear_counters();
            })
        });
    }
    g.finish();
}

/// The same pair of 64-byte inner frames (one selected, one not) inside
/// each encapsulation furui opens, the outer endpoints domestic (a
/// carrier's router and probe): what user space pays to find the inner
/// packet, beside `per_frame` for plain frames.
fn encapsulated(c: &mut Criterion) {
    use furui::craft::tunnel::wrap;
    let (os, od) = (
        "192.0.2.250".parse().expect("literal"),
        "192.0.2.251".parse().expect("literal"),
    );
    let selected = FrameSpec::new("203.0.113.9", "192.0.2.1")
        .transport(Transport::Tcp {
            src_port: 4444,
            dst_port: 443,
            flags: 0x18,
        })
        .frame_len(64)
        .build();
    let unselected = FrameSpec::new("198.18.0.1", "192.0.2.1").frame_len(64).build();
    let mut g = c.benchmark_group("encapsulated");
    g.throughput(Throughput::Elements(2));
    for (name, w) in furui::craft::tunnel::bench_wraps() {
        let (s, u) = (wrap(&selected, &w, os, od), wrap(&unselected, &w, os, od));
        let mut buf = vec![0u8; s.len().max(u.len())];
        let mut p = Pipeline::new(&cfg(), 0);
        g.bench_function(format!("copy_parse_select_erase/{name}"), |b| {
            b.iter(|| {
                buf[..s.len()].copy_from_slice(&s);
                p.process_frame(&mut buf[..s.len()], 1);
                buf[..u.len()].copy_from_slice(&u);
                p.process_frame(&mut buf[..u.len()], 1);
                p.clear_counters();
            })
        });
    }
    g.finish();
}

/// Cost of de-identifying one address for export (Crypto-PAn: one AES
/// block per address bit); a record has two.
fn deid(c: &mut Criterion) {
    let pan = furui::deid::CryptoPan::new(&[0x42; 32]);
    let mut g = c.benchmark_group("deid");
    let v4: std::net::IpAddr = "203.0.113.77".parse().expect("literal");
    let v6: std::net::IpAddr = "2001:db8:1234::77".parse().expect("literal");
    g.bench_function("cryptopan/ipv4", |b| b.iter(|| black_box(pan.ip(black_box(v4)))));
    g.bench_function("cryptopan/ipv6", |b| b.iter(|| black_box(pan.ip(black_box(v6)))));
    g.finish();
}

/// Export throughput of one recipient's IPFIX-over-UDP sink: project a
/// record through a grant of every field (two pseudonyms), encode it and
/// send it to a local socket (records per second = 1 / time).
fn export(c: &mut Criterion) {
    use furui::export::Sink;
    let rx = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let grant = furui::benchkit::full_grant();
    let recipient = furui::config::recipients::Recipient {
        name: "bench".into(),
        role: furui::config::audit::Role::Analyst,
        identity: [0; 32],
        grants: vec![grant.clone()],
        sinks: Vec::new(),
        queue_capacity: 1,
        spool_max_bytes: 0,
        witness: false,
    };
    let mut sink = furui::export::udp::IpfixUdp::open(rx.local_addr().expect("addr"), &recipient, 60).expect("sink");
    let key = furui::deid::EpochKey {
        epoch: "2026-11-22".into(),
        pan: furui::deid::CryptoPan::new(&[0x42; 32]),
    };
    let domestic = furui::classify::PrefixSet::default();
    let rec = furui::benchkit::sample_record();
    let mut g = c.benchmark_group("export");
    g.throughput(Throughput::Elements(1));
    g.bench_function("project_encode_send/ipfix-udp", |b| {
        b.iter(|| {
            let view = furui::export::project::project(&rec, &grant, &key, &domestic);
            sink.send(0, &view).expect("send");
        })
    });
    drop(rx);

    // IPFIX over TCP to a local reader that discards.
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let to = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        use std::io::Read;
        if let Ok((mut c, _)) = l.accept() {
            let mut buf = [0u8; 65536];
            while matches!(c.read(&mut buf), Ok(n) if n > 0) {}
        }
    });
    let mut tcp = furui::export::tcp::IpfixTcp::open(to, &recipient, None);
    g.bench_function("project_encode_send/ipfix-tcp", |b| {
        b.iter(|| {
            let view = furui::export::project::project(&rec, &grant, &key, &domestic);
            tcp.send(0, &view).expect("send");
        })
    });
    drop(tcp);

    // The API's buffer (what the HTTPS API then serves).
    let mut api = furui::export::api::ApiSink {
        ring: furui::export::api::Ring::new(100_000),
        evicted: None,
    };
    g.bench_function("project_store/api", |b| {
        b.iter(|| {
            let view = furui::export::project::project(&rec, &grant, &key, &domestic);
            api.send(0, &view).expect("store");
        })
    });

    // NATS JetStream with acknowledged publishes, if a server can be run:
    // one at a time (each publish waits for its acknowledgement), and a
    // batch of 1,024 views with up to 256 acknowledgements outstanding
    // (what the exporter does with a queue's batch), side by side.
    let store = tempfile::tempdir().expect("tempdir");
    if let Ok(mut server) = std::process::Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", "14222", "-sd"])
        .arg(store.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        std::thread::sleep(std::time::Duration::from_millis(800));
        let cfg = furui::config::sinks::NatsSink {
            servers: vec!["127.0.0.1:14222".into()],
            stream: "FURUIBENCH".into(),
            subject: "furui.bench.r".into(),
            replicas: 1,
            ack_window: furui::config::sinks::DEFAULT_ACK_WINDOW,
            dedup_window: std::time::Duration::from_secs(120),
            tls: None,
            auth: furui::config::sinks::NatsAuth::None,
        };
        let mut nats = furui::export::nats::NatsJetStream::open(&cfg).expect("nats");
        let mut namer = furui::export::Namer::new("bench");
        let mut named = || {
            let mut v = furui::export::project::project(&rec, &grant, &key, &domestic);
            namer.name(&mut v);
            v
        };
        if nats.send(0, &named()).is_ok() {
            g.bench_function("project_publish_ack/nats", |b| {
                b.iter(|| nats.send(0, &named()).expect("publish"))
            });
            const N: usize = 1024;
            g.throughput(Throughput::Elements(N as u64));
            g.bench_function("project_publish_pipelined_1024/nats", |b| {
                b.iter(|| {
                    let views: Vec<_> = (0..N).map(|_| named()).collect();
                    let batch: Vec<_> = views.iter().map(|v| (0, v)).collect();
                    let r = nats.send_batch(&batch);
                    assert!(r.iter().all(Result::is_ok), "publish");
                })
            });
        }
        let _ = server.kill();
        let _ = server.wait();
    }
    g.finish();
}

/// The retention store: seal and commit (fsynced) a batch of records, as
/// the sink thread does; one batch of 1 and one of 256 (throughput in
/// records). The disk sets this figure; it runs on the build directory's
/// filesystem.
fn store(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let cfg = furui::config::retention::Retention {
        dir: dir.path().join("store"),
        key_dir: dir.path().join("keys"),
        epoch: std::time::Duration::from_secs(3600),
        inbound: std::time::Duration::from_secs(86_400),
        outbound: std::time::Duration::from_secs(86_400),
        transit: std::time::Duration::from_secs(86_400),
    };
    let mut store = furui::store::Store::open(&cfg).expect("store");
    let rec = std::sync::Arc::new(furui::benchkit::sample_record());
    let mut g = c.benchmark_group("store");
    g.sample_size(20);
    for n in [1usize, 256] {
        let batch = vec![rec.clone(); n];
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("seal_commit/{n}"), |b| {
            b.iter(|| store.put(&batch, time::OffsetDateTime::now_utc(), |_| {}).expect("put"))
        });
    }
    g.finish();
}

criterion_group!(benches, bench, encapsulated, loaded, deid, export, store);
criterion_main!(benches);
