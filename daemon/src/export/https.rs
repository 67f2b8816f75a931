//! The HTTPS API, mutual TLS only: a client must present a certificate
//! signed by `[api] client_ca`; its identity is the SHA-256 of the
//! certificate's public key (SubjectPublicKeyInfo), looked up among the
//! configured recipients. `GET /v1/records?after=CURSOR&limit=N` streams the
//! recipient's views as NDJSON. The oversight role reads, never records:
//! `GET /v1/audit?after=SEQ&limit=N` (the trail's entries),
//! `GET /v1/config-history` (start, reload and window entries) and
//! `GET /v1/counters` (the Prometheus counters). Every recipient may fetch
//! `GET /v1/checkpoint`, the newest signed checkpoint, to keep as a
//! witness. Every request is an audit entry (`api_read`). There is no
//! plain-HTTP listener; the metrics endpoint is separate.
//!
//! Limits (`[api]`, see `guard`): a deadline for the TLS handshake and for
//! each request's headers, an idle timeout, a cap on connections in all
//! and per source address, and a request rate per client; requests over
//! the rate get 429 and are audited in batches (`api_rate_limited`), not
//! one fsynced entry each.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};
use tokio_rustls::rustls;

use super::api::Ring;
use super::guard::{Connections, Rate, Tracked};
use super::trail_pages::TrailPages;
use crate::audit::AuditLog;
use crate::config::api::{Api, Limits};
use crate::config::audit::Role;
use crate::telemetry::Metrics;

