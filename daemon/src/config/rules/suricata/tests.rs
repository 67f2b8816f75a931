use std::path::PathBuf;

use crate::classify::Class;
use crate::config::rules::compile_with;
use crate::config::rules::import::ImportOptions;
use crate::craft::{FrameSpec, Transport};
use crate::parse::parse_ethernet;
use crate::select::rules::RuleSet;
use crate::select::tls::Fingerprints;

fn load_with(text: &str, opts: &ImportOptions) -> Result<RuleSet, String> {
    compile_with(&[(PathBuf::from("feed.rules"), text.to_string())], Vec::new(), opts).map_err(|e| e.to_string())
}

fn load(text: &str) -> Result<RuleSet, String> {
    load_with(text, &ImportOptions::default())
}

/// Rule ids a frame matches, for a packet of `class` from the initiator
/// (or not).
fn hits(rs: &RuleSet, class: Class, frame: &[u8], from_initiator: bool, fp: Option<&Fingerprints>) -> Vec<String> {
    let h = parse_ethernet(frame).unwrap();
    let mut out = Vec::new();
    let mut st = rs.new_match_state();
    rs.matching(class, &h, h.payload(frame), fp, from_initiator, &mut st, 0, &mut out);
    out.into_iter()
        .map(|i| rs.rules[usize::from(i)].id.to_string())
        .collect()
}

fn tcp(src: &str, dst: &str, sp: u16, dp: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    FrameSpec::new(src, dst)
        .transport(Transport::Tcp {
            src_port: sp,
            dst_port: dp,
            flags,
        })
        .payload(payload)
        .build()
}

const FEED: &str = r#"
# A feed shaped like the public rulesets: comments, continuation lines,
# metadata and references.
alert tcp $EXTERNAL_NET any -> $HOME_NET $SSH_PORTS (msg:"ET SCAN Potential SSH Scan"; \
    flow:to_server; flags:S,12; classtype:attempted-recon; \
    reference:url,en.wikipedia.org/wiki/Brute_force_attack; sid:2001219; rev:20; \
    metadata:created_at 2010_07_30, updated_at 2019_07_26;)
alert udp [203.0.113.0/24,!203.0.113.128/25] any -> any [53,5353] (msg:"C2 beacon"; content:"BEACON|3a|"; nocase; offset:0; depth:16; content:"|de ad|"; sid:9000001; rev:1;)
#alert tcp any any -> any any (msg:"disabled"; sid:9000002;)
alert icmp $EXTERNAL_NET any -> $HOME_NET any (msg:"low-TTL echo"; itype:8; ttl:<6; sid:9000003;)
alert tcp any any <> 198.51.100.7 1024: (msg:"both ways"; dsize:>10; sid:9000004;)
pass tcp 203.0.113.5 any -> $HOME_NET 22 (msg:"our scanner"; sid:9000005;)
alert tcp $EXTERNAL_NET any -> $HOME_NET any (msg:"known tool"; ja3.hash; content:"E7ECA2BAF4458D095B7F45DA28C16C34"; sid:9000006;)
alert tcp any any -> $HOME_NET 443 (msg:"many hits"; detection_filter:track by_src, count 2, seconds 60; sid:9000007;)
alert tcp $EXTERNAL_NET any -> $HOME_NET 22 (msg:"brute-force tool"; ssh.hassh; content:"0DF0D56BB50C6B2426D8D40234BF1826"; ssh.hassh.server; content:"b003da101c8caf37ce9e3ca3cd9d049b"; sid:9000008;)
alert tcp $HOME_NET 443 -> $EXTERNAL_NET any (msg:"odd server"; flow:to_client; ja3s.hash; content:"ae4edc6faf64d08308082ad26be60767"; sid:9000009;)
"#;

#[test]
fn a_feed_compiles_with_its_ids_descriptions_and_version() {
    let rs = load(FEED).unwrap();
    let ids: Vec<&str> = rs.rules.iter().map(|r| &*r.id).collect();
    assert_eq!(
        ids,
        [
            "sid:2001219",
            "sid:9000001",
            "sid:9000003",
            "sid:9000004",
            "sid:9000005",
            "sid:9000006",
            "sid:9000007",
            "sid:9000008",
            "sid:9000009"
        ]
    );
    assert_eq!(
        rs.rules[0].description,
        "ET SCAN Potential SSH Scan [attempted-recon] (rev 20)"
    );
    assert!(rs.version.starts_with("feed.rules@"), "{}", rs.version);
    assert_eq!(rs.version.len(), "feed.rules@".len() + 12);
    assert_eq!(rs.imports.counts.get("suricata loaded"), Some(&9));
    assert!(rs.imports.refusals.is_empty());
}

