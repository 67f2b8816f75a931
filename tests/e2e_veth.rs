//! End-to-end tests on a veth pair in private namespaces: the real XDP
//! program, real AF_XDP sockets, the real daemon binary. Needs root.

mod common;

use std::time::{Duration, Instant};

use common::*;

const DOMESTIC: &str = "[domestic]\nprefixes = [\"192.0.2.0/24\", \"198.51.100.0/24\", \"2001:db8::/32\"]\n";

fn measures(transit: bool, inbound: bool, outbound: bool) -> String {
    let mut s = String::new();
    for (name, on) in [("transit", transit), ("inbound", inbound), ("outbound", outbound)] {
        s += &format!("[measures.{name}]\nenabled = {on}\n{WINDOW_OPEN}\n\n");
    }
    s
}

/// A rig whose daemon config authorizes every measure and loads
/// `rules/r.toml` with `ruleset`.
fn rig_with_ruleset(ruleset: &str) -> (Rig, std::path::PathBuf) {
    let rig = Rig::new();
    std::fs::create_dir(rig.path("rules")).unwrap();
    std::fs::write(rig.path("rules/r.toml"), ruleset).unwrap();
    let cfg = rig.config(
        "",
        &format!(
            "{DOMESTIC}\n{}\n[selection]\nrules_dir = \"rules\"\n",
            measures(true, true, true)
        ),
    );
    (rig, cfg)
}

const SELECT_C2: &str = "[[indicators]]\nname = \"c2\"\nprefixes = [\"203.0.113.0/24\", \"2001:4860:bad::/48\"]\n";

#[test]
fn domestic_traffic_never_reaches_userspace() {
    let rig = Rig::new();
    let cfg = rig.config("", &format!("{DOMESTIC}\n{}\n{SELECT_C2}", measures(true, true, true)));
    let d = Daemon::start(&rig, &cfg);
    let n = 400u64;
    // Domestic IPv4 and IPv6, with a marker, plus non-IP and malformed.
    rig.send(&[
        "--count",
        &n.to_string(),
        "--marker",
        "DOMESTIC-SECRET",
        "--flow",
        "192.0.2.1,198.51.100.1",
        "--flow",
        "2001:db8::1,2001:db8:9::1,tcp",
        "--non-ip",
        "30",
        "--malformed",
        "20",
    ]);
    // Positive control: the same generator's cross-border traffic does arrive.
    rig.send(&["--count", "50", "--flow", "203.0.113.7,8.8.8.8"]);
    let m = d.settled_metrics();
    assert_eq!(m.xdp("domestic", "drop"), 2 * n);
    assert_eq!(m.xdp("domestic", "redirect"), 0);
    assert_eq!(m.xdp("non_ip", "drop"), 30);
    assert_eq!(m.xdp("malformed", "drop"), 20);
    assert_eq!(m.xdp("non_ip", "redirect") + m.xdp("malformed", "redirect"), 0);
    assert_eq!(m.xdp("transit", "redirect"), 50);
    assert_eq!(
        m.sum("furui_frames_received_total"),
        50,
        "only the transit frames reached user space"
    );
    assert_eq!(count_in_process_memory(d.pid(), b"DOMESTIC-SECRET"), 0);
    assert_eq!(d.stop(), 0);
}

#[test]
fn unauthorized_measure_is_not_captured() {
    let rig = Rig::new();
    // inbound authorized; outbound disabled; transit's window is in the future.
    let body = format!(
        "{DOMESTIC}\n[measures.inbound]\nenabled = true\n{WINDOW_OPEN}\n\n[measures.outbound]\nenabled = false\n{WINDOW_OPEN}\n\n[measures.transit]\nenabled = true\nnot_before = \"2098-01-01T00:00:00Z\"\nnot_after = \"2099-01-01T00:00:00Z\"\n"
    );
    let d = Daemon::start(&rig, &rig.config("", &body));
    rig.send_line("--count 120 --flow 203.0.113.1,192.0.2.1 --flow 192.0.2.1,203.0.113.1 --flow 203.0.113.1,8.8.8.8");
    let m = d.settled_metrics();
    assert_eq!(m.xdp("inbound", "redirect"), 120);
    assert_eq!(m.xdp("outbound", "drop"), 120);
    assert_eq!(m.xdp("outbound", "redirect"), 0);
    assert_eq!(m.xdp("transit", "drop"), 120);
    assert_eq!(m.xdp("transit", "redirect"), 0);
    assert_eq!(m.sum("furui_frames_received_total"), 120);
    assert_eq!(m.get("furui_measure_authorized{measure=\"inbound\"}"), 1);
    assert_eq!(m.get("furui_measure_authorized{measure=\"outbound\"}"), 0);
    assert_eq!(m.get("furui_measure_authorized{measure=\"transit\"}"), 0);
    assert_eq!(d.stop(), 0);
}

