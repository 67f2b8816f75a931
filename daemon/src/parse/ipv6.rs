//! IPv6 header view and a bounded walk of the extension-header chain.

use std::net::Ipv6Addr;

use super::{be16, ParseError, Result};

mod field {
    use core::ops::Range;
    pub const VER: usize = 0;
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Range<usize> = 8..24;
    pub const DST: Range<usize> = 24..40;
    pub const HEADER_LEN: usize = 40;
}

pub const NH_HOP_BY_HOP: u8 = 0;
pub const NH_ROUTING: u8 = 43;
pub const NH_FRAGMENT: u8 = 44;
pub const NH_AH: u8 = 51;
pub const NH_NO_NEXT: u8 = 59;
pub const NH_DEST_OPTS: u8 = 60;
pub const NH_MOBILITY: u8 = 135;
pub const NH_HIP: u8 = 139;
pub const NH_SHIM6: u8 = 140;

/// Longest chain we walk; more is counted as malformed (a parser must not
/// be made to loop by the packet).
pub const MAX_EXTENSION_HEADERS: usize = 8;

#[derive(Clone, Copy)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    pub fn new_checked(buffer: T) -> Result<Self> {
        Self::new_checked_snapped(buffer, false)
    }

    /// The same for a packet the XDP snap may have cut: the payload length
    /// may then lie past the buffer, and `payload()` ends with it.
    pub fn new_checked_snapped(buffer: T, snapped: bool) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < field::HEADER_LEN {
            return Err(ParseError::TruncatedIpv6);
        }
        if b[field::VER] >> 4 != 6 {
            return Err(ParseError::BadIpv6Version);
        }
        if field::HEADER_LEN + usize::from(be16(b, field::PAYLOAD_LEN)) > b.len() && !snapped {
            return Err(ParseError::BadIpv6PayloadLength);
        }
        Ok(Self { buffer })
    }

    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    pub fn payload_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::PAYLOAD_LEN)
    }

    pub fn src(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::SRC]);
        Ipv6Addr::from(a)
    }

    pub fn dst(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::DST]);
        Ipv6Addr::from(a)
    }

    /// The payload as the payload-length field describes it (to the
    /// buffer's end if the packet was snapped).
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let end = field::HEADER_LEN + usize::from(self.payload_len());
        &b[field::HEADER_LEN..end.min(b.len())]
    }
}

/// Where the extension-header chain ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpperLayer {
    /// Protocol of the upper layer (59 = no next header).
    pub protocol: u8,
    /// Offset of the upper-layer header within the IPv6 payload.
    pub offset: usize,
    /// A non-first fragment: the upper-layer header is not in this packet.
    pub later_fragment: bool,
    /// The first of several fragments: the upper-layer header may be cut.
    pub first_fragment: bool,
    /// The fragment header's identification, offset (8-byte units) and
    /// M flag, when the packet is a fragment (not an atomic one).
    pub fragment: Option<(u32, u16, bool)>,
}

/// Walks the extension-header chain starting at `next_header` over
/// `payload` (the IPv6 payload).
pub fn walk_extensions(mut next_header: u8, payload: &[u8]) -> Result<UpperLayer> {
    let mut offset = 0usize;
    let mut first_fragment = false;
    let mut fragment = None;
    for _ in 0..MAX_EXTENSION_HEADERS {
        let len = match next_header {
            NH_HOP_BY_HOP | NH_ROUTING | NH_DEST_OPTS | NH_MOBILITY | NH_HIP | NH_SHIM6 => {
                let h = payload
                    .get(offset..offset + 2)
                    .ok_or(ParseError::TruncatedExtensionHeader)?;
                (usize::from(h[1]) + 1) * 8
            }
            NH_AH => {
                let h = payload
                    .get(offset..offset + 2)
                    .ok_or(ParseError::TruncatedExtensionHeader)?;
                (usize::from(h[1]) + 2) * 4
            }
            NH_FRAGMENT => {
                let h = payload
                    .get(offset..offset + 8)
                    .ok_or(ParseError::TruncatedExtensionHeader)?;
                let frag_offset = be16(h, 2) >> 3;
                let more = be16(h, 2) & 1 != 0;
                let id = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
                if frag_offset != 0 {
                    return Ok(UpperLayer {
                        protocol: h[0],
                        offset: offset + 8,
                        later_fragment: true,
                        first_fragment: false,
                        fragment: Some((id, frag_offset, more)),
                    });
                }
                if more {
                    first_fragment = true;
                    fragment = Some((id, 0, true));
                }
                8
            }
            other => {
                return Ok(UpperLayer {
                    protocol: other,
                    offset,
                    later_fragment: false,
                    first_fragment,
                    fragment,
                })
            }
        };
        if offset + len > payload.len() {
            return Err(ParseError::TruncatedExtensionHeader);
        }
        next_header = payload[offset];
        offset += len;
    }
    match next_header {
        NH_HOP_BY_HOP | NH_ROUTING | NH_DEST_OPTS | NH_MOBILITY | NH_HIP | NH_SHIM6 | NH_AH | NH_FRAGMENT => {
            Err(ParseError::TooManyExtensionHeaders)
        }
        other => Ok(UpperLayer {
            protocol: other,
            offset,
            later_fragment: false,
            first_fragment,
            fragment,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_routing_then_udp() {
        // Routing header (len 2 => 24 bytes) whose next header is UDP (17).
        let mut p = vec![0u8; 24 + 8];
        p[0] = 17;
        p[1] = 2;
        let up = walk_extensions(NH_ROUTING, &p).unwrap();
        assert_eq!(
            up,
            UpperLayer {
                protocol: 17,
                offset: 24,
                later_fragment: false,
                first_fragment: false,
                fragment: None,
            }
        );
    }

    #[test]
    fn later_fragment_has_no_upper_header() {
        let p = [6u8, 0, 0x00, 0x08, 0, 0, 0, 1];
        let up = walk_extensions(NH_FRAGMENT, &p).unwrap();
        assert!(up.later_fragment);
        assert_eq!(up.protocol, 6);
    }

    #[test]
    fn truncated_and_endless_chains_are_errors() {
        assert_eq!(
            walk_extensions(NH_ROUTING, &[17, 2, 0]),
            Err(ParseError::TruncatedExtensionHeader)
        );
        // A chain of 9 destination-options headers, each pointing at the next.
        let p = [NH_DEST_OPTS, 0, 0, 0, 0, 0, 0, 0].repeat(9);
        assert_eq!(
            walk_extensions(NH_DEST_OPTS, &p),
            Err(ParseError::TooManyExtensionHeaders)
        );
    }
}
