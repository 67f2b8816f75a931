//! Every capture in ../shared/pcaps goes through the offline reader and the
//! pipeline without panic; every packet buffer is erased; malformed packets
//! are counted; where the source suite gives a value, it is asserted.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use furui::config::Config;
use furui::offline::for_each_packet;
use furui::parse::{parse_link, Headers, ParseError, L4};
use furui::pipeline::Pipeline;

fn pcap_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/pcaps")
}

fn pcap(name: &str) -> PathBuf {
    pcap_dir().join(name)
}

/// Per-packet parse results of one capture.
fn parsed(name: &str) -> Vec<Result<Headers, ParseError>> {
    let mut out = Vec::new();
    for_each_packet(&pcap(name), |link, _, frame| {
        out.push(parse_link(link, frame));
        furui::erase::erase(frame);
    })
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    out
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

fn cfg() -> Config {
    Config::parse(
        Path::new("t.toml"),
        "[capture]\ninterface = \"x\"\n[domestic]\nprefixes = [\"192.168.0.0/16\", \"10.0.0.0/8\"]\n[[indicators]]\nname = \"everything\"\nprefixes = [\"0.0.0.0/0\", \"::/0\"]\n[records]\npath = \"r\"\n",
    )
    .unwrap()
}

#[test]
fn every_capture_runs_through_the_pipeline_and_every_buffer_is_erased() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(pcap_dir())
        .expect("../shared/pcaps is present")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .collect();
    files.sort();
    assert!(files.len() >= 30, "expected the shared captures, found {}", files.len());
    let mut total = 0;
    for f in &files {
        let mut p = Pipeline::new(&cfg(), 0);
        let mut not_erased = 0;
        let summary = for_each_packet(f, |link, ts, frame| {
            p.process_packet(link, frame, ts);
            not_erased += usize::from(frame.iter().any(|b| *b != 0));
        })
        .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert_eq!(not_erased, 0, "{}: a buffer was not erased", f.display());
        assert_eq!(p.counters().frames, summary.packets, "{}", f.display());
        assert_eq!(p.counters().frames_erased, summary.packets, "{}", f.display());
        p.drain();
        total += summary.packets;
    }
    assert!(total > 100);
}

#[test]
fn qinq_vlan_stack_and_non_ip() {
    let r = parsed("tcpdump__802.1ad_QinQ.pcap");
    assert_eq!(r.len(), 2);
    for h in r {
        let h = h.unwrap();
        assert_eq!(h.vlans, [200, 2001]);
        assert_eq!(h.vlan_depth, 2);
        assert_eq!(h.ethertype, 0x0806);
        assert!(!h.is_ip(), "ARP: no flow");
    }
}

#[test]
fn eve_flow_vlan_stacks() {
    let r = parsed("sv__eve-flow-vlan.pcap");
    let stacks: Vec<Vec<u16>> = r
        .iter()
        .map(|h| {
            let h = h.as_ref().unwrap();
            h.vlans[..usize::from(h.vlan_depth)].to_vec()
        })
        .collect();
    assert_eq!(stacks, vec![vec![6], vec![1, 10]]);
}

#[test]
fn malformed_ip_headers_are_named() {
    let one = |name: &str| parsed(name).into_iter().next().unwrap().err();
    assert_eq!(
        one("tcpdump__ipv4_invalid_hdr_length.pcap"),
        Some(ParseError::BadIpv4HeaderLength)
    );
    assert_eq!(
        one("tcpdump__ipv4_invalid_total_length.pcap"),
        Some(ParseError::BadIpv4TotalLength)
    );
    assert_eq!(
        one("tcpdump__ipv4_invalid_length.pcap"),
        Some(ParseError::TruncatedIpv4)
    );
    let bad_version: Vec<_> = parsed("tcpdump__ipv6-bad-version.pcap")
        .into_iter()
        .map(|r| r.err())
        .collect();
    assert_eq!(
        bad_version,
        vec![
            None,
            Some(ParseError::BadIpv6Version),
            None,
            Some(ParseError::BadIpv6Version)
        ]
    );
    assert!(one("tcpdump__ip6_frag_asan.pcap").is_some());
    assert!(one("tcpdump__ipv6_frag6_negative_len.pcap").is_some());
    assert!(one("tcpdump__mpls-label-heapoverflow.pcap").is_some());
    assert!(
        one("sv__ipv4-truncated.pcap").is_some(),
        "no 5-tuple for a truncated IPv4 packet"
    );
}

