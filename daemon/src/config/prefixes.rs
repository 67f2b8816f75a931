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
        match read_whole(&path) {
            Ok(text) => load_file(&path, &text, &mut out, c.errors),
            Err(e) => c.at(f.span(), format!("cannot read prefix file {}: {e}", path.display())),
        }
    }
    out
}

/// Reads a whole file and makes sure nobody wrote it meanwhile: its size,
/// modification time and inode are the same before and after, and what
/// was read is as long as the file. A file rewritten in place while the
/// daemon reloads (empty or half-written at that moment) is refused rather
/// than applied; writers should write a new file and rename it into place.
/// (A rewrite to the same size within one tick of the file system's
/// timestamp clock cannot be seen this way; the empty-set and removal
/// guards of the reload catch what such a file could do.)
pub fn read_whole(path: &Path) -> std::io::Result<String> {
    read_whole_with(path, || {})
}

/// `read_whole`, calling `meanwhile` between the read and the second look
/// at the file (tests use it to play the writer).
fn read_whole_with(path: &Path, meanwhile: impl FnOnce()) -> std::io::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let stamp = |m: &std::fs::Metadata| (m.len(), m.mtime(), m.mtime_nsec(), m.ino(), m.dev());
    let mut f = std::fs::File::open(path)?;
    let before = f.metadata()?;
    let mut text = String::with_capacity(usize::try_from(before.len()).unwrap_or(0));
    f.read_to_string(&mut text)?;
    meanwhile();
    let after = std::fs::metadata(path)?;
    if stamp(&before) != stamp(&after) || text.len() as u64 != after.len() {
        return Err(std::io::Error::other(
            "it changed while being read (rewritten in place?); it was not applied: write the new \
             version to a temporary file and rename it over this one",
        ));
    }
    Ok(text)
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

/// The prefixes of `old` that no prefix of `new` covers (the same prefix
/// or a shorter one holding it): what a change stops treating as domestic.
/// Aggregating prefixes into a supernet removes nothing.
pub fn uncovered(old: &[IpNet], new: &[IpNet]) -> Vec<IpNet> {
    let new: std::collections::HashSet<IpNet> = new.iter().map(IpNet::trunc).collect();
    old.iter()
        .copied()
        .filter(|p| {
            !(0..=p.prefix_len()).any(|len| {
                IpNet::new(p.addr(), len)
                    .map(|n| new.contains(&n.trunc()))
                    .unwrap_or(false)
            })
        })
        .collect()
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
    fn uncovered_prefixes_are_what_a_change_stops_covering() {
        let nets = |v: &[&str]| v.iter().map(|s| parse_prefix(s).unwrap()).collect::<Vec<_>>();
        let old = nets(&["192.0.2.0/25", "192.0.2.128/25", "198.51.100.0/24", "2001:db8::/48"]);
        // Aggregated into a supernet: nothing removed.
        assert!(uncovered(&old, &nets(&["192.0.2.0/24", "198.51.100.0/23", "2001:db8::/32"])).is_empty());
        // A more specific prefix does not cover its supernet.
        assert_eq!(
            uncovered(
                &old,
                &nets(&["192.0.2.0/26", "192.0.2.128/25", "198.51.100.0/24", "2001:db8::/48"])
            ),
            nets(&["192.0.2.0/25"])
        );
        assert_eq!(uncovered(&old, &[]), old);
        assert_eq!(uncovered(&old, &nets(&["0.0.0.0/0"])), nets(&["2001:db8::/48"]));
    }

    #[test]
    fn a_file_rewritten_while_read_is_refused_and_a_stable_one_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.txt");
        std::fs::write(&path, "192.0.2.0/24\n").unwrap();
        assert_eq!(read_whole(&path).unwrap(), "192.0.2.0/24\n");
        // Rewritten in place while being read: longer, emptied (the
        // moment after truncation), shorter.
        for body in ["192.0.2.0/24\n198.51.100.0/24\n", "", "10.0.0.0/8\n"] {
            let e = read_whole_with(&path, || std::fs::write(&path, body).unwrap()).unwrap_err();
            assert!(e.to_string().contains("changed while being read"), "{e}");
        }
        // Replaced by rename (the safe way): the next read sees the new file.
        let tmp = dir.path().join("p.txt.new");
        std::fs::write(&tmp, "198.51.100.0/24\n").unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        assert_eq!(read_whole(&path).unwrap(), "198.51.100.0/24\n");
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