/// What the API knows of a client identity.
#[derive(Clone)]
pub struct Client {
    pub name: String,
    pub role: Role,
    /// The recipient's views, if it has an `api` sink.
    pub ring: Option<Arc<Ring>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("cannot read {path}")]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} holds no usable {what}")]
    Empty {
        path: std::path::PathBuf,
        what: &'static str,
    },
    #[error("TLS configuration rejected")]
    Tls(#[source] rustls::Error),
    #[error("the client CA cannot verify client certificates")]
    Verifier(#[source] rustls::server::VerifierBuilderError),
    #[error("cannot listen on {addr} for the API")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// SHA-256 of a DER certificate's SubjectPublicKeyInfo.
pub fn spki_sha256(cert_der: &[u8]) -> Option<[u8; 32]> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    Some(Sha256::digest(cert.tbs_certificate.subject_pki.raw).into())
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, ApiError> {
    std::fs::read(path).map_err(|source| ApiError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// A private key's PEM file, wiped when dropped (the parsed key is
/// rustls's to keep).
fn read_secret(path: &std::path::Path) -> Result<zeroize::Zeroizing<Vec<u8>>, ApiError> {
    read(path).map(zeroize::Zeroizing::new)
}

fn tls_config(cfg: &Api) -> Result<rustls::ServerConfig, ApiError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<_> = rustls_pemfile::certs(&mut read(&cfg.cert)?.as_slice())
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(ApiError::Empty {
            path: cfg.cert.clone(),
            what: "certificate",
        });
    }
    let key = rustls_pemfile::private_key(&mut read_secret(&cfg.key)?.as_slice())
        .ok()
        .flatten()
        .ok_or(ApiError::Empty {
            path: cfg.key.clone(),
            what: "private key",
        })?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in rustls_pemfile::certs(&mut read(&cfg.client_ca)?.as_slice()).filter_map(Result::ok) {
        roots.add(ca).map_err(ApiError::Tls)?;
    }
    if roots.is_empty() {
        return Err(ApiError::Empty {
            path: cfg.client_ca.clone(),
            what: "CA certificate",
        });
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(ApiError::Verifier)?;
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(ApiError::Tls)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(ApiError::Tls)
}

/// TLS client settings for a collector: trust `server_ca`, verify
/// `server_name`, present `client_cert`/`client_key`.
pub fn tls_client(
    server_ca: &std::path::Path,
    server_name: &str,
    client_cert: &std::path::Path,
    client_key: &std::path::Path,
) -> Result<super::tcp::TlsClient, ApiError> {
    let config = client_config(server_ca, Some((client_cert, client_key)))?;
    let server_name =
        rustls::pki_types::ServerName::try_from(server_name.to_string()).map_err(|_| ApiError::Empty {
            path: server_ca.to_path_buf(),
            what: "valid server_name for",
        })?;
    Ok(super::tcp::TlsClient {
        config: Arc::new(config),
        server_name,
    })
}

/// A rustls client that trusts `server_ca` alone and, given a certificate
/// and key, presents them.
pub fn client_config(
    server_ca: &std::path::Path,
    client: Option<(&std::path::Path, &std::path::Path)>,
) -> Result<rustls::ClientConfig, ApiError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for ca in rustls_pemfile::certs(&mut read(server_ca)?.as_slice()).filter_map(Result::ok) {
        roots.add(ca).map_err(ApiError::Tls)?;
    }
    if roots.is_empty() {
        return Err(ApiError::Empty {
            path: server_ca.to_path_buf(),
            what: "CA certificate",
        });
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(ApiError::Tls)?
        .with_root_certificates(roots);
    let Some((client_cert, client_key)) = client else {
        return Ok(builder.with_no_client_auth());
    };
    let certs: Vec<_> = rustls_pemfile::certs(&mut read(client_cert)?.as_slice())
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(ApiError::Empty {
            path: client_cert.to_path_buf(),
            what: "certificate",
        });
    }
    let key = rustls_pemfile::private_key(&mut read_secret(client_key)?.as_slice())
        .ok()
        .flatten()
        .ok_or(ApiError::Empty {
            path: client_key.to_path_buf(),
            what: "private key",
        })?;
    builder.with_client_auth_cert(certs, key).map_err(ApiError::Tls)
}

#[derive(Clone)]
struct Conn {
    client: Option<Client>,
    metrics: Metrics,
    audit: AuditLog,
    rate: Arc<Rate>,
    pages: Arc<std::sync::Mutex<Option<TrailPages>>>,
}

impl Conn {
    fn name(&self) -> &str {
        self.client.as_ref().map_or("unknown", |c| c.name.as_str())
    }

    /// A 429 when the client is over its rate (counted, and audited later
    /// in a batch).
    fn over_rate(&self) -> Option<Response> {
        if self.rate.allow(self.name(), std::time::Instant::now()) {
            return None;
        }
        let s = StatusCode::TOO_MANY_REQUESTS;
        self.metrics
            .api_requests
            .with_label_values(&[self.name(), s.as_str()])
            .inc();
        let retry = self.rate.retry_after().to_string();
        Some(
            (
                s,
                [(header::RETRY_AFTER, retry)],
                "too many requests from this client\n",
            )
                .into_response(),
        )
    }

    /// A page of the trail's entries for which `keep` holds.
    fn trail_page(
        &self,
        after: u64,
        limit: usize,
        keep: impl Fn(&serde_json::Value) -> bool,
    ) -> Option<super::trail_pages::Page> {
        let mut g = self.pages.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            *g = Some(TrailPages::new(self.audit.trail_path()?));
        }
        g.as_mut()?.page(after, limit, keep).ok()
    }

    /// Audits and counts one request; returns the response — or, when the
    /// trail cannot take the request's entry, a 503 instead: nothing is
    /// read unaudited (the trail fails closed).
    fn answer(&self, resource: &str, status: StatusCode, items: usize, resp: Response) -> Response {
        let (name, role) = self
            .client
            .as_ref()
            .map_or(("unknown", "none"), |c| (c.name.as_str(), c.role.name()));
        let audited = self.audit.record(
            "api_read",
            serde_json::json!({ "client": name, "role": role, "resource": resource, "status": status.as_u16(), "items": items }),
            false,
        );
        let (status, resp) = if audited {
            (status, resp)
        } else {
            let s = StatusCode::SERVICE_UNAVAILABLE;
            let body = "the audit trail cannot be written; reads are paused until it can\n";
            (s, (s, [(header::RETRY_AFTER, "5")], body).into_response())
        };
        self.metrics
            .api_requests
            .with_label_values(&[name, status.as_str()])
            .inc();
        resp
    }

    fn deny(&self, resource: &str, why: &'static str) -> Response {
        let r = (StatusCode::FORBIDDEN, format!("{why}\n")).into_response();
        self.answer(resource, StatusCode::FORBIDDEN, 0, r)
    }

    /// A 403 saying who may, unless the client has the oversight role.
    fn refuse_unless_oversight(&self, resource: &str) -> Option<Response> {
        match &self.client {
            Some(c) if c.role == Role::Oversight => None,
            Some(_) => Some(self.deny(resource, "only the oversight role reads the audit trail and counters")),
            None => Some(self.deny(resource, "this client certificate belongs to no configured recipient")),
        }
    }
}

fn ndjson(lines: impl Iterator<Item = String>) -> (String, usize) {
    let mut body = String::new();
    let mut n = 0;
    for l in lines {
        body.push_str(&l);
        body.push('\n');
        n += 1;
    }
    (body, n)
}

/// A page of the trail as NDJSON, with where to continue.
fn trail_response(c: &Conn, resource: &str, q: &RecordsQuery, keep: impl Fn(&serde_json::Value) -> bool) -> Response {
    let Some(page) = c.trail_page(q.after, q.limit.clamp(1, 10_000), keep) else {
        let r = (StatusCode::SERVICE_UNAVAILABLE, "the audit trail cannot be read\n").into_response();
        return c.answer(resource, StatusCode::SERVICE_UNAVAILABLE, 0, r);
    };
    let (body, n) = ndjson(page.lines.into_iter());
    let r = (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/x-ndjson".to_string()),
            (
                header::HeaderName::from_static("x-furui-next-after"),
                page.next.to_string(),
            ),
        ],
        body,
    )
        .into_response();
    c.answer(resource, StatusCode::OK, n, r)
}

