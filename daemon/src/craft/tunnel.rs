//! Encapsulated test and demo frames: an inner frame wrapped the way a
//! carrier's feed delivers it (RFC 3032 MPLS, RFC 2784/2890 GRE, ERSPAN
//! types I-III, RFC 7348 VXLAN, RFC 8926 Geneve, 3GPP TS 29.281 GTP-U,
//! IP-in-IP, RFC 7510 MPLS-in-UDP). Not part of the capture data path.

use std::net::IpAddr;

/// One encapsulation layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wrap {
    /// A label stack over Ethernet (0x8847); the last label is the bottom.
    Mpls {
        labels: Vec<u32>,
    },
    /// GRE carrying the inner IP packet (0x0800/0x86dd), optional key and
    /// sequence number (and checksum bit, with a zero checksum field).
    Gre {
        key: Option<u32>,
        seq: bool,
        csum: bool,
    },
    /// GRE carrying the inner Ethernet frame (0x6558).
    GreEth {
        key: Option<u32>,
    },
    /// GRE carrying an MPLS stack over the inner IP packet (RFC 4023).
    GreMpls {
        labels: Vec<u32>,
    },
    /// ERSPAN type I: GRE 0x88be without sequence number or header.
    ErspanI,
    /// ERSPAN type II: GRE 0x88be with sequence number and the 8-byte header.
    ErspanII {
        session: u16,
    },
    /// ERSPAN type III: GRE 0x22eb, the 12-byte header, optional 8-byte
    /// platform sub-header.
    ErspanIII {
        session: u16,
        platform: bool,
    },
    Vxlan {
        vni: u32,
    },
    /// Geneve carrying Ethernet, with `opt_words` 4-byte words of options.
    Geneve {
        vni: u32,
        opt_words: u8,
    },
    /// GTP-U G-PDU carrying the inner IP packet; `ext` adds a PDU session
    /// container extension header.
    Gtpu {
        teid: u32,
        ext: bool,
    },
    /// The inner IP packet directly in an outer IP packet (4 or 41).
    IpIp,
    MplsUdp {
        labels: Vec<u32>,
    },
}

const MACS: [u8; 12] = [2, 0, 0, 0, 0, 0xb, 2, 0, 0, 0, 0, 0xa];

fn ethertype_of_ip(packet: &[u8]) -> u16 {
    if packet.first().map(|b| b >> 4) == Some(6) {
        0x86dd
    } else {
        0x0800
    }
}

fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = MACS.to_vec();
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn labels(stack: &[u32]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, l) in stack.iter().enumerate() {
        let bos = u32::from(i + 1 == stack.len());
        out.extend_from_slice(&((l << 12) | (bos << 8) | 64).to_be_bytes());
    }
    out
}

