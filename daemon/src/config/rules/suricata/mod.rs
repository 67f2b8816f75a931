//! Suricata/Snort rules files (`*.rules`) → furui rules (an in-house
//! parser: the Suricata crate is GPL-only).
//!
//! What is honoured is what can be decided from mechanical information and
//! sealed payload scanning; every other keyword refuses its rule with the
//! file, line, sid and keyword (see `import`). README "Suricata rules"
//! lists both.

mod header;
pub mod options;

use std::collections::HashSet;
use std::sync::Arc;

use super::import::ImportFile;
use crate::select::rules::behaviour::{Distinct, ScanCondition};
use crate::select::rules::signatures::{Pattern, MAX_PATTERNS_PER_RULE};
use crate::select::rules::{Direction, Rule};
use header::HeaderIssue;
use options::{content_bytes, quoted, range, unescape};

/// One imported rule and its payload patterns (rule index unset).
pub type Compiled = (Rule, Vec<Pattern>);

/// Joins `\`-continued lines; skips blanks and `#` comments (commented-out
/// rules are disabled rules). Yields (first line number, text).
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut cur: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end();
        let (start, mut buf) = match cur.take() {
            Some(c) => c,
            None => {
                let t = line.trim_start();
                if t.is_empty() || t.starts_with('#') {
                    continue;
                }
                (i + 1, String::new())
            }
        };
        match line.strip_suffix('\\') {
            Some(head) => {
                buf.push_str(head);
                cur = Some((start, buf));
            }
            None => {
                buf.push_str(line);
                out.push((start, buf));
            }
        }
    }
    out.extend(cur);
    out
}

/// Compiles one rules file; refusals and errors go to `f`.
pub fn compile(text: &str, f: &mut ImportFile<'_>, sids: &mut HashSet<u64>) -> Vec<Compiled> {
    let mut out = Vec::new();
    for (line, rule) in logical_lines(text) {
        if let Some(c) = compile_rule(&rule, line, f, sids) {
            f.count("loaded");
            out.push(c);
        }
    }
    out
}

/// The (sid, option list) of a rule text, or an error message.
fn split_rule(text: &str) -> Result<(&str, &str), String> {
    let open = text.find('(').ok_or("a rule needs its options in parentheses")?;
    let body = text[open + 1..]
        .trim_end()
        .strip_suffix(')')
        .ok_or("a rule's options must end with `)`")?;
    Ok((&text[..open], body))
}

fn compile_rule(text: &str, line: usize, f: &mut ImportFile<'_>, sids: &mut HashSet<u64>) -> Option<Compiled> {
    let (head, body) = match split_rule(text) {
        Ok(x) => x,
        Err(e) => {
            f.error(line, e);
            return None;
        }
    };
    let opts = match options::split(body) {
        Ok(o) => o,
        Err(e) => {
            f.error(line, e);
            return None;
        }
    };
    let sid = opts
        .iter()
        .find(|(k, _)| k == "sid")
        .and_then(|(_, v)| v.as_deref()?.trim().parse::<u64>().ok());
    let Some(sid) = sid else {
        f.error(line, "a rule needs a numeric `sid`");
        return None;
    };
    let what = format!("rule sid:{sid}");
    if !sids.insert(sid) {
        f.error(line, format!("{what}: the sid is used twice"));
        return None;
    }
    let h = match header::parse(head, f.opts) {
        Ok(h) => h,
        Err(HeaderIssue::Error(e)) => {
            f.error(line, format!("{what}: {e}"));
            return None;
        }
        Err(HeaderIssue::Refuse(k, why)) => {
            f.refuse(line, &what, &k, &why);
            return None;
        }
    };
    let mut b = Builder {
        rule: Rule {
            id: Arc::from(format!("sid:{sid}")),
            classes: f.opts.classes,
            action: h.action,
            source: h.src,
            destination: h.dst,
            src_ports: h.src_ports,
            dst_ports: h.dst_ports,
            both_directions: h.both_directions,
            protocols: h.protocols,
            ..Rule::default()
        },
        patterns: Vec::new(),
        buffer: Buffer::Payload,
        msg: String::new(),
        classtype: None,
        rev: None,
    };
    for (k, v) in &opts {
        match b.option(k, v.as_deref()) {
            Ok(()) => {}
            Err(Issue::Error(e)) => {
                f.error(line, format!("{what}: `{k}`: {e}"));
                return None;
            }
            Err(Issue::Refuse(keyword, why)) => {
                f.refuse(line, &what, &keyword, &why);
                return None;
            }
        }
    }
    b.finish().map_err(|e| f.error(line, format!("{what}: {e}"))).ok()
}

