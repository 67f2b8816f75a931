//! Selection rules over mechanical information (`config/rules/*.toml`):
//! every condition of a rule must hold for a packet to match it.
//!
//! Invariant kept: a match yields rule ids only. Payload signatures are
//! matched in place and sealed: neither the bytes nor the offset of a
//! match leaves `signatures`.

pub mod behaviour;
pub mod schema;
pub mod signatures;

use sha2::Digest;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::classify::{Class, Measure, PrefixSet};
use crate::config::errors::{ConfigError, ConfigErrors};
use crate::config::{de, prefixes, Collector};
use crate::parse::{Headers, L4};
use crate::select::tls::Fingerprints;
use schema::{RuleSection, SignatureSection};
use signatures::SignatureMatcher;

/// A compiled rule. Absent conditions always hold.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: Arc<str>,
    pub description: String,
    classes: [bool; crate::classify::NUM_CLASSES],
    remote: Option<PrefixSet>,
    local: Option<PrefixSet>,
    source: Option<PrefixSet>,
    destination: Option<PrefixSet>,
    protocols: Option<Vec<u8>>,
    src_ports: Option<Vec<(u16, u16)>>,
    dst_ports: Option<Vec<(u16, u16)>>,
    tcp_flags: Option<(u8, u8)>,
    icmp_type: Option<u8>,
    icmp_code: Option<u8>,
    ttl: Option<(u8, u8)>,
    size: Option<(u16, u16)>,
    ja4: Option<HashSet<String>>,
    ja3: Option<HashSet<String>>,
    has_signatures: bool,
    scan: Option<behaviour::ScanCondition>,
}

/// Per-worker state the matcher reuses from packet to packet.
#[derive(Clone, Default)]
pub struct MatchState {
    /// Behavioural-condition trackers, by rule index.
    scan: Vec<behaviour::ScanTracker>,
    /// Scratch for the signature automaton's per-rule result.
    sig_hits: Vec<bool>,
}

/// Index of a rule in its `RuleSet`.
pub type RuleIdx = u16;

/// A validated, compiled ruleset.
#[derive(Debug, Clone)]
pub struct RuleSet {
    pub version: Arc<str>,
    /// SHA-256 over every loaded file's name and text, in load order (the
    /// audit trail records it with each load); empty without rules.
    pub sha256: String,
    pub rules: Vec<Rule>,
    signatures: SignatureMatcher,
}

fn in_ranges(v: u16, r: &[(u16, u16)]) -> bool {
    r.iter().any(|(lo, hi)| *lo <= v && v <= *hi)
}

impl Rule {
    /// The packet-level conditions (everything but payload signatures).
    fn header_match(&self, class: Class, h: &Headers, fp: Option<&Fingerprints>) -> bool {
        if !self.classes[class as usize] {
            return false;
        }
        let (Some(src), Some(dst)) = (h.src, h.dst) else {
            return false;
        };
        // The remote end is the foreign one; transit has two foreign ends.
        let (remotes, locals): (&[_], &[_]) = match class {
            Class::Inbound => (&[src][..], &[dst][..]),
            Class::Outbound => (&[dst][..], &[src][..]),
            _ => (&[src, dst][..], &[][..]),
        };
        let any_in = |set: &Option<PrefixSet>, addrs: &[std::net::IpAddr]| {
            set.as_ref().is_none_or(|s| addrs.iter().any(|a| s.contains(*a)))
        };
        if !any_in(&self.remote, remotes) || !any_in(&self.local, locals) {
            return false;
        }
        if !any_in(&self.source, &[src]) || !any_in(&self.destination, &[dst]) {
            return false;
        }
        if self.protocols.as_ref().is_some_and(|p| !p.contains(&h.protocol)) {
            return false;
        }
        let (sp, dp) = h.ports();
        if self.src_ports.as_ref().is_some_and(|r| !in_ranges(sp, r))
            || self.dst_ports.as_ref().is_some_and(|r| !in_ranges(dp, r))
        {
            return false;
        }
        if let Some((mask, value)) = self.tcp_flags {
            match h.l4 {
                L4::Tcp { flags, .. } if flags & mask == value => {}
                _ => return false,
            }
        }
        if self.icmp_type.is_some() || self.icmp_code.is_some() {
            match h.l4 {
                L4::Icmp { icmp_type, code }
                    if self.icmp_type.is_none_or(|t| t == icmp_type) && self.icmp_code.is_none_or(|c| c == code) => {}
                _ => return false,
            }
        }
        if self.ttl.is_some_and(|(lo, hi)| h.ttl < lo || h.ttl > hi) {
            return false;
        }
        if self.size.is_some_and(|(lo, hi)| h.ip_len < lo || h.ip_len > hi) {
            return false;
        }
        if self.ja4.is_some() || self.ja3.is_some() {
            let Some(fp) = fp else { return false };
            if self.ja4.as_ref().is_some_and(|s| !s.contains(&fp.ja4))
                || self.ja3.as_ref().is_some_and(|s| !s.contains(&fp.ja3))
            {
                return false;
            }
        }
        true
    }
}

impl RuleSet {
    /// An empty ruleset (selects nothing).
    pub fn empty() -> RuleSet {
        RuleSet {
            version: Arc::from(""),
            sha256: String::new(),
            rules: Vec::new(),
            signatures: SignatureMatcher::default(),
        }
    }

