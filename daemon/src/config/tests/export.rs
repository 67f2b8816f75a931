use crate::config::Config;
use std::path::Path;

const BASE: &str = "[capture]\ninterface = \"x\"\n[records]\npath = \"r\"\n";

const GOOD: &str = r#"
[deid]
key_dir = "keys"
epoch = "hourly"

[[purposes]]
id = "damage-prevention"
damage_prevention = true

[[purposes]]
id = "research"

[[consents]]
id = "c-1"
scope = "flow records of inbound scans, pseudonymized"
users = "university lab X"
purpose = "scanner population study"
not_before = "2026-01-01T00:00:00Z"
not_after = "2027-01-01T00:00:00Z"

[[recipients]]
name = "soc-a"
role = "analyst"
identity = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
[[recipients.grants]]
measures = ["inbound", "transit"]
fields = ["responder", "initiator", "protocol", "rules"]
purpose = "damage-prevention"
addresses = "truncate"
truncate_v4 = 16
[[recipients.grants]]
measures = ["inbound"]
fields = ["initiator"]
purpose = "research"
consent = "c-1"
[[recipients.sinks]]
kind = "ipfix-udp"
address = "127.0.0.1:4739"
"#;

#[test]
fn recipients_grants_and_consents_load() {
    let cfg = Config::parse(Path::new("/etc/furui/furui.toml"), &format!("{BASE}{GOOD}")).unwrap();
    let e = &cfg.export;
    assert_eq!(e.deid.key_dir, Path::new("/etc/furui/keys"));
    assert_eq!(e.deid.epoch, crate::deid::EpochPeriod::Hourly);
    let r = &e.recipients[0];
    assert_eq!(r.name, "soc-a");
    assert_eq!(r.identity[0], 0x01);
    // Fields come out in record order, whatever the order written.
    assert_eq!(r.grants[0].fields, ["protocol", "initiator", "responder", "rules"]);
    assert_eq!(
        r.grants[0].addresses,
        crate::deid::AddressPolicy::Truncate { v4: 16, v6: 48 }
    );
    assert_eq!(r.grants[1].consent.as_ref().unwrap().id, "c-1");
    let inside = time::macros::datetime!(2026-06-01 00:00 UTC);
    let after = time::macros::datetime!(2027-06-01 00:00 UTC);
    assert!(r.grants[1].covers(crate::classify::Measure::Inbound, inside));
    assert!(
        !r.grants[1].covers(crate::classify::Measure::Inbound, after),
        "consent expired"
    );
    assert!(!r.grants[1].covers(crate::classify::Measure::Transit, inside));
    assert!(
        r.grants[0].covers(crate::classify::Measure::Transit, after),
        "damage prevention needs no consent"
    );
}

#[test]
fn every_export_mistake_is_reported_with_its_line() {
    let bad = r#"
[[purposes]]
id = "research"

[[consents]]
id = "c-1"
scope = ""
users = "lab"
purpose = "study"
not_before = "2026-01-01T00:00:00Z"
not_after = "2025-01-01T00:00:00Z"

[[recipients]]
name = "SOC A"
role = "boss"
identity = "sha256:abc"
[[recipients.grants]]
measures = ["sideways"]
fields = ["initiator", "payload"]
purpose = "research"
[[recipients.grants]]
measures = ["inbound"]
fields = ["initiator"]
purpose = "marketing"
[[recipients.sinks]]
kind = "carrier-pigeon"
address = "x"
"#;
    let errs = Config::parse(Path::new("f.toml"), &format!("{BASE}{bad}")).unwrap_err();
    let text = errs.to_string();
    let lines: Vec<usize> = errs.0.iter().map(|e| e.line).collect();
    // BASE is 4 lines, so file line = 4 + line in `bad`.
    for (l, what) in [
        (11, "consent must state its scope"),
        (15, "not_after earlier than not_before"),
        (18, "bad recipient name"),
        (19, "unknown role"),
        (20, "identity not sha256:hex"),
        (22, "unknown measure"),
        (23, "not an exportable field"),
        (24, "research is not damage prevention: consent required"),
        (28, "purpose not defined"),
        (30, "unknown sink kind"),
    ] {
        assert!(lines.contains(&l), "no error at line {l} ({what}):\n{text}");
    }
    assert!(text.contains("`payload` is not an exportable record field"), "{text}");
    let agg = r#"
[[purposes]]
id = "stats"
damage_prevention = true

[[recipients]]
name = "agg"
role = "analyst"
identity = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
[[recipients.grants]]
measures = ["inbound"]
aggregate = true
fields = ["initiator"]
purpose = "stats"
[[recipients.sinks]]
kind = "ipfix-udp"
address = "127.0.0.1:4739"
"#;
    let agg_text = Config::parse(Path::new("f.toml"), &format!("{BASE}{agg}"))
        .unwrap_err()
        .to_string();
    assert!(
        agg_text.contains("f.toml:17:"),
        "fields in an aggregate grant, with its line: {agg_text}"
    );
    assert!(
        agg_text.contains("aggregates go out over `nats` or `api` sinks"),
        "{agg_text}"
    );
    assert!(text.contains("must name a `consent` (Art. 23)"), "{text}");
}

