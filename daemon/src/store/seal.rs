//! One retention epoch's data key: 32 random bytes from its key file,
//! held in memory-locked memory, wiped when dropped. Records are sealed
//! with ChaCha20-Poly1305; the nonce is the record's store sequence number
//! (unique for the life of the store, so never reused under one key), and
//! the epoch name and sequence number are bound in as associated data, so
//! a sealed record cannot be moved to another slot unnoticed.

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use zeroize::Zeroize;

pub struct SealKey {
    bytes: Box<[u8; 32]>,
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(<withheld>)")
    }
}

impl Drop for SealKey {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

fn nonce(seq: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&seq.to_le_bytes());
    Nonce::from(n)
}

fn aad(epoch: &str, seq: u64) -> Vec<u8> {
    let mut a = epoch.as_bytes().to_vec();
    a.extend_from_slice(&seq.to_le_bytes());
    a
}

impl SealKey {
    /// Takes the key bytes and wipes the caller's copy.
    pub fn new(raw: &mut [u8; 32]) -> SealKey {
        let bytes = Box::new(*raw);
        raw.zeroize();
        if crate::sys::lock_in_ram(&bytes[..]).is_err() {
            tracing::warn!("could not lock a retention key in RAM (RLIMIT_MEMLOCK); it stays wiped on drop");
        }
        SealKey { bytes }
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(&self.bytes[..]))
    }

    /// Seals `plain` in place (it becomes ciphertext and tag).
    pub fn seal(&self, epoch: &str, seq: u64, plain: &mut Vec<u8>) -> Result<(), chacha20poly1305::Error> {
        self.cipher().encrypt_in_place(&nonce(seq), &aad(epoch, seq), plain)
    }

    /// Opens a sealed record; fails on any alteration or a wrong key.
    pub fn open(&self, epoch: &str, seq: u64, sealed: &[u8]) -> Result<Vec<u8>, chacha20poly1305::Error> {
        let mut buf = sealed.to_vec();
        self.cipher()
            .decrypt_in_place(&nonce(seq), &aad(epoch, seq), &mut buf)?;
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_records_open_only_in_their_slot_and_with_their_key() {
        let mut raw = [7u8; 32];
        let k = SealKey::new(&mut raw);
        assert_eq!(raw, [0u8; 32], "the caller's copy is wiped");
        let mut buf = b"{\"packets\":3}".to_vec();
        k.seal("inbound-x", 5, &mut buf).unwrap();
        assert!(!buf.windows(7).any(|w| w == b"packets"));
        assert_eq!(k.open("inbound-x", 5, &buf).unwrap(), b"{\"packets\":3}");
        assert!(k.open("inbound-x", 6, &buf).is_err(), "another slot");
        assert!(k.open("inbound-y", 5, &buf).is_err(), "another epoch");
        let other = SealKey::new(&mut [8u8; 32]);
        assert!(other.open("inbound-x", 5, &buf).is_err(), "another key");
        let mut flipped = buf.clone();
        flipped[0] ^= 1;
        assert!(k.open("inbound-x", 5, &flipped).is_err(), "altered");
        assert_eq!(format!("{k:?}"), "SealKey(<withheld>)");
    }
}
