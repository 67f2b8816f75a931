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