async fn audit_entries(State(c): State<Conn>, Query(q): Query<RecordsQuery>) -> Response {
    if let Some(r) = c.over_rate() {
        return r;
    }
    if let Some(r) = c.refuse_unless_oversight("audit") {
        return r;
    }
    trail_response(&c, "audit", &q, |_| true)
}

async fn config_history(State(c): State<Conn>, Query(q): Query<RecordsQuery>) -> Response {
    if let Some(r) = c.over_rate() {
        return r;
    }
    if let Some(r) = c.refuse_unless_oversight("config-history") {
        return r;
    }
    trail_response(&c, "config-history", &q, |e| {
        matches!(e["kind"].as_str(), Some("start" | "reload" | "window" | "new_segment"))
    })
}

async fn counters(State(c): State<Conn>) -> Response {
    if let Some(r) = c.over_rate() {
        return r;
    }
    if let Some(r) = c.refuse_unless_oversight("counters") {
        return r;
    }
    let text = c.metrics.encode();
    let r = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        text,
    )
        .into_response();
    c.answer("counters", StatusCode::OK, 1, r)
}

async fn checkpoint(State(c): State<Conn>) -> Response {
    if let Some(r) = c.over_rate() {
        return r;
    }
    if c.client.is_none() {
        return c.deny(
            "checkpoint",
            "this client certificate belongs to no configured recipient",
        );
    }
    // Inspectors get the whole checkpoint; a recipient gets its head
    // (seq, hash, signature): enough to hold the trail to it, without
    // the other recipients' figures.
    let oversight = c.client.as_ref().is_some_and(|cl| cl.role == Role::Oversight);
    let signed = c.audit.latest_signed();
    let witness = if oversight {
        signed
    } else {
        signed.as_deref().and_then(crate::audit::witness_head)
    };
    match witness {
        Some(line) => {
            let r = (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                format!("{line}\n"),
            )
                .into_response();
            c.answer("checkpoint", StatusCode::OK, 1, r)
        }
        None => {
            let r = (StatusCode::NOT_FOUND, "no signed checkpoint yet\n").into_response();
            c.answer("checkpoint", StatusCode::NOT_FOUND, 0, r)
        }
    }
}