fn udp(dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::with_capacity(8 + payload.len());
    u.extend_from_slice(&49152u16.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

/// An outer IP packet (no Ethernet) from `src` to `dst` carrying
/// `payload` as protocol `proto`.
pub fn ip_packet(src: IpAddr, dst: IpAddr, proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(40 + payload.len());
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            p.extend_from_slice(&[0x45, 0]);
            p.extend_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
            p.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0, 0]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            let sum = super::ipv4_checksum(&p[..20]);
            p[10..12].copy_from_slice(&sum.to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            p.extend_from_slice(&[0x60, 0, 0, 0]);
            p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
            p.extend_from_slice(&[proto, 64]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
        }
        _ => panic!("outer source and destination must be of one address family"),
    }
    p.extend_from_slice(payload);
    p
}

/// Wraps `inner` (an Ethernet frame without VLAN tags, as
/// `FrameSpec::build` makes) in one layer `w` between the outer endpoints
/// `outer_src` and `outer_dst`; returns the new Ethernet frame. Layers that
/// carry IP take the inner frame's IP packet, layers that carry Ethernet
/// take the whole frame.
pub fn wrap(inner: &[u8], w: &Wrap, outer_src: IpAddr, outer_dst: IpAddr) -> Vec<u8> {
    let ip = &inner[14..];
    let outer = |proto: u8, payload: &[u8]| {
        let p = ip_packet(outer_src, outer_dst, proto, payload);
        eth(ethertype_of_ip(&p), &p)
    };
    let gre = |flags: u16, proto: u16, extra: &[u8], payload: &[u8]| {
        let mut g = flags.to_be_bytes().to_vec();
        g.extend_from_slice(&proto.to_be_bytes());
        g.extend_from_slice(extra);
        g.extend_from_slice(payload);
        outer(47, &g)
    };
    match w {
        Wrap::Mpls { labels: l } => {
            let mut p = labels(l);
            p.extend_from_slice(ip);
            eth(0x8847, &p)
        }
        Wrap::Gre { key, seq, csum } => {
            let mut flags = 0u16;
            let mut extra = Vec::new();
            if *csum {
                flags |= 0x8000;
                extra.extend_from_slice(&[0, 0, 0, 0]);
            }
            if let Some(k) = key {
                flags |= 0x2000;
                extra.extend_from_slice(&k.to_be_bytes());
            }
            if *seq {
                flags |= 0x1000;
                extra.extend_from_slice(&7u32.to_be_bytes());
            }
            gre(flags, ethertype_of_ip(ip), &extra, ip)
        }
        Wrap::GreEth { key } => match key {
            Some(k) => gre(0x2000, 0x6558, &k.to_be_bytes(), inner),
            None => gre(0, 0x6558, &[], inner),
        },
        Wrap::GreMpls { labels: l } => {
            let mut p = labels(l);
            p.extend_from_slice(ip);
            gre(0, 0x8847, &[], &p)
        }
        Wrap::ErspanI => gre(0, 0x88be, &[], inner),
        Wrap::ErspanII { session } => {
            // Sequence number, then ver=1 | VLAN 0 | COS/En/T | session,
            // reserved | index.
            let mut extra = 1u32.to_be_bytes().to_vec();
            extra.extend_from_slice(&[0x10, 0x00]);
            extra.extend_from_slice(&(session & 0x3ff).to_be_bytes());
            extra.extend_from_slice(&[0, 0, 0, 0]);
            gre(0x1000, 0x88be, &extra, inner)
        }
        Wrap::ErspanIII { session, platform } => {
            let mut extra = 1u32.to_be_bytes().to_vec();
            // ver=2 | VLAN, COS/BSO/T | session, timestamp, SGT, P/FT/HW/D/Gra/O.
            extra.extend_from_slice(&[0x20, 0x00]);
            extra.extend_from_slice(&(session & 0x3ff).to_be_bytes());
            extra.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, u8::from(*platform)]);
            if *platform {
                extra.extend_from_slice(&[0x0c, 0, 0, 0, 0, 0, 0, 0]);
            }
            gre(0x1000, 0x22eb, &extra, inner)
        }
        Wrap::Vxlan { vni } => {
            let mut v = vec![0x08, 0, 0, 0];
            v.extend_from_slice(&(vni << 8).to_be_bytes());
            v.extend_from_slice(inner);
            outer(17, &udp(4789, &v))
        }
        Wrap::Geneve { vni, opt_words } => {
            let mut g = vec![opt_words & 0x3f, 0];
            g.extend_from_slice(&0x6558u16.to_be_bytes());
            g.extend_from_slice(&(vni << 8).to_be_bytes());
            for i in 0..*opt_words {
                // One option per word: class, type, length 0.
                g.extend_from_slice(&[0x01, 0x02, i, 0]);
            }
            g.extend_from_slice(inner);
            outer(17, &udp(6081, &g))
        }
        Wrap::Gtpu { teid, ext } => {
            let mut g = Vec::new();
            let (flags, extra): (u8, Vec<u8>) = if *ext {
                // Sequence 0, N-PDU 0, next extension 0x85 (PDU session
                // container): length 1 (4 bytes), PDU type/QFI, next 0.
                (0x34, vec![0, 0, 0, 0x85, 1, 0x10, 0x09, 0])
            } else {
                (0x30, Vec::new())
            };
            g.push(flags);
            g.push(0xff);
            g.extend_from_slice(&((extra.len() + ip.len()) as u16).to_be_bytes());
            g.extend_from_slice(&teid.to_be_bytes());
            g.extend_from_slice(&extra);
            g.extend_from_slice(ip);
            outer(17, &udp(2152, &g))
        }
        Wrap::IpIp => outer(if ethertype_of_ip(ip) == 0x86dd { 41 } else { 4 }, ip),
        Wrap::MplsUdp { labels: l } => {
            let mut p = labels(l);
            p.extend_from_slice(ip);
            outer(17, &udp(6635, &p))
        }
    }
}

/// One of each encapsulation, as the benches measure them (name, layer).
pub fn bench_wraps() -> Vec<(&'static str, Wrap)> {
    vec![
        ("mpls", Wrap::Mpls { labels: vec![16, 17] }),
        (
            "gre",
            Wrap::Gre {
                key: Some(1),
                seq: false,
                csum: false,
            },
        ),
        ("erspan2", Wrap::ErspanII { session: 7 }),
        (
            "erspan3",
            Wrap::ErspanIII {
                session: 7,
                platform: true,
            },
        ),
        ("vxlan", Wrap::Vxlan { vni: 5001 }),
        (
            "geneve",
            Wrap::Geneve {
                vni: 5001,
                opt_words: 2,
            },
        ),
        ("gtpu", Wrap::Gtpu { teid: 1, ext: true }),
        ("ipip", Wrap::IpIp),
        ("mpls_udp", Wrap::MplsUdp { labels: vec![21] }),
    ]
}

