//! A record as one recipient may see it under one grant: only the granted
//! fields, in record order, with addresses de-identified, plus the key
//! epoch. A field outside the grant is never read into the view, so no
//! sink can serialize it.

use std::net::IpAddr;

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::classify::PrefixSet;
use crate::config::recipients::Grant;
use crate::deid::{export_address, EpochKey};
use crate::flow::{EndReason, MechanicalRecord};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Value {
    U64(u64),
    U32(u32),
    U16(u16),
    U8(u8),
    OptU32(Option<u32>),
    Addr(IpAddr),
    Str(String),
    List(Vec<String>),
    Vlans(Vec<u16>),
    OptStr(Option<String>),
    End(EndReason),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    /// The epoch of the pseudonymization key used (always present).
    pub key_epoch: String,
    pub fields: Vec<(&'static str, Value)>,
    /// The appliance that exported it (`[appliance] id`; "" in tests).
    pub appliance: String,
    /// Its number among the recipient's views and rows (0: none). With
    /// the appliance id it names the view (`Nats-Msg-Id`): a resend after
    /// a lost acknowledgement carries the same name.
    pub seq: u64,
}

impl View {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// True if every address in the view is IPv6 (IPFIX needs one
    /// template per family); a view without addresses counts as IPv4.
    pub fn is_v6(&self) -> bool {
        self.fields.iter().any(|(_, v)| matches!(v, Value::Addr(IpAddr::V6(_))))
    }
}

impl View {
    fn entries(&self) -> usize {
        self.fields.len()
            + usize::from(!self.key_epoch.is_empty())
            + usize::from(!self.appliance.is_empty())
            + usize::from(self.seq != 0)
    }

    /// The name a message bus de-duplicates it by: `<appliance>.<seq>`.
    pub fn message_id(&self) -> String {
        format!("{}.{}", self.appliance, self.seq)
    }

    fn serialize_entries<M: SerializeMap>(&self, m: &mut M) -> Result<(), M::Error> {
        for (name, v) in &self.fields {
            match v {
                Value::U64(x) => m.serialize_entry(name, x)?,
                Value::U32(x) => m.serialize_entry(name, x)?,
                Value::U16(x) => m.serialize_entry(name, x)?,
                Value::U8(x) => m.serialize_entry(name, x)?,
                Value::OptU32(x) => m.serialize_entry(name, x)?,
                Value::Addr(x) => m.serialize_entry(name, x)?,
                Value::Str(x) => m.serialize_entry(name, x)?,
                Value::List(x) => m.serialize_entry(name, x)?,
                Value::Vlans(x) => m.serialize_entry(name, x)?,
                Value::OptStr(x) => m.serialize_entry(name, x)?,
                Value::End(x) => m.serialize_entry(name, x)?,
            }
        }
        // Aggregate rows carry no address, hence no key epoch.
        if !self.key_epoch.is_empty() {
            m.serialize_entry("key_epoch", &self.key_epoch)?;
        }
        if !self.appliance.is_empty() {
            m.serialize_entry("appliance", &self.appliance)?;
        }
        if self.seq != 0 {
            m.serialize_entry("seq", &self.seq)?;
        }
        Ok(())
    }
}

impl Serialize for View {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.entries()))?;
        self.serialize_entries(&mut m)?;
        m.end()
    }
}

/// A view with the API's cursor as its first member.
pub struct WithCursor<'a>(pub u64, pub &'a View);

impl Serialize for WithCursor<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1 + self.1.entries()))?;
        m.serialize_entry("cursor", &self.0)?;
        self.1.serialize_entries(&mut m)?;
        m.end()
    }
}