#[test]
fn header_addresses_ports_variables_and_direction_are_honoured() {
    let rs = load(FEED).unwrap();
    let syn = tcp("203.0.113.9", "192.0.2.1", 40000, 22, 0x02, b"");
    assert_eq!(hits(&rs, Class::Inbound, &syn, true, None), ["sid:2001219"]);
    // SYN with ECN bits: `,12` ignores CWR and ECE.
    let syn_ecn = tcp("203.0.113.9", "192.0.2.1", 40000, 22, 0xc2, b"");
    assert_eq!(hits(&rs, Class::Inbound, &syn_ecn, true, None), ["sid:2001219"]);
    // SYN+ACK: not exactly S.
    let synack = tcp("203.0.113.9", "192.0.2.1", 40000, 22, 0x12, b"");
    assert!(hits(&rs, Class::Inbound, &synack, true, None).is_empty());
    // From the responder: flow:to_server fails.
    assert!(hits(&rs, Class::Inbound, &syn, false, None).is_empty());
    // $HOME_NET is the domestic side: a transit packet has none.
    assert!(hits(&rs, Class::Transit, &syn, true, None).is_empty());

    // Address list with a negated part, port list, two contents (all needed).
    let beacon = |src: &str, dp: u16, p: &[u8]| {
        FrameSpec::new(src, "192.0.2.1")
            .transport(Transport::Udp {
                src_port: 4000,
                dst_port: dp,
            })
            .payload(p)
            .build()
    };
    let both = b"beacon:id=1 \xde\xad";
    assert_eq!(
        hits(&rs, Class::Inbound, &beacon("203.0.113.9", 5353, both), true, None),
        ["sid:9000001"]
    );
    assert!(
        hits(&rs, Class::Inbound, &beacon("203.0.113.200", 53, both), true, None).is_empty(),
        "the negated half of the /24"
    );
    assert!(
        hits(&rs, Class::Inbound, &beacon("203.0.113.9", 54, both), true, None).is_empty(),
        "port list"
    );
    assert!(
        hits(
            &rs,
            Class::Inbound,
            &beacon("203.0.113.9", 53, b"beacon:id=1"),
            true,
            None
        )
        .is_empty(),
        "one content of two"
    );
    assert!(
        hits(
            &rs,
            Class::Inbound,
            &beacon("203.0.113.9", 53, b"xxxxxxxxxxxxxxxxbeacon: \xde\xad"),
            true,
            None
        )
        .is_empty(),
        "depth 16"
    );

    // ICMP type and TTL comparison.
    let echo = |ttl: u8| {
        let mut f = FrameSpec::new("203.0.113.9", "192.0.2.1").transport(Transport::Icmp { icmp_type: 8, code: 0 });
        f.ttl = ttl;
        f.build()
    };
    assert_eq!(hits(&rs, Class::Inbound, &echo(5), true, None), ["sid:9000003"]);
    assert!(hits(&rs, Class::Inbound, &echo(6), true, None).is_empty());

    // <> matches either direction; dsize is the payload length.
    let to = tcp("203.0.113.9", "198.51.100.7", 40000, 8080, 0x18, b"0123456789A");
    let back = tcp("198.51.100.7", "203.0.113.9", 8080, 40000, 0x18, b"0123456789A");
    assert_eq!(hits(&rs, Class::Transit, &to, true, None), ["sid:9000004"]);
    assert_eq!(hits(&rs, Class::Transit, &back, false, None), ["sid:9000004"]);
    let short = tcp("203.0.113.9", "198.51.100.7", 40000, 8080, 0x18, b"0123456789");
    assert!(hits(&rs, Class::Transit, &short, true, None).is_empty(), "dsize:>10");
}