#[test]
fn fuzzer_found_l4_truncations_yield_no_ports() {
    for name in [
        "tcpdump__tcp_header_heapoverflow.pcap",
        "tcpdump__udp-length-heapoverflow.pcap",
    ] {
        for r in parsed(name) {
            // Either the IP layer already rejects it, or L4 does: never ports.
            assert!(r.is_err(), "{name}: parsed as {:?}", r.map(|h| h.ports()));
        }
    }
}

#[test]
fn ipv6_extension_chains_reach_the_upper_layer() {
    let r = parsed("tcpdump__ipv6-routing-header.pcap");
    assert_eq!(r.len(), 4);
    let protos: Vec<u8> = r.iter().map(|h| h.as_ref().unwrap().protocol).collect();
    assert!(protos.iter().all(|p| *p == 58 || *p == 17), "{protos:?}");
    assert!(r.iter().all(|h| h.as_ref().unwrap().l4 != L4::None));

    let h = parsed("tcpdump__ipv6_no_next_header.pcap").remove(0).unwrap();
    assert_eq!((h.src, h.dst), (ip("2005::1"), ip("2008::1")));
    assert_eq!(h.protocol, 59);
    assert!(h.l4 == L4::None);
    assert_eq!(h.ports(), (0, 0));

    // SRv6: the segment routing header (routing type 4), then the
    // encapsulated IPv6 packet (next header 41), opened like any IPv6-in-IPv6:
    // the inner packet's addresses and ICMPv6 echo request are what count.
    let h = parsed("tcpdump__ipv6-srh-ext-header.pcap").remove(0).unwrap();
    assert_eq!(h.encap.name(), "ipip");
    assert_eq!((h.src, h.dst), (ip("a:b:c:12::1"), ip("b2::2")));
    assert_eq!(h.protocol, 58);
    assert!(
        h.l4 == L4::Icmp {
            icmp_type: 128,
            code: 0
        }
    );
}

#[test]
fn five_tuples_match_the_source_suites() {
    let h = parsed("tcpdump__dns_udp.pcap").remove(0).unwrap();
    assert_eq!(
        (h.src, h.dst, h.ports()),
        (ip("192.168.1.11"), ip("209.87.249.18"), (43966, 53))
    );
    let h = parsed("ja4__tls12.pcap").remove(0).unwrap();
    assert_eq!(
        (h.src, h.dst, h.ports()),
        (ip("192.168.133.129"), ip("34.117.237.239"), (36372, 443))
    );
    let h = parsed("tcpdump__LINKTYPE_RAW_ipv4.pcap").remove(0).unwrap();
    assert_eq!(
        (h.src, h.dst, h.ports()),
        (ip("192.168.1.100"), ip("9.9.9.9"), (12345, 53))
    );
    // BSD loopback link type, IPv6.
    let h = parsed("ja4__tls-alpn-h2.pcap").remove(0).unwrap();
    assert_eq!(
        (h.src, h.dst, h.ports()),
        (
            ip("2001:4998:ef83:14:8000::100d"),
            ip("2606:4700::6811:d209"),
            (64034, 443)
        )
    );
    // PPP with an MPLS label over IPv4/UDP.
    let found = parsed("tcpdump__mpls-traceroute.pcap")
        .into_iter()
        .flatten()
        .any(|h| (h.src, h.dst, h.ports()) == (ip("12.4.4.4"), ip("12.1.1.1"), (42315, 33435)));
    assert!(found, "the MPLS-labelled probe was not reached");
}

#[test]
fn fragments_carry_ports_only_in_the_first() {
    // Raw IPv4: three fragments of one TCP SYN. The first holds only 8
    // bytes of TCP (a tiny fragment): its ports are taken, nothing else.
    let r = parsed("sv__defrag-ipv4-tcp-syn.pcap");
    let ports: Vec<(u16, u16)> = r.iter().map(|h| h.as_ref().unwrap().ports()).collect();
    assert_eq!(ports, vec![(12345, 8080), (0, 0), (0, 0)]);
    assert!(r.iter().all(|h| h.as_ref().is_ok_and(|h| h.src == ip("1.1.1.1"))));
}

#[test]
fn invalid_timestamps_are_clamped_not_fatal() {
    let s = for_each_packet(&pcap("tcpdump__timestamp_invalid_micro.pcap"), |_, _, f| {
        furui::erase::erase(f);
    })
    .unwrap();
    assert_eq!(s.packets, 3);
    assert_eq!(s.clamped_timestamps, 2);
}

