//! TAXII 2.1 pulls: GET `<collection>/objects/?added_after=…`, page by
//! `next` while the server says `more`, and merge the indicators into one
//! STIX bundle in the rules directory (`taxii-<name>.json`), which the
//! selection loads like any other bundle (`config::rules::stix`).
//!
//! The latest version of an indicator (by `modified`) is kept; a revoked
//! one is removed and stays removed. `added_after` is the largest
//! `X-TAXII-Date-Added-Last` seen, kept in `.taxii-<name>.state`. Both
//! files are written whole (temporary file, fsync, rename), bundle first:
//! a crash in between repeats a pull, which merges to the same result.
//! A failed pull changes nothing: the rules in force stay.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::http::{self, HttpError};
use crate::config::taxii::Taxii;

const MEDIA: &str = "application/taxii+json;version=2.1";
/// Pages one pull follows at most (a server that never stops saying more).
pub const MAX_PAGES: usize = 10_000;
const TIMEOUT: Duration = Duration::from_secs(30);
/// Objects asked for per page.
const PAGE_LIMIT: u32 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum TaxiiError {
    #[error("{0}")]
    Http(#[from] HttpError),
    #[error("the server refused the credentials (HTTP {0})")]
    Auth(u16),
    #[error("the server answered HTTP {0}")]
    Status(u16),
    #[error("the answer is not a TAXII envelope: {0}")]
    Envelope(String),
    #[error("more than {MAX_PAGES} pages in one pull")]
    TooManyPages,
    #[error("cannot read {what}: {source}")]
    Read { what: String, source: std::io::Error },
    #[error("cannot write {what}: {source}")]
    Write { what: String, source: std::io::Error },
    #[error("TLS settings: {0}")]
    Tls(String),
}

/// What one pull did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pulled {
    pub pages: usize,
    pub objects: usize,
    pub revoked: usize,
    /// Indicators the bundle holds now.
    pub indicators: usize,
    /// The bundle changed (the rules need a reload).
    pub changed: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    added_after: Option<String>,
    revoked: BTreeSet<String>,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    more: bool,
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    objects: Vec<Value>,
}

/// Pulls what was added since the last pull and merges it.
pub async fn pull(feed: &Taxii) -> Result<Pulled, TaxiiError> {
    let tls = match &feed.server_ca {
        Some(ca) if feed.url.https => {
            let client = feed.client.as_ref().map(|(c, k)| (c.as_path(), k.as_path()));
            Some(Arc::new(
                crate::export::https::client_config(ca, client).map_err(|e| TaxiiError::Tls(e.to_string()))?,
            ))
        }
        _ => None,
    };
    let mut headers = vec![("accept", MEDIA.to_string())];
    if let Some((user, file)) = &feed.basic {
        let pw = zeroize::Zeroizing::new(std::fs::read_to_string(file).map_err(|source| TaxiiError::Read {
            what: file.display().to_string(),
            source,
        })?);
        headers.push(("authorization", http::basic_auth(user, pw.trim_end()).to_string()));
    }
    if let Some(dir) = feed.bundle.parent() {
        std::fs::create_dir_all(dir).map_err(|source| TaxiiError::Write {
            what: dir.display().to_string(),
            source,
        })?;
    }
    let mut state: State = read_json(&feed.state)?.unwrap_or_default();
    let mut store = read_store(&feed.bundle)?;
    if store.is_none() {
        // No bundle (first pull, or it was removed): pull everything.
        state.added_after = None;
    }
    let mut store = store.take().unwrap_or_default();
    let mut out = Pulled::default();
    let mut next: Option<String> = None;
    let mut last = state.added_after.clone();
    loop {
        // `limit` on every page: the server caps it at its own maximum
        // (and the reference server expects it with `next`).
        let mut query = vec![format!("limit={PAGE_LIMIT}")];
        if let Some(a) = &state.added_after {
            query.push(format!("added_after={}", encode(a)));
        }
        if let Some(n) = &next {
            query.push(format!("next={}", encode(n)));
        }
        let target = format!("{}objects/?{}", feed.url.path, query.join("&"));
        let resp = http::get(&feed.url, &target, &headers, tls.clone(), TIMEOUT).await?;
        match resp.status {
            200 => {}
            401 | 403 => return Err(TaxiiError::Auth(resp.status)),
            s => return Err(TaxiiError::Status(s)),
        }
        let env: Envelope = serde_json::from_slice(&resp.body).map_err(|e| TaxiiError::Envelope(e.to_string()))?;
        out.pages += 1;
        out.objects += env.objects.len();
        for o in env.objects {
            merge(&mut store, &mut state, o, &mut out);
        }
        if let Some(l) = resp
            .headers
            .get("x-taxii-date-added-last")
            .and_then(|v| v.to_str().ok())
        {
            if last.as_deref().is_none_or(|p| later(l, p)) {
                last = Some(l.to_string());
            }
        }
        match (env.more, env.next) {
            (true, Some(n)) if out.pages < MAX_PAGES => next = Some(n),
            (true, Some(_)) => return Err(TaxiiError::TooManyPages),
            _ => break,
        }
    }
    out.indicators = store.len();
    if out.changed || !feed.bundle.exists() {
        out.changed = true;
        write_store(&feed.bundle, &feed.name, &store)?;
    }
    state.added_after = last;
    write_json(&feed.state, &state)?;
    Ok(out)
}