/// Where the next `content` applies (Suricata's sticky buffers).
#[derive(Clone, Copy, PartialEq)]
enum Buffer {
    Payload,
    Ja3,
    Ja4,
    Ja3s,
    Hassh,
    HasshServer,
}

impl Buffer {
    /// The keyword, and the length of a whole fingerprint.
    fn name_len(self) -> (&'static str, usize) {
        match self {
            Buffer::Payload => ("content", 0),
            Buffer::Ja3 => ("ja3.hash", 32),
            Buffer::Ja4 => ("ja4.hash", 36),
            Buffer::Ja3s => ("ja3s.hash", 32),
            Buffer::Hassh => ("ssh.hassh", 32),
            Buffer::HasshServer => ("ssh.hassh.server", 32),
        }
    }
}

enum Issue {
    Error(String),
    /// (keyword, reason)
    Refuse(String, String),
}

fn refuse(keyword: impl Into<String>, why: &str) -> Issue {
    Issue::Refuse(keyword.into(), why.to_string())
}

/// One rule being built, option after option.
struct Builder {
    rule: Rule,
    patterns: Vec<Pattern>,
    buffer: Buffer,
    msg: String,
    classtype: Option<String>,
    rev: Option<String>,
}

/// Keywords that describe a rule but do not change what it matches.
const INFORMATIONAL: &[&str] = &["gid", "priority", "reference", "metadata", "target"];

/// Keywords whose meaning lies beyond mechanical information and sealed
/// payload scanning, with the reason given when a rule uses them.
fn unsupported_reason(k: &str) -> &'static str {
    match k {
        "pcre" => "(regular expressions) is not honoured: the sealed matcher runs fixed patterns only",
        "distance" | "within" => "(relative content) is not honoured: contents are matched independently",
        "flowbits" | "flowint" | "xbits" | "hostbits" => "(state shared between rules) is not honoured",
        "threshold" => "limits how often an alert is reported; furui selects every matching packet, so it cannot mean the same (use detection_filter)",
        _ => "is not a keyword furui honours (see README, Suricata rules)",
    }
}

impl Builder {
    fn last_pattern(&mut self, k: &str) -> Result<&mut Pattern, Issue> {
        if self.buffer != Buffer::Payload {
            return Err(refuse(
                format!("{k} on a fingerprint"),
                "is not honoured: a fingerprint is compared whole",
            ));
        }
        self.patterns
            .last_mut()
            .ok_or_else(|| Issue::Error(format!("`{k}` needs a preceding `content`")))
    }

    fn option(&mut self, k: &str, v: Option<&str>) -> Result<(), Issue> {
        fn need(v: Option<&str>) -> Result<&str, Issue> {
            v.ok_or_else(|| Issue::Error("needs a value".into()))
        }
        let num = |v: Option<&str>| -> Result<u32, Issue> {
            need(v)?
                .trim()
                .parse::<u32>()
                .map_err(|_| Issue::Error("needs a whole number".into()))
        };
        match k {
            "sid" => {}
            "msg" => self.msg = unescape(quoted(need(v)?).map_err(Issue::Error)?),
            "rev" => self.rev = Some(need(v)?.trim().to_string()),
            "classtype" => self.classtype = Some(need(v)?.trim().to_string()),
            k if INFORMATIONAL.contains(&k) => {}
            "flow" => self.flow(need(v)?)?,
            "flags" => {
                self.rule.tcp_flags = Some(options::tcp_flags(need(v)?).map_err(|e| match e {
                    Some(e) => Issue::Error(e),
                    None => refuse("flags:*", "(any of the flags) is not honoured"),
                })?)
            }
            "ttl" => self.rule.ttl = Some(numeric("ttl", need(v)?)?),
            "itype" => self.rule.icmp_type = Some(numeric("itype", need(v)?)?),
            "icode" => self.rule.icmp_code = Some(numeric("icode", need(v)?)?),
            "dsize" => self.rule.payload_size = Some(numeric("dsize", need(v)?)?),
            "ip_proto" => self.ip_proto(need(v)?)?,
            "content" => self.content(need(v)?)?,
            "nocase" => self.last_pattern(k)?.nocase = true,
            "offset" => self.last_pattern(k)?.offset = num(v)?,
            "depth" => {
                let d = num(v)?;
                if d == 0 {
                    return Err(Issue::Error("depth 0 would match nothing".into()));
                }
                self.last_pattern(k)?.depth = d;
            }
            "startswith" => {
                let p = self.last_pattern(k)?;
                p.offset = 0;
                p.depth = p.bytes.len() as u32;
            }
            // Hints that do not change what matches.
            "fast_pattern" | "rawbytes" => {
                self.last_pattern(k)?;
            }
            "pkt_data" => self.buffer = Buffer::Payload,
            "ja3.hash" | "ja3_hash" => self.buffer = Buffer::Ja3,
            "ja4.hash" => self.buffer = Buffer::Ja4,
            "ja3s.hash" | "ja3s_hash" => self.buffer = Buffer::Ja3s,
            "ssh.hassh" => self.buffer = Buffer::Hassh,
            "ssh.hassh.server" => self.buffer = Buffer::HasshServer,
            "ssh.hassh.string" | "ssh.hassh.server.string" => {
                return Err(refuse(
                    k,
                    "is not honoured: the name-lists are match-only; use ssh.hassh",
                ))
            }
            "detection_filter" => self.detection_filter(need(v)?)?,
            other => return Err(refuse(other, unsupported_reason(other))),
        }
        Ok(())
    }

