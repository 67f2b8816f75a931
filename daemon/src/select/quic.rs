//! QUIC Initial packets → the ClientHello inside them, for JA4's `q`
//! variant. Initial packets are protected with keys every observer can
//! derive from the version's public salt and the client's Destination
//! Connection ID (RFC 9001 §5.2, RFC 9369 §3.3); nothing secret is involved.
//!
//! Invariant kept: the plaintext exists only in the caller's scratch buffer
//! and in the bounded per-flow CRYPTO buffer, both zeroed after use; only
//! the fingerprint strings leave (via [`super::tls`]).

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes128;
use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, Nonce, Tag};
use hkdf::Hkdf;
use sha2::Sha256;

use crate::budget::{Budget, Buf};
use crate::erase::erase;

pub const VERSION_1: u32 = 0x0000_0001;
pub const VERSION_2: u32 = 0x6b33_43cf;

/// Largest ClientHello gathered from CRYPTO frames (the same bound as TCP).
pub const MAX_CRYPTO: usize = 16 * 1024;

/// Why a datagram gave no ClientHello data. Names the problem, never bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QuicError {
    #[error("not a QUIC long-header packet")]
    NotLongHeader,
    #[error("QUIC version without public Initial keys")]
    UnknownVersion,
    #[error("not an Initial packet")]
    NotInitial,
    #[error("QUIC packet truncated")]
    Truncated,
    #[error("Initial packet failed authentication")]
    Decrypt,
    #[error("frame not allowed in an Initial packet")]
    BadFrame,
    #[error("CRYPTO data beyond the reassembly bound")]
    TooLarge,
    #[error("the worker's reassembly budget is spent")]
    OverBudget,
}

struct VersionParams {
    salt: [u8; 20],
    key: &'static str,
    iv: &'static str,
    hp: &'static str,
    /// Long-header packet type bits (0x30 of the first byte) of Initial.
    initial_type: u8,
}

fn params(version: u32) -> Option<VersionParams> {
    match version {
        VERSION_1 => Some(VersionParams {
            // RFC 9001 §5.2
            salt: [
                0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc,
                0xbb, 0x7f, 0x0a,
            ],
            key: "quic key",
            iv: "quic iv",
            hp: "quic hp",
            initial_type: 0,
        }),
        VERSION_2 => Some(VersionParams {
            // RFC 9369 §3.3.1
            salt: [
                0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb, 0xf9,
                0xbd, 0x2e, 0xd9,
            ],
            key: "quicv2 key",
            iv: "quicv2 iv",
            hp: "quicv2 hp",
            initial_type: 1,
        }),
        _ => None,
    }
}

/// HKDF-Expand-Label (RFC 8446 §7.1) with an empty context.
fn expand_label(prk: &Hkdf<Sha256>, label: &str, out: &mut [u8]) {
    let full = [b"tls13 ", label.as_bytes()].concat();
    let len = u16::try_from(out.len()).unwrap_or(u16::MAX).to_be_bytes();
    let info = [&len[..], &[full.len() as u8], &full, &[0u8]].concat();
    // Lengths used here (12..32) are far below HKDF's limit.
    let _ = prk.expand(&info, out);
}

/// The client's Initial keys for one version and Destination Connection ID.
pub struct InitialKeys {
    pub key: [u8; 16],
    pub iv: [u8; 12],
    pub hp: [u8; 16],
}

impl Drop for InitialKeys {
    fn drop(&mut self) {
        erase(&mut self.key);
        erase(&mut self.iv);
        erase(&mut self.hp);
    }
}

pub fn client_initial_keys(version: u32, dcid: &[u8]) -> Option<InitialKeys> {
    let p = params(version)?;
    let (initial, _) = Hkdf::<Sha256>::extract(Some(&p.salt), dcid);
    let initial = Hkdf::<Sha256>::from_prk(&initial).ok()?;
    let mut client = [0u8; 32];
    expand_label(&initial, "client in", &mut client);
    let client_prk = Hkdf::<Sha256>::from_prk(&client).ok()?;
    erase(&mut client);
    let mut k = InitialKeys {
        key: [0; 16],
        iv: [0; 12],
        hp: [0; 16],
    };
    expand_label(&client_prk, p.key, &mut k.key);
    expand_label(&client_prk, p.iv, &mut k.iv);
    expand_label(&client_prk, p.hp, &mut k.hp);
    Some(k)
}

/// QUIC variable-length integer (RFC 9000 §16).
fn varint(b: &[u8], at: &mut usize) -> Result<u64, QuicError> {
    let first = *b.get(*at).ok_or(QuicError::Truncated)?;
    let len = 1usize << (first >> 6);
    let bytes = b.get(*at..*at + len).ok_or(QuicError::Truncated)?;
    let mut v = u64::from(first & 0x3f);
    for x in &bytes[1..] {
        v = (v << 8) | u64::from(*x);
    }
    *at += len;
    Ok(v)
}