    /// Per-worker matching state for this ruleset.
    pub fn new_match_state(&self) -> MatchState {
        MatchState {
            scan: vec![behaviour::ScanTracker::default(); self.rules.len()],
            sig_hits: Vec::new(),
        }
    }

    /// Rules matching a packet of `class`; `payload` is scanned in place
    /// for the signature conditions. Appends indices to `out`. `state`
    /// must come from this ruleset's `new_match_state` (with a smaller
    /// one, rules with a behavioural condition never match).
    #[allow(clippy::too_many_arguments)]
    pub fn matching(
        &self,
        class: Class,
        h: &Headers,
        payload: &[u8],
        fp: Option<&Fingerprints>,
        state: &mut MatchState,
        now_ns: u64,
        out: &mut Vec<RuleIdx>,
    ) {
        let mut scanned = false;
        for (i, r) in self.rules.iter().enumerate() {
            if !r.header_match(class, h, fp) {
                continue;
            }
            if r.has_signatures {
                // The automaton runs at most once per packet, and only when
                // a rule with signatures passed its header conditions.
                if !scanned {
                    self.signatures
                        .rules_hit(payload, self.rules.len(), &mut state.sig_hits);
                    scanned = true;
                }
                if !state.sig_hits[i] {
                    continue;
                }
            }
            if let Some(c) = &r.scan {
                let (Some(src), Some(dst), Some(t)) = (h.src, h.dst, state.scan.get_mut(i)) else {
                    continue;
                };
                if !t.observe(c, src, dst, h.ports().1, now_ns) {
                    continue;
                }
            }
            out.push(i as RuleIdx);
        }
    }

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
        Ok(RuleSet {
            version: Arc::from(versions.join("+")),
            sha256: digest.finalize().iter().map(|b| format!("{b:02x}")).collect(),
            rules,
            signatures: SignatureMatcher::new(patterns),
        })
    }
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
    let mut classes = [false; crate::classify::NUM_CLASSES];
    if r.measures.get_ref().is_empty() {
        c.at(
            r.measures.span(),
            "`measures` is empty: list transit, inbound and/or outbound",
        );
    }
    for m in r.measures.get_ref() {
        match m.as_str() {
            "transit" => classes[Measure::Transit.class() as usize] = true,
            "inbound" => classes[Measure::Inbound.class() as usize] = true,
            "outbound" => classes[Measure::Outbound.class() as usize] = true,
            other => c.at(
                r.measures.span(),
                format!("unknown measure `{other}`; expected transit, inbound or outbound"),
            ),
        }
    }
    let remote = address_set(&r.remote, &r.remote_files, base, c);
    let local = address_set(&r.local, &r.local_files, base, c);
    let source = address_set(&r.source, &r.source_files, base, c);
    let destination = address_set(&r.destination, &r.destination_files, base, c);
    let protocols =
        (!r.protocols.is_empty()).then(|| r.protocols.iter().filter_map(|p| protocol_number(p, c)).collect());
    let ports = |list: &[Spanned<String>], c: &mut Collector<'_>| -> Option<Vec<(u16, u16)>> {
        (!list.is_empty()).then(|| list.iter().filter_map(|p| parse_range::<u16>(p, "port", c)).collect())
    };
    let src_ports = ports(&r.src_ports, c);
    let dst_ports = ports(&r.dst_ports, c);
    let tcp_flags = r.tcp_flags.as_ref().and_then(|f| {
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
    });
    let ttl = r.ttl.as_ref().and_then(|t| parse_range::<u8>(t, "ttl", c));
    let size = r.size.as_ref().and_then(|t| parse_range::<u16>(t, "size", c));
    let fp_set = |list: &[Spanned<String>]| {
        (!list.is_empty()).then(|| list.iter().map(|s| s.get_ref().clone()).collect::<HashSet<_>>())
    };
    let (ja4, ja3) = (fp_set(&r.ja4), fp_set(&r.ja3));
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
    let scan = r.scan.as_ref().and_then(|sc| {
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
    });
    let no_condition = remote.is_none()
        && local.is_none()
        && source.is_none()
        && destination.is_none()
        && protocols.is_none()
        && src_ports.is_none()
        && dst_ports.is_none()
        && tcp_flags.is_none()
        && r.icmp_type.is_none()
        && r.icmp_code.is_none()
        && ttl.is_none()
        && size.is_none()
        && ja4.is_none()
        && ja3.is_none()
        && r.payload.is_empty()
        && r.scan.is_none();
    if no_condition {
        c.at(
            span.clone(),
            format!("rule `{id}` has no match condition: it would select every packet of its measures; add at least one condition"),
        );
    }
    if c.errors.len() != before {
        return;
    }
    let has_signatures = !rule_patterns.is_empty();
    patterns.extend(rule_patterns);
    rules.push(Rule {
        id: Arc::from(id),
        description: r.description,
        classes,
        remote,
        local,
        source,
        destination,
        protocols,
        src_ports,
        dst_ports,
        tcp_flags,
        icmp_type: r.icmp_type,
        icmp_code: r.icmp_code,
        ttl,
        size,
        ja4,
        ja3,
        has_signatures,
        scan,
    });
}

#[cfg(test)]
mod tests;
