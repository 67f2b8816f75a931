use std::path::PathBuf;

use crate::classify::Class;
use crate::config::rules::compile;
use crate::craft::{FrameSpec, Transport};
use crate::parse::parse_ethernet;
use crate::select::rules::RuleSet;
use crate::select::tls::Fingerprints;

/// The columns of MISP's CSV export (restSearch returnFormat csv).
const CSV: &str = "uuid,event_id,category,type,value,comment,to_ids,date,object_relation,attribute_tag,object_uuid,object_name,object_meta_category
\"5f1a0000-0000-4000-8000-000000000001\",1207,\"Network activity\",\"ip-src\",\"203.0.113.66\",\"scanner, seen twice\",1,1700000000,\"\",\"\",\"\",\"\",\"\"
\"5f1a0000-0000-4000-8000-000000000002\",1207,\"Network activity\",\"ip-dst|port\",\"198.51.100.9|4444\",\"C2\",1,1700000000,\"\",\"\",\"\",\"\",\"\"
\"5f1a0000-0000-4000-8000-000000000003\",1207,\"Network activity\",\"ip-dst\",\"198.51.100.10\",\"only context\",0,1700000000,\"\",\"\",\"\",\"\",\"\"
\"5f1a0000-0000-4000-8000-000000000004\",1207,\"Network activity\",\"domain\",\"evil.example\",\"\",1,1700000000,\"\",\"\",\"\",\"\",\"\"
\"5f1a0000-0000-4000-8000-000000000005\",1207,\"Network activity\",\"ja3-fingerprint-md5\",\"E7ECA2BAF4458D095B7F45DA28C16C34\",\"\",1,1700000000,\"\",\"\",\"\",\"\",\"\"
\"5f1a0000-0000-4000-8000-000000000006\",1207,\"Network activity\",\"port\",\"6667\",\"\",1,1700000000,\"\",\"\",\"\",\"\",\"\"
";

const EVENT: &str = r#"{"Event": {
  "uuid": "5e6f0000-0000-4000-8000-00000000e001", "info": "Scanning campaign", "timestamp": "1700000000",
  "Attribute": [
    {"uuid": "a1", "type": "ip-src|port", "value": "2001:db8::66|1337", "to_ids": true},
    {"uuid": "a2", "type": "ip-src", "value": "203.0.113.0/28", "to_ids": true},
    {"uuid": "a3", "type": "sha256", "value": "00", "to_ids": true}
  ],
  "Object": [{"name": "ip-port", "Attribute": [
    {"uuid": "a4", "type": "ip-dst", "value": "198.51.100.77", "to_ids": true},
    {"uuid": "a5", "type": "ip-dst", "value": "198.51.100.78", "to_ids": false}
  ]}]
}}"#;

fn load(name: &str, text: &str) -> RuleSet {
    compile(&[(PathBuf::from(name), text.to_string())], Vec::new()).unwrap()
}

fn hits(rs: &RuleSet, class: Class, frame: &[u8], fp: Option<&Fingerprints>) -> Vec<String> {
    let h = parse_ethernet(frame).unwrap();
    let mut out = Vec::new();
    rs.matching(class, &h, &[], fp, true, &mut rs.new_match_state(), 0, &mut out);
    out.into_iter()
        .map(|i| rs.rules[usize::from(i)].id.to_string())
        .collect()
}

fn tcp(src: &str, dst: &str, sp: u16, dp: u16) -> Vec<u8> {
    FrameSpec::new(src, dst)
        .transport(Transport::Tcp {
            src_port: sp,
            dst_port: dp,
            flags: 0x18,
        })
        .build()
}

#[test]
fn a_csv_feed_groups_attributes_by_type_and_counts_the_rest() {
    let rs = load("cert-feed.csv", CSV);
    let ids: Vec<&str> = rs.rules.iter().map(|r| &*r.id).collect();
    assert_eq!(
        ids,
        [
            "misp:cert-feed:ip-src",
            "misp:cert-feed:ip-dst|port:4444",
            "misp:cert-feed:port",
            "misp:cert-feed:ja3"
        ]
    );
    let c = &rs.imports.counts;
    assert_eq!(c.get("misp loaded"), Some(&4));
    assert_eq!(c.get("misp skipped to_ids=false"), Some(&1));
    assert_eq!(c.get("misp not_applicable domain"), Some(&1));
    assert!(rs.version.starts_with("cert-feed.csv@"));

    assert_eq!(
        hits(&rs, Class::Inbound, &tcp("203.0.113.66", "192.0.2.1", 1, 80), None),
        ["misp:cert-feed:ip-src"]
    );
    assert_eq!(
        hits(
            &rs,
            Class::Outbound,
            &tcp("192.0.2.1", "198.51.100.9", 50000, 4444),
            None
        ),
        ["misp:cert-feed:ip-dst|port:4444"]
    );
    assert!(hits(
        &rs,
        Class::Outbound,
        &tcp("192.0.2.1", "198.51.100.9", 50000, 4445),
        None
    )
    .is_empty());
    assert!(
        hits(
            &rs,
            Class::Outbound,
            &tcp("192.0.2.1", "198.51.100.10", 50000, 80),
            None
        )
        .is_empty(),
        "to_ids = 0 is not selected"
    );
    assert_eq!(
        hits(&rs, Class::Outbound, &tcp("192.0.2.1", "198.51.100.1", 1, 6667), None),
        ["misp:cert-feed:port"]
    );
    let fp = Fingerprints {
        ja3: "e7eca2baf4458d095b7f45da28c16c34".into(),
        ja4: String::new(),
    };
    assert_eq!(
        hits(
            &rs,
            Class::Outbound,
            &tcp("192.0.2.1", "198.51.100.1", 1, 443),
            Some(&fp)
        ),
        ["misp:cert-feed:ja3"]
    );
}

