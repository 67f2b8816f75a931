//! CIDR prefix lists, inline or from files (one prefix per line, `#`
//! comments), with errors pointing at the file and line that holds them.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use toml::Spanned;

use super::errors::{Collector, ConfigError};

/// Parses `a.b.c.d/len`, `x::/len`, or a bare address (a host prefix).
pub fn parse_prefix(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<IpNet>() {
        return Ok(n.trunc());
    }
    if let Ok(a) = s.parse::<IpAddr>() {
        return Ok(IpNet::from(a));
    }
    Err(format!(
        "`{s}` is not an IPv4 or IPv6 prefix (expected e.g. 192.0.2.0/24 or 2001:db8::/32)"
    ))
}

/// Resolves `p` against the directory of the config file.
pub fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// Collects the prefixes of one source (inline list + files).
pub fn load(inline: &[Spanned<String>], files: &[Spanned<String>], base: &Path, c: &mut Collector<'_>) -> Vec<IpNet> {
    let mut out = Vec::with_capacity(inline.len());
    for p in inline {
        match parse_prefix(p.get_ref()) {
            Ok(n) => out.push(n),
            Err(e) => c.at(p.span(), e),
        }
    }
    for f in files {
        let path = resolve(base, f.get_ref());
        match std::fs::read_to_string(&path) {
            Ok(text) => load_file(&path, &text, &mut out, c.errors),
            Err(e) => c.at(f.span(), format!("cannot read prefix file {}: {e}", path.display())),
        }
    }
    out
}

/// Reads one prefix file into `out`; every bad line is an error of its own.
pub fn load_file(path: &Path, text: &str, out: &mut Vec<IpNet>, errors: &mut Vec<ConfigError>) {
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        match parse_prefix(line) {
            Ok(n) => out.push(n),
            Err(e) => errors.push(ConfigError {
                file: path.to_path_buf(),
                line: i + 1,
                column: 1,
                message: e,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_bare_addresses_and_host_bits() {
        assert_eq!(parse_prefix("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_prefix("192.0.2.7").unwrap().to_string(), "192.0.2.7/32");
        assert_eq!(parse_prefix(" 2001:db8::/32 ").unwrap().to_string(), "2001:db8::/32");
        assert!(parse_prefix("10.0.0.0/33").is_err());
    }

    #[test]
    fn file_errors_carry_their_line() {
        let mut out = Vec::new();
        let mut errs = Vec::new();
        load_file(
            Path::new("p.txt"),
            "# c\n10.0.0.0/8\nnot-a-prefix\n\n2001:db8::/32 # x\n",
            &mut out,
            &mut errs,
        );
        assert_eq!(out.len(), 2);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].line, 3);
    }
}