#[test]
fn unauthorized_measure_is_not_captured_after_its_window_closes_mid_traffic() {
    let rig = Rig::new();
    let close_at = time::OffsetDateTime::now_utc() + time::Duration::seconds(4);
    let close = close_at.format(&time::format_description::well_known::Rfc3339).unwrap();
    let body = format!("{DOMESTIC}\n[measures.transit]\nenabled = true\nnot_before = \"2026-01-01T00:00:00Z\"\nnot_after = \"{close}\"\n");
    let d = Daemon::start(&rig, &rig.config("", &body));
    let mut gen = rig.send_background(&["--duration", "9", "--pps", "2000", "--flow", "203.0.113.1,8.8.8.8"]);
    // Wait until well after the window closed (plus one control tick).
    while time::OffsetDateTime::now_utc() < close_at + time::Duration::milliseconds(1500) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let after_close = d.metrics();
    let deadline = Instant::now() + Duration::from_secs(20);
    while gen.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "generator did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
    let m = d.settled_metrics();
    let redirected = m.xdp("transit", "redirect");
    assert!(
        redirected > 1000,
        "traffic was captured while the window was open: {redirected}"
    );
    assert_eq!(
        redirected,
        after_close.xdp("transit", "redirect"),
        "nothing captured after the window closed"
    );
    assert!(
        m.xdp("transit", "drop") > after_close.xdp("transit", "drop"),
        "traffic kept flowing and was dropped"
    );
    assert_eq!(m.sum("furui_frames_received_total"), redirected);
    assert_eq!(m.get("furui_measure_authorized{measure=\"transit\"}"), 0);
    assert!(
        d.log_text().contains("authorized=false"),
        "the closing is logged:\n{}",
        d.log_text()
    );
    assert_eq!(d.stop(), 0);
}

#[test]
fn every_frame_is_zeroed_before_reuse() {
    let rig = Rig::new();
    // Whole frames: every byte of the payload, marker included, is copied
    // to user space, and must be zeroed there.
    let cfg = rig.config(
        "snap = \"whole\"",
        &format!("{DOMESTIC}\n{}\n{SELECT_C2}", measures(true, true, true)),
    );
    let d = Daemon::start(&rig, &cfg);
    let marker = format!("PAYLOAD-MARKER-{:08x}", std::process::id());
    let n = 300u64;
    // Selected (c2) and unselected flows, IPv4 and IPv6, 200-byte frames.
    rig.send(&[
        "--count",
        &n.to_string(),
        "--size",
        "200",
        "--marker",
        &marker,
        "--flow",
        "203.0.113.9,192.0.2.1,udp",
        "--flow",
        "8.8.8.8,192.0.2.1,tcp",
        "--flow",
        "2001:4860:bad::1,2001:db8::1",
    ]);
    let m = d.settled_metrics();
    assert_eq!(m.sum("furui_frames_received_total"), 3 * n);
    assert_eq!(m.sum("furui_frames_erased_total"), 3 * n);
    assert_eq!(m.sum("furui_bytes_erased_total"), 3 * n * 200);
    assert!(m.get("furui_erase_latency_seconds_count") > 0);
    // Positive control: the scanner does see the daemon's memory (the
    // records path from its config is on its heap).
    let path = rig.path("records.jsonl").display().to_string();
    assert!(
        count_in_process_memory(d.pid(), path.as_bytes()) > 0,
        "memory scanner found nothing it should have"
    );
    assert_eq!(
        count_in_process_memory(d.pid(), marker.as_bytes()),
        0,
        "payload marker found in the daemon's memory"
    );
    assert_eq!(d.stop(), 0);
}

