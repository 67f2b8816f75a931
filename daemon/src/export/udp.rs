//! IPFIX over UDP (RFC 7011 §10.3): one message per record, templates sent
//! with the first record of each (grant, address family) and re-sent every
//! `template_refresh_secs`, sequence numbers counting data records.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use super::ipfix::Encoder;
use super::project::View;
use super::Sink;
use crate::config::recipients::Recipient;

pub struct IpfixUdp {
    sock: UdpSocket,
    enc: Encoder,
    refresh: Duration,
}

impl IpfixUdp {
    pub fn open(to: SocketAddr, r: &Recipient, refresh_secs: u32) -> std::io::Result<IpfixUdp> {
        let bind: SocketAddr = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }
            .parse()
            .expect("literal");
        let sock = UdpSocket::bind(bind)?;
        sock.connect(to)?;
        Ok(IpfixUdp {
            sock,
            enc: Encoder::new(r.grants.iter().map(|g| g.fields.clone()).collect()),
            refresh: Duration::from_secs(u64::from(refresh_secs)),
        })
    }
}

impl Sink for IpfixUdp {
    fn kind(&self) -> &'static str {
        "ipfix-udp"
    }

    fn send(&mut self, grant: usize, view: &View) -> std::io::Result<()> {
        let refresh = self.refresh;
        let m = self
            .enc
            .message(grant, view, |t| t.sent.is_none_or(|s| s.elapsed() >= refresh))?;
        match self.sock.send(&m.bytes) {
            Ok(_) => {
                self.enc.written(&m);
                Ok(())
            }
            Err(e) => {
                self.enc.not_written();
                Err(e)
            }
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::audit::Role;
    use crate::config::sinks::SinkKind;
    use crate::deid::{AddressPolicy, CryptoPan, EpochKey};
    use crate::export::project::{project, tests as p};

    /// What a recipient's collector receives holds the granted fields and
    /// nothing else: no address (raw or pseudonymized) when addresses are
    /// not granted, no rule id, set name, version or fingerprint.
    #[test]
    fn no_byte_outside_the_grant_is_sent() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let g = p::grant(&["protocol", "packets_forward"], AddressPolicy::Pseudonymize);
        let r = Recipient {
            name: "t".into(),
            role: Role::Analyst,
            identity: [0; 32],
            grants: vec![g.clone()],
            sinks: vec![SinkKind::IpfixUdp {
                to: rx.local_addr().unwrap(),
                template_refresh_secs: 60,
            }],
            queue_capacity: 1,
            spool_max_bytes: 0,
            witness: false,
        };
        let key = EpochKey {
            epoch: "2026-11-22".into(),
            pan: CryptoPan::new(&[3; 32]),
        };
        let mut rec = p::record();
        rec.rules = vec!["rule-never-granted".into()];
        rec.indicator_set = "set-never-granted".into();
        rec.ruleset_version = "version-never-granted".into();
        let mut sink = IpfixUdp::open(rx.local_addr().unwrap(), &r, 60).unwrap();
        let view = project(&rec, &g, &key, &Default::default());
        sink.send(0, &view).unwrap();
        let mut buf = [0u8; 2048];
        let n = rx.recv(&mut buf).unwrap();
        let bytes = &buf[..n];
        let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        assert!(has(&rec.packets_forward.to_be_bytes()), "the granted count is there");
        for a in [rec.initiator, rec.responder] {
            let std::net::IpAddr::V4(raw) = a else { unreachable!() };
            let std::net::IpAddr::V4(pseudo) = key.pan.ip(a) else {
                unreachable!()
            };
            assert!(!has(&raw.octets()), "raw address {a} sent");
            assert!(!has(&pseudo.octets()), "pseudonym of {a} sent without a grant");
        }
        for s in [
            "rule-never-granted",
            "set-never-granted",
            "version-never-granted",
            "t13d1715h2",
        ] {
            assert!(!has(s.as_bytes()), "{s} sent");
        }
        assert!(!has(&rec.bytes_forward.to_be_bytes()), "ungranted byte count sent");
    }
}
