//! NATS JetStream: each recipient's granted records on its own subject,
//! across a server restart, with the audit checkpoints as a witness.

mod common;

use common::collectors::*;
use common::export::*;
use common::*;

/// JetStream: each recipient's records on its own subject, acknowledged by
/// the server, only the granted fields; the server restarted mid-stream
/// (records selected meanwhile wait in the spool) and nothing is lost or
/// reordered.
#[test]
fn nats_jetstream_gets_exactly_the_granted_records_across_a_server_restart() {
    let rig = Rig::new();
    let store = rig.path("jetstream");
    let cfg = rig.config(
        "",
        &format!(
            "{prelude}[audit]\ndir = \"{audit}\"\ncheckpoint_secs = 1\n\n[[purposes]]\nid = \"damage-prevention\"\ndamage_prevention = true\n\n[[recipients]]\nname = \"bus\"\nrole = \"analyst\"\nidentity = \"{IDENTITY}\"\nwitness = true\n[[recipients.grants]]\nmeasures = [\"inbound\"]\nfields = [\"initiator_port\", \"responder\", \"packets_forward\"]\npurpose = \"damage-prevention\"\n[[recipients.sinks]]\nkind = \"nats\"\naddress = \"127.0.0.1:4222\"\n",
            prelude = export_prelude(&rig),
            audit = rig.path("audit").display(),
        ),
    );
    let nats = nats_server(&rig, &store);
    let d = Daemon::start(&rig, &cfg);
    let published = "furui_export_records_total{recipient=\"bus\",sink=\"nats\"}";
    for i in 0..3u64 {
        let flow = format!("203.0.113.{},192.0.2.10,tcp,{},80", 30 + i, 6000 + i);
        rig.send(&["--count", &(i + 1).to_string(), "--flow", &flow]);
    }
    d.wait_for_metric(published, 3, "records published");
    // The server goes away; three more flows end meanwhile.
    drop(nats);
    for i in 3..6u64 {
        let flow = format!("203.0.113.{},192.0.2.10,tcp,{},80", 30 + i, 6000 + i);
        rig.send(&["--count", &(i + 1).to_string(), "--flow", &flow]);
    }
    d.wait_for_metric(
        "furui_export_spooled_total{recipient=\"bus\",sink=\"nats\"}",
        3,
        "records not spooled while NATS was down",
    );
    let nats = nats_server(&rig, &store);
    d.wait_for_metric(published, 6, "records published after the restart");
    assert_eq!(d.stop(), 0);
    let got = nats_read(&rig.ns_cap, "furui.records.bus");
    let witnesses = nats_read(&rig.ns_cap, "furui.records.bus.witness");
    drop(nats);

    // The recipient holds signed checkpoints pushed to it: the newest
    // still verifies against the trail, as a witness.
    assert!(!witnesses.is_empty(), "no checkpoint pushed");
    let w = witnesses.last().unwrap();
    assert_eq!(w["kind"], "checkpoint", "{w}");
    assert!(
        w.get("data").is_none() && w["sig"].is_string(),
        "a recipient's witness is the head only (seq, hash, signature): {w}"
    );
    let out = verify_with_witness(&rig, &w.to_string());
    assert!(
        out.starts_with("PASS") && out.contains("witness checkpoint present"),
        "{out}"
    );

    let selected = rig.record_ports();
    assert_eq!(selected.len(), 6);
    let ports: Vec<u64> = got.iter().map(|v| v["initiator_port"].as_u64().unwrap()).collect();
    assert_eq!(ports, selected, "every record once, in selection order");
    for v in &got {
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            ["initiator_port", "key_epoch", "packets_forward", "responder"],
            "{v}"
        );
        assert!(
            !v["responder"].as_str().unwrap().starts_with("192.0.2."),
            "responder not pseudonymized: {v}"
        );
        assert_eq!(
            v["packets_forward"].as_u64().unwrap(),
            v["initiator_port"].as_u64().unwrap() - 6000 + 1
        );
    }
}
