//! NATS JetStream: each view is published as JSON on the recipient's own
//! subject and counts as sent only once the server acknowledges it was
//! stored — with a replicated stream, once the stream's leader has it on
//! a majority of the replicas. Each recipient has its own stream
//! (`FURUI-<recipient>` by default, subjects `<subject>` and
//! `<subject>.>`), created if it does not exist with the configured
//! replicas and de-duplication window, so that the server's permissions
//! can give each reader its stream alone.
//!
//! Every view carries `Nats-Msg-Id: <appliance>.<seq>`: a view resent
//! after its acknowledgement was lost (a node died, leadership moved) is
//! dropped by the stream as a duplicate within the window, and counted
//! here as delivered. A batch is published pipelined: up to `ack_window`
//! publishes wait for their acknowledgements at once.
//!
//! Several `servers` name a cluster: the client connects to any and moves
//! to another when its server fails. With `server_ca` the connection is
//! TLS and the server's certificate must chain to that CA; credentials
//! (user and password, a creds file or an NKey seed) are read from their
//! files at each connect. While no server takes views, sends fail fast
//! (one attempt per second) and the caller spools.

use std::collections::VecDeque;
use std::future::IntoFuture;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, context::Publish};

use super::project::View;
use super::Sink;
use crate::config::sinks::{NatsAuth, NatsSink};

const ACK_TIMEOUT: Duration = Duration::from_secs(2);
const RETRY_EVERY: Duration = Duration::from_secs(1);

pub struct NatsJetStream {
    rt: tokio::runtime::Runtime,
    cfg: NatsSink,
    js: Option<jetstream::Context>,
    retry_after: Option<Instant>,
    /// Set while sends fail, so the cause is logged once, not per view.
    failing: bool,
    /// Acknowledgements that said "duplicate" since last asked.
    duplicates: u64,
}

fn io(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

fn not_tried() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::NotConnected, "NATS unreachable; retrying")
}

/// What one acknowledgement said.
enum Acked {
    Stored,
    Duplicate,
}

impl NatsJetStream {
    pub fn open(cfg: &NatsSink) -> std::io::Result<NatsJetStream> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        Ok(NatsJetStream {
            rt,
            cfg: cfg.clone(),
            js: None,
            retry_after: None,
            failing: false,
            duplicates: 0,
        })
    }

    /// Publishes `msgs` (subject suffix, message id, payload) pipelined;
    /// one result per message, in order. After the first failure to hand
    /// a publish to the connection, the rest are not tried.
    fn publish_all(&mut self, msgs: Vec<(&'static str, String, Vec<u8>)>) -> Vec<std::io::Result<()>> {
        if self.retry_after.is_some_and(|t| Instant::now() < t) {
            return msgs.iter().map(|_| Err(not_tried())).collect();
        }
        let cfg = self.cfg.clone();
        let existing = self.js.clone();
        let n = msgs.len();
        let (js, results) = self.rt.block_on(async move {
            let js = match existing {
                Some(js) => js,
                None => match connect(&cfg).await {
                    Ok(js) => js,
                    Err(e) => {
                        let kind = e.kind();
                        let mut r = vec![Err(e)];
                        r.extend((1..n).map(|_| Err(std::io::Error::new(kind, "NATS unreachable"))));
                        return (None, r);
                    }
                },
            };
            let results = pipeline(&js, &cfg, msgs).await;
            (Some(js), results)
        });
        let mut ok = true;
        let mut out = Vec::with_capacity(n);
        let mut first_err = None;
        for r in results {
            match r {
                Ok(Acked::Stored) => out.push(Ok(())),
                Ok(Acked::Duplicate) => {
                    self.duplicates += 1;
                    out.push(Ok(()));
                }
                Err(e) => {
                    ok = false;
                    if first_err.is_none() {
                        first_err = Some(e.to_string());
                    }
                    out.push(Err(e));
                }
            }
        }
        let servers = self.cfg.servers.join(",");
        if ok {
            if std::mem::take(&mut self.failing) {
                tracing::info!(servers = %servers, stream = %self.cfg.stream, "NATS takes views again");
            }
            self.js = js;
        } else {
            if !std::mem::replace(&mut self.failing, true) {
                // The server's or the TLS library's words: no view in them.
                tracing::warn!(servers = %servers, stream = %self.cfg.stream, error = first_err.as_deref().unwrap_or(""), "NATS does not take views (unreachable, no stream leader, TLS or credentials refused); spooling and retrying every second");
            }
            // A new connection next time: the old one may be to a node
            // that is gone.
            self.js = None;
            self.retry_after = Some(Instant::now() + RETRY_EVERY);
        }
        out
    }
}

/// Connects to any of the servers and makes sure the stream exists.
async fn connect(cfg: &NatsSink) -> std::io::Result<jetstream::Context> {
    let options = connect_options(cfg).await?;
    let client = tokio::time::timeout(ACK_TIMEOUT, options.connect(cfg.servers.as_slice()))
        .await
        .map_err(io)?
        .map_err(io)?;
    let mut js = jetstream::new(client);
    js.set_timeout(ACK_TIMEOUT);
    let stream = tokio::time::timeout(
        ACK_TIMEOUT * 2,
        js.get_or_create_stream(jetstream::stream::Config {
            subjects: vec![cfg.subject.clone(), format!("{}.>", cfg.subject)],
            name: cfg.stream.clone(),
            num_replicas: cfg.replicas,
            duplicate_window: cfg.dedup_window,
            ..Default::default()
        }),
    )
    .await
    .map_err(io)?
    .map_err(io)?;
    let have = stream.cached_info().config.num_replicas.max(1);
    if have != cfg.replicas {
        tracing::warn!(stream = %cfg.stream, replicas = have, configured = cfg.replicas, "the NATS stream exists with another number of replicas; furui does not change it (`nats stream edit` does)");
    }
    Ok(js)
}

