//! TAXII 2.1 pulls against the OASIS reference server (medallion) on
//! loopback: paging, added_after, a revoked indicator removed on the next
//! pull, credentials refused, and what the pulled bundle compiles into.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::taxii::{indicator, Medallion, PASSWORD, USER};
use common::FURUI;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A config with one TAXII feed `name` on `server` (basic user; `extra`
/// lines complete the feed's table).
fn write_feed_config(path: &std::path::Path, name: &str, server: &Medallion, extra: &str) {
    std::fs::write(
        path,
        format!(
            "[capture]\ninterface = \"lo\"\n\n[domestic]\nprefixes = [\"192.0.2.0/24\"]\n\n[records]\npath = \"records.jsonl\"\n\n\
             [selection]\nrules_dir = \"rules\"\n\n[[selection.taxii]]\nname = \"{name}\"\ncollection_url = \"{}\"\n\
             user = \"{USER}\"\n{extra}",
            server.collection_url()
        ),
    )
    .unwrap();
}

fn furui(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(FURUI).args(args).output().expect("run furui");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn pulls_page_by_page_remove_revoked_indicators_and_refuse_bad_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = Medallion::start(d, None, free_port(), 2);
    server.add(&[
        indicator(1, "[ipv4-addr:value = '203.0.113.1']", "2026-01-01T00:00:00.000Z", false),
        indicator(2, "[ipv4-addr:value = '203.0.113.2']", "2026-01-01T00:00:00.000Z", false),
        serde_json::json!({"type": "malware", "spec_version": "2.1", "id": "malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b",
                           "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
                           "name": "x", "is_family": false}),
    ]);
    server.add(&[indicator(
        3,
        "[network-traffic:dst_port = 4444 AND network-traffic:dst_ref.value = '198.51.100.9']",
        "2026-01-01T00:00:00.000Z",
        false,
    )]);

    std::fs::create_dir(d.join("rules")).unwrap();
    std::fs::write(d.join("taxii.pass"), format!("{PASSWORD}\n")).unwrap();
    std::fs::set_permissions(d.join("taxii.pass"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = d.join("furui.toml");
    let write_config = |password_file: &str| {
        write_feed_config(
            &config,
            "cert",
            &server,
            &format!("password_file = \"{password_file}\"\n"),
        );
    };
    write_config("taxii.pass");
    let cfg = config.to_str().unwrap();

    // First pull: everything, two objects per page.
    let (code, out, err) = furui(&["taxii-pull", "--config", cfg]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("cert: 2 pages, 4 objects, 0 revoked; 3 indicators in "),
        "{out}"
    );
    let bundle = d.join("rules/taxii-cert.json");
    let text = std::fs::read_to_string(&bundle).unwrap();
    for n in 1..=3 {
        assert!(
            text.contains(&format!("indicator--0b6a4f1e-0000-4000-8000-{n:012}")),
            "{text}"
        );
    }
    assert!(!text.contains("malware--"), "only indicators are kept");
    let (code, out, err) = furui(&["check-rules", d.join("rules").to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("(3 rules; 3 imported items, 0 refused; version taxii-cert.json@"),
        "{out}"
    );

    // Nothing new: one page, nothing changes.
    let (_, out, _) = furui(&["taxii-pull", "--config", cfg]);
    assert!(
        out.starts_with("cert: 1 pages, 0 objects, 0 revoked; 3 indicators"),
        "{out}"
    );
    assert!(!out.contains("changed"), "{out}");

    // The producer revokes indicator 2 and adds indicator 4: only those
    // two are fetched (added_after), and 2 is gone from the bundle.
    server.add(&[
        indicator(2, "[ipv4-addr:value = '203.0.113.2']", "2026-03-01T00:00:00.000Z", true),
        indicator(
            4,
            "[ipv6-addr:value ISSUBSET '2001:db8:bad::/48']",
            "2026-03-01T00:00:00.000Z",
            false,
        ),
    ]);
    let (code, out, err) = furui(&["taxii-pull", "--config", cfg]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("cert: 1 pages, 2 objects, 1 revoked; 3 indicators"),
        "{out}"
    );
    assert!(out.contains("changed"), "{out}");
    let text = std::fs::read_to_string(&bundle).unwrap();
    assert!(!text.contains("8000-000000000002"), "the revoked indicator is removed");
    assert!(text.contains("8000-000000000004"));

    // A wrong password: refused, and the bundle is left as it was.
    std::fs::write(d.join("wrong.pass"), "not-the-password\n").unwrap();
    std::fs::set_permissions(d.join("wrong.pass"), std::fs::Permissions::from_mode(0o600)).unwrap();
    write_config("wrong.pass");
    let (code, _, err) = furui(&["taxii-pull", "--config", cfg]);
    assert_eq!(code, 1);
    assert!(
        err.contains("TAXII feed cert: the server refused the credentials (HTTP 401)"),
        "{err}"
    );
    assert!(!err.contains("not-the-password"), "{err}");
    assert_eq!(std::fs::read_to_string(&bundle).unwrap(), text);

    // A password file others can read is a config error.
    std::fs::set_permissions(d.join("wrong.pass"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, _, err) = furui(&["taxii-pull", "--config", cfg]);
    assert_eq!(code, 2);
    assert!(err.contains("can be read by others (mode 0644)"), "{err}");
}

/// Over HTTPS with mutual TLS (and basic credentials): the pull presents
/// furui's certificate and trusts only the configured CA; without a
/// client certificate the server refuses the handshake, and the bundle
/// stays as it was.
#[test]
fn pulls_over_mutual_tls_and_a_missing_client_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let certs = d.join("certs");
    std::fs::create_dir(&certs).unwrap();
    common::certs::make_certs(&certs, &["furui", "producer"]);
    for key in ["furui.key", "producer.key", "server.key"] {
        std::fs::set_permissions(certs.join(key), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let server = Medallion::start_tls(d, free_port(), 100, &certs);
    server.add(&[indicator(
        7,
        "[ipv4-addr:value = '203.0.113.7']",
        "2026-01-01T00:00:00.000Z",
        false,
    )]);
    std::fs::create_dir(d.join("rules")).unwrap();
    std::fs::write(d.join("taxii.pass"), PASSWORD).unwrap();
    std::fs::set_permissions(d.join("taxii.pass"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = d.join("furui.toml");
    let write = |client: &str| {
        let extra = format!("password_file = \"taxii.pass\"\nserver_ca = \"certs/ca.pem\"\n{client}");
        write_feed_config(&config, "tls", &server, &extra);
    };
    write("client_cert = \"certs/furui.pem\"\nclient_key = \"certs/furui.key\"\n");
    let cfg = config.to_str().unwrap();
    assert!(server.collection_url().starts_with("https://127.0.0.1:"));
    let (code, out, err) = furui(&["taxii-pull", "--config", cfg]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("tls: 1 pages, 1 objects, 0 revoked; 1 indicators"),
        "{out}"
    );
    let bundle = std::fs::read_to_string(d.join("rules/taxii-tls.json")).unwrap();
    assert!(bundle.contains("8000-000000000007"));

    // No client certificate: the server refuses the handshake.
    write("");
    let (code, _, err) = furui(&["taxii-pull", "--config", cfg]);
    assert_eq!(code, 1);
    assert!(err.contains("TAXII feed tls:"), "{err}");
    assert!(err.contains("received fatal alert: CertificateRequired"), "{err}");
    assert_eq!(std::fs::read_to_string(d.join("rules/taxii-tls.json")).unwrap(), bundle);
}
