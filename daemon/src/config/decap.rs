//! `[decap]`: which encapsulations the XDP walk opens before it classifies,
//! and where it recognizes them. Without the section every encapsulation
//! furui knows is opened on its standard port: opening is the safe
//! default, because the jurisdiction cut is then made on the inner header.
//!
//! Invariant kept: no setting here can make the appliance classify a
//! tunnelled frame on its outer header unless the operator names that
//! encapsulation in `outer` (and `check-config` warns what that means); an
//! encapsulation that is neither opened nor `outer` is never captured.

use std::collections::HashSet;

use serde::Deserialize;
use toml::Spanned;

use super::errors::{Collector, ConfigError};
use crate::classify::walk::{DecapConfig, Encap, MplsPw, ENCAP_MAX_LAYERS, MPLS_MAX_LABELS};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecapSection {
    /// Encapsulations to open (default: all of them).
    #[serde(default)]
    pub open: Option<Spanned<Vec<Spanned<String>>>>,
    /// Encapsulations classified on their OUTER header (never opened).
    #[serde(default)]
    pub outer: Vec<Spanned<String>>,
    #[serde(default)]
    pub vxlan_port: Option<Spanned<u16>>,
    #[serde(default)]
    pub geneve_port: Option<Spanned<u16>>,
    #[serde(default)]
    pub gtpu_port: Option<Spanned<u16>>,
    #[serde(default)]
    pub mpls_udp_port: Option<Spanned<u16>>,
    #[serde(default)]
    pub max_layers: Option<Spanned<u8>>,
    #[serde(default)]
    pub mpls_max_labels: Option<Spanned<u8>>,
    /// What follows an MPLS bottom-of-stack label: "none" (IP by its first
    /// nibble), "ethernet" (a pseudowire without control word) or
    /// "ethernet_cw" (RFC 4385 control word, then Ethernet).
    #[serde(default)]
    pub mpls_pw: Option<Spanned<String>>,
}

fn names() -> String {
    Encap::ALL.iter().map(|e| e.name()).collect::<Vec<_>>().join(", ")
}

fn encap_list(list: &[Spanned<String>], what: &str, c: &mut Collector<'_>) -> Vec<(Encap, Spanned<String>)> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for n in list {
        match Encap::from_name(n.get_ref()) {
            Some(e) => {
                if !seen.insert(e) {
                    c.at(n.span(), format!("`{}` is listed twice in {what}", n.get_ref()));
                }
                out.push((e, n.clone()));
            }
            None => c.at(
                n.span(),
                format!(
                    "unknown encapsulation `{}` in {what}; expected one of: {}",
                    n.get_ref(),
                    names()
                ),
            ),
        }
    }
    out
}

/// Validates the section; `warnings` receives what is allowed but weakens
/// the cut (outer classification).
pub fn validate(
    s: Option<DecapSection>,
    c: &mut Collector<'_>,
    warnings: &mut Vec<ConfigError>,
) -> Option<DecapConfig> {
    let before = c.errors.len();
    let s = s.unwrap_or_default();
    let mut d = DecapConfig::default();
    open_and_outer(&s, &mut d, c, warnings);
    ports(&s, &mut d, c);
    limits(&s, &mut d, c);
    (c.errors.len() == before).then_some(d)
}

/// Which encapsulations are opened, and which are classified on their
/// outer header (each of those a warning).
fn open_and_outer(s: &DecapSection, d: &mut DecapConfig, c: &mut Collector<'_>, warnings: &mut Vec<ConfigError>) {
    if let Some(open) = &s.open {
        d.open = 0;
        for (e, _) in encap_list(open.get_ref(), "`open`", c) {
            d.set_open(e, true);
        }
    }
    for (e, n) in encap_list(&s.outer, "`outer`", c) {
        if d.is_open(e) {
            c.at(
                n.span(),
                format!(
                    "`{}` is both opened and in `outer`: an opened encapsulation is always classified on its inner header; remove it from `open` to classify on the outer one",
                    e.name()
                ),
            );
            continue;
        }
        d.set_outer(e, true);
        let (line, column) = c.line_col(n.span());
        warnings.push(ConfigError {
            file: c.file().to_path_buf(),
            line,
            column,
            message: format!(
                "{} frames are classified on their OUTER header: a domestic tunnel endpoint drops the whole tunnel, a foreign one captures everything inside it, domestic inner traffic included; open it instead unless the tunnel's contents are known to share its endpoints' jurisdiction",
                e.name()
            ),
        });
    }
}

/// The UDP ports tunnels are recognized on: each port one encapsulation.
fn ports(s: &DecapSection, d: &mut DecapConfig, c: &mut Collector<'_>) {
    let mut ports: Vec<(&str, u16)> = Vec::new();
    for (name, v, slot) in [
        ("vxlan_port", &s.vxlan_port, &mut d.vxlan_port),
        ("geneve_port", &s.geneve_port, &mut d.geneve_port),
        ("gtpu_port", &s.gtpu_port, &mut d.gtpu_port),
        ("mpls_udp_port", &s.mpls_udp_port, &mut d.mpls_udp_port),
    ] {
        if let Some(v) = v {
            let p = *v.get_ref();
            if p == 0 {
                c.at(v.span(), format!("{name} must be a UDP port between 1 and 65535"));
            } else if let Some((other, _)) = ports.iter().find(|(_, q)| *q == p) {
                c.at(
                    v.span(),
                    format!("{name} {p} is also {other}: one UDP port can be recognized as one encapsulation only"),
                );
            }
            *slot = p;
        }
        ports.push((name, *slot));
    }
}

/// How deep the walk goes, and what follows an MPLS stack.
fn limits(s: &DecapSection, d: &mut DecapConfig, c: &mut Collector<'_>) {
    if let Some(v) = &s.max_layers {
        let n = *v.get_ref();
        if !(1..=ENCAP_MAX_LAYERS).contains(&n) {
            c.at(
                v.span(),
                format!("max_layers {n} must be between 1 and {ENCAP_MAX_LAYERS} (to open nothing, set `open = []`)"),
            );
        }
        d.max_layers = n;
    }
    if let Some(v) = &s.mpls_max_labels {
        let n = *v.get_ref();
        if !(1..=MPLS_MAX_LABELS).contains(&n) {
            c.at(
                v.span(),
                format!("mpls_max_labels {n} must be between 1 and {MPLS_MAX_LABELS}"),
            );
        }
        d.mpls_max_labels = n;
    }
    if let Some(v) = &s.mpls_pw {
        d.mpls_pw = match v.get_ref().as_str() {
            "none" => MplsPw::None,
            "ethernet" => MplsPw::Ethernet,
            "ethernet_cw" => MplsPw::EthernetControlWord,
            other => {
                c.at(
                    v.span(),
                    format!("mpls_pw `{other}` must be \"none\", \"ethernet\" or \"ethernet_cw\""),
                );
                MplsPw::None
            }
        };
    }
}