#[test]
fn pass_rules_except_and_fingerprints_and_counts_select() {
    let rs = load(FEED).unwrap();
    // The pass rule hides the scan rule's match for the listed scanner.
    let ours = tcp("203.0.113.5", "192.0.2.1", 40000, 22, 0x02, b"");
    assert!(hits(&rs, Class::Inbound, &ours, true, None).is_empty());

    let fp = Fingerprints {
        ja3: "e7eca2baf4458d095b7f45da28c16c34".into(),
        ja4: "t13d1516h2_8daaf6152771_02713d6af862".into(),
    };
    let hello = tcp("203.0.113.9", "192.0.2.1", 40000, 8443, 0x18, b"x");
    assert_eq!(hits(&rs, Class::Inbound, &hello, true, Some(&fp)), ["sid:9000006"]);
    assert!(hits(&rs, Class::Inbound, &hello, true, None).is_empty());

    // HASSH and hasshServer both needed; JA3S from the responder.
    let ssh = tcp("203.0.113.9", "192.0.2.1", 40000, 22, 0x18, b"");
    let both = crate::flow::Prints {
        hassh: Some("0df0d56bb50c6b2426d8d40234bf1826"),
        hassh_server: Some("b003da101c8caf37ce9e3ca3cd9d049b"),
        ..Default::default()
    };
    let one = crate::flow::Prints {
        hassh_server: None,
        ..both
    };
    let sel = |p: crate::flow::Prints<'_>| {
        let h = parse_ethernet(&ssh).unwrap();
        let mut out = Vec::new();
        rs.matching(Class::Inbound, &h, &[], p, true, &mut rs.new_match_state(), 0, &mut out);
        out.into_iter()
            .map(|i| rs.rules[usize::from(i)].id.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(sel(both), ["sid:9000008"]);
    assert!(sel(one).is_empty());
    let reply = tcp("192.0.2.1", "203.0.113.9", 443, 40000, 0x18, b"");
    let h = parse_ethernet(&reply).unwrap();
    let mut out = Vec::new();
    let ja3s = crate::flow::Prints {
        ja3s: Some("ae4edc6faf64d08308082ad26be60767"),
        ..Default::default()
    };
    rs.matching(
        Class::Outbound,
        &h,
        &[],
        ja3s,
        false,
        &mut rs.new_match_state(),
        0,
        &mut out,
    );
    assert_eq!(out.len(), 1);

    // detection_filter count 2: the third packet from a source selects.
    let h = tcp("203.0.113.9", "192.0.2.1", 40000, 443, 0x18, b"");
    let parsed = parse_ethernet(&h).unwrap();
    let mut st = rs.new_match_state();
    let fired: Vec<bool> = (0..4u64)
        .map(|i| {
            let mut out = Vec::new();
            rs.matching(Class::Inbound, &parsed, &[], None, true, &mut st, i, &mut out);
            !out.is_empty()
        })
        .collect();
    assert_eq!(fired, [false, false, true, true]);
}

#[test]
fn unsupported_constructs_refuse_their_rule_with_line_sid_and_keyword() {
    let text = "\
alert http any any -> any any (msg:\"app layer\"; sid:1;)
alert tcp any any -> any 80 (msg:\"regex\"; content:\"GET\"; pcre:\"/x/\"; sid:2;)
alert tcp any any -> any 80 (msg:\"stream\"; flow:established,to_server; sid:3;)
drop tcp any any -> any 80 (msg:\"inline\"; sid:4;)
alert tcp any any -> any 80 (msg:\"relative\"; content:\"a\"; content:\"b\"; distance:0; sid:5;)
alert tcp any any -> any 80 (msg:\"rate\"; threshold:type limit, track by_src, count 1, seconds 60; sid:6;)
alert tcp any any -> any 80 (msg:\"sni\"; tls.sni; content:\"x\"; sid:7;)
alert tcp $UNDEFINED any -> any 80 (msg:\"var\"; sid:8;)
alert tcp any any -> any 80 (msg:\"ok\"; sid:9;)
alert tcp any any -> any 80 (msg:\"dst\"; detection_filter:track by_dst, count 5, seconds 60; sid:10;)
alert tcp any any -> any 80 (msg:\"neg\"; content:!\"x\"; sid:11;)
";
    let err = load(text).unwrap_err();
    for (line, sid, keyword) in [
        (1, 1, "protocol http"),
        (2, 2, "pcre"),
        (3, 3, "flow:established"),
        (4, 4, "action drop"),
        (5, 5, "distance"),
        (6, 6, "threshold"),
        (7, 7, "tls.sni"),
        (8, 8, "variable $UNDEFINED"),
        (10, 10, "detection_filter track by_dst"),
        (11, 11, "content:!"),
    ] {
        let want = format!("feed.rules:{line}:0: rule sid:{sid} refused: `{keyword}`");
        assert!(err.contains(&want), "missing `{want}` in:\n{err}");
    }
    assert!(!err.contains("sid:9 "), "{err}");

    // With skip_refused the rest loads and the refusals are counted by keyword.
    let opts = ImportOptions {
        skip_refused: true,
        ..ImportOptions::default()
    };
    let rs = load_with(text, &opts).unwrap();
    assert_eq!(rs.rules.iter().map(|r| &*r.id).collect::<Vec<_>>(), ["sid:9"]);
    assert_eq!(rs.imports.counts.get("suricata loaded"), Some(&1));
    assert_eq!(rs.imports.counts.get("suricata refused pcre"), Some(&1));
    assert_eq!(rs.imports.refusals.len(), 10);
}

#[test]
fn mistakes_are_errors_with_their_line_even_when_skipping() {
    let opts = ImportOptions {
        skip_refused: true,
        ..ImportOptions::default()
    };
    for (text, want) in [
        ("alert tcp any any -> any 80 (msg:\"x\";)", "needs a numeric `sid`"),
        ("alert tcp any any -> any 80 (sid:1; sid:1)", "not ended by `;`"),
        ("alert tcp any any any -> any 80 (sid:1;)", "has 7 fields"),
        ("alert tcp any any <- any 80 (sid:1;)", "direction `<-`"),
        (
            "alert tcp 300.1.1.1 any -> any 80 (sid:1;)",
            "not an IPv4 or IPv6 prefix",
        ),
        ("alert tcp any 70000 -> any 80 (sid:1;)", "port `70000`"),
        (
            "alert tcp any any -> any 80 (nocase; sid:1;)",
            "needs a preceding `content`",
        ),
        (
            "alert tcp any any -> any any (msg:\"all\"; sid:1;)\nalert tcp any any -> any 80 (sid:1;)",
            "sid is used twice",
        ),
        (
            "alert ip $EXTERNAL_NET any -> $HOME_NET any (sid:1;)",
            "would select every packet",
        ),
        ("alert icmp any any -> any any (content:\"x\"; sid:1;)", "tcp or udp"),
        ("alert tcp any any -> any 80 (content:\"|4|\"; sid:1;)", "odd number"),
        ("alert tcp any any -> any 80 (ttl:300; sid:1;)", "out of range"),
        ("alert tcp !any any -> any 80 (sid:1;)", "negates `any`"),
    ] {
        let err = load_with(text, &opts).unwrap_err();
        assert!(err.contains(want), "`{text}`: expected `{want}` in {err}");
        assert!(err.contains("feed.rules:"), "{err}");
    }
}

#[test]
fn config_variables_expand_and_nest() {
    let mut opts = ImportOptions::default();
    opts.address_vars
        .insert("C2".into(), "[203.0.113.0/24, $PARTNERS]".into());
    opts.address_vars.insert("PARTNERS".into(), "198.51.100.0/24".into());
    opts.port_vars
        .insert("WEB".into(), "[80,$HTTP_PORTS,8000:8100,!8080]".into());
    opts.address_vars.insert("LOOP".into(), "$LOOP".into());
    let rs = load_with("alert tcp $C2 any -> any $WEB (msg:\"c2\"; sid:1;)", &opts).unwrap();
    let f = |src: &str, dp: u16| tcp(src, "192.0.2.1", 1, dp, 0x18, b"");
    assert_eq!(
        hits(&rs, Class::Inbound, &f("198.51.100.3", 8050), true, None),
        ["sid:1"]
    );
    assert_eq!(hits(&rs, Class::Inbound, &f("203.0.113.3", 80), true, None), ["sid:1"]);
    assert!(hits(&rs, Class::Inbound, &f("203.0.113.3", 8080), true, None).is_empty());
    assert!(hits(&rs, Class::Inbound, &f("192.0.2.77", 80), true, None).is_empty());
    let err = load_with("alert tcp $LOOP any -> any 80 (sid:1;)", &opts).unwrap_err();
    assert!(err.contains("deeper than"), "{err}");
}
