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
use crate::classify::walk::{walk_at, DecapConfig, Encap, EncapChain, End, Outcome, Start};
use crate::classify::Class;

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

/// Where an IP fragment lies in its datagram (mechanical fields only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// The IP identification (IPv4: 16 bits; IPv6: the fragment header's 32).
    pub id: u32,
    /// Offset of this fragment's data in the datagram, in 8-byte units.
    pub offset: u16,
    /// More fragments follow.
    pub more: bool,
    /// Bytes of datagram data this fragment carries.
    pub len: u16,
    /// RFC 1858: a first fragment too short for its whole transport
    /// header, or a TCP fragment at offset 8 bytes (it can rewrite flags).
    pub tiny: bool,
}

impl Fragment {
    pub fn is_first(&self) -> bool {
        self.offset == 0
    }
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
    /// Where the TCP/UDP payload lies in the frame (offset from the frame's
    /// first byte, length). Selection scans it in place; nothing copies it.
    pub payload_offset: u16,
    pub payload_len: u16,
    /// The TCP/UDP payload's length on the wire (the IP length minus the
    /// headers before it), also when the snap cut the frame.
    pub wire_payload_len: u16,
    /// Where the innermost transport header starts in the frame (0: no
    /// transport header, as in a later fragment). The offline snap cuts
    /// from here, as the XDP program does.
    pub l4_offset: u16,
    /// The encapsulations opened to reach the IP header above (empty for
    /// a plain frame).
    pub encap: EncapChain,
    /// The innermost tunnel id, and the encapsulation it belongs to.
    pub tunnel: Option<(Encap, u32)>,
    /// Set when the IP packet is a fragment of a larger datagram.
    pub frag: Option<Fragment>,
    /// The XDP snap cut the frame (its metadata gives the original length):
    /// the length fields may point past the frame, the payload ends early.
    pub snapped: bool,
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
            payload_offset: 0,
            payload_len: 0,
            wire_payload_len: 0,
            l4_offset: 0,
            encap: EncapChain::NONE,
            tunnel: None,
            frag: None,
            snapped: false,
        }
    }

    /// The TCP/UDP payload of `frame` (the frame these headers came from).
    pub fn payload<'a>(&self, frame: &'a [u8]) -> &'a [u8] {
        let start = usize::from(self.payload_offset);
        frame.get(start..start + usize::from(self.payload_len)).unwrap_or(&[])
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

/// Parses an Ethernet frame with up to two VLAN tags, through every
/// encapsulation on its standard port (`DecapConfig::DEFAULT`). A frame of
/// another ethertype is not an error: it comes back with `src == None`.
pub fn parse_ethernet(frame: &[u8]) -> Result<Headers> {
    parse_frame(frame, &DecapConfig::DEFAULT)
}

/// Parses an Ethernet frame: its VLAN tags, then the IP header the XDP
/// classifier judged — the innermost one, through the encapsulations
/// `decap` opens (the same walk, `classify::walk`). The addresses, ports
/// and payload are the inner packet's; the tunnel is in `encap`/`tunnel`.
pub fn parse_frame(frame: &[u8], decap: &DecapConfig) -> Result<Headers> {
    let mut h = Headers::empty();
    parse_frame_into(frame, decap, &mut h)?;
    Ok(h)
}

/// `parse_frame` into the caller's `h`, which starts as `Headers::empty()`
/// (the per-packet path: no Headers is moved or copied).
#[inline(always)]
pub fn parse_frame_into(frame: &[u8], decap: &DecapConfig, h: &mut Headers) -> Result<()> {
    let at = ethernet_and_vlans(frame, h)?;
    parse_network(frame, (0, Start::Ethernet), h.ethertype, at, decap, h)
}

/// The Ethernet header and up to two VLAN tags into `h` (the tags and the
/// ethertype after them); returns the offset of what follows.
#[inline(always)]
fn ethernet_and_vlans(frame: &[u8], h: &mut Headers) -> Result<usize> {
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
    Ok(frame.len() - rest.len())
}

/// Parses a captured frame where the XDP metadata says the judged IP
/// header is: the outer Ethernet header's VLAN tags, then that IP header
/// and its upper layer — no walk. Metadata that does not fit the frame
/// (an IP header past its end) is not trusted: the frame is walked.
pub fn parse_with_meta(frame: &[u8], meta: &crate::classify::meta::XdpMeta, decap: &DecapConfig) -> Result<Headers> {
    let mut h = Headers::empty();
    parse_with_meta_into(frame, meta, decap, &mut h)?;
    Ok(h)
}

