//! The canonical, direction-free key of a flow.

use std::net::{IpAddr, Ipv6Addr};

use crate::classify::walk::Encap;
use crate::parse::headers::MAX_VLANS;

/// Endpoints ordered so both directions of a conversation share one key.
///
/// Fixed-width fields (addresses as 128-bit integers, IPv4 v4-mapped, the
/// rest packed into two words) rather than `IpAddr`s: building, hashing and
/// comparing the key is on the per-packet path, and enum-shaped fields
/// cost store-forwarding stalls there. The key is as large as it was
/// before it held the tunnel (48 bytes, four hash writes).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FlowKey {
    lo: u128,
    hi: u128,
    /// `lo` port in bits 48-63, `hi` port in 32-47, outer VLAN id (12
    /// bits) in 20-31, inner VLAN id in 8-19, IP protocol in 0-7.
    ports_vlans_proto: u64,
    /// `tunnel_key` in the low bits (at most 36 of them); bit 63 set for
    /// IPv4 endpoints.
    tunnel_v4: u64,
}

const V4_BIT: u64 = 1 << 63;

/// The part of a packet's tunnel that keys its flow: the encapsulation
/// and its id for VXLAN and Geneve (VNI), GTP-U (TEID), ERSPAN (session)
/// and GRE (key), so that two tenants' overlapping addresses stay two
/// flows. Not for MPLS: a label names a hop's forwarding entry, differs
/// per direction and changes along the path.
pub fn tunnel_key(tunnel: Option<(Encap, u32)>) -> u64 {
    match tunnel {
        Some((Encap::Mpls | Encap::MplsUdp | Encap::Ipip, _)) | None => 0,
        Some((e, id)) => (u64::from(e as u8) + 1) << 32 | u64::from(id),
    }
}

fn addr_bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(v.to_ipv6_mapped()),
        IpAddr::V6(v) => u128::from(v),
    }
}

impl FlowKey {
    /// Returns the key and whether (src, sport) is the `lo` end. `tunnel`
    /// is `tunnel_key` of the packet's tunnel.
    pub fn new(
        vlans: [u16; MAX_VLANS],
        tunnel: u64,
        protocol: u8,
        src: (IpAddr, u16),
        dst: (IpAddr, u16),
    ) -> (FlowKey, bool) {
        let (s, d) = (addr_bits(src.0), addr_bits(dst.0));
        let src_is_lo = (s, src.1) <= (d, dst.1);
        let ((lo, lo_port), (hi, hi_port)) = if src_is_lo {
            ((s, src.1), (d, dst.1))
        } else {
            ((d, dst.1), (s, src.1))
        };
        let vid = |v: u16| u64::from(v & 0x0fff);
        let key = FlowKey {
            lo,
            hi,
            ports_vlans_proto: u64::from(lo_port) << 48
                | u64::from(hi_port) << 32
                | vid(vlans[0]) << 20
                | vid(vlans[1]) << 8
                | u64::from(protocol),
            tunnel_v4: tunnel | if src.0.is_ipv4() { V4_BIT } else { 0 },
        };
        (key, src_is_lo)
    }

    fn addr(&self, bits: u128) -> IpAddr {
        let v6 = Ipv6Addr::from(bits);
        match v6.to_ipv4_mapped() {
            Some(v4) if self.tunnel_v4 & V4_BIT != 0 => IpAddr::V4(v4),
            _ => IpAddr::V6(v6),
        }
    }

    /// The lower endpoint (address, port).
    pub fn lo(&self) -> (IpAddr, u16) {
        (self.addr(self.lo), (self.ports_vlans_proto >> 48) as u16)
    }

    /// The VLAN ids, outermost first (0 = no tag at that depth).
    pub fn vlans(&self) -> [u16; MAX_VLANS] {
        let p = self.ports_vlans_proto;
        [(p >> 20) as u16 & 0x0fff, (p >> 8) as u16 & 0x0fff]
    }

    pub fn protocol(&self) -> u8 {
        self.ports_vlans_proto as u8
    }

    /// The higher endpoint (address, port).
    pub fn hi(&self) -> (IpAddr, u16) {
        (self.addr(self.hi), (self.ports_vlans_proto >> 32) as u16)
    }
}

impl std::hash::Hash for FlowKey {
    // Fixed-width writes instead of the derived field-by-field walk.
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u128(self.lo);
        state.write_u128(self.hi);
        state.write_u64(self.ports_vlans_proto);
        state.write_u64(self.tunnel_v4);
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
        let (k1, f1) = FlowKey::new([0; 2], 0, 6, (a, 1000), (b, 80));
        let (k2, f2) = FlowKey::new([0; 2], 0, 6, (b, 80), (a, 1000));
        assert!(k1 == k2);
        assert_ne!(f1, f2);
        assert_eq!(k1.lo(), (a, 1000));
        assert_eq!(k1.hi(), (b, 80));
        // IPv6 endpoints come back as IPv6, v4-mapped ones included.
        let m: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let (k, _) = FlowKey::new([0; 2], 0, 17, (m, 1), ("2001:db8::1".parse().unwrap(), 2));
        assert_eq!(k.lo().0, m);
        // Every packed field comes back as it went in.
        let (k, lo_first) = FlowKey::new(
            [4095, 17],
            tunnel_key(Some((Encap::Gtpu, u32::MAX))),
            132,
            (b, 65535),
            (a, 1),
        );
        assert!(!lo_first);
        assert_eq!((k.lo(), k.hi()), ((a, 1), (b, 65535)));
        assert_eq!((k.vlans(), k.protocol()), ([4095, 17], 132));
        let (v6, _) = FlowKey::new([0; 2], 0, 6, (m, 1), (m, 2));
        let (v4, _) = FlowKey::new([0; 2], 0, 6, ("192.0.2.1".parse().unwrap(), 1), (m, 2));
        assert!(v6 != v4, "a v4-mapped IPv6 address is not its IPv4 address");
    }

    #[test]
    fn a_tenant_id_separates_flows_a_label_does_not() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let key = |t| FlowKey::new([0; 2], tunnel_key(t), 6, (a, 1000), (b, 80)).0;
        assert!(key(Some((Encap::Vxlan, 100))) != key(Some((Encap::Vxlan, 200))));
        assert!(key(Some((Encap::Vxlan, 100))) != key(Some((Encap::Geneve, 100))));
        assert!(key(Some((Encap::Vxlan, 100))) != key(None));
        assert!(key(Some((Encap::Erspan, 7))) == key(Some((Encap::Erspan, 7))));
        // MPLS labels differ per direction and per hop: not a key.
        assert!(key(Some((Encap::Mpls, 16))) == key(Some((Encap::Mpls, 17))));
        assert!(key(Some((Encap::Mpls, 16))) == key(None));
    }
}
