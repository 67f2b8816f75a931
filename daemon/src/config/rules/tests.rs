use super::*;
use crate::classify::Class;
use crate::craft::{FrameSpec, Transport};
use crate::parse::parse_ethernet;
use crate::select::tls::Fingerprints;

fn load(text: &str) -> Result<RuleSet, ConfigErrors> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.toml"), text).unwrap();
    load_dir(dir.path())
}

fn ids(rs: &RuleSet, class: Class, frame: &[u8], fp: Option<&Fingerprints>) -> Vec<String> {
    let h = parse_ethernet(frame).unwrap();
    let mut out = Vec::new();
    let mut scan = rs.new_match_state();
    rs.matching(class, &h, h.payload(frame), fp, true, &mut scan, 0, &mut out);
    out.into_iter()
        .map(|i| rs.rules[usize::from(i)].id.to_string())
        .collect()
}

const RULES: &str = r#"
version = "2026-11-22.1"

[[rule]]
id = "ssh-scan"
description = "SYN-only to SSH from a listed source"
measures = ["inbound", "transit"]
remote = ["203.0.113.0/24"]
protocols = ["tcp"]
dst_ports = ["22", "2222-2230"]
tcp_flags = { mask = "SYN,ACK", value = "SYN" }

[[rule]]
id = "low-ttl-icmp"
measures = ["transit"]
protocols = ["icmp"]
icmp_type = 8
ttl = "1-5"
size = "0-100"

[[rule]]
id = "beacon"
measures = ["outbound"]
local = ["192.0.2.0/24"]
payload = [{ text = "EVIL-CMD", offset = 0, depth = 16 }, { hex = "de ad be ef" }]

[[rule]]
id = "tls-tool"
measures = ["outbound"]
ja4 = ["t13d1715h2_5b57614c22b0_3d5424432f57"]
"#;

#[test]
fn each_condition_kind_matches_and_misses() {
    let rs = load(RULES).unwrap();
    assert_eq!(&*rs.version, "2026-11-22.1");
    let syn = |sp, dp, flags| {
        FrameSpec::new("203.0.113.9", "192.0.2.1")
            .transport(Transport::Tcp {
                src_port: sp,
                dst_port: dp,
                flags,
            })
            .build()
    };
    assert_eq!(ids(&rs, Class::Inbound, &syn(4000, 22, 0x02), None), ["ssh-scan"]);
    assert_eq!(
        ids(&rs, Class::Inbound, &syn(4000, 2225, 0x02), None),
        ["ssh-scan"],
        "port range"
    );
    assert!(ids(&rs, Class::Inbound, &syn(4000, 23, 0x02), None).is_empty(), "port");
    assert!(
        ids(&rs, Class::Inbound, &syn(4000, 22, 0x12), None).is_empty(),
        "SYN+ACK fails the mask"
    );
    assert!(
        ids(&rs, Class::Outbound, &syn(4000, 22, 0x02), None).is_empty(),
        "measure"
    );
    let other = FrameSpec::new("198.51.100.9", "192.0.2.1")
        .transport(Transport::Tcp {
            src_port: 1,
            dst_port: 22,
            flags: 2,
        })
        .build();
    assert!(ids(&rs, Class::Inbound, &other, None).is_empty(), "remote set");

    let mut ping = FrameSpec::new("8.8.8.8", "9.9.9.9").transport(Transport::Icmp { icmp_type: 8, code: 0 });
    ping.ttl = 3;
    assert_eq!(ids(&rs, Class::Transit, &ping.build(), None), ["low-ttl-icmp"]);
    ping.ttl = 64;
    assert!(ids(&rs, Class::Transit, &ping.build(), None).is_empty(), "ttl range");
    let mut big = FrameSpec::new("8.8.8.8", "9.9.9.9")
        .transport(Transport::Icmp { icmp_type: 8, code: 0 })
        .payload(&[0; 200]);
    big.ttl = 3;
    assert!(ids(&rs, Class::Transit, &big.build(), None).is_empty(), "size range");
}

#[test]
fn sealed_signatures_respect_offset_and_depth() {
    let rs = load(RULES).unwrap();
    let out = |payload: &[u8]| FrameSpec::new("192.0.2.5", "203.0.113.50").payload(payload).build();
    assert_eq!(ids(&rs, Class::Outbound, &out(b"xxEVIL-CMDyy"), None), ["beacon"]);
    assert!(
        ids(&rs, Class::Outbound, &out(b"0123456789EVIL-CMD"), None).is_empty(),
        "ends beyond depth 16"
    );
    assert_eq!(
        ids(&rs, Class::Outbound, &out(&[1, 2, 0xde, 0xad, 0xbe, 0xef]), None),
        ["beacon"],
        "hex, anywhere"
    );
    assert!(ids(&rs, Class::Outbound, &out(b"harmless"), None).is_empty());
    let dbg = format!("{:?}", rs.signatures());
    assert!(!dbg.contains("EVIL") && !dbg.contains("de"), "{dbg}");
}

