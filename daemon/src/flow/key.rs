//! The canonical, direction-free key of a flow.

use std::net::IpAddr;

use crate::parse::headers::MAX_VLANS;

/// Endpoints ordered so both directions of a conversation share one key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FlowKey {
    pub vlans: [u16; MAX_VLANS],
    pub protocol: u8,
    pub lo: (IpAddr, u16),
    pub hi: (IpAddr, u16),
}

impl FlowKey {
    /// Returns the key and whether (src, sport) is the `lo` end.
    pub fn new(vlans: [u16; MAX_VLANS], protocol: u8, src: (IpAddr, u16), dst: (IpAddr, u16)) -> (FlowKey, bool) {
        if src <= dst {
            (
                FlowKey {
                    vlans,
                    protocol,
                    lo: src,
                    hi: dst,
                },
                true,
            )
        } else {
            (
                FlowKey {
                    vlans,
                    protocol,
                    lo: dst,
                    hi: src,
                },
                false,
            )
        }
    }
}

fn addr_bits(a: IpAddr) -> u128 {
    match a {
        // Mapped so that an IPv4 and an IPv6 key never hash alike by accident.
        IpAddr::V4(v) => u128::from(v.to_ipv6_mapped()),
        IpAddr::V6(v) => u128::from(v),
    }
}

impl std::hash::Hash for FlowKey {
    // Four fixed-width writes instead of the derived field-by-field walk
    // (enum tags, arrays): this is on the per-packet path.
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u128(addr_bits(self.lo.0));
        state.write_u128(addr_bits(self.hi.0));
        state.write_u64(
            u64::from(self.lo.1)
                | u64::from(self.hi.1) << 16
                | u64::from(self.vlans[0]) << 32
                | u64::from(self.vlans[1]) << 48,
        );
        state.write_u8(self.protocol);
    }
}

impl std::fmt::Debug for FlowKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys are mechanical but may belong to flows not yet exported;
        // keep them out of any debug output.
        f.write_str("FlowKey { <redacted> }")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_directions_share_a_key() {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "203.0.113.1".parse().unwrap();
        let (k1, f1) = FlowKey::new([0; 2], 6, (a, 1000), (b, 80));
        let (k2, f2) = FlowKey::new([0; 2], 6, (b, 80), (a, 1000));
        assert!(k1 == k2);
        assert_ne!(f1, f2);
    }
}
