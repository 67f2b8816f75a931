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
    let got = nats_read(&rig.ns_cap, "FURUI-bus", "furui.records.bus");
    let witnesses = nats_read(&rig.ns_cap, "FURUI-bus", "furui.records.bus.witness");
    drop(nats);

    // The recipient holds signed checkpoints pushed to it: the newest
    // still verifies against the trail, as a witness.
    assert!(!witnesses.is_empty(), "no checkpoint pushed");
    let w = witnesses.last().unwrap();
    assert_eq!(w["kind"], "checkpoint", "{w}");
    assert_eq!(
        w["appliance"],
        common::APPLIANCE,
        "a checkpoint names its appliance: {w}"
    );
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
    let seqs: Vec<u64> = got.iter().map(|v| v["seq"].as_u64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "one name per view, in order: {seqs:?}"
    );
    for v in &got {
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "appliance",
                "initiator_port",
                "key_epoch",
                "packets_forward",
                "responder",
                "seq"
            ],
            "{v}"
        );
        assert_eq!(v["appliance"], common::APPLIANCE, "{v}");
        assert_eq!(
            v["responder"].as_str().unwrap(),
            pseudonym(&rig, v["key_epoch"].as_str().unwrap(), "192.0.2.10"),
            "responder not pseudonymized: {v}"
        );
        assert_eq!(
            v["packets_forward"].as_u64().unwrap(),
            v["initiator_port"].as_u64().unwrap() - 6000 + 1
        );
    }
}

/// A reader's connection: TLS to the test CA, its own client certificate,
/// user and password, and its own reply subjects.
fn reader(certs: &std::path::Path, user: &str) -> async_nats::ConnectOptions {
    async_nats::ConnectOptions::new()
        .require_tls(true)
        .add_root_certificates(certs.join("ca.pem"))
        .add_client_certificate(certs.join(format!("{user}.pem")), certs.join(format!("{user}.key")))
        .user_and_password(user.into(), format!("{user}-pass"))
        .custom_inbox_prefix(format!("_INBOX_{user}"))
}

