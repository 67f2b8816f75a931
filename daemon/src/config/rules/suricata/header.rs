//! A Suricata rule's header: `action proto src sport dir dst dport`, with
//! address and port lists, negation, ranges and variables.

use ipnet::IpNet;

use crate::classify::PrefixSet;
use crate::config::prefixes::parse_prefix;
use crate::config::rules::import::ImportOptions;
use crate::select::rules::endpoints::{Addr, AddrExpr, Expr, PortExpr};
use crate::select::rules::Action;

/// Variables nest at most this deep (`$A` → `[$B,…]` → …).
const MAX_VAR_DEPTH: usize = 8;

/// Why a header cannot be used: a mistake, or a construct to refuse.
#[derive(Debug, PartialEq)]
pub enum HeaderIssue {
    Error(String),
    /// (keyword, reason)
    Refuse(String, String),
}

pub struct Header {
    pub action: Action,
    /// None: any IP protocol.
    pub protocols: Option<Vec<u8>>,
    pub src: Option<AddrExpr>,
    pub src_ports: Option<PortExpr>,
    pub both_directions: bool,
    pub dst: Option<AddrExpr>,
    pub dst_ports: Option<PortExpr>,
}

/// Splits on whitespace outside brackets.
fn tokens(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, None);
    for (i, ch) in s.char_indices() {
        match ch {
            '[' => depth += 1,
            ']' => depth -= 1,
            _ => {}
        }
        if ch.is_whitespace() && depth <= 0 {
            if let Some(st) = start.take() {
                out.push(&s[st..i]);
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(st) = start {
        out.push(&s[st..]);
    }
    out
}

pub fn parse(text: &str, opts: &ImportOptions) -> Result<Header, HeaderIssue> {
    let t = tokens(text);
    let [action, proto, src, sp, dir, dst, dp] = t[..] else {
        return Err(HeaderIssue::Error(format!(
            "a rule header has 7 fields (action proto src_addr src_port direction dst_addr dst_port); this one has {}",
            t.len()
        )));
    };
    let action = match action {
        "alert" => Action::Alert,
        "pass" => Action::Pass,
        "drop" | "reject" | "rejectsrc" | "rejectdst" | "rejectboth" => {
            return Err(refuse(
                format!("action {action}"),
                "is an inline (IPS) action; furui is a passive tap and cannot drop or reject",
            ))
        }
        other => {
            return Err(refuse(
                format!("action {other}"),
                "is not a rule action furui honours (alert, pass)",
            ))
        }
    };
    let protocols = match proto.to_ascii_lowercase().as_str() {
        "ip" => None,
        "tcp" => Some(vec![6]),
        "udp" => Some(vec![17]),
        "icmp" => Some(vec![1, 58]),
        other => {
            return Err(refuse(
                format!("protocol {other}"),
                "is an application-layer or stream protocol; furui decides on ip, tcp, udp and icmp headers",
            ))
        }
    };
    let both_directions = match dir {
        "->" => false,
        "<>" => true,
        other => return Err(HeaderIssue::Error(format!("direction `{other}` must be `->` or `<>`"))),
    };
    Ok(Header {
        action,
        protocols,
        src: address(src, opts)?,
        src_ports: port(sp, opts, 0)?,
        both_directions,
        dst: address(dst, opts)?,
        dst_ports: port(dp, opts, 0)?,
    })
}

fn refuse(keyword: String, why: &str) -> HeaderIssue {
    HeaderIssue::Refuse(keyword, why.to_string())
}

/// Splits a bracketed list's inside on top-level commas.
fn list_items(inner: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, ch) in inner.char_indices() {
        match ch {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                out.push(inner[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(inner[start..].trim());
    out
}

/// A parsed term: None for `any`.
type Term<L> = Result<Option<Expr<L>>, HeaderIssue>;

/// A generic address/port term: `any`, `!x`, `[a,b]`, `$VAR`, or a leaf.
fn term<L>(
    s: &str,
    depth: usize,
    what: &str,
    vars: &dyn Fn(&str) -> Option<Term<L>>,
    leaf: &dyn Fn(&str) -> Result<Expr<L>, HeaderIssue>,
) -> Result<Option<Expr<L>>, HeaderIssue> {
    let s = s.trim();
    if depth > MAX_VAR_DEPTH {
        return Err(HeaderIssue::Error(format!(
            "{what} `{s}` nests variables or lists deeper than {MAX_VAR_DEPTH}"
        )));
    }
    let again = |x: &str| term(x, depth + 1, what, vars, leaf);
    if s.is_empty() {
        return Err(HeaderIssue::Error(format!("an empty {what} in a list")));
    }
    if s.eq_ignore_ascii_case("any") {
        return Ok(None);
    }
    if let Some(rest) = s.strip_prefix('!') {
        return match again(rest)? {
            Some(e) => Ok(Some(Expr::Not(Box::new(e)))),
            None => Err(HeaderIssue::Error(format!(
                "{what} `{s}` negates `any`: it can match nothing"
            ))),
        };
    }
    if let Some(inner) = s.strip_prefix('[') {
        let Some(inner) = inner.strip_suffix(']') else {
            return Err(HeaderIssue::Error(format!("{what} list `{s}` has no closing `]`")));
        };
        let mut items = Vec::new();
        for item in list_items(inner) {
            match again(item)? {
                Some(e) => items.push(e),
                // `any` among positives makes the whole list any.
                None => return Ok(None),
            }
        }
        return Ok(Some(Expr::List(items)));
    }
    if let Some(name) = s.strip_prefix('$') {
        return match vars(name) {
            Some(r) => r,
            None => Err(HeaderIssue::Refuse(
                format!("variable ${name}"),
                "is not defined (add it under [selection.address_vars] or [selection.port_vars])".into(),
            )),
        };
    }
    leaf(s).map(Some)
}

/// An address leaf before the prefixes of each list are merged into one
/// set.
#[derive(Debug, Clone)]
enum Leaf {
    Net(IpNet),
    Home,
    External,
}

/// Parses an address field (`any` gives None).
pub fn address(s: &str, opts: &ImportOptions) -> Result<Option<AddrExpr>, HeaderIssue> {
    Ok(address_leaves(s, opts, 0)?.map(lower))
}

fn address_leaves(s: &str, opts: &ImportOptions, depth: usize) -> Result<Option<Expr<Leaf>>, HeaderIssue> {
    let vars = |name: &str| match name {
        "HOME_NET" => Some(Ok(Some(Expr::Leaf(Leaf::Home)))),
        "EXTERNAL_NET" => Some(Ok(Some(Expr::Leaf(Leaf::External)))),
        other => opts.address_vars.get(other).map(|v| address_leaves(v, opts, depth + 1)),
    };
    let leaf = |s: &str| {
        parse_prefix(s)
            .map(|n| Expr::Leaf(Leaf::Net(n)))
            .map_err(HeaderIssue::Error)
    };
    term(s, depth, "address", &vars, &leaf)
}

/// The matcher's form: the plain prefixes of a list become one set, so a
/// list of a thousand addresses is one lookup.
fn lower(e: Expr<Leaf>) -> AddrExpr {
    let one = |n: IpNet| {
        let mut set = PrefixSet::new();
        set.insert(n);
        Addr::Set(set)
    };
    match e {
        Expr::Leaf(Leaf::Net(n)) => Expr::Leaf(one(n)),
        Expr::Leaf(Leaf::Home) => Expr::Leaf(Addr::Home),
        Expr::Leaf(Leaf::External) => Expr::Leaf(Addr::External),
        Expr::Not(inner) => Expr::Not(Box::new(lower(*inner))),
        Expr::List(items) => {
            let mut nets = Vec::new();
            let mut out = Vec::new();
            for item in items {
                match item {
                    Expr::Leaf(Leaf::Net(n)) => nets.push(n),
                    other => out.push(lower(other)),
                }
            }
            if !nets.is_empty() {
                out.push(Expr::Leaf(Addr::Set(nets.into_iter().collect())));
            }
            Expr::List(out)
        }
    }
}

pub fn port(s: &str, opts: &ImportOptions, depth: usize) -> Result<Option<PortExpr>, HeaderIssue> {
    let vars = |name: &str| opts.port_vars.get(name).map(|v| port(v, opts, depth + 1));
    let leaf = |s: &str| -> Result<PortExpr, HeaderIssue> {
        let bad = || HeaderIssue::Error(format!("port `{s}` is not a port, `lo:hi`, `lo:` or `:hi` (0-65535)"));
        let num = |x: &str, dflt: u16| -> Result<u16, HeaderIssue> {
            if x.trim().is_empty() {
                Ok(dflt)
            } else {
                x.trim().parse().map_err(|_| bad())
            }
        };
        let (lo, hi) = match s.split_once(':') {
            Some((a, b)) => (num(a, 0)?, num(b, u16::MAX)?),
            None => {
                let p = num(s, 0)?;
                (p, p)
            }
        };
        if lo > hi {
            return Err(bad());
        }
        Ok(Expr::Leaf((lo, hi)))
    };
    term(s, depth, "port", &vars, &leaf)
}
