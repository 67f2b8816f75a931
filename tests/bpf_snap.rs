//! The XDP snap, through BPF_PROG_TEST_RUN (no NIC): lengths in, lengths
//! out, and the metadata's original length. A captured frame keeps its
//! headers up to the innermost transport header plus the payload bytes the
//! rules can read; TLS ClientHello segments (a split hello's later segments
//! included) and QUIC Initials stay whole; what is not captured is never
//! touched. `furui replay`'s user-space snap (`select::Snapper`) is fed the
//! same frames in the same order and must cut each captured one at the
//! same length. Needs root (CAP_BPF).

use std::net::IpAddr;

use furui::classify::walk::DecapConfig;
use furui::classify::Class;
use furui::craft::tunnel::{wrap, Wrap};
use furui::craft::{self, FrameSpec, Transport};
use furui::parse::parse_frame;
use furui::select::{Snap, Snapper};
use furui::xdp::Classifier;

const DOMESTIC: &[&str] = &["192.0.2.0/24", "2001:db8::/32"];
const ETH: usize = 14;
const IP4: usize = 20;
const IP6: usize = 40;
const TCP: usize = 20;
const UDP: usize = 8;

fn classifier(snap: Snap) -> Classifier {
    let c = Classifier::load(false).expect("load the XDP program (are you root?)");
    let nets: Vec<ipnet::IpNet> = DOMESTIC.iter().map(|s| s.parse().unwrap()).collect();
    c.set_domestic(&nets).unwrap();
    let mut a = [false; furui::classify::NUM_CLASSES];
    for cl in [Class::Inbound, Class::Outbound, Class::Transit] {
        a[cl as usize] = true;
    }
    c.set_authorized(&a).unwrap();
    c.set_snap(&snap).unwrap();
    c
}

fn tcp(src: &str, dst: &str, sport: u16, payload: &[u8]) -> Vec<u8> {
    FrameSpec::new(src, dst)
        .transport(Transport::Tcp {
            src_port: sport,
            dst_port: 443,
            flags: 0x18,
        })
        .payload(payload)
        .build()
}

fn udp(src: &str, dst: &str, payload: &[u8]) -> Vec<u8> {
    FrameSpec::new(src, dst)
        .transport(Transport::Udp {
            src_port: 5555,
            dst_port: 443,
        })
        .payload(payload)
        .build()
}

/// A TLS record header: handshake, TLS 1.0 record version, `len` bytes.
fn tls_record_start(len: u16, total: usize) -> Vec<u8> {
    let mut p = vec![0x16, 0x03, 0x01];
    p.extend_from_slice(&len.to_be_bytes());
    p.push(0x01); // ClientHello
    p.resize(total, 0x42);
    p
}

/// The second fragment of a TCP datagram, in an Ethernet frame.
fn later_fragment() -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
    f.extend_from_slice(&craft::ipv4_tcp_fragments(9, &[24])[1]);
    f
}

/// The XDP program and the user-space snap, set alike.
struct Cut {
    c: Classifier,
    us: Snapper,
}

impl Cut {
    fn new(snap: Snap) -> Cut {
        Cut {
            c: classifier(snap),
            us: Snapper::new(snap),
        }
    }

    fn set_snap(&mut self, snap: Snap) {
        self.c.set_snap(&snap).unwrap();
        self.us = Snapper::new(snap);
    }
}

