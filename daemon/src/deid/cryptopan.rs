//! Crypto-PAn (Xu, Fan, Ammar, Moon 2002): keyed, prefix-preserving,
//! deterministic pseudonymization of IP addresses over AES-128. Two
//! addresses that share their first k bits map to two pseudonyms that
//! share exactly their first k bits.
//!
//! For bit i of the address, AES encrypts a block made of the address's
//! first i bits followed by a secret pad; the top bit of the ciphertext is
//! XORed into bit i. IPv6 uses the same construction over 128 bits.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::{Aes128, Block};

use crate::erase::erase;

/// A Crypto-PAn instance for one 32-byte key: 16 bytes of AES key and 16
/// bytes from which the pad is derived. Holds no copy of the raw key.
pub struct CryptoPan {
    aes: Aes128,
    pad: [u8; 16],
}

impl Drop for CryptoPan {
    fn drop(&mut self) {
        erase(&mut self.pad);
    }
}

impl std::fmt::Debug for CryptoPan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CryptoPan { <key withheld> }")
    }
}

impl CryptoPan {
    pub fn new(key: &[u8; 32]) -> CryptoPan {
        let aes = Aes128::new_from_slice(&key[..16]).expect("16-byte AES key");
        let mut pad = Block::clone_from_slice(&key[16..]);
        aes.encrypt_block(&mut pad);
        let mut p = [0u8; 16];
        p.copy_from_slice(&pad);
        erase(&mut pad);
        CryptoPan { aes, pad: p }
    }

    /// Pseudonymizes `addr` (big-endian bytes, 4 or 16 of them) in place.
    fn anonymize_bytes(&self, addr: &mut [u8]) {
        let n = addr.len().min(16);
        let bits = n * 8;
        // One block per bit: the address's first `pos` bits, then the pad.
        // The blocks are independent, so they are encrypted together (the
        // AES unit pipelines them) rather than one after another.
        let mut blocks = [Block::default(); 128];
        for (pos, block) in blocks[..bits].iter_mut().enumerate() {
            block.copy_from_slice(&self.pad);
            let (full, rem) = (pos / 8, pos % 8);
            block[..full].copy_from_slice(&addr[..full]);
            if rem > 0 {
                let mask = 0xffu8 << (8 - rem);
                block[full] = (addr[full] & mask) | (self.pad[full] & !mask);
            }
        }
        self.aes.encrypt_blocks(&mut blocks[..bits]);
        for (pos, block) in blocks[..bits].iter().enumerate() {
            addr[pos / 8] ^= (block[0] >> 7) << (7 - pos % 8);
        }
        for b in blocks.iter_mut() {
            erase(b);
        }
    }

    pub fn v4(&self, a: Ipv4Addr) -> Ipv4Addr {
        let mut b = a.octets();
        self.anonymize_bytes(&mut b);
        Ipv4Addr::from(b)
    }

    pub fn v6(&self, a: Ipv6Addr) -> Ipv6Addr {
        let mut b = a.octets();
        self.anonymize_bytes(&mut b);
        Ipv6Addr::from(b)
    }

    pub fn ip(&self, a: IpAddr) -> IpAddr {
        match a {
            IpAddr::V4(v) => IpAddr::V4(self.v4(v)),
            IpAddr::V6(v) => IpAddr::V6(self.v6(v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample key of the Crypto-PAn reference distribution.
    const KEY: [u8; 32] = [
        21, 34, 23, 141, 51, 164, 207, 128, 19, 10, 91, 22, 73, 144, 125, 16, 216, 152, 143, 131, 121, 121, 101, 39,
        98, 87, 76, 45, 42, 132, 34, 2,
    ];

    /// From the reference distribution's sample_trace_raw.dat →
    /// sample_trace_sanitized.dat.
    #[test]
    fn reference_ipv4_vectors() {
        let c = CryptoPan::new(&KEY);
        for (a, want) in [
            ("128.11.68.132", "135.242.180.132"),
            ("129.118.74.4", "134.136.186.123"),
            ("130.132.252.244", "133.68.164.234"),
            ("141.223.7.43", "141.167.8.160"),
            ("141.233.145.108", "141.129.237.235"),
            ("152.163.225.39", "151.140.114.167"),
            ("156.29.3.236", "147.225.12.42"),
            ("165.247.96.84", "162.9.99.234"),
            ("166.107.77.190", "160.132.178.185"),
            ("192.102.249.13", "252.138.62.131"),
            ("10.185.25.118", "117.161.29.118"),
            ("64.14.118.196", "0.255.183.58"),
        ] {
            assert_eq!(c.v4(a.parse().unwrap()).to_string(), want, "{a}");
        }
    }

    /// IPv6 vectors of the widely used Go implementation
    /// (github.com/Yawning/cryptopan), same key.
    #[test]
    fn ipv6_vectors() {
        let c = CryptoPan::new(&KEY);
        for (a, want) in [
            ("::1", "78ff:f001:9fc0:20df:8380:b1f1:704:ed"),
            ("::2", "78ff:f001:9fc0:20df:8380:b1f1:704:ef"),
            ("::ffff", "78ff:f001:9fc0:20df:8380:b1f1:704:f838"),
            ("2001:db8::1", "4401:2bc:603f:d91d:27f:ff8e:e6f1:dc1e"),
            ("2001:db8::2", "4401:2bc:603f:d91d:27f:ff8e:e6f1:dc1c"),
        ] {
            assert_eq!(c.v6(a.parse().unwrap()).to_string(), want, "{a}");
        }
    }
}
