//! The walk from a frame to its mechanical header fields.

use std::fmt;
use std::net::IpAddr;

use super::ethernet::{is_vlan, EthernetFrame, VlanTag, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use super::icmp::IcmpHeader;
use super::ipv4::Ipv4Packet;
use super::ipv6::{walk_extensions, Ipv6Packet, NH_NO_NEXT};
use super::tcp::TcpSegment;
use super::udp::UdpDatagram;
use super::{ParseError, Result};

pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_ICMPV6: u8 = 58;

/// VLAN tags we record (the same depth the XDP program walks).
pub const MAX_VLANS: usize = 2;

/// Upper-layer fields.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum L4 {
    /// No upper-layer header here (non-first fragment, no-next-header, or
    /// a protocol we do not parse).
    None,
    Tcp {
        src_port: u16,
        dst_port: u16,
        flags: u8,
    },
    Udp {
        src_port: u16,
        dst_port: u16,
    },
    Icmp {
        icmp_type: u8,
        code: u8,
    },
}

/// Mechanical header fields of one packet. Holds no byte buffers.
///
/// `Debug` is redacted on purpose: this type describes packets that may not
/// be selected, and nothing about an unselected packet may reach a log.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Headers {
    pub vlans: [u16; MAX_VLANS],
    pub vlan_depth: u8,
    /// Ethertype after the VLAN tags (0 for raw-IP input).
    pub ethertype: u16,
    /// None for non-IP frames.
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    pub protocol: u8,
    pub ttl: u8,
    /// IP packet length from the IP header (what the flow counts as bytes).
    pub ip_len: u16,
    pub l4: L4,
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Headers { <redacted> }")
    }
}

impl Headers {
    pub(crate) fn empty() -> Self {
        Headers {
            vlans: [0; MAX_VLANS],
            vlan_depth: 0,
            ethertype: 0,
            src: None,
            dst: None,
            protocol: 0,
            ttl: 0,
            ip_len: 0,
            l4: L4::None,
        }
    }

    pub fn is_ip(&self) -> bool {
        self.src.is_some()
    }

    pub fn ports(&self) -> (u16, u16) {
        match self.l4 {
            L4::Tcp { src_port, dst_port, .. } | L4::Udp { src_port, dst_port } => (src_port, dst_port),
            // IPFIX convention: ICMP type/code in the destination port.
            L4::Icmp { icmp_type, code } => (0, u16::from(icmp_type) << 8 | u16::from(code)),
            L4::None => (0, 0),
        }
    }

    pub fn tcp_flags(&self) -> u8 {
        match self.l4 {
            L4::Tcp { flags, .. } => flags,
            _ => 0,
        }
    }
}

/// Parses an Ethernet frame with up to two VLAN tags. A frame of another
/// ethertype is not an error: it comes back with `src == None`.
pub fn parse_ethernet(frame: &[u8]) -> Result<Headers> {
    let mut h = Headers::empty();
    let eth = EthernetFrame::new_checked(frame)?;
    let mut ethertype = eth.ethertype();
    let mut rest = eth.into_payload();
    while is_vlan(ethertype) && usize::from(h.vlan_depth) < MAX_VLANS {
        let tag = VlanTag::new_checked(rest)?;
        h.vlans[usize::from(h.vlan_depth)] = tag.vid();
        h.vlan_depth += 1;
        ethertype = tag.ethertype();
        rest = tag.into_payload();
    }
    h.ethertype = ethertype;
    parse_l3(ethertype, rest, &mut h)?;
    Ok(h)
}

