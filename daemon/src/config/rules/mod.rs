//! The selection directory → a compiled `select::rules::RuleSet`: furui's
//! own rules (`*.toml`) and imported ones (`*.rules` Suricata rules; see
//! `import`). Every mistake in every file is reported with its file and
//! line; the matcher itself lives in `select::rules`.

pub mod import;
pub mod misp;
pub mod schema;
pub mod stix;
pub mod suricata;
mod values;
pub mod zeek;

use sha2::Digest;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::errors::{ConfigError, ConfigErrors};
use super::{de, Collector};
use crate::classify::Measure;
use crate::classify::PrefixSet;
use crate::select::rules::endpoints::{port_list, Addr, Expr};
use crate::select::rules::{behaviour, signatures, Rule, RuleIdx, RuleSet};
use import::{ImportFile, ImportOptions, ImportSummary};
use schema::RuleSection;
use values::{address_set, parse_range, protocol_number, signature_bytes, tcp_flag_bits};

/// The file names the selection directory loads, by their format.
const FORMATS: &[&str] = &["toml", "rules", "intel", "csv", "json"];

/// `load_dir_with` and the default import options.
pub fn load_dir(dir: &Path) -> Result<RuleSet, ConfigErrors> {
    load_dir_with(dir, &ImportOptions::default())
}

/// Loads every rules file in `dir` (sorted by name). The version is the
/// files' versions joined by '+' (an imported file's is its name and the
/// start of its SHA-256). Reports every error in every file.
pub fn load_dir_with(dir: &Path, opts: &ImportOptions) -> Result<RuleSet, ConfigErrors> {
    load_dir_and(dir, &[], opts)
}

/// `load_dir_with`, then the files `also` (TAXII bundles kept outside the
/// directory), in that order.
pub fn load_dir_and(dir: &Path, also: &[PathBuf], opts: &ImportOptions) -> Result<RuleSet, ConfigErrors> {
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
        .filter(|p| p.extension().is_some_and(|x| FORMATS.iter().any(|f| x == *f)))
        .collect();
    files.sort();
    files.extend(also.iter().cloned());
    let mut errors = Vec::new();
    let mut texts = Vec::new();
    for f in files {
        match std::fs::read_to_string(&f) {
            Ok(t) => texts.push((f, t)),
            Err(e) => errors.push(ConfigError {
                file: f,
                line: 0,
                column: 0,
                message: format!("cannot read rules file: {e}"),
            }),
        }
    }
    compile_with(&texts, errors, opts)
}

/// `compile_with` and the default import options.
pub fn compile(files: &[(PathBuf, String)], errors: Vec<ConfigError>) -> Result<RuleSet, ConfigErrors> {
    compile_with(files, errors, &ImportOptions::default())
}

/// Compiles rules files given as (name, text), in order, after `errors`
/// met reading them; every error in every file is reported.
pub fn compile_with(
    files: &[(PathBuf, String)],
    mut errors: Vec<ConfigError>,
    opts: &ImportOptions,
) -> Result<RuleSet, ConfigErrors> {
    let mut out = Compiled::default();
    let mut digest = sha2::Sha256::new();
    let mut summary = ImportSummary::default();
    let mut sids = HashSet::new();
    for (f, text) in files {
        digest.update(f.file_name().map(|n| n.as_encoded_bytes()).unwrap_or_default());
        digest.update(b"\n");
        digest.update(text.as_bytes());
        let format = f.extension().and_then(|x| x.to_str()).unwrap_or("toml");
        if format == "toml" {
            let mut c = Collector::new(f, text, &mut errors);
            parse_file(f, text, &mut c, &mut out);
            continue;
        }
        let mut file = ImportFile {
            path: f,
            format: "suricata",
            opts,
            summary: &mut summary,
            errors: &mut errors,
        };
        import(format, text, &mut file, &mut sids, &mut out);
        out.versions.push(import_version(f, text));
    }
    if !errors.is_empty() {
        errors.sort_by_key(|e| (e.file.clone(), e.line, e.column));
        return Err(ConfigErrors(errors));
    }
    let mut rs = RuleSet::new(
        Arc::from(out.versions.join("+")),
        crate::hex::encode(&digest.finalize()),
        out.rules,
        out.patterns,
    );
    rs.imports = summary;
    Ok(rs)
}

/// Compiles one imported file by its format (its extension; a JSON file
/// by what it holds).
fn import(format: &str, text: &str, file: &mut ImportFile<'_>, sids: &mut HashSet<u64>, out: &mut Compiled) {
    let plain = |rules: Vec<Rule>| rules.into_iter().map(|r| (r, Vec::new())).collect::<Vec<_>>();
    let compiled = match format {
        "rules" => suricata::compile(text, file, sids),
        "intel" => {
            file.format = "zeek";
            plain(zeek::compile(text, file).into_iter().collect())
        }
        "csv" => {
            file.format = "misp";
            plain(misp::compile_csv(text, file))
        }
        _ => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(doc) if misp::is_misp(&doc) => {
                file.format = "misp";
                plain(misp::compile_json(&doc, file))
            }
            Ok(doc) if stix::is_bundle(&doc) => {
                file.format = "stix";
                plain(stix::compile(&doc, text, file, wall_ns()))
            }
            Ok(_) => {
                file.error(
                    1,
                    "a JSON rules file must be a MISP event ({\"Event\": …}) or a STIX 2.1 bundle",
                );
                Vec::new()
            }
            Err(e) => {
                file.error(e.line(), format!("not JSON: {e}"));
                Vec::new()
            }
        },
    };
    for (rule, patterns) in compiled {
        if !out.ids.insert(rule.id.to_string()) {
            file.error(0, format!("rule id `{}` is used twice", rule.id));
            continue;
        }
        out.push(rule, patterns);
    }
}