#[derive(serde::Deserialize)]
struct RecordsQuery {
    #[serde(default)]
    after: u64,
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    1000
}

async fn records(State(c): State<Conn>, Query(q): Query<RecordsQuery>) -> Response {
    if let Some(r) = c.over_rate() {
        return r;
    }
    let m = &c.metrics;
    let Some(client) = &c.client else {
        return c.deny("records", "this client certificate belongs to no configured recipient");
    };
    if client.role == Role::Oversight {
        return c.deny(
            "records",
            "the oversight role reads counters and the audit trail, never records",
        );
    }
    let Some(ring) = &client.ring else {
        return c.deny(
            "records",
            "no grant of this recipient covers records over the API (no `api` sink)",
        );
    };
    let (lines, reset) = ring.after(q.after, q.limit.clamp(1, 10_000));
    let next = lines
        .last()
        .and_then(|l| l.strip_prefix("{\"cursor\":"))
        .and_then(|l| l.split(',').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(q.after);
    let mut body = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for l in &lines {
        body.push_str(l);
        body.push('\n');
    }
    m.export_records
        .with_label_values(&[&client.name, "api-read"])
        .inc_by(lines.len() as u64);
    let mut r = (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/x-ndjson".to_string()),
            (header::HeaderName::from_static("x-furui-next-cursor"), next.to_string()),
        ],
        body,
    )
        .into_response();
    if let Some(oldest) = ring.oldest() {
        r.headers_mut().insert(
            header::HeaderName::from_static("x-furui-oldest-cursor"),
            header::HeaderValue::from(oldest),
        );
    }
    if reset {
        r.headers_mut().insert(
            header::HeaderName::from_static("x-furui-cursor-reset"),
            header::HeaderValue::from_static("1"),
        );
    }
    c.answer("records", StatusCode::OK, lines.len(), r)
}

/// The running server; stops when dropped or with `stop`.
pub struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// Binds and starts the API on its own thread.
pub fn start(
    cfg: &Api,
    clients: HashMap<[u8; 32], Client>,
    metrics: &Metrics,
    audit: &AuditLog,
) -> Result<Server, ApiError> {
    let tls = Arc::new(tls_config(cfg)?);
    let std_listener = std::net::TcpListener::bind(cfg.listen).map_err(|source| ApiError::Listen {
        addr: cfg.listen,
        source,
    })?;
    std_listener.set_nonblocking(true).map_err(|source| ApiError::Listen {
        addr: cfg.listen,
        source,
    })?;
    let stop = Arc::new(AtomicBool::new(false));
    let (s, m, a, listen, limits) = (stop.clone(), metrics.clone(), audit.clone(), cfg.listen, cfg.limits);
    let clients = Arc::new(clients);
    let thread = std::thread::Builder::new()
        .name("furui-api".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "the API runtime did not start");
                    return;
                }
            };
            rt.block_on(serve(std_listener, tls, clients, m, a, s, limits));
        })
        .map_err(|source| ApiError::Listen { addr: listen, source })?;
    tracing::info!(%listen, "HTTPS API up (mutual TLS required)");
    Ok(Server {
        stop,
        thread: Some(thread),
    })
}

/// How often refusals over the rate become one audit entry per client.
const RATE_AUDIT_EVERY: Duration = Duration::from_secs(5);