fn usize_of(v: u64) -> Result<usize, QuicError> {
    usize::try_from(v).map_err(|_| QuicError::Truncated)
}

/// CRYPTO data of the client's Initial packets, in a buffer charged to
/// the worker's reassembly budget and allocated on the first frame.
#[derive(Default)]
pub struct CryptoStream {
    budget: Budget,
    buf: Option<Buf>,
    /// Received byte ranges [start, end): sorted, disjoint, not touching.
    have: Vec<(usize, usize)>,
}

/// Adds [s, e) to sorted, disjoint, non-touching ranges, merging it with
/// the ones it overlaps or touches: one binary search, no re-sort.
fn insert_range(have: &mut Vec<(usize, usize)>, s: usize, e: usize) {
    let i = have.partition_point(|r| r.1 < s);
    let j = i + have[i..].partition_point(|r| r.0 <= e);
    if i == j {
        have.insert(i, (s, e));
    } else {
        have[i] = (s.min(have[i].0), e.max(have[j - 1].1));
        have.drain(i + 1..j);
    }
}

/// The length of the handshake message that starts `c`, header included.
fn message_len(c: &[u8]) -> Option<usize> {
    c.get(1..4)
        .map(|l| ((usize::from(l[0]) << 16) | (usize::from(l[1]) << 8) | usize::from(l[2])) + 4)
}

impl CryptoStream {
    /// A stream whose buffer is charged to `budget`.
    pub fn new(budget: &Budget) -> CryptoStream {
        CryptoStream {
            budget: budget.clone(),
            buf: None,
            have: Vec::new(),
        }
    }

    fn add(&mut self, offset: usize, data: &[u8]) -> Result<(), QuicError> {
        let mut end = offset.checked_add(data.len()).ok_or(QuicError::TooLarge)?;
        if end > MAX_CRYPTO {
            return Err(QuicError::TooLarge);
        }
        // Once the first message's length is known, nothing past it is kept.
        if let Some(len) = message_len(self.contiguous()) {
            if offset >= len {
                return Ok(());
            }
            end = end.min(len);
        }
        if data.is_empty() {
            return Ok(());
        }
        let buf = match &mut self.buf {
            Some(b) => b,
            None => self.buf.insert(self.budget.buf(0).ok_or(QuicError::OverBudget)?),
        };
        if !buf.resize(end) {
            return Err(QuicError::OverBudget);
        }
        buf[offset..end].copy_from_slice(&data[..end - offset]);
        insert_range(&mut self.have, offset, end);
        Ok(())
    }

    /// Bytes received contiguously from offset 0.
    fn contiguous(&self) -> &[u8] {
        match (self.have.first(), &self.buf) {
            (Some(&(0, e)), Some(b)) => &b[..e],
            _ => &[],
        }
    }

    /// The whole first handshake message once every byte of it is here.
    pub fn client_hello(&self) -> Option<&[u8]> {
        let c = self.contiguous();
        c.get(..message_len(c)?)
    }

    /// True when the first handshake message cannot fit the bound.
    pub fn hopeless(&self) -> bool {
        message_len(self.contiguous()).is_some_and(|len| len > MAX_CRYPTO)
    }
}

/// Decrypts every client Initial packet in a UDP datagram (several may be
/// coalesced) and adds their CRYPTO frames to `crypto`. `scratch` holds the
/// plaintext while frames are read and is zeroed before returning. Returns
/// the number of Initial packets opened.
pub fn open_initials(datagram: &[u8], scratch: &mut Vec<u8>, crypto: &mut CryptoStream) -> Result<usize, QuicError> {
    if datagram.is_empty() {
        return Err(QuicError::Truncated);
    }
    let mut rest = datagram;
    let mut opened = 0;
    while !rest.is_empty() {
        let res = open_one(rest, scratch, crypto);
        erase(scratch);
        scratch.clear();
        match res {
            Ok((used, initial)) => {
                opened += usize::from(initial);
                rest = &rest[used..];
            }
            // Anything after the first packet may be padding or junk.
            Err(_) if opened > 0 => break,
            Err(e) => return Err(e),
        }
    }
    Ok(opened)
}

