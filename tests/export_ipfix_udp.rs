//! IPFIX over UDP to two independent collectors started by the test in the
//! rig's namespace: nfcapd (nfdump), read back with `nfdump -o json`, and
//! pmacct's nfacctd. The flows they store match the records furui selected
//! — addresses pseudonymized under the epoch key, counts equal — and no raw
//! address or field outside the grant reaches them.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::collectors::*;
use common::export::*;
use common::*;

#[test]
fn ipfix_over_udp_reaches_nfcapd_pseudonymized_with_equal_counts() {
    let rig = Rig::new();
    let keys = rig.path("keys");
    let fields = "\"first_seen_ns\", \"last_seen_ns\", \"protocol\", \"initiator\", \"initiator_port\", \"responder\", \"responder_port\", \"packets_forward\", \"bytes_forward\", \"tcp_flags_forward\"";
    let cfg = udp_export_config(&rig, 4739, fields);
    let nf = Nfcapd::start(&rig, 4739);
    let d = Daemon::start(&rig, &cfg);
    rig.send_line("--count 10 --size 100 --flow 203.0.113.5,192.0.2.10,tcp,4444,80");
    rig.send_line("--count 5 --size 90 --flow 203.0.113.6,192.0.2.11,udp,5353,53");
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
    no_raw_address(&recs, &key, &text);
}

/// The same export, received by pmacct's nfacctd (a second, independent
/// IPFIX implementation), printing its aggregates as JSON.
#[test]
fn ipfix_over_udp_reaches_nfacctd_pseudonymized_with_equal_counts() {
    let rig = Rig::new();
    let keys = rig.path("keys");
    let fields = "\"first_seen_ns\", \"last_seen_ns\", \"protocol\", \"initiator\", \"initiator_port\", \"responder\", \"responder_port\", \"packets_forward\", \"bytes_forward\"";
    let cfg = udp_export_config(&rig, 4740, fields);
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
    rig.send_line("--count 12 --size 100 --flow 203.0.113.5,192.0.2.10,tcp,4444,80");
    rig.send_line("--count 4 --size 90 --flow 203.0.113.6,192.0.2.11,udp,5353,53");
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
    no_raw_address(&recs, &key, &text);
}

/// No record's own address reached the collector's output `text`, as a
/// whole value (a prefix check would fail by chance: Crypto-PAn keeps a
/// prefix far more often than 2^-bits).
fn no_raw_address(recs: &[serde_json::Value], key: &furui::deid::keys::EpochKey, text: &str) {
    for r in recs {
        for field in ["initiator", "responder"] {
            let raw = r[field].as_str().unwrap();
            if key.pan.ip(raw.parse().unwrap()).to_string() != raw {
                assert!(
                    !text.contains(&format!("\"{raw}\"")),
                    "raw address {raw} reached the collector:\n{text}"
                );
            }
        }
    }
}
