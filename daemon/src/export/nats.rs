//! NATS JetStream: each view is published as JSON on the recipient's own
//! subject and counts as sent only once the server acknowledges it was
//! stored. Each recipient has its own stream (`FURUI-<recipient>` by
//! default, subjects `<subject>` and `<subject>.>`), created if it does
//! not exist, so that the server's permissions can give each reader its
//! stream alone. With `server_ca` the connection is TLS and the server's
//! certificate must chain to that CA; credentials (user and password, a
//! creds file or an NKey seed) are read from their files at each connect.
//! While the server is unreachable or refuses furui, sends fail fast (one
//! attempt per second) and the caller spools.

use std::time::{Duration, Instant};

use async_nats::jetstream;

use super::project::View;
use super::Sink;
use crate::config::sinks::{NatsAuth, NatsTls};

const ACK_TIMEOUT: Duration = Duration::from_secs(2);
const RETRY_EVERY: Duration = Duration::from_secs(1);

pub struct NatsJetStream {
    rt: tokio::runtime::Runtime,
    address: String,
    stream: String,
    subject: String,
    tls: Option<NatsTls>,
    auth: NatsAuth,
    js: Option<jetstream::Context>,
    retry_after: Option<Instant>,
    /// Set while sends fail, so the cause is logged once, not per view.
    failing: bool,
}

fn io(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl NatsJetStream {
    pub fn open(
        address: &str,
        stream: &str,
        subject: &str,
        tls: Option<NatsTls>,
        auth: NatsAuth,
    ) -> std::io::Result<NatsJetStream> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        Ok(NatsJetStream {
            rt,
            address: address.to_string(),
            stream: stream.to_string(),
            subject: subject.to_string(),
            tls,
            auth,
            js: None,
            retry_after: None,
            failing: false,
        })
    }

    fn publish(&mut self, suffix: &str, payload: Vec<u8>) -> std::io::Result<()> {
        let (address, stream, subject) = (self.address.clone(), self.stream.clone(), self.subject.clone());
        let (tls, auth) = (self.tls.clone(), self.auth.clone());
        let to = format!("{subject}{suffix}");
        let existing = self.js.clone();
        let res = self.rt.block_on(async move {
            let js = match existing {
                Some(js) => js,
                None => {
                    let options = connect_options(tls.as_ref(), &auth).await?;
                    let client = tokio::time::timeout(ACK_TIMEOUT, options.connect(address.as_str()))
                        .await
                        .map_err(io)?
                        .map_err(io)?;
                    let js = jetstream::new(client);
                    js.get_or_create_stream(jetstream::stream::Config {
                        subjects: vec![subject.clone(), format!("{subject}.>")],
                        name: stream,
                        ..Default::default()
                    })
                    .await
                    .map_err(io)?;
                    js
                }
            };
            let ack = tokio::time::timeout(ACK_TIMEOUT, async {
                js.publish(to, payload.into()).await.map_err(io)?.await.map_err(io)
            })
            .await
            .map_err(io)?;
            ack.map(|_| js)
        });
        match res {
            Ok(js) => {
                if std::mem::take(&mut self.failing) {
                    tracing::info!(address = %self.address, stream = %self.stream, "NATS takes views again");
                }
                self.js = Some(js);
                Ok(())
            }
            Err(e) => {
                if !std::mem::replace(&mut self.failing, true) {
                    // The server's or the TLS library's words: no view in them.
                    tracing::warn!(address = %self.address, stream = %self.stream, error = %e, "NATS does not take views (unreachable, TLS or credentials refused); spooling and retrying every second");
                }
                self.js = None;
                self.retry_after = Some(Instant::now() + RETRY_EVERY);
                Err(e)
            }
        }
    }
}

/// Reads a one-line secret (a password or an NKey seed) from its file.
fn read_secret(path: &std::path::Path) -> std::io::Result<zeroize::Zeroizing<String>> {
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(path)?);
    Ok(zeroize::Zeroizing::new(text.trim().to_string()))
}

/// TLS and credentials for one connection attempt; the secrets are read
/// again each time (a rotated file is picked up at the next connect).
async fn connect_options(tls: Option<&NatsTls>, auth: &NatsAuth) -> std::io::Result<async_nats::ConnectOptions> {
    let mut o = async_nats::ConnectOptions::new()
        .connection_timeout(ACK_TIMEOUT)
        .name("furui");
    if let Some(t) = tls {
        o = o.require_tls(true).add_root_certificates(t.server_ca.clone());
        if let Some((cert, key)) = &t.client {
            o = o.add_client_certificate(cert.clone(), key.clone());
        }
    }
    Ok(match auth {
        NatsAuth::None => o,
        NatsAuth::Password { user, password_file } => {
            o.user_and_password(user.clone(), read_secret(password_file)?.to_string())
        }
        NatsAuth::Creds(path) => o.credentials_file(path).await?,
        NatsAuth::NkeySeed(path) => o.nkey(read_secret(path)?.to_string()),
    })
}

impl Sink for NatsJetStream {
    fn kind(&self) -> &'static str {
        "nats"
    }

    fn takes_rows(&self) -> bool {
        true
    }

    fn send(&mut self, _grant: usize, view: &View) -> std::io::Result<()> {
        if self.retry_after.is_some_and(|t| Instant::now() < t) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "NATS unreachable; retrying",
            ));
        }
        let payload = serde_json::to_vec(view).map_err(io)?;
        self.publish("", payload)
    }

    /// On `<subject>.witness`, inside the recipient's stream.
    fn witness(&mut self, checkpoint: &str) -> std::io::Result<bool> {
        if self.retry_after.is_some_and(|t| Instant::now() < t) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "NATS unreachable; retrying",
            ));
        }
        self.publish(".witness", checkpoint.as_bytes().to_vec()).map(|_| true)
    }
}
