//! End-to-end, on a veth pair in private namespaces, for every
//! encapsulation furui opens: the real XDP program cuts on the inner
//! header, domestic inner traffic never reaches user space, every
//! cross-border inner frame is captured and erased, and the records are of
//! the inner flows with their tunnel id. Needs root.

mod common;

use common::*;

const DOMESTIC: &str = "[domestic]\nprefixes = [\"192.0.2.0/24\", \"198.51.100.0/24\", \"2001:db8::/32\"]\n";
const SELECT: &str = "[[indicators]]\nname = \"c2\"\nprefixes = [\"203.0.113.0/24\"]\n";

/// (generator spelling, record `encap`, record `tunnel_id`)
const ENCAPS: [(&str, &str, Option<u64>); 12] = [
    ("mpls:1000", "mpls", Some(1000)),
    ("gre:42", "gre", Some(42)),
    ("gre-eth:43", "gre", Some(43)),
    ("gre-mpls:2000", "gre/mpls", Some(2000)),
    ("erspan1", "erspan", None),
    ("erspan2:666", "erspan", Some(666)),
    ("erspan3:77", "erspan", Some(77)),
    ("vxlan:5001", "vxlan", Some(5001)),
    ("geneve:123", "geneve", Some(123)),
    ("gtpu:305419896", "gtpu", Some(305_419_896)),
    ("ipip", "ipip", None),
    ("mpls-udp:21", "mpls_udp", Some(21)),
];

/// Outer endpoints: the router and probe in the carrier's own space (the
/// usual case), then foreign ones.
const OUTER: [(&str, &str); 2] = [("192.0.2.1", "192.0.2.2"), ("203.0.113.200", "8.8.4.4")];

/// Every measure authorized, its window open.
fn all_measures() -> String {
    ["transit", "inbound", "outbound"]
        .iter()
        .map(|m| format!("[measures.{m}]\nenabled = true\n{WINDOW_OPEN}\n\n"))
        .collect()
}

#[test]
fn every_encapsulation_is_cut_on_its_inner_header_end_to_end() {
    let rig = Rig::new();
    let measures = all_measures();
    let cfg = rig.config(
        "",
        &format!("{DOMESTIC}\n{measures}\n{SELECT}\n[flows]\nidle_timeout_secs = 300\n"),
    );
    let d = Daemon::start(&rig, &cfg);
    let n = 10u64;
    let mut expect_records = Vec::new();
    let mut before = d.settled_metrics();
    for (i, (spec, encap, id)) in ENCAPS.iter().enumerate() {
        // A source port per encapsulation: flows of encapsulations without
        // a keying tunnel id (MPLS, IP-in-IP) stay apart.
        let port = 20000 + i as u16 * 10;
        for (o, (os, od)) in OUTER.iter().enumerate() {
            let wrap = format!("{spec},{os},{od}");
            let p = port + o as u16;
            rig.send(&[
                "--count",
                &n.to_string(),
                "--marker",
                "DOMESTIC-IN-A-TUNNEL",
                "--encap",
                &wrap,
                "--flow",
                &format!("192.0.2.10,198.51.100.20,udp,{p},53"),
            ]);
            rig.send(&[
                "--count",
                &n.to_string(),
                "--vlan",
                "100",
                "--encap",
                &wrap,
                "--flow",
                &format!("203.0.113.5,192.0.2.10,udp,{p},53"),
                "--flow",
                &format!("198.51.100.20,203.0.113.9,udp,{p},53"),
                "--flow",
                &format!("203.0.113.5,8.8.8.8,udp,{p},53"),
            ]);
            for (s, dst) in [
                ("203.0.113.5", "192.0.2.10"),
                ("198.51.100.20", "203.0.113.9"),
                ("203.0.113.5", "8.8.8.8"),
            ] {
                expect_records.push((s.to_string(), p, dst.to_string(), encap.to_string(), *id));
            }
        }
        let m = d.settled_metrics();
        let delta = |class: &str, action: &str| m.xdp(class, action) - before.xdp(class, action);
        let ctx = format!("{spec}:\n{}", d.log_text());
        assert_eq!(delta("domestic", "drop"), 2 * n, "{ctx}");
        assert_eq!(delta("domestic", "redirect"), 0, "{ctx}");
        for class in ["inbound", "outbound", "transit"] {
            assert_eq!(delta(class, "redirect"), 2 * n, "{class}, {ctx}");
        }
        for class in ["undecided", "too_deep", "malformed", "non_ip"] {
            assert_eq!(m.sum_class(class) - before.sum_class(class), 0, "{class}, {ctx}");
        }
        let received = m.sum("furui_frames_received_total") - before.sum("furui_frames_received_total");
        assert_eq!(received, 6 * n, "{ctx}");
        assert_eq!(m.sum("furui_frames_erased_total"), m.sum("furui_frames_received_total"));
        let outer_encap = encap.split('/').next().unwrap();
        let opened = format!("furui_xdp_encap_packets_total{{encap=\"{outer_encap}\",outcome=\"opened\"}}");
        assert_eq!(m.get(&opened) - before.get(&opened), 8 * n, "{ctx}");
        assert_eq!(m.sum("furui_parse_errors_total"), 0, "{ctx}");
        // Every captured frame came with the kernel walk's metadata: user
        // space parsed the inner packet where it said, without walking.
        assert_eq!(m.sum("furui_frames_without_metadata_total"), 0, "{ctx}");
        before = m;
    }
    assert_eq!(count_in_process_memory(d.pid(), b"DOMESTIC-IN-A-TUNNEL"), 0);
    assert_eq!(d.stop(), 0);

    let (records, text) = rig.records();
    let mut got: Vec<_> = records
        .iter()
        .map(|r| {
            (
                r["initiator"].as_str().unwrap().to_string(),
                r["initiator_port"].as_u64().unwrap() as u16,
                r["responder"].as_str().unwrap().to_string(),
                r["encap"].as_str().unwrap().to_string(),
                r["tunnel_id"].as_u64(),
                r["packets_forward"].as_u64().unwrap(),
                r["vlans"].to_string(),
            )
        })
        .collect();
    got.sort();
    let mut want: Vec<_> = expect_records
        .into_iter()
        .map(|(s, p, d, e, id)| (s, p, d, e, id, n, "[100]".to_string()))
        .collect();
    want.sort();
    assert_eq!(got, want);
    // No outer endpoint appears in any record.
    for (os, od) in OUTER {
        assert!(!text.contains(&format!("\"{os}\"")) && !text.contains(&format!("\"{od}\"")));
    }
}

