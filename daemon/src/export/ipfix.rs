//! IPFIX (RFC 7011) encoding of projected records: one template per
//! (grant, address family) built from the granted fields, IANA information
//! elements where they exist, RFC 5103 reverse elements for the responder's
//! direction, and furui enterprise elements for the rest.

use std::net::IpAddr;

use super::project::{Value, View};
use crate::flow::EndReason;

/// RFC 5103's enterprise number for reverse information elements.
pub const REVERSE_PEN: u32 = 29305;
/// Enterprise number of furui's own elements. 32473 is the number RFC 5612
/// reserves for documentation and examples: a carrier replaces it with its
/// own PEN before exporting to third parties.
pub const FURUI_PEN: u32 = 32473;

/// Variable length (RFC 7011 §7).
const VARLEN: u16 = 0xffff;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ie {
    pub id: u16,
    pub len: u16,
    pub pen: Option<u32>,
}

const fn iana(id: u16, len: u16) -> Ie {
    Ie { id, len, pen: None }
}
const fn rev(id: u16, len: u16) -> Ie {
    Ie {
        id,
        len,
        pen: Some(REVERSE_PEN),
    }
}
const fn furui(id: u16, len: u16) -> Ie {
    Ie {
        id,
        len,
        pen: Some(FURUI_PEN),
    }
}

/// furui enterprise element ids (under FURUI_PEN), documented in README.
pub mod furui_ie {
    pub const MEASURE: u16 = 1;
    pub const QUEUE: u16 = 2;
    pub const INDICATOR_SET: u16 = 3;
    pub const RULES: u16 = 4;
    pub const RULESET_VERSION: u16 = 5;
    pub const JA4: u16 = 6;
    pub const JA3: u16 = 7;
    pub const KEY_EPOCH: u16 = 8;
    pub const ENCAP: u16 = 9;
    pub const TUNNEL_ID: u16 = 10;
    pub const FRAGMENTS: u16 = 11;
    pub const JA3S: u16 = 12;
    pub const HASSH: u16 = 13;
    pub const HASSH_SERVER: u16 = 14;
}

/// The elements a record field is exported as (in this order).
pub fn elements(field: &str, v6: bool) -> Vec<Ie> {
    match field {
        "first_seen_ns" => vec![iana(152, 8)], // flowStartMilliseconds
        "last_seen_ns" => vec![iana(153, 8)],  // flowEndMilliseconds
        "class" => vec![furui(furui_ie::MEASURE, VARLEN)],
        "queue" => vec![furui(furui_ie::QUEUE, 4)],
        "vlans" => vec![iana(58, 2), iana(245, 2)], // vlanId (outer), dot1qCustomerVlanId (inner)
        "encap" => vec![furui(furui_ie::ENCAP, VARLEN)],
        // unsigned64: the 32-bit id, or 2^64-1 when the flow has none.
        "tunnel_id" => vec![furui(furui_ie::TUNNEL_ID, 8)],
        "protocol" => vec![iana(4, 1)],
        "initiator" if v6 => vec![iana(27, 16)],
        "initiator" => vec![iana(8, 4)],
        "initiator_port" => vec![iana(7, 2)],
        "responder" if v6 => vec![iana(28, 16)],
        "responder" => vec![iana(12, 4)],
        "responder_port" => vec![iana(11, 2)],
        "packets_forward" => vec![iana(2, 8)], // packetDeltaCount
        "bytes_forward" => vec![iana(1, 8)],   // octetDeltaCount
        "packets_reverse" => vec![rev(2, 8)],
        "bytes_reverse" => vec![rev(1, 8)],
        "tcp_flags_forward" => vec![iana(6, 2)], // tcpControlBits
        "tcp_flags_reverse" => vec![rev(6, 2)],
        "min_ttl" => vec![iana(52, 1)],
        "max_ttl" => vec![iana(53, 1)],
        "fragments" => vec![furui(furui_ie::FRAGMENTS, 8)],
        "indicator_set" => vec![furui(furui_ie::INDICATOR_SET, VARLEN)],
        "rules" => vec![furui(furui_ie::RULES, VARLEN)],
        "ruleset_version" => vec![furui(furui_ie::RULESET_VERSION, VARLEN)],
        "ja4" => vec![furui(furui_ie::JA4, VARLEN)],
        "ja3" => vec![furui(furui_ie::JA3, VARLEN)],
        "ja3s" => vec![furui(furui_ie::JA3S, VARLEN)],
        "hassh" => vec![furui(furui_ie::HASSH, VARLEN)],
        "hassh_server" => vec![furui(furui_ie::HASSH_SERVER, VARLEN)],
        "end_reason" => vec![iana(136, 1)], // flowEndReason
        _ => Vec::new(),
    }
}

