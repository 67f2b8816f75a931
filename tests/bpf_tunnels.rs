//! Verdict rows for encapsulated frames (issue #13, first part): the XDP
//! program classifies on the INNER header, and an encapsulation it does not
//! open, or one nested deeper than the limit, is never captured. Run
//! through BPF_PROG_TEST_RUN, compared with the Rust model. Needs root.

use furui::classify::walk::{walk, DecapConfig, Encap, Outcome};
use furui::classify::{classify_frame, Class, PrefixSet, NUM_CLASSES, XDP_DROP};
use furui::craft::FrameSpec;
use furui::xdp::Classifier;

const DOMESTIC: &[&str] = &["192.0.2.0/24", "198.51.100.0/24"];

fn ipv4_outer(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    let tot = (20 + payload.len()) as u16;
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&tot.to_be_bytes());
    f.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0, 0]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    f.extend_from_slice(payload);
    f
}

fn udp(dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&40000u16.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

fn vxlan(inner_eth: &[u8], vni: u32) -> Vec<u8> {
    let mut v = vec![0x08, 0, 0, 0];
    v.extend_from_slice(&(vni << 8).to_be_bytes());
    v.extend_from_slice(inner_eth);
    udp(4789, &v)
}

fn inner(src: &str, dst: &str) -> Vec<u8> {
    FrameSpec::new(src, dst).build()
}

const OUT_DOM: ([u8; 4], [u8; 4]) = ([192, 0, 2, 1], [192, 0, 2, 2]);
const OUT_FOR: ([u8; 4], [u8; 4]) = ([203, 0, 113, 1], [8, 8, 4, 4]);

#[test]
fn domestic_inner_traffic_never_leaves_the_kernel_through_a_tunnel() {
    let c = Classifier::load(false).expect("load the XDP program (are you root?)");
    let nets: Vec<ipnet::IpNet> = DOMESTIC.iter().map(|s| s.parse().unwrap()).collect();
    c.set_domestic(&nets).unwrap();
    c.set_authorized(&[true; NUM_CLASSES]).unwrap();
    let set: PrefixSet = nets.iter().copied().collect();
    let cfg = DecapConfig::default();
    let mut rows: Vec<(String, Vec<u8>, Class)> = Vec::new();
    for (oname, (os, od)) in [("outer domestic", OUT_DOM), ("outer foreign", OUT_FOR)] {
        for (iname, s, d, class) in [
            ("domestic", "192.0.2.10", "198.51.100.20", Class::Domestic),
            ("inbound", "203.0.113.5", "192.0.2.10", Class::Inbound),
            ("outbound", "198.51.100.20", "8.8.8.8", Class::Outbound),
            ("transit", "203.0.113.5", "8.8.8.8", Class::Transit),
        ] {
            rows.push((
                format!("VXLAN, {oname}, inner {iname}"),
                ipv4_outer(os, od, 17, &vxlan(&inner(s, d), 77)),
                class,
            ));
            let ip = &inner(s, d)[14..];
            rows.push((
                format!("IPIP, {oname}, inner {iname}"),
                ipv4_outer(os, od, 4, ip),
                class,
            ));
            let mut gre = vec![0, 0, 0x08, 0x00];
            gre.extend_from_slice(ip);
            rows.push((
                format!("GRE, {oname}, inner {iname}"),
                ipv4_outer(os, od, 47, &gre),
                class,
            ));
        }
    }
    // Four VXLAN layers: one more than the default limit of 3.
    let mut deep = inner("203.0.113.5", "8.8.8.8");
    for _ in 0..4 {
        deep = ipv4_outer(OUT_FOR.0, OUT_FOR.1, 17, &vxlan(&deep, 1));
    }
    rows.push(("VXLAN x4: too deep".into(), deep, Class::TooDeep));
    // A truncated VXLAN header.
    let mut trunc = ipv4_outer(OUT_FOR.0, OUT_FOR.1, 17, &udp(4789, &[0x08, 0, 0]));
    trunc.truncate(trunc.len());
    rows.push(("VXLAN header truncated".into(), trunc, Class::Malformed));
    let mut failures = Vec::new();
    for (desc, f, want) in &rows {
        let before = c.stats().unwrap();
        let ret = c.test_run(f).unwrap();
        let after = c.stats().unwrap();
        let model = classify_frame(f, &set, &cfg);
        let moved = Class::ALL
            .into_iter()
            .find(|cl| after.class_packets(*cl) != before.class_packets(*cl));
        // No socket is bound in a test run: a captured class shows as the
        // fallback verdict with action no_socket; the others are dropped.
        if ret != XDP_DROP || moved != Some(*want) || model != *want {
            failures.push(format!("{desc}: bpf {moved:?}, model {model:?}, want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn an_encapsulation_not_opened_is_undecided_and_counted() {
    let c = Classifier::load(false).expect("load the XDP program");
    let nets: Vec<ipnet::IpNet> = DOMESTIC.iter().map(|s| s.parse().unwrap()).collect();
    c.set_domestic(&nets).unwrap();
    c.set_authorized(&[true; NUM_CLASSES]).unwrap();
    let mut cfg = DecapConfig::default();
    cfg.set_open(Encap::Vxlan, false);
    c.set_decap(&cfg).unwrap();
    let f = ipv4_outer(
        OUT_FOR.0,
        OUT_FOR.1,
        17,
        &vxlan(&inner("192.0.2.10", "198.51.100.20"), 5),
    );
    let before = c.encap_stats().unwrap();
    c.test_run(&f).unwrap();
    let after = c.encap_stats().unwrap();
    let set: PrefixSet = nets.iter().copied().collect();
    assert_eq!(classify_frame(&f, &set, &cfg), Class::Undecided);
    assert_eq!(walk(&f, &cfg).stop, Some((Encap::Vxlan, Outcome::NotOpened)));
    assert_eq!(
        after.packets(Encap::Vxlan, Outcome::NotOpened) - before.packets(Encap::Vxlan, Outcome::NotOpened),
        1
    );
    let s = c.stats().unwrap();
    assert_eq!(s.class_packets(Class::Undecided), 1);
    // Opened again: the same frame is judged on its domestic inner header.
    c.set_decap(&DecapConfig::default()).unwrap();
    c.test_run(&f).unwrap();
    let s2 = c.stats().unwrap();
    assert_eq!(s2.class_packets(Class::Domestic), 1);
    assert_eq!(c.encap_stats().unwrap().packets(Encap::Vxlan, Outcome::Opened), 1);
}
