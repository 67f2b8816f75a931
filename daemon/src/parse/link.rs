//! Link layers other than Ethernet, for offline input (pcap files): raw IP,
//! BSD loopback (DLT_NULL), Linux cooked capture (SLL, SLL2) and PPP.

use super::headers::parse_frame_into;
use super::headers::{parse_network, Headers};
use super::{be16, ParseError, Result};
use crate::classify::walk::{DecapConfig, Start};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    Ethernet,
    RawIp,
    Null,
    LinuxSll,
    LinuxSll2,
    Ppp,
}

impl LinkType {
    /// From a pcap LINKTYPE_ value.
    pub fn from_pcap(v: u32) -> Option<LinkType> {
        Some(match v {
            1 => LinkType::Ethernet,
            0 => LinkType::Null,
            9 => LinkType::Ppp,
            12 | 14 | 101 | 228 | 229 => LinkType::RawIp,
            113 => LinkType::LinuxSll,
            276 => LinkType::LinuxSll2,
            _ => return None,
        })
    }
}

/// The ethertype of a raw IP packet, by its version nibble (0: neither).
fn ethertype_by_version(b: &[u8]) -> u16 {
    match b.first().map(|v| v >> 4) {
        Some(4) => 0x0800,
        Some(6) => 0x86dd,
        _ => 0,
    }
}

/// Parses a frame of link type `link`, through every encapsulation on its
/// standard port (`DecapConfig::DEFAULT`).
pub fn parse_link(link: LinkType, frame: &[u8]) -> Result<Headers> {
    parse_link_with(link, frame, &DecapConfig::DEFAULT)
}

/// Parses a frame of link type `link`, through the encapsulations `decap`
/// opens.
pub fn parse_link_with(link: LinkType, frame: &[u8], decap: &DecapConfig) -> Result<Headers> {
    let mut h = Headers::empty();
    parse_link_into(link, frame, decap, &mut h)?;
    Ok(h)
}

/// `parse_link_with` into the caller's `h`, which starts as
/// `Headers::empty()`.
pub fn parse_link_into(link: LinkType, frame: &[u8], decap: &DecapConfig, h: &mut Headers) -> Result<()> {
    let (ethertype, at) = match link {
        LinkType::Ethernet => return parse_frame_into(frame, decap, h),
        LinkType::RawIp => (ethertype_by_version(frame), 0),
        LinkType::Null => {
            // 4-byte address family in the capturing host's byte order.
            let rest = frame.get(4..).ok_or(ParseError::TruncatedLinkHeader)?;
            (ethertype_by_version(rest), 4)
        }
        LinkType::LinuxSll => {
            frame.get(16..).ok_or(ParseError::TruncatedLinkHeader)?;
            (be16(frame, 14), 16)
        }
        LinkType::LinuxSll2 => {
            frame.get(20..).ok_or(ParseError::TruncatedLinkHeader)?;
            (be16(frame, 0), 20)
        }
        LinkType::Ppp => {
            // Optional address/control (ff 03), then a 2-byte protocol.
            let b = if frame.starts_with(&[0xff, 0x03]) {
                &frame[2..]
            } else {
                frame
            };
            let proto = b.get(..2).map(|p| be16(p, 0)).ok_or(ParseError::TruncatedLinkHeader)?;
            let at = frame.len() - b.len() + 2;
            let ethertype = match proto {
                0x0021 => 0x0800,
                0x0057 => 0x86dd,
                0x0281 => 0x8847,
                0x0283 => 0x8848,
                _ => 0,
            };
            (ethertype, at)
        }
    };
    h.ethertype = ethertype;
    parse_network(frame, (at, Start::Ethertype(ethertype)), ethertype, at, decap, h)
}
