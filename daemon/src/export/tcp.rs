//! IPFIX over TCP (RFC 7011 §10.4), optionally inside TLS (§10.4 with
//! RFC 7011 §11's TLS: furui presents its client certificate and verifies
//! the collector's): a stream of messages; every template is sent once per
//! connection, before the first data record that uses it.
//! The connection is made lazily and re-made after a failure, at most once
//! per second, so an unreachable collector costs the caller nothing but a
//! refused send (which the caller spools).

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_rustls::rustls;

use super::ipfix::Encoder;
use super::project::View;
use super::Sink;
use crate::config::recipients::Recipient;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const RETRY_EVERY: Duration = Duration::from_secs(1);
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
const VERDICT_WAIT: Duration = Duration::from_millis(500);

/// TLS for the collector connection: whom to trust, what name to
/// verify, and furui's own certificate.
#[derive(Clone)]
pub struct TlsClient {
    pub config: Arc<rustls::ClientConfig>,
    pub server_name: rustls::pki_types::ServerName<'static>,
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.write_all(b),
            Stream::Tls(s) => s.write_all(b).and_then(|_| s.flush()),
        }
    }
}

pub struct IpfixTcp {
    to: SocketAddr,
    tls: Option<TlsClient>,
    stream: Option<Stream>,
    last_attempt: Option<Instant>,
    enc: Encoder,
}

impl IpfixTcp {
    pub fn open(to: SocketAddr, r: &Recipient, tls: Option<TlsClient>) -> IpfixTcp {
        IpfixTcp {
            to,
            tls,
            stream: None,
            last_attempt: None,
            enc: Encoder::new(r.grants.iter().map(|g| g.fields.clone()).collect()),
        }
    }

    fn connected(&mut self) -> std::io::Result<&mut Stream> {
        if self.stream.is_none() {
            if self.last_attempt.is_some_and(|t| t.elapsed() < RETRY_EVERY) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::NotConnected,
                    "collector unreachable; retrying",
                ));
            }
            self.last_attempt = Some(Instant::now());
            let s = TcpStream::connect_timeout(&self.to, CONNECT_TIMEOUT)?;
            s.set_write_timeout(Some(WRITE_TIMEOUT))?;
            s.set_read_timeout(Some(WRITE_TIMEOUT))?;
            s.set_nodelay(true)?;
            let stream = match &self.tls {
                None => Stream::Plain(s),
                Some(t) => {
                    let conn = rustls::ClientConnection::new(t.config.clone(), t.server_name.clone())
                        .map_err(std::io::Error::other)?;
                    let mut tls = rustls::StreamOwned::new(conn, s);
                    while tls.conn.is_handshaking() {
                        tls.conn.complete_io(&mut tls.sock)?;
                    }
                    // TLS 1.3 tells a client that its certificate was
                    // refused only after the client's side of the
                    // handshake is done: wait briefly for the collector's
                    // verdict (an alert, or its session tickets) before
                    // counting anything as sent.
                    use std::io::Read;
                    tls.sock.set_read_timeout(Some(VERDICT_WAIT))?;
                    let mut probe = [0u8; 1];
                    match tls.read(&mut probe) {
                        Ok(0) => {
                            return Err(std::io::Error::new(
                                std::io::ErrorKind::ConnectionAborted,
                                "collector closed the TLS session",
                            ))
                        }
                        Ok(_) => {}
                        Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                        }
                        Err(e) => return Err(e),
                    }
                    tls.sock.set_read_timeout(Some(WRITE_TIMEOUT))?;
                    Stream::Tls(Box::new(tls))
                }
            };
            self.enc.new_session();
            tracing::info!(collector = %self.to, tls = self.tls.is_some(), "IPFIX collector connected");
            self.stream = Some(stream);
        }
        Ok(self.stream.as_mut().expect("just connected"))
    }
}

impl Sink for IpfixTcp {
    fn kind(&self) -> &'static str {
        if self.tls.is_some() {
            "ipfix-tls"
        } else {
            "ipfix-tcp"
        }
    }

    fn send(&mut self, grant: usize, view: &View) -> std::io::Result<()> {
        self.connected()?;
        let m = self.enc.message(grant, view, |t| t.sent.is_none())?;
        let res = self.stream.as_mut().expect("connected").write_all(&m.bytes);
        match res {
            Ok(()) => {
                self.enc.written(&m);
                Ok(())
            }
            Err(e) => {
                // A partial write leaves the stream unusable: start over
                // (templates again) on a new connection.
                self.enc.not_written();
                self.stream = None;
                tracing::warn!(collector = %self.to, "IPFIX collector connection lost");
                Err(e)
            }
        }
    }
}