/// `parse_with_meta` into the caller's `h`, which starts as
/// `Headers::empty()`.
#[inline]
pub fn parse_with_meta_into(
    frame: &[u8],
    meta: &crate::classify::meta::XdpMeta,
    decap: &DecapConfig,
    h: &mut Headers,
) -> Result<()> {
    let at = usize::from(meta.ip_offset);
    if at < 14 || at >= frame.len() {
        return parse_frame_into(frame, decap, h);
    }
    ethernet_and_vlans(frame, h)?;
    h.snapped = meta.orig_len as usize > frame.len();
    h.encap = meta.chain;
    h.tunnel = meta.tunnel;
    let t = if meta.v6 { ETHERTYPE_IPV6 } else { ETHERTYPE_IPV4 };
    parse_l3(t, &frame[at..], at, h)
}

/// Parses what follows an ethertype at `at`. The plain path parses one IP
/// header; only a packet that can carry an encapsulation (MPLS, IP
/// protocols 4, 41 and 47, UDP to a tunnel port) is walked from `walk_from`
/// like the XDP program walks it, and its innermost IP header parsed.
#[inline(always)]
pub(crate) fn parse_network(
    frame: &[u8],
    walk_from: (usize, Start),
    ethertype: u16,
    at: usize,
    decap: &DecapConfig,
    h: &mut Headers,
) -> Result<()> {
    parse_l3(ethertype, &frame[at..], at, h)?;
    if !may_be_tunnel(h, decap) {
        return Ok(());
    }
    walk_to_inner(frame, walk_from, decap, h)
}

/// The walk of a packet that can carry an encapsulation, and the parse of
/// its innermost IP header into `h`. Out of line: the plain path, which
/// never comes here, stays small enough to inline.
#[cold]
#[inline(never)]
fn walk_to_inner(frame: &[u8], walk_from: (usize, Start), decap: &DecapConfig, h: &mut Headers) -> Result<()> {
    let w = walk_at(frame, walk_from.0, walk_from.1, decap);
    let (ip_offset, v6) = match w.end {
        End::ByAddress { ip_offset, v6 } => (ip_offset, v6),
        End::Fixed(Class::NonIp) => {
            // An encapsulated ARP or signalling message: nothing to track.
            *h = Headers {
                encap: w.chain,
                tunnel: w.tunnel,
                ..Headers::empty()
            };
            return Ok(());
        }
        End::Fixed(Class::Undecided) if w.stop.is_some() && h.frag.is_none_or(|f| f.is_first()) => {
            return Err(ParseError::EncapsulationNotOpened)
        }
        End::Fixed(Class::Undecided) => return Err(ParseError::UndecidedFragment),
        End::Fixed(Class::TooDeep) => return Err(ParseError::TooDeep),
        End::Fixed(_) if matches!(w.stop, Some((_, Outcome::Malformed))) => return Err(ParseError::BadEncapsulation),
        // A first UDP fragment too short for the UDP header: its port
        // (a tunnel's?) is unknown.
        End::Fixed(_) if w.chain.is_empty() && h.protocol == PROTO_UDP => return Err(ParseError::TruncatedUdp),
        End::Fixed(_) => return Err(ParseError::BadInnerHeader),
    };
    let mut inner = Headers {
        vlans: h.vlans,
        vlan_depth: h.vlan_depth,
        ethertype: h.ethertype,
        encap: w.chain,
        tunnel: w.tunnel,
        // A cut frame's inner packet is cut too.
        snapped: h.snapped,
        ..Headers::empty()
    };
    let t = if v6 { ETHERTYPE_IPV6 } else { ETHERTYPE_IPV4 };
    parse_l3(t, &frame[ip_offset..], ip_offset, &mut inner)?;
    *h = inner;
    Ok(())
}

/// Whether the walk could open something in this packet (whether or not
/// the config opens it: the walk then says undecided).
#[inline(always)]
fn may_be_tunnel(h: &Headers, decap: &DecapConfig) -> bool {
    use super::mpls::{ETHERTYPE_MPLS_MULTICAST, ETHERTYPE_MPLS_UNICAST};
    // By protocol first: TCP, the common case, is decided by one compare.
    // A frame without an IP header has protocol 0.
    match h.protocol {
        PROTO_TCP | PROTO_ICMP | PROTO_ICMPV6 => false,
        4 | 41 | 47 => true,
        PROTO_UDP => match h.l4 {
            L4::Udp { dst_port, .. } => {
                dst_port == decap.vxlan_port
                    || dst_port == decap.geneve_port
                    || dst_port == decap.gtpu_port
                    || dst_port == decap.mpls_udp_port
            }
            // A later fragment (or a cut first one): no port to tell by.
            _ => true,
        },
        _ => h.src.is_none() && (h.ethertype == ETHERTYPE_MPLS_UNICAST || h.ethertype == ETHERTYPE_MPLS_MULTICAST),
    }
}

