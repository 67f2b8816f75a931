//! IPFIX over UDP (RFC 7011 §10.3): one message per record, templates sent
//! with the first record of each (grant, address family) and re-sent every
//! `template_refresh_secs`, sequence numbers counting data records.

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use super::ipfix::{encode_record, template_for, Ie, MessageBuilder};
use super::project::View;
use super::Sink;
use crate::config::export::Recipient;

/// A template: its id, elements, and when it was last sent.
struct Template {
    id: u16,
    elements: Vec<Ie>,
    sent: Option<Instant>,
}

pub struct IpfixUdp {
    sock: UdpSocket,
    builder: MessageBuilder,
    /// Template per (grant, is_v6), with when it was last sent.
    templates: BTreeMap<(usize, bool), Template>,
    refresh: Duration,
    fields: Vec<Vec<&'static str>>,
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
            builder: MessageBuilder { domain: 1, sequence: 0 },
            templates: BTreeMap::new(),
            refresh: Duration::from_secs(u64::from(refresh_secs)),
            fields: r.grants.iter().map(|g| g.fields.clone()).collect(),
        })
    }
}

impl Sink for IpfixUdp {
    fn kind(&self) -> &'static str {
        "ipfix-udp"
    }

    fn send(&mut self, grant: usize, view: &View) -> std::io::Result<()> {
        let v6 = view.is_v6();
        let fields = &self.fields[grant];
        let t = self.templates.entry((grant, v6)).or_insert_with(|| Template {
            id: 256 + (grant as u16) * 2 + u16::from(v6),
            elements: template_for(fields, v6),
            sent: None,
        });
        let due = t.sent.is_none_or(|s| s.elapsed() >= self.refresh);
        let mut data = Vec::with_capacity(128);
        encode_record(view, &mut data);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as u32);
        let templates: Vec<(u16, &[Ie])> = if due {
            vec![(t.id, t.elements.as_slice())]
        } else {
            Vec::new()
        };
        let msg = self.builder.message(now, &templates, Some((t.id, &data, 1)));
        if let Err(e) = self.sock.send(&msg) {
            // Not sent: the sequence number counts only records sent.
            self.builder.sequence = self.builder.sequence.wrapping_sub(1);
            return Err(e);
        }
        if due {
            t.sent = Some(Instant::now());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::export::{Role, SinkKind};
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
