//! #19 item 1: a three-node NATS JetStream cluster as the bus. A stream
//! with three replicas; the stream's leader is killed during traffic, then
//! the new leader is made to step down during traffic. Every view the
//! daemon counts as sent is in the stream exactly once, and nothing is
//! missing beyond what the drop counters say.

mod common;

use std::time::{Duration, Instant};

use common::collectors::*;
use common::export::*;
use common::*;

const FLOWS_PER_ROUND: u64 = 40;
const ROUNDS: u64 = 12;

fn flow(i: u64) -> String {
    format!("203.0.113.{},192.0.2.10,tcp,{},80", 1 + i % 200, 10_000 + i)
}

/// The node (index into CLUSTER_PORTS) that leads `stream`, asked through
/// a live node's port.
fn leader(ns: &str, via: u16, stream: &str) -> Option<usize> {
    let info = nats_request(ns, via, &format!("$JS.API.STREAM.INFO.{stream}"), "").ok()?;
    let name = info["cluster"]["leader"].as_str()?;
    name.strip_prefix('n')?.parse().ok()
}

#[test]
fn every_acknowledged_view_is_in_the_r3_stream_once_across_a_node_kill_and_a_leader_move() {
    let rig = Rig::new();
    let store = rig.path("cluster");
    std::fs::create_dir_all(&store).unwrap();
    let mut nodes: Vec<Option<KillOnDrop>> = nats_cluster(&rig, &store).into_iter().map(Some).collect();
    let servers: Vec<String> = CLUSTER_PORTS
        .iter()
        .map(|p| format!("\"nats://127.0.0.1:{p}\""))
        .collect();
    let cfg = rig.config(
        "",
        &format!(
            "{prelude}[[purposes]]\nid = \"damage-prevention\"\ndamage_prevention = true\n\n[[recipients]]\nname = \"bus\"\nrole = \"analyst\"\nidentity = \"{IDENTITY}\"\n[[recipients.grants]]\nmeasures = [\"inbound\"]\nfields = [\"initiator_port\", \"responder\"]\npurpose = \"damage-prevention\"\n[[recipients.sinks]]\nkind = \"nats\"\nservers = [{servers}]\nreplicas = 3\n",
            prelude = export_prelude(&rig),
            servers = servers.join(", "),
        ),
    );
    let d = Daemon::start(&rig, &cfg);
    let published = "furui_export_records_total{recipient=\"bus\",sink=\"nats\"}";
    let stream = "FURUI-bus";

    // Traffic in rounds; the first round creates the R3 stream.
    let send_round = |r: u64| {
        let args: Vec<String> = (r * FLOWS_PER_ROUND..(r + 1) * FLOWS_PER_ROUND)
            .flat_map(|i| ["--flow".to_string(), flow(i)])
            .collect();
        let mut a: Vec<&str> = vec!["--count", "2"];
        a.extend(args.iter().map(String::as_str));
        rig.send(&a);
    };
    send_round(0);
    d.wait_for_metric(published, FLOWS_PER_ROUND, "the first round published");
    let info = nats_request(&rig.ns_cap, 4222, &format!("$JS.API.STREAM.INFO.{stream}"), "").unwrap();
    assert_eq!(info["config"]["num_replicas"], 3, "{info}");
    assert_eq!(
        info["cluster"]["replicas"].as_array().map(Vec::len),
        Some(2),
        "a leader and two followers: {info}"
    );

    let mut killed_at = None;
    let mut stepped_down_at = None;
    let mut gone = None;
    let mut elected_after = None;
    for r in 1..ROUNDS {
        send_round(r);
        if r == 3 {
            // Kill the stream's leader (SIGKILL: no goodbye to the cluster).
            let l = leader(&rig.ns_cap, 4222, stream).expect("a stream leader");
            let mut node = nodes[l].take().unwrap();
            node.0.kill().unwrap();
            node.0.wait().unwrap();
            std::mem::forget(node);
            gone = Some(l);
            killed_at = Some((Instant::now(), d.metrics().get(published)));
        }
        if r == 7 {
            // Make the new leader step down: leadership moves to the
            // other surviving node.
            let via = CLUSTER_PORTS[(gone.unwrap() + 1) % 3];
            let wait = Instant::now() + Duration::from_secs(30);
            let before = loop {
                match leader(&rig.ns_cap, via, stream) {
                    Some(l) if Some(l) != gone => break l,
                    _ => assert!(Instant::now() < wait, "no new stream leader 30 s after the kill"),
                }
                std::thread::sleep(Duration::from_millis(100));
            };
            elected_after = Some(killed_at.unwrap().0.elapsed());
            let answer = nats_request(
                &rig.ns_cap,
                via,
                &format!("$JS.API.STREAM.LEADER.STEPDOWN.{stream}"),
                "",
            )
            .unwrap();
            assert_eq!(answer["success"], true, "{answer}");
            let wait = Instant::now() + Duration::from_secs(30);
            while leader(&rig.ns_cap, via, stream).is_none_or(|l| l == before) {
                assert!(Instant::now() < wait, "leadership did not move");
                std::thread::sleep(Duration::from_millis(100));
            }
            stepped_down_at = Some((Instant::now(), d.metrics().get(published)));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let total = ROUNDS * FLOWS_PER_ROUND;
    // Everything the daemon selected is sent once the spool has drained.
    let deadline = Instant::now() + Duration::from_secs(60);
    let settled = loop {
        let m = d.metrics();
        let dropped: u64 = ["queue_full", "spool_full", "spool_error", "spool_torn", "spool_corrupt"]
            .iter()
            .map(|r| {
                m.get(&format!(
                    "furui_export_dropped_total{{reason=\"{r}\",recipient=\"bus\"}}"
                ))
            })
            .sum();
        if m.get(published) + dropped >= total
            && m.get("furui_export_spool_bytes{recipient=\"bus\",sink=\"nats\"}") == 0
        {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "views still not sent: {}; metrics: {:?}; the daemon said: {}",
            m.get(published),
            m.0.iter()
                .filter(|(k, _)| k.contains("export") || k.contains("records_total"))
                .collect::<Vec<_>>(),
            d.log_text()
                .lines()
                .filter(|l| l.to_lowercase().contains("nats"))
                .take(60)
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let spooled = settled.get("furui_export_spooled_total{recipient=\"bus\",sink=\"nats\"}");
    let duplicates = settled.get("furui_export_duplicates_total{recipient=\"bus\",sink=\"nats\"}");
    let sent = settled.get(published);
    assert_eq!(d.stop(), 0);
    let selected = rig.record_ports();
    assert_eq!(selected.len() as u64, total, "every flow selected");
    assert_eq!(sent, total, "nothing dropped: every selected view acknowledged");

    let survivor = CLUSTER_PORTS[(gone.unwrap() + 1) % 3];
    let got = nats_read_at(&rig.ns_cap, survivor, stream, "furui.records.bus");
    let mut ports: Vec<u64> = got.iter().map(|v| v["initiator_port"].as_u64().unwrap()).collect();
    let mut seqs: Vec<u64> = got.iter().map(|v| v["seq"].as_u64().unwrap()).collect();
    ports.sort_unstable();
    seqs.sort_unstable();
    seqs.dedup();
    let mut want = selected.clone();
    want.sort_unstable();
    assert_eq!(ports, want, "every acknowledged view in the stream, exactly once");
    assert_eq!(seqs.len(), got.len(), "no message id twice");
    assert!(got.iter().all(|v| v["appliance"] == APPLIANCE));
    assert!(spooled > 0, "the failover was felt (views waited in the spool)");

    // A resend after a lost acknowledgement: the same view (the same
    // message id) again is acknowledged as a duplicate, and not stored.
    let sink = furui::config::sinks::NatsSink {
        servers: CLUSTER_PORTS.iter().map(|p| format!("127.0.0.1:{p}")).collect(),
        stream: stream.into(),
        subject: "furui.records.bus".into(),
        replicas: 3,
        ack_window: 4,
        dedup_window: Duration::from_secs(120),
        tls: None,
        auth: furui::config::sinks::NatsAuth::None,
    };
    let again = furui::export::project::View {
        appliance: APPLIANCE.into(),
        seq: got[0]["seq"].as_u64().unwrap(),
        ..Default::default()
    };
    let (first, dups) = in_netns(&rig.ns_cap, move || {
        use furui::export::Sink;
        let mut nats = furui::export::nats::NatsJetStream::open(&sink).unwrap();
        let r = nats.send_batch(&[(0, &again), (0, &again)]);
        (r.iter().all(Result::is_ok), nats.duplicates())
    });
    assert!(first, "a resend is acknowledged");
    assert_eq!(dups, 2, "both resends dropped by their message id");
    assert_eq!(
        nats_read_at(&rig.ns_cap, survivor, stream, "furui.records.bus").len(),
        got.len()
    );

    let (k_at, k_sent) = killed_at.unwrap();
    let (s_at, s_sent) = stepped_down_at.unwrap();
    eprintln!(
        "FIGURES cluster failover: {total} views, {spooled} spooled during the failovers, {duplicates} resends dropped by message id; {k_sent} sent before the leader was killed, a new stream leader {:.1} s after the kill, {s_sent} sent before the step-down ({:.1} s after the kill); all sent {:.1} s after the kill",
        elected_after.unwrap().as_secs_f64(),
        (s_at - k_at).as_secs_f64(),
        k_at.elapsed().as_secs_f64()
    );
    drop(nodes);
}
