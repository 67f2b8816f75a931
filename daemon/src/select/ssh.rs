//! HASSH and hasshServer (Salesforce's SSH fingerprints, BSD-3): the MD5
//! of `kex;encryption;mac;compression` name-lists from the first
//! SSH_MSG_KEXINIT of each side of a TCP flow — the client-to-server lists
//! for HASSH, the server-to-client ones for hasshServer.
//!
//! The KEXINIT follows the identification line (`SSH-2.0-…`), in the same
//! segment or the next ones. The line is read in place and not kept; a
//! KEXINIT split over segments is joined in a buffer of exactly its
//! length, charged to the worker's budget and zeroed when dropped.
//!
//! Invariant kept: only the 32-hex-digit fingerprint leaves this module;
//! the banner and name-lists are match-only.

use md5::{Digest as _, Md5};

use crate::budget::{Budget, Buf};

/// Largest KEXINIT packet followed (OpenSSH's are about 1.5 KiB).
pub const MAX_KEXINIT: usize = 16 * 1024;
/// Longest identification line (RFC 4253 section 4.2: 255 bytes).
const MAX_BANNER: usize = 255;
const MSG_KEXINIT: u8 = 20;

/// One side of a flow on its way to a fingerprint.
#[derive(Default)]
pub enum Ssh {
    #[default]
    Waiting,
    /// The identification line went by; the KEXINIT packet starts next.
    AfterBanner,
    /// The first part of a KEXINIT packet, in a buffer of its length.
    Partial(Box<Buf>),
    Done(Option<Box<str>>),
}

/// Which side's lists the fingerprint takes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

/// Why a byte stream gives no fingerprint (names the problem only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SshError {
    NotSsh,
    NotKexinit,
    Truncated,
    TooLarge,
}

/// The total length (4-byte length field included) of the binary packet
/// starting `b`, once its length field is there.
fn packet_len(b: &[u8]) -> Result<Option<usize>, SshError> {
    let Some(len) = b.get(..4) else { return Ok(None) };
    let n = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
    if !(5..=MAX_KEXINIT).contains(&n) {
        return Err(SshError::TooLarge);
    }
    Ok(Some(n + 4))
}

/// The fingerprint of one whole KEXINIT binary packet.
pub fn fingerprint_packet(p: &[u8], side: Side) -> Result<String, SshError> {
    let total = packet_len(p)?.ok_or(SshError::Truncated)?;
    let p = p.get(..total).ok_or(SshError::Truncated)?;
    let padding = usize::from(*p.get(4).ok_or(SshError::Truncated)?);
    let payload = p
        .get(5..total.checked_sub(padding).ok_or(SshError::Truncated)?)
        .ok_or(SshError::Truncated)?;
    if payload.first() != Some(&MSG_KEXINIT) {
        return Err(SshError::NotKexinit);
    }
    let mut r = payload.get(17..).ok_or(SshError::Truncated)?; // type + cookie
    let mut lists: [&[u8]; 8] = [&[]; 8];
    for l in lists.iter_mut() {
        let n = r.get(..4).ok_or(SshError::Truncated)?;
        let n = u32::from_be_bytes([n[0], n[1], n[2], n[3]]) as usize;
        *l = r.get(4..4 + n).ok_or(SshError::Truncated)?;
        r = &r[4 + n..];
    }
    // kex, host key, enc c2s, enc s2c, mac c2s, mac s2c, comp c2s, comp s2c
    let pick = match side {
        Side::Client => [0, 2, 4, 6],
        Side::Server => [0, 3, 5, 7],
    };
    let mut h = Md5::new();
    for (i, at) in pick.into_iter().enumerate() {
        if i > 0 {
            h.update(b";");
        }
        h.update(lists[at]);
    }
    Ok(crate::hex::encode(&h.finalize()))
}

/// After the identification line: where the binary packets start, or
/// None if the line is not complete in `b`.
fn after_banner(b: &[u8]) -> Result<Option<usize>, SshError> {
    if !b.starts_with(b"SSH-") {
        return Err(SshError::NotSsh);
    }
    match b.iter().take(MAX_BANNER).position(|c| *c == b'\n') {
        Some(i) => Ok(Some(i + 1)),
        None if b.len() >= MAX_BANNER => Err(SshError::NotSsh),
        None => Ok(None),
    }
}

