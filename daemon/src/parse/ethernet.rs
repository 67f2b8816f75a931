//! Ethernet II frame and 802.1Q / 802.1ad tag views.

use super::{be16, ParseError, Result};

mod field {
    use core::ops::Range;
    pub const ETHERTYPE: usize = 12;
    pub const PAYLOAD: usize = 14;
    pub const VLAN_TCI: Range<usize> = 0..2;
    pub const VLAN_ETHERTYPE: usize = 2;
    pub const VLAN_PAYLOAD: usize = 4;
}

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
pub const ETHERTYPE_VLAN: u16 = 0x8100;
pub const ETHERTYPE_QINQ: u16 = 0x88a8;

/// A checked view of an Ethernet II header.
#[derive(Clone, Copy)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < field::PAYLOAD {
            return Err(ParseError::TruncatedEthernet);
        }
        Ok(Self { buffer })
    }

    pub fn ethertype(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ETHERTYPE)
    }

    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }
}

/// A checked view of one VLAN tag (the 4 bytes after a TPID).
#[derive(Clone, Copy)]
pub struct VlanTag<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VlanTag<T> {
    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < field::VLAN_PAYLOAD {
            return Err(ParseError::TruncatedVlan);
        }
        Ok(Self { buffer })
    }

    pub fn vid(&self) -> u16 {
        be16(self.buffer.as_ref(), field::VLAN_TCI.start) & 0x0fff
    }

    pub fn ethertype(&self) -> u16 {
        be16(self.buffer.as_ref(), field::VLAN_ETHERTYPE)
    }

    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::VLAN_PAYLOAD..]
    }
}

impl<'a> EthernetFrame<&'a [u8]> {
    /// The payload, borrowed for as long as the underlying buffer.
    pub fn into_payload(self) -> &'a [u8] {
        &self.buffer[field::PAYLOAD..]
    }
}

impl<'a> VlanTag<&'a [u8]> {
    /// The payload, borrowed for as long as the underlying buffer.
    pub fn into_payload(self) -> &'a [u8] {
        &self.buffer[field::VLAN_PAYLOAD..]
    }
}

pub fn is_vlan(ethertype: u16) -> bool {
    ethertype == ETHERTYPE_VLAN || ethertype == ETHERTYPE_QINQ
}

#[cfg(test)]
mod tests {
    use super::*;

    static QINQ: [u8; 22] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 1, 2, 3, 4, 5, 0x88, 0xa8, 0x00, 0xc8, 0x81, 0x00, 0x07, 0xd1, 0x08,
        0x06,
    ];

    #[test]
    fn qinq_tags_read_in_order() {
        let eth = EthernetFrame::new_checked(&QINQ[..]).unwrap();
        assert_eq!(eth.ethertype(), ETHERTYPE_QINQ);
        let outer = VlanTag::new_checked(eth.payload()).unwrap();
        assert_eq!(outer.vid(), 200);
        let inner = VlanTag::new_checked(outer.payload()).unwrap();
        assert_eq!(inner.vid(), 2001);
        assert_eq!(inner.ethertype(), 0x0806);
    }

    #[test]
    fn truncation_is_an_error_not_a_panic() {
        assert_eq!(
            EthernetFrame::new_checked(&QINQ[..13]).err(),
            Some(ParseError::TruncatedEthernet)
        );
        assert_eq!(
            VlanTag::new_checked(&QINQ[14..17]).err(),
            Some(ParseError::TruncatedVlan)
        );
    }
}