    fn flow(&mut self, v: &str) -> Result<(), Issue> {
        for part in v.split(',').map(str::trim) {
            self.rule.direction = match part {
                "to_server" | "from_client" => Some(Direction::ToServer),
                "to_client" | "from_server" => Some(Direction::ToClient),
                "stateless" => self.rule.direction,
                other => {
                    return Err(refuse(
                        format!("flow:{other}"),
                        "is not honoured: furui does not track TCP connection or stream state",
                    ))
                }
            };
        }
        Ok(())
    }

    fn ip_proto(&mut self, v: &str) -> Result<(), Issue> {
        let v = v.trim();
        let n = match v.to_ascii_lowercase().as_str() {
            "tcp" => 6,
            "udp" => 17,
            "icmp" => 1,
            "ipv6-icmp" | "icmpv6" => 58,
            "gre" => 47,
            "esp" => 50,
            "ah" => 51,
            "sctp" => 132,
            x if x.starts_with(['!', '<', '>']) => {
                return Err(refuse("ip_proto comparison", "is not honoured (give one protocol)"))
            }
            x => x
                .parse::<u8>()
                .map_err(|_| Issue::Error(format!("`{v}` is not a protocol name or number")))?,
        };
        match &self.rule.protocols {
            Some(p) if !p.contains(&n) => Err(Issue::Error(format!(
                "protocol {n} contradicts the rule's protocol; it could match nothing"
            ))),
            _ => {
                self.rule.protocols = Some(vec![n]);
                Ok(())
            }
        }
    }

    fn content(&mut self, v: &str) -> Result<(), Issue> {
        let v = v.trim();
        if v.starts_with('!') {
            return Err(refuse("content:!", "(a negated content) is not honoured"));
        }
        let bytes = content_bytes(quoted(v).map_err(Issue::Error)?).map_err(Issue::Error)?;
        match self.buffer {
            Buffer::Payload => {
                if self.patterns.len() == MAX_PATTERNS_PER_RULE {
                    return Err(Issue::Error(format!("more than {MAX_PATTERNS_PER_RULE} contents")));
                }
                self.patterns.push(Pattern {
                    rule: 0,
                    bytes,
                    offset: 0,
                    depth: 0,
                    nocase: false,
                    all: true,
                });
            }
            fp => {
                let (name, len) = fp.name_len();
                let text = String::from_utf8(bytes).unwrap_or_default().to_ascii_lowercase();
                if text.len() != len {
                    return Err(refuse(
                        format!("{name} partial content"),
                        "is not honoured: give the whole fingerprint",
                    ));
                }
                let set = match fp {
                    Buffer::Ja3 => &mut self.rule.ja3,
                    Buffer::Ja4 => &mut self.rule.ja4,
                    Buffer::Ja3s => &mut self.rule.ja3s,
                    Buffer::Hassh => &mut self.rule.hassh,
                    _ => &mut self.rule.hassh_server,
                };
                if set.as_ref().is_some_and(|s| !s.contains(&text)) {
                    return Err(Issue::Error(format!(
                        "two different {name} values can never both match"
                    )));
                }
                set.get_or_insert_with(HashSet::new).insert(text);
            }
        }
        Ok(())
    }