/// The template of a view's shape: its fields' elements plus the key
/// epoch and the appliance id (observationDomainName).
pub fn template_for(fields: &[&str], v6: bool) -> Vec<Ie> {
    let mut t: Vec<Ie> = fields.iter().flat_map(|f| elements(f, v6)).collect();
    t.push(furui(furui_ie::KEY_EPOCH, VARLEN));
    t.push(iana(300, VARLEN));
    t
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    if b.len() < 255 {
        out.push(b.len() as u8);
    } else {
        out.push(255);
        out.extend_from_slice(&(b.len().min(0xffff) as u16).to_be_bytes());
    }
    out.extend_from_slice(&b[..b.len().min(0xffff)]);
}

fn end_reason(e: EndReason) -> u8 {
    match e {
        EndReason::Idle => 1,     // idle timeout
        EndReason::Active => 2,   // active timeout
        EndReason::Shutdown => 4, // forced end
        EndReason::Evicted => 5,  // lack of resources
    }
}

/// Appends the data record of `view` (its template: `template_for`).
pub fn encode_record(view: &View, out: &mut Vec<u8>) {
    for (name, v) in &view.fields {
        match v {
            Value::U64(x) if name.ends_with("_ns") => out.extend_from_slice(&(x / 1_000_000).to_be_bytes()),
            Value::U64(x) => out.extend_from_slice(&x.to_be_bytes()),
            Value::U32(x) => out.extend_from_slice(&x.to_be_bytes()),
            Value::U16(x) => out.extend_from_slice(&x.to_be_bytes()),
            Value::U8(x) if name.starts_with("tcp_flags") => out.extend_from_slice(&u16::from(*x).to_be_bytes()),
            Value::U8(x) => out.push(*x),
            Value::OptU32(x) => out.extend_from_slice(&x.map_or(u64::MAX, u64::from).to_be_bytes()),
            Value::Addr(IpAddr::V4(a)) if view.is_v6() => out.extend_from_slice(&a.to_ipv6_mapped().octets()),
            Value::Addr(IpAddr::V4(a)) => out.extend_from_slice(&a.octets()),
            Value::Addr(IpAddr::V6(a)) => out.extend_from_slice(&a.octets()),
            Value::Str(s) => put_str(out, s),
            Value::List(l) => put_str(out, &l.join(",")),
            Value::OptStr(s) => put_str(out, s.as_deref().unwrap_or("")),
            Value::Vlans(v) => {
                out.extend_from_slice(&v.first().copied().unwrap_or(0).to_be_bytes());
                out.extend_from_slice(&v.get(1).copied().unwrap_or(0).to_be_bytes());
            }
            Value::End(e) => out.push(end_reason(*e)),
        }
    }
    put_str(out, &view.key_epoch);
    put_str(out, &view.appliance);
}

/// Appends a template record.
pub fn encode_template(id: u16, t: &[Ie], out: &mut Vec<u8>) {
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&(t.len() as u16).to_be_bytes());
    for ie in t {
        match ie.pen {
            None => out.extend_from_slice(&ie.id.to_be_bytes()),
            Some(_) => out.extend_from_slice(&(ie.id | 0x8000).to_be_bytes()),
        }
        out.extend_from_slice(&ie.len.to_be_bytes());
        if let Some(pen) = ie.pen {
            out.extend_from_slice(&pen.to_be_bytes());
        }
    }
}

/// Builds IPFIX messages for one exporting process and observation domain:
/// keeps the sequence number (data records sent before each message).
#[derive(Debug)]
pub struct MessageBuilder {
    pub domain: u32,
    pub sequence: u32,
}

