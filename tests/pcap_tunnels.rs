//! The encapsulated captures in ../shared/pcaps/tunnels (public test-suite
//! files: ERSPAN I/II/III, VXLAN, Geneve, MPLS-in-UDP, GRE/PPP) through the
//! offline pipeline: records are of the INNER flows, with their
//! encapsulation and tunnel id; the outer endpoints decide nothing and are
//! recorded nowhere. Expected values are tshark 4.0's decode of each file
//! (the directory's README gives the addresses).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use furui::config::Config;
use furui::flow::MechanicalRecord;
use furui::offline::for_each_packet;
use furui::parse::ParseError;
use furui::pipeline::Pipeline;

fn tunnels(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/pcaps/tunnels")
        .join(name)
}

/// A config whose domestic set is `domestic` and whose one indicator set
/// holds everything, so every cross-border flow becomes a record.
fn cfg(domestic: &[&str]) -> Config {
    let list = domestic
        .iter()
        .map(|d| format!("\"{d}\""))
        .collect::<Vec<_>>()
        .join(", ");
    Config::parse(
        Path::new("t.toml"),
        &format!(
            "[capture]\ninterface = \"x\"\n[domestic]\nprefixes = [{list}]\n[[indicators]]\nname = \"all\"\nprefixes = [\"0.0.0.0/0\", \"::/0\"]\n[records]\npath = \"r\"\n"
        ),
    )
    .unwrap()
}

