//! The snap: what of a frame selection may read. The XDP program cuts
//! live frames to it before the copy to user space (`snap_len` in
//! ebpf/furui.bpf.c); `Snapper` makes the same cut in user space for
//! offline input, so that `furui replay` copies, reads and erases no more
//! of a capture file's packets than the live path would.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::classify::abi;
use crate::parse::Headers;

/// What of a captured frame reaches user space: the XDP program cuts the
/// rest off before the copy (data minimization: bytes no rule can use are
/// never copied). Written to the program at start and on every reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snap {
    /// Payload bytes kept after the innermost transport header; None: all.
    pub payload: Option<u32>,
    /// Keep whole the frames fingerprinting reads (TLS ClientHello
    /// segments, QUIC Initials, SSH identification and KEXINIT segments).
    pub keep_hellos: bool,
}

impl Snap {
    /// Every byte of every captured frame.
    pub const WHOLE: Snap = Snap {
        payload: None,
        keep_hellos: true,
    };

    /// What `rules` can use, and the hellos fingerprinting reads.
    pub fn of_rules(rules: &super::rules::RuleSet) -> Snap {
        Snap {
            payload: rules.payload_window(),
            keep_hellos: true,
        }
    }
}

/// Whole frames: what a replay without a config's snap keeps.
impl Default for Snap {
    fn default() -> Snap {
        Snap::WHOLE
    }
}

impl std::fmt::Display for Snap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.payload {
            None => f.write_str("whole frames")?,
            Some(0) => f.write_str("headers only")?,
            Some(n) => write!(f, "headers + {n} payload bytes")?,
        }
        if self.keep_hellos && self.payload.is_some() {
            f.write_str(" (ClientHello, QUIC Initial and SSH KEXINIT segments whole)")?;
        }
        Ok(())
    }
}

/// The direction of a TCP flow whose ClientHello is being followed
/// (innermost addresses and ports, like the XDP program's `hello_key`).
#[derive(Clone, Copy, Hash, PartialEq, Eq)]
struct HelloKey {
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
}

/// The snap made in user space, frame by frame: the XDP program's cut,
/// computed from parsed headers, with its own bounded table of split
/// ClientHellos still being followed.
pub struct Snapper {
    snap: Snap,
    follows: HashMap<HelloKey, u32>,
    /// Hellos followed past their first segment, and followed to the end.
    pub followed: u64,
    pub follow_done: u64,
}

impl Snapper {
    pub fn new(snap: Snap) -> Snapper {
        Snapper {
            snap,
            follows: HashMap::new(),
            followed: 0,
            follow_done: 0,
        }
    }

    pub fn snap(&self) -> Snap {
        self.snap
    }

    /// How many leading bytes of `frame` to keep. `h` holds its headers
    /// when `parsed`; a frame that did not parse, or whose transport header
    /// is unknown (a later fragment, a non-IP frame), is kept whole, as the
    /// XDP program keeps it.
    pub fn keep(&mut self, parsed: bool, h: &Headers, frame: &[u8]) -> usize {
        let len = frame.len();
        let Some(window) = self.snap.payload else {
            return len;
        };
        let l4 = usize::from(h.l4_offset);
        if !parsed || l4 == 0 {
            return len;
        }
        let (head, window) = match h.protocol {
            6 => {
                let Some(&b) = frame.get(l4 + 12) else {
                    return len;
                };
                let head = l4 + usize::from(b >> 4) * 4;
                if head < l4 + 20 {
                    return len;
                }
                if self.snap.keep_hellos && self.tls_hello_segment(h, frame.get(head..).unwrap_or(&[])) {
                    return len;
                }
                if self.snap.keep_hellos && ssh_segment(frame.get(head..).unwrap_or(&[])) {
                    return len;
                }
                (head, window)
            }
            17 => {
                let head = l4 + 8;
                if self.snap.keep_hellos && frame.get(head..head + 5).is_some_and(quic_initial) {
                    return len;
                }
                (head, window)
            }
            // ICMP: its 8-byte header.
            1 | 58 => (l4 + 8, 0),
            _ => (l4, 0),
        };
        head.saturating_add(window as usize).min(len)
    }

    /// Whether a TCP segment whose payload (to the frame's end) is `pl` is
    /// one fingerprinting needs whole: it starts a TLS handshake record (a
    /// record longer than the segment makes its flow followed), or its flow
    /// is followed (its bytes are taken off what is still to come).
    fn tls_hello_segment(&mut self, h: &Headers, pl: &[u8]) -> bool {
        let starts_record = matches!(pl, [0x16, 0x03, _, _, _, ..]);
        if !starts_record && self.follows.is_empty() {
            return false;
        }
        let (Some(src), Some(dst)) = (h.src, h.dst) else {
            return false;
        };
        let (sport, dport) = h.ports();
        let key = HelloKey { src, dst, sport, dport };
        let plen = pl.len() as u32;
        if let [0x16, 0x03, _, hi, lo, ..] = *pl {
            let need = 5 + u32::from(u16::from_be_bytes([hi, lo]));
            if need > plen {
                // Bounded like the kernel's LRU map: a full table gives up
                // one of the hellos it follows.
                if self.follows.len() >= abi::FURUI_MAX_HELLO_FLOWS as usize && !self.follows.contains_key(&key) {
                    let victim = self.follows.keys().next().copied();
                    if let Some(v) = victim {
                        self.follows.remove(&v);
                    }
                }
                self.follows.insert(key, need - plen);
                self.followed += 1;
            }
            return true;
        }
        let Some(left) = self.follows.get_mut(&key) else {
            return false;
        };
        if *left <= plen {
            self.follows.remove(&key);
            self.follow_done += 1;
        } else {
            *left -= plen;
        }
        true
    }
}

/// A TCP payload HASSH reads: an SSH identification line, or a binary
/// packet carrying SSH_MSG_KEXINIT of a plausible length and padding — the
/// XDP program's stateless test (`ssh_segment`).
fn ssh_segment(pl: &[u8]) -> bool {
    let [a, b, c, d, padding, msg, ..] = *pl else {
        return false;
    };
    if [a, b, c, d] == *b"SSH-" {
        return true;
    }
    let n = u32::from_be_bytes([a, b, c, d]) as usize;
    msg == 20 && padding >= 4 && (5..=super::ssh::MAX_KEXINIT).contains(&n)
}

/// A QUIC long-header Initial of version 1 (RFC 9000) or 2 (RFC 9369): the
/// XDP program's test, on the first five bytes of the UDP payload.
fn quic_initial(q: &[u8]) -> bool {
    let [first, a, b, c, d] = q[..] else {
        return false;
    };
    if first & 0xc0 != 0xc0 {
        return false;
    }
    match u32::from_be_bytes([a, b, c, d]) {
        1 => (first >> 4) & 3 == 0,
        0x6b33_43cf => (first >> 4) & 3 == 1,
        _ => false,
    }
}
