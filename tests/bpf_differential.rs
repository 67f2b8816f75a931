//! Differential property test: the Rust reference classifier
//! (`classify::reference::{classify_frame, verdict}`) and the BPF program
//! agree on random packets over random domestic prefix sets and random
//! authorizations. Needs root (CAP_BPF).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::prelude::*;

use furui::classify::reference::{classify_frame, verdict};
use furui::classify::walk::DecapConfig;
use furui::classify::{Action, Class, PrefixSet};
use furui::craft::{FrameSpec, Transport};
use furui::xdp::Classifier;

fn prefix_v4() -> impl Strategy<Value = IpNet> {
    // Few distinct first octets so random addresses hit prefixes often.
    (
        prop::sample::select(vec![10u8, 192, 203, 0]),
        any::<[u8; 3]>(),
        0u8..=32,
    )
        .prop_map(|(a, rest, len)| {
            IpNet::V4(
                Ipv4Net::new(Ipv4Addr::new(a, rest[0], rest[1], rest[2]), len)
                    .unwrap()
                    .trunc(),
            )
        })
}

fn prefix_v6() -> impl Strategy<Value = IpNet> {
    (
        prop::sample::select(vec![0x2001u16, 0x2a00, 0xfe80]),
        any::<u16>(),
        any::<u64>(),
        0u8..=128,
    )
        .prop_map(|(a, b, rest, len)| {
            let addr = Ipv6Addr::from((u128::from(a) << 112) | (u128::from(b) << 96) | u128::from(rest));
            IpNet::V6(Ipv6Net::new(addr, len).unwrap().trunc())
        })
}

fn addr_v4() -> impl Strategy<Value = IpAddr> {
    (prop::sample::select(vec![10u8, 192, 203, 8]), any::<[u8; 3]>())
        .prop_map(|(a, r)| IpAddr::V4(Ipv4Addr::new(a, r[0], r[1], r[2])))
}

fn addr_v6() -> impl Strategy<Value = IpAddr> {
    (
        prop::sample::select(vec![0x2001u16, 0x2a00, 0xfe80]),
        any::<u16>(),
        any::<u64>(),
    )
        .prop_map(|(a, b, rest)| {
            IpAddr::V6(Ipv6Addr::from(
                (u128::from(a) << 112) | (u128::from(b) << 96) | u128::from(rest),
            ))
        })
}

/// A well-formed frame, then optionally damaged: truncated, or a header
/// byte overwritten. Never under 14 bytes (test_run refuses those).
fn frame() -> impl Strategy<Value = Vec<u8>> {
    let addrs = prop_oneof![(addr_v4(), addr_v4()), (addr_v6(), addr_v6())];
    (
        addrs,
        prop::collection::vec(any::<u16>(), 0..=2),
        0u8..3,
        0usize..80,
        prop::option::of((0usize..70, any::<u8>())),
        prop::option::of(14usize..120),
        prop::option::of(0usize..2),
    )
        .prop_map(|((s, d), vlans, proto, pad, poke, trunc, extra_tag)| {
            let t = match proto {
                0 => Transport::Udp {
                    src_port: 1,
                    dst_port: 2,
                },
                1 => Transport::Tcp {
                    src_port: 3,
                    dst_port: 4,
                    flags: 2,
                },
                _ => Transport::Icmp { icmp_type: 8, code: 0 },
            };
            let mut f = FrameSpec::from_addrs(s, d)
                .vlans(&vlans)
                .transport(t)
                .payload(&vec![0xab; pad])
                .build();
            if let Some(which) = extra_tag {
                // Overwrite the ethertype with a VLAN TPID: deeper tags.
                let at = 12 + 4 * vlans.len();
                let tpid: u16 = if which == 0 { 0x8100 } else { 0x88a8 };
                f[at..at + 2].copy_from_slice(&tpid.to_be_bytes());
            }
            if let Some((at, v)) = poke {
                if at < f.len() {
                    f[at] = v;
                }
            }
            if let Some(n) = trunc {
                f.truncate(n.max(14));
            }
            f
        })
}