/// The first ClientHello in a capture, joined across TCP segments of the
/// same flow if it is split (bounded: at most 16 KiB).
fn first_client_hello(name: &str) -> Option<furui::select::tls::Fingerprints> {
    use furui::select::tls::{client_hello_len, fingerprint_record};
    type FlowId = (Option<IpAddr>, Option<IpAddr>, (u16, u16));
    let mut pending: Option<(FlowId, Vec<u8>)> = None;
    let mut found = None;
    for_each_packet(&pcap(name), |link, _, frame| {
        if found.is_some() {
            furui::erase::erase(frame);
            return;
        }
        if let Ok(h) = parse_link(link, frame) {
            let key = (h.src, h.dst, h.ports());
            let payload = h.payload(frame);
            match &mut pending {
                Some((k, buf)) if *k == key && !payload.is_empty() => buf.extend_from_slice(payload),
                _ if client_hello_len(payload).is_ok() => pending = Some((key, payload.to_vec())),
                _ => {}
            }
            if let Some((_, buf)) = &pending {
                if let Ok(need) = client_hello_len(buf) {
                    if buf.len() >= need + 5 || buf.len() > 16_384 {
                        found = fingerprint_record(buf).ok();
                        pending = None;
                    }
                }
            }
        }
        furui::erase::erase(frame);
    })
    .unwrap();
    found
}

#[test]
fn ja4_and_ja3_match_the_published_values() {
    let f = first_client_hello("ja4__tls12.pcap").expect("ClientHello in ja4__tls12");
    assert_eq!(f.ja4, "t13d1715h2_5b57614c22b0_3d5424432f57");
    assert_eq!(f.ja3, "579ccef312d18482fc42e2b822ca2430");
    let f = first_client_hello("ja4__tls-alpn-h2.pcap").expect("ClientHello in ja4__tls-alpn-h2");
    assert_eq!(f.ja4, "t12d4605h2_85626a9a5f7f_aaf95bb78ec9");
    let f = first_client_hello("sv__ja4-tls.pcap").expect("ClientHello in sv__ja4-tls");
    assert_eq!(f.ja4, "t12i1810s1_27d4652c4487_06a4338d0495");
    assert_eq!(f.ja3, "308b0bd904abbef5e0034a1ff7a78920");
}

#[test]
fn tcp_payload_is_located_in_place() {
    let r = parsed("tcpdump__dns_udp.pcap");
    let h = r[0].as_ref().unwrap();
    // DNS query: 12-byte header + question; the UDP header said 8 + len.
    assert!(h.payload_len > 12, "{}", h.payload_len);
    assert_eq!(usize::from(h.payload_offset), 14 + 20 + 8);
}

/// The ClientHello of ja4__tls12.pcap, cut into two TCP segments, goes
/// through the pipeline: the flow's JA4 is reassembled (bounded), a JA4
/// rule selects the flow, and the record carries the fingerprints.
#[test]
fn a_split_client_hello_is_fingerprinted_and_selects_by_ja4() {
    use furui::craft::{FrameSpec, Transport};
    let mut hello = Vec::new();
    for_each_packet(&pcap("ja4__tls12.pcap"), |link, _, frame| {
        if let Ok(h) = parse_link(link, frame) {
            if hello.is_empty() {
                hello = h.payload(frame).to_vec();
            }
        }
        furui::erase::erase(frame);
    })
    .unwrap();
    assert!(hello.len() > 200);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(
        dir.path().join("rules/r.toml"),
        "version = \"tls\"\n[[rule]]\nid = \"firefox-ish\"\nmeasures = [\"outbound\"]\nja4 = [\"t13d1715h2_5b57614c22b0_3d5424432f57\"]\n",
    )
    .unwrap();
    let cfg = Config::parse(
        &dir.path().join("furui.toml"),
        "[capture]\ninterface = \"x\"\n[domestic]\nprefixes = [\"192.168.0.0/16\"]\n[selection]\nrules_dir = \"rules\"\n[records]\npath = \"r\"\n",
    )
    .unwrap();
    let mut p = Pipeline::new(&cfg, 0);
    let tcp = Transport::Tcp {
        src_port: 36372,
        dst_port: 443,
        flags: 0x18,
    };
    let (a, b) = hello.split_at(100);
    for part in [a, b] {
        let mut f = FrameSpec::new("192.168.133.129", "34.117.237.239")
            .transport(tcp)
            .payload(part)
            .build();
        p.process_frame(&mut f, 1);
        assert!(f.iter().all(|x| *x == 0));
    }
    p.drain();
    let records: Vec<_> = p.take_records().collect();
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r.ja4.as_deref(), Some("t13d1715h2_5b57614c22b0_3d5424432f57"));
    assert_eq!(r.ja3.as_deref(), Some("579ccef312d18482fc42e2b822ca2430"));
    assert_eq!(r.rules, vec!["firefox-ish".to_string()]);
    let json = serde_json::to_string(r).unwrap();
    assert!(!json.contains("mozilla"), "the SNI is match-only: {json}");
}