#[test]
fn selected_flows_become_records() {
    let rig = Rig::new();
    let cfg = rig.config(
        "",
        &format!(
            "{DOMESTIC}\n{}\n{SELECT_C2}\n[flows]\nidle_timeout_secs = 30\n",
            measures(true, true, true)
        ),
    );
    let d = Daemon::start(&rig, &cfg);
    // One biflow with a c2 peer: 10 packets in, 4 packets back, VLAN 100.
    rig.send_line("--count 10 --vlan 100 --size 100 --flow 203.0.113.5,192.0.2.10,tcp,4444,80");
    rig.send_line("--count 4 --vlan 100 --size 120 --flow 192.0.2.10,203.0.113.5,tcp,80,4444");
    // Unselected: foreign peer not in any indicator set.
    rig.send(&["--count", "10", "--flow", "198.18.0.1,192.0.2.10,udp"]);
    let m = d.settled_metrics();
    assert_eq!(m.sum("furui_frames_received_total"), 24);
    // Both flows are tracked; only the selected one will become a record.
    assert_eq!(m.get("furui_flows_active"), 2);
    // The ring has been idle since: the worker blocks in poll(), and its
    // next burst starts from the shortest nap (50 µs).
    let nap = m.0.iter().find(|(k, _)| k == "furui_idle_nap_seconds{queue=\"0\"}");
    assert_eq!(nap.map(|(_, v)| *v), Some(50e-6), "{:?}", m.0);
    assert_eq!(d.stop(), 0);
    let (recs, text) = rig.records();
    assert_eq!(recs.len(), 1, "exactly one selected flow:\n{text}");
    let r = &recs[0];
    assert_eq!(r["initiator"], "203.0.113.5");
    assert_eq!(r["initiator_port"], 4444);
    assert_eq!(r["responder"], "192.0.2.10");
    assert_eq!(r["responder_port"], 80);
    assert_eq!(r["protocol"], 6);
    assert_eq!(r["class"], "inbound");
    assert_eq!(r["queue"], 0);
    assert_eq!(r["vlans"], serde_json::json!([100]));
    assert_eq!(r["packets_forward"], 10);
    assert_eq!(r["packets_reverse"], 4);
    // IP length = frame size - 14 (Ethernet) - 4 (one VLAN tag).
    assert_eq!(r["bytes_forward"], 10 * (100 - 18));
    assert_eq!(r["bytes_reverse"], 4 * (120 - 18));
    assert_eq!(r["tcp_flags_forward"], 0x18);
    assert_eq!(r["tcp_flags_reverse"], 0x18);
    assert_eq!(r["indicator_set"], "c2");
    assert_eq!(r["end_reason"], "shutdown");
    assert!(r["first_seen_ns"].as_u64().unwrap() <= r["last_seen_ns"].as_u64().unwrap());
    // The record holds exactly the enumerated mechanical fields.
    let mut keys: Vec<&str> = r.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    keys.sort();
    let mut want = furui::flow::MechanicalRecord::FIELDS.to_vec();
    want.sort();
    assert_eq!(keys, want);
    assert!(!text.contains("198.18.0.1"), "unselected flow left a trace");
}

#[test]
fn skipping_erasure_is_detected() {
    // Fault injection (test builds only): leave 5 frames un-erased. The
    // counters and the memory scan must both notice — proof that the two
    // tests above can fail.
    let rig = Rig::new();
    let cfg = rig.config(
        "snap = \"whole\"",
        &format!("{DOMESTIC}\n{}", measures(true, true, true)),
    );
    let d = Daemon::start_with_env(&rig, &cfg, &[("FURUI_FAULT_SKIP_ERASE", "5")]);
    let marker = format!("FAULT-MARKER-{:08x}", std::process::id());
    rig.send(&["--count", "40", "--marker", &marker, "--flow", "203.0.113.9,8.8.8.8"]);
    let m = d.settled_metrics();
    assert_eq!(m.sum("furui_frames_received_total"), 40);
    assert_eq!(m.sum("furui_frames_erased_total"), 35);
    assert_eq!(count_in_process_memory(d.pid(), marker.as_bytes()), 5);
    assert_eq!(d.stop(), 0);
}

