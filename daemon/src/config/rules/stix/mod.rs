//! STIX 2.1 bundles (`*.json` holding `{"type": "bundle", …}`), from files
//! in the selection directory or pulled over TAXII 2.1 (`taxii`).
//!
//! Each `indicator` whose `pattern` lies in the subset of `pattern` (over
//! `ipv4-addr:value`, `ipv6-addr:value`, `network-traffic:src_ref.value`,
//! `dst_ref.value`, `src_port`, `dst_port` and `protocols[*]`) becomes one
//! rule per alternative, applying from `valid_from` until `valid_until`.
//! Revoked and expired indicators are counted, not loaded; the latest
//! version (`modified`) of an indicator wins. Other patterns are refused
//! with the indicator's id.

pub mod pattern;

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::import::ImportFile;
use crate::classify::PrefixSet;
use crate::config::prefixes::parse_prefix;
use crate::select::rules::endpoints::{port_list, Addr, Expr};
use crate::select::rules::Rule;
use pattern::{Cmp, Lit, Op, PatternIssue};

/// True when a JSON document is a STIX bundle.
pub fn is_bundle(doc: &Value) -> bool {
    doc.get("type").and_then(Value::as_str) == Some("bundle")
}

/// The line of a file on which `needle` first appears (1 if nowhere).
fn line_of(text: &str, needle: &str) -> usize {
    text.find(needle).map_or(1, |at| text[..at].lines().count().max(1))
}

fn time_ns(v: &str) -> Option<u64> {
    let t = OffsetDateTime::parse(v, &Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp_nanos()).ok()
}

/// The latest version of each indicator, by id (others are counted).
fn latest_indicators<'a>(doc: &'a Value, f: &mut ImportFile<'_>) -> Vec<&'a Value> {
    let mut by_id: HashMap<&str, &Value> = HashMap::new();
    let mut order = Vec::new();
    for o in doc.get("objects").and_then(Value::as_array).into_iter().flatten() {
        let typ = o.get("type").and_then(Value::as_str).unwrap_or("?");
        if typ != "indicator" {
            f.count(&format!("not_applicable {typ}"));
            continue;
        }
        let Some(id) = o.get("id").and_then(Value::as_str) else {
            f.error(0, "an indicator without an `id`");
            continue;
        };
        let modified = |x: &Value| x.get("modified").and_then(Value::as_str).and_then(time_ns).unwrap_or(0);
        match by_id.get(id) {
            Some(prev) if modified(prev) >= modified(o) => {}
            Some(_) => {
                by_id.insert(id, o);
            }
            None => {
                by_id.insert(id, o);
                order.push(id);
            }
        }
    }
    order.into_iter().filter_map(|id| by_id.get(id).copied()).collect()
}

/// Rules of a bundle; `now_ns` decides what has expired.
pub fn compile(doc: &Value, text: &str, f: &mut ImportFile<'_>, now_ns: u64) -> Vec<Rule> {
    let mut out = Vec::new();
    for ind in latest_indicators(doc, f) {
        let s = |k: &str| ind.get(k).and_then(Value::as_str);
        let id = s("id").unwrap_or_default();
        let line = line_of(text, id);
        if ind.get("revoked").and_then(Value::as_bool) == Some(true) {
            f.count("revoked");
            continue;
        }
        let what = id.to_string();
        match s("pattern_type") {
            Some("stix") => {}
            Some(other) => {
                f.refuse(
                    line,
                    &what,
                    &format!("pattern_type {other}"),
                    "is not honoured (only stix patterns)",
                );
                continue;
            }
            None => {
                f.error(line, format!("{what}: no `pattern_type`"));
                continue;
            }
        }
        let Some(from) = s("valid_from").and_then(time_ns) else {
            f.error(line, format!("{what}: `valid_from` is missing or not an RFC 3339 time"));
            continue;
        };
        let until = match s("valid_until") {
            None => u64::MAX,
            Some(v) => match time_ns(v) {
                Some(t) if t > from => t,
                Some(_) => {
                    f.error(line, format!("{what}: `valid_until` is not after `valid_from`"));
                    continue;
                }
                None => {
                    f.error(line, format!("{what}: `valid_until` is not an RFC 3339 time"));
                    continue;
                }
            },
        };
        if until <= now_ns {
            f.count("expired");
            continue;
        }
        let Some(p) = s("pattern") else {
            f.error(line, format!("{what}: no `pattern`"));
            continue;
        };
        let dnf = match pattern::parse(p) {
            Ok(d) => d,
            Err(PatternIssue::Syntax(e)) => {
                f.error(line, format!("{what}: pattern: {e}"));
                continue;
            }
            Err(PatternIssue::Refuse(k, why)) => {
                f.refuse(line, &what, &k, why);
                continue;
            }
        };
        let mut rules = Vec::new();
        for (i, conj) in dnf.iter().enumerate() {
            match conjunction(conj) {
                Ok(r) => rules.push(Rule {
                    id: Arc::from(if i == 0 {
                        format!("stix:{id}")
                    } else {
                        format!("stix:{id}/{i}")
                    }),
                    description: s("name").unwrap_or("STIX indicator").to_string(),
                    classes: f.opts.classes,
                    valid_ns: Some((from, until)),
                    ..r
                }),
                Err(Issue::Refuse(k, why)) => {
                    f.refuse(line, &what, &k, why);
                    rules.clear();
                    break;
                }
                Err(Issue::Error(e)) => {
                    f.error(line, format!("{what}: {e}"));
                    rules.clear();
                    break;
                }
            }
        }
        if !rules.is_empty() {
            f.count("loaded");
            out.extend(rules);
        }
    }
    out
}

