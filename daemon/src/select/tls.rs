//! TLS ClientHello fingerprints (JA4, and JA3 for compatibility), computed
//! in place from the first ClientHello of a flow.
//!
//! Invariant kept: only the two fingerprint strings leave this module. The
//! server name and ALPN values are read to build JA4 and are **match-only**:
//! they are never returned, stored or exported.

use std::fmt::Write;

use md5::{Digest as _, Md5};
use sha2::Sha256;

/// A ClientHello's fingerprints as the flow's (the rules take either).
impl<'a> From<Option<&'a Fingerprints>> for crate::flow::Prints<'a> {
    fn from(f: Option<&'a Fingerprints>) -> Self {
        crate::flow::Prints {
            ja4: f.map(|f| f.ja4.as_str()),
            ja3: f.map(|f| f.ja3.as_str()),
            ..Default::default()
        }
    }
}

/// Why a payload is not a ClientHello we can fingerprint. Names the
/// problem, never the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    #[error("not a TLS handshake record")]
    NotHandshake,
    #[error("not a ClientHello")]
    NotClientHello,
    #[error("ClientHello truncated")]
    Truncated,
}

/// The fingerprints of one ClientHello: the exportable result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprints {
    pub ja4: String,
    pub ja3: String,
}

/// Transport for JA4's first character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Quic,
}

const EXT_SNI: u16 = 0x0000;
const EXT_SUPPORTED_GROUPS: u16 = 0x000a;
const EXT_EC_POINT_FORMATS: u16 = 0x000b;
const EXT_SIGNATURE_ALGORITHMS: u16 = 0x000d;
const EXT_ALPN: u16 = 0x0010;
const EXT_SUPPORTED_VERSIONS: u16 = 0x002b;

/// GREASE values (RFC 8701): 0x?a?a with both bytes equal.
fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

/// A bounds-checked reader; every read can fail, none can panic.
struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn u8(&mut self) -> Result<u8, TlsError> {
        let (v, rest) = self.b.split_first().ok_or(TlsError::Truncated)?;
        self.b = rest;
        Ok(*v)
    }

    fn u16(&mut self) -> Result<u16, TlsError> {
        Ok(u16::from(self.u8()?) << 8 | u16::from(self.u8()?))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], TlsError> {
        if self.b.len() < n {
            return Err(TlsError::Truncated);
        }
        let (v, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(v)
    }

    fn vec8(&mut self) -> Result<&'a [u8], TlsError> {
        let n = usize::from(self.u8()?);
        self.take(n)
    }

    fn vec16(&mut self) -> Result<&'a [u8], TlsError> {
        let n = usize::from(self.u16()?);
        self.take(n)
    }
}

fn u16s(b: &[u8]) -> impl Iterator<Item = u16> + '_ {
    b.chunks_exact(2).map(|c| u16::from(c[0]) << 8 | u16::from(c[1]))
}

/// The parts of a ClientHello the fingerprints need. Lives only inside
/// `fingerprint`.
struct ClientHello<'a> {
    legacy_version: u16,
    ciphers: Vec<u16>,
    /// Extension types in wire order, GREASE included.
    extensions: Vec<u16>,
    has_sni: bool,
    alpn_first: Option<&'a [u8]>,
    supported_versions: Vec<u16>,
    signature_algorithms: Vec<u16>,
    groups: Vec<u16>,
    point_formats: Vec<u8>,
}