/// Opens one long-header packet at the start of `pkt`; returns how many
/// bytes it spans and whether it was an Initial.
fn open_one(pkt: &[u8], scratch: &mut Vec<u8>, crypto: &mut CryptoStream) -> Result<(usize, bool), QuicError> {
    let first = *pkt.first().ok_or(QuicError::Truncated)?;
    if first & 0x80 == 0 {
        return Err(QuicError::NotLongHeader);
    }
    let version = u32::from_be_bytes(pkt.get(1..5).ok_or(QuicError::Truncated)?.try_into().unwrap_or([0; 4]));
    let p = params(version).ok_or(QuicError::UnknownVersion)?;
    let mut at = 5;
    let dcid_len = usize::from(*pkt.get(at).ok_or(QuicError::Truncated)?);
    if dcid_len > 20 {
        return Err(QuicError::Truncated);
    }
    let dcid = pkt.get(at + 1..at + 1 + dcid_len).ok_or(QuicError::Truncated)?;
    at += 1 + dcid_len;
    let scid_len = usize::from(*pkt.get(at).ok_or(QuicError::Truncated)?);
    if scid_len > 20 {
        return Err(QuicError::Truncated);
    }
    at += 1 + scid_len;
    let ptype = (first >> 4) & 3;
    if ptype == 3 {
        // Retry: no Length field; it ends the datagram.
        return Ok((pkt.len(), false));
    }
    if ptype == p.initial_type {
        let token_len = usize_of(varint(pkt, &mut at)?)?;
        at = at.checked_add(token_len).ok_or(QuicError::Truncated)?;
    }
    let length = usize_of(varint(pkt, &mut at)?)?;
    let pn_offset = at;
    let end = pn_offset.checked_add(length).ok_or(QuicError::Truncated)?;
    if end > pkt.len() {
        return Err(QuicError::Truncated);
    }
    if ptype != p.initial_type {
        return Ok((end, false));
    }
    if length < 4 + 16 {
        return Err(QuicError::Truncated);
    }
    let keys = client_initial_keys(version, dcid).ok_or(QuicError::UnknownVersion)?;

    // Header protection (RFC 9001 §5.4): mask from a 16-byte sample taken
    // 4 bytes after the start of the packet number.
    let mut mask = aes::Block::clone_from_slice(&pkt[pn_offset + 4..pn_offset + 20]);
    Aes128::new(&keys.hp.into()).encrypt_block(&mut mask);
    scratch.clear();
    scratch.extend_from_slice(&pkt[..end]);
    scratch[0] ^= mask[0] & 0x0f;
    let pn_len = usize::from(scratch[0] & 3) + 1;
    let mut pn: u64 = 0;
    for i in 0..pn_len {
        scratch[pn_offset + i] ^= mask[1 + i];
        pn = (pn << 8) | u64::from(scratch[pn_offset + i]);
    }
    erase(&mut mask);
    let mut nonce = keys.iv;
    for (n, p) in nonce[4..].iter_mut().zip(pn.to_be_bytes()) {
        *n ^= p;
    }
    let body = pn_offset + pn_len;
    if end - body < 16 {
        return Err(QuicError::Truncated);
    }
    let (header, payload) = scratch.split_at_mut(body);
    let (ct, tag) = payload.split_at_mut(end - body - 16);
    Aes128Gcm::new(&keys.key.into())
        .decrypt_in_place_detached(Nonce::from_slice(&nonce), header, ct, Tag::from_slice(tag))
        .map_err(|_| QuicError::Decrypt)?;
    erase(&mut nonce);
    read_frames(ct, crypto)?;
    Ok((end, true))
}