/// Parses one IPv4 or IPv6 header and its upper layer (what follows an
/// ethertype); any other ethertype leaves `h` without addresses.
/// `at` is the offset of `rest` in the frame.
pub(crate) fn parse_l3(ethertype: u16, rest: &[u8], at: usize, h: &mut Headers) -> Result<()> {
    match ethertype {
        ETHERTYPE_IPV4 => parse_ipv4(rest, h)?,
        ETHERTYPE_IPV6 => parse_ipv6(rest, h)?,
        _ => return Ok(()),
    }
    if h.payload_len > 0 {
        match u16::try_from(at + usize::from(h.payload_offset)) {
            Ok(o) => h.payload_offset = o,
            Err(_) => h.payload_len = 0,
        }
    }
    if h.l4_offset > 0 {
        h.l4_offset = u16::try_from(at + usize::from(h.l4_offset)).unwrap_or(0);
    }
    Ok(())
}

/// Parses a raw IP packet (version from the first nibble), for link types
/// without an Ethernet header.
pub fn parse_ip(packet: &[u8]) -> Result<Headers> {
    let mut h = Headers::empty();
    match packet.first().map(|b| b >> 4) {
        Some(4) => {
            h.ethertype = ETHERTYPE_IPV4;
            parse_l3(ETHERTYPE_IPV4, packet, 0, &mut h)?
        }
        Some(6) => {
            h.ethertype = ETHERTYPE_IPV6;
            parse_l3(ETHERTYPE_IPV6, packet, 0, &mut h)?
        }
        Some(_) => return Err(ParseError::BadIpv4Version),
        None => return Err(ParseError::TruncatedIpv4),
    }
    Ok(h)
}

fn parse_ipv4(bytes: &[u8], h: &mut Headers) -> Result<()> {
    let ip = Ipv4Packet::new_checked_snapped(bytes, h.snapped)?;
    h.src = Some(IpAddr::V4(ip.src()));
    h.dst = Some(IpAddr::V4(ip.dst()));
    h.protocol = ip.protocol();
    h.ttl = ip.ttl();
    h.ip_len = ip.total_len();
    if ip.frag_offset() != 0 || ip.more_fragments() {
        h.frag = Some(Fragment {
            id: u32::from(ip.ident()),
            offset: ip.frag_offset(),
            more: ip.more_fragments(),
            len: u16::try_from(ip.payload_len()).unwrap_or(u16::MAX),
            tiny: ip.frag_offset() == 1 && ip.protocol() == PROTO_TCP,
        });
    }
    if ip.frag_offset() == 0 {
        h.l4_offset = ip.header_len() as u16;
        if ip.more_fragments() {
            let (l4, whole) = parse_l4_first_fragment(ip.protocol(), ip.payload());
            h.l4 = l4;
            if let Some(f) = h.frag.as_mut() {
                f.tiny = !whole;
            }
        } else {
            let (l4, range) = parse_l4_with_payload(ip.protocol(), ip.payload(), h.snapped)?;
            h.l4 = l4;
            set_payload(h, ip.header_len(), range);
        }
    }
    Ok(())
}

fn parse_ipv6(bytes: &[u8], h: &mut Headers) -> Result<()> {
    let ip = Ipv6Packet::new_checked_snapped(bytes, h.snapped)?;
    h.src = Some(IpAddr::V6(ip.src()));
    h.dst = Some(IpAddr::V6(ip.dst()));
    h.ttl = ip.hop_limit();
    h.ip_len = ip.payload_len().saturating_add(40);
    let payload = ip.payload();
    let up = walk_extensions(ip.next_header(), payload)?;
    h.protocol = up.protocol;
    if let Some((id, offset, more)) = up.fragment {
        h.frag = Some(Fragment {
            id,
            offset,
            more,
            len: u16::try_from(usize::from(ip.payload_len()).saturating_sub(up.offset)).unwrap_or(u16::MAX),
            tiny: offset == 1 && up.protocol == PROTO_TCP,
        });
    }
    if !up.later_fragment && up.protocol != NH_NO_NEXT {
        h.l4_offset = (40 + up.offset) as u16;
        let l4 = &payload[up.offset..];
        if up.first_fragment {
            let (l4, whole) = parse_l4_first_fragment(up.protocol, l4);
            h.l4 = l4;
            if let Some(f) = h.frag.as_mut() {
                f.tiny = !whole;
            }
        } else {
            let (l4, range) = parse_l4_with_payload(up.protocol, l4, h.snapped)?;
            h.l4 = l4;
            set_payload(h, 40 + up.offset, range);
        }
    }
    Ok(())
}