/// Projects `r` through `grant`; `domestic` decides which addresses are
/// always pseudonymized.
pub fn project(r: &MechanicalRecord, grant: &Grant, key: &EpochKey, domestic: &PrefixSet) -> View {
    let addr = |a: IpAddr| Value::Addr(export_address(key, a, domestic.contains(a), grant.addresses));
    let fields = grant
        .fields
        .iter()
        .map(|f| {
            let v = match *f {
                "first_seen_ns" => Value::U64(r.first_seen_ns),
                "last_seen_ns" => Value::U64(r.last_seen_ns),
                "class" => Value::Str(r.class.name().to_string()),
                "queue" => Value::U32(r.queue),
                "vlans" => Value::Vlans(r.vlans.clone()),
                "encap" => Value::Str(r.encap.clone()),
                "tunnel_id" => Value::OptU32(r.tunnel_id),
                "protocol" => Value::U8(r.protocol),
                "initiator" => addr(r.initiator),
                "initiator_port" => Value::U16(r.initiator_port),
                "responder" => addr(r.responder),
                "responder_port" => Value::U16(r.responder_port),
                "packets_forward" => Value::U64(r.packets_forward),
                "bytes_forward" => Value::U64(r.bytes_forward),
                "packets_reverse" => Value::U64(r.packets_reverse),
                "bytes_reverse" => Value::U64(r.bytes_reverse),
                "tcp_flags_forward" => Value::U8(r.tcp_flags_forward),
                "tcp_flags_reverse" => Value::U8(r.tcp_flags_reverse),
                "min_ttl" => Value::U8(r.min_ttl),
                "max_ttl" => Value::U8(r.max_ttl),
                "fragments" => Value::U64(r.fragments),
                "indicator_set" => Value::Str(r.indicator_set.clone()),
                "rules" => Value::List(r.rules.clone()),
                "ruleset_version" => Value::Str(r.ruleset_version.clone()),
                "ja4" => Value::OptStr(r.ja4.clone()),
                "ja3" => Value::OptStr(r.ja3.clone()),
                "ja3s" => Value::OptStr(r.ja3s.clone()),
                "hassh" => Value::OptStr(r.hassh.clone()),
                "hassh_server" => Value::OptStr(r.hassh_server.clone()),
                "end_reason" => Value::End(r.end_reason),
                // Grants are validated against MechanicalRecord::FIELDS;
                // a name added there must be added here (a test checks).
                _ => Value::OptStr(None),
            };
            (*f, v)
        })
        .collect();
    View {
        key_epoch: key.epoch.clone(),
        fields,
        ..View::default()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::classify::{Class, Measure};
    use crate::deid::{AddressPolicy, CryptoPan};
    use std::collections::BTreeSet;

    pub(crate) fn record() -> MechanicalRecord {
        MechanicalRecord {
            first_seen_ns: 1_700_000_000_123_000_000,
            last_seen_ns: 1_700_000_001_456_000_000,
            class: Class::Inbound,
            queue: 0,
            vlans: vec![100],
            encap: String::new(),
            tunnel_id: None,
            fragments: 0,
            protocol: 6,
            initiator: "203.0.113.5".parse().unwrap(),
            initiator_port: 4444,
            responder: "192.0.2.10".parse().unwrap(),
            responder_port: 80,
            packets_forward: 10,
            bytes_forward: 820,
            packets_reverse: 4,
            bytes_reverse: 408,
            tcp_flags_forward: 0x1b,
            tcp_flags_reverse: 0x12,
            min_ttl: 60,
            max_ttl: 64,
            indicator_set: "c2".into(),
            rules: vec!["r1".into(), "r2".into()],
            ruleset_version: "v9".into(),
            ja4: Some("t13d1715h2_5b57614c22b0_3d5424432f57".into()),
            ja3: None,
            ja3s: None,
            hassh: Some("0df0d56bb50c6b2426d8d40234bf1826".into()),
            hassh_server: None,
            end_reason: EndReason::Idle,
        }
    }

    pub(crate) fn grant(fields: &[&'static str], addresses: AddressPolicy) -> Grant {
        Grant {
            aggregate: false,
            measures: BTreeSet::from([Measure::Inbound]),
            fields: fields.to_vec(),
            purpose: "damage-prevention".into(),
            consent: None,
            addresses,
        }
    }

    fn key() -> EpochKey {
        EpochKey {
            epoch: "2026-11-22".into(),
            pan: CryptoPan::new(&[9; 32]),
        }
    }

    #[test]
    fn every_record_field_projects() {
        let all = grant(MechanicalRecord::FIELDS, AddressPolicy::Pseudonymize);
        let v = project(&record(), &all, &key(), &PrefixSet::default());
        assert_eq!(v.fields.len(), MechanicalRecord::FIELDS.len());
        assert!(
            v.fields
                .iter()
                .all(|(n, v)| *v != Value::OptStr(None) || ["ja3", "ja3s", "hassh_server"].contains(n)),
            "{v:?}"
        );
    }

    /// Only granted fields are serialized; every address is de-identified;
    /// the domestic one is pseudonymized even under a truncation grant.
    #[test]
    fn only_granted_fields_and_no_raw_address_leave() {
        let mut domestic = PrefixSet::default();
        domestic.insert("192.0.2.0/24".parse().unwrap());
        let g = grant(
            &["initiator", "responder", "rules"],
            AddressPolicy::Truncate { v4: 24, v6: 48 },
        );
        let v = project(&record(), &g, &key(), &domestic);
        let json = serde_json::to_string(&v).unwrap();
        let obj: serde_json::Value = serde_json::from_str(&json).unwrap();
        let mut keys: Vec<_> = obj.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, ["initiator", "key_epoch", "responder", "rules"]);
        assert_eq!(obj["initiator"], "203.0.113.0", "foreign: truncated as granted");
        assert_ne!(obj["responder"], "192.0.2.10");
        assert!(
            !obj["responder"].as_str().unwrap().starts_with("192.0.2."),
            "domestic: pseudonymized"
        );
        assert_eq!(obj["key_epoch"], "2026-11-22");
        for absent in ["4444", "t13d", "c2", "v9"] {
            assert!(!json.contains(absent), "{absent} leaked: {json}");
        }
    }

    /// A named view carries its appliance and sequence number after the
    /// key epoch; the message id joins them.
    #[test]
    fn named_views_say_where_they_come_from() {
        let g = grant(&["protocol"], AddressPolicy::Pseudonymize);
        let mut v = project(&record(), &g, &key(), &PrefixSet::default());
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"protocol":6,"key_epoch":"2026-11-22"}"#
        );
        v.appliance = "tokyo-1".into();
        v.seq = 1_764_900_000_000_000_001;
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"protocol":6,"key_epoch":"2026-11-22","appliance":"tokyo-1","seq":1764900000000000001}"#
        );
        assert_eq!(v.message_id(), "tokyo-1.1764900000000000001");
    }
}