/// True when RFC 3339 time `a` is after `b`.
fn later(a: &str, b: &str) -> bool {
    use time::format_description::well_known::Rfc3339;
    match (
        time::OffsetDateTime::parse(a, &Rfc3339),
        time::OffsetDateTime::parse(b, &Rfc3339),
    ) {
        (Ok(a), Ok(b)) => a > b,
        _ => a > b,
    }
}

fn merge(store: &mut BTreeMap<String, Value>, state: &mut State, o: Value, out: &mut Pulled) {
    if o.get("type").and_then(Value::as_str) != Some("indicator") {
        return;
    }
    let Some(id) = o.get("id").and_then(Value::as_str).map(str::to_string) else {
        return;
    };
    if o.get("revoked").and_then(Value::as_bool) == Some(true) {
        out.revoked += 1;
        out.changed |= store.remove(&id).is_some();
        state.revoked.insert(id);
        return;
    }
    if state.revoked.contains(&id) {
        return;
    }
    let modified = |v: &Value| v.get("modified").and_then(Value::as_str).unwrap_or("").to_string();
    let newer = store.get(&id).is_none_or(|old| later(&modified(&o), &modified(old)));
    if newer {
        store.insert(id, o);
        out.changed = true;
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved kept).
fn encode(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, TaxiiError> {
    match std::fs::read(path) {
        Ok(b) => Ok(serde_json::from_slice(&b).ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TaxiiError::Read {
            what: path.display().to_string(),
            source,
        }),
    }
}

fn read_store(path: &Path) -> Result<Option<BTreeMap<String, Value>>, TaxiiError> {
    let Some(doc) = read_json::<Value>(path)? else {
        return Ok(None);
    };
    let objects = doc
        .get("objects")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    Ok(Some(
        objects
            .into_iter()
            .filter_map(|o| Some((o.get("id")?.as_str()?.to_string(), o)))
            .collect(),
    ))
}

fn write_store(path: &Path, name: &str, store: &BTreeMap<String, Value>) -> Result<(), TaxiiError> {
    let doc = serde_json::json!({
        "type": "bundle",
        "id": format!("bundle--furui-taxii-{name}"),
        "objects": store.values().collect::<Vec<_>>(),
    });
    write_json(path, &doc)
}

fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<(), TaxiiError> {
    use std::io::Write;
    let err = |source| TaxiiError::Write {
        what: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let body = serde_json::to_vec_pretty(v).map_err(|e| err(std::io::Error::other(e)))?;
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(&body).and_then(|()| f.sync_all()).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)?;
    if let Some(dir) = path.parent().and_then(|d| std::fs::File::open(d).ok()) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Pulls `feed` every interval; asks for a reload (sends its name) when
/// the bundle changed. Counts every pull by outcome.
pub async fn run(feed: Taxii, reload: tokio::sync::mpsc::Sender<String>, metrics: crate::telemetry::Metrics) {
    loop {
        match pull(&feed).await {
            Ok(p) => {
                metrics.taxii_pulls.with_label_values(&[&feed.name, "ok"]).inc();
                metrics
                    .taxii_indicators
                    .with_label_values(&[&feed.name])
                    .set(p.indicators as i64);
                tracing::info!(
                    feed = %feed.name,
                    pages = p.pages,
                    objects = p.objects,
                    revoked = p.revoked,
                    indicators = p.indicators,
                    changed = p.changed,
                    "TAXII pull"
                );
                if p.changed && reload.send(feed.name.clone()).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                metrics.taxii_pulls.with_label_values(&[&feed.name, "failed"]).inc();
                tracing::error!(feed = %feed.name, error = %e, "TAXII pull failed; the rules in force stay");
            }
        }
        tokio::time::sleep(feed.interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ind(id: &str, modified: &str, revoked: bool) -> Value {
        serde_json::json!({"type": "indicator", "id": id, "modified": modified, "revoked": revoked})
    }

    #[test]
    fn newer_versions_replace_and_revocation_is_final() {
        let mut store = BTreeMap::new();
        let mut state = State::default();
        let mut out = Pulled::default();
        merge(
            &mut store,
            &mut state,
            ind("indicator--a", "2026-01-01T00:00:00Z", false),
            &mut out,
        );
        merge(
            &mut store,
            &mut state,
            ind("indicator--a", "2025-01-01T00:00:00Z", false),
            &mut out,
        );
        assert_eq!(
            store["indicator--a"]["modified"], "2026-01-01T00:00:00Z",
            "an older version does not win"
        );
        merge(
            &mut store,
            &mut state,
            ind("indicator--a", "2026-03-01T00:00:00Z", true),
            &mut out,
        );
        assert!(store.is_empty());
        assert_eq!(out.revoked, 1);
        merge(
            &mut store,
            &mut state,
            ind("indicator--a", "2026-04-01T00:00:00Z", false),
            &mut out,
        );
        assert!(store.is_empty(), "a revoked indicator stays revoked");
        merge(
            &mut store,
            &mut state,
            serde_json::json!({"type": "malware", "id": "malware--x"}),
            &mut out,
        );
        assert!(store.is_empty(), "only indicators are kept");
        assert_eq!(encode("2026-12-04T17:27:56.29Z"), "2026-12-04T17:27:56.29Z");
        assert_eq!(encode("a b+c"), "a%20b%2Bc");
    }
}