impl MessageBuilder {
    /// One message: optional template set (id 2), then one data set.
    pub fn message(
        &mut self,
        export_time: u32,
        templates: &[(u16, &[Ie])],
        data: Option<(u16, &[u8], u32)>,
    ) -> Vec<u8> {
        let mut m = Vec::with_capacity(256);
        m.extend_from_slice(&10u16.to_be_bytes());
        m.extend_from_slice(&[0, 0]); // length, below
        m.extend_from_slice(&export_time.to_be_bytes());
        m.extend_from_slice(&self.sequence.to_be_bytes());
        m.extend_from_slice(&self.domain.to_be_bytes());
        if !templates.is_empty() {
            let start = m.len();
            m.extend_from_slice(&2u16.to_be_bytes());
            m.extend_from_slice(&[0, 0]);
            for (id, t) in templates {
                encode_template(*id, t, &mut m);
            }
            let len = (m.len() - start) as u16;
            m[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
        }
        if let Some((set_id, records, count)) = data {
            m.extend_from_slice(&set_id.to_be_bytes());
            m.extend_from_slice(&((records.len() + 4) as u16).to_be_bytes());
            m.extend_from_slice(records);
            self.sequence = self.sequence.wrapping_add(count);
        }
        let len = m.len() as u16;
        m[2..4].copy_from_slice(&len.to_be_bytes());
        m
    }
}

/// A template of one sink: its id, elements, and when it was last sent.
#[derive(Debug)]
pub struct Template {
    pub id: u16,
    pub elements: Vec<Ie>,
    pub sent: Option<std::time::Instant>,
}

/// The per-sink IPFIX state shared by the transports: templates per
/// (grant, address family) and the message sequence.
#[derive(Debug)]
pub struct Encoder {
    builder: MessageBuilder,
    templates: std::collections::BTreeMap<(usize, bool), Template>,
    fields: Vec<Vec<&'static str>>,
}

/// A message ready to write, and what to confirm once it is written.
pub struct Pending {
    pub bytes: Vec<u8>,
    key: (usize, bool),
    with_template: bool,
}

impl Encoder {
    /// `fields`: the granted fields of each grant, by grant number.
    pub fn new(fields: Vec<Vec<&'static str>>) -> Encoder {
        Encoder {
            builder: MessageBuilder { domain: 1, sequence: 0 },
            templates: Default::default(),
            fields,
        }
    }