    fn detection_filter(&mut self, v: &str) -> Result<(), Issue> {
        let (mut track, mut count, mut secs) = (None, None, None);
        for part in v.split(',') {
            let mut kv = part.split_whitespace();
            match (kv.next(), kv.next()) {
                (Some("track"), Some(t)) => track = Some(t.to_string()),
                (Some("count"), Some(n)) => count = n.parse::<u32>().ok(),
                (Some("seconds"), Some(n)) => secs = n.parse::<u64>().ok(),
                _ => {
                    return Err(Issue::Error(format!(
                        "`{}` is not track, count or seconds",
                        part.trim()
                    )))
                }
            }
        }
        let (Some(track), Some(count), Some(secs)) = (track, count, secs) else {
            return Err(Issue::Error("needs track, count and seconds".into()));
        };
        if track != "by_src" {
            return Err(refuse(
                format!("detection_filter track {track}"),
                "is not honoured: furui counts per source",
            ));
        }
        if count == 0 || count > 1_000_000 || secs == 0 || secs > 3600 {
            return Err(Issue::Error("count must be 1-1000000 and seconds 1-3600".into()));
        }
        self.rule.scan = Some(ScanCondition {
            distinct: Distinct::Packets,
            more_than: count,
            within_ns: secs * 1_000_000_000,
        });
        Ok(())
    }

    fn finish(mut self) -> Result<Compiled, String> {
        let transport = self
            .rule
            .protocols
            .as_ref()
            .is_some_and(|p| p.iter().all(|n| *n == 6 || *n == 17));
        if !self.patterns.is_empty() && !transport {
            return Err("`content` needs a tcp or udp rule: furui scans the TCP/UDP payload only".into());
        }
        let r = &self.rule;
        if [&r.ja3, &r.ja4, &r.ja3s, &r.hassh, &r.hassh_server]
            .iter()
            .any(|f| f.is_some())
            && !transport
        {
            return Err("a fingerprint needs a tcp or udp rule".into());
        }
        self.rule.has_signatures = !self.patterns.is_empty();
        if selects_everything(&self.rule) {
            return Err("the rule has no condition furui can test: it would select every packet".into());
        }
        let mut d = self.msg;
        if let Some(c) = self.classtype {
            d.push_str(&format!(" [{c}]"));
        }
        if let Some(r) = self.rev {
            d.push_str(&format!(" (rev {r})"));
        }
        self.rule.description = d;
        Ok((self.rule, self.patterns))
    }
}

fn numeric<T>(k: &str, v: &str) -> Result<(T, T), Issue>
where
    T: TryFrom<u64> + Into<u64> + Copy + options::Bounded,
{
    range::<T>(v).map_err(|e| match e {
        Some(e) => Issue::Error(e),
        None => refuse(format!("{k}:!"), "(a negated value) is not honoured"),
    })
}

/// No condition beyond the sides of the border: such a rule would select
/// every packet of its classes.
fn selects_everything(r: &Rule) -> bool {
    use crate::select::rules::endpoints::{Addr, Expr};
    fn only_sides(e: &Option<Expr<Addr>>) -> bool {
        fn walk(e: &Expr<Addr>) -> bool {
            match e {
                Expr::Leaf(Addr::Set(_)) => false,
                Expr::Leaf(_) => true,
                Expr::Not(i) => walk(i),
                Expr::List(l) => l.iter().all(walk),
            }
        }
        e.as_ref().is_none_or(walk)
    }
    only_sides(&r.source)
        && only_sides(&r.destination)
        && r.src_ports.is_none()
        && r.dst_ports.is_none()
        && r.direction.is_none()
        && r.protocols
            .as_ref()
            .is_none_or(|p| p.len() > 1 || r.protocols.is_none())
        && r.tcp_flags.is_none()
        && r.icmp_type.is_none()
        && r.icmp_code.is_none()
        && r.ttl.is_none()
        && r.payload_size.is_none()
        && r.ja3.is_none()
        && r.ja4.is_none()
        && r.ja3s.is_none()
        && r.hassh.is_none()
        && r.hassh_server.is_none()
        && !r.has_signatures
        && r.scan.is_none()
}

#[cfg(test)]
mod tests;