/// Nanoseconds since the Unix epoch, now (what has expired at load).
fn wall_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// An imported file's version: its name and the start of its SHA-256, so
/// a record names the feed file that selected it.
fn import_version(f: &Path, text: &str) -> String {
    let name = f.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    let hash = crate::hex::encode(&sha2::Sha256::digest(text.as_bytes()));
    format!("{name}@{}", &hash[..12])
}

/// What the rules files compile into, file after file.
#[derive(Default)]
struct Compiled {
    versions: Vec<String>,
    rules: Vec<Rule>,
    patterns: Vec<signatures::Pattern>,
    /// Rule ids seen so far: an id is unique across files.
    ids: HashSet<String>,
}

impl Compiled {
    /// Adds an imported rule and its patterns.
    fn push(&mut self, rule: Rule, patterns: Vec<signatures::Pattern>) {
        let idx = self.rules.len() as RuleIdx;
        self.patterns
            .extend(patterns.into_iter().map(|p| signatures::Pattern { rule: idx, ..p }));
        self.rules.push(rule);
    }
}

fn parse_file(path: &Path, text: &str, c: &mut Collector<'_>, out: &mut Compiled) {
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
                    out.versions.push(v);
                    have_version = true;
                }
            }
            "rule" => match value.get_ref() {
                DeValue::Array(a) => {
                    for item in a.iter() {
                        if let Some(r) = de::<RuleSection>(item, c) {
                            compile_rule(r, item.span(), &base, c, out);
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
    let leaf = |set: Option<PrefixSet>| set.map(|s| Expr::Leaf(Addr::Set(s)));
    Rule {
        remote: address_set(&r.remote, &r.remote_files, base, c),
        local: address_set(&r.local, &r.local_files, base, c),
        source: leaf(address_set(&r.source, &r.source_files, base, c)),
        destination: leaf(address_set(&r.destination, &r.destination_files, base, c)),
        protocols: (!r.protocols.is_empty())
            .then(|| r.protocols.iter().filter_map(|p| protocol_number(p, c)).collect()),
        src_ports: ports(&r.src_ports, c).map(port_list),
        dst_ports: ports(&r.dst_ports, c).map(port_list),
        tcp_flags: tcp_flags(r, c),
        icmp_type: r.icmp_type.map(|t| (t, t)),
        icmp_code: r.icmp_code.map(|t| (t, t)),
        ttl: r.ttl.as_ref().and_then(|t| parse_range::<u8>(t, "ttl", c)),
        size: r.size.as_ref().and_then(|t| parse_range::<u16>(t, "size", c)),
        ja4: fp_set(&r.ja4),
        ja3: fp_set(&r.ja3),
        ja3s: md5_set(&r.ja3s, "ja3s", c),
        hassh: md5_set(&r.hassh, "hassh", c),
        hassh_server: md5_set(&r.hassh_server, "hassh_server", c),
        scan: scan_condition(r, c),
        ..Rule::default()
    }
}

/// An MD5 fingerprint list (JA3S, HASSH): 32 hex digits each, compared
/// in lower case.
fn md5_set(list: &[Spanned<String>], what: &str, c: &mut Collector<'_>) -> Option<HashSet<String>> {
    if list.is_empty() {
        return None;
    }
    let mut out = HashSet::new();
    for s in list {
        let v = s.get_ref().to_ascii_lowercase();
        if v.len() != 32 || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
            c.at(
                s.span(),
                format!("{what} `{}` is not an MD5 fingerprint (32 hex digits)", s.get_ref()),
            );
        }
        out.insert(v);
    }
    Some(out)
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
        && rule.ja3s.is_none()
        && rule.hassh.is_none()
        && rule.hassh_server.is_none()
        && r.payload.is_empty()
        && r.scan.is_none()
}

fn compile_rule(r: RuleSection, span: std::ops::Range<usize>, base: &Path, c: &mut Collector<'_>, out: &mut Compiled) {
    let before = c.errors.len();
    let id = validate_id(&r, c, &mut out.ids);
    let classes = measure_classes(&r, c);
    let mut rule = header_conditions(&r, base, c);
    let idx = out.rules.len() as RuleIdx;
    let mut rule_patterns = Vec::new();
    for s in &r.payload {
        if let Some(bytes) = signature_bytes(s, span.clone(), c) {
            rule_patterns.push(signatures::Pattern {
                rule: idx,
                bytes,
                offset: s.offset,
                depth: s.depth,
                nocase: false,
                all: false,
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
    out.patterns.extend(rule_patterns);
    out.rules.push(rule);
}

#[cfg(test)]
mod tests;