/// Writes one `api_rate_limited` entry per client refused since the last
/// call; what cannot be written is kept for the next.
fn audit_refusals(rate: &Rate, audit: &AuditLog) {
    for (client, r) in rate.take_refused() {
        let data = serde_json::json!({
            "client": client,
            "status": 429,
            "refused": r.count,
            "first": r.first.map(crate::audit::rfc3339),
            "last": r.last.map(crate::audit::rfc3339),
        });
        if !audit.record("api_rate_limited", data, false) {
            rate.restore(client, r);
        }
    }
}

async fn serve(
    std_listener: std::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    clients: Arc<HashMap<[u8; 32], Client>>,
    metrics: Metrics,
    audit: AuditLog,
    stop: Arc<AtomicBool>,
    limits: Limits,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else {
        return;
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let connections = Connections::new(&limits);
    let rate = Rate::new(&limits);
    let pages = Arc::new(std::sync::Mutex::new(None));
    let mut last_audit = std::time::Instant::now();
    while !stop.load(Ordering::Acquire) {
        if last_audit.elapsed() >= RATE_AUDIT_EVERY {
            audit_refusals(&rate, &audit);
            last_audit = std::time::Instant::now();
        }
        let Ok(Ok((tcp, peer))) = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await else {
            continue;
        };
        let slot = match connections.take(peer.ip()) {
            Ok(slot) => slot,
            Err(full) => {
                // Closed at once: no handshake, no request, no audit entry.
                metrics
                    .api_connections_refused
                    .with_label_values(&[full.reason()])
                    .inc();
                drop(tcp);
                continue;
            }
        };
        metrics.api_connections.set(connections.open() as i64);
        let conn = Conn {
            client: None,
            metrics: metrics.clone(),
            audit: audit.clone(),
            rate: rate.clone(),
            pages: pages.clone(),
        };
        let (acceptor, clients, connections) = (acceptor.clone(), clients.clone(), connections.clone());
        tokio::spawn(async move {
            let metrics = conn.metrics.clone();
            connection(conn, acceptor, tcp, clients, limits).await;
            drop(slot);
            metrics.api_connections.set(connections.open() as i64);
        });
    }
    audit_refusals(&rate, &audit);
}

/// The API's routes, answering as `conn`'s client.
fn router(conn: Conn) -> Router {
    Router::new()
        .route("/v1/records", get(records))
        .route("/v1/audit", get(audit_entries))
        .route("/v1/config-history", get(config_history))
        .route("/v1/counters", get(counters))
        .route("/v1/checkpoint", get(checkpoint))
        .with_state(conn)
}

/// One client connection, from the handshake to its close.
async fn connection(
    mut conn: Conn,
    acceptor: tokio_rustls::TlsAcceptor,
    tcp: tokio::net::TcpStream,
    clients: Arc<HashMap<[u8; 32], Client>>,
    limits: Limits,
) {
    let metrics = conn.metrics.clone();
    let cut = |reason: &str| metrics.api_connections_refused.with_label_values(&[reason]).inc();
    let tls = match tokio::time::timeout(limits.header_timeout, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(_)) => {
            // No certificate, an untrusted one, or no TLS at all.
            metrics
                .api_requests
                .with_label_values(&["unknown", "handshake_failed"])
                .inc();
            return;
        }
        Err(_) => {
            cut("handshake_timeout");
            metrics
                .api_requests
                .with_label_values(&["unknown", "handshake_failed"])
                .inc();
            return;
        }
    };
    let identity = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|c| spki_sha256(c.as_ref()));
    conn.client = identity.and_then(|id| clients.get(&id).cloned());
    let app = router(conn);
    let svc = hyper_util::service::TowerToHyperService::new(app);
    let (io, activity) = Tracked::new(tls);
    // HTTP/1.1 only: the header-read timeout is an HTTP/1 setting.
    let served = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .serve_connection(hyper_util::rt::TokioIo::new(io), svc);
    tokio::pin!(served);
    let tick = (limits.idle_timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    loop {
        tokio::select! {
            r = &mut served => {
                if r.is_err_and(|e| e.is_timeout()) {
                    cut("header_timeout");
                }
                return;
            }
            () = tokio::time::sleep(tick) => {
                if activity.idle() >= limits.idle_timeout {
                    // Dropping the connection closes it.
                    cut("idle_timeout");
                    return;
                }
            }
        }
    }
}