/// The snap: a rule reads the first 64 payload bytes, so the XDP program
/// copies the headers and those 64 bytes and nothing after them. With
/// erasure skipped for some frames (fault injection, test builds), the
/// marker inside the window is in the daemon's memory and matched by the
/// rule; the marker at the end of the same payloads never reached it.
#[test]
fn payload_past_the_rules_window_never_reaches_user_space() {
    let rig = Rig::new();
    let rules_dir = rig.path("rules");
    std::fs::create_dir(&rules_dir).unwrap();
    let inside = format!("INSIDE-{:08x}", std::process::id());
    let outside = format!("OUTSIDE-{:08x}", std::process::id());
    std::fs::write(
        rules_dir.join("r.toml"),
        format!("version = \"snap\"\n[[rule]]\nid = \"marker\"\nmeasures = [\"transit\"]\npayload = [{{ text = \"{inside}\", offset = 0, depth = 64 }}]\n"),
    )
    .unwrap();
    let cfg = rig.config(
        "",
        &format!(
            "{DOMESTIC}\n{}\n[selection]\nrules_dir = \"rules\"\n",
            measures(true, true, true)
        ),
    );
    let check = std::process::Command::new(FURUI)
        .arg("check-rules")
        .arg(&rules_dir)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(said.contains("snap: headers + 64 payload bytes"), "{said}");
    let d = Daemon::start_with_env(&rig, &cfg, &[("FURUI_FAULT_SKIP_ERASE", "5")]);
    // The frames carry the rule's pattern followed by bytes the ruleset
    // does not hold, so a copy of `in_frame` can only come from a frame:
    // the ruleset's own copies of the pattern (how many, and when the
    // matcher makes them, is the allocator's business) are not counted.
    let in_frame = format!("{inside}-IN-FRAME");
    let n = 40u64;
    rig.send_line(&format!(
        "--count {n} --size 300 --marker {in_frame} --tail-marker {outside} --flow 203.0.113.9,8.8.8.8,udp"
    ));
    let m = d.settled_metrics();
    assert_eq!(m.sum("furui_frames_received_total"), n);
    assert_eq!(m.sum("furui_frames_truncated_total"), n);
    assert_eq!(m.sum("furui_frame_bytes_seen_total"), n * 300);
    // 14 + 20 + 8 bytes of headers and 64 of payload copied per frame;
    // five frames left un-erased on purpose.
    assert_eq!(m.sum("furui_frames_erased_total"), n - 5);
    assert_eq!(m.sum("furui_bytes_erased_total"), (n - 5) * (42 + 64));
    assert_eq!(m.get("furui_rule_matches_total{rule=\"marker\"}"), n);
    // The XDP counters keep the frames' real length.
    assert_eq!(m.get("furui_xdp_bytes_total{class=\"transit\"}"), n * 300);
    assert_eq!(
        count_in_process_memory(d.pid(), in_frame.as_bytes()),
        5,
        "the window's bytes were copied"
    );
    assert_eq!(
        count_in_process_memory(d.pid(), outside.as_bytes()),
        0,
        "bytes past the window were copied"
    );
    // A reload whose rule reads the whole payload (no depth) rewrites the
    // snap: the next frames are copied whole, and none is cut.
    std::fs::write(
        rules_dir.join("r.toml"),
        format!("version = \"snap-2\"\n[[rule]]\nid = \"marker\"\nmeasures = [\"transit\"]\npayload = [{{ text = \"{outside}\" }}]\n"),
    )
    .unwrap();
    let (code, out) = rig.reload(&[]);
    assert_eq!(code, Some(0), "{out}");
    rig.send_line(&format!(
        "--count 10 --size 300 --marker {inside} --tail-marker {outside} --flow 203.0.113.9,8.8.8.8,udp"
    ));
    let m = d.settled_metrics();
    assert_eq!(
        m.sum("furui_frames_truncated_total"),
        n,
        "no frame cut after the reload"
    );
    assert_eq!(m.sum("furui_bytes_erased_total"), (n - 5) * (42 + 64) + 10 * 300);
    assert_eq!(
        m.get("furui_rule_matches_total{rule=\"marker\"}"),
        n + 10,
        "the tail marker is now read"
    );
    assert_eq!(d.stop(), 0);
}