/// #17 item 6: NATS over TLS (the server verified against its CA, furui
/// presenting a client certificate) with credentials per recipient, and a
/// stream per recipient. On a real nats-server with per-user permissions,
/// each reader reads its own stream and is refused the other's; a
/// recipient whose credentials the server refuses gets nothing through,
/// and its views wait in its spool, counted.
#[test]
fn nats_over_tls_with_credentials_gives_each_recipient_its_own_stream_alone() {
    use std::os::unix::fs::PermissionsExt;
    let (rig, certs, _) = common::certs::rig_with_certs(&["furui", "soc-a", "soc-b"]);
    let secret = |name: &str, text: &str| {
        let p = certs.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    };
    let furui_a = secret("furui-a.pass", "furui-a-pass\n");
    let furui_b = secret("furui-b.pass", "furui-b-pass\n");
    let wrong = secret("furui-c.pass", "not-the-password\n");
    std::fs::set_permissions(certs.join("furui.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let c = certs.display();
    let publisher = |user: &str, recipient: &str| {
        format!("{{ user: \"{user}\", password: \"{user}-pass\", permissions: {{ publish: {{ allow: [\"furui.records.{recipient}\", \"furui.records.{recipient}.>\", \"$JS.API.>\"] }}, subscribe: {{ allow: [\"_INBOX.>\"] }} }} }}")
    };
    let reader_user = |user: &str| {
        format!("{{ user: \"{user}\", password: \"{user}-pass\", permissions: {{ publish: {{ allow: [\"$JS.API.STREAM.INFO.FURUI-{user}\", \"$JS.API.STREAM.MSG.GET.FURUI-{user}\"] }}, subscribe: {{ allow: [\"_INBOX_{user}.>\", \"furui.records.{user}\", \"furui.records.{user}.>\"] }} }} }}")
    };
    let conf = rig.path("nats.conf");
    std::fs::write(
        &conf,
        format!(
            "listen: \"127.0.0.1:4222\"\njetstream {{ store_dir: \"{store}\" }}\ntls {{\n  cert_file: \"{c}/server.pem\"\n  key_file: \"{c}/server.key\"\n  ca_file: \"{c}/ca.pem\"\n  verify: true\n  timeout: 5\n}}\nauthorization {{\n  users: [\n    {}\n    {}\n    {{ user: \"furui-c\", password: \"furui-c-pass\" }}\n    {}\n    {}\n  ]\n}}\n",
            publisher("furui-a", "soc-a"),
            publisher("furui-b", "soc-b"),
            reader_user("soc-a"),
            reader_user("soc-b"),
            store = rig.path("jetstream").display(),
        ),
    )
    .unwrap();
    let sink = |pass: &std::path::Path, user: &str| {
        format!("[[recipients.sinks]]\nkind = \"nats\"\naddress = \"127.0.0.1:4222\"\nserver_ca = \"{c}/ca.pem\"\nclient_cert = \"{c}/furui.pem\"\nclient_key = \"{c}/furui.key\"\nuser = \"{user}\"\npassword_file = \"{}\"\n", pass.display())
    };
    let grant = "[[recipients.grants]]\nmeasures = [\"inbound\"]\nfields = [\"initiator_port\", \"packets_forward\"]\npurpose = \"damage-prevention\"\n";
    let recipient = |name: &str, n: u8| {
        format!(
            "[[recipients]]\nname = \"{name}\"\nrole = \"analyst\"\nidentity = \"sha256:{}\"\n{grant}",
            format!("{n:02x}").repeat(32)
        )
    };
    let cfg = rig.config(
        "",
        &format!(
            "{prelude}[[purposes]]\nid = \"damage-prevention\"\ndamage_prevention = true\n\n{}{}\n{}{}\n{}{}",
            recipient("soc-a", 1),
            sink(&furui_a, "furui-a"),
            recipient("soc-b", 2),
            sink(&furui_b, "furui-b"),
            recipient("soc-c", 3),
            sink(&wrong, "furui-c"),
            prelude = export_prelude(&rig),
        ),
    );
    let _nats = nats_server_conf(&rig, &conf);
    let d = Daemon::start(&rig, &cfg);
    for i in 0..2u64 {
        let flow = format!("203.0.113.{},192.0.2.10,tcp,{},80", 50 + i, 6100 + i);
        rig.send(&["--count", "1", "--flow", &flow]);
    }
    for r in ["soc-a", "soc-b"] {
        d.wait_for_metric(
            &format!("furui_export_records_total{{recipient=\"{r}\",sink=\"nats\"}}"),
            2,
            "views acknowledged over TLS",
        );
    }
    d.wait_for_metric(
        "furui_export_spooled_total{recipient=\"soc-c\",sink=\"nats\"}",
        2,
        "views of the refused recipient spooled",
    );
    let m = d.metrics();
    assert_eq!(
        m.get("furui_export_records_total{recipient=\"soc-c\",sink=\"nats\"}"),
        0
    );
    assert!(m.get("furui_export_errors_total{kind=\"send\",recipient=\"soc-c\"}") >= 1);

    let mine = nats_read_as(
        &rig.ns_cap,
        reader(&certs, "soc-a"),
        "FURUI-soc-a",
        "furui.records.soc-a",
    )
    .unwrap();
    let mut ports: Vec<u64> = mine.iter().map(|v| v["initiator_port"].as_u64().unwrap()).collect();
    ports.sort();
    assert_eq!(ports, [6100, 6101], "{mine:?}");
    let theirs = nats_read_as(
        &rig.ns_cap,
        reader(&certs, "soc-a"),
        "FURUI-soc-b",
        "furui.records.soc-b",
    );
    assert!(theirs.is_err(), "soc-a read soc-b's stream: {theirs:?}");
    assert_eq!(
        nats_read_as(
            &rig.ns_cap,
            reader(&certs, "soc-b"),
            "FURUI-soc-b",
            "furui.records.soc-b"
        )
        .unwrap()
        .len(),
        2
    );
    let none = nats_read_as(
        &rig.ns_cap,
        reader(&certs, "soc-b"),
        "FURUI-soc-c",
        "furui.records.soc-c",
    );
    assert!(none.is_err(), "soc-c's stream exists or is readable: {none:?}");
    // A reader without a client certificate is not let in at all.
    let anonymous = async_nats::ConnectOptions::new()
        .require_tls(true)
        .add_root_certificates(certs.join("ca.pem"))
        .user_and_password("soc-a".into(), "soc-a-pass".into());
    assert!(nats_read_as(&rig.ns_cap, anonymous, "FURUI-soc-a", "furui.records.soc-a").is_err());
    assert_eq!(d.stop(), 0);
}