/// Parses a ClientHello handshake message body-first: `msg` starts at the
/// handshake header (type 1).
fn parse_handshake(msg: &[u8]) -> Result<ClientHello<'_>, TlsError> {
    let mut r = Reader { b: msg };
    if r.u8()? != 1 {
        return Err(TlsError::NotClientHello);
    }
    let len = (usize::from(r.u8()?) << 16) | usize::from(r.u16()?);
    let mut r = Reader { b: r.take(len)? };
    let legacy_version = r.u16()?;
    r.take(32)?; // random
    r.vec8()?; // session id
    let ciphers = u16s(r.vec16()?).collect();
    r.vec8()?; // compression methods
    let mut ch = ClientHello {
        legacy_version,
        ciphers,
        extensions: Vec::new(),
        has_sni: false,
        alpn_first: None,
        supported_versions: Vec::new(),
        signature_algorithms: Vec::new(),
        groups: Vec::new(),
        point_formats: Vec::new(),
    };
    if r.b.is_empty() {
        return Ok(ch);
    }
    let mut exts = Reader { b: r.vec16()? };
    while !exts.b.is_empty() {
        let ty = exts.u16()?;
        let data = exts.vec16()?;
        ch.extensions.push(ty);
        // A malformed extension body leaves its list empty; the extension
        // still counts, as JA4 and JA3 fingerprint the type list.
        let mut d = Reader { b: data };
        match ty {
            EXT_SNI => ch.has_sni = true,
            EXT_ALPN => {
                if let Ok(b) = d.vec16() {
                    ch.alpn_first = Reader { b }.vec8().ok();
                }
            }
            EXT_SUPPORTED_VERSIONS => ch.supported_versions = d.vec8().map(|b| u16s(b).collect()).unwrap_or_default(),
            EXT_SIGNATURE_ALGORITHMS => {
                ch.signature_algorithms = d.vec16().map(|b| u16s(b).collect()).unwrap_or_default()
            }
            EXT_SUPPORTED_GROUPS => ch.groups = d.vec16().map(|b| u16s(b).collect()).unwrap_or_default(),
            EXT_EC_POINT_FORMATS => ch.point_formats = d.vec8().map(<[u8]>::to_vec).unwrap_or_default(),
            _ => {}
        }
    }
    Ok(ch)
}

/// If `payload` starts a TLS handshake record holding a ClientHello, the
/// length the whole handshake message needs (header included); lets a
/// caller decide whether to wait for a second segment.
pub fn client_hello_len(payload: &[u8]) -> Result<usize, TlsError> {
    let mut r = Reader { b: payload };
    if r.u8()? != 22 {
        return Err(TlsError::NotHandshake);
    }
    r.u16()?; // record version
    r.u16()?; // record length
    if r.u8()? != 1 {
        return Err(TlsError::NotClientHello);
    }
    let len = (usize::from(r.u8()?) << 16) | usize::from(r.u16()?);
    Ok(len + 4)
}

fn version_code(v: u16) -> &'static str {
    match v {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    }
}

/// JA4's ALPN part: first and last character of the first ALPN value, or
/// of its hex form when either is not alphanumeric; "00" without ALPN.
fn alpn_code(alpn: Option<&[u8]>) -> String {
    match alpn {
        Some(v) if !v.is_empty() => {
            let (f, l) = (v[0], v[v.len() - 1]);
            if f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric() {
                format!("{}{}", f as char, l as char)
            } else {
                let hex = format!("{f:02x}{l:02x}");
                format!("{}{}", &hex[..1], &hex[3..])
            }
        }
        _ => "00".to_string(),
    }
}

fn hash12(s: &str) -> String {
    if s.is_empty() {
        return "000000000000".to_string();
    }
    let d = Sha256::digest(s.as_bytes());
    crate::hex::encode(&d[..6])
}

fn hex_list(v: &[u16]) -> String {
    let mut s = String::new();
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{x:04x}");
    }
    s
}

fn dec_list<T: std::fmt::Display>(v: impl IntoIterator<Item = T>) -> String {
    v.into_iter().map(|x| x.to_string()).collect::<Vec<_>>().join("-")
}

