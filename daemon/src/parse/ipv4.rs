//! IPv4 header view with IHL and total-length checks.

use std::net::Ipv4Addr;

use super::{be16, ParseError, Result};

mod field {
    pub const VER_IHL: usize = 0;
    pub const TOTAL_LEN: usize = 2;
    pub const FLAGS_FRAG: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
    pub const MIN_HEADER: usize = 20;
}

#[derive(Clone, Copy)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Validates version, IHL and total length against the buffer, so that
    /// `payload()` is exactly the IP payload (trailing link padding removed).
    pub fn new_checked(buffer: T) -> Result<Self> {
        Self::new_checked_snapped(buffer, false)
    }

    /// The same for a packet the XDP snap may have cut (`snapped`): the
    /// total length may then lie past the buffer, and `payload()` ends
    /// where the buffer does.
    pub fn new_checked_snapped(buffer: T, snapped: bool) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < field::MIN_HEADER {
            return Err(ParseError::TruncatedIpv4);
        }
        if b[field::VER_IHL] >> 4 != 4 {
            return Err(ParseError::BadIpv4Version);
        }
        let hdr = usize::from(b[field::VER_IHL] & 0x0f) * 4;
        if hdr < field::MIN_HEADER || hdr > b.len() {
            return Err(ParseError::BadIpv4HeaderLength);
        }
        let total = usize::from(be16(b, field::TOTAL_LEN));
        if total < hdr || (total > b.len() && !snapped) {
            return Err(ParseError::BadIpv4TotalLength);
        }
        Ok(Self { buffer })
    }

    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    pub fn total_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::TOTAL_LEN)
    }

    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    pub fn src(&self) -> Ipv4Addr {
        let b = self.buffer.as_ref();
        Ipv4Addr::new(b[field::SRC], b[field::SRC + 1], b[field::SRC + 2], b[field::SRC + 3])
    }

    pub fn dst(&self) -> Ipv4Addr {
        let b = self.buffer.as_ref();
        Ipv4Addr::new(b[field::DST], b[field::DST + 1], b[field::DST + 2], b[field::DST + 3])
    }

    /// Fragment offset in 8-byte units; non-zero means no L4 header here.
    pub fn frag_offset(&self) -> u16 {
        be16(self.buffer.as_ref(), field::FLAGS_FRAG) & 0x1fff
    }

    /// The identification field (which datagram a fragment belongs to).
    pub fn ident(&self) -> u16 {
        be16(self.buffer.as_ref(), 4)
    }

    pub fn more_fragments(&self) -> bool {
        be16(self.buffer.as_ref(), field::FLAGS_FRAG) & 0x2000 != 0
    }

    /// The payload up to the total length, or to the buffer's end if the
    /// packet was snapped.
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[self.header_len()..usize::from(self.total_len()).min(b.len())]
    }

    /// The payload's length as the header states it.
    pub fn payload_len(&self) -> usize {
        usize::from(self.total_len()).saturating_sub(self.header_len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 192.0.2.1 -> 198.51.100.2, UDP, total length 28, with 2 bytes of padding.
    static UDP: [u8; 30] = [
        0x45, 0, 0, 28, 0, 1, 0x40, 0, 64, 17, 0, 0, 192, 0, 2, 1, 198, 51, 100, 2, 0x30, 0x39, 0, 53, 0, 8, 0, 0,
        0xee, 0xee,
    ];

    #[test]
    fn fields_and_payload_exclude_padding() {
        let p = Ipv4Packet::new_checked(&UDP[..]).unwrap();
        assert_eq!(p.src(), Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(p.dst(), Ipv4Addr::new(198, 51, 100, 2));
        assert_eq!(p.protocol(), 17);
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.payload().len(), 8);
        assert_eq!(p.frag_offset(), 0);
    }

    #[test]
    fn invalid_lengths_are_named() {
        let mut b = UDP;
        b[0] = 0x44;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).err(),
            Some(ParseError::BadIpv4HeaderLength)
        );
        let mut b = UDP;
        b[3] = 31;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).err(),
            Some(ParseError::BadIpv4TotalLength)
        );
        let mut b = UDP;
        b[0] = 0x65;
        assert_eq!(Ipv4Packet::new_checked(&b[..]).err(), Some(ParseError::BadIpv4Version));
        assert_eq!(
            Ipv4Packet::new_checked(&UDP[..19]).err(),
            Some(ParseError::TruncatedIpv4)
        );
    }
}