/// Publishes every message, keeping at most `ack_window` acknowledgements
/// outstanding; their results in order. Each acknowledgement is awaited
/// until `ACK_TIMEOUT` after its publish, not after the one before it,
/// so a batch in flight when a node dies fails within `ACK_TIMEOUT`.
async fn pipeline(
    js: &jetstream::Context,
    cfg: &NatsSink,
    msgs: Vec<(&'static str, String, Vec<u8>)>,
) -> Vec<std::io::Result<Acked>> {
    type Waiting = (tokio::time::Instant, jetstream::context::PublishAckFuture);
    async fn settle((deadline, ack): Waiting) -> std::io::Result<Acked> {
        match tokio::time::timeout_at(deadline, ack.into_future()).await {
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no acknowledgement in time",
            )),
            Ok(Err(e)) => Err(io(e)),
            Ok(Ok(a)) if a.duplicate => Ok(Acked::Duplicate),
            Ok(Ok(_)) => Ok(Acked::Stored),
        }
    }
    let n = msgs.len();
    let mut results: Vec<std::io::Result<Acked>> = Vec::with_capacity(n);
    let mut waiting: VecDeque<Waiting> = VecDeque::with_capacity(cfg.ack_window.min(n));
    let mut broken = false;
    for (suffix, id, payload) in msgs {
        if broken {
            results.push(Err(not_tried()));
            continue;
        }
        if waiting.len() >= cfg.ack_window {
            let oldest = waiting.pop_front().expect("full");
            results.push(settle(oldest).await);
        }
        let to = format!("{}{suffix}", cfg.subject);
        let mut publish = Publish::build().payload(payload.into());
        if !id.is_empty() {
            publish = publish.message_id(id);
        }
        let deadline = tokio::time::Instant::now() + ACK_TIMEOUT;
        match tokio::time::timeout_at(deadline, js.send_publish(to, publish)).await {
            Ok(Ok(ack)) => waiting.push_back((deadline, ack)),
            failed => {
                // Everything handed over before still gets its answer.
                while let Some(w) = waiting.pop_front() {
                    results.push(settle(w).await);
                }
                results.push(Err(match failed {
                    Ok(Err(e)) => io(e),
                    _ => std::io::Error::new(std::io::ErrorKind::TimedOut, "publish not taken in time"),
                }));
                broken = true;
            }
        }
    }
    while let Some(w) = waiting.pop_front() {
        results.push(settle(w).await);
    }
    results
}

/// Reads a one-line secret (a password or an NKey seed) from its file.
fn read_secret(path: &std::path::Path) -> std::io::Result<zeroize::Zeroizing<String>> {
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(path)?);
    Ok(zeroize::Zeroizing::new(text.trim().to_string()))
}

/// TLS and credentials for one connection attempt; the secrets are read
/// again each time (a rotated file is picked up at the next connect).
async fn connect_options(cfg: &NatsSink) -> std::io::Result<async_nats::ConnectOptions> {
    let mut o = async_nats::ConnectOptions::new()
        .connection_timeout(ACK_TIMEOUT)
        .name("furui");
    if let Some(t) = &cfg.tls {
        o = o.require_tls(true).add_root_certificates(t.server_ca.clone());
        if let Some((cert, key)) = &t.client {
            o = o.add_client_certificate(cert.clone(), key.clone());
        }
    }
    Ok(match &cfg.auth {
        NatsAuth::None => o,
        NatsAuth::Password { user, password_file } => {
            o.user_and_password(user.clone(), read_secret(password_file)?.to_string())
        }
        NatsAuth::Creds(path) => o.credentials_file(path).await?,
        NatsAuth::NkeySeed(path) => o.nkey(read_secret(path)?.to_string()),
    })
}

fn payload_of(view: &View) -> std::io::Result<Vec<u8>> {
    serde_json::to_vec(view).map_err(io)
}

impl Sink for NatsJetStream {
    fn kind(&self) -> &'static str {
        "nats"
    }

    fn takes_rows(&self) -> bool {
        true
    }

    fn send(&mut self, _grant: usize, view: &View) -> std::io::Result<()> {
        let payload = payload_of(view)?;
        self.publish_all(vec![("", view.message_id(), payload)])
            .pop()
            .unwrap_or_else(|| Err(not_tried()))
    }

    fn send_batch(&mut self, views: &[(usize, &View)]) -> Vec<std::io::Result<()>> {
        let mut msgs = Vec::with_capacity(views.len());
        for (_, v) in views {
            match payload_of(v) {
                Ok(p) => msgs.push(("", v.message_id(), p)),
                // Cannot happen for a view; refuse the batch rather than
                // shift results against their views.
                Err(_) => return views.iter().map(|_| Err(not_tried())).collect(),
            }
        }
        self.publish_all(msgs)
    }

    fn duplicates(&mut self) -> u64 {
        std::mem::take(&mut self.duplicates)
    }

    /// On `<subject>.witness`, inside the recipient's stream; its id is
    /// the checkpoint's hash.
    fn witness(&mut self, checkpoint: &str) -> std::io::Result<bool> {
        let id = serde_json::from_str::<serde_json::Value>(checkpoint)
            .ok()
            .and_then(|v| v["hash"].as_str().map(|h| format!("witness.{h}")))
            .unwrap_or_default();
        self.publish_all(vec![(".witness", id, checkpoint.as_bytes().to_vec())])
            .pop()
            .unwrap_or_else(|| Err(not_tried()))
            .map(|_| true)
    }
}