/// Two RX queues, one worker each, pinned to its own CPU: the generator's
/// flows spread over both queues by their hash; each queue's worker erases
/// exactly what it received, and the XDP program redirected their sum.
#[test]
fn two_queues_two_pinned_workers_each_erase_what_they_receive() {
    let rig = Rig::with_queues(2);
    let cfg = rig.config(
        "queues = [0, 1]\ncpus = [0, 1]",
        &format!("{DOMESTIC}\n{}", measures(true, true, true)),
    );
    let d = Daemon::start(&rig, &cfg);
    let flows: Vec<String> = (0..16)
        .map(|i| format!("--flow 203.0.113.9,8.8.8.8,udp,{},53", 1000 + i))
        .collect();
    rig.send_line(&format!("--count 50 --size 200 {}", flows.join(" ")));
    let m = d.settled_metrics();
    let received: Vec<u64> = (0..2)
        .map(|q| m.get(&format!("furui_frames_received_total{{queue=\"{q}\"}}")))
        .collect();
    let erased: Vec<u64> = (0..2)
        .map(|q| m.get(&format!("furui_frames_erased_total{{queue=\"{q}\"}}")))
        .collect();
    assert_eq!(received.iter().sum::<u64>(), 16 * 50);
    assert_eq!(m.xdp("transit", "redirect"), 16 * 50);
    assert!(
        received.iter().all(|n| *n > 0),
        "both queues received frames: {received:?}"
    );
    assert_eq!(received, erased, "per queue, received = erased");
    let log = d.log_text();
    assert_eq!(log.matches("worker pinned").count(), 2, "{log}");
    assert_eq!(d.stop(), 0);
}

/// Busy polling on: the socket takes the options (veth has NAPI), the
/// worker says so, and every frame is still received and erased.
#[test]
fn a_busy_polling_worker_receives_and_erases_everything() {
    let rig = Rig::new();
    let cfg = rig.config(
        "busy_poll_us = 50\nbusy_poll_budget = 64",
        &format!("{DOMESTIC}\n{}", measures(true, true, true)),
    );
    let d = Daemon::start(&rig, &cfg);
    rig.send_line("--count 500 --size 200 --flow 203.0.113.9,8.8.8.8,udp");
    let m = d.settled_metrics();
    assert_eq!(m.sum("furui_frames_received_total"), 500);
    assert_eq!(m.sum("furui_frames_erased_total"), 500);
    let log = d.log_text();
    assert!(log.contains("busy polling on"), "{log}");
    assert_eq!(d.stop(), 0);
}