/// (what, frame in, length out; None: untouched and not captured). A
/// captured frame must be cut alike by the user-space snap.
fn check(cut: &mut Cut, rows: &[(&str, Vec<u8>, Option<usize>)]) {
    let mut failures = Vec::new();
    for (what, frame, want) in rows {
        let (_, meta, out) = cut.c.test_run_out(frame).unwrap();
        let got = match (want, meta) {
            (Some(len), Some(m)) => {
                let ok = out.len() == *len && m.orig_len as usize == frame.len() && out[..] == frame[..*len];
                let user = match parse_frame(frame, &DecapConfig::DEFAULT) {
                    Ok(h) => cut.us.keep(true, &h, frame),
                    // What the snapper keeps of a frame that did not parse.
                    Err(_) => frame.len(),
                };
                if !ok {
                    Some(format!(
                        "out {} B, orig_len {} (want {len} B of {})",
                        out.len(),
                        m.orig_len,
                        frame.len()
                    ))
                } else if user != out.len() {
                    Some(format!("user space keeps {user} B, the XDP program {} B", out.len()))
                } else {
                    None
                }
            }
            (None, None) => (out != *frame).then(|| "an uncaptured frame was changed".to_string()),
            (Some(_), None) => Some("not captured (no metadata)".to_string()),
            (None, Some(_)) => Some("captured".to_string()),
        };
        if let Some(g) = got {
            failures.push(format!("{what}: {g}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_captured_frame_keeps_its_headers_and_the_rules_window_only() {
    let big = vec![0x33u8; 1000];
    let mut c = Cut::new(Snap {
        payload: Some(0),
        keep_hellos: true,
    });
    let outer = |v: &str| -> IpAddr { v.parse().unwrap() };
    let vxlan = wrap(
        &tcp("203.0.113.5", "192.0.2.10", 4000, &big),
        &Wrap::Vxlan { vni: 7 },
        outer("198.51.100.1"),
        outer("198.51.100.2"),
    );
    let vxlan_inner_l4 = ETH + IP4 + UDP + 8 + ETH + IP4;
    check(
        &mut c,
        &[
            (
                "TCP, headers only",
                tcp("203.0.113.5", "192.0.2.10", 4000, &big),
                Some(ETH + IP4 + TCP),
            ),
            (
                "UDP, headers only",
                udp("203.0.113.5", "192.0.2.10", &big),
                Some(ETH + IP4 + UDP),
            ),
            (
                "IPv6 TCP, headers only",
                tcp("2001:4860::8888", "2001:db8::1", 4000, &big),
                Some(ETH + IP6 + TCP),
            ),
            (
                "ICMP: its 8-byte header",
                FrameSpec::new("203.0.113.5", "192.0.2.10")
                    .transport(Transport::Icmp { icmp_type: 8, code: 0 })
                    .payload(&big)
                    .build(),
                Some(ETH + IP4 + 8),
            ),
            ("VXLAN: up to the inner TCP header", vxlan, Some(vxlan_inner_l4 + TCP)),
            (
                "VLAN-tagged TCP",
                FrameSpec::new("203.0.113.5", "192.0.2.10")
                    .vlans(&[100])
                    .transport(Transport::Tcp {
                        src_port: 1,
                        dst_port: 2,
                        flags: 0x18,
                    })
                    .payload(&big)
                    .build(),
                Some(ETH + 4 + IP4 + TCP),
            ),
            (
                "a frame with no payload is whole",
                tcp("203.0.113.5", "192.0.2.10", 4000, &[]),
                Some(ETH + IP4 + TCP),
            ),
            (
                "domestic: not captured, untouched",
                tcp("192.0.2.1", "192.0.2.10", 4000, &big),
                None,
            ),
            (
                "a later fragment (no transport header): whole",
                later_fragment(),
                Some(later_fragment().len()),
            ),
        ],
    );
    // The rules' window: 100 payload bytes.
    c.set_snap(Snap {
        payload: Some(100),
        keep_hellos: true,
    });
    check(
        &mut c,
        &[
            (
                "TCP, 100 payload bytes",
                tcp("203.0.113.5", "192.0.2.10", 4000, &big),
                Some(ETH + IP4 + TCP + 100),
            ),
            (
                "UDP, 100 payload bytes",
                udp("203.0.113.5", "192.0.2.10", &big),
                Some(ETH + IP4 + UDP + 100),
            ),
            (
                "shorter than the window: whole",
                tcp("203.0.113.5", "192.0.2.10", 4000, &[7; 60]),
                Some(ETH + IP4 + TCP + 60),
            ),
        ],
    );
    c.set_snap(Snap::WHOLE);
    check(
        &mut c,
        &[(
            "whole",
            tcp("203.0.113.5", "192.0.2.10", 4000, &big),
            Some(ETH + IP4 + TCP + 1000),
        )],
    );
}

#[test]
fn client_hellos_and_quic_initials_stay_whole_even_when_split() {
    let mut c = Cut::new(Snap {
        payload: Some(0),
        keep_hellos: true,
    });
    let (from, to) = ("203.0.113.5", "192.0.2.10");
    // A 2,000-byte ClientHello record in three segments of 800, 800, 405.
    let first = tls_record_start(2000, 800);
    let rest = vec![0x42u8; 800];
    let last = vec![0x42u8; 405];
    let hello = |p: &[u8]| tcp(from, to, 4100, p);
    let before = c.c.hello_follows().unwrap();
    check(
        &mut c,
        &[
            (
                "the segment that starts the record",
                hello(&first),
                Some(ETH + IP4 + TCP + 800),
            ),
            ("its second segment", hello(&rest), Some(ETH + IP4 + TCP + 800)),
            ("its last segment", hello(&last), Some(ETH + IP4 + TCP + 405)),
            ("after the hello: headers only", hello(&rest), Some(ETH + IP4 + TCP)),
            (
                "another flow meanwhile: headers only",
                tcp(from, to, 4101, &rest),
                Some(ETH + IP4 + TCP),
            ),
            (
                "a whole hello in one segment",
                tcp(from, to, 4102, &tls_record_start(300, 305)),
                Some(ETH + IP4 + TCP + 305),
            ),
        ],
    );
    let after = c.c.hello_follows().unwrap();
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (1, 1),
        "one hello followed, to its end"
    );

    let mut initial = vec![0xc3, 0, 0, 0, 1, 8];
    initial.resize(1200, 0x11);
    let mut v2 = vec![0xd3, 0x6b, 0x33, 0x43, 0xcf, 8];
    v2.resize(1200, 0x11);
    let mut short_header = vec![0x43];
    short_header.resize(1200, 0x11);
    let mut handshake = vec![0xe3, 0, 0, 0, 1, 8];
    handshake.resize(1200, 0x11);
    check(
        &mut c,
        &[
            ("QUIC v1 Initial", udp(from, to, &initial), Some(ETH + IP4 + UDP + 1200)),
            ("QUIC v2 Initial", udp(from, to, &v2), Some(ETH + IP4 + UDP + 1200)),
            ("QUIC short header", udp(from, to, &short_header), Some(ETH + IP4 + UDP)),
            ("QUIC v1 Handshake", udp(from, to, &handshake), Some(ETH + IP4 + UDP)),
        ],
    );
    // SSH: the identification line and a segment starting a KEXINIT packet
    // stay whole (HASSH reads them); other SSH packets are cut.
    let banner = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n".to_vec();
    let packet = |len: u32, padding: u8, msg: u8, total: usize| {
        let mut p = len.to_be_bytes().to_vec();
        p.extend([padding, msg]);
        p.resize(total, 0x33);
        p
    };
    let ssh = |p: &[u8]| tcp(from, to, 4200, p);
    check(
        &mut c,
        &[
            (
                "SSH identification line",
                ssh(&banner),
                Some(ETH + IP4 + TCP + banner.len()),
            ),
            (
                "KEXINIT packet",
                ssh(&packet(1532, 6, 20, 1536)),
                Some(ETH + IP4 + TCP + 1536),
            ),
            (
                "KEXINIT's first segment",
                ssh(&packet(3000, 6, 20, 1400)),
                Some(ETH + IP4 + TCP + 1400),
            ),
            (
                "another SSH message",
                ssh(&packet(1532, 6, 30, 1536)),
                Some(ETH + IP4 + TCP),
            ),
            (
                "implausible padding",
                ssh(&packet(1532, 2, 20, 1536)),
                Some(ETH + IP4 + TCP),
            ),
            (
                "implausible length",
                ssh(&packet(70_000, 6, 20, 1536)),
                Some(ETH + IP4 + TCP),
            ),
            ("\"SSH\" without the dash", ssh(b"SSH 2.0 x\r\n"), Some(ETH + IP4 + TCP)),
        ],
    );
    // Without keep_hellos (not a mode the daemon uses): cut like the rest.
    c.set_snap(Snap {
        payload: Some(0),
        keep_hellos: false,
    });
    check(&mut c, &[("hello, not kept", hello(&first), Some(ETH + IP4 + TCP))]);
}