fn class_action_of(before: &furui::xdp::ClassStats, after: &furui::xdp::ClassStats) -> Vec<(Class, Action)> {
    let mut out = Vec::new();
    for c in Class::ALL {
        for a in Action::ALL {
            for _ in 0..(after.packets(c, a) - before.packets(c, a)) {
                out.push((c, a));
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn rust_model_and_bpf_program_agree(
        nets in prop::collection::vec(prop_oneof![prefix_v4(), prefix_v6()], 0..24),
        frames in prop::collection::vec(frame(), 1..40),
        auth_bits in any::<u8>(),
        inline in any::<bool>(),
    ) {
        let c = Classifier::load(inline).expect("load the XDP program (are you root?)");
        c.set_domestic(&nets).unwrap();
        let mut auth = [false; furui::classify::NUM_CLASSES];
        for (i, a) in auth.iter_mut().enumerate() {
            *a = auth_bits & (1 << i) != 0;
        }
        c.set_authorized(&auth).unwrap();
        let set: PrefixSet = nets.iter().copied().collect();
        for f in &frames {
            let before = c.stats().unwrap();
            let ret = c.test_run(f).unwrap();
            let after = c.stats().unwrap();
            let class = classify_frame(f, &set, &DecapConfig::default());
            let (action, want_ret) = verdict(class, &auth, inline, false);
            prop_assert_eq!(ret, want_ret, "verdict differs for class {:?}", class);
            prop_assert_eq!(class_action_of(&before, &after), vec![(class, action)]);
        }
    }
}

// Random nested encapsulations under random [decap] settings: the class,
// the action and every per-encapsulation outcome counter agree.

use furui::classify::walk::{walk, Encap, MplsPw, Outcome};
use furui::craft::tunnel::{wrap, Wrap};

fn a_wrap() -> impl Strategy<Value = Wrap> {
    let labels = || prop::collection::vec(0u32..0xfffff, 1..6);
    prop_oneof![
        labels().prop_map(|labels| Wrap::Mpls { labels }),
        (prop::option::of(any::<u32>()), any::<bool>(), any::<bool>()).prop_map(|(key, seq, csum)| Wrap::Gre {
            key,
            seq,
            csum
        }),
        prop::option::of(any::<u32>()).prop_map(|key| Wrap::GreEth { key }),
        labels().prop_map(|labels| Wrap::GreMpls { labels }),
        Just(Wrap::ErspanI),
        any::<u16>().prop_map(|session| Wrap::ErspanII { session }),
        (any::<u16>(), any::<bool>()).prop_map(|(session, platform)| Wrap::ErspanIII { session, platform }),
        (0u32..1 << 24).prop_map(|vni| Wrap::Vxlan { vni }),
        (0u32..1 << 24, 0u8..8).prop_map(|(vni, opt_words)| Wrap::Geneve { vni, opt_words }),
        (any::<u32>(), any::<bool>()).prop_map(|(teid, ext)| Wrap::Gtpu { teid, ext }),
        Just(Wrap::IpIp),
        labels().prop_map(|labels| Wrap::MplsUdp { labels }),
    ]
}

fn decap() -> impl Strategy<Value = DecapConfig> {
    (any::<u8>(), any::<u8>(), 1u8..=4, 1u8..=8, 0u8..3, any::<bool>()).prop_map(
        |(open, outer, max_layers, mpls_max_labels, pw, odd_port)| DecapConfig {
            open: u32::from(open),
            outer: u32::from(outer & !open),
            // Sometimes VXLAN on another port: its frames are then plain UDP.
            vxlan_port: if odd_port { 8472 } else { 4789 },
            max_layers,
            mpls_max_labels,
            mpls_pw: match pw {
                0 => MplsPw::None,
                1 => MplsPw::Ethernet,
                _ => MplsPw::EthernetControlWord,
            },
            ..DecapConfig::DEFAULT
        },
    )
}

/// An inner frame wrapped in 0-4 random layers between random outer
/// endpoints, then optionally damaged.
fn nested_frame() -> impl Strategy<Value = Vec<u8>> {
    let addrs = || prop_oneof![(addr_v4(), addr_v4()), (addr_v6(), addr_v6())];
    (
        addrs(),
        prop::collection::vec((a_wrap(), addrs()), 0..=4),
        prop::option::of((0usize..200, any::<u8>())),
        prop::option::of(14usize..300),
    )
        .prop_map(|((s, d), layers, poke, trunc)| {
            let mut f = FrameSpec::from_addrs(s, d).payload(b"inner").build();
            for (w, (os, od)) in layers {
                f = wrap(&f, &w, os, od);
            }
            if let Some((at, v)) = poke {
                if at < f.len() {
                    f[at] = v;
                }
            }
            if let Some(n) = trunc {
                f.truncate(n.max(14));
            }
            f
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn rust_model_and_bpf_program_agree_on_nested_encapsulations(
        nets in prop::collection::vec(prop_oneof![prefix_v4(), prefix_v6()], 0..24),
        frames in prop::collection::vec(nested_frame(), 1..40),
        cfg in decap(),
        auth_bits in any::<u8>(),
    ) {
        let c = Classifier::load(false).expect("load the XDP program (are you root?)");
        c.set_domestic(&nets).unwrap();
        c.set_decap(&cfg).unwrap();
        let mut auth = [false; furui::classify::NUM_CLASSES];
        for (i, a) in auth.iter_mut().enumerate() {
            *a = auth_bits & (1 << i) != 0;
        }
        c.set_authorized(&auth).unwrap();
        let set: PrefixSet = nets.iter().copied().collect();
        for f in &frames {
            let (before, e0) = (c.stats().unwrap(), c.encap_stats().unwrap());
            let ret = c.test_run(f).unwrap();
            let (after, e1) = (c.stats().unwrap(), c.encap_stats().unwrap());
            let class = classify_frame(f, &set, &cfg);
            let (action, want_ret) = verdict(class, &auth, false, false);
            prop_assert_eq!(ret, want_ret, "verdict differs for class {:?}", class);
            prop_assert_eq!(class_action_of(&before, &after), vec![(class, action)]);
            let mut bpf = Vec::new();
            for e in Encap::ALL {
                for o in Outcome::ALL {
                    for _ in 0..e1.packets(e, o) - e0.packets(e, o) {
                        bpf.push((e, o));
                    }
                }
            }
            let mut model: Vec<_> = walk(f, &cfg).outcomes().collect();
            model.sort_by_key(|(e, o)| (*e as u8, *o as u8));
            prop_assert_eq!(bpf, model);
        }
    }
}
