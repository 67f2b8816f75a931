use std::path::PathBuf;

use crate::classify::Class;
use crate::config::rules::compile;
use crate::craft::{FrameSpec, Transport};
use crate::parse::parse_ethernet;
use crate::select::rules::RuleSet;

/// A bundle shaped like a CTI feed's: identities, relationships, several
/// versions of one indicator, revoked and expired ones.
pub const BUNDLE: &str = r#"{
  "type": "bundle",
  "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d",
  "objects": [
    {"type": "identity", "spec_version": "2.1", "id": "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff",
     "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z", "name": "CERT", "identity_class": "organization"},
    {"type": "indicator", "spec_version": "2.1", "id": "indicator--0b6a4f1e-0000-4000-8000-000000000001",
     "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
     "name": "C2 address", "indicator_types": ["malicious-activity"],
     "pattern": "[ipv4-addr:value = '203.0.113.66']", "pattern_type": "stix", "pattern_version": "2.1",
     "valid_from": "2026-01-01T00:00:00Z"},
    {"type": "indicator", "spec_version": "2.1", "id": "indicator--0b6a4f1e-0000-4000-8000-000000000001",
     "created": "2026-01-01T00:00:00.000Z", "modified": "2026-02-01T00:00:00.000Z",
     "name": "C2 address (updated)", "indicator_types": ["malicious-activity"],
     "pattern": "[ipv4-addr:value = '203.0.113.67']", "pattern_type": "stix", "pattern_version": "2.1",
     "valid_from": "2026-01-01T00:00:00Z"},
    {"type": "indicator", "spec_version": "2.1", "id": "indicator--0b6a4f1e-0000-4000-8000-000000000002",
     "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z", "name": "C2 service",
     "pattern": "[network-traffic:dst_ref.type = 'ipv4-addr' AND network-traffic:dst_ref.value = '198.51.100.9' AND network-traffic:dst_port IN (4444, 8443) AND network-traffic:protocols[*] = 'tcp'] OR [network-traffic:src_ref.value ISSUBSET '2001:db8:bad::/48']",
     "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z", "valid_until": "2099-01-01T00:00:00Z"},
    {"type": "indicator", "spec_version": "2.1", "id": "indicator--0b6a4f1e-0000-4000-8000-000000000003",
     "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z", "revoked": true,
     "pattern": "[ipv4-addr:value = '203.0.113.99']", "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z"},
    {"type": "indicator", "spec_version": "2.1", "id": "indicator--0b6a4f1e-0000-4000-8000-000000000004",
     "created": "2020-01-01T00:00:00.000Z", "modified": "2020-01-01T00:00:00.000Z",
     "pattern": "[ipv4-addr:value = '203.0.113.98']", "pattern_type": "stix",
     "valid_from": "2020-01-01T00:00:00Z", "valid_until": "2020-06-01T00:00:00Z"},
    {"type": "indicator", "spec_version": "2.1", "id": "indicator--0b6a4f1e-0000-4000-8000-000000000005",
     "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z", "name": "Future",
     "pattern": "[ipv4-addr:value = '203.0.113.97']", "pattern_type": "stix", "valid_from": "2098-01-01T00:00:00Z"},
    {"type": "relationship", "spec_version": "2.1", "id": "relationship--44298a74-ba52-4f0c-87a3-1824e67d7fad",
     "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z", "relationship_type": "indicates",
     "source_ref": "indicator--0b6a4f1e-0000-4000-8000-000000000001", "target_ref": "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff"}
  ]
}"#;

fn load(text: &str) -> Result<RuleSet, String> {
    compile(&[(PathBuf::from("cti.json"), text.to_string())], Vec::new()).map_err(|e| e.to_string())
}

fn hits(rs: &RuleSet, class: Class, frame: &[u8]) -> Vec<String> {
    let h = parse_ethernet(frame).unwrap();
    let mut out = Vec::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    rs.matching(class, &h, &[], None, true, &mut rs.new_match_state(), now, &mut out);
    out.into_iter()
        .map(|i| rs.rules[usize::from(i)].id.to_string())
        .collect()
}

fn tcp(src: &str, dst: &str, dp: u16) -> Vec<u8> {
    FrameSpec::new(src, dst)
        .transport(Transport::Tcp {
            src_port: 40000,
            dst_port: dp,
            flags: 0x18,
        })
        .build()
}

