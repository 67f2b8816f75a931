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
}

fn default_api_buffer() -> Spanned<u32> {
    unspanned(100_000)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Api {
    pub listen: SocketAddr,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: PathBuf,
    pub buffer: usize,
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
    Some(Api {
        listen: listen?,
        cert,
        key,
        client_ca,
        buffer: (*a.buffer.get_ref() as usize).max(1),
    })
}