#[test]
fn an_encapsulation_not_opened_is_never_captured_end_to_end() {
    let rig = Rig::new();
    let measures = all_measures();
    // VXLAN is not opened: its frames, whatever their outer header, are
    // undecided. GRE is classified on its outer header, as asked.
    let cfg = rig.config(
        "",
        &format!(
            "{DOMESTIC}\n{measures}\n{SELECT}\n[decap]\nopen = [\"mpls\", \"erspan\", \"geneve\", \"gtpu\", \"ipip\", \"mpls_udp\"]\nouter = [\"gre\"]\n"
        ),
    );
    let d = Daemon::start(&rig, &cfg);
    assert!(
        d.log_text().contains("gre frames are classified on their OUTER header"),
        "the warning is logged:\n{}",
        d.log_text()
    );
    let n = 25u64;
    rig.send(&[
        "--count",
        &n.to_string(),
        "--marker",
        "DOMESTIC-IN-VXLAN",
        "--encap",
        "vxlan:9,203.0.113.200,8.8.4.4",
        "--flow",
        "192.0.2.10,198.51.100.20",
        "--flow",
        "203.0.113.5,8.8.8.8",
    ]);
    // GRE between foreign endpoints: captured as transit by its outer
    // header; between domestic ones: dropped as domestic.
    rig.send(&[
        "--count",
        &n.to_string(),
        "--encap",
        "gre,203.0.113.200,8.8.4.4",
        "--flow",
        "203.0.113.5,192.0.2.10",
    ]);
    rig.send(&[
        "--count",
        &n.to_string(),
        "--encap",
        "gre,192.0.2.1,192.0.2.2",
        "--flow",
        "203.0.113.5,8.8.8.8",
    ]);
    let m = d.settled_metrics();
    assert_eq!(m.xdp("undecided", "drop"), 2 * n);
    assert_eq!(m.xdp("undecided", "redirect"), 0);
    assert_eq!(
        m.get("furui_xdp_encap_packets_total{encap=\"vxlan\",outcome=\"not_opened\"}"),
        2 * n
    );
    assert_eq!(
        m.get("furui_xdp_encap_packets_total{encap=\"gre\",outcome=\"outer\"}"),
        2 * n
    );
    assert_eq!(m.xdp("transit", "redirect"), n);
    assert_eq!(m.xdp("domestic", "drop"), n);
    assert_eq!(m.sum("furui_frames_received_total"), n);
    assert_eq!(m.sum("furui_frames_erased_total"), n);
    assert_eq!(count_in_process_memory(d.pid(), b"DOMESTIC-IN-VXLAN"), 0);
    assert_eq!(d.stop(), 0);
}

#[test]
fn generic_xdp_also_hands_the_walks_metadata_to_user_space() {
    // Generic (skb) XDP, as on a NIC whose driver has no native XDP.
    let rig = Rig::new();
    let measures = format!("[measures.transit]\nenabled = true\n{WINDOW_OPEN}\n");
    let cfg = rig.config("xdp_mode = \"generic\"", &format!("{DOMESTIC}\n{measures}\n{SELECT}"));
    let d = Daemon::start(&rig, &cfg);
    let n = 30u64;
    rig.send(&[
        "--count",
        &n.to_string(),
        "--encap",
        "geneve:77,192.0.2.1,192.0.2.2",
        "--encap",
        "ipip,192.0.2.3,192.0.2.4",
        "--flow",
        "203.0.113.5,8.8.8.8,tcp,5555,443",
    ]);
    let m = d.settled_metrics();
    assert_eq!(m.xdp("transit", "redirect"), n);
    assert_eq!(m.sum("furui_frames_received_total"), n);
    assert_eq!(m.sum("furui_frames_erased_total"), n);
    assert_eq!(m.sum("furui_frames_without_metadata_total"), 0);
    assert_eq!(d.stop(), 0);
    let (records, _) = rig.records();
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(
        (
            &r["initiator"],
            &r["responder_port"],
            &r["encap"],
            &r["tunnel_id"],
            &r["packets_forward"]
        ),
        (
            &serde_json::json!("203.0.113.5"),
            &serde_json::json!(443),
            &serde_json::json!("ipip/geneve"),
            &serde_json::json!(77),
            &serde_json::json!(n)
        )
    );
}