#[test]
fn api_limits_have_defaults_and_bad_ones_are_reported_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["s.pem", "s.key", "ca.pem"] {
        std::fs::write(dir.path().join(f), "x").unwrap();
    }
    let api = "[api]\nlisten = \"127.0.0.1:9443\"\ncert = \"s.pem\"\nkey = \"s.key\"\nclient_ca = \"ca.pem\"\n";
    let path = dir.path().join("f.toml");
    let cfg = Config::parse(&path, &format!("{BASE}{api}")).unwrap();
    let l = cfg.export.api.unwrap().limits;
    assert_eq!(l.header_timeout, std::time::Duration::from_secs(10));
    assert_eq!(l.idle_timeout, std::time::Duration::from_secs(60));
    assert_eq!((l.max_connections, l.max_per_address), (256, 16));
    assert_eq!((l.rate_per_second, l.burst), (10, 50));
    let bad = "max_connections = 4\nmax_connections_per_address = 8\nrate_per_second = 0\nidle_timeout_secs = 0\n";
    let errs = Config::parse(&path, &format!("{BASE}{api}{bad}")).unwrap_err();
    let text = errs.to_string();
    let lines: Vec<usize> = errs.0.iter().map(|e| e.line).collect();
    for (l, what) in [
        (11, "more than max_connections"),
        (12, "rate_per_second must be at least 1"),
        (13, "idle_timeout_secs must be at least 1"),
    ] {
        assert!(
            lines.contains(&l) && text.contains(what),
            "no error at line {l} ({what}):\n{text}"
        );
    }
}