fn ja4(ch: &ClientHello<'_>, transport: Transport) -> String {
    let version = ch
        .supported_versions
        .iter()
        .copied()
        .filter(|v| !is_grease(*v))
        .max()
        .unwrap_or(ch.legacy_version);
    let mut ciphers: Vec<u16> = ch.ciphers.iter().copied().filter(|c| !is_grease(*c)).collect();
    let exts: Vec<u16> = ch.extensions.iter().copied().filter(|e| !is_grease(*e)).collect();
    let a = format!(
        "{}{}{}{:02}{:02}{}",
        match transport {
            Transport::Tcp => 't',
            Transport::Quic => 'q',
        },
        version_code(version),
        if ch.has_sni { 'd' } else { 'i' },
        ciphers.len().min(99),
        exts.len().min(99),
        alpn_code(ch.alpn_first),
    );
    ciphers.sort_unstable();
    let b = hash12(&hex_list(&ciphers));
    let mut sorted_exts: Vec<u16> = exts.into_iter().filter(|e| *e != EXT_SNI && *e != EXT_ALPN).collect();
    sorted_exts.sort_unstable();
    let sigs: Vec<u16> = ch
        .signature_algorithms
        .iter()
        .copied()
        .filter(|s| !is_grease(*s))
        .collect();
    let c_input = if sorted_exts.is_empty() {
        String::new()
    } else if sigs.is_empty() {
        hex_list(&sorted_exts)
    } else {
        format!("{}_{}", hex_list(&sorted_exts), hex_list(&sigs))
    };
    format!("{a}_{b}_{}", hash12(&c_input))
}

fn ja3(ch: &ClientHello<'_>) -> String {
    let s = format!(
        "{},{},{},{},{}",
        ch.legacy_version,
        dec_list(ch.ciphers.iter().filter(|c| !is_grease(**c))),
        dec_list(ch.extensions.iter().filter(|e| !is_grease(**e))),
        dec_list(ch.groups.iter().filter(|g| !is_grease(**g))),
        dec_list(ch.point_formats.iter()),
    );
    let d = Md5::digest(s.as_bytes());
    crate::hex::encode(&d)
}

/// Fingerprints a ClientHello carried in TLS record(s) at the start of
/// `payload` (a TCP payload, possibly two segments joined).
pub fn fingerprint_record(payload: &[u8]) -> Result<Fingerprints, TlsError> {
    let need = client_hello_len(payload)?;
    // Record header is 5 bytes; the handshake message follows. A message
    // split over several records is joined by the caller.
    let msg = payload.get(5..5 + need).ok_or(TlsError::Truncated)?;
    fingerprint_handshake(msg, Transport::Tcp)
}

/// Fingerprints a bare ClientHello handshake message (QUIC CRYPTO frames
/// carry it without a record header).
pub fn fingerprint_handshake(msg: &[u8], transport: Transport) -> Result<Fingerprints, TlsError> {
    let ch = parse_handshake(msg)?;
    Ok(Fingerprints {
        ja4: ja4(&ch, transport),
        ja3: ja3(&ch),
    })
}

