//! The C structs the maps hold, written and read field by field at the
//! offsets of the skeleton's generated types (`ebpf/furui_structs.h` as
//! libbpf-cargo sees it): the layout has one home, and a change to it that
//! the encoders do not follow fails the build (the size checks below).

use std::mem::{offset_of, size_of};

use ipnet::IpNet;

use super::skel::types::{class_counter, furui_decap, furui_snap, lpm_v4_key, lpm_v6_key};
use crate::classify::abi;
use crate::classify::walk::DecapConfig;
use crate::select::Snap;

// Every byte of these structs is one of the fields written below.
const _: () = assert!(size_of::<lpm_v4_key>() == 4 + 4);
const _: () = assert!(size_of::<lpm_v6_key>() == 4 + 16);
const _: () = assert!(size_of::<class_counter>() == 8 + 8);
const _: () = assert!(size_of::<furui_decap>() == 4 + 4 + 4 * 2 + 4);
const _: () = assert!(size_of::<furui_snap>() == 4 + 4);

fn put<const N: usize>(buf: &mut [u8], at: usize, bytes: [u8; N]) {
    buf[at..at + N].copy_from_slice(&bytes);
}

fn u64_at(buf: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(buf.get(at..at + 8)?.try_into().ok()?))
}

/// The LPM trie key of a prefix (`struct lpm_v4_key` / `lpm_v6_key`).
pub fn lpm_key(n: &IpNet) -> Vec<u8> {
    match n {
        IpNet::V4(n) => {
            let k = lpm_v4_key {
                prefixlen: u32::from(n.prefix_len()),
                addr: n.network().octets(),
            };
            let mut b = vec![0u8; size_of::<lpm_v4_key>()];
            put(&mut b, offset_of!(lpm_v4_key, prefixlen), k.prefixlen.to_ne_bytes());
            put(&mut b, offset_of!(lpm_v4_key, addr), k.addr);
            b
        }
        IpNet::V6(n) => {
            let k = lpm_v6_key {
                prefixlen: u32::from(n.prefix_len()),
                addr: n.network().octets(),
            };
            let mut b = vec![0u8; size_of::<lpm_v6_key>()];
            put(&mut b, offset_of!(lpm_v6_key, prefixlen), k.prefixlen.to_ne_bytes());
            put(&mut b, offset_of!(lpm_v6_key, addr), k.addr);
            b
        }
    }
}

/// One CPU's `struct class_counter` (packets, bytes); None if short.
pub(super) fn class_counter(v: &[u8]) -> Option<class_counter> {
    Some(class_counter {
        packets: u64_at(v, offset_of!(class_counter, packets))?,
        bytes: u64_at(v, offset_of!(class_counter, bytes))?,
    })
}

/// One CPU's encapsulation counter (a `__u64`); None if short.
pub(super) fn packet_count(v: &[u8]) -> Option<u64> {
    u64_at(v, 0)
}

/// The snap (`struct furui_snap`).
pub fn snap(s: &Snap) -> Vec<u8> {
    let v = furui_snap {
        payload: s.payload.unwrap_or(abi::SNAP_WHOLE),
        flags: if s.keep_hellos { abi::SNAP_KEEP_HELLOS } else { 0 },
    };
    let mut b = vec![0u8; size_of::<furui_snap>()];
    put(&mut b, offset_of!(furui_snap, payload), v.payload.to_ne_bytes());
    put(&mut b, offset_of!(furui_snap, flags), v.flags.to_ne_bytes());
    b
}

/// The decapsulation settings (`struct furui_decap`).
pub fn decap(d: &DecapConfig) -> Vec<u8> {
    let v = furui_decap {
        open: d.open,
        outer: d.outer,
        vxlan_port: d.vxlan_port,
        geneve_port: d.geneve_port,
        gtpu_port: d.gtpu_port,
        mpls_udp_port: d.mpls_udp_port,
        max_layers: d.max_layers,
        mpls_max_labels: d.mpls_max_labels,
        mpls_pw: d.mpls_pw as u8,
        pad: 0,
    };
    let mut b = vec![0u8; size_of::<furui_decap>()];
    put(&mut b, offset_of!(furui_decap, open), v.open.to_ne_bytes());
    put(&mut b, offset_of!(furui_decap, outer), v.outer.to_ne_bytes());
    put(&mut b, offset_of!(furui_decap, vxlan_port), v.vxlan_port.to_ne_bytes());
    put(
        &mut b,
        offset_of!(furui_decap, geneve_port),
        v.geneve_port.to_ne_bytes(),
    );
    put(&mut b, offset_of!(furui_decap, gtpu_port), v.gtpu_port.to_ne_bytes());
    put(
        &mut b,
        offset_of!(furui_decap, mpls_udp_port),
        v.mpls_udp_port.to_ne_bytes(),
    );
    put(&mut b, offset_of!(furui_decap, max_layers), [v.max_layers]);
    put(&mut b, offset_of!(furui_decap, mpls_max_labels), [v.mpls_max_labels]);
    put(&mut b, offset_of!(furui_decap, mpls_pw), [v.mpls_pw]);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_settings_are_laid_out_like_the_c_structs() {
        let k = lpm_key(&"192.0.2.0/24".parse().unwrap());
        assert_eq!(k[..4], 24u32.to_ne_bytes());
        assert_eq!(k[4..], [192, 0, 2, 0]);
        let k = lpm_key(&"2001:db8::/32".parse().unwrap());
        assert_eq!(k.len(), 20);
        assert_eq!(k[..4], 32u32.to_ne_bytes());
        assert_eq!(k[4..8], [0x20, 0x01, 0x0d, 0xb8]);
        let d = DecapConfig::default();
        let b = decap(&d);
        assert_eq!(b.len(), 20);
        assert_eq!(b[0..4], d.open.to_ne_bytes());
        assert_eq!(b[8..10], d.vxlan_port.to_ne_bytes());
        assert_eq!(b[16], d.max_layers);
        let mut v = [0u8; 16];
        v[..8].copy_from_slice(&5u64.to_ne_bytes());
        v[8..].copy_from_slice(&300u64.to_ne_bytes());
        let c = class_counter(&v).unwrap();
        assert_eq!((c.packets, c.bytes), (5, 300));
        assert!(class_counter(&v[..15]).is_none());
    }
}
