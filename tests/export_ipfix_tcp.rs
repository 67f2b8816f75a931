//! IPFIX over TCP while the collectors are down: views wait in each sink's
//! bounded spool and are delivered in order when the collector is back.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::collectors::*;
use common::export::*;
use common::*;

/// Collectors down while records are selected, then up: the recipient with
/// room in its spool receives every record, in the order they were
/// selected, in a stream tshark's IPFIX dissector decodes; the recipient
/// with a tiny spool receives what fit, and the rest is counted as dropped.
#[test]
fn ipfix_over_tcp_spools_while_collectors_are_down_and_delivers_in_order() {
    let rig = Rig::new();
    let grant = "[[recipients.grants]]\nmeasures = [\"inbound\"]\nfields = [\"initiator_port\", \"packets_forward\"]\npurpose = \"damage-prevention\"\n";
    let cfg = rig.config(
        "",
        &format!(
            "{prelude}[[purposes]]\nid = \"damage-prevention\"\ndamage_prevention = true\n\n[[recipients]]\nname = \"keeper\"\nrole = \"analyst\"\nidentity = \"{IDENTITY}\"\n{grant}[[recipients.sinks]]\nkind = \"ipfix-tcp\"\naddress = \"127.0.0.1:4741\"\n\n[[recipients]]\nname = \"small\"\nrole = \"analyst\"\nidentity = \"{IDENTITY}\"\nspool_max_bytes = 300\n{grant}[[recipients.sinks]]\nkind = \"ipfix-tcp\"\naddress = \"127.0.0.1:4742\"\n",
            prelude = export_prelude(&rig),
        ),
    );
    let d = Daemon::start(&rig, &cfg);
    for i in 0..6 {
        let flow = format!("203.0.113.{},192.0.2.10,tcp,{},80", 20 + i, 5000 + i);
        rig.send(&["--count", &(i + 1).to_string(), "--flow", &flow]);
    }
    // The flows end after 1 s idle; their records find both collectors down.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = d.metrics();
        let keeper = m.get("furui_export_spooled_total{recipient=\"keeper\",sink=\"ipfix-tcp\"}");
        let small = m.get("furui_export_spooled_total{recipient=\"small\",sink=\"ipfix-tcp\"}")
            + m.get("furui_export_dropped_total{reason=\"spool_full\",recipient=\"small\"}");
        if keeper == 6 && small == 6 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "records not spooled: keeper {keeper}, small {small}, selected {}",
            m.get("furui_records_selected_total")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let m = d.metrics();
    let small_dropped = m.get("furui_export_dropped_total{reason=\"spool_full\",recipient=\"small\"}");
    assert!(small_dropped >= 1, "the 300-byte spool must overflow");
    assert!(m.get("furui_export_spool_bytes{recipient=\"small\",sink=\"ipfix-tcp\"}") <= 300);
    assert_eq!(
        m.get("furui_export_records_total{recipient=\"keeper\",sink=\"ipfix-tcp\"}"),
        0
    );

    // Collectors up; tcpdump records the keeper's stream for tshark.
    let pcap = rig.path("tcp.pcap");
    let tcpdump = Command::new("ip")
        .args(["netns", "exec", &rig.ns_cap, "tcpdump", "-i", "lo", "-U", "-w"])
        .arg(&pcap)
        .args(["tcp", "port", "4741"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let tcpdump_guard = KillOnDrop(tcpdump);
    std::thread::sleep(Duration::from_millis(500));
    let keeper = Collector::start(&rig.ns_cap, 4741, None);
    let small = Collector::start(&rig.ns_cap, 4742, None);
    let deadline = Instant::now() + Duration::from_secs(20);
    while keeper.data_messages() < 6 || small.data_messages() < (6 - small_dropped) as usize {
        assert!(Instant::now() < deadline, "spool not delivered:\n{}", d.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    let m = d.settled_metrics();
    assert_eq!(
        m.get("furui_export_records_total{recipient=\"keeper\",sink=\"ipfix-tcp\"}"),
        6
    );
    assert_eq!(
        m.get("furui_export_records_total{recipient=\"small\",sink=\"ipfix-tcp\"}"),
        6 - small_dropped
    );
    assert_eq!(
        m.get("furui_export_spool_bytes{recipient=\"keeper\",sink=\"ipfix-tcp\"}"),
        0
    );
    // Only the granted fields went over the wire: no address, raw or
    // pseudonymized (the grant has none).
    let addrs: Vec<std::net::Ipv4Addr> = (0..6).map(|i| std::net::Ipv4Addr::new(203, 0, 113, 20 + i)).collect();
    assert_no_address_bytes(&keeper.bytes.lock().unwrap(), &rig.path("keys"), &addrs);
    // Sequence numbers count data records: 0, 1, 2, ...
    let seqs: Vec<u32> = keeper.messages().iter().filter(|(_, d)| *d).map(|(s, _)| *s).collect();
    assert_eq!(seqs, (0..6).collect::<Vec<u32>>());
    assert_eq!(d.stop(), 0);
    drop(tcpdump_guard);

    // Order: as selected (the local records file has the selection order).
    let selected = rig.record_ports();
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&pcap)
        .args([
            "-d",
            "tcp.port==4741,cflow",
            "-Y",
            "cflow.srcport",
            "-T",
            "fields",
            "-e",
            "cflow.srcport",
            "-e",
            "cflow.packets",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let decoded: Vec<(u64, u64)> = text
        .lines()
        .flat_map(|l| {
            let mut f = l.split('\t');
            let ports: Vec<u64> = f
                .next()
                .unwrap_or("")
                .split(',')
                .filter_map(|x| x.parse().ok())
                .collect();
            let pkts: Vec<u64> = f
                .next()
                .unwrap_or("")
                .split(',')
                .filter_map(|x| x.parse().ok())
                .collect();
            ports.into_iter().zip(pkts).collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        decoded.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
        selected,
        "tshark:\n{text}"
    );
    for (port, pkts) in decoded {
        assert_eq!(pkts, port - 5000 + 1, "packet count of the flow from port {port}");
    }
}