impl Ssh {
    /// The next payload of this side. The first must start with `SSH-`
    /// (else this side is not SSH and is given up at once).
    pub fn feed(&mut self, payload: &[u8], side: Side, budget: &Budget) {
        if payload.is_empty() {
            return;
        }
        let next = match self {
            Ssh::Waiting => match after_banner(payload) {
                Ok(Some(at)) => Self::packet_start(&payload[at..], side, budget),
                // A banner split over segments: rare enough to give up.
                Ok(None) | Err(_) => Ssh::Done(None),
            },
            Ssh::AfterBanner => Self::packet_start(payload, side, budget),
            Ssh::Partial(buf) => {
                let need = packet_len(buf).ok().flatten().unwrap_or(0);
                let take = need.saturating_sub(buf.len()).min(payload.len());
                if !buf.extend(&payload[..take]) {
                    Ssh::Done(None)
                } else if buf.len() >= need {
                    Ssh::Done(fingerprint_packet(buf, side).ok().map(Into::into))
                } else {
                    return;
                }
            }
            Ssh::Done(_) => return,
        };
        // Replacing `Partial` drops its buffer, which zeroes it.
        *self = next;
    }

    fn packet_start(b: &[u8], side: Side, budget: &Budget) -> Ssh {
        if b.is_empty() {
            return Ssh::AfterBanner;
        }
        match packet_len(b) {
            Ok(Some(need)) if b.len() >= need => Ssh::Done(fingerprint_packet(b, side).ok().map(Into::into)),
            Ok(Some(need)) => match budget.buf(need) {
                Some(mut buf) => {
                    if buf.extend(b) {
                        Ssh::Partial(Box::new(buf))
                    } else {
                        Ssh::Done(None)
                    }
                }
                None => Ssh::Done(None),
            },
            _ => Ssh::Done(None),
        }
    }

    pub fn fingerprint(&self) -> Option<&str> {
        match self {
            Ssh::Done(Some(f)) => Some(f),
            _ => None,
        }
    }