struct Run {
    records: Vec<MechanicalRecord>,
    frames: u64,
    parse_errors: Vec<(ParseError, u64)>,
    /// Fragment events with a count, by kind.
    fragments: Vec<(&'static str, u64)>,
}

fn replay(name: &str, domestic: &[&str]) -> Run {
    replay_path(&tunnels(name), domestic)
}

/// Replays a capture through the pipeline; every buffer must be erased.
fn replay_path(path: &Path, domestic: &[&str]) -> Run {
    let name = path.display();
    let mut p = Pipeline::new(&cfg(domestic), 0);
    let mut unerased = 0;
    let summary = for_each_packet(path, |link, ts, frame| {
        p.process_packet(link, frame, ts);
        unerased += usize::from(frame.iter().any(|b| *b != 0));
    })
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(unerased, 0, "{name}: a buffer was not erased");
    assert_eq!(p.counters().frames_erased, summary.packets, "{name}");
    p.drain();
    let mut records: Vec<_> = p.take_records().collect();
    records.sort_by_key(|r| (r.first_seen_ns, r.initiator, r.responder_port));
    let parse_errors = ParseError::ALL
        .iter()
        .map(|e| (*e, p.counters().parse_errors[e.index()]))
        .filter(|(_, n)| *n > 0)
        .collect();
    let counts = p.take_fragment_counts();
    let fragments = furui::flow::FragEvent::ALL
        .iter()
        .map(|e| (e.kind(), counts[*e as usize]))
        .filter(|(_, n)| *n > 0)
        .collect();
    Run {
        records,
        frames: summary.packets,
        parse_errors,
        fragments,
    }
}

/// (initiator, initiator port, responder, responder port, protocol,
/// encap, tunnel id, packets forward, packets reverse)
type Want = (
    &'static str,
    u16,
    &'static str,
    u16,
    u8,
    &'static str,
    Option<u32>,
    u64,
    u64,
);

fn summary(r: &MechanicalRecord) -> (String, u16, String, u16, u8, String, Option<u32>, u64, u64) {
    (
        r.initiator.to_string(),
        r.initiator_port,
        r.responder.to_string(),
        r.responder_port,
        r.protocol,
        r.encap.clone(),
        r.tunnel_id,
        r.packets_forward,
        r.packets_reverse,
    )
}

fn owned(w: &Want) -> (String, u16, String, u16, u8, String, Option<u32>, u64, u64) {
    (
        w.0.to_string(),
        w.1,
        w.2.to_string(),
        w.3,
        w.4,
        w.5.to_string(),
        w.6,
        w.7,
        w.8,
    )
}

fn assert_records(name: &str, run: &Run, want: &[Want]) {
    let got: Vec<_> = run.records.iter().map(summary).collect();
    let want: Vec<_> = want.iter().map(owned).collect();
    assert_eq!(got, want, "{name}");
}

// ICMP flows carry type << 8 | code as the responder port (IPFIX style):
// an echo request (8) and its reply (0) are two flows.
const ECHO_REQ: u16 = 0x0800;
const ECHO_REP: u16 = 0;

#[test]
fn erspan_captures_yield_the_mirrored_flows() {
    // Type I: no ERSPAN header, no session id; the mirrored frame has an
    // 802.1Q tag of its own.
    let r = replay("tcpdump__erspan-type-i-1.pcap", &["1.1.1.1/32", "192.168.255.5/32"]);
    assert_records(
        "type I",
        &r,
        &[
            ("10.52.128.233", 0, "10.52.128.234", ECHO_REQ, 1, "erspan", None, 1, 0),
            ("10.52.128.234", 0, "10.52.128.233", ECHO_REP, 1, "erspan", None, 1, 0),
        ],
    );
    // Type II, session 666: one PIM hello to a multicast group.
    let r = replay("tcpdump__erspan-type-ii-1.pcap", &["1.1.1.2/32", "192.168.255.5/32"]);
    assert_records(
        "type II",
        &r,
        &[("10.48.6.1", 0, "224.0.0.13", 0, 103, "erspan", Some(666), 1, 0)],
    );
    // Type II, session 100, two CDP frames (non-IP inside: no flow) and
    // two pings.
    let r = replay("sv__erspan-typeII-01.pcap", &["2.2.2.2/32", "1.1.1.1/32"]);
    assert_eq!(r.frames, 6);
    assert!(r.parse_errors.is_empty(), "{:?}", r.parse_errors);
    assert_records(
        "suricata type II",
        &r,
        &[
            ("23.0.0.2", 0, "23.0.0.3", ECHO_REQ, 1, "erspan", Some(100), 2, 0),
            ("23.0.0.3", 0, "23.0.0.2", ECHO_REP, 1, "erspan", Some(100), 2, 0),
        ],
    );
    // Type III (0x22eb), session 0, Ethernet frame type, nine echo
    // requests. The outer endpoints are in the same /16 as the inner
    // source: only the /32s are domestic here.
    let r = replay(
        "tcpdump__erspan-type-iii-ft-0.pcap",
        &["10.29.30.104/32", "10.29.11.13/32"],
    );
    assert_records(
        "type III",
        &r,
        &[("10.29.11.1", 0, "10.29.20.21", ECHO_REQ, 1, "erspan", Some(0), 9, 0)],
    );
}

#[test]
fn overlay_captures_yield_the_inner_flows_with_their_vni() {
    // A GSO super-packet: one 7106-byte frame of TCP inside VXLAN 5001.
    let r = replay("tcpdump__gso-ipv4-vxlan-ipv4.pcap", &["10.25.132.0/24"]);
    assert_records(
        "vxlan",
        &r,
        &[("192.168.1.2", 37099, "192.168.1.1", 41547, 6, "vxlan", Some(5001), 1, 0)],
    );
    assert_eq!(r.records[0].bytes_forward, 7042, "the inner IP length");
    // VXLAN carrying ARP: encapsulated non-IP, no flow, no error.
    let r = replay("sv__vxlan-arp.pcap", &["192.168.202.0/24", "192.168.203.0/24"]);
    assert_eq!((r.frames, r.records.len()), (2, 0));
    assert!(r.parse_errors.is_empty(), "{:?}", r.parse_errors);
    // Geneve VNI 0x7b: two ARP frames, four pings each way.
    let r = replay("sv__geneve-decoder.pcap", &["192.168.56.0/24"]);
    assert_eq!(r.frames, 10);
    assert!(r.parse_errors.is_empty(), "{:?}", r.parse_errors);
    assert_records(
        "geneve",
        &r,
        &[
            ("10.0.0.1", 0, "10.0.0.2", ECHO_REQ, 1, "geneve", Some(0x7b), 4, 0),
            ("10.0.0.2", 0, "10.0.0.1", ECHO_REP, 1, "geneve", Some(0x7b), 4, 0),
        ],
    );
    // IPv6 outer and inner, Geneve VNI 0x1389.
    let r = replay("tcpdump__gso-ipv6-geneve-ipv6.pcap", &["2604:1380:4091:ce00::/64"]);
    assert_records(
        "geneve ipv6",
        &r,
        &[("fd00::2", 38687, "fd00::1", 45505, 6, "geneve", Some(0x1389), 1, 0)],
    );
}

#[test]
fn mpls_in_udp_yields_the_inner_flows_with_their_label() {
    let r = replay("tcpdump__mpls-over-udp.pcap", &["10.100.0.0/16"]);
    assert_records(
        "mpls-in-udp",
        &r,
        &[
            ("10.3.0.10", 0, "10.1.0.10", ECHO_REQ, 1, "mpls_udp", Some(21), 1, 0),
            ("10.1.0.10", 0, "10.3.0.10", ECHO_REP, 1, "mpls_udp", Some(46), 1, 0),
        ],
    );
}

#[test]
fn gre_carrying_ppp_is_undecided_and_never_tracked() {
    // 1024 GRE packets carrying PPP (fragments of one 65535-byte inner
    // datagram): furui does not decode PPP in GRE, so it cannot tell the
    // inner jurisdiction; every frame is counted and erased, none tracked.
    let r = replay("sv__gre-ppp-max-ip-packet.pcap", &["7.7.7.7/32", "9.9.9.9/32"]);
    assert_eq!(r.frames, 1024);
    assert_eq!(r.parse_errors, vec![(ParseError::EncapsulationNotOpened, 1024)]);
    assert!(r.records.is_empty());
}

#[test]
fn domestic_inner_traffic_is_never_tracked_whatever_the_outer_endpoints() {
    // The inner addresses domestic, the outer ones foreign: nothing is a
    // record, though every outer packet is cross-border.
    for (name, inner) in [
        ("tcpdump__erspan-type-i-1.pcap", &["10.52.128.0/24"][..]),
        ("sv__erspan-typeII-01.pcap", &["23.0.0.0/24"]),
        (
            "tcpdump__erspan-type-iii-ft-0.pcap",
            &["10.29.11.1/32", "10.29.20.0/24"],
        ),
        ("tcpdump__gso-ipv4-vxlan-ipv4.pcap", &["192.168.1.0/24"]),
        ("sv__geneve-decoder.pcap", &["10.0.0.0/24"]),
        ("tcpdump__gso-ipv6-geneve-ipv6.pcap", &["fd00::/64"]),
        ("tcpdump__mpls-over-udp.pcap", &["10.1.0.0/16", "10.3.0.0/16"]),
    ] {
        let r = replay(name, inner);
        assert!(r.frames > 0, "{name}");
        assert!(r.records.is_empty(), "{name}: {} records", r.records.len());
        let outer: BTreeSet<String> = r.records.iter().map(|x| x.initiator.to_string()).collect();
        assert!(outer.is_empty());
    }
}

fn top(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/pcaps")
        .join(name)
}

#[test]
fn later_fragments_count_into_their_first_fragments_flow() {
    // IPv4: an ICMP echo request in two fragments, then its (whole) reply.
    let run = replay("sv__ipv4frags.pcap", &["192.0.2.0/24"]);
    let (r, ev) = (run.records, run.fragments);
    let got: Vec<_> = r.iter().map(|r| (summary(r), r.bytes_forward, r.fragments)).collect();
    let want = [
        (("2.1.1.2", 0, "2.1.1.1", ECHO_REQ, 1, "", None, 2, 0), 996 + 452, 2),
        (("2.1.1.1", 0, "2.1.1.2", ECHO_REP, 1, "", None, 1, 0), 1428, 0),
    ];
    let want: Vec<_> = want.iter().map(|(w, b, f)| (owned(w), *b, *f)).collect();
    assert_eq!(got, want);
    assert_eq!(ev, [("first", 1), ("attributed", 1)]);
    // IPv6: a TCP segment in three fragments (fragment extension header).
    let run = replay("sv__defrag-ipv6-tcp.pcap", &["192.0.2.0/24"]);
    let (r, ev) = (run.records, run.fragments);
    assert_eq!(r.len(), 1);
    assert_eq!(
        (
            r[0].initiator_port,
            r[0].responder_port,
            r[0].packets_forward,
            r[0].fragments
        ),
        (12345, 8080, 3, 3)
    );
    assert_eq!(ev, [("first", 1), ("attributed", 2)]);
    // IPv4: a TCP SYN whose first fragment holds only 8 bytes of TCP and
    // whose second starts at offset 8 (both RFC 1858 tiny fragments).
    let run = replay_path(&top("sv__defrag-ipv4-tcp-syn.pcap"), &["192.0.2.0/24"]);
    let (r, ev) = (run.records, run.fragments);
    assert_eq!(r.len(), 1);
    assert_eq!(
        (
            r[0].initiator_port,
            r[0].responder_port,
            r[0].packets_forward,
            r[0].fragments
        ),
        (12345, 8080, 3, 3)
    );
    assert_eq!(ev, [("first", 1), ("attributed", 2), ("tiny", 2)]);
}

#[test]
fn furui_replay_writes_the_inner_flows_of_every_tunnel_capture() {
    // What `furui replay --config … --pcap …` runs: records as JSON lines.
    for (name, domestic, records) in [
        ("tcpdump__erspan-type-i-1.pcap", "1.1.1.1/32", 2),
        ("tcpdump__erspan-type-ii-1.pcap", "1.1.1.2/32", 1),
        ("tcpdump__erspan-type-iii-ft-0.pcap", "10.29.30.104/32", 1),
        ("sv__erspan-typeII-01.pcap", "2.2.2.2/32", 2),
        ("tcpdump__gso-ipv4-vxlan-ipv4.pcap", "10.25.132.0/24", 1),
        ("sv__vxlan-arp.pcap", "192.168.202.0/24", 0),
        ("sv__geneve-decoder.pcap", "192.168.56.0/24", 2),
        ("tcpdump__gso-ipv6-geneve-ipv6.pcap", "2604:1380:4091:ce00::/64", 1),
        ("tcpdump__mpls-over-udp.pcap", "10.100.0.0/16", 2),
        ("sv__gre-ppp-max-ip-packet.pcap", "7.7.7.7/32", 0),
        ("sv__ipv4frags.pcap", "192.0.2.0/24", 2),
        ("sv__defrag-ipv6-tcp.pcap", "192.0.2.0/24", 1),
    ] {
        let mut out = Vec::new();
        let report = furui::offline::replay(&cfg(&[domestic]), &tunnels(name), &mut out).unwrap();
        assert_eq!(report.records, records, "{name}");
        assert_eq!(report.counters.frames_erased, report.read.packets, "{name}");
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), records as usize, "{name}");
        for line in text.lines() {
            let r: serde_json::Value = serde_json::from_str(line).unwrap();
            let outer_free = !line.contains(domestic.split('/').next().unwrap());
            assert!(outer_free, "{name}: an outer endpoint in a record: {r}");
        }
    }
}
