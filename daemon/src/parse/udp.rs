//! UDP header view.

use super::{be16, ParseError, Result};

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LENGTH: usize = 4;
    pub const HEADER: usize = 8;
}

#[derive(Clone, Copy)]
pub struct UdpDatagram<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpDatagram<T> {
    pub fn new_checked(buffer: T) -> Result<Self> {
        Self::new_checked_snapped(buffer, false)
    }

    /// The same for a datagram the XDP snap may have cut: its length may
    /// then lie past the buffer.
    pub fn new_checked_snapped(buffer: T, snapped: bool) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < field::HEADER {
            return Err(ParseError::TruncatedUdp);
        }
        let len = usize::from(be16(b, field::LENGTH));
        // Length 0 is legal for IPv6 jumbograms; otherwise it must fit.
        if len != 0 && (len < field::HEADER || (len > b.len() && !snapped)) {
            return Err(ParseError::BadUdpLength);
        }
        Ok(Self { buffer })
    }

    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SRC_PORT)
    }

    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// The length field (0 only for IPv6 jumbograms).
    pub fn length(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_length_checks() {
        let b = [0x30, 0x39, 0, 53, 0, 8, 0, 0];
        let u = UdpDatagram::new_checked(&b[..]).unwrap();
        assert_eq!((u.src_port(), u.dst_port()), (12345, 53));
        let bad = [0x30, 0x39, 0, 53, 0, 9, 0, 0];
        assert_eq!(UdpDatagram::new_checked(&bad[..]).err(), Some(ParseError::BadUdpLength));
        assert_eq!(UdpDatagram::new_checked(&b[..7]).err(), Some(ParseError::TruncatedUdp));
    }
}
