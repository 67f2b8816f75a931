//! The XDP metadata (`struct furui_meta` in `ebpf/furui_structs.h`): what
//! the kernel's walk found, written just before every captured frame, so
//! user space parses the packet that was judged without walking again.
//!
//! Invariant kept: only mechanical fields (offsets, kinds, ids, a length);
//! a value that does not decode is ignored (the frame is then walked in
//! user space), never trusted.

use super::walk::{Encap, EncapChain, NUM_ENCAPS};
use super::Class;

/// Bytes of `struct furui_meta`.
pub const META_LEN: usize = 20;
/// `FURUI_META_MAGIC`.
pub const META_MAGIC: u32 = super::abi::FURUI_META_MAGIC;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XdpMeta {
    /// Offset of the judged IP header from the frame's first byte.
    pub ip_offset: u16,
    pub v6: bool,
    pub class: Class,
    pub chain: EncapChain,
    pub tunnel: Option<(Encap, u32)>,
    /// The frame's length as it arrived.
    pub orig_len: u32,
}

impl XdpMeta {
    /// Decodes the bytes the kernel wrote (native byte order); None when
    /// there is no metadata (no magic) or a field is out of range.
    pub fn decode(b: &[u8; META_LEN]) -> Option<XdpMeta> {
        let u32_at = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u16_at = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        if u32_at(0) != META_MAGIC {
            return None;
        }
        let v6 = match b[6] {
            4 => false,
            6 => true,
            _ => return None,
        };
        let class = *Class::ALL.get(usize::from(b[7]))?;
        let chain = EncapChain::from_bits(u16_at(8))?;
        let tunnel = match b[10] {
            0 => None,
            n if usize::from(n) <= NUM_ENCAPS => Some((Encap::ALL[usize::from(n - 1)], u32_at(12))),
            _ => return None,
        };
        Some(XdpMeta {
            ip_offset: u16_at(4),
            v6,
            class,
            chain,
            tunnel,
            orig_len: u32_at(16),
        })
    }

    /// The bytes the kernel would write for this value (tests).
    pub fn encode(&self) -> [u8; META_LEN] {
        let mut b = [0u8; META_LEN];
        b[0..4].copy_from_slice(&META_MAGIC.to_ne_bytes());
        b[4..6].copy_from_slice(&self.ip_offset.to_ne_bytes());
        b[6] = if self.v6 { 6 } else { 4 };
        b[7] = self.class as u8;
        b[8..10].copy_from_slice(&self.chain.bits().to_ne_bytes());
        if let Some((e, id)) = self.tunnel {
            b[10] = e as u8 + 1;
            b[12..16].copy_from_slice(&id.to_ne_bytes());
        }
        b[16..20].copy_from_slice(&self.orig_len.to_ne_bytes());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let m = XdpMeta {
            ip_offset: 64,
            v6: true,
            class: Class::Transit,
            chain: EncapChain::from_bits(0x43).unwrap(),
            tunnel: Some((Encap::Vxlan, 5001)),
            orig_len: 1514,
        };
        let b = m.encode();
        assert_eq!(XdpMeta::decode(&b), Some(m));
        assert_eq!(
            m.chain.iter().collect::<Vec<_>>(),
            [Encap::Erspan, Encap::Vxlan],
            "4 bits a layer, outermost lowest"
        );
        assert_eq!(XdpMeta::decode(&[0; META_LEN]), None, "no magic: no metadata");
        for (at, v) in [(6, 5u8), (7, 8), (10, 9), (8, 0x0f)] {
            let mut bad = b;
            bad[at] = v;
            assert_eq!(XdpMeta::decode(&bad), None, "byte {at} = {v}");
        }
    }
}