/// JA3S (Salesforce): MD5 of `version,cipher,extensions` (decimal, the
/// extension types dash-joined in wire order) of the ServerHello that
/// starts the responder's first TCP payload. A ServerHello is a few
/// hundred bytes and comes whole in the first segment; one that does not
/// is not fingerprinted.
pub fn ja3s_record(payload: &[u8]) -> Result<String, TlsError> {
    let mut r = Reader { b: payload };
    if r.u8()? != 22 {
        return Err(TlsError::NotHandshake);
    }
    r.u16()?; // record version
    let rec = r.vec16()?;
    let mut r = Reader { b: rec };
    if r.u8()? != 2 {
        return Err(TlsError::NotClientHello);
    }
    let len = (usize::from(r.u8()?) << 16) | usize::from(r.u16()?);
    let mut r = Reader { b: r.take(len)? };
    let version = r.u16()?;
    r.take(32)?; // random
    r.vec8()?; // session id
    let cipher = r.u16()?;
    r.u8()?; // compression
    let mut exts = Vec::new();
    if !r.b.is_empty() {
        let mut e = Reader { b: r.vec16()? };
        while !e.b.is_empty() {
            exts.push(e.u16()?);
            e.vec16()?;
        }
    }
    let s = format!("{version},{cipher},{}", dec_list(exts));
    Ok(crate::hex::encode(&Md5::digest(s.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ServerHello record: TLS 1.2 legacy version, the cipher, the
    /// extensions (types, empty bodies).
    fn server_hello(cipher: u16, exts: &[u16]) -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend([0x11; 32]);
        body.push(0); // session id
        body.extend(cipher.to_be_bytes());
        body.push(0);
        let mut e = Vec::new();
        for x in exts {
            e.extend(x.to_be_bytes());
            e.extend([0, 0]);
        }
        body.extend((e.len() as u16).to_be_bytes());
        body.extend(e);
        let mut hs = vec![2, 0, (body.len() >> 8) as u8, body.len() as u8];
        hs.extend(body);
        let mut rec = vec![22, 3, 3];
        rec.extend((hs.len() as u16).to_be_bytes());
        rec.extend(hs);
        rec
    }

    #[test]
    fn ja3s_is_md5_of_version_cipher_and_extensions() {
        // "771,49199,65281-0-11-16-23" as the JA3S string.
        let got = ja3s_record(&server_hello(49199, &[65281, 0, 11, 16, 23])).unwrap();
        assert_eq!(got, crate::hex::encode(&Md5::digest(b"771,49199,65281-0-11-16-23")));
        let none = ja3s_record(&server_hello(4865, &[])).unwrap();
        assert_eq!(none, crate::hex::encode(&Md5::digest(b"771,4865,")));
        assert_eq!(ja3s_record(b"SSH-2.0-x\r\n"), Err(TlsError::NotHandshake));
        let sh = server_hello(49199, &[65281]);
        for cut in 0..sh.len() {
            assert!(ja3s_record(&sh[..cut]).is_err(), "{cut}");
        }
    }

    #[test]
    fn grease_values() {
        assert!(is_grease(0x0a0a) && is_grease(0xfafa) && is_grease(0x3a3a));
        assert!(!is_grease(0x0a1a) && !is_grease(0x1301));
    }

    #[test]
    fn alpn_codes() {
        assert_eq!(alpn_code(Some(b"h2")), "h2");
        assert_eq!(alpn_code(Some(b"http/1.1")), "h1");
        assert_eq!(alpn_code(None), "00");
        assert_eq!(alpn_code(Some(&[0xab, 0x01])), "a1");
    }

    /// Every rule of FoxIO's JA4 specification for the ALPN part
    /// (technical_details/JA4.md, "ALPN Extension Value"), with its own
    /// examples.
    #[test]
    fn alpn_rules_of_the_ja4_specification() {
        // No ALPN extension or values, or an empty first value: "00".
        assert_eq!(alpn_code(None), "00");
        assert_eq!(alpn_code(Some(b"")), "00");
        // First and last characters of the first value.
        assert_eq!(alpn_code(Some(b"h2")), "h2");
        assert_eq!(alpn_code(Some(b"http/1.1")), "h1");
        assert_eq!(alpn_code(Some(b"h3")), "h3");
        // A single character is both the first and the last.
        assert_eq!(alpn_code(Some(b"q")), "qq");
        // A non-alphanumeric first or last byte: the first and last
        // characters of the value's hex form — the specification's examples.
        assert_eq!(alpn_code(Some(&[0xab])), "ab");
        assert_eq!(alpn_code(Some(&[0xab, 0xcd])), "ad");
        assert_eq!(alpn_code(Some(&[0x30, 0xab])), "3b");
        assert_eq!(alpn_code(Some(&[0x30, 0x31, 0xab, 0xcd])), "3d");
        assert_eq!(alpn_code(Some(&[0x30, 0xab, 0xcd, 0x31])), "01");
        // Alphanumeric means 0-9, A-Z, a-z only: '/' and '-' are not.
        assert_eq!(alpn_code(Some(b"/x")), "28");
        assert_eq!(alpn_code(Some(b"x-")), "7d");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert_eq!(fingerprint_record(b""), Err(TlsError::Truncated));
        assert_eq!(fingerprint_record(b"GET / HTTP/1.1\r\n"), Err(TlsError::NotHandshake));
        assert_eq!(
            fingerprint_record(&[22, 3, 1, 0, 4, 2, 0, 0, 0]),
            Err(TlsError::NotClientHello)
        );
        assert_eq!(
            fingerprint_record(&[22, 3, 1, 0, 9, 1, 0, 0, 200, 3, 3]),
            Err(TlsError::Truncated)
        );
    }
}