    /// True while a KEXINIT is being joined or awaited.
    pub fn in_progress(&self) -> bool {
        matches!(self, Ssh::AfterBanner | Ssh::Partial(_))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A KEXINIT binary packet with these name-lists (kex, host key, enc
    /// c2s, enc s2c, mac c2s, mac s2c, comp c2s, comp s2c).
    pub fn kexinit(lists: [&str; 8]) -> Vec<u8> {
        let mut payload = vec![MSG_KEXINIT];
        payload.extend([0x5a; 16]);
        for l in lists.iter().chain(["", ""].iter()) {
            payload.extend((l.len() as u32).to_be_bytes());
            payload.extend(l.as_bytes());
        }
        payload.extend([0, 0, 0, 0, 0]); // first_kex_packet_follows, reserved
        let padding = 8 - (payload.len() + 5) % 8 + 4;
        let mut p = ((payload.len() + padding + 1) as u32).to_be_bytes().to_vec();
        p.push(padding as u8);
        p.extend(payload);
        p.extend(vec![0; padding]);
        p
    }

    // Published by Zeek's HASSH package (an OpenSSH 7.4p1 client, and an
    // OpenSSH 6.6.1p1 server): the lists and the fingerprints it logged.
    const KEX_C: &str = "curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group-exchange-sha1,diffie-hellman-group14-sha256,diffie-hellman-group14-sha1,ext-info-c";
    const ENC_C: &str = "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com,aes128-cbc,aes192-cbc,aes256-cbc";
    const MAC_C: &str = "umac-64-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-sha1-etm@openssh.com,umac-64@openssh.com,umac-128@openssh.com,hmac-sha2-256,hmac-sha2-512,hmac-sha1";
    const COMP_C: &str = "none,zlib@openssh.com,zlib";
    pub const HASSH_CLIENT: &str = "0df0d56bb50c6b2426d8d40234bf1826";
    const KEX_S: &str = "curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group-exchange-sha256,diffie-hellman-group-exchange-sha1,diffie-hellman-group14-sha1,diffie-hellman-group1-sha1";
    const ENC_S: &str =
        "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com";
    const MAC_S: &str = "hmac-md5-etm@openssh.com,hmac-sha1-etm@openssh.com,umac-64-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-ripemd160-etm@openssh.com,hmac-sha1-96-etm@openssh.com,hmac-md5-96-etm@openssh.com,hmac-md5,hmac-sha1,umac-64@openssh.com,umac-128@openssh.com,hmac-sha2-256,hmac-sha2-512,hmac-ripemd160,hmac-ripemd160@openssh.com,hmac-sha1-96,hmac-md5-96";
    const COMP_S: &str = "none,zlib@openssh.com";
    pub const HASSH_SERVER: &str = "b003da101c8caf37ce9e3ca3cd9d049b";

    pub fn client_kexinit() -> Vec<u8> {
        kexinit([
            KEX_C,
            "ssh-ed25519",
            ENC_C,
            "aes128-ctr",
            MAC_C,
            "hmac-sha1",
            COMP_C,
            "none",
        ])
    }

    pub fn server_kexinit() -> Vec<u8> {
        kexinit([
            KEX_S,
            "ssh-rsa",
            "aes128-ctr",
            ENC_S,
            "hmac-sha1",
            MAC_S,
            "none",
            COMP_S,
        ])
    }

    #[test]
    fn published_vectors_client_and_server_lists() {
        assert_eq!(
            fingerprint_packet(&client_kexinit(), Side::Client).unwrap(),
            HASSH_CLIENT
        );
        assert_eq!(
            fingerprint_packet(&server_kexinit(), Side::Server).unwrap(),
            HASSH_SERVER
        );
    }

    #[test]
    fn banner_and_kexinit_in_one_segment_in_two_and_split_with_the_budget() {
        let budget = Budget::new(64 * 1024);
        let mut both = b"SSH-2.0-OpenSSH_7.4p1 Raspbian-10+deb9u7\r\n".to_vec();
        both.extend(client_kexinit());
        let mut s = Ssh::default();
        s.feed(&both, Side::Client, &budget);
        assert_eq!(s.fingerprint(), Some(HASSH_CLIENT));

        let mut s = Ssh::default();
        s.feed(b"SSH-2.0-OpenSSH_6.6.1p1 Debian-4~bpo70+1\r\n", Side::Server, &budget);
        assert!(s.in_progress());
        let k = server_kexinit();
        s.feed(&k[..100], Side::Server, &budget);
        assert!(matches!(s, Ssh::Partial(_)));
        assert_eq!(budget.used(), k.len());
        s.feed(&k[100..], Side::Server, &budget);
        assert_eq!(s.fingerprint(), Some(HASSH_SERVER));
        assert_eq!(budget.used(), 0, "the buffer went back, zeroed");

        // Not SSH, or not a KEXINIT after the banner: no fingerprint.
        let mut s = Ssh::default();
        s.feed(b"GET / HTTP/1.1\r\n", Side::Client, &budget);
        assert!(matches!(s, Ssh::Done(None)));
        let mut s = Ssh::default();
        let mut other = b"SSH-2.0-x\r\n".to_vec();
        let mut k = client_kexinit();
        k[5] = 21;
        other.extend(k);
        s.feed(&other, Side::Client, &budget);
        assert!(matches!(s, Ssh::Done(None)));
        // A claimed length past the bound is not buffered.
        let mut s = Ssh::default();
        s.feed(b"SSH-2.0-x\r\n\x00\x10\x00\x00\x05", Side::Client, &budget);
        assert!(matches!(s, Ssh::Done(None)));
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for b in [
            &b""[..],
            b"\x00\x00\x00\x05",
            b"\x00\x00\x00\x09\x04\x14",
            b"\xff\xff\xff\xff",
        ] {
            assert!(fingerprint_packet(b, Side::Client).is_err());
        }
        let k = client_kexinit();
        for cut in 0..k.len() {
            assert!(fingerprint_packet(&k[..cut], Side::Client).is_err(), "{cut}");
        }
    }
}