enum Issue {
    Error(String),
    Refuse(String, &'static str),
}

fn strings(c: &Cmp) -> Result<Vec<&str>, Issue> {
    c.values
        .iter()
        .map(|v| match v {
            Lit::Str(s) => Ok(s.as_str()),
            Lit::Int(_) => Err(Issue::Error(format!("{}:{} takes strings", c.object, c.path))),
        })
        .collect()
}

fn addresses(c: &Cmp) -> Result<Expr<Addr>, Issue> {
    let mut set = PrefixSet::new();
    for v in strings(c)? {
        let net = parse_prefix(v).map_err(Issue::Error)?;
        if c.op == Op::Eq && net.prefix_len() != net.max_prefix_len() {
            return Err(Issue::Error(format!("`{v}` is a prefix: compare it with ISSUBSET")));
        }
        set.insert(net);
    }
    Ok(Expr::Leaf(Addr::Set(set)))
}

fn ports(c: &Cmp) -> Result<Vec<(u16, u16)>, Issue> {
    if c.op == Op::IsSubset {
        return Err(Issue::Refuse(
            format!("{}:{} ISSUBSET", c.object, c.path),
            "is not honoured for ports",
        ));
    }
    c.values
        .iter()
        .map(|v| match v {
            Lit::Int(n) => u16::try_from(*n)
                .map(|p| (p, p))
                .map_err(|_| Issue::Error(format!("port {n} is out of range"))),
            Lit::Str(_) => Err(Issue::Error(format!("{}:{} takes integers", c.object, c.path))),
        })
        .collect()
}

fn protocols(c: &Cmp) -> Result<Vec<u8>, Issue> {
    strings(c)?
        .into_iter()
        .map(|v| match v.to_ascii_lowercase().as_str() {
            "tcp" => Ok(6),
            "udp" => Ok(17),
            "icmp" => Ok(1),
            "ipv6-icmp" | "icmpv6" => Ok(58),
            "sctp" => Ok(132),
            other => Err(Issue::Refuse(
                format!("network-traffic:protocols '{other}'"),
                "is not honoured (tcp, udp, icmp, ipv6-icmp, sctp)",
            )),
        })
        .collect()
}

/// `network-traffic:dst_ref.type = 'ipv4-addr'` holds as a condition only
/// beside a value of that family for the same end (the value implies it).
fn ref_type(c: &Cmp, conj: &[Cmp]) -> Result<(), Issue> {
    let end = c.path.trim_end_matches(".type");
    let value_path = format!("{end}.value");
    let Some(values) = conj.iter().find(|x| x.path == value_path) else {
        return Err(Issue::Refuse(
            format!("network-traffic:{} without {value_path}", c.path),
            "is not honoured (give the address)",
        ));
    };
    let addrs = strings(values)?;
    for t in strings(c)? {
        let v6 = match t {
            "ipv4-addr" => false,
            "ipv6-addr" => true,
            other => {
                return Err(Issue::Refuse(
                    format!("network-traffic:{} '{other}'", c.path),
                    "is not honoured",
                ));
            }
        };
        if c.op == Op::Eq
            && addrs
                .iter()
                .any(|a| parse_prefix(a).is_ok_and(|n| matches!(n, ipnet::IpNet::V6(_)) != v6))
        {
            return Err(Issue::Error(format!("{}: `{t}` contradicts the address given", c.path)));
        }
    }
    Ok(())
}

/// One conjunction of comparisons → one rule's conditions.
fn conjunction(conj: &[Cmp]) -> Result<Rule, Issue> {
    let object = &conj[0].object;
    if conj.iter().any(|c| &c.object != object) {
        return Err(Issue::Refuse(
            "AND across object types".into(),
            "is not honoured (STIX requires one object type per AND)",
        ));
    }
    let mut r = Rule::default();
    let twice = |c: &Cmp| {
        Issue::Refuse(
            format!("{}:{} twice", c.object, c.path),
            "(AND of one property) is not honoured",
        )
    };
    for c in conj {
        match (c.object.as_str(), c.path.as_str()) {
            ("ipv4-addr" | "ipv6-addr", "value") => {
                if r.source.is_some() {
                    return Err(twice(c));
                }
                // The address wherever it appears in a packet.
                r.source = Some(addresses(c)?);
                r.both_directions = true;
            }
            ("network-traffic", "src_ref.value") if r.source.is_none() => r.source = Some(addresses(c)?),
            ("network-traffic", "dst_ref.value") if r.destination.is_none() => r.destination = Some(addresses(c)?),
            ("network-traffic", "src_port") if r.src_ports.is_none() => r.src_ports = Some(port_list(ports(c)?)),
            ("network-traffic", "dst_port") if r.dst_ports.is_none() => r.dst_ports = Some(port_list(ports(c)?)),
            ("network-traffic", p) if p.starts_with("protocols[") && r.protocols.is_none() => {
                r.protocols = Some(protocols(c)?)
            }
            ("network-traffic", "src_ref.type" | "dst_ref.type") => ref_type(c, conj)?,
            ("network-traffic", "src_ref.value" | "dst_ref.value" | "src_port" | "dst_port") => return Err(twice(c)),
            ("network-traffic", p) if p.starts_with("protocols[") => return Err(twice(c)),
            (o, p) => {
                return Err(Issue::Refuse(
                    format!("{o}:{p}"),
                    "is not a property furui can test per packet",
                ))
            }
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests;
