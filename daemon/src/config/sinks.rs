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
    /// NATS: every server of a cluster (instead of `address`); furui
    /// connects to any and moves to another when it fails.
    #[serde(default)]
    pub servers: Option<Spanned<Vec<Spanned<String>>>>,
    /// NATS: copies of the stream the cluster keeps (1-5; default 1). A
    /// view counts as sent once the stream's leader has it stored on a
    /// majority of them.
    #[serde(default)]
    pub replicas: Option<Spanned<i64>>,
    /// NATS: publishes awaiting their acknowledgement at once (1-65536;
    /// default 256).
    #[serde(default)]
    pub ack_window: Option<Spanned<i64>>,
    /// NATS: how long the stream remembers message ids to drop a resend
    /// (seconds, 1-86400; default 120).
    #[serde(default)]
    pub dedup_window_secs: Option<Spanned<i64>>,
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
    /// NATS credentials, one way at most: `user` with `password_file`, a
    /// `creds_file` (JWT and NKey seed), or an `nkey_seed_file`. Secrets
    /// live in files only readable by the daemon's user.
    #[serde(default)]
    pub user: Option<Spanned<String>>,
    #[serde(default)]
    pub password_file: Option<Spanned<String>>,
    #[serde(default)]
    pub creds_file: Option<Spanned<String>>,
    #[serde(default)]
    pub nkey_seed_file: Option<Spanned<String>>,
}

/// NATS over TLS: the CA the server's certificate must chain to (its name
/// is the address's host), and furui's own certificate if the server asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsTls {
    pub server_ca: PathBuf,
    pub client: Option<(PathBuf, PathBuf)>,
}

/// A NATS JetStream sink: the servers (one, or every node of a cluster),
/// the recipient's stream and subject, how the stream is replicated and
/// de-duplicated, and how furui connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsSink {
    pub servers: Vec<String>,
    pub stream: String,
    pub subject: String,
    pub replicas: usize,
    pub ack_window: usize,
    pub dedup_window: std::time::Duration,
    pub tls: Option<NatsTls>,
    pub auth: NatsAuth,
}

pub const DEFAULT_ACK_WINDOW: usize = 256;
pub const DEFAULT_DEDUP_WINDOW_SECS: i64 = 120;

/// How furui proves who it is to a NATS server (files, never the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NatsAuth {
    None,
    Password { user: String, password_file: PathBuf },
    Creds(PathBuf),
    NkeySeed(PathBuf),
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
    Nats(NatsSink),
    /// Views kept for the HTTPS API (`[api]`).
    Api,
}

impl SinkKind {
    pub fn name(&self) -> &'static str {
        match self {
            SinkKind::IpfixUdp { .. } => "ipfix-udp",
            SinkKind::IpfixTcp { .. } => "ipfix-tcp",
            SinkKind::IpfixTls { .. } => "ipfix-tls",
            SinkKind::Nats(_) => "nats",
            SinkKind::Api => "api",
        }
    }
}

/// NATS streams and subjects already claimed, by server address, with
/// the recipient that claimed them: each recipient has its own.
pub(super) type NatsClaims = std::cell::RefCell<std::collections::BTreeMap<(String, String), String>>;

