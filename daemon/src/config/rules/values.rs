//! The values inside a rule: port and size ranges, TCP flags, protocols,
//! address sets and payload signatures, each with its error and line.

use std::path::Path;

use toml::Spanned;

use super::schema::SignatureSection;
use crate::classify::PrefixSet;
use crate::config::{prefixes, Collector};

pub(super) fn parse_range<T: std::str::FromStr + PartialOrd + Copy>(
    s: &Spanned<String>,
    what: &str,
    c: &mut Collector<'_>,
) -> Option<(T, T)> {
    let txt = s.get_ref().trim();
    let (a, b) = txt.split_once('-').unwrap_or((txt, txt));
    match (a.trim().parse::<T>(), b.trim().parse::<T>()) {
        (Ok(lo), Ok(hi)) if lo <= hi => Some((lo, hi)),
        _ => {
            c.at(
                s.span(),
                format!("{what} `{txt}` is not a value or an inclusive range LO-HI"),
            );
            None
        }
    }
}

pub(super) fn tcp_flag_bits(s: &Spanned<String>, c: &mut Collector<'_>) -> Option<u8> {
    let mut bits = 0u8;
    for name in s.get_ref().split(',').map(str::trim).filter(|n| !n.is_empty()) {
        bits |= match name.to_ascii_uppercase().as_str() {
            "FIN" => 0x01,
            "SYN" => 0x02,
            "RST" => 0x04,
            "PSH" => 0x08,
            "ACK" => 0x10,
            "URG" => 0x20,
            "ECE" => 0x40,
            "CWR" => 0x80,
            other => {
                c.at(
                    s.span(),
                    format!("unknown TCP flag `{other}` (FIN SYN RST PSH ACK URG ECE CWR)"),
                );
                return None;
            }
        };
    }
    Some(bits)
}

pub(super) fn protocol_number(s: &Spanned<String>, c: &mut Collector<'_>) -> Option<u8> {
    Some(match s.get_ref().to_ascii_lowercase().as_str() {
        "tcp" => 6,
        "udp" => 17,
        "icmp" => 1,
        "icmpv6" => 58,
        other => match other.parse::<u8>() {
            Ok(n) => n,
            Err(_) => {
                c.at(
                    s.span(),
                    format!("protocol `{other}` is not tcp, udp, icmp, icmpv6 or a number 0-255"),
                );
                return None;
            }
        },
    })
}

pub(super) fn address_set(
    inline: &[Spanned<String>],
    files: &[Spanned<String>],
    base: &Path,
    c: &mut Collector<'_>,
) -> Option<PrefixSet> {
    if inline.is_empty() && files.is_empty() {
        return None;
    }
    Some(prefixes::load(inline, files, base, c).into_iter().collect())
}

pub(super) fn signature_bytes(
    s: &SignatureSection,
    rule_span: std::ops::Range<usize>,
    c: &mut Collector<'_>,
) -> Option<Vec<u8>> {
    match (&s.text, &s.hex) {
        (Some(t), None) if !t.get_ref().is_empty() => Some(t.get_ref().as_bytes().to_vec()),
        (Some(t), None) => {
            c.at(
                t.span(),
                "an empty pattern would match every payload; give the bytes to look for",
            );
            None
        }
        (None, Some(h)) if h.get_ref().trim().is_empty() => {
            c.at(
                h.span(),
                "an empty pattern would match every payload; give the bytes to look for",
            );
            None
        }
        (Some(_), Some(h)) => {
            c.at(h.span(), "a payload signature takes `text` or `hex`, not both");
            None
        }
        (None, Some(h)) => {
            let digits: String = h.get_ref().chars().filter(|ch| !ch.is_whitespace()).collect();
            let ok =
                digits.len().is_multiple_of(2) && !digits.is_empty() && digits.chars().all(|ch| ch.is_ascii_hexdigit());
            if !ok {
                c.at(
                    h.span(),
                    "hex signature must be pairs of hex digits, e.g. \"de ad be ef\"",
                );
                return None;
            }
            crate::hex::decode(&digits)
        }
        _ => {
            c.at(
                rule_span,
                "a payload signature needs exactly one non-empty `text` or `hex`",
            );
            None
        }
    }
}
