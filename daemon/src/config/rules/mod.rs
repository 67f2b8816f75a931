//! Rules files (`config/rules/*.toml`) → a compiled `select::rules::RuleSet`.
//! Every mistake in every file is reported with its file and line; the
//! matcher itself lives in `select::rules`.

pub mod schema;

use sha2::Digest;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::errors::{ConfigError, ConfigErrors};
use super::{de, prefixes, Collector};
use crate::classify::{Measure, PrefixSet};
use crate::select::rules::{behaviour, signatures, Rule, RuleIdx, RuleSet};
use schema::{RuleSection, SignatureSection};

/// Loads every `*.toml` in `dir` (sorted by name). The version is the
/// files' versions joined by '+'. Reports every error in every file.
pub fn load_dir(dir: &Path) -> Result<RuleSet, ConfigErrors> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: dir.to_path_buf(),
                line: 0,
                column: 0,
                message: format!("cannot read the rules directory: {e}"),
            }])
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut errors = Vec::new();
    let mut versions = Vec::new();
    let mut rules = Vec::new();
    let mut patterns = Vec::new();
    let mut ids = HashSet::new();
    let mut digest = sha2::Sha256::new();
    for f in &files {
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => {
                errors.push(ConfigError {
                    file: f.clone(),
                    line: 0,
                    column: 0,
                    message: format!("cannot read rules file: {e}"),
                });
                continue;
            }
        };
        digest.update(f.file_name().map(|n| n.as_encoded_bytes()).unwrap_or_default());
        digest.update(b"\n");
        digest.update(text.as_bytes());
        let mut c = Collector::new(f, &text, &mut errors);
        parse_file(f, &text, &mut c, &mut versions, &mut rules, &mut patterns, &mut ids);
    }
    if !errors.is_empty() {
        errors.sort_by_key(|e| (e.file.clone(), e.line, e.column));
        return Err(ConfigErrors(errors));
    }
    Ok(RuleSet::new(
        Arc::from(versions.join("+")),
        crate::hex::encode(&digest.finalize()),
        rules,
        patterns,
    ))
}