#[test]
fn reloading_rules_under_traffic_loses_nothing_and_records_carry_the_active_version() {
    let rig = Rig::new();
    let rules_dir = rig.path("rules");
    std::fs::create_dir(&rules_dir).unwrap();
    let ruleset = |v: &str, port: u16| {
        format!("version = \"{v}\"\n[[rule]]\nid = \"to-{port}\"\nmeasures = [\"transit\"]\ndst_ports = [\"{port}\"]\n")
    };
    std::fs::write(rules_dir.join("r.toml"), ruleset("A", 1000)).unwrap();
    let cfg = rig.config(
        "",
        &format!(
            "{DOMESTIC}\n{}\n[selection]\nrules_dir = \"rules\"\n",
            measures(true, true, true)
        ),
    );
    let d = Daemon::start(&rig, &cfg);
    // Background traffic the whole time (unselected), to catch any frame
    // lost while a reload swaps state.
    let mut bg = rig.send_background(&[
        "--duration",
        "30",
        "--pps",
        "20000",
        "--flow",
        "8.8.8.8,9.9.9.9,udp,7,7",
    ]);
    for phase in 0..20u16 {
        let (v, port) = if phase % 2 == 0 { ("A", 1000) } else { ("B", 2000) };
        if phase > 0 {
            std::fs::write(rules_dir.join("r.toml"), ruleset(v, port)).unwrap();
            // "ok" means every worker runs the new rules: the frames sent
            // right after it are judged by them, nothing else waited for.
            let (code, answer) = rig.reload(&[]);
            assert_eq!(code, Some(0), "reload {phase}: {answer}\n{}", d.log_text());
            assert!(
                answer.contains(&format!("ruleset version {v}")) && answer.contains("in force on 1 queue(s)"),
                "{answer}"
            );
        }
        // The frames sent before a reload may sit in the ring until after
        // it, and are then judged by the new rules (a reload applies
        // between batches). So each phase sends the port its rules do not
        // select first, then the selected one, and waits until the worker
        // has counted the latter: one queue keeps order, so the whole
        // phase was judged by its own rules before the next reload.
        let sport = (10_000 + phase).to_string();
        let other = if port == 1000 { 2000 } else { 1000 };
        for dport in [other, port] {
            rig.send(&[
                "--count",
                "5",
                "--flow",
                &format!("203.0.113.1,8.8.4.4,udp,{sport},{dport}"),
            ]);
        }
        d.wait_for_metric(
            &format!("furui_rule_matches_total{{rule=\"to-{port}\"}}"),
            5 * (u64::from(phase) / 2 + 1),
            &format!("phase {phase} judged"),
        );
    }
    let _ = bg.kill();
    let _ = bg.wait();
    let m = d.settled_metrics();
    assert_eq!(m.get("furui_config_reloads_total{result=\"ok\"}"), 19);
    assert_eq!(
        m.sum("furui_xsk_rx_dropped_total") + m.sum("furui_xsk_rx_ring_full_total"),
        0,
        "frames lost"
    );
    assert_eq!(m.sum("furui_frames_received_total"), m.xdp("transit", "redirect"));
    assert_eq!(m.sum("furui_frames_erased_total"), m.sum("furui_frames_received_total"));
    assert_eq!(m.get("furui_ruleset_version{version=\"B\"}"), 1);
    assert_eq!(m.get("furui_rule_matches_total{rule=\"to-1000\"}"), 10 * 5);
    assert_eq!(m.get("furui_rule_matches_total{rule=\"to-2000\"}"), 10 * 5);
    assert_eq!(d.stop(), 0);
    let (recs, text) = rig.records();
    assert_eq!(recs.len(), 20, "one selected flow per phase:\n{text}");
    for r in &recs {
        let phase = r["initiator_port"].as_u64().unwrap() - 10_000;
        let (v, port) = if phase % 2 == 0 { ("A", 1000) } else { ("B", 2000) };
        assert_eq!(r["responder_port"], port, "{r}");
        assert_eq!(r["ruleset_version"], v, "{r}");
        assert_eq!(r["rules"], serde_json::json!([format!("to-{port}")]), "{r}");
        assert_eq!(r["packets_forward"], 5);
    }
}

