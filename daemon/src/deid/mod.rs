//! Stage 8 (export's): de-identification of exported addresses (Art. 24): keyed,
//! prefix-preserving pseudonyms (Crypto-PAn over AES-128) under a key per
//! epoch, or — when a recipient's grant allows it — truncation to a prefix.
//! Domestic addresses are always pseudonymized, whatever the grant says.
//!
//! Why Crypto-PAn: it is the long-standing published scheme for this job
//! (prefix-preserving, so analysts can still group by network), with
//! public test vectors; it needs only AES, which is already in the build
//! (QUIC Initials) and hardware-accelerated on servers. ipcrypt's
//! prefix-preserving mode was not available as a maintained crate here.
//!
//! Invariant kept: this stage sees only record fields, never packets; key
//! bytes stay inside `keys`.

pub mod cryptopan;
pub mod fleet;
pub mod keys;

use std::net::IpAddr;

pub use cryptopan::CryptoPan;
pub use keys::{key_file, remove_dead_temporaries, EpochKey, EpochPeriod, KeyError, KeyStore};

/// What a grant allows for a non-domestic address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressPolicy {
    /// The default: a keyed, prefix-preserving pseudonym.
    Pseudonymize,
    /// The address cut to a prefix (host bits zeroed), not pseudonymized.
    Truncate { v4: u8, v6: u8 },
}

fn truncate(a: IpAddr, v4: u8, v6: u8) -> IpAddr {
    match a {
        IpAddr::V4(x) => {
            let keep = u32::from(v4.min(32));
            let mask = if keep == 0 { 0 } else { u32::MAX << (32 - keep) };
            IpAddr::V4((u32::from(x) & mask).into())
        }
        IpAddr::V6(x) => {
            let keep = u32::from(v6.min(128));
            let mask = if keep == 0 { 0 } else { u128::MAX << (128 - keep) };
            IpAddr::V6((u128::from(x) & mask).into())
        }
    }
}

/// The address as a recipient may see it.
pub fn export_address(key: &EpochKey, a: IpAddr, domestic: bool, policy: AddressPolicy) -> IpAddr {
    match policy {
        AddressPolicy::Truncate { v4, v6 } if !domestic => truncate(a, v4, v6),
        _ => key.pan.ip(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn common_prefix(a: u128, b: u128, bits: u32) -> u32 {
        ((a ^ b) << (128 - bits)).leading_zeros().min(bits)
    }

    fn pan() -> CryptoPan {
        CryptoPan::new(&[0x5a; 32])
    }

    proptest! {
        /// Prefix preservation on random pairs: the pseudonyms share
        /// exactly as many leading bits as the addresses.
        #[test]
        fn shared_prefix_length_is_preserved_v4(a: u32, b: u32, shared in 0u32..=32) {
            let b = if shared == 32 { a } else { (a & !(u32::MAX >> shared)) | (b & (u32::MAX >> shared)) };
            let c = pan();
            let (pa, pb) = (u32::from(c.v4(a.into())), u32::from(c.v4(b.into())));
            prop_assert_eq!(
                common_prefix(u128::from(pa) << 96, u128::from(pb) << 96, 32),
                common_prefix(u128::from(a) << 96, u128::from(b) << 96, 32)
            );
        }

        #[test]
        fn shared_prefix_length_is_preserved_v6(a: u128, b: u128, shared in 0u32..=128) {
            let b = if shared == 128 { a } else { (a & !(u128::MAX >> shared)) | (b & (u128::MAX >> shared)) };
            let c = pan();
            let (pa, pb) = (u128::from(c.v6(a.into())), u128::from(c.v6(b.into())));
            prop_assert_eq!(common_prefix(pa, pb, 128), common_prefix(a, b, 128));
        }
    }

    #[test]
    fn domestic_addresses_are_pseudonymized_whatever_the_grant() {
        let key = EpochKey {
            epoch: "e".into(),
            pan: pan(),
        };
        let a: IpAddr = "192.0.2.77".parse().unwrap();
        let t = AddressPolicy::Truncate { v4: 24, v6: 48 };
        assert_eq!(export_address(&key, a, false, t).to_string(), "192.0.2.0");
        assert_eq!(export_address(&key, a, true, t), key.pan.ip(a));
        assert_ne!(export_address(&key, a, true, t), a);
        let v6: IpAddr = "2001:db8:1:2::9".parse().unwrap();
        assert_eq!(export_address(&key, v6, false, t).to_string(), "2001:db8:1::");
        assert_eq!(
            export_address(&key, a, false, AddressPolicy::Pseudonymize),
            key.pan.ip(a)
        );
    }
}