/// One sink of recipient `recipient`; None if it is not usable (each
/// reason reported).
pub(super) fn validate(
    s: &SinkSection,
    recipient: &str,
    api_configured: bool,
    claims: &NatsClaims,
    base: &Path,
    c: &mut Collector<'_>,
) -> Option<SinkKind> {
    let kind = s.kind.get_ref().as_str();
    if kind == "api" {
        return Some(api(s, api_configured, c));
    }
    if kind != "nats" {
        if let Some(v) = s.servers.as_ref() {
            c.at(
                v.span(),
                format!("`servers` is for NATS sinks; a `{kind}` sink has one `address`"),
            );
        }
        for v in [&s.replicas, &s.ack_window, &s.dedup_window_secs].into_iter().flatten() {
            c.at(
                v.span(),
                format!("`replicas`, `ack_window` and `dedup_window_secs` are for NATS sinks, not `{kind}`"),
            );
        }
    }
    if kind == "nats" {
        let servers = nats_servers(s, c)?;
        return Some(nats(s, servers, recipient, claims, base, c));
    }
    let Some(address) = &s.address else {
        c.at(s.kind.span(), format!("a `{kind}` sink needs an `address`"));
        return None;
    };
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

/// A NATS sink's servers: `address` (one) or `servers` (a cluster's).
fn nats_servers(s: &SinkSection, c: &mut Collector<'_>) -> Option<Vec<Spanned<String>>> {
    let servers = match (&s.address, &s.servers) {
        (Some(a), None) => vec![a.clone()],
        (None, Some(list)) if !list.get_ref().is_empty() => list.get_ref().clone(),
        (None, Some(list)) => {
            c.at(list.span(), "`servers` lists no server");
            return None;
        }
        (None, None) => {
            c.at(s.kind.span(), "a `nats` sink needs an `address` or a list of `servers`");
            return None;
        }
        (Some(a), Some(_)) => {
            c.at(a.span(), "a `nats` sink takes `address` or `servers`, not both");
            return None;
        }
    };
    let mut ok = true;
    for v in &servers {
        if v.get_ref().parse::<async_nats::ServerAddr>().is_err() {
            c.at(
                v.span(),
                format!(
                    "`{}` is not a NATS server address (host:port or nats://host:port)",
                    v.get_ref()
                ),
            );
            ok = false;
        }
    }
    ok.then_some(servers)
}

/// `v` as an integer within `range`, or `default` if absent.
fn bounded(
    v: &Option<Spanned<i64>>,
    what: &str,
    range: std::ops::RangeInclusive<i64>,
    default: i64,
    c: &mut Collector<'_>,
) -> i64 {
    match v {
        None => default,
        Some(x) if range.contains(x.get_ref()) => *x.get_ref(),
        Some(x) => {
            c.at(
                x.span(),
                format!("{what} must be between {} and {}", range.start(), range.end()),
            );
            default
        }
    }
}

fn nats(
    s: &SinkSection,
    servers: Vec<Spanned<String>>,
    recipient: &str,
    claims: &NatsClaims,
    base: &Path,
    c: &mut Collector<'_>,
) -> SinkKind {
    let subject = s
        .subject
        .as_ref()
        .map_or(format!("furui.records.{recipient}"), |x| x.get_ref().clone());
    let stream = s
        .stream
        .as_ref()
        .map_or(format!("FURUI-{recipient}"), |x| x.get_ref().clone());
    let servers: Vec<String> = servers.into_iter().map(Spanned::into_inner).collect();
    let address = servers.join(",");
    let address = address.as_str();
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
    // One stream and one subject per recipient, so that the server's
    // permissions can give each reader its own and nothing else.
    for (what, value, span) in [
        ("stream", &stream, s.stream.as_ref().map_or(s.kind.span(), |x| x.span())),
        (
            "subject",
            &subject,
            s.subject.as_ref().map_or(s.kind.span(), |x| x.span()),
        ),
    ] {
        let key = (address.to_string(), format!("{what}:{value}"));
        let mut claimed = claims.borrow_mut();
        match claimed.get(&key) {
            Some(other) if other != recipient => c.at(
                span,
                format!("NATS {what} `{value}` on {address} is already recipient `{other}`'s: each recipient needs its own (its readers are given permissions on it alone)"),
            ),
            _ => {
                claimed.insert(key, recipient.to_string());
            }
        }
    }
    let tls = s.server_ca.as_ref().map(|ca| NatsTls {
        server_ca: readable(ca, "server_ca", base, c),
        client: match (&s.client_cert, &s.client_key) {
            (Some(cert), Some(key)) => Some((
                readable(cert, "client_cert", base, c),
                secret(key, "client_key", base, c),
            )),
            (None, None) => None,
            (Some(v), None) | (None, Some(v)) => {
                c.at(v.span(), "a NATS sink's client_cert and client_key go together");
                None
            }
        },
    });
    if s.server_ca.is_none() {
        if let Some(v) = s.client_cert.as_ref().or(s.client_key.as_ref()) {
            c.at(
                v.span(),
                "client_cert/client_key need TLS: set server_ca, the CA that signs the NATS server's certificate",
            );
        }
    }
    let auth = match (&s.user, &s.password_file, &s.creds_file, &s.nkey_seed_file) {
        (None, None, None, None) => NatsAuth::None,
        (Some(user), Some(pw), None, None) => NatsAuth::Password {
            user: user.get_ref().clone(),
            password_file: secret(pw, "password_file", base, c),
        },
        (None, None, Some(creds), None) => NatsAuth::Creds(secret(creds, "creds_file", base, c)),
        (None, None, None, Some(seed)) => NatsAuth::NkeySeed(secret(seed, "nkey_seed_file", base, c)),
        (Some(v), None, None, None) | (None, Some(v), None, None) => {
            c.at(v.span(), "NATS `user` and `password_file` go together");
            NatsAuth::None
        }
        _ => {
            c.at(
                s.kind.span(),
                "a NATS sink takes one way to authenticate: user and password_file, creds_file, or nkey_seed_file",
            );
            NatsAuth::None
        }
    };
    if auth != NatsAuth::None && tls.is_none() {
        c.at(
            s.kind.span(),
            "NATS credentials without TLS would cross the network in clear: set server_ca (the CA that signs the server's certificate)",
        );
    }
    let replicas = bounded(&s.replicas, "replicas", 1..=5, 1, c) as usize;
    let ack_window = bounded(&s.ack_window, "ack_window", 1..=65536, DEFAULT_ACK_WINDOW as i64, c) as usize;
    let dedup = bounded(
        &s.dedup_window_secs,
        "dedup_window_secs",
        1..=86400,
        DEFAULT_DEDUP_WINDOW_SECS,
        c,
    );
    SinkKind::Nats(NatsSink {
        servers,
        stream,
        subject,
        replicas,
        ack_window,
        dedup_window: std::time::Duration::from_secs(dedup as u64),
        tls,
        auth,
    })
}

/// A file furui reads (a certificate or CA): it must exist.
pub(super) fn readable(v: &Spanned<String>, what: &str, base: &Path, c: &mut Collector<'_>) -> PathBuf {
    let p = prefixes::resolve(base, v.get_ref());
    if !p.is_file() {
        c.at(v.span(), format!("{what} `{}` is not a readable file", p.display()));
    }
    p
}

/// A secret's file (a private key, password or seed): it must exist and
/// be readable by its owner alone.
pub(super) fn secret(v: &Spanned<String>, what: &str, base: &Path, c: &mut Collector<'_>) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = readable(v, what, base, c);
    if let Ok(m) = std::fs::metadata(&p) {
        let mode = m.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            c.at(
                v.span(),
                format!(
                    "{what} `{}` can be read by others (mode {mode:04o}): chmod 600 it",
                    p.display()
                ),
            );
        }
    }
    p
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