/// Parses what follows an ethertype (IPv4, IPv6, or an MPLS stack over
/// IP); any other ethertype leaves `h` without addresses.
pub(crate) fn parse_l3(ethertype: u16, rest: &[u8], h: &mut Headers) -> Result<()> {
    match ethertype {
        ETHERTYPE_IPV4 => parse_ipv4(rest, h),
        ETHERTYPE_IPV6 => parse_ipv6(rest, h),
        super::mpls::ETHERTYPE_MPLS_UNICAST | super::mpls::ETHERTYPE_MPLS_MULTICAST => {
            let inner = super::mpls::pop_stack(rest)?;
            match inner.first().map(|b| b >> 4) {
                Some(4) => parse_ipv4(inner, h),
                Some(6) => parse_ipv6(inner, h),
                _ => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

/// Parses a raw IP packet (version from the first nibble), for link types
/// without an Ethernet header.
pub fn parse_ip(packet: &[u8]) -> Result<Headers> {
    let mut h = Headers::empty();
    match packet.first().map(|b| b >> 4) {
        Some(4) => {
            h.ethertype = ETHERTYPE_IPV4;
            parse_ipv4(packet, &mut h)?
        }
        Some(6) => {
            h.ethertype = ETHERTYPE_IPV6;
            parse_ipv6(packet, &mut h)?
        }
        Some(_) => return Err(ParseError::BadIpv4Version),
        None => return Err(ParseError::TruncatedIpv4),
    }
    Ok(h)
}

fn parse_ipv4(bytes: &[u8], h: &mut Headers) -> Result<()> {
    let ip = Ipv4Packet::new_checked(bytes)?;
    h.src = Some(IpAddr::V4(ip.src()));
    h.dst = Some(IpAddr::V4(ip.dst()));
    h.protocol = ip.protocol();
    h.ttl = ip.ttl();
    h.ip_len = ip.total_len();
    if ip.frag_offset() == 0 {
        h.l4 = if ip.more_fragments() {
            parse_l4_first_fragment(ip.protocol(), ip.payload())
        } else {
            parse_l4(ip.protocol(), ip.payload())?
        };
    }
    Ok(())
}

fn parse_ipv6(bytes: &[u8], h: &mut Headers) -> Result<()> {
    let ip = Ipv6Packet::new_checked(bytes)?;
    h.src = Some(IpAddr::V6(ip.src()));
    h.dst = Some(IpAddr::V6(ip.dst()));
    h.ttl = ip.hop_limit();
    h.ip_len = ip.payload_len().saturating_add(40);
    let payload = ip.payload();
    let up = walk_extensions(ip.next_header(), payload)?;
    h.protocol = up.protocol;
    if !up.later_fragment && up.protocol != NH_NO_NEXT {
        let l4 = &payload[up.offset..];
        h.l4 = if up.first_fragment {
            parse_l4_first_fragment(up.protocol, l4)
        } else {
            parse_l4(up.protocol, l4)?
        };
    }
    Ok(())
}

/// A first fragment may be too short for the whole L4 header (RFC 1858
/// tiny fragments): take what the 8 guaranteed bytes give, no error.
fn parse_l4_first_fragment(protocol: u8, bytes: &[u8]) -> L4 {
    if let Ok(l4) = parse_l4(protocol, bytes) {
        return l4;
    }
    match (protocol, bytes) {
        (PROTO_TCP, [a, b, c, d, ..]) => L4::Tcp {
            src_port: u16::from_be_bytes([*a, *b]),
            dst_port: u16::from_be_bytes([*c, *d]),
            flags: 0,
        },
        (PROTO_UDP, [a, b, c, d, ..]) => L4::Udp {
            src_port: u16::from_be_bytes([*a, *b]),
            dst_port: u16::from_be_bytes([*c, *d]),
        },
        _ => L4::None,
    }
}

fn parse_l4(protocol: u8, bytes: &[u8]) -> Result<L4> {
    Ok(match protocol {
        PROTO_TCP => {
            let t = TcpSegment::new_checked(bytes)?;
            L4::Tcp {
                src_port: t.src_port(),
                dst_port: t.dst_port(),
                flags: t.flags(),
            }
        }
        PROTO_UDP => {
            let u = UdpDatagram::new_checked(bytes)?;
            L4::Udp {
                src_port: u.src_port(),
                dst_port: u.dst_port(),
            }
        }
        PROTO_ICMP | PROTO_ICMPV6 => {
            let i = IcmpHeader::new_checked(bytes)?;
            L4::Icmp {
                icmp_type: i.icmp_type(),
                code: i.code(),
            }
        }
        _ => L4::None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::craft::{FrameSpec, Transport};

    #[test]
    fn vlan_tcp_frame_yields_mechanical_fields() {
        let f = FrameSpec::new("203.0.113.5", "198.51.100.7")
            .vlans(&[100, 200])
            .transport(Transport::Tcp {
                src_port: 4444,
                dst_port: 80,
                flags: 0x12,
            })
            .payload(b"hello")
            .build();
        let h = parse_ethernet(&f).unwrap();
        assert_eq!(h.vlans, [100, 200]);
        assert_eq!(h.vlan_depth, 2);
        assert_eq!(h.src, Some("203.0.113.5".parse().unwrap()));
        assert_eq!(h.dst, Some("198.51.100.7".parse().unwrap()));
        assert_eq!(h.protocol, PROTO_TCP);
        assert!(
            h.l4 == L4::Tcp {
                src_port: 4444,
                dst_port: 80,
                flags: 0x12
            }
        );
        assert_eq!(usize::from(h.ip_len), 20 + 20 + 5);
    }

    #[test]
    fn ipv6_udp_and_icmpv6() {
        let f = FrameSpec::new("2001:db8::1", "2001:db8:1::2")
            .transport(Transport::Udp {
                src_port: 5353,
                dst_port: 53,
            })
            .build();
        let h = parse_ethernet(&f).unwrap();
        assert_eq!(h.ports(), (5353, 53));
        let f = FrameSpec::new("2001:db8::1", "2001:db8:1::2")
            .transport(Transport::Icmp {
                icmp_type: 128,
                code: 0,
            })
            .build();
        assert!(
            parse_ethernet(&f).unwrap().l4
                == L4::Icmp {
                    icmp_type: 128,
                    code: 0
                }
        );
    }

    #[test]
    fn non_ip_is_not_an_error() {
        let mut f = FrameSpec::new("192.0.2.1", "192.0.2.2").build();
        f[12] = 0x08;
        f[13] = 0x06;
        let h = parse_ethernet(&f).unwrap();
        assert!(!h.is_ip());
        assert_eq!(h.ethertype, 0x0806);
    }

    #[test]
    fn debug_output_is_redacted() {
        let f = FrameSpec::new("203.0.113.5", "198.51.100.7").build();
        let h = parse_ethernet(&f).unwrap();
        let s = format!("{h:?}");
        assert!(!s.contains("203.0.113.5") && !s.contains("198"), "{s}");
    }
}
