//! Differential property test: the Rust reference classifier
//! (`classify::classify_frame` + `classify::verdict`) and the BPF program
//! agree on random packets over random domestic prefix sets and random
//! authorizations. Needs root (CAP_BPF).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::prelude::*;

use furui::classify::walk::DecapConfig;
use furui::classify::{classify_frame, verdict, Action, Class, PrefixSet};
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
