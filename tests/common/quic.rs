//! QUIC v1 client Initial packets, sealed with the public Initial keys
//! (RFC 9001 §5): for tests that need Initials whose CRYPTO frames say
//! what the test wants (the flood test).

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes128;
use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, Nonce};

use furui::select::quic::{client_initial_keys, VERSION_1};

/// A CRYPTO frame carrying `data` at `offset` (both below 2^14).
pub fn crypto_frame(offset: u16, data: &[u8]) -> Vec<u8> {
    let mut f = vec![0x06];
    f.extend_from_slice(&(0x4000 | offset).to_be_bytes());
    f.extend_from_slice(&(0x4000 | data.len() as u16).to_be_bytes());
    f.extend_from_slice(data);
    f
}

/// A QUIC v1 client Initial (a UDP payload) for Destination Connection ID
/// `dcid`, packet number 0, carrying `frames` padded to 1200 bytes.
pub fn initial(dcid: &[u8], frames: &[u8]) -> Vec<u8> {
    let keys = client_initial_keys(VERSION_1, dcid).expect("v1 has Initial keys");
    let mut payload = frames.to_vec();
    // PADDING up to a 1200-byte datagram (RFC 9000 §14.1).
    let header_len = 1 + 4 + 1 + dcid.len() + 1 + 1 + 2 + 4;
    payload.resize(payload.len().max(1200 - header_len - 16), 0);
    let length = (4 + payload.len() + 16) as u16;
    let mut pkt = vec![0xc3];
    pkt.extend_from_slice(&VERSION_1.to_be_bytes());
    pkt.push(dcid.len() as u8);
    pkt.extend_from_slice(dcid);
    pkt.push(0); // SCID length
    pkt.push(0); // token length
    pkt.extend_from_slice(&(0x4000 | length).to_be_bytes());
    let pn_offset = pkt.len();
    pkt.extend_from_slice(&[0, 0, 0, 0]);
    let nonce = keys.iv; // packet number 0
    let tag = Aes128Gcm::new(&keys.key.into())
        .encrypt_in_place_detached(Nonce::from_slice(&nonce), &pkt, &mut payload)
        .expect("sealing an Initial");
    pkt.extend_from_slice(&payload);
    pkt.extend_from_slice(&tag);
    let mut mask = aes::Block::clone_from_slice(&pkt[pn_offset + 4..pn_offset + 20]);
    Aes128::new(&keys.hp.into()).encrypt_block(&mut mask);
    pkt[0] ^= mask[0] & 0x0f;
    for i in 0..4 {
        pkt[pn_offset + i] ^= mask[1 + i];
    }
    pkt
}