/// Reads the frames an Initial packet may carry (RFC 9000 §12.4), keeping
/// CRYPTO data. Public for the fuzz target: random bytes never pass the
/// AEAD check, so the fuzzer reaches this only directly.
pub fn read_frames(b: &[u8], crypto: &mut CryptoStream) -> Result<(), QuicError> {
    let mut at = 0;
    while at < b.len() {
        match varint(b, &mut at)? {
            0x00 | 0x01 => {} // PADDING, PING
            t @ (0x02 | 0x03) => {
                // ACK: largest, delay, range count, first range, ranges, [ECN]
                varint(b, &mut at)?;
                varint(b, &mut at)?;
                let ranges = varint(b, &mut at)?;
                varint(b, &mut at)?;
                for _ in 0..ranges.min(b.len() as u64) {
                    varint(b, &mut at)?;
                    varint(b, &mut at)?;
                }
                if t == 0x03 {
                    for _ in 0..3 {
                        varint(b, &mut at)?;
                    }
                }
            }
            0x06 => {
                let offset = usize_of(varint(b, &mut at)?)?;
                let len = usize_of(varint(b, &mut at)?)?;
                let data = b.get(at..at.saturating_add(len)).ok_or(QuicError::Truncated)?;
                crypto.add(offset, data)?;
                at += len;
            }
            0x1c => return Ok(()), // CONNECTION_CLOSE ends what we need
            _ => return Err(QuicError::BadFrame),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 9001 Appendix A.1: client Initial keys for DCID 0x8394c8f03e515708.
    #[test]
    fn rfc9001_a1_client_keys() {
        let k = client_initial_keys(VERSION_1, &hex("8394c8f03e515708")).unwrap();
        assert_eq!(k.key.to_vec(), hex("1f369613dd76d5467730efcbe3b1a22d"));
        assert_eq!(k.iv.to_vec(), hex("fa044b2f42a3fd3b46fb255c"));
        assert_eq!(k.hp.to_vec(), hex("9f50449e04a0e810283a1e9933adedd2"));
    }

    /// RFC 9369 Appendix A.1: the same DCID under QUIC version 2.
    #[test]
    fn rfc9369_a1_client_keys() {
        let k = client_initial_keys(VERSION_2, &hex("8394c8f03e515708")).unwrap();
        assert_eq!(k.key.to_vec(), hex("8b1a0bc121284290a29e0971b5cd045d"));
        assert_eq!(k.iv.to_vec(), hex("91f73e2351d8fa91660e909f"));
        assert_eq!(k.hp.to_vec(), hex("45b95e15235d6f45a6b19cbcb0294ba9"));
    }

    #[test]
    fn varints_of_every_length() {
        // RFC 9000 §A.1 examples.
        for (bytes, want) in [
            ("c2197c5eff14e88c", 151_288_809_941_952_652u64),
            ("9d7f3e7d", 494_878_333),
            ("7bbd", 15_293),
            ("25", 37),
            ("4025", 37),
        ] {
            let mut at = 0;
            assert_eq!(varint(&hex(bytes), &mut at), Ok(want));
            assert_eq!(at, bytes.len() / 2);
        }
        assert_eq!(varint(&hex("c2197c"), &mut 0), Err(QuicError::Truncated));
    }

    #[test]
    fn crypto_frames_out_of_order_and_bounded() {
        let mut c = CryptoStream::default();
        let msg = [1u8, 0, 0, 6, 10, 11, 12, 13, 14, 15];
        c.add(5, &msg[5..]).unwrap();
        assert_eq!(c.client_hello(), None);
        c.add(0, &msg[..6]).unwrap();
        assert_eq!(c.client_hello(), Some(&msg[..]));
        assert_eq!(c.add(MAX_CRYPTO - 1, &[0, 0]), Err(QuicError::TooLarge));
    }

    #[test]
    fn ranges_merge_in_place_like_a_sort_and_sweep() {
        use proptest::prelude::*;
        proptest!(|(adds in proptest::collection::vec((0usize..200, 0usize..40), 0..30))| {
            let mut have = Vec::new();
            let mut naive: Vec<(usize, usize)> = Vec::new();
            for (s, len) in adds {
                let e = s + len + 1;
                insert_range(&mut have, s, e);
                naive.push((s, e));
                naive.sort_unstable();
                let mut merged: Vec<(usize, usize)> = Vec::new();
                for &(s, e) in &naive {
                    match merged.last_mut() {
                        Some(last) if s <= last.1 => last.1 = last.1.max(e),
                        _ => merged.push((s, e)),
                    }
                }
                prop_assert_eq!(&have, &merged);
            }
        });
    }

    #[test]
    fn crypto_data_is_charged_to_the_budget_and_refused_beyond_it() {
        let budget = Budget::new(4096);
        let mut a = CryptoStream::new(&budget);
        // A far offset claims a zero-filled buffer up to it.
        a.add(3000, &[1; 100]).unwrap();
        assert!(budget.used() >= 3100);
        let mut b = CryptoStream::new(&budget);
        assert_eq!(b.add(3000, &[1; 100]), Err(QuicError::OverBudget));
        assert_eq!(budget.refused(), 1);
        drop(a);
        assert_eq!(budget.used(), 0);
        b.add(3000, &[1; 100]).unwrap();
        // Past the first message's length nothing more is kept.
        let mut c = CryptoStream::new(&Budget::new(4096));
        c.add(0, &[1, 0, 0, 6, 10, 11]).unwrap();
        c.add(900, &[5; 10]).unwrap();
        assert_eq!(c.have, vec![(0, 6)]);
        c.add(6, &[12, 13, 14, 15]).unwrap();
        assert_eq!(c.client_hello(), Some(&[1, 0, 0, 6, 10, 11, 12, 13, 14, 15][..]));
    }

    #[test]
    fn junk_is_an_error_not_a_panic() {
        let mut s = Vec::new();
        let mut c = CryptoStream::default();
        for junk in [
            &b""[..],
            b"\x40abc",
            b"\xc0\x00\x00\x00\x01\x08",
            b"\xc0\xff\xff\xff\xff\x00\x00\x00",
        ] {
            assert!(open_initials(junk, &mut s, &mut c).is_err());
        }
        // A well-formed header whose payload does not authenticate.
        let mut p = hex("c000000001088394c8f03e5157080000449e");
        p.resize(p.len() + 0x49e, 0x5a);
        assert_eq!(open_initials(&p, &mut s, &mut c), Err(QuicError::Decrypt));
        assert!(s.iter().all(|b| *b == 0));
    }
}