fn parse_range<T: std::str::FromStr + PartialOrd + Copy>(
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

fn tcp_flag_bits(s: &Spanned<String>, c: &mut Collector<'_>) -> Option<u8> {
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

fn protocol_number(s: &Spanned<String>, c: &mut Collector<'_>) -> Option<u8> {
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

fn address_set(
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

fn signature_bytes(s: &SignatureSection, rule_span: std::ops::Range<usize>, c: &mut Collector<'_>) -> Option<Vec<u8>> {
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
            (0..digits.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).ok())
                .collect()
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

#[allow(clippy::too_many_arguments)]
fn parse_file(
    path: &Path,
    text: &str,
    c: &mut Collector<'_>,
    versions: &mut Vec<String>,
    rules: &mut Vec<Rule>,
    patterns: &mut Vec<signatures::Pattern>,
    ids: &mut HashSet<String>,
) {
    let (root, syntax) = DeTable::parse_recoverable(text);
    for e in &syntax {
        c.from_toml(e);
    }
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut have_version = false;
    for (key, value) in root.get_ref().iter() {
        match key.get_ref().as_ref() {
            "version" => {
                if let Some(v) = de::<String>(value, c) {
                    if v.is_empty() {
                        c.at(value.span(), "version must not be empty");
                    }
                    versions.push(v);
                    have_version = true;
                }
            }
            "rule" => match value.get_ref() {
                DeValue::Array(a) => {
                    for item in a.iter() {
                        if let Some(r) = de::<RuleSection>(item, c) {
                            compile_rule(r, item.span(), &base, c, rules, patterns, ids);
                        }
                    }
                }
                _ => c.at(value.span(), "`rule` must be an array of tables ([[rule]])"),
            },
            other => c.at(
                key.span(),
                format!("unknown key `{other}`; a rules file has `version` and [[rule]] tables"),
            ),
        }
    }
    if !have_version && !root.get_ref().keys().any(|k| k.get_ref() == "version") {
        c.at_line(1, "missing `version = \"...\"` (recorded with every selection)");
    }
}

/// The rule's measures as a class mask.
fn measure_classes(r: &RuleSection, c: &mut Collector<'_>) -> [bool; crate::classify::NUM_CLASSES] {
    let mut classes = [false; crate::classify::NUM_CLASSES];
    if r.measures.get_ref().is_empty() {
        c.at(
            r.measures.span(),
            "`measures` is empty: list transit, inbound and/or outbound",
        );
    }
    for m in r.measures.get_ref() {
        match Measure::from_name(m) {
            Some(m) => classes[m.class() as usize] = true,
            None => c.at(
                r.measures.span(),
                format!("unknown measure `{m}`; expected transit, inbound or outbound"),
            ),
        }
    }
    classes
}

fn validate_id(r: &RuleSection, c: &mut Collector<'_>, ids: &mut HashSet<String>) -> String {
    let id = r.id.get_ref().clone();
    if id.is_empty()
        || !id
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_' || ch == '.')
    {
        c.at(
            r.id.span(),
            format!("rule id `{id}` must be non-empty ASCII letters, digits, '-', '_' or '.'"),
        );
    }
    if !ids.insert(id.clone()) {
        c.at(r.id.span(), format!("rule id `{id}` is used twice"));
    }
    id
}

fn scan_condition(r: &RuleSection, c: &mut Collector<'_>) -> Option<behaviour::ScanCondition> {
    let sc = r.scan.as_ref()?;
    let distinct = match sc.distinct.get_ref().as_str() {
        "destinations" => behaviour::Distinct::Destinations,
        "ports" => behaviour::Distinct::Ports,
        other => {
            c.at(
                sc.distinct.span(),
                format!("scan.distinct `{other}` must be \"destinations\" or \"ports\""),
            );
            return None;
        }
    };
    let within = *sc.within_secs.get_ref();
    if within == 0 || within > 3600 {
        c.at(sc.within_secs.span(), "scan.within_secs must be between 1 and 3600");
        return None;
    }
    let n = *sc.more_than.get_ref();
    if n == 0 || n > 1000 {
        c.at(
            sc.more_than.span(),
            "scan.more_than must be between 1 and 1000 (the per-source counter is sized for that)",
        );
        return None;
    }
    Some(behaviour::ScanCondition {
        distinct,
        more_than: n,
        within_ns: within * 1_000_000_000,
    })
}

fn tcp_flags(r: &RuleSection, c: &mut Collector<'_>) -> Option<(u8, u8)> {
    let f = r.tcp_flags.as_ref()?;
    let mask = tcp_flag_bits(&f.mask, c)?;
    let value = tcp_flag_bits(&f.value, c)?;
    if value & !mask != 0 {
        c.at(
            f.value.span(),
            "tcp_flags.value names a flag that is not in tcp_flags.mask",
        );
        return None;
    }
    Some((mask, value))
}

/// The rule's conditions on headers and fingerprints, compiled (id,
/// description, classes and signatures are filled in by the caller).
fn header_conditions(r: &RuleSection, base: &Path, c: &mut Collector<'_>) -> Rule {
    let ports = |list: &[Spanned<String>], c: &mut Collector<'_>| -> Option<Vec<(u16, u16)>> {
        (!list.is_empty()).then(|| list.iter().filter_map(|p| parse_range::<u16>(p, "port", c)).collect())
    };
    let fp_set = |list: &[Spanned<String>]| {
        (!list.is_empty()).then(|| list.iter().map(|s| s.get_ref().clone()).collect::<HashSet<_>>())
    };
    Rule {
        id: Arc::from(""),
        description: String::new(),
        classes: [false; crate::classify::NUM_CLASSES],
        remote: address_set(&r.remote, &r.remote_files, base, c),
        local: address_set(&r.local, &r.local_files, base, c),
        source: address_set(&r.source, &r.source_files, base, c),
        destination: address_set(&r.destination, &r.destination_files, base, c),
        protocols: (!r.protocols.is_empty())
            .then(|| r.protocols.iter().filter_map(|p| protocol_number(p, c)).collect()),
        src_ports: ports(&r.src_ports, c),
        dst_ports: ports(&r.dst_ports, c),
        tcp_flags: tcp_flags(r, c),
        icmp_type: r.icmp_type,
        icmp_code: r.icmp_code,
        ttl: r.ttl.as_ref().and_then(|t| parse_range::<u8>(t, "ttl", c)),
        size: r.size.as_ref().and_then(|t| parse_range::<u16>(t, "size", c)),
        ja4: fp_set(&r.ja4),
        ja3: fp_set(&r.ja3),
        has_signatures: false,
        scan: scan_condition(r, c),
    }
}

/// True when the rule names no condition at all.
fn selects_everything(rule: &Rule, r: &RuleSection) -> bool {
    rule.remote.is_none()
        && rule.local.is_none()
        && rule.source.is_none()
        && rule.destination.is_none()
        && rule.protocols.is_none()
        && rule.src_ports.is_none()
        && rule.dst_ports.is_none()
        && rule.tcp_flags.is_none()
        && rule.icmp_type.is_none()
        && rule.icmp_code.is_none()
        && rule.ttl.is_none()
        && rule.size.is_none()
        && rule.ja4.is_none()
        && rule.ja3.is_none()
        && r.payload.is_empty()
        && r.scan.is_none()
}

fn compile_rule(
    r: RuleSection,
    span: std::ops::Range<usize>,
    base: &Path,
    c: &mut Collector<'_>,
    rules: &mut Vec<Rule>,
    patterns: &mut Vec<signatures::Pattern>,
    ids: &mut HashSet<String>,
) {
    let before = c.errors.len();
    let id = validate_id(&r, c, ids);
    let classes = measure_classes(&r, c);
    let mut rule = header_conditions(&r, base, c);
    let idx = rules.len() as RuleIdx;
    let mut rule_patterns = Vec::new();
    for s in &r.payload {
        if let Some(bytes) = signature_bytes(s, span.clone(), c) {
            rule_patterns.push(signatures::Pattern {
                rule: idx,
                bytes,
                offset: s.offset,
                depth: s.depth,
            });
        }
    }
    if selects_everything(&rule, &r) {
        c.at(
            span.clone(),
            format!("rule `{id}` has no match condition: it would select every packet of its measures; add at least one condition"),
        );
    }
    if c.errors.len() != before {
        return;
    }
    rule.id = Arc::from(id);
    rule.description = r.description;
    rule.classes = classes;
    rule.has_signatures = !rule_patterns.is_empty();
    patterns.extend(rule_patterns);
    rules.push(rule);
}

#[cfg(test)]
mod tests;
