//! The fixed "loaded" workload of `make bench`: a ruleset with 100,000 CIDR
//! indicators, 1,000 sealed payload patterns and 1,000 JA4 values, a config
//! that uses it, and a frame mix. The criterion bench and the callgrind
//! replay (`furui-gen --bench-fixture`) both use it, so their figures are
//! for the same work. Deterministic: the same files every time. Not part
//! of the capture data path.

use std::fmt::Write as _;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use crate::craft::{FrameSpec, Transport};

pub const CIDRS: usize = 100_000;
pub const PATTERNS: usize = 1_000;
pub const JA4S: usize = 1_000;

/// A small deterministic generator (xorshift64*), enough for fixtures.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Where a remote address of the mix falls: inside the indicator set.
pub const LISTED_REMOTE: &str = "203.0.113.77";
/// Outside every indicator prefix (198.18.0.0/15 is never generated).
pub const UNLISTED_REMOTE: &str = "198.18.7.7";
pub const LOCAL: &str = "192.0.2.10";

fn cidr_file() -> String {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut s = String::with_capacity(CIDRS * 20);
    s.push_str("203.0.113.0/24\n");
    let mut n = 1;
    while n < CIDRS {
        let r = rng.next();
        if n % 10 == 0 {
            let len = 32 + (r % 97) as u8; // /32../128
            let a = Ipv6Addr::from((u128::from(r) << 64) | u128::from(rng.next()));
            let _ = writeln!(s, "{a}/{len}");
        } else {
            let len = 16 + (r % 17) as u8; // /16../32
            let a = Ipv4Addr::from((r >> 32) as u32);
            // Keep clear of the ranges the mix uses as "unlisted" and local.
            if matches!(a.octets(), [198, 18 | 19, ..] | [192, 0, 2, _]) {
                continue;
            }
            let _ = writeln!(s, "{a}/{len}");
        }
        n += 1;
    }
    s
}

/// The sealed patterns: 8 bytes each, so that a 64-byte TCP frame can
/// carry one.
fn patterns() -> Vec<String> {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    (0..PATTERNS)
        .map(|i| format!("k{i:03x}{:04x}", rng.next() as u16))
        .collect()
}

fn rules_file() -> String {
    let mut rng = Rng(0xfedc_ba98_7654_3210);
    let mut s = String::from("version = \"bench-loaded\"\n\n");
    s.push_str("[[rule]]\nid = \"ioc-cidr\"\nmeasures = [\"inbound\", \"outbound\", \"transit\"]\nremote_files = [\"cidrs.txt\"]\n\n");
    s.push_str("[[rule]]\nid = \"commands\"\nmeasures = [\"inbound\", \"outbound\", \"transit\"]\npayload = [\n");
    for p in patterns() {
        let _ = writeln!(s, "  {{ text = \"{p}\" }},");
    }
    s.push_str("]\n\n[[rule]]\nid = \"clients\"\nmeasures = [\"inbound\", \"outbound\", \"transit\"]\nja4 = [\n");
    for _ in 0..JA4S {
        let _ = writeln!(
            s,
            "  \"t13d{:02}{:02}h2_{:012x}_{:012x}\",",
            rng.next() % 99,
            rng.next() % 99,
            rng.next() >> 16,
            rng.next() >> 16
        );
    }
    s.push_str("]\n");
    s
}

/// Writes `furui.toml`, `rules/loaded.toml` and `rules/cidrs.txt` into `dir`.
pub fn write_fixture(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir.join("rules"))?;
    std::fs::write(dir.join("rules/cidrs.txt"), cidr_file())?;
    std::fs::write(dir.join("rules/loaded.toml"), rules_file())?;
    std::fs::write(
        dir.join("furui.toml"),
        "[capture]\ninterface = \"bench0\"\n\n[domestic]\nprefixes = [\"192.0.2.0/24\"]\n\n[selection]\nrules_dir = \"rules\"\n\n[records]\npath = \"records.jsonl\"\n",
    )
}

