//! Link layers other than Ethernet, for offline input (pcap files): raw IP,
//! BSD loopback (DLT_NULL), Linux cooked capture (SLL, SLL2) and PPP.

use super::headers::{parse_l3, Headers};
use super::{be16, parse_ethernet, ParseError, Result};

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

fn ip_by_version(b: &[u8], at: usize, h: &mut Headers) -> Result<()> {
    match b.first().map(|v| v >> 4) {
        Some(4) => parse_l3(0x0800, b, at, h),
        Some(6) => parse_l3(0x86dd, b, at, h),
        _ => Ok(()),
    }
}

/// Parses a frame of link type `link`.
pub fn parse_link(link: LinkType, frame: &[u8]) -> Result<Headers> {
    let mut h = Headers::empty();
    match link {
        LinkType::Ethernet => return parse_ethernet(frame),
        LinkType::RawIp => ip_by_version(frame, 0, &mut h)?,
        LinkType::Null => {
            // 4-byte address family in the capturing host's byte order.
            let rest = frame.get(4..).ok_or(ParseError::TruncatedLinkHeader)?;
            ip_by_version(rest, 4, &mut h)?;
        }
        LinkType::LinuxSll => {
            let rest = frame.get(16..).ok_or(ParseError::TruncatedLinkHeader)?;
            h.ethertype = be16(frame, 14);
            parse_l3(h.ethertype, rest, 16, &mut h)?;
        }
        LinkType::LinuxSll2 => {
            let rest = frame.get(20..).ok_or(ParseError::TruncatedLinkHeader)?;
            h.ethertype = be16(frame, 0);
            parse_l3(h.ethertype, rest, 20, &mut h)?;
        }
        LinkType::Ppp => {
            // Optional address/control (ff 03), then a 2-byte protocol.
            let b = if frame.starts_with(&[0xff, 0x03]) {
                &frame[2..]
            } else {
                frame
            };
            let proto = b.get(..2).map(|p| be16(p, 0)).ok_or(ParseError::TruncatedLinkHeader)?;
            let rest = &b[2..];
            let at = frame.len() - rest.len();
            match proto {
                0x0021 => parse_l3(0x0800, rest, at, &mut h)?,
                0x0057 => parse_l3(0x86dd, rest, at, &mut h)?,
                0x0281 => parse_l3(0x8847, rest, at, &mut h)?,
                0x0283 => parse_l3(0x8848, rest, at, &mut h)?,
                _ => {}
            }
        }
    }
    Ok(h)
}