    /// One message carrying `view`'s data record, preceded by its template
    /// when `resend` says the template is due. A view that is not exactly
    /// the fields of a grant this sink knows is refused (`InvalidInput`):
    /// it would not match the template a collector holds.
    pub fn message(
        &mut self,
        grant: usize,
        view: &View,
        resend: impl Fn(&Template) -> bool,
    ) -> std::io::Result<Pending> {
        let v6 = view.is_v6();
        let fits = |fields: &Vec<&'static str>| view.fields.iter().map(|(n, _)| *n).eq(fields.iter().copied());
        let fields = match self.fields.get(grant) {
            Some(f) if fits(f) => f,
            _ => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("a view that does not fit grant {grant}'s template"),
                ))
            }
        };
        let t = self.templates.entry((grant, v6)).or_insert_with(|| Template {
            id: 256 + (grant as u16) * 2 + u16::from(v6),
            elements: template_for(fields, v6),
            sent: None,
        });
        let with_template = resend(t);
        let mut data = Vec::with_capacity(128);
        encode_record(view, &mut data);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as u32);
        let templates: Vec<(u16, &[Ie])> = if with_template {
            vec![(t.id, t.elements.as_slice())]
        } else {
            Vec::new()
        };
        let bytes = self.builder.message(now, &templates, Some((t.id, &data, 1)));
        Ok(Pending {
            bytes,
            key: (grant, v6),
            with_template,
        })
    }

    /// The message was written: its template (if any) counts as sent.
    pub fn written(&mut self, p: &Pending) {
        if p.with_template {
            if let Some(t) = self.templates.get_mut(&p.key) {
                t.sent = Some(std::time::Instant::now());
            }
        }
    }

    /// The message was not written: the sequence number counts only data
    /// records sent.
    pub fn not_written(&mut self) {
        self.builder.sequence = self.builder.sequence.wrapping_sub(1);
    }

    /// A new transport session: every template must be sent again.
    pub fn new_session(&mut self) {
        for t in self.templates.values_mut() {
            t.sent = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deid::{AddressPolicy, CryptoPan, EpochKey};
    use crate::export::project::{project, tests as p};

    /// A message decodes by hand to the RFC 7011 layout: header, template
    /// set with enterprise bits, data set whose length matches the
    /// template's fixed and variable-length fields, sequence numbers
    /// counting data records.
    #[test]
    fn messages_follow_rfc7011() {
        let fields = ["first_seen_ns", "protocol", "initiator", "packets_reverse", "rules"];
        let g = p::grant(&fields, AddressPolicy::Pseudonymize);
        let key = EpochKey {
            epoch: "2026-11-22".into(),
            pan: CryptoPan::new(&[1; 32]),
        };
        let mut view = project(&p::record(), &g, &key, &Default::default());
        view.appliance = "tokyo-1".into();
        let t = template_for(&g.fields, view.is_v6());
        assert_eq!(t.len(), 7);
        assert_eq!((t[6].id, t[6].pen), (300, None), "observationDomainName last");
        let mut data = Vec::new();
        encode_record(&view, &mut data);
        // 8 (ms) + 1 + 4 + 8 + (1 + "r1,r2") + (1 + "2026-11-22") + (1 + "tokyo-1")
        assert_eq!(data.len(), 8 + 1 + 4 + 8 + 6 + 11 + 8);
        assert_eq!(&data[data.len() - 8..], b"\x07tokyo-1");
        assert_eq!(u64::from_be_bytes(data[..8].try_into().unwrap()), 1_700_000_000_123);
        let mut b = MessageBuilder { domain: 7, sequence: 0 };
        let m = b.message(1_800_000_000, &[(256, &t)], Some((256, &data, 1)));
        assert_eq!(u16::from_be_bytes([m[0], m[1]]), 10);
        assert_eq!(usize::from(u16::from_be_bytes([m[2], m[3]])), m.len());
        assert_eq!(
            u32::from_be_bytes(m[8..12].try_into().unwrap()),
            0,
            "first message: sequence 0"
        );
        assert_eq!(u32::from_be_bytes(m[12..16].try_into().unwrap()), 7);
        // Template set: id 2, template 256 with 7 fields; the reverse
        // element carries the enterprise bit and PEN 29305.
        assert_eq!(u16::from_be_bytes([m[16], m[17]]), 2);
        let tlen = usize::from(u16::from_be_bytes([m[18], m[19]]));
        assert_eq!(u16::from_be_bytes([m[20], m[21]]), 256);
        assert_eq!(u16::from_be_bytes([m[22], m[23]]), 7);
        assert!(
            m[20..16 + tlen].windows(6).any(|w| w == [0x80, 0x02, 0, 8, 0, 0]),
            "reverse packetDeltaCount"
        );
        let d = 16 + tlen;
        assert_eq!(u16::from_be_bytes([m[d], m[d + 1]]), 256);
        assert_eq!(usize::from(u16::from_be_bytes([m[d + 2], m[d + 3]])), data.len() + 4);
        let m2 = b.message(1_800_000_001, &[], Some((256, &data, 1)));
        assert_eq!(
            u32::from_be_bytes(m2[8..12].try_into().unwrap()),
            1,
            "one data record sent before"
        );
    }

    /// A view from a grant the sink does not have (a restart with fewer
    /// grants) or with other fields than its grant's template is refused,
    /// never a panic and never a record that mismatches its template.
    #[test]
    fn a_view_outside_the_sinks_grants_is_refused() {
        let key = EpochKey {
            epoch: "2026-11-22".into(),
            pan: CryptoPan::new(&[1; 32]),
        };
        let g = p::grant(&["protocol", "initiator"], AddressPolicy::Pseudonymize);
        let other = p::grant(&["protocol", "responder"], AddressPolicy::Pseudonymize);
        let mut enc = Encoder::new(vec![g.fields.clone()]);
        let view = project(&p::record(), &g, &key, &Default::default());
        assert!(enc.message(0, &view, |_| true).is_ok());
        let e = enc.message(1, &view, |_| true).err().expect("no grant 1");
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        let changed = project(&p::record(), &other, &key, &Default::default());
        let e = enc.message(0, &changed, |_| true).err().expect("other fields");
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    }

    #[test]
    fn every_record_field_has_an_element() {
        for f in crate::flow::MechanicalRecord::FIELDS {
            assert!(!elements(f, false).is_empty(), "{f}");
        }
    }
}