/// One request through the API's router, as a recipient with three views
/// in its buffer would send it (fuzzing and tests: `testkit`). The status,
/// and whether the body is well-formed (every NDJSON line one JSON
/// object); None if `uri` is not a URI at all. The router and its runtime
/// are built once per thread.
#[cfg(any(test, feature = "testkit"))]
pub fn answer_for(uri: &[u8], oversight: bool) -> Option<(u16, bool)> {
    use hyper::service::Service as _;
    thread_local! {
        static APPS: Option<(tokio::runtime::Runtime, [Router; 2])> = test_apps();
    }
    let req = axum::http::Request::builder()
        .uri(uri)
        .body(axum::body::Body::empty())
        .ok()?;
    APPS.with(|apps| {
        let (rt, routers) = apps.as_ref()?;
        let app = routers[usize::from(oversight)].clone();
        rt.block_on(async move {
            let resp = hyper_util::service::TowerToHyperService::new(app)
                .call(req)
                .await
                .ok()?;
            let status = resp.status().as_u16();
            let ndjson = resp
                .headers()
                .get(header::CONTENT_TYPE)
                .is_some_and(|v| v == "application/x-ndjson");
            let body = axum::body::to_bytes(resp.into_body(), 1 << 24).await.ok()?;
            let well_formed = !ndjson
                || body
                    .split(|b| *b == b'\n')
                    .filter(|l| !l.is_empty())
                    .all(|l| serde_json::from_slice::<serde_json::Value>(l).is_ok_and(|v| v.is_object()));
            Some((status, well_formed))
        })
    })
}

#[cfg(any(test, feature = "testkit"))]
fn test_apps() -> Option<(tokio::runtime::Runtime, [Router; 2])> {
    let metrics = Metrics::new();
    let ring = Ring::starting_at(4, 1);
    for i in 0..3u64 {
        let v = super::project::View {
            key_epoch: "e".into(),
            fields: vec![("packets_forward", super::project::Value::U64(i))],
            ..Default::default()
        };
        ring.push(&v).ok()?;
    }
    let limits = Limits {
        header_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(1),
        max_connections: 1,
        max_per_address: 1,
        rate_per_second: u32::MAX,
        burst: u32::MAX,
    };
    let app = |role: Role| {
        let conn = Conn {
            client: Some(Client {
                name: "fuzz".into(),
                role,
                ring: Some(ring.clone()),
            }),
            audit: AuditLog::disabled(&metrics),
            metrics: metrics.clone(),
            rate: Rate::new(&limits),
            pages: Arc::new(std::sync::Mutex::new(None)),
        };
        router(conn)
    };
    let rt = tokio::runtime::Builder::new_current_thread().build().ok()?;
    Some((rt, [app(Role::Analyst), app(Role::Oversight)]))
}

#[cfg(test)]
mod tests {
    use super::answer_for;

    #[test]
    fn query_strings_are_answered_not_crashed_on() {
        assert_eq!(answer_for(b"/v1/records?after=0", false), Some((200, true)));
        assert_eq!(answer_for(b"/v1/records?after=2&limit=1", false), Some((200, true)));
        for bad in [
            &b"/v1/records?after=-1"[..],
            b"/v1/records?after=18446744073709551616",
            b"/v1/records?limit=x",
            b"/v1/records?after=%ff%fe",
        ] {
            assert_eq!(
                answer_for(bad, false).map(|a| a.0),
                Some(400),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(answer_for(b"/v1/audit?after=0", false).map(|a| a.0), Some(403));
        assert_eq!(answer_for(b"/v1/nothing", false).map(|a| a.0), Some(404));
        assert_eq!(answer_for(b"not a uri \x00", false), None);
    }
}
