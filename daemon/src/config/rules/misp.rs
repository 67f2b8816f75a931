//! MISP feeds: the CSV export (`*.csv`, a header naming at least `type`
//! and `value`) and the JSON event format (`*.json` holding `{"Event":…}`
//! or a restSearch `{"response":[{"Event":…}]}`).
//!
//! Attributes are grouped per feed and type into a few rules (a thousand
//! `ip-src` values are one prefix set, one lookup): `ip-src`, `ip-dst`,
//! `ip-src|port` and `ip-dst|port` (one rule per port), `port` (the
//! destination port), `ja3-fingerprint-md5`, `hassh-md5` and
//! `hasshserver-md5`. `to_ids = false` attributes are skipped and
//! counted; types furui cannot test are counted by type.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use ipnet::IpNet;
use serde_json::Value;

use super::import::ImportFile;
use crate::config::prefixes::parse_prefix;
use crate::select::rules::endpoints::{port_list, Addr, Expr};
use crate::select::rules::Rule;

/// One attribute as the feed gives it.
struct Attribute {
    line: usize,
    typ: String,
    value: String,
    to_ids: bool,
}

/// The attributes of one feed, grouped by what they test.
#[derive(Default)]
struct Groups {
    src: Vec<IpNet>,
    dst: Vec<IpNet>,
    src_port: BTreeMap<u16, Vec<IpNet>>,
    dst_port: BTreeMap<u16, Vec<IpNet>>,
    ports: BTreeSet<u16>,
    ja3: HashSet<String>,
    hassh: HashSet<String>,
    hassh_server: HashSet<String>,
}

/// Rules of a CSV feed.
pub fn compile_csv(text: &str, f: &mut ImportFile<'_>) -> Vec<Rule> {
    let records = match csv_records(text) {
        Ok(r) => r,
        Err((line, e)) => {
            f.error(line, e);
            return Vec::new();
        }
    };
    let Some((_, header)) = records.first() else {
        return Vec::new();
    };
    let col = |name: &str| header.iter().position(|h| h.trim() == name);
    let (Some(t), Some(v)) = (col("type"), col("value")) else {
        f.error(1, "the header must name the `type` and `value` columns");
        return Vec::new();
    };
    let ids = col("to_ids");
    let attrs = records[1..]
        .iter()
        .filter(|(_, r)| !(r.len() == 1 && r[0].trim().is_empty()))
        .map(|(line, r)| Attribute {
            line: *line,
            typ: r.get(t).cloned().unwrap_or_default(),
            value: r.get(v).cloned().unwrap_or_default(),
            to_ids: ids
                .and_then(|i| r.get(i))
                .is_none_or(|x| !matches!(x.trim().to_ascii_lowercase().as_str(), "0" | "false")),
        })
        .collect::<Vec<_>>();
    let stem = f
        .path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    rules(&stem, &format!("MISP feed {stem}"), attrs, f)
}

/// True when a JSON document is a MISP event (or a list of them).
pub fn is_misp(doc: &Value) -> bool {
    doc.get("Event").is_some() || doc.get("response").is_some_and(Value::is_array)
}

/// Rules of a MISP JSON event document.
pub fn compile_json(doc: &Value, f: &mut ImportFile<'_>) -> Vec<Rule> {
    let events: Vec<&Value> = match doc.get("response").and_then(Value::as_array) {
        Some(list) => list.iter().filter_map(|e| e.get("Event")).collect(),
        None => doc.get("Event").into_iter().collect(),
    };
    let mut out = Vec::new();
    for ev in events {
        let Some(uuid) = ev.get("uuid").and_then(Value::as_str) else {
            f.error(0, "a MISP event without its `uuid`");
            continue;
        };
        let info = ev.get("info").and_then(Value::as_str).unwrap_or("");
        let mut attrs = Vec::new();
        let objects = ev.get("Object").and_then(Value::as_array).into_iter().flatten();
        let lists = std::iter::once(ev).chain(objects);
        for holder in lists {
            for a in holder.get("Attribute").and_then(Value::as_array).into_iter().flatten() {
                let s = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                attrs.push(Attribute {
                    line: 0,
                    typ: s("type"),
                    value: s("value"),
                    to_ids: match a.get("to_ids") {
                        Some(Value::Bool(b)) => *b,
                        Some(Value::String(x)) => !matches!(x.as_str(), "0" | "false" | "False"),
                        Some(Value::Number(n)) => n.as_u64() != Some(0),
                        _ => true,
                    },
                });
            }
        }
        out.extend(rules(uuid, &format!("MISP event {uuid}: {info}"), attrs, f));
    }
    out
}

