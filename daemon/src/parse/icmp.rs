//! ICMP / ICMPv6 header view (type and code share one layout).

use super::{ParseError, Result};

#[derive(Clone, Copy)]
pub struct IcmpHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> IcmpHeader<T> {
    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < 4 {
            return Err(ParseError::TruncatedIcmp);
        }
        Ok(Self { buffer })
    }

    pub fn icmp_type(&self) -> u8 {
        self.buffer.as_ref()[0]
    }

    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_and_code() {
        let h = IcmpHeader::new_checked(&[8u8, 0, 0, 0][..]).unwrap();
        assert_eq!((h.icmp_type(), h.code()), (8, 0));
        assert!(IcmpHeader::new_checked(&[8u8, 0, 0][..]).is_err());
    }
}
