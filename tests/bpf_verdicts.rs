//! Verdict tables for the XDP classifier (katran-fixture style), run
//! through BPF_PROG_TEST_RUN: no NIC involved. Each row names a packet, the
//! verdict it must get, and the one (class, action) counter that must move.
//! Needs root (CAP_BPF).

use furui::classify::{Action, Class, XDP_DROP, XDP_PASS};
use furui::craft::{self, FrameSpec, Transport};
use furui::xdp::{ClassStats, Classifier};

const DOMESTIC: &[&str] = &["192.0.2.0/24", "198.51.100.0/24", "2001:db8::/32"];
const DOM_A: &str = "192.0.2.10";
const DOM_B: &str = "198.51.100.20";
const FOR_A: &str = "203.0.113.5";
const FOR_B: &str = "8.8.8.8";
const DOM6: &str = "2001:db8::1";
const FOR6: &str = "2001:4860::8888";
const FOR6_B: &str = "2a00:1450::1";

struct Row {
    desc: String,
    frame: Vec<u8>,
    expect_ret: u32,
    expect: (Class, Action),
}

fn classifier(inline: bool, authorized: &[Class]) -> Classifier {
    let c = Classifier::load(inline).expect("load the XDP program (are you root?)");
    let nets: Vec<ipnet::IpNet> = DOMESTIC.iter().map(|s| s.parse().unwrap()).collect();
    c.set_domestic(&nets).unwrap();
    let mut a = [false; furui::classify::NUM_CLASSES];
    for cl in authorized {
        a[*cl as usize] = true;
    }
    c.set_authorized(&a).unwrap();
    c
}

fn delta(before: &ClassStats, after: &ClassStats) -> Vec<(Class, Action, u64, u64)> {
    let mut out = Vec::new();
    for c in Class::ALL {
        for a in Action::ALL {
            let p = after.packets(c, a) - before.packets(c, a);
            let b = after.bytes[c as usize][a as usize] - before.bytes[c as usize][a as usize];
            if p != 0 || b != 0 {
                out.push((c, a, p, b));
            }
        }
    }
    out
}

