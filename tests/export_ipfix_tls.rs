//! IPFIX over TLS: furui presents its client certificate, and a collector
//! that refuses it leaves the views in the spool.

mod common;

use std::time::{Duration, Instant};

use common::certs::*;
use common::collectors::*;
use common::export::*;
use common::*;

/// IPFIX over TLS: the collector requires furui's client certificate and
/// sees the identity configured for it; records arrive. A collector that
/// trusts another CA refuses the handshake, and the records wait in the
/// spool instead of going anywhere else.
#[test]
fn ipfix_over_tls_presents_furuis_certificate_and_spools_when_refused() {
    let (rig, certs, ids) = rig_with_certs(&["exporter"]);
    // A second CA the refusing collector trusts instead.
    sh(&format!(
        "cd {} && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other-ca.key -out other-ca.pem -days 2 -subj /CN=other 2>/dev/null",
        certs.display()
    ));
    let c = certs.display();
    let sink = |name: &str, port: u16| {
        format!(
            "\n[[recipients]]\nname = \"{name}\"\nrole = \"analyst\"\nidentity = \"{IDENTITY}\"\n[[recipients.grants]]\nmeasures = [\"inbound\"]\nfields = [\"initiator_port\", \"packets_forward\"]\npurpose = \"damage-prevention\"\n[[recipients.sinks]]\nkind = \"ipfix-tls\"\naddress = \"127.0.0.1:{port}\"\nserver_ca = \"{c}/ca.pem\"\nclient_cert = \"{c}/exporter.pem\"\nclient_key = \"{c}/exporter.key\"\n"
        )
    };
    let cfg = rig.config(
        "",
        &format!(
            "{prelude}[[purposes]]\nid = \"damage-prevention\"\ndamage_prevention = true\n{}{}",
            sink("trusting", 4743),
            sink("refusing", 4744),
            prelude = export_prelude(&rig),
        ),
    );
    let trusting = Collector::start(&rig.ns_cap, 4743, Some(tls_server(&certs, "ca.pem")));
    let refusing = Collector::start(&rig.ns_cap, 4744, Some(tls_server(&certs, "other-ca.pem")));
    let d = Daemon::start(&rig, &cfg);
    for i in 0..3u64 {
        let flow = format!("203.0.113.{},192.0.2.10,tcp,{},80", 50 + i, 8000 + i);
        rig.send(&["--count", "2", "--flow", &flow]);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while trusting.data_messages() < 3
        || d.metrics()
            .get("furui_export_spooled_total{recipient=\"refusing\",sink=\"ipfix-tls\"}")
            < 3
    {
        assert!(
            Instant::now() < deadline,
            "trusting got {} messages; refusing: spooled {}, sent {}",
            trusting.data_messages(),
            d.metrics()
                .get("furui_export_spooled_total{recipient=\"refusing\",sink=\"ipfix-tls\"}"),
            d.metrics()
                .get("furui_export_records_total{recipient=\"refusing\",sink=\"ipfix-tls\"}")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let peer = trusting.peer.lock().unwrap().expect("client certificate seen");
    let hex: String = peer.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        format!("sha256:{hex}"),
        ids[0],
        "the collector saw furui's configured certificate"
    );
    assert_eq!(
        refusing.data_messages(),
        0,
        "a collector that does not trust furui got data"
    );
    let addrs: Vec<std::net::Ipv4Addr> = (0..3).map(|i| std::net::Ipv4Addr::new(203, 0, 113, 50 + i)).collect();
    assert_no_address_bytes(&trusting.bytes.lock().unwrap(), &rig.path("keys"), &addrs);
    let m = d.metrics();
    assert_eq!(
        m.get("furui_export_records_total{recipient=\"trusting\",sink=\"ipfix-tls\"}"),
        3
    );
    assert_eq!(
        m.get("furui_export_records_total{recipient=\"refusing\",sink=\"ipfix-tls\"}"),
        0
    );
    assert_eq!(d.stop(), 0);
}