#[test]
fn nats_credentials_need_tls_private_files_and_a_stream_of_their_own() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    for (f, mode) in [("ca.pem", 0o644), ("open.pass", 0o644), ("good.pass", 0o600)] {
        let p = dir.path().join(f);
        std::fs::write(&p, "x").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let recipient = |name: &str, n: u8, sink: &str| {
        format!(
            "[[recipients]]\nname = \"{name}\"\nrole = \"analyst\"\nidentity = \"sha256:{}\"\n[[recipients.grants]]\nmeasures = [\"inbound\"]\nfields = [\"initiator\"]\npurpose = \"dp\"\n[[recipients.sinks]]\nkind = \"nats\"\naddress = \"127.0.0.1:4222\"\n{sink}",
            format!("{n:02x}").repeat(32)
        )
    };
    let head = format!("{BASE}[[purposes]]\nid = \"dp\"\ndamage_prevention = true\n");
    let path = dir.path().join("f.toml");
    // Good: TLS with a private password file; a stream per recipient by default.
    let good = format!(
        "{head}{}{}",
        recipient(
            "a",
            1,
            "server_ca = \"ca.pem\"\nuser = \"furui\"\npassword_file = \"good.pass\"\n"
        ),
        recipient("b", 2, "")
    );
    let cfg = Config::parse(&path, &good).unwrap();
    let streams: Vec<String> = cfg
        .export
        .recipients
        .iter()
        .map(|r| match &r.sinks[0] {
            crate::config::sinks::SinkKind::Nats(crate::config::sinks::NatsSink { stream, tls, auth, .. }) => {
                format!(
                    "{stream} {} {}",
                    tls.is_some(),
                    *auth != crate::config::sinks::NatsAuth::None
                )
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(streams, ["FURUI-a true true", "FURUI-b false false"]);
    // Bad: credentials in clear, a file others can read, half a pair, and
    // a stream two recipients share.
    let bad = format!(
        "{head}{}{}{}",
        recipient("a", 1, "user = \"furui\"\npassword_file = \"good.pass\"\n"),
        recipient(
            "b",
            2,
            "server_ca = \"ca.pem\"\nuser = \"furui\"\npassword_file = \"open.pass\"\nstream = \"FURUI-a\"\n"
        ),
        recipient("c", 3, "server_ca = \"ca.pem\"\nclient_cert = \"ca.pem\"\n"),
    );
    let text = Config::parse(&path, &bad).unwrap_err().to_string();
    for what in [
        "NATS credentials without TLS would cross the network in clear",
        "can be read by others (mode 0644): chmod 600 it",
        "NATS stream `FURUI-a` on 127.0.0.1:4222 is already recipient `a`'s",
        "client_cert and client_key go together",
    ] {
        assert!(text.contains(what), "no `{what}` in:\n{text}");
    }
}

/// A cluster's servers, replicas, acknowledgement window and
/// de-duplication window: defaults, and each mistake with its line.
#[test]
fn nats_cluster_settings_have_defaults_and_each_mistake_its_line() {
    let sink = |extra: &str| {
        format!(
            "{BASE}[[purposes]]\nid = \"dp\"\ndamage_prevention = true\n[[recipients]]\nname = \"a\"\nrole = \"analyst\"\nidentity = \"sha256:{}\"\n[[recipients.grants]]\nmeasures = [\"inbound\"]\nfields = [\"initiator\"]\npurpose = \"dp\"\n[[recipients.sinks]]\nkind = \"nats\"\n{extra}",
            "01".repeat(32)
        )
    };
    let nats = |text: &str| match &Config::parse(Path::new("/etc/furui/f.toml"), text)
        .unwrap()
        .export
        .recipients[0]
        .sinks[0]
    {
        crate::config::sinks::SinkKind::Nats(n) => n.clone(),
        other => panic!("{other:?}"),
    };
    let one = nats(&sink("address = \"127.0.0.1:4222\"\n"));
    assert_eq!(
        (
            one.servers.clone(),
            one.replicas,
            one.ack_window,
            one.dedup_window.as_secs()
        ),
        (vec!["127.0.0.1:4222".to_string()], 1, 256, 120)
    );
    let three = nats(&sink(
        "servers = [\"nats://10.0.0.1:4222\", \"10.0.0.2:4222\", \"10.0.0.3:4222\"]\nreplicas = 3\nack_window = 64\ndedup_window_secs = 600\n",
    ));
    assert_eq!(
        (
            three.servers.len(),
            three.replicas,
            three.ack_window,
            three.dedup_window.as_secs()
        ),
        (3, 3, 64, 600)
    );
    // Line 18 is the first line after `kind = "nats"`.
    for (extra, line, what) in [
        ("servers = []\n", 18, "lists no server"),
        (
            "address = \"127.0.0.1:4222\"\nservers = [\"127.0.0.1:4223\"]\n",
            18,
            "not both",
        ),
        (
            "servers = [\"127.0.0.1:4222\", \"no such:thing:1\"]\n",
            18,
            "not a NATS server address",
        ),
        (
            "address = \"127.0.0.1:4222\"\nreplicas = 7\n",
            19,
            "replicas must be between 1 and 5",
        ),
        (
            "address = \"127.0.0.1:4222\"\nack_window = 0\n",
            19,
            "ack_window must be between 1 and 65536",
        ),
        (
            "address = \"127.0.0.1:4222\"\ndedup_window_secs = -1\n",
            19,
            "dedup_window_secs must be between",
        ),
        ("", 17, "needs an `address` or a list of `servers`"),
    ] {
        let e = Config::parse(Path::new("/etc/furui/f.toml"), &sink(extra)).unwrap_err();
        assert!(
            e.0.iter().any(|x| x.line == line && x.message.contains(what)),
            "{extra}: want line {line} `{what}`:\n{e}"
        );
    }
    let e = Config::parse(
        Path::new("/etc/furui/f.toml"),
        &sink("address = \"127.0.0.1:4222\"\n").replace("kind = \"nats\"", "kind = \"ipfix-udp\"\nreplicas = 3"),
    )
    .unwrap_err();
    assert!(e.to_string().contains("are for NATS sinks"), "{e}");
}