/// Inserts VLAN tags after the MAC addresses of `frame`, outermost first
/// (the outer of two is 802.1ad).
pub fn add_vlans(mut frame: Vec<u8>, ids: &[u16]) -> Vec<u8> {
    for (i, id) in ids.iter().enumerate().rev() {
        let tpid: u16 = if i == 0 && ids.len() > 1 { 0x88a8 } else { 0x8100 };
        let mut tag = tpid.to_be_bytes().to_vec();
        tag.extend_from_slice(&(id & 0x0fff).to_be_bytes());
        frame.splice(12..12, tag);
    }
    frame
}

impl Wrap {
    /// Parses the generator's spelling: `mpls:LABEL`, `gre[:KEY]`,
    /// `gre-eth[:KEY]`, `gre-mpls:LABEL`, `erspan1`, `erspan2:SESSION`,
    /// `erspan3:SESSION`, `vxlan:VNI`, `geneve:VNI`, `gtpu:TEID`, `ipip`,
    /// `mpls-udp:LABEL`.
    pub fn parse(s: &str) -> Result<Wrap, String> {
        let (kind, id) = match s.split_once(':') {
            Some((k, v)) => (
                k,
                Some(v.parse::<u32>().map_err(|_| format!("`{s}`: the id is not a number"))?),
            ),
            None => (s, None),
        };
        let need = || id.ok_or_else(|| format!("`{s}`: {kind} needs an id, e.g. {kind}:100"));
        Ok(match kind {
            "mpls" => Wrap::Mpls { labels: vec![need()?] },
            "gre" => Wrap::Gre {
                key: id,
                seq: false,
                csum: false,
            },
            "gre-eth" => Wrap::GreEth { key: id },
            "gre-mpls" => Wrap::GreMpls { labels: vec![need()?] },
            "erspan1" => Wrap::ErspanI,
            "erspan2" => Wrap::ErspanII {
                session: need()? as u16,
            },
            "erspan3" => Wrap::ErspanIII {
                session: need()? as u16,
                platform: false,
            },
            "vxlan" => Wrap::Vxlan { vni: need()? },
            "geneve" => Wrap::Geneve {
                vni: need()?,
                opt_words: 1,
            },
            "gtpu" => Wrap::Gtpu {
                teid: need()?,
                ext: true,
            },
            "ipip" => Wrap::IpIp,
            "mpls-udp" => Wrap::MplsUdp { labels: vec![need()?] },
            other => return Err(format!("`{s}`: unknown encapsulation `{other}`")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::walk::{walk, DecapConfig, Encap, End};
    use crate::craft::FrameSpec;

    #[test]
    fn every_wrap_walks_to_the_inner_header_with_its_id() {
        let inner = FrameSpec::new("203.0.113.5", "8.8.8.8").build();
        let (s, d): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        for (w, chain, id) in [
            (Wrap::Mpls { labels: vec![16, 17] }, vec![Encap::Mpls], Some(17)),
            (
                Wrap::Gre {
                    key: Some(9),
                    seq: true,
                    csum: true,
                },
                vec![Encap::Gre],
                Some(9),
            ),
            (Wrap::GreEth { key: None }, vec![Encap::Gre], None),
            (
                Wrap::GreMpls { labels: vec![30] },
                vec![Encap::Gre, Encap::Mpls],
                Some(30),
            ),
            (Wrap::ErspanI, vec![Encap::Erspan], None),
            (Wrap::ErspanII { session: 666 }, vec![Encap::Erspan], Some(666)),
            (
                Wrap::ErspanIII {
                    session: 5,
                    platform: true,
                },
                vec![Encap::Erspan],
                Some(5),
            ),
            (Wrap::Vxlan { vni: 100 }, vec![Encap::Vxlan], Some(100)),
            (
                Wrap::Geneve {
                    vni: 0x7b,
                    opt_words: 2,
                },
                vec![Encap::Geneve],
                Some(0x7b),
            ),
            (
                Wrap::Gtpu {
                    teid: 0xdead,
                    ext: true,
                },
                vec![Encap::Gtpu],
                Some(0xdead),
            ),
            (Wrap::IpIp, vec![Encap::Ipip], None),
            (Wrap::MplsUdp { labels: vec![21, 46] }, vec![Encap::MplsUdp], Some(46)),
        ] {
            let f = wrap(&inner, &w, s, d);
            let got = walk(&f, &DecapConfig::DEFAULT);
            let End::ByAddress { ip_offset, v6: false } = got.end else {
                panic!("{w:?}: {:?}", got.end);
            };
            assert_eq!(&f[ip_offset + 12..ip_offset + 16], &[203, 0, 113, 5], "{w:?}");
            assert_eq!(got.chain().collect::<Vec<_>>(), chain, "{w:?}");
            assert_eq!(got.tunnel_id(), id, "{w:?}");
        }
    }
}