#[test]
fn a_json_event_reads_attributes_and_object_attributes() {
    let rs = load("event.json", EVENT);
    let ids: Vec<&str> = rs.rules.iter().map(|r| &*r.id).collect();
    let ev = "misp:5e6f0000-0000-4000-8000-00000000e001";
    assert_eq!(
        ids,
        [
            format!("{ev}:ip-src"),
            format!("{ev}:ip-dst"),
            format!("{ev}:ip-src|port:1337")
        ]
    );
    assert!(rs.rules[0]
        .description
        .starts_with("MISP event 5e6f0000-0000-4000-8000-00000000e001: Scanning campaign"));
    assert_eq!(rs.imports.counts.get("misp skipped to_ids=false"), Some(&1));
    assert_eq!(rs.imports.counts.get("misp not_applicable sha256"), Some(&1));
    assert_eq!(
        hits(&rs, Class::Inbound, &tcp("203.0.113.15", "192.0.2.1", 1, 80), None),
        [format!("{ev}:ip-src")]
    );
    assert!(
        hits(&rs, Class::Inbound, &tcp("203.0.113.16", "192.0.2.1", 1, 80), None).is_empty(),
        "/28"
    );
    assert_eq!(
        hits(
            &rs,
            Class::Inbound,
            &tcp("2001:db8::66", "2001:db8:1::1", 1337, 22),
            None
        ),
        [format!("{ev}:ip-src|port:1337")]
    );
    // A restSearch response wraps events in a list.
    let wrapped = format!("{{\"response\": [{EVENT}]}}");
    assert_eq!(load("search.json", &wrapped).rules.len(), 3);
}

#[test]
fn bad_values_are_errors_and_hassh_values_are_rules() {
    let csv = "type,value,to_ids\nip-src,203.0.113.999,1\nip-dst|port,198.51.100.1,1\nhassh-md5,ec7378c1a92f5a8dde7e8b7a1ddf33d,1\n";
    let e = compile(&[(PathBuf::from("bad.csv"), csv.into())], Vec::new())
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad.csv:2:0: ip-src attribute: `203.0.113.999`"), "{e}");
    assert!(
        e.contains("bad.csv:3:0: ip-dst|port attribute `198.51.100.1` is not ADDRESS|PORT"),
        "{e}"
    );
    assert!(
        e.contains("bad.csv:4:0: hassh-md5 `ec7378c1a92f5a8dde7e8b7a1ddf33d` is not 32 hex digits"),
        "{e}"
    );
    let ok =
        "type,value\nhassh-md5,EC7378C1A92F5A8DDE7E8B7A1DDF33D1\nhasshserver-md5,b12d2871a1189eff20364cf5333619ee\n";
    let rs = load("ssh.csv", ok);
    assert_eq!(
        rs.rules.iter().map(|r| &*r.id).collect::<Vec<_>>(),
        ["misp:ssh:hassh", "misp:ssh:hassh-server"]
    );
    let f = tcp("203.0.113.5", "192.0.2.1", 40000, 22);
    let h = parse_ethernet(&f).unwrap();
    let prints = crate::flow::Prints {
        hassh: Some("ec7378c1a92f5a8dde7e8b7a1ddf33d1"),
        ..Default::default()
    };
    let mut out = Vec::new();
    rs.matching(
        Class::Inbound,
        &h,
        &[],
        prints,
        true,
        &mut rs.new_match_state(),
        0,
        &mut out,
    );
    assert_eq!(out, [0]);
    let e = compile(&[(PathBuf::from("x.json"), "{\"type\": \"other\"}".into())], Vec::new())
        .unwrap_err()
        .to_string();
    assert!(e.contains("must be a MISP event"), "{e}");
    let e = compile(&[(PathBuf::from("y.json"), "{\n\"Event\": ".into())], Vec::new())
        .unwrap_err()
        .to_string();
    assert!(e.contains("y.json:2:0: not JSON"), "{e}");
}
