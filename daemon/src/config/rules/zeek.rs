//! Zeek intel files (`*.intel`): the Input framework's tab-separated
//! format with a `#fields` header. `Intel::ADDR` and `Intel::SUBNET`
//! indicators become one indicator set per file — a rule that holds when
//! either end of a packet is in the set (Zeek matches an address wherever
//! it is seen). Other indicator types are counted as not applicable.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::import::ImportFile;
use crate::classify::PrefixSet;
use crate::config::prefixes::parse_prefix;
use crate::select::rules::endpoints::{Addr, Expr};
use crate::select::rules::Rule;

/// The file's indicator set as one rule (None when it holds no address).
pub fn compile(text: &str, f: &mut ImportFile<'_>) -> Option<Rule> {
    let mut columns: Option<Vec<String>> = None;
    let mut separator = '\t';
    let mut set = PrefixSet::new();
    let mut sources = BTreeSet::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if let Some(meta) = raw.strip_prefix('#') {
            let (key, rest) = meta.split_once([' ', '\t']).unwrap_or((meta, ""));
            match key {
                "separator" => separator = separator_char(rest.trim()).unwrap_or('\t'),
                "fields" => columns = Some(rest.split(separator).map(|c| c.trim().to_string()).collect()),
                _ => {}
            }
            continue;
        }
        if raw.trim().is_empty() {
            continue;
        }
        let Some(cols) = &columns else {
            f.error(line, "an indicator before the `#fields` header");
            return None;
        };
        let col = |name: &str| cols.iter().position(|c| c == name);
        let (Some(ind), Some(kind)) = (col("indicator"), col("indicator_type")) else {
            f.error(line, "`#fields` must name `indicator` and `indicator_type`");
            return None;
        };
        let values: Vec<&str> = raw.split(separator).collect();
        let (Some(value), Some(typ)) = (values.get(ind), values.get(kind)) else {
            f.error(line, format!("fewer columns than the {} in `#fields`", cols.len()));
            continue;
        };
        match *typ {
            "Intel::ADDR" | "Intel::SUBNET" => match parse_prefix(value) {
                Ok(net) => {
                    set.insert(net);
                    f.count("loaded");
                    if let Some(s) = col("meta.source").and_then(|c| values.get(c)) {
                        if !s.is_empty() && *s != "-" {
                            sources.insert(s.to_string());
                        }
                    }
                }
                Err(e) => f.error(line, e),
            },
            other if other.starts_with("Intel::") => f.count(&format!("not_applicable {other}")),
            other => f.error(line, format!("`{other}` is not an Intel:: indicator type")),
        }
    }
    if set.is_empty() {
        return None;
    }
    let stem = f
        .path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let sources: Vec<String> = sources.into_iter().collect();
    Some(Rule {
        id: Arc::from(format!("zeek:{stem}")),
        description: format!("Zeek intel {stem} (sources: {})", sources.join(", ")),
        classes: f.opts.classes,
        source: Some(Expr::Leaf(Addr::Set(set))),
        both_directions: true,
        ..Rule::default()
    })
}

/// `\x09` → a tab, or a literal single character.
fn separator_char(s: &str) -> Option<char> {
    match s.strip_prefix("\\x") {
        Some(hex) => u8::from_str_radix(hex, 16).ok().map(char::from),
        None => s.chars().next(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::classify::Class;
    use crate::config::rules::compile;
    use crate::craft::FrameSpec;
    use crate::parse::parse_ethernet;

    const INTEL: &str = "#separator \\x09\n\
#set_separator\t,\n\
#fields\tindicator\tindicator_type\tmeta.source\tmeta.desc\n\
203.0.113.66\tIntel::ADDR\tcert-feed\tC2 server\n\
198.51.100.0/25\tIntel::SUBNET\tpartner-list\tscanner range\n\
evil.example\tIntel::DOMAIN\tcert-feed\tnot an address\n\
e7eca2baf4458d095b7f45da28c16c34\tIntel::FILE_HASH\tcert-feed\t-\n";

    #[test]
    fn addresses_and_subnets_become_one_set_and_other_types_are_counted() {
        let rs = compile(&[(PathBuf::from("cert.intel"), INTEL.into())], Vec::new()).unwrap();
        assert_eq!(rs.rules.len(), 1);
        assert_eq!(&*rs.rules[0].id, "zeek:cert");
        assert_eq!(
            rs.rules[0].description,
            "Zeek intel cert (sources: cert-feed, partner-list)"
        );
        assert_eq!(rs.imports.counts.get("zeek loaded"), Some(&2));
        assert_eq!(rs.imports.counts.get("zeek not_applicable Intel::DOMAIN"), Some(&1));
        assert_eq!(rs.imports.counts.get("zeek not_applicable Intel::FILE_HASH"), Some(&1));
        assert!(rs.version.starts_with("cert.intel@"));
        let hit = |src: &str, dst: &str, class| {
            let f = FrameSpec::new(src, dst).build();
            let h = parse_ethernet(&f).unwrap();
            let mut out = Vec::new();
            rs.matching(class, &h, &[], None, true, &mut rs.new_match_state(), 0, &mut out);
            !out.is_empty()
        };
        assert!(hit("203.0.113.66", "192.0.2.1", Class::Inbound));
        assert!(hit("192.0.2.1", "198.51.100.100", Class::Outbound), "either end");
        assert!(!hit("192.0.2.1", "198.51.100.200", Class::Outbound), "outside the /25");
    }

    #[test]
    fn a_malformed_intel_line_is_an_error_with_its_line() {
        let bad = "#fields\tindicator\tindicator_type\n203.0.113.300\tIntel::ADDR\nx\tADDR\n";
        let e = compile(&[(PathBuf::from("bad.intel"), bad.into())], Vec::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad.intel:2:0:") && e.contains("203.0.113.300"), "{e}");
        assert!(
            e.contains("bad.intel:3:0: `ADDR` is not an Intel:: indicator type"),
            "{e}"
        );
        let headless = compile(
            &[(PathBuf::from("h.intel"), "1.2.3.4\tIntel::ADDR\n".into())],
            Vec::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(headless.contains("before the `#fields` header"), "{headless}");
    }
}
