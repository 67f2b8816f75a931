//! NATS JetStream: each view is published as JSON on the recipient's own
//! subject and counts as sent only once the server acknowledges it was
//! stored. The stream is created if it does not exist. While the server is
//! unreachable, sends fail fast (one attempt per second) and the caller
//! spools.

use std::time::{Duration, Instant};

use async_nats::jetstream;

use super::project::View;
use super::Sink;

const ACK_TIMEOUT: Duration = Duration::from_secs(2);
const RETRY_EVERY: Duration = Duration::from_secs(1);

pub struct NatsJetStream {
    rt: tokio::runtime::Runtime,
    address: String,
    stream: String,
    subject: String,
    js: Option<jetstream::Context>,
    retry_after: Option<Instant>,
}

fn io(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl NatsJetStream {
    pub fn open(address: &str, stream: &str, subject: &str) -> std::io::Result<NatsJetStream> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        Ok(NatsJetStream {
            rt,
            address: address.to_string(),
            stream: stream.to_string(),
            subject: subject.to_string(),
            js: None,
            retry_after: None,
        })
    }

    fn publish(&mut self, suffix: &str, payload: Vec<u8>) -> std::io::Result<()> {
        let (address, stream, subject) = (self.address.clone(), self.stream.clone(), self.subject.clone());
        let to = format!("{subject}{suffix}");
        let existing = self.js.clone();
        let res = self.rt.block_on(async move {
            let js = match existing {
                Some(js) => js,
                None => {
                    let client = tokio::time::timeout(
                        ACK_TIMEOUT,
                        async_nats::ConnectOptions::new()
                            .connection_timeout(ACK_TIMEOUT)
                            .connect(address.as_str()),
                    )
                    .await
                    .map_err(io)?
                    .map_err(io)?;
                    let js = jetstream::new(client);
                    let prefix = subject.rsplit_once('.').map_or(subject.as_str(), |(p, _)| p);
                    js.get_or_create_stream(jetstream::stream::Config {
                        name: stream,
                        subjects: vec![format!("{prefix}.>")],
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
                self.js = Some(js);
                Ok(())
            }
            Err(e) => {
                self.retry_after = Some(Instant::now() + RETRY_EVERY);
                Err(e)
            }
        }
    }
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
