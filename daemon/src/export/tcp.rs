//! IPFIX over TCP (RFC 7011 §10.4): a stream of messages; every template is
//! sent once per connection, before the first data record that uses it.
//! The connection is made lazily and re-made after a failure, at most once
//! per second, so an unreachable collector costs the caller nothing but a
//! refused send (which the caller spools).

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::ipfix::Encoder;
use super::project::View;
use super::Sink;
use crate::config::export::Recipient;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const RETRY_EVERY: Duration = Duration::from_secs(1);
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

pub struct IpfixTcp {
    to: SocketAddr,
    stream: Option<TcpStream>,
    last_attempt: Option<Instant>,
    enc: Encoder,
}

impl IpfixTcp {
    pub fn open(to: SocketAddr, r: &Recipient) -> IpfixTcp {
        IpfixTcp {
            to,
            stream: None,
            last_attempt: None,
            enc: Encoder::new(r.grants.iter().map(|g| g.fields.clone()).collect()),
        }
    }

    fn connected(&mut self) -> std::io::Result<&mut TcpStream> {
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
            s.set_nodelay(true)?;
            self.enc.new_session();
            tracing::info!(collector = %self.to, "IPFIX/TCP collector connected");
            self.stream = Some(s);
        }
        Ok(self.stream.as_mut().expect("just connected"))
    }
}

impl Sink for IpfixTcp {
    fn kind(&self) -> &'static str {
        "ipfix-tcp"
    }

    fn send(&mut self, grant: usize, view: &View) -> std::io::Result<()> {
        self.connected()?;
        let m = self.enc.message(grant, view, |t| t.sent.is_none());
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
                tracing::warn!(collector = %self.to, "IPFIX/TCP collector connection lost");
                Err(e)
            }
        }
    }
}