#[test]
fn indicators_become_rules_with_their_latest_version_and_validity() {
    let rs = load(BUNDLE).unwrap();
    let ids: Vec<&str> = rs.rules.iter().map(|r| &*r.id).collect();
    assert_eq!(
        ids,
        [
            "stix:indicator--0b6a4f1e-0000-4000-8000-000000000001",
            "stix:indicator--0b6a4f1e-0000-4000-8000-000000000002",
            "stix:indicator--0b6a4f1e-0000-4000-8000-000000000002/1",
            "stix:indicator--0b6a4f1e-0000-4000-8000-000000000005",
        ]
    );
    assert_eq!(rs.rules[0].description, "C2 address (updated)");
    let c = &rs.imports.counts;
    assert_eq!(c.get("stix loaded"), Some(&3));
    assert_eq!(c.get("stix revoked"), Some(&1));
    assert_eq!(c.get("stix expired"), Some(&1));
    assert_eq!(c.get("stix not_applicable identity"), Some(&1));
    assert_eq!(c.get("stix not_applicable relationship"), Some(&1));

    let first = "stix:indicator--0b6a4f1e-0000-4000-8000-000000000001";
    assert_eq!(
        hits(&rs, Class::Inbound, &tcp("203.0.113.67", "192.0.2.1", 80)),
        [first]
    );
    assert_eq!(
        hits(&rs, Class::Outbound, &tcp("192.0.2.1", "203.0.113.67", 80)),
        [first],
        "either end"
    );
    assert!(
        hits(&rs, Class::Inbound, &tcp("203.0.113.66", "192.0.2.1", 80)).is_empty(),
        "superseded version"
    );
    let svc = "stix:indicator--0b6a4f1e-0000-4000-8000-000000000002";
    assert_eq!(
        hits(&rs, Class::Outbound, &tcp("192.0.2.1", "198.51.100.9", 8443)),
        [svc]
    );
    assert!(hits(&rs, Class::Outbound, &tcp("192.0.2.1", "198.51.100.9", 443)).is_empty());
    let udp = FrameSpec::new("192.0.2.1", "198.51.100.9")
        .transport(Transport::Udp {
            src_port: 1,
            dst_port: 4444,
        })
        .build();
    assert!(hits(&rs, Class::Outbound, &udp).is_empty(), "protocols[*] = 'tcp'");
    assert_eq!(
        hits(&rs, Class::Inbound, &tcp("2001:db8:bad::1", "2001:db8:1::1", 80)),
        [format!("{svc}/1")]
    );
    assert!(
        hits(&rs, Class::Inbound, &tcp("203.0.113.97", "192.0.2.1", 80)).is_empty(),
        "not valid yet"
    );
    // At a time inside its validity the future indicator selects.
    let f = tcp("203.0.113.97", "192.0.2.1", 80);
    let h = parse_ethernet(&f).unwrap();
    let mut out = Vec::new();
    let in_2098 = 4_070_908_800_000_000_000u64; // 2099-01-01
    rs.matching(
        Class::Inbound,
        &h,
        &[],
        None,
        true,
        &mut rs.new_match_state(),
        in_2098,
        &mut out,
    );
    assert_eq!(out.len(), 1);
}

fn indicator(id: &str, pattern: &str, extra: &str) -> String {
    format!(
        r#"{{"type": "bundle", "id": "bundle--1", "objects": [{{"type": "indicator", "spec_version": "2.1",
  "id": "{id}", "created": "2026-01-01T00:00:00Z", "modified": "2026-01-01T00:00:00Z",
  "pattern": "{pattern}", "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z"{extra}}}]}}"#
    )
}

#[test]
fn patterns_outside_the_subset_refuse_the_indicator_by_id() {
    for (pattern, keyword) in [
        ("[domain-name:value = 'evil.example']", "domain-name:value"),
        ("[file:hashes.'SHA-256' = 'aa']", "file:hashes.'SHA-256'"),
        (
            "[ipv4-addr:value = '203.0.113.1'] AND [ipv4-addr:value = '203.0.113.2']",
            "AND between observations",
        ),
        ("[ipv4-addr:value = '203.0.113.1'] WITHIN 60 SECONDS", "WITHIN"),
        ("[network-traffic:dst_port > 1024]", "operator >"),
        (
            "[ipv4-addr:value = '203.0.113.1' AND network-traffic:dst_port = 1]",
            "AND across object types",
        ),
        (
            "[network-traffic:dst_ref.type = 'ipv4-addr']",
            "network-traffic:dst_ref.type without dst_ref.value",
        ),
        (
            "[network-traffic:protocols[*] = 'http']",
            "network-traffic:protocols 'http'",
        ),
    ] {
        let e = load(&indicator("indicator--x1", pattern, "")).unwrap_err();
        let want = format!("cti.json:2:0: indicator--x1 refused: `{keyword}`");
        assert!(e.contains(&want), "{pattern}: want `{want}` in {e}");
    }
    let e = load(&indicator("indicator--x2", "[ipv4-addr:value = 'x'", "")).unwrap_err();
    assert!(e.contains("indicator--x2: pattern: expected"), "{e}");
    let e = load(&indicator("indicator--x3", "[ipv4-addr:value = '203.0.113.0/24']", "")).unwrap_err();
    assert!(e.contains("compare it with ISSUBSET"), "{e}");
    let e = load(&indicator(
        "indicator--x4",
        "[ipv4-addr:value = '203.0.113.1']",
        r#", "pattern_type": "sigma""#,
    ));
    assert!(e.is_err(), "a second pattern_type key is a JSON error or a refusal");
    let yara = load(&indicator(
        "indicator--x5",
        "[ipv4-addr:value = '203.0.113.1']",
        r#", "valid_until": "2025-01-01T00:00:00Z""#,
    ))
    .unwrap_err();
    assert!(yara.contains("not after `valid_from`"), "{yara}");
}
