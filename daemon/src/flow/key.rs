//! The canonical, direction-free key of a flow.

use std::net::IpAddr;

use crate::parse::headers::MAX_VLANS;

/// Endpoints ordered so both directions of a conversation share one key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
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