#[test]
fn fingerprint_conditions_need_a_fingerprint() {
    let rs = load(RULES).unwrap();
    let f = FrameSpec::new("192.0.2.5", "34.117.237.239")
        .transport(Transport::Tcp {
            src_port: 1,
            dst_port: 443,
            flags: 0x18,
        })
        .build();
    let fp = Fingerprints {
        ja4: "t13d1715h2_5b57614c22b0_3d5424432f57".into(),
        ja3: String::new(),
    };
    assert_eq!(ids(&rs, Class::Outbound, &f, Some(&fp)), ["tls-tool"]);
    assert!(ids(&rs, Class::Outbound, &f, None).is_empty());
}

#[test]
fn a_rules_file_with_mistakes_reports_each_with_its_line() {
    let bad = r#"
version = "x"

[[rule]]
id = "a b"
measures = ["sideways"]
dst_ports = ["80-70"]
tcp_flags = { mask = "SYN", value = "ACK" }

[[rule]]
id = "ok"
measures = ["inbound"]
payload = [{ hex = "zz" }]
colour = "red"

[[rule]]
id = "dup"
measures = ["inbound"]
protocols = ["sctpx"]

[[rule]]
id = "dup"
measures = []

[[rule]]
id = "cidr"
measures = ["inbound"]
remote = ["10.0.0.0/33"]
payload = [{ text = "" }]

[[rule]]
id = "everything"
measures = ["inbound"]
"#;
    let errs = load(bad).unwrap_err();
    let text = errs.to_string();
    let lines: Vec<usize> = errs.0.iter().map(|e| e.line).collect();
    // 28: invalid CIDR; 29: empty pattern; 31: a rule that matches all.
    for l in [5, 6, 7, 8, 14, 19, 22, 23, 28, 29, 31] {
        assert!(lines.contains(&l), "no error at line {l}:\n{text}");
    }
    assert!(text.contains("empty pattern would match every payload"), "{text}");
    assert!(text.contains("rule `everything` has no match condition"), "{text}");
}

#[test]
fn a_scan_rule_fires_once_a_source_passes_its_threshold() {
    let rs = load(
        "version = \"s\"\n[[rule]]\nid = \"syn-scan\"\nmeasures = [\"inbound\"]\ntcp_flags = { mask = \"SYN,ACK\", value = \"SYN\" }\nscan = { distinct = \"destinations\", more_than = 20, within_secs = 10 }\n",
    )
    .unwrap();
    let mut scan = rs.new_match_state();
    let mut fired = Vec::new();
    for i in 0..40u32 {
        let dst = std::net::Ipv4Addr::from(0xc000_0200 + i).to_string();
        let f = FrameSpec::new("203.0.113.7", &dst)
            .transport(Transport::Tcp {
                src_port: 1,
                dst_port: 22,
                flags: 2,
            })
            .build();
        let h = parse_ethernet(&f).unwrap();
        let mut out = Vec::new();
        rs.matching(
            Class::Inbound,
            &h,
            &[],
            None,
            true,
            &mut scan,
            u64::from(i) * 1_000_000,
            &mut out,
        );
        if !out.is_empty() {
            fired.push(i);
        }
    }
    let first = *fired.first().expect("the scan rule fired");
    assert!((18..=24).contains(&first), "fired at destination {first}");
    assert_eq!(fired.len(), 40 - first as usize, "and keeps firing for that source");
    let bad = load("version = \"s\"\n[[rule]]\nid = \"x\"\nmeasures = [\"inbound\"]\nscan = { distinct = \"hosts\", more_than = 0, within_secs = 10 }\n");
    assert!(bad.unwrap_err().to_string().contains("scan.distinct"));
}

/// The digest the audit trail records: the same files give the same hash,
/// any change to a rule gives another, and it holds nothing of the rules.
#[test]
fn a_ruleset_is_identified_by_the_sha256_of_its_files() {
    let a = load(RULES).unwrap();
    assert_eq!(a.sha256.len(), 64);
    assert_eq!(load(RULES).unwrap().sha256, a.sha256);
    let b = load(&RULES.replace("2222-2230", "2222-2231")).unwrap();
    assert_ne!(b.sha256, a.sha256);
    assert_eq!(RuleSet::empty().sha256, "");
}