/// JA4 rules on live traffic: a TLS ClientHello (FoxIO's ja4__tls12
/// capture) and a QUIC v1 Initial (aioquic, tests/data) go over the veth;
/// each selects its flow by fingerprint, the records carry the JA4, and the
/// QUIC server name — plaintext only after decryption — is nowhere in the
/// daemon's memory afterwards (the Initial plaintext is zeroed).
#[test]
fn tls_and_quic_client_hellos_select_flows_by_ja4_on_live_traffic() {
    let tls_ja4 = "t13d1715h2_5b57614c22b0_3d5424432f57";
    let quic_ja4 = std::fs::read_to_string(data_file("quic-expected-ja4.txt"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("quic-v1-initial.pcap ").map(str::to_string))
        .unwrap();
    let (rig, cfg) = rig_with_ruleset(&format!(
        "version = \"fp1\"\n[[rule]]\nid = \"tls-client\"\nmeasures = [\"transit\"]\nja4 = [\"{tls_ja4}\"]\n\n[[rule]]\nid = \"quic-client\"\nmeasures = [\"outbound\"]\nja4 = [\"{quic_ja4}\"]\n"
    ));
    let d = Daemon::start(&rig, &cfg);
    let tls = shared_pcap("ja4__tls12.pcap");
    let quic = data_file("quic-v1-initial.pcap");
    rig.send(&[
        "--count",
        "5",
        "--flow",
        "203.0.113.50,8.8.8.8,udp,5000,443",
        "--pcap",
        tls.to_str().unwrap(),
        "--pcap",
        quic.to_str().unwrap(),
    ]);
    let m = d.settled_metrics();
    assert_eq!(m.sum("furui_frames_received_total"), 7);
    assert_eq!(m.sum("furui_frames_erased_total"), 7);
    assert_eq!(m.get("furui_rule_matches_total{rule=\"tls-client\"}"), 1);
    assert_eq!(m.get("furui_rule_matches_total{rule=\"quic-client\"}"), 1);
    // The CRYPTO stream was charged to the queue's budget and gave it back.
    assert_eq!(m.get("furui_reassembly_budget_bytes{queue=\"0\"}"), 32 << 20);
    assert_eq!(m.get("furui_reassembly_bytes{queue=\"0\"}"), 0);
    assert_eq!(m.get("furui_reassembly_refused_total{queue=\"0\"}"), 0);
    assert_eq!(
        count_in_process_memory(d.pid(), b"quic.example"),
        0,
        "QUIC plaintext left in memory"
    );
    assert_eq!(d.stop(), 0);
    let (mut recs, text) = rig.records();
    recs.sort_by_key(|r| r["protocol"].as_u64());
    assert_eq!(recs.len(), 2, "{text}");
    assert_eq!(recs[0]["ja4"], tls_ja4);
    assert_eq!(recs[0]["rules"], serde_json::json!(["tls-client"]));
    assert_eq!(recs[0]["class"], "transit");
    assert_eq!(recs[1]["ja4"], quic_ja4.as_str());
    assert_eq!(recs[1]["rules"], serde_json::json!(["quic-client"]));
    assert_eq!(recs[1]["class"], "outbound");
    assert_eq!(recs[1]["responder_port"], 443);
    for sni in ["quic.example", "mozilla"] {
        assert!(!text.contains(sni), "server name {sni} is match-only: {text}");
    }
}

/// A sealed payload signature on live traffic: the packet that carries it
/// selects its flow; the record names the rule and holds neither the
/// signature nor any byte around it; the log neither; and the daemon's
/// memory holds no copy from the traffic — the payload around the match
/// is gone, and the signature bytes occur exactly as often as before the
/// traffic (the ruleset's own copy, from loading the rules file).
#[test]
fn a_sealed_signature_selects_a_flow_and_leaves_no_bytes_behind() {
    let signature = format!("SEALED-SIG-{:08x}", std::process::id());
    let context = format!("CTX-{:08x}-", std::process::id().wrapping_mul(2_654_435_761));
    let (rig, cfg) = rig_with_ruleset(&format!(
        "version = \"sig1\"\n[[rule]]\nid = \"sealed-command\"\nmeasures = [\"inbound\"]\npayload = [{{ text = \"{signature}\" }}]\n"
    ));
    let d = Daemon::start(&rig, &cfg);
    let payload = format!("{context}{signature}-TAIL");
    rig.send(&[
        "--count",
        "20",
        "--size",
        "200",
        "--marker",
        &payload,
        "--flow",
        "198.18.0.9,192.0.2.1,tcp,4444,80",
    ]);
    // Same size, no signature: not selected.
    rig.send(&[
        "--count",
        "20",
        "--size",
        "200",
        "--marker",
        &context,
        "--flow",
        "198.18.0.10,192.0.2.1,tcp,4445,80",
    ]);
    let m = d.settled_metrics();
    assert_eq!(m.sum("furui_frames_received_total"), 40);
    assert_eq!(m.sum("furui_frames_erased_total"), 40);
    assert_eq!(m.get("furui_rule_matches_total{rule=\"sealed-command\"}"), 20);
    assert_eq!(
        count_in_process_memory(d.pid(), context.as_bytes()),
        0,
        "payload around the match left in memory"
    );
    // The signature itself is in the ruleset (and in matchers that
    // workers build when they start, so a count of it races with
    // start-up); only frames carry it followed by `-TAIL`.
    assert_eq!(
        count_in_process_memory(d.pid(), format!("{signature}-TAIL").as_bytes()),
        0,
        "the traffic left copies of the signature in memory"
    );
    assert_eq!(d.stop(), 0);
    let (recs, text) = rig.records();
    assert_eq!(recs.len(), 1, "{text}");
    assert_eq!(recs[0]["rules"], serde_json::json!(["sealed-command"]));
    assert_eq!(recs[0]["initiator"], "198.18.0.9");
    assert_eq!(recs[0]["packets_forward"], 20);
    for (what, file) in [("records", text), ("log", d_log(&rig))] {
        assert!(
            !file.contains(&signature) && !file.contains(&context),
            "{what} holds payload bytes:\n{file}"
        );
    }
}

fn d_log(rig: &Rig) -> String {
    std::fs::read_to_string(rig.path("furui.log")).unwrap_or_default()
}
