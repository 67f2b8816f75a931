//! `[[recipients.sinks]]`: where a recipient's views go. One validator per
//! sink kind: IPFIX over UDP, TCP or TLS, NATS JetStream, the HTTPS API.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::errors::Collector;
use super::prefixes;
use super::read::unspanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkSection {
    /// `ipfix-udp`, `ipfix-tcp`, `ipfix-tls`, `nats` or `api`.
    pub kind: Spanned<String>,
    /// Collector or server address (not used by `api`).
    #[serde(default)]
    pub address: Option<Spanned<String>>,
    #[serde(default = "default_template_refresh")]
    pub template_refresh_secs: Spanned<u32>,
    /// NATS: the subject (default `furui.records.<recipient>`) and the
    /// JetStream stream (default `FURUI`, created if missing).
    #[serde(default)]
    pub subject: Option<Spanned<String>>,
    #[serde(default)]
    pub stream: Option<Spanned<String>>,
    /// `ipfix-tls`: the CA that signs the collector's certificate, the name
    /// to verify (default: the address's IP), and furui's certificate.
    #[serde(default)]
    pub server_ca: Option<Spanned<String>>,
    #[serde(default)]
    pub server_name: Option<Spanned<String>>,
    #[serde(default)]
    pub client_cert: Option<Spanned<String>>,
    #[serde(default)]
    pub client_key: Option<Spanned<String>>,
}

fn default_template_refresh() -> Spanned<u32> {
    unspanned(60)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkKind {
    IpfixUdp {
        to: SocketAddr,
        template_refresh_secs: u32,
    },
    IpfixTcp {
        to: SocketAddr,
    },
    IpfixTls {
        to: SocketAddr,
        server_ca: PathBuf,
        server_name: String,
        client_cert: PathBuf,
        client_key: PathBuf,
    },
    Nats {
        address: String,
        stream: String,
        subject: String,
    },
    /// Views kept for the HTTPS API (`[api]`).
    Api,
}

impl SinkKind {
    pub fn name(&self) -> &'static str {
        match self {
            SinkKind::IpfixUdp { .. } => "ipfix-udp",
            SinkKind::IpfixTcp { .. } => "ipfix-tcp",
            SinkKind::IpfixTls { .. } => "ipfix-tls",
            SinkKind::Nats { .. } => "nats",
            SinkKind::Api => "api",
        }
    }
}

/// One sink of recipient `recipient`; None if it is not usable (each
/// reason reported).
pub(super) fn validate(
    s: &SinkSection,
    recipient: &str,
    api_configured: bool,
    base: &Path,
    c: &mut Collector<'_>,
) -> Option<SinkKind> {
    let kind = s.kind.get_ref().as_str();
    if kind == "api" {
        return Some(api(s, api_configured, c));
    }
    let Some(address) = &s.address else {
        c.at(s.kind.span(), format!("a `{kind}` sink needs an `address`"));
        return None;
    };
    if kind == "nats" {
        return Some(nats(s, address.get_ref(), recipient, c));
    }
    let to = address.get_ref().parse::<SocketAddr>();
    if to.is_err() {
        c.at(
            address.span(),
            format!("`{}` is not an address:port", address.get_ref()),
        );
    }
    match (kind, to) {
        ("ipfix-udp", Ok(to)) => Some(SinkKind::IpfixUdp {
            to,
            template_refresh_secs: (*s.template_refresh_secs.get_ref()).max(1),
        }),
        ("ipfix-tcp", Ok(to)) => Some(SinkKind::IpfixTcp { to }),
        ("ipfix-tls", Ok(to)) => Some(ipfix_tls(s, to, base, c)),
        ("ipfix-udp" | "ipfix-tcp" | "ipfix-tls", Err(_)) => None,
        (other, _) => {
            c.at(
                s.kind.span(),
                format!("sink kind `{other}` is not supported; expected ipfix-udp, ipfix-tcp, ipfix-tls, nats or api"),
            );
            None
        }
    }
}

fn api(s: &SinkSection, api_configured: bool, c: &mut Collector<'_>) -> SinkKind {
    if !api_configured {
        c.at(
            s.kind.span(),
            "an `api` sink needs the [api] section (listen, cert, key, client_ca)",
        );
    }
    SinkKind::Api
}

fn nats(s: &SinkSection, address: &str, recipient: &str, c: &mut Collector<'_>) -> SinkKind {
    let subject = s
        .subject
        .as_ref()
        .map_or(format!("furui.records.{recipient}"), |x| x.get_ref().clone());
    let stream = s.stream.as_ref().map_or("FURUI".to_string(), |x| x.get_ref().clone());
    let ok_token = |t: &str| !t.is_empty() && !t.contains(|ch: char| ch.is_whitespace() || ch == '*' || ch == '>');
    if !subject.contains('.') || !subject.split('.').all(ok_token) {
        let span = s.subject.as_ref().map_or(s.kind.span(), |x| x.span());
        c.at(
            span,
            format!(
                "NATS subject `{subject}` must be dot-separated tokens without wildcards, e.g. furui.records.soc-a"
            ),
        );
    }
    if !ok_token(&stream) || stream.contains('.') {
        let span = s.stream.as_ref().map_or(s.kind.span(), |x| x.span());
        c.at(
            span,
            format!("JetStream stream name `{stream}` must be one token without '.', '*', '>' or spaces"),
        );
    }
    SinkKind::Nats {
        address: address.to_string(),
        stream,
        subject,
    }
}

fn ipfix_tls(s: &SinkSection, to: SocketAddr, base: &Path, c: &mut Collector<'_>) -> SinkKind {
    let mut file = |v: &Option<Spanned<String>>, what: &str| -> PathBuf {
        match v {
            Some(v) => {
                let p = prefixes::resolve(base, v.get_ref());
                if !p.is_file() {
                    c.at(v.span(), format!("{what} `{}` is not a readable file", p.display()));
                }
                p
            }
            None => {
                c.at(s.kind.span(), format!("an `ipfix-tls` sink needs `{what}`"));
                PathBuf::new()
            }
        }
    };
    let (server_ca, client_cert, client_key) = (
        file(&s.server_ca, "server_ca"),
        file(&s.client_cert, "client_cert"),
        file(&s.client_key, "client_key"),
    );
    let server_name = s
        .server_name
        .as_ref()
        .map_or(to.ip().to_string(), |n| n.get_ref().clone());
    SinkKind::IpfixTls {
        to,
        server_ca,
        server_name,
        client_cert,
        client_key,
    }
}
