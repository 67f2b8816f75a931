//! Verdict rows for encapsulated frames (issue #13, first part): the XDP
//! program classifies on the INNER header, and an encapsulation it does not
//! open, or one nested deeper than the limit, is never captured. Run
//! through BPF_PROG_TEST_RUN, compared with the Rust model. Needs root.

use furui::classify::reference::classify_frame;
use furui::classify::walk::{walk, DecapConfig, Encap, Outcome};
use furui::classify::{Class, PrefixSet, NUM_CLASSES, XDP_DROP};
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

// ---------------------------------------------------------------------
// Every encapsulation furui opens, built to its specification by
// furui::craft::tunnel, through BPF_PROG_TEST_RUN and the Rust model.
// ---------------------------------------------------------------------

use furui::classify::walk::DecapConfig as Decap;
use furui::classify::Action;
use furui::craft::tunnel::{add_vlans as with_vlans, wrap, Wrap};
use std::net::IpAddr;

fn all_wraps() -> Vec<(&'static str, Wrap)> {
    vec![
        (
            "MPLS",
            Wrap::Mpls {
                labels: vec![16, 17, 18],
            },
        ),
        (
            "GRE",
            Wrap::Gre {
                key: None,
                seq: false,
                csum: false,
            },
        ),
        (
            "GRE C+K+S",
            Wrap::Gre {
                key: Some(7),
                seq: true,
                csum: true,
            },
        ),
        ("GRE/Ethernet", Wrap::GreEth { key: Some(3) }),
        ("GRE/MPLS", Wrap::GreMpls { labels: vec![100] }),
        ("ERSPAN I", Wrap::ErspanI),
        ("ERSPAN II", Wrap::ErspanII { session: 666 }),
        (
            "ERSPAN III",
            Wrap::ErspanIII {
                session: 9,
                platform: false,
            },
        ),
        (
            "ERSPAN III+platform",
            Wrap::ErspanIII {
                session: 9,
                platform: true,
            },
        ),
        ("VXLAN", Wrap::Vxlan { vni: 77 }),
        (
            "Geneve",
            Wrap::Geneve {
                vni: 5001,
                opt_words: 3,
            },
        ),
        (
            "GTP-U",
            Wrap::Gtpu {
                teid: 0x1234,
                ext: false,
            },
        ),
        (
            "GTP-U+ext",
            Wrap::Gtpu {
                teid: 0x1234,
                ext: true,
            },
        ),
        ("IP-in-IP", Wrap::IpIp),
        ("MPLS-in-UDP", Wrap::MplsUdp { labels: vec![21, 46] }),
    ]
}

/// The encapsulation each wrap is counted under (its outermost layer).
fn encap_of(w: &Wrap) -> Encap {
    match w {
        Wrap::Mpls { .. } => Encap::Mpls,
        Wrap::Gre { .. } | Wrap::GreEth { .. } | Wrap::GreMpls { .. } => Encap::Gre,
        Wrap::ErspanI | Wrap::ErspanII { .. } | Wrap::ErspanIII { .. } => Encap::Erspan,
        Wrap::Vxlan { .. } => Encap::Vxlan,
        Wrap::Geneve { .. } => Encap::Geneve,
        Wrap::Gtpu { .. } => Encap::Gtpu,
        Wrap::IpIp => Encap::Ipip,
        Wrap::MplsUdp { .. } => Encap::MplsUdp,
    }
}

fn addr(s: &str) -> IpAddr {
    s.parse().unwrap()
}

struct Rig {
    c: Classifier,
    set: PrefixSet,
}

