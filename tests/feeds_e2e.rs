//! The analysts' formats on live traffic: a Suricata rule, a STIX
//! indicator pulled by the daemon from a TAXII server (medallion, on
//! loopback in the capture namespace), a MISP attribute and a Zeek intel
//! line each select one flow sent through the veth rig, and each record
//! names the rule and the feed file that selected it. The audit trail
//! records the imports with every load, the TAXII pull's reload says who
//! asked, and a reload that would drop most rules needs confirmation.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::taxii::{indicator, Medallion, PASSWORD, USER};
use common::{Daemon, Rig, WINDOW_OPEN};

const STIX_ID: &str = "indicator--0b6a4f1e-0000-4000-8000-000000000041";

#[test]
fn each_format_selects_its_flow_and_the_record_names_the_source() {
    let rig = Rig::new();
    let rules = rig.path("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("feed.rules"),
        "alert tcp $EXTERNAL_NET any -> $HOME_NET 2201 (msg:\"probe\"; flow:to_server; sid:9300001; rev:2;)\n",
    )
    .unwrap();
    std::fs::write(
        rules.join("cert.csv"),
        "type,value,to_ids\nip-src,198.18.0.21,1\nip-src,198.18.0.99,0\n",
    )
    .unwrap();
    std::fs::write(
        rules.join("intel.intel"),
        "#fields\tindicator\tindicator_type\tmeta.source\n198.18.0.31\tIntel::ADDR\tpartner\n",
    )
    .unwrap();
    std::fs::write(rig.path("taxii.pass"), PASSWORD).unwrap();
    std::fs::set_permissions(rig.path("taxii.pass"), std::fs::Permissions::from_mode(0o600)).unwrap();

    let server = Medallion::start(rig.dir.path(), Some(&rig.ns_cap), 5999, 10);
    server.add(&[indicator(
        41,
        "[network-traffic:src_ref.value = '198.18.0.41' AND network-traffic:dst_port = 4441]",
        "2026-01-01T00:00:00.000Z",
        false,
    )]);
    let audit = rig.path("audit");
    let mut measures = String::new();
    for m in ["transit", "inbound", "outbound"] {
        measures += &format!("[measures.{m}]\nenabled = true\n{WINDOW_OPEN}\n\n");
    }
    let cfg = rig.config(
        "",
        &format!(
            "[domestic]\nprefixes = [\"192.0.2.0/24\"]\n{measures}[selection]\nrules_dir = \"rules\"\n\n\
             [[selection.taxii]]\nname = \"cert\"\ncollection_url = \"{}\"\nuser = \"{USER}\"\npassword_file = \"taxii.pass\"\ndir = \"taxii-state\"\n\n\
             [audit]\ndir = \"{}\"\ncheckpoint_secs = 3600\n",
            server.collection_url(),
            audit.display()
        ),
    );
    let d = Daemon::start(&rig, &cfg);
    // The first pull runs at start; its bundle changes the rules: reload.
    d.wait_for_metric("furui_taxii_indicators{feed=\"cert\"}", 1, "the TAXII pull");
    d.wait_for_metric(
        "furui_config_reloads_total{result=\"ok\"}",
        1,
        "the reload after the pull",
    );
    // Kept where the feed says (as under the packaged unit, outside a
    // read-only rules directory), and loaded from there.
    assert!(rig.path("taxii-state/taxii-cert.json").exists());
    assert!(!rules.join("taxii-cert.json").exists());

    for flow in [
        "198.18.0.11,192.0.2.1,tcp,40011,2201",
        "198.18.0.21,192.0.2.1,tcp,40021,80",
        "198.18.0.31,192.0.2.1,tcp,40031,80",
        "198.18.0.41,192.0.2.1,tcp,40041,4441",
        // to_ids = 0, another port, another address: none selects these.
        "198.18.0.99,192.0.2.1,tcp,40099,80",
        "198.18.0.41,192.0.2.1,tcp,40042,4442",
    ] {
        rig.send(&["--count", "5", "--size", "120", "--flow", flow]);
    }
    let m = d.settled_metrics();
    assert_eq!(m.sum("furui_frames_received_total"), 30);
    assert_eq!(m.sum("furui_frames_erased_total"), 30);

    // Drop three of the four rules: more than half of those in force.
    for f in ["feed.rules", "cert.csv", "intel.intel"] {
        std::fs::remove_file(rules.join(f)).unwrap();
    }
    let (code, out) = rig.reload(&[]);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("the new rules drop 3 of the 4 rules in force") && out.contains("--confirm-rules-removal"),
        "{out}"
    );
    let (code, out) = rig.reload(&["--confirm-rules-removal"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(d.stop(), 0);

    let (recs, text) = rig.records();
    let by_port = |p: u64| recs.iter().find(|r| r["initiator_port"] == p).cloned();
    let expect = [
        (40011, "sid:9300001", "feed.rules@"),
        (40021, "misp:cert:ip-src", "cert.csv@"),
        (40031, "zeek:intel", "intel.intel@"),
        (40041, &*format!("stix:{STIX_ID}"), "taxii-cert.json@"),
    ];
    for (port, rule, file) in expect {
        let r = by_port(port).unwrap_or_else(|| panic!("no record of the flow from port {port}: {text}"));
        assert_eq!(r["rules"], serde_json::json!([rule]), "{r}");
        let version = r["ruleset_version"].as_str().unwrap();
        assert!(version.contains(file), "{version}");
    }
    assert_eq!(recs.len(), 4, "only the four flows are selected: {text}");

    let trail = std::fs::read_to_string(audit.join("trail.jsonl")).unwrap();
    let entries: Vec<serde_json::Value> = trail.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let start = entries.iter().find(|e| e["kind"] == "start").unwrap();
    assert_eq!(start["data"]["ruleset_imports"]["suricata loaded"], 1, "{start}");
    assert_eq!(
        start["data"]["ruleset_imports"]["misp skipped to_ids=false"], 1,
        "{start}"
    );
    let reloads: Vec<_> = entries.iter().filter(|e| e["kind"] == "reload").collect();
    assert_eq!(reloads.len(), 3, "{trail}");
    assert_eq!(reloads[0]["data"]["requested_by"], "taxii");
    assert_eq!(reloads[0]["data"]["ruleset_imports"]["stix loaded"], 1);
    assert!(reloads[0]["data"]["ruleset_version"]
        .as_str()
        .unwrap()
        .contains("taxii-cert.json@"));
    assert_eq!(reloads[1]["data"]["accepted"], false);
    assert_eq!(reloads[2]["data"]["accepted"], true);
    assert_eq!(reloads[2]["data"]["confirmed_rules_removal"], true);
}