/// A first fragment may be too short for the whole L4 header (RFC 1858
/// tiny fragments): take what the 8 guaranteed bytes give, no error.
/// Also says whether the whole transport header was there.
fn parse_l4_first_fragment(protocol: u8, bytes: &[u8]) -> (L4, bool) {
    if let Ok(l4) = parse_l4(protocol, bytes) {
        return (l4, true);
    }
    let l4 = match (protocol, bytes) {
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
    };
    (l4, false)
}

fn parse_l4(protocol: u8, bytes: &[u8]) -> Result<L4> {
    parse_l4_with_payload(protocol, bytes, false).map(|(l4, _)| l4)
}

/// The upper-layer fields and where the TCP/UDP payload lies in `bytes`
/// (`snapped`: `bytes` may end before the datagram does).
fn parse_l4_with_payload(protocol: u8, bytes: &[u8], snapped: bool) -> Result<(L4, (usize, usize))> {
    Ok(match protocol {
        PROTO_TCP => {
            let t = TcpSegment::new_checked(bytes)?;
            let start = t.header_len();
            let l4 = L4::Tcp {
                src_port: t.src_port(),
                dst_port: t.dst_port(),
                flags: t.flags(),
            };
            (l4, (start, bytes.len() - start))
        }
        PROTO_UDP => {
            let u = UdpDatagram::new_checked_snapped(bytes, snapped)?;
            let end = match u.length() {
                0 => bytes.len(),
                n => usize::from(n).min(bytes.len()),
            };
            (
                L4::Udp {
                    src_port: u.src_port(),
                    dst_port: u.dst_port(),
                },
                (8, end - 8),
            )
        }
        PROTO_ICMP | PROTO_ICMPV6 => {
            let i = IcmpHeader::new_checked(bytes)?;
            (
                L4::Icmp {
                    icmp_type: i.icmp_type(),
                    code: i.code(),
                },
                (0, 0),
            )
        }
        _ => (L4::None, (0, 0)),
    })
}

/// Records the payload range, `at` bytes into the IP packet.
fn set_payload(h: &mut Headers, at: usize, range: (usize, usize)) {
    if range != (0, 0) {
        let before = u16::try_from(at + range.0).unwrap_or(u16::MAX);
        h.wire_payload_len = h.ip_len.saturating_sub(before);
    }
    if range.1 == 0 {
        return;
    }
    if let (Ok(off), Ok(len)) = (u16::try_from(at + range.0), u16::try_from(range.1)) {
        h.payload_offset = off;
        h.payload_len = len;
    }
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
        assert_eq!(h.payload(&f), b"hello");
        assert_eq!(usize::from(h.payload_offset), 14 + 8 + 20 + 20);
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

    /// A frame the XDP snap cut: its length fields point past it. With the
    /// metadata's original length the parse accepts it, keeps the lengths
    /// the headers state (what flows count and size rules read) and ends
    /// the payload where the frame ends; without it the frame is malformed.
    #[test]
    fn a_snapped_frame_parses_with_exact_lengths_and_a_short_payload() {
        use crate::classify::meta::XdpMeta;
        for (t, cut) in [
            (
                Transport::Udp {
                    src_port: 5555,
                    dst_port: 443,
                },
                14 + 20 + 8 + 16,
            ),
            (
                Transport::Tcp {
                    src_port: 5555,
                    dst_port: 443,
                    flags: 0x18,
                },
                14 + 20 + 20 + 16,
            ),
        ] {
            let whole = FrameSpec::new("203.0.113.5", "192.0.2.10")
                .transport(t)
                .frame_len(300)
                .build();
            let meta = XdpMeta {
                ip_offset: 14,
                v6: false,
                class: crate::classify::Class::Inbound,
                chain: crate::classify::walk::EncapChain::NONE,
                tunnel: None,
                orig_len: 300,
            };
            let cut_frame = &whole[..cut];
            let h = parse_with_meta(cut_frame, &meta, &DecapConfig::DEFAULT).unwrap();
            assert!(h.snapped);
            assert_eq!(h.ip_len, 300 - 14);
            assert_eq!(h.payload(cut_frame).len(), 16);
            assert_eq!(h.payload(cut_frame), &whole[cut - 16..cut]);
            assert!(
                parse_ethernet(cut_frame).is_err(),
                "without the metadata a cut frame is malformed"
            );
            let full = parse_with_meta(&whole, &meta, &DecapConfig::DEFAULT).unwrap();
            assert!(!full.snapped);
            assert_eq!(full.ip_len, h.ip_len);
        }
    }
}
