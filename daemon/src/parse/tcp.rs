//! TCP header view (ports, flags; options are not needed here).

use super::{be16, ParseError, Result};

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const MIN_HEADER: usize = 20;
}

#[derive(Clone, Copy)]
pub struct TcpSegment<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpSegment<T> {
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < field::MIN_HEADER {
            return Err(ParseError::TruncatedTcp);
        }
        let hdr = usize::from(b[field::DATA_OFF] >> 4) * 4;
        if hdr < field::MIN_HEADER || hdr > b.len() {
            return Err(ParseError::BadTcpDataOffset);
        }
        Ok(Self { buffer })
    }

    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SRC_PORT)
    }

    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// The 8 classic flag bits (CWR ECE URG ACK PSH RST SYN FIN).
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFF] >> 4) * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syn_fields() {
        let mut b = [0u8; 20];
        b[0..2].copy_from_slice(&443u16.to_be_bytes());
        b[2..4].copy_from_slice(&51000u16.to_be_bytes());
        b[12] = 5 << 4;
        b[13] = 0x02;
        let t = TcpSegment::new_checked(&b[..]).unwrap();
        assert_eq!((t.src_port(), t.dst_port(), t.flags()), (443, 51000, 0x02));
        b[12] = 4 << 4;
        assert_eq!(
            TcpSegment::new_checked(&b[..]).err(),
            Some(ParseError::BadTcpDataOffset)
        );
        assert_eq!(TcpSegment::new_checked(&b[..19]).err(), Some(ParseError::TruncatedTcp));
    }
}