/// The frame mix, each `size` bytes: a TCP packet from a listed remote
/// (selected by CIDR), a UDP packet from an unlisted one (not selected), a
/// TCP packet from an unlisted remote whose payload holds one of the
/// sealed patterns (selected by signature), and plain TCP from an unlisted
/// remote (not selected; scanned for patterns, looked up, erased).
pub fn frame_mix(size: usize) -> Vec<Vec<u8>> {
    let tcp = |sport| Transport::Tcp {
        src_port: sport,
        dst_port: 443,
        flags: 0x18,
    };
    let ip = |s: &str| -> IpAddr { s.parse().expect("literal") };
    vec![
        FrameSpec::from_addrs(ip(LISTED_REMOTE), ip(LOCAL))
            .transport(tcp(40001))
            .frame_len(size)
            .build(),
        FrameSpec::from_addrs(ip(UNLISTED_REMOTE), ip(LOCAL))
            .frame_len(size)
            .build(),
        FrameSpec::from_addrs(ip(UNLISTED_REMOTE), ip(LOCAL))
            .transport(tcp(40002))
            .payload(patterns()[500].as_bytes())
            .frame_len(size)
            .build(),
        FrameSpec::from_addrs(ip(UNLISTED_REMOTE), ip(LOCAL))
            .transport(tcp(40003))
            .payload(b"GET / HT")
            .frame_len(size)
            .build(),
    ]
}

/// Writes `count` repetitions of the mix at `size` bytes as a pcap, 1 µs
/// apart (a fixed replay input).
pub fn write_replay(path: &Path, size: usize, count: usize) -> io::Result<()> {
    write_replay_wrapped(path, size, count, |f| f)
}

/// The same, every frame of the mix passed through `wrap` first (e.g. into
/// an encapsulation).
pub fn write_replay_wrapped(
    path: &Path,
    size: usize,
    count: usize,
    wrap: impl Fn(Vec<u8>) -> Vec<u8>,
) -> io::Result<()> {
    use pcap_file::pcap::{PcapPacket, PcapWriter};
    let mix: Vec<Vec<u8>> = frame_mix(size).into_iter().map(wrap).collect();
    let mut w = PcapWriter::new(io::BufWriter::new(std::fs::File::create(path)?)).map_err(io::Error::other)?;
    let start = std::time::Duration::from_secs(1_800_000_000);
    let mut i = 0u64;
    for _ in 0..count {
        for f in &mix {
            let ts = start + std::time::Duration::from_micros(i);
            w.write_packet(&PcapPacket::new(ts, f.len() as u32, f))
                .map_err(io::Error::other)?;
            i += 1;
        }
    }
    Ok(())
}

/// The rig's offline capture: `packets` Ethernet frames over `flows`
/// flows, deterministic (the same file every time), 1 µs apart. A quarter
/// of the flows are domestic (both ends in 192.0.2.0/24); the rest cross
/// the border, inbound or outbound; one flow in 32 has its remote in the
/// rig's indicator set (203.0.113.0/28). Two in three flows are TCP
/// (to 443 or 80), the rest UDP (to 53 or 443); every frame is 60 to 1,400
/// bytes, drawn uniformly.
pub fn write_offline_capture(path: &Path, packets: usize, flows: usize) -> io::Result<()> {
    use pcap_file::pcap::{PcapPacket, PcapWriter};
    let mut rng = Rng(0x5eed_0ff1_1e5e_ed01);
    let local = |r: u64| IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1 + (r % 254) as u8));
    let specs: Vec<FrameSpec> = (0..flows.max(1))
        .map(|i| {
            let r = rng.next();
            let here = local(r >> 8);
            let there = if i % 4 == 0 {
                local(r >> 16)
            } else if i % 32 == 1 {
                IpAddr::V4(Ipv4Addr::new(203, 0, 113, (r >> 24) as u8 % 16))
            } else {
                // Anywhere outside the domestic set and 203.0.113.0/28.
                let a = Ipv4Addr::from((r >> 32) as u32 | 0x0100_0000);
                match a.octets() {
                    [192, 0, 2, _] | [203, 0, 113, 0..=15] => IpAddr::V4(Ipv4Addr::new(198, 51, 100, a.octets()[3])),
                    _ => IpAddr::V4(a),
                }
            };
            let (src, dst) = if (r >> 4) & 1 == 0 {
                (there, here)
            } else {
                (here, there)
            };
            let sport = 1024 + (r >> 40) as u16 % 60_000;
            let t = if i % 3 == 2 {
                Transport::Udp {
                    src_port: sport,
                    dst_port: if r & 1 == 0 { 53 } else { 443 },
                }
            } else {
                Transport::Tcp {
                    src_port: sport,
                    dst_port: if r & 1 == 0 { 443 } else { 80 },
                    flags: 0x18,
                }
            };
            FrameSpec::from_addrs(src, dst).transport(t)
        })
        .collect();
    let mut w = PcapWriter::new(io::BufWriter::new(std::fs::File::create(path)?)).map_err(io::Error::other)?;
    let start = std::time::Duration::from_secs(1_800_000_000);
    for i in 0..packets {
        let r = rng.next();
        let spec = &specs[(r % specs.len() as u64) as usize];
        let f = spec.clone().frame_len(60 + ((r >> 32) % 1_341) as usize).build();
        let ts = start + std::time::Duration::from_micros(i as u64);
        w.write_packet(&PcapPacket::new(ts, f.len() as u32, &f))
            .map_err(io::Error::other)?;
    }
    Ok(())
}