/// Groups the attributes and makes one rule per group.
fn rules(name: &str, description: &str, attrs: Vec<Attribute>, f: &mut ImportFile<'_>) -> Vec<Rule> {
    let mut g = Groups::default();
    for a in attrs {
        if !a.to_ids {
            f.count("skipped to_ids=false");
            continue;
        }
        let value = a.value.trim();
        let net = |v: &str, f: &mut ImportFile<'_>| match parse_prefix(v) {
            Ok(n) => Some(n),
            Err(e) => {
                f.error(a.line, format!("{} attribute: {e}", a.typ));
                None
            }
        };
        let with_port = |f: &mut ImportFile<'_>| -> Option<(IpNet, u16)> {
            let Some((ip, port)) = value.rsplit_once('|') else {
                f.error(a.line, format!("{} attribute `{value}` is not ADDRESS|PORT", a.typ));
                return None;
            };
            let Ok(port) = port.trim().parse::<u16>() else {
                f.error(a.line, format!("{} attribute `{value}`: `{port}` is not a port", a.typ));
                return None;
            };
            Some((net(ip, f)?, port))
        };
        let ok = match a.typ.as_str() {
            "ip-src" => net(value, f).map(|n| g.src.push(n)).is_some(),
            "ip-dst" => net(value, f).map(|n| g.dst.push(n)).is_some(),
            "ip-src|port" => with_port(f)
                .map(|(n, p)| g.src_port.entry(p).or_default().push(n))
                .is_some(),
            "ip-dst|port" => with_port(f)
                .map(|(n, p)| g.dst_port.entry(p).or_default().push(n))
                .is_some(),
            "port" => match value.parse::<u16>() {
                Ok(p) => {
                    g.ports.insert(p);
                    true
                }
                Err(_) => {
                    f.error(a.line, format!("port attribute `{value}` is not a port"));
                    false
                }
            },
            t @ ("ja3-fingerprint-md5" | "hassh-md5" | "hasshserver-md5") => {
                let v = value.to_ascii_lowercase();
                if v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
                    match t {
                        "ja3-fingerprint-md5" => g.ja3.insert(v),
                        "hassh-md5" => g.hassh.insert(v),
                        _ => g.hassh_server.insert(v),
                    }
                } else {
                    f.error(a.line, format!("{t} `{value}` is not 32 hex digits"));
                    false
                }
            }
            other => {
                f.count(&format!("not_applicable {other}"));
                false
            }
        };
        if ok {
            f.count("loaded");
        }
    }
    let classes = f.opts.classes;
    let rule = |suffix: String, what: &str| Rule {
        id: Arc::from(format!("misp:{name}:{suffix}")),
        description: format!("{description} ({what})"),
        classes,
        ..Rule::default()
    };
    let set = |nets: Vec<IpNet>| Some(Expr::Leaf(Addr::Set(nets.into_iter().collect())));
    let mut out = Vec::new();
    if !g.src.is_empty() {
        out.push(Rule {
            source: set(g.src),
            ..rule("ip-src".into(), "ip-src")
        });
    }
    if !g.dst.is_empty() {
        out.push(Rule {
            destination: set(g.dst),
            ..rule("ip-dst".into(), "ip-dst")
        });
    }
    for (p, nets) in g.src_port {
        out.push(Rule {
            source: set(nets),
            src_ports: Some(port_list(vec![(p, p)])),
            ..rule(format!("ip-src|port:{p}"), "ip-src|port")
        });
    }
    for (p, nets) in g.dst_port {
        out.push(Rule {
            destination: set(nets),
            dst_ports: Some(port_list(vec![(p, p)])),
            ..rule(format!("ip-dst|port:{p}"), "ip-dst|port")
        });
    }
    if !g.ports.is_empty() {
        out.push(Rule {
            dst_ports: Some(port_list(g.ports.iter().map(|p| (*p, *p)).collect())),
            ..rule("port".into(), "port")
        });
    }
    if !g.ja3.is_empty() {
        out.push(Rule {
            ja3: Some(g.ja3),
            ..rule("ja3".into(), "ja3-fingerprint-md5")
        });
    }
    if !g.hassh.is_empty() {
        out.push(Rule {
            hassh: Some(g.hassh),
            ..rule("hassh".into(), "hassh-md5")
        });
    }
    if !g.hassh_server.is_empty() {
        out.push(Rule {
            hassh_server: Some(g.hassh_server),
            ..rule("hassh-server".into(), "hasshserver-md5")
        });
    }
    out
}

/// RFC 4180 records with the line each starts on (quoted fields may hold
/// commas, doubled quotes and newlines).
/// CSV records with the line each starts on.
type Records = Vec<(usize, Vec<String>)>;

fn csv_records(text: &str) -> Result<Records, (usize, String)> {
    let mut out = Vec::new();
    let (mut line, mut start_line) = (1usize, 1usize);
    let mut field = String::new();
    let mut record = Vec::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                out.push((start_line, std::mem::take(&mut record)));
                line += 1;
                start_line = line;
            }
            (_, c) => {
                if c == '\n' {
                    line += 1;
                }
                field.push(c);
            }
        }
    }
    if quoted {
        return Err((start_line, "a quoted field is not closed".into()));
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        out.push((start_line, record));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