fn run_table(c: &Classifier, rows: &[Row]) {
    let mut failures = Vec::new();
    for r in rows {
        let before = c.stats().unwrap();
        let ret = c.test_run(&r.frame).unwrap();
        let after = c.stats().unwrap();
        let d = delta(&before, &after);
        let want = vec![(r.expect.0, r.expect.1, 1, r.frame.len() as u64)];
        if ret != r.expect_ret || d != want {
            failures.push(format!(
                "{}: got ret {ret}, counters {d:?}; want ret {}, counters {want:?}",
                r.desc, r.expect_ret
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

fn udp(src: &str, dst: &str) -> Vec<u8> {
    FrameSpec::new(src, dst).build()
}

fn row(desc: &str, frame: Vec<u8>, ret: u32, class: Class, action: Action) -> Row {
    Row {
        desc: desc.to_string(),
        frame,
        expect_ret: ret,
        expect: (class, action),
    }
}

/// One packet per class, IPv4 and IPv6.
fn class_packets() -> Vec<(&'static str, Vec<u8>, Class)> {
    vec![
        ("v4 domestic", udp(DOM_A, DOM_B), Class::Domestic),
        ("v4 inbound", udp(FOR_A, DOM_A), Class::Inbound),
        ("v4 outbound", udp(DOM_B, FOR_B), Class::Outbound),
        ("v4 transit", udp(FOR_A, FOR_B), Class::Transit),
        ("v6 domestic", udp(DOM6, "2001:db8:ffff::2"), Class::Domestic),
        ("v6 inbound", udp(FOR6, DOM6), Class::Inbound),
        ("v6 outbound", udp(DOM6, FOR6), Class::Outbound),
        ("v6 transit", udp(FOR6, FOR6_B), Class::Transit),
    ]
}

#[test]
fn every_class_times_authorized_and_unauthorized() {
    // Authorizing every class (domestic included) must still capture only
    // the three capture classes; none is bound to a socket in a test run,
    // so a captured packet shows as no_socket with the fallback verdict.
    for (inline, fb_ret, fb_action) in [(false, XDP_DROP, Action::Drop), (true, XDP_PASS, Action::Pass)] {
        let all = classifier(inline, &Class::ALL);
        let none = classifier(inline, &[]);
        let mut rows_all = Vec::new();
        let mut rows_none = Vec::new();
        for (d, f, class) in class_packets() {
            let captured = class.measure().is_some();
            let act = if captured { Action::NoSocket } else { fb_action };
            rows_all.push(row(
                &format!("{d}, all authorized, inline={inline}"),
                f.clone(),
                fb_ret,
                class,
                act,
            ));
            rows_none.push(row(
                &format!("{d}, none authorized, inline={inline}"),
                f,
                fb_ret,
                class,
                fb_action,
            ));
        }
        run_table(&all, &rows_all);
        run_table(&none, &rows_none);
    }
}

#[test]
fn one_measure_authorized_captures_only_its_class() {
    for only in [Class::Inbound, Class::Outbound, Class::Transit] {
        let c = classifier(false, &[only]);
        let rows: Vec<Row> = class_packets()
            .into_iter()
            .map(|(d, f, class)| {
                let act = if class == only { Action::NoSocket } else { Action::Drop };
                row(
                    &format!("{d}, only {} authorized", only.name()),
                    f,
                    XDP_DROP,
                    class,
                    act,
                )
            })
            .collect();
        run_table(&c, &rows);
    }
}

#[test]
fn vlan_qinq_non_ip_and_malformed_rows() {
    let c = classifier(false, &[Class::Inbound, Class::Outbound, Class::Transit]);
    let mut truncated_vlan = FrameSpec::new(FOR_A, FOR_B).vlans(&[10]).build();
    truncated_vlan.truncate(16);
    let mut three_tags = FrameSpec::new(FOR_A, FOR_B).vlans(&[10, 20]).build();
    // Turn the inner tag's ethertype into a third VLAN TPID.
    three_tags[20] = 0x81;
    three_tags[21] = 0x00;
    let mut ipv4_total_too_long = udp(FOR_A, FOR_B);
    ipv4_total_too_long[17] += 1;
    let mut ipv4_total_below_ihl = udp(FOR_A, FOR_B);
    ipv4_total_below_ihl[16] = 0;
    ipv4_total_below_ihl[17] = 19;
    let mut ipv4_ihl_beyond = udp(FOR_A, FOR_B);
    ipv4_ihl_beyond[14] = 0x4f;
    let mut ipv4_wrong_version = udp(FOR_A, FOR_B);
    ipv4_wrong_version[14] = 0x65;
    let mut ipv4_truncated = udp(FOR_A, FOR_B);
    ipv4_truncated.truncate(14 + 19);
    let mut ipv6_truncated = udp(FOR6, FOR6_B);
    ipv6_truncated.truncate(14 + 39);
    let mut ipv6_bad_version = udp(FOR6, FOR6_B);
    ipv6_bad_version[14] = 0x40;
    let mut ipv6_payload_too_long = udp(FOR6, FOR6_B);
    ipv6_payload_too_long[19] += 1;
    let mut ipv4_padding = udp(FOR_A, DOM_A);
    ipv4_padding.extend_from_slice(&[0u8; 12]);

    let rows = vec![
        row(
            "802.1Q transit",
            FrameSpec::new(FOR_A, FOR_B).vlans(&[10]).build(),
            XDP_DROP,
            Class::Transit,
            Action::NoSocket,
        ),
        row(
            "QinQ inbound",
            FrameSpec::new(FOR_A, DOM_A).vlans(&[200, 2001]).build(),
            XDP_DROP,
            Class::Inbound,
            Action::NoSocket,
        ),
        row(
            "QinQ domestic",
            FrameSpec::new(DOM_A, DOM_B).vlans(&[200, 2001]).build(),
            XDP_DROP,
            Class::Domestic,
            Action::Drop,
        ),
        row(
            "QinQ IPv6 outbound",
            FrameSpec::new(DOM6, FOR6).vlans(&[5, 6]).build(),
            XDP_DROP,
            Class::Outbound,
            Action::NoSocket,
        ),
        row(
            "three VLAN tags: not looked into",
            three_tags,
            XDP_DROP,
            Class::NonIp,
            Action::Drop,
        ),
        row(
            "VLAN tag truncated",
            truncated_vlan,
            XDP_DROP,
            Class::Malformed,
            Action::Drop,
        ),
        row("ARP", craft::arp_frame(), XDP_DROP, Class::NonIp, Action::Drop),
        // BPF_PROG_TEST_RUN (like every NIC) refuses frames under 14 bytes,
        // so the shortest frame here is a bare Ethernet header.
        row(
            "bare Ethernet header, IPv4 ethertype",
            udp(FOR_A, FOR_B)[..14].to_vec(),
            XDP_DROP,
            Class::Malformed,
            Action::Drop,
        ),
        row(
            "bare Ethernet header, IPv6 ethertype",
            udp(FOR6, FOR6_B)[..14].to_vec(),
            XDP_DROP,
            Class::Malformed,
            Action::Drop,
        ),
        row(
            "IPv4 IHL 4",
            craft::malformed_ipv4_frame(),
            XDP_DROP,
            Class::Malformed,
            Action::Drop,
        ),
        row(
            "IPv4 IHL beyond frame",
            ipv4_ihl_beyond,
            XDP_DROP,
            Class::Malformed,
            Action::Drop,
        ),
        row(
            "IPv4 total length beyond frame",
            ipv4_total_too_long,
            XDP_DROP,
            Class::Malformed,
            Action::Drop,
        ),
        row(
            "IPv4 total length below header",
            ipv4_total_below_ihl,
            XDP_DROP,
            Class::Malformed,
            Action::Drop,
        ),
        row(
            "IPv4 version 6 in an IPv4 ethertype",
            ipv4_wrong_version,
            XDP_DROP,
            Class::Malformed,
            Action::Drop,
        ),
        row(
            "IPv4 header truncated",
            ipv4_truncated,
            XDP_DROP,
            Class::Malformed,
            Action::Drop,
        ),
        row(
            "IPv4 with link padding is fine",
            ipv4_padding,
            XDP_DROP,
            Class::Inbound,
            Action::NoSocket,
        ),
        row(
            "IPv6 header truncated",
            ipv6_truncated,
            XDP_DROP,
            Class::Malformed,
            Action::Drop,
        ),
        row(
            "IPv6 bad version",
            ipv6_bad_version,
            XDP_DROP,
            Class::Malformed,
            Action::Drop,
        ),
        row(
            "IPv6 payload length beyond frame",
            ipv6_payload_too_long,
            XDP_DROP,
            Class::Malformed,
            Action::Drop,
        ),
        row(
            "IPv6 TCP transit",
            FrameSpec::new(FOR6, FOR6_B)
                .transport(Transport::Tcp {
                    src_port: 1,
                    dst_port: 2,
                    flags: 2,
                })
                .build(),
            XDP_DROP,
            Class::Transit,
            Action::NoSocket,
        ),
    ];
    run_table(&c, &rows);
}

#[test]
fn domestic_prefixes_load_fast() {
    // Thousands of prefixes must load in well under a second. This asserts
    // the count landed; the time is reported, not asserted (shared CI).
    let c = Classifier::load(false).unwrap();
    let nets: Vec<ipnet::IpNet> = (0..5000u32)
        .map(|i| ipnet::IpNet::V4(ipnet::Ipv4Net::new(std::net::Ipv4Addr::from(0x0a00_0000 | (i << 8)), 24).unwrap()))
        .collect();
    let t = std::time::Instant::now();
    c.set_domestic(&nets).unwrap();
    eprintln!("loaded {} prefixes in {:?}", nets.len(), t.elapsed());
    c.set_authorized(&[false; furui::classify::NUM_CLASSES]).unwrap();
    let before = c.stats().unwrap();
    c.test_run(&udp("10.0.19.1", "10.18.3.1")).unwrap();
    let after = c.stats().unwrap();
    assert_eq!(
        after.packets(Class::Domestic, Action::Drop) - before.packets(Class::Domestic, Action::Drop),
        1
    );
}

/// The constants Rust takes from `ebpf/furui_consts.h` (classify::abi)
/// size the maps the kernel actually loaded: every class × action has a
/// counter slot, every queue the config accepts an XSKMAP entry, every
/// encapsulation × outcome a counter, and the keys and values are the
/// sizes user space writes.
#[test]
fn the_loaded_maps_agree_with_the_rust_constants() {
    use furui::classify::walk::{NUM_ENCAPS, NUM_OUTCOMES};
    use furui::classify::{abi, NUM_ACTIONS, NUM_CLASSES};
    let c = classifier(false, &[]);
    let shapes = c.map_shapes();
    let shape = |name: &str| {
        *shapes
            .iter()
            .find(|s| s.0 == name)
            .unwrap_or_else(|| panic!("no map {name}"))
    };
    let n = |x: usize| u32::try_from(x).unwrap();
    assert_eq!(shape("class_authorized"), ("class_authorized", 4, 4, n(NUM_CLASSES)));
    assert_eq!(
        shape("class_stats"),
        ("class_stats", 4, 16, n(NUM_CLASSES * NUM_ACTIONS))
    );
    assert_eq!(
        shape("encap_stats"),
        ("encap_stats", 4, 8, n(NUM_ENCAPS * NUM_OUTCOMES))
    );
    assert_eq!(shape("xsks"), ("xsks", 4, 4, furui::config::MAX_QUEUE_ID + 1));
    assert_eq!(shape("domestic_v4"), ("domestic_v4", 8, 1, abi::FURUI_MAX_PREFIXES_V4));
    assert_eq!(shape("domestic_v6"), ("domestic_v6", 20, 1, abi::FURUI_MAX_PREFIXES_V6));
    assert_eq!(shape("decap_cfg"), ("decap_cfg", 4, 20, 1));
    // The enums are the ABI's values, in the ABI's order.
    for (i, class) in Class::ALL.iter().enumerate() {
        assert_eq!(*class as usize, i, "{}", class.name());
    }
    for (i, a) in Action::ALL.iter().enumerate() {
        assert_eq!(*a as usize, i, "{}", a.name());
    }
    for (i, e) in furui::classify::walk::Encap::ALL.iter().enumerate() {
        assert_eq!(*e as usize, i, "{}", e.name());
    }
    assert_eq!(furui::classify::meta::META_MAGIC, u32::from_be_bytes(*b"fur1"));
}