impl Rig {
    fn new() -> Rig {
        let c = Classifier::load(false).expect("load the XDP program (are you root?)");
        let nets: Vec<ipnet::IpNet> = ["192.0.2.0/24", "198.51.100.0/24", "2001:db8::/32"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        c.set_domestic(&nets).unwrap();
        c.set_authorized(&[true; NUM_CLASSES]).unwrap();
        Rig {
            c,
            set: nets.iter().copied().collect(),
        }
    }

    /// The metadata the program writes before a captured frame must say
    /// what the model's walk found, and parsing by it must give what a
    /// full parse gives; an uncaptured frame gets none.
    fn meta_mismatch(&self, frame: &[u8], cfg: &Decap, want: Class) -> Option<String> {
        let (_, meta) = self.c.test_run_meta(frame).unwrap();
        let w = walk(frame, cfg);
        let Some(m) = meta else {
            return want
                .is_cross_border()
                .then(|| "no metadata before a captured frame".into());
        };
        if !want.is_cross_border() {
            return Some(format!("metadata {m:?} before an uncaptured frame"));
        }
        let furui::classify::walk::End::ByAddress { ip_offset, v6 } = w.end else {
            return Some(format!("captured, but the model ended {:?}", w.end));
        };
        let expect = furui::classify::meta::XdpMeta {
            ip_offset: ip_offset as u16,
            v6,
            class: want,
            chain: w.chain,
            tunnel: w.tunnel,
            orig_len: frame.len() as u32,
        };
        if m != expect {
            return Some(format!("metadata {m:?}, model {expect:?}"));
        }
        let by_meta = furui::parse::parse_with_meta(frame, &m, cfg);
        let full = furui::parse::parse_frame(frame, cfg);
        (by_meta != full).then(|| "parsing by the metadata differs from the full parse".into())
    }

    /// Runs `frame` through BPF under `cfg`; returns a failure line if the
    /// class, the action or the per-encapsulation counters differ from
    /// `want` and from the model.
    fn check(&self, desc: &str, frame: &[u8], cfg: &Decap, want: Class) -> Option<String> {
        self.c.set_decap(cfg).unwrap();
        let (s0, e0) = (self.c.stats().unwrap(), self.c.encap_stats().unwrap());
        let ret = self.c.test_run(frame).unwrap();
        let (s1, e1) = (self.c.stats().unwrap(), self.c.encap_stats().unwrap());
        let mut moved = Vec::new();
        for cl in Class::ALL {
            for a in Action::ALL {
                if s1.packets(cl, a) != s0.packets(cl, a) {
                    moved.push((cl, a, s1.packets(cl, a) - s0.packets(cl, a)));
                }
            }
        }
        // Mirror mode, no socket bound: a captured class is counted
        // no_socket, every other class dropped; all return XDP_DROP.
        let action = if want.is_cross_border() {
            Action::NoSocket
        } else {
            Action::Drop
        };
        let model = classify_frame(frame, &self.set, cfg);
        let mut bpf_outcomes = Vec::new();
        for e in Encap::ALL {
            for o in Outcome::ALL {
                for _ in 0..e1.packets(e, o) - e0.packets(e, o) {
                    bpf_outcomes.push((e, o));
                }
            }
        }
        let mut model_outcomes: Vec<_> = walk(frame, cfg).outcomes().collect();
        model_outcomes.sort_by_key(|(e, o)| (*e as u8, *o as u8));
        if let Some(m) = self.meta_mismatch(frame, cfg, want) {
            return Some(format!("{desc}: {m}"));
        }
        if ret != XDP_DROP || moved != vec![(want, action, 1)] || model != want || bpf_outcomes != model_outcomes {
            Some(format!(
                "{desc}: bpf {moved:?} ret {ret} encaps {bpf_outcomes:?}; model {model:?} encaps {model_outcomes:?}; want {want:?}"
            ))
        } else {
            None
        }
    }
}

fn report(failures: Vec<String>, rows: usize) {
    assert!(
        failures.is_empty(),
        "{} of {rows} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

const INNER: [(&str, &str, &str, Class); 8] = [
    ("domestic", "192.0.2.10", "198.51.100.20", Class::Domestic),
    ("inbound", "203.0.113.5", "192.0.2.10", Class::Inbound),
    ("outbound", "198.51.100.20", "8.8.8.8", Class::Outbound),
    ("transit", "203.0.113.5", "8.8.8.8", Class::Transit),
    ("v6 domestic", "2001:db8::1", "2001:db8:1::2", Class::Domestic),
    ("v6 inbound", "2001:4860::8888", "2001:db8::1", Class::Inbound),
    ("v6 outbound", "2001:db8::1", "2a00:1450::1", Class::Outbound),
    ("v6 transit", "2001:4860::8888", "2a00:1450::1", Class::Transit),
];

const OUTER: [(&str, &str, &str); 4] = [
    ("outer domestic", "192.0.2.1", "192.0.2.2"),
    ("outer foreign", "203.0.113.1", "8.8.4.4"),
    ("outer v6 domestic", "2001:db8::a", "2001:db8::b"),
    ("outer v6 foreign", "2001:4860::1", "2a00:1450::2"),
];

#[test]
fn every_encapsulation_is_classified_on_its_inner_header() {
    let rig = Rig::new();
    let cfg = Decap::DEFAULT;
    let mut failures = Vec::new();
    let mut rows = 0;
    for (wname, w) in all_wraps() {
        for (iname, s, d, class) in INNER {
            for (oname, os, od) in OUTER {
                // MPLS over Ethernet has no outer IP header.
                if matches!(w, Wrap::Mpls { .. }) && oname != "outer domestic" {
                    continue;
                }
                for (vname, inner_vlans, outer_vlans) in [
                    ("", &[][..], &[][..]),
                    (", VLAN in and out", &[10u16][..], &[200u16, 300][..]),
                ] {
                    // Only layers that carry Ethernet carry the inner tag.
                    let inner = FrameSpec::new(s, d).vlans(inner_vlans).build();
                    let inner = if inner_vlans.is_empty() || !carries_ethernet(&w) {
                        FrameSpec::new(s, d).build()
                    } else {
                        inner
                    };
                    let f = with_vlans(wrap(&inner, &w, addr(os), addr(od)), outer_vlans);
                    rows += 1;
                    failures.extend(rig.check(&format!("{wname}, {oname}, inner {iname}{vname}"), &f, &cfg, class));
                }
            }
        }
    }
    report(failures, rows);
}

fn carries_ethernet(w: &Wrap) -> bool {
    matches!(
        w,
        Wrap::GreEth { .. }
            | Wrap::ErspanI
            | Wrap::ErspanII { .. }
            | Wrap::ErspanIII { .. }
            | Wrap::Vxlan { .. }
            | Wrap::Geneve { .. }
    )
}

/// `f` cut to `len` bytes, with the outermost IP (and UDP) length fields
/// rewritten to match: a well-formed outer packet whose content ends early.
fn cut(f: &[u8], len: usize) -> Vec<u8> {
    let mut g = f[..len].to_vec();
    let (ethertype, ip) = (u16::from_be_bytes([f[12], f[13]]), 14);
    let l4 = match ethertype {
        0x0800 if len >= ip + 20 => {
            g[ip + 2..ip + 4].copy_from_slice(&((len - ip) as u16).to_be_bytes());
            Some((ip + 20, g[ip + 9]))
        }
        0x86dd if len >= ip + 40 => {
            g[ip + 4..ip + 6].copy_from_slice(&((len - ip - 40) as u16).to_be_bytes());
            Some((ip + 40, g[ip + 6]))
        }
        _ => None,
    };
    if let Some((at, 17)) = l4 {
        if len >= at + 8 {
            g[at + 4..at + 6].copy_from_slice(&((len - at) as u16).to_be_bytes());
        }
    }
    g
}

#[test]
fn a_truncation_at_every_byte_of_every_encapsulation_is_never_captured() {
    let rig = Rig::new();
    let cfg = Decap::DEFAULT;
    let mut failures = Vec::new();
    let mut rows = 0;
    for (wname, w) in all_wraps() {
        let inner = FrameSpec::new("203.0.113.5", "8.8.8.8").build();
        let f = wrap(&inner, &w, addr("192.0.2.1"), addr("192.0.2.2"));
        // From the end of the outer IP header (14 for MPLS over Ethernet)
        // to one byte short of the whole frame.
        let from = if matches!(w, Wrap::Mpls { .. }) { 14 } else { 34 };
        for len in from..f.len() {
            let g = cut(&f, len);
            rows += 1;
            // An outer UDP header cut short hides its port: malformed.
            failures.extend(rig.check(&format!("{wname} cut at {len}"), &g, &cfg, Class::Malformed));
        }
    }
    report(failures, rows);
}

#[test]
fn an_encapsulation_not_opened_is_never_captured_and_outer_only_when_asked() {
    let rig = Rig::new();
    let mut failures = Vec::new();
    let mut rows = 0;
    for (wname, w) in all_wraps() {
        let e = encap_of(&w);
        // Inner domestic, outer foreign: classifying on the outer header
        // would capture domestic traffic.
        let inner = FrameSpec::new("192.0.2.10", "198.51.100.20").build();
        let f = wrap(&inner, &w, addr("203.0.113.1"), addr("8.8.4.4"));
        let mut closed = Decap::DEFAULT;
        closed.set_open(e, false);
        rows += 1;
        failures.extend(rig.check(&format!("{wname} not opened"), &f, &closed, Class::Undecided));
        // Outer classification, asked for: the outer header decides
        // (MPLS over Ethernet has none: still undecided).
        let mut outer = closed;
        outer.set_outer(e, true);
        let want = if e == Encap::Mpls {
            Class::Undecided
        } else {
            Class::Transit
        };
        rows += 1;
        failures.extend(rig.check(&format!("{wname} classified on its outer header"), &f, &outer, want));
        // Nothing opened at all: the same.
        let none = Decap {
            open: 0,
            ..Decap::DEFAULT
        };
        rows += 1;
        failures.extend(rig.check(&format!("{wname}, nothing opened"), &f, &none, Class::Undecided));
        // An unwritten (all-zero) map entry opens nothing.
        let zero = Decap {
            open: 0,
            outer: 0,
            vxlan_port: 0,
            geneve_port: 0,
            gtpu_port: 0,
            mpls_udp_port: 0,
            max_layers: 0,
            mpls_max_labels: 0,
            mpls_pw: Default::default(),
        };
        rows += 1;
        failures.extend(rig.check(&format!("{wname}, unwritten settings"), &f, &zero, Class::Undecided));
    }
    report(failures, rows);
}

#[test]
fn nesting_past_the_limit_is_too_deep_and_never_captured() {
    let rig = Rig::new();
    let mut failures = Vec::new();
    let mut rows = 0;
    let inner = FrameSpec::new("203.0.113.5", "8.8.8.8").build();
    let (o1, o2) = (addr("203.0.113.1"), addr("8.8.4.4"));
    for (wname, w) in all_wraps() {
        // MPLS over Ethernet nests as a deeper stack (below); GRE/MPLS is
        // two layers a wrap (below).
        if matches!(w, Wrap::Mpls { .. } | Wrap::GreMpls { .. }) {
            continue;
        }
        // Three layers of the same kind: within the default limit.
        let mut f = inner.clone();
        for _ in 0..3 {
            f = wrap(&f, &w, o1, o2);
        }
        rows += 1;
        failures.extend(rig.check(&format!("{wname} x3"), &f, &Decap::DEFAULT, Class::Transit));
        // A fourth: too deep. With max_layers = 2, the third already is.
        let f4 = wrap(&f, &w, o1, o2);
        rows += 1;
        failures.extend(rig.check(&format!("{wname} x4"), &f4, &Decap::DEFAULT, Class::TooDeep));
        let two = Decap {
            max_layers: 2,
            ..Decap::DEFAULT
        };
        rows += 1;
        failures.extend(rig.check(&format!("{wname} x3, max_layers 2"), &f, &two, Class::TooDeep));
    }
    let gm = Wrap::GreMpls { labels: vec![5] };
    let f = wrap(&inner, &gm, o1, o2);
    rows += 1;
    failures.extend(rig.check("GRE/MPLS x1 (2 layers)", &f, &Decap::DEFAULT, Class::Transit));
    let f = wrap(&f, &gm, o1, o2);
    rows += 1;
    failures.extend(rig.check("GRE/MPLS x2 (4 layers)", &f, &Decap::DEFAULT, Class::TooDeep));
    // MPLS: a stack deeper than mpls_max_labels.
    let f = wrap(
        &inner,
        &Wrap::Mpls {
            labels: vec![1, 2, 3, 4, 5],
        },
        o1,
        o2,
    );
    rows += 1;
    failures.extend(rig.check("MPLS, 5 labels", &f, &Decap::DEFAULT, Class::TooDeep));
    let eight = Decap {
        mpls_max_labels: 8,
        ..Decap::DEFAULT
    };
    rows += 1;
    failures.extend(rig.check("MPLS, 5 labels, limit 8", &f, &eight, Class::Transit));
    report(failures, rows);
}

#[test]
fn gtpu_signalling_and_mpls_pseudowires() {
    let rig = Rig::new();
    let mut failures = Vec::new();
    let inner = FrameSpec::new("203.0.113.5", "8.8.8.8").build();
    let (o1, o2) = (addr("192.0.2.1"), addr("192.0.2.2"));
    // A GTP-U echo request (type 1): no user packet inside.
    let mut echo = wrap(&inner, &Wrap::Gtpu { teid: 0, ext: false }, o1, o2);
    echo[14 + 20 + 8 + 1] = 1;
    failures.extend(rig.check("GTP-U echo", &echo, &Decap::DEFAULT, Class::NonIp));
    // An Ethernet pseudowire over MPLS: undecided unless configured.
    let mut pw = vec![0u8; 0];
    pw.extend_from_slice(&inner[..12]);
    pw.extend_from_slice(&[0x88, 0x47, 0, 0x01, 0x01, 64]);
    pw.extend_from_slice(&inner);
    failures.extend(rig.check("MPLS pseudowire, none", &pw, &Decap::DEFAULT, Class::Undecided));
    let eth = Decap {
        mpls_pw: furui::classify::walk::MplsPw::Ethernet,
        ..Decap::DEFAULT
    };
    failures.extend(rig.check("MPLS pseudowire, ethernet", &pw, &eth, Class::Transit));
    // With the RFC 4385 control word (first nibble 0).
    let mut cw = pw[..18].to_vec();
    cw.extend_from_slice(&[0, 0, 0, 0]);
    cw.extend_from_slice(&inner);
    let ecw = Decap {
        mpls_pw: furui::classify::walk::MplsPw::EthernetControlWord,
        ..Decap::DEFAULT
    };
    failures.extend(rig.check("MPLS pseudowire with control word", &cw, &ecw, Class::Transit));
    failures.extend(rig.check(
        "MPLS control word, not configured",
        &cw,
        &Decap::DEFAULT,
        Class::Undecided,
    ));
    report(failures, 5);
}

#[test]
fn a_later_fragment_of_a_protocol_that_can_carry_a_tunnel_is_undecided() {
    let rig = Rig::new();
    let mut failures = Vec::new();
    // A later fragment (offset 64 bytes) from 203.0.113.1 to 8.8.4.4:
    // transit by its addresses, but for UDP, GRE and IP-in-IP the header
    // that says what it carries is in the first fragment.
    for (proto, want) in [
        (17u8, Class::Undecided),
        (47, Class::Undecided),
        (4, Class::Undecided),
        (41, Class::Undecided),
        (6, Class::Transit),
        (1, Class::Transit),
        (50, Class::Transit),
    ] {
        let mut f = ipv4_outer([203, 0, 113, 1], [8, 8, 4, 4], proto, &[0u8; 48]);
        f[14 + 6..14 + 8].copy_from_slice(&8u16.to_be_bytes());
        failures.extend(rig.check(&format!("later fragment, protocol {proto}"), &f, &Decap::DEFAULT, want));
    }
    // The first fragment of a UDP datagram to the VXLAN port is opened
    // like any VXLAN packet.
    let inner = FrameSpec::new("192.0.2.10", "198.51.100.20").build();
    let mut first = wrap(&inner, &Wrap::Vxlan { vni: 1 }, addr("203.0.113.1"), addr("8.8.4.4"));
    first[14 + 6] |= 0x20; // MF
    failures.extend(rig.check(
        "first fragment of VXLAN, inner domestic",
        &first,
        &Decap::DEFAULT,
        Class::Domestic,
    ));
    report(failures, 8);
}