/// A typical selected flow's record, for the export benches.
pub fn sample_record() -> crate::flow::MechanicalRecord {
    crate::flow::MechanicalRecord {
        first_seen_ns: 1_800_000_000_000_000_000,
        last_seen_ns: 1_800_000_004_000_000_000,
        class: crate::classify::Class::Inbound,
        queue: 0,
        vlans: vec![100],
        encap: String::new(),
        tunnel_id: None,
        fragments: 0,
        protocol: 6,
        initiator: LISTED_REMOTE.parse().expect("literal"),
        initiator_port: 40001,
        responder: LOCAL.parse().expect("literal"),
        responder_port: 443,
        packets_forward: 1000,
        bytes_forward: 50_000,
        packets_reverse: 800,
        bytes_reverse: 1_200_000,
        tcp_flags_forward: 0x1b,
        tcp_flags_reverse: 0x1b,
        min_ttl: 52,
        max_ttl: 58,
        indicator_set: String::new(),
        rules: vec!["ioc-cidr".into()],
        ruleset_version: "bench-loaded".into(),
        ja4: Some("t13d1715h2_5b57614c22b0_3d5424432f57".into()),
        ja3: None,
        ja3s: None,
        hassh: None,
        hassh_server: None,
        end_reason: crate::flow::EndReason::Idle,
    }
}

/// A grant of every exportable field (the most expensive projection).
pub fn full_grant() -> crate::config::recipients::Grant {
    crate::config::recipients::Grant {
        measures: crate::classify::Measure::ALL.iter().copied().collect(),
        fields: crate::flow::MechanicalRecord::FIELDS.to_vec(),
        purpose: "damage-prevention".into(),
        consent: None,
        addresses: crate::deid::AddressPolicy::Pseudonymize,
        aggregate: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::pipeline::Pipeline;

    /// The workload is what it claims: the sizes load, and the mix selects
    /// exactly the two frames it says it does.
    #[test]
    fn fixture_loads_and_the_mix_selects_two_of_four() {
        let dir = tempfile::tempdir().unwrap();
        write_fixture(dir.path()).unwrap();
        let cfg = Config::load(&dir.path().join("furui.toml")).unwrap();
        assert_eq!(cfg.rules.rules.len(), 3);
        let cidrs = std::fs::read_to_string(dir.path().join("rules/cidrs.txt")).unwrap();
        assert_eq!(cidrs.lines().count(), CIDRS);
        let mut p = Pipeline::new(&cfg, 0);
        for mut f in frame_mix(64) {
            assert_eq!(f.len(), 64);
            p.process_frame(&mut f, 1);
        }
        assert_eq!(p.counters().selected_packets, 2);
    }
}
