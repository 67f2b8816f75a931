//! `[api]`: the mutual-TLS HTTPS API where recipients with an `api` sink
//! read their records. There is no plain-HTTP listener.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::errors::Collector;
use super::prefixes;
use super::read::unspanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    pub listen: Spanned<String>,
    /// PEM server certificate chain and private key.
    pub cert: Spanned<String>,
    pub key: Spanned<String>,
    /// PEM CA certificate(s) that sign client certificates.
    pub client_ca: Spanned<String>,
    /// Views kept per recipient for reading (the oldest go first).
    #[serde(default = "default_api_buffer")]
    pub buffer: Spanned<u32>,
    /// Seconds a client has for its TLS handshake, and then for each
    /// request's headers (hyper's header-read timeout).
    #[serde(default = "default_header_timeout")]
    pub header_timeout_secs: Spanned<u32>,
    /// Seconds a connection may go without a byte read or written.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_secs: Spanned<u32>,
    /// Connections open at once, in all and from one address.
    #[serde(default = "default_max_connections")]
    pub max_connections: Spanned<u32>,
    #[serde(default = "default_max_per_address")]
    pub max_connections_per_address: Spanned<u32>,
    /// Requests per second per client (one bucket per recipient, one for
    /// all certificates of no recipient), and the burst above that rate.
    #[serde(default = "default_rate")]
    pub rate_per_second: Spanned<u32>,
    #[serde(default = "default_burst")]
    pub burst: Spanned<u32>,
}

fn default_api_buffer() -> Spanned<u32> {
    unspanned(100_000)
}
fn default_header_timeout() -> Spanned<u32> {
    unspanned(10)
}
fn default_idle_timeout() -> Spanned<u32> {
    unspanned(60)
}
fn default_max_connections() -> Spanned<u32> {
    unspanned(256)
}
fn default_max_per_address() -> Spanned<u32> {
    unspanned(16)
}
fn default_rate() -> Spanned<u32> {
    unspanned(10)
}
fn default_burst() -> Spanned<u32> {
    unspanned(50)
}

/// What the API allows one client and all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub header_timeout: std::time::Duration,
    pub idle_timeout: std::time::Duration,
    pub max_connections: usize,
    pub max_per_address: usize,
    pub rate_per_second: u32,
    pub burst: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Api {
    pub listen: SocketAddr,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: PathBuf,
    pub buffer: usize,
    pub limits: Limits,
}

pub(super) fn validate(a: ApiSection, base: &Path, c: &mut Collector<'_>) -> Option<Api> {
    let listen = match a.listen.get_ref().parse::<SocketAddr>() {
        Ok(l) => Some(l),
        Err(_) => {
            c.at(
                a.listen.span(),
                format!("[api] listen `{}` is not ADDR:PORT", a.listen.get_ref()),
            );
            None
        }
    };
    let mut file = |v: &Spanned<String>, what: &str| {
        let p = prefixes::resolve(base, v.get_ref());
        if !p.is_file() {
            c.at(
                v.span(),
                format!("[api] {what} `{}` is not a readable file", p.display()),
            );
        }
        p
    };
    let (cert, key, client_ca) = (
        file(&a.cert, "cert"),
        file(&a.key, "key"),
        file(&a.client_ca, "client_ca"),
    );
    let mut positive = |v: &Spanned<u32>, what: &str| {
        let n = *v.get_ref();
        if n == 0 {
            c.at(v.span(), format!("[api] {what} must be at least 1"));
        }
        n.max(1)
    };
    let limits = Limits {
        header_timeout: std::time::Duration::from_secs(positive(&a.header_timeout_secs, "header_timeout_secs").into()),
        idle_timeout: std::time::Duration::from_secs(positive(&a.idle_timeout_secs, "idle_timeout_secs").into()),
        max_connections: positive(&a.max_connections, "max_connections") as usize,
        max_per_address: positive(&a.max_connections_per_address, "max_connections_per_address") as usize,
        rate_per_second: positive(&a.rate_per_second, "rate_per_second"),
        burst: positive(&a.burst, "burst"),
    };
    if limits.max_per_address > limits.max_connections {
        c.at(
            a.max_connections_per_address.span(),
            format!(
                "[api] max_connections_per_address ({}) is more than max_connections ({})",
                limits.max_per_address, limits.max_connections
            ),
        );
    }
    Some(Api {
        listen: listen?,
        cert,
        key,
        client_ca,
        buffer: (*a.buffer.get_ref() as usize).max(1),
        limits,
    })
}
