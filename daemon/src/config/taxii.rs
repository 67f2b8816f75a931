//! `[[selection.taxii]]`: TAXII 2.1 collections furui pulls STIX
//! indicators from, into a bundle file in the rules directory.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::errors::Collector;
use super::sinks::{readable, secret};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxiiSection {
    /// Names the feed: its bundle is `<rules_dir>/taxii-<name>.json`.
    pub name: Spanned<String>,
    /// The collection's URL, `https://host[:port]/api-root/collections/<id>/`
    /// (`http://` only to a loopback address).
    pub collection_url: Spanned<String>,
    #[serde(default = "default_interval")]
    pub interval_secs: Spanned<u64>,
    /// Basic authentication: a user and a file (mode 0600) with the password.
    #[serde(default)]
    pub user: Option<Spanned<String>>,
    #[serde(default)]
    pub password_file: Option<Spanned<String>>,
    /// HTTPS: the CA that signs the server's certificate, and optionally
    /// the client certificate and key for mutual TLS.
    #[serde(default)]
    pub server_ca: Option<Spanned<String>>,
    #[serde(default)]
    pub client_cert: Option<Spanned<String>>,
    #[serde(default)]
    pub client_key: Option<Spanned<String>>,
    /// Where the bundle and the pull state are kept (default: the rules
    /// directory). Under the packaged unit, /etc is read-only: use a
    /// directory under /var/lib/furui.
    #[serde(default)]
    pub dir: Option<Spanned<String>>,
}

fn default_interval() -> Spanned<u64> {
    Spanned::new(0..0, 300)
}

/// Where a collection is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub https: bool,
    /// Host as written (a name, an IPv4 address or `[v6]`).
    pub host: String,
    pub port: u16,
    /// The path, ending in '/'.
    pub path: String,
}

impl Url {
    /// `scheme://host[:port]/path`.
    pub fn parse(s: &str) -> Result<Url, String> {
        let (https, rest) = if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(format!(
                "`{s}` must start with https:// (or http:// to a loopback address)"
            ));
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !p.contains(']') => (
                h,
                p.parse::<u16>().map_err(|_| format!("`{p}` in `{s}` is not a port"))?,
            ),
            _ => (authority, if https { 443 } else { 80 }),
        };
        if host.is_empty() {
            return Err(format!("`{s}` has no host"));
        }
        let mut path = if path.is_empty() {
            "/".to_string()
        } else {
            path.to_string()
        };
        if !path.ends_with('/') {
            path.push('/');
        }
        Ok(Url {
            https,
            host: host.to_string(),
            port,
            path,
        })
    }

    /// The host without IPv6 brackets, as an address if it is one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.trim_start_matches('[').trim_end_matches(']').parse().ok()
    }
}

/// A validated TAXII feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taxii {
    pub name: String,
    pub url: Url,
    pub interval: Duration,
    pub basic: Option<(String, PathBuf)>,
    pub server_ca: Option<PathBuf>,
    pub client: Option<(PathBuf, PathBuf)>,
    /// The bundle the pulls keep (`<dir>/taxii-<name>.json`, `dir` the
    /// rules directory unless set) and the pull state beside it.
    pub bundle: PathBuf,
    pub state: PathBuf,
}

pub(super) fn validate(
    list: Vec<TaxiiSection>,
    rules_dir: Option<&Path>,
    base: &Path,
    c: &mut Collector<'_>,
) -> Option<Vec<Taxii>> {
    let before = c.errors.len();
    let mut out: Vec<Taxii> = Vec::new();
    for s in list {
        let name = s.name.get_ref().clone();
        c.plain_name(&s.name, "TAXII feed name");
        if out.iter().any(|t| t.name == name) {
            c.at(s.name.span(), format!("TAXII feed `{name}` is defined twice"));
        }
        let Some(dir) = rules_dir else {
            c.at(
                s.name.span(),
                "a TAXII feed needs `[selection] rules_dir` (its bundle is kept there)",
            );
            continue;
        };
        let url = match Url::parse(s.collection_url.get_ref()) {
            Ok(u) => u,
            Err(e) => {
                c.at(s.collection_url.span(), e);
                continue;
            }
        };
        if !url.https && !url.ip().is_some_and(|a| a.is_loopback()) {
            c.at(
                s.collection_url.span(),
                "plain http:// is only allowed to a loopback address: use https:// with server_ca",
            );
        }
        if url.https && s.server_ca.is_none() {
            c.at(s.collection_url.span(), "an https:// collection needs `server_ca`");
        }
        let interval = *s.interval_secs.get_ref();
        if !(10..=86_400).contains(&interval) {
            c.at(s.interval_secs.span(), "interval_secs must be between 10 and 86400");
        }
        let basic = match (&s.user, &s.password_file) {
            (Some(u), Some(p)) => Some((u.get_ref().clone(), secret(p, "password_file", base, c))),
            (None, None) => None,
            (Some(u), None) => {
                c.at(u.span(), "`user` needs `password_file`");
                None
            }
            (None, Some(p)) => {
                c.at(p.span(), "`password_file` needs `user`");
                None
            }
        };
        let client = match (&s.client_cert, &s.client_key) {
            (Some(cert), Some(key)) => Some((
                readable(cert, "client_cert", base, c),
                secret(key, "client_key", base, c),
            )),
            (None, None) => None,
            (Some(x), None) | (None, Some(x)) => {
                c.at(x.span(), "mutual TLS needs both `client_cert` and `client_key`");
                None
            }
        };
        if client.is_some() && !url.https {
            c.at(
                s.collection_url.span(),
                "a client certificate needs an https:// collection",
            );
        }
        let dir = s
            .dir
            .as_ref()
            .map_or_else(|| dir.to_path_buf(), |d| super::prefixes::resolve(base, d.get_ref()));
        out.push(Taxii {
            bundle: dir.join(format!("taxii-{name}.json")),
            state: dir.join(format!(".taxii-{name}.state")),
            name,
            url,
            interval: Duration::from_secs(interval),
            basic,
            server_ca: s.server_ca.as_ref().map(|p| readable(p, "server_ca", base, c)),
            client,
        });
    }
    (c.errors.len() == before).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_defaults() {
        let u = Url::parse("https://cti.example/api1/collections/91a7b528/").unwrap();
        assert_eq!(
            (u.https, u.host.as_str(), u.port, u.path.as_str()),
            (true, "cti.example", 443, "/api1/collections/91a7b528/")
        );
        let u = Url::parse("http://[::1]:5999/feed/collections/x").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("[::1]", 5999, "/feed/collections/x/")
        );
        assert!(u.ip().unwrap().is_loopback());
        assert!(Url::parse("ftp://x/").unwrap_err().contains("https://"));
        assert!(Url::parse("https://x:99999/").unwrap_err().contains("not a port"));
    }
}
