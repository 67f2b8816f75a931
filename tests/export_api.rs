//! The mutual-TLS HTTPS API: records by grant from a cursor, refusals for
//! everyone else, and Art. 29 aggregates that never carry records.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::certs::*;
use common::export::*;
use common::*;

/// The mTLS API: a recipient's client certificate reads exactly its
/// granted fields as NDJSON from a cursor; no certificate fails the
/// handshake; a certificate of no recipient, the oversight role and a
/// recipient without an `api` grant get 403; plain HTTP gets nothing.
#[test]
fn the_https_api_requires_mutual_tls_and_serves_exactly_the_granted_fields() {
    let (rig, certs, ids) = rig_with_certs(&["analyst", "stranger", "inspector", "noapi"]);
    let grant = "[[recipients.grants]]\nmeasures = [\"inbound\"]\nfields = [\"initiator\", \"responder_port\", \"packets_forward\"]\npurpose = \"damage-prevention\"\n";
    let c = certs.display();
    let cfg = rig.config(
        "",
        &format!(
            "{prelude}[audit]\ndir = \"{audit}\"\ncheckpoint_secs = 1\n\n[api]\nlisten = \"127.0.0.1:9443\"\ncert = \"{c}/server.pem\"\nkey = \"{c}/server.key\"\nclient_ca = \"{c}/ca.pem\"\n\n[[purposes]]\nid = \"damage-prevention\"\ndamage_prevention = true\n\n[[recipients]]\nname = \"analyst\"\nrole = \"analyst\"\nidentity = \"{a}\"\n{grant}[[recipients.sinks]]\nkind = \"api\"\n\n[[recipients]]\nname = \"inspector\"\nrole = \"oversight\"\nidentity = \"{o}\"\n{grant}\n[[recipients]]\nname = \"noapi\"\nrole = \"analyst\"\nidentity = \"{n}\"\n{grant}",
            prelude = export_prelude(&rig),
            audit = rig.path("audit").display(),
            a = ids[0],
            o = ids[2],
            n = ids[3],
        ),
    );
    let d = Daemon::start(&rig, &cfg);
    for i in 0..3u64 {
        let flow = format!("203.0.113.{},192.0.2.10,tcp,{},{}", 40 + i, 7000 + i, 80 + i);
        rig.send(&["--count", &(i + 1).to_string(), "--flow", &flow]);
    }
    d.wait_for_metric(
        "furui_export_records_total{recipient=\"analyst\",sink=\"api\"}",
        3,
        "views not stored for the API",
    );
    let curl = |args: &str| -> (bool, String) {
        let out = Command::new("sh")
            .args([
                "-c",
                &format!(
                    "cd {c} && ip netns exec {} curl -sS -m 5 -w '\\nHTTP %{{http_code}}' {args}",
                    rig.ns_cap
                ),
            ])
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let url = "https://127.0.0.1:9443/v1/records";
    let as_client = |who: &str, q: &str| curl(&format!("--cacert ca.pem --cert {who}.pem --key {who}.key '{url}{q}'"));

    let (ok, body) = as_client("analyst", "?after=0");
    assert!(ok && body.ends_with("HTTP 200"), "{body}");
    let lines: Vec<serde_json::Value> = body
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{body}");
    for v in &lines {
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "appliance",
                "cursor",
                "initiator",
                "key_epoch",
                "packets_forward",
                "responder_port",
                "seq"
            ],
            "{v}"
        );
        assert_eq!(v["appliance"], common::APPLIANCE, "{v}");
        let original = format!("203.0.113.{}", 39 + v["packets_forward"].as_u64().unwrap());
        let epoch = v["key_epoch"].as_str().unwrap();
        assert_eq!(
            v["initiator"].as_str().unwrap(),
            pseudonym(&rig, epoch, &original),
            "not the pseudonym of {original}: {v}"
        );
    }
    let first = lines[0]["cursor"].as_u64().unwrap();
    let (_, rest) = as_client("analyst", &format!("?after={first}"));
    assert_eq!(
        rest.lines().filter(|l| l.starts_with('{')).count(),
        2,
        "paging from a cursor: {rest}"
    );

    for who in ["stranger", "inspector", "noapi"] {
        let (_, body) = as_client(who, "?after=0");
        assert!(body.ends_with("HTTP 403"), "{who}: {body}");
        assert!(!body.contains("packets_forward"), "{who} got records: {body}");
    }
    let (ok, body) = curl(&format!("--cacert ca.pem '{url}?after=0'"));
    assert!(
        !ok && !body.contains("packets_forward"),
        "no client certificate must fail: {body}"
    );
    let (_, body) = curl("'http://127.0.0.1:9443/v1/records?after=0'");
    assert!(
        !body.contains("HTTP 200") && !body.contains("packets_forward"),
        "plain HTTP served: {body}"
    );
    let m = d.metrics();
    assert!(m.get("furui_api_requests_total{recipient=\"unknown\",status=\"handshake_failed\"}") >= 1);
    assert_eq!(
        m.get("furui_api_requests_total{recipient=\"unknown\",status=\"403\"}"),
        1
    );

    // The oversight role: the audit trail, the configuration history and
    // the counters — and (above) never records. Others may not read them.
    let get = |who: &str, path: &str| {
        curl(&format!(
            "--cacert ca.pem --cert {who}.pem --key {who}.key 'https://127.0.0.1:9443{path}'"
        ))
        .1
    };
    let trail = get("inspector", "/v1/audit?after=0");
    assert!(
        trail.ends_with("HTTP 200") && trail.contains("\"kind\":\"start\""),
        "{trail}"
    );
    assert!(
        trail.contains("\"kind\":\"export\""),
        "export batches are in the trail: {trail}"
    );
    let history = get("inspector", "/v1/config-history");
    assert!(
        history.ends_with("HTTP 200") && history.contains("config_sha256"),
        "{history}"
    );
    assert!(!history.contains("\"kind\":\"export\""), "{history}");
    let counters = get("inspector", "/v1/counters");
    assert!(
        counters.ends_with("HTTP 200") && counters.contains("furui_frames_erased_total"),
        "{counters}"
    );
    for path in ["/v1/audit?after=0", "/v1/counters", "/v1/config-history"] {
        assert!(get("analyst", path).ends_with("HTTP 403"), "analyst read {path}");
    }
    // A witness: the analyst keeps the newest signed checkpoint.
    d.wait_for_metric("furui_audit_entries_total{kind=\"checkpoint\"}", 1, "a checkpoint");
    let w = get("analyst", "/v1/checkpoint");
    assert!(w.ends_with("HTTP 200"), "{w}");
    // A recipient's witness is the head only: no recipient's figures.
    let head: serde_json::Value = serde_json::from_str(w.lines().next().unwrap()).unwrap();
    assert!(
        head["sig"].is_string() && head["hash"].is_string() && head["seq"].is_u64(),
        "{w}"
    );
    assert!(head.get("data").is_none() && !w.contains("furui_"), "{w}");
    let full = get("inspector", "/v1/checkpoint");
    assert!(
        full.contains("\"data\"") && full.contains("furui_frames_erased_total"),
        "inspectors get it whole: {full}"
    );
    assert_eq!(d.stop(), 0);
    let out = verify_with_witness(&rig, w.lines().next().unwrap());
    assert!(
        out.starts_with("PASS") && out.contains("witness checkpoint present"),
        "{out}"
    );
    // Every API request is an audit entry, refusals included.
    let reads: Vec<serde_json::Value> = std::fs::read_to_string(rig.path("audit").join("trail.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["kind"] == "api_read")
        .map(|e| e["data"].clone())
        .collect();
    let has = |client: &str, resource: &str, status: u64| {
        reads
            .iter()
            .any(|r| r["client"] == client && r["resource"] == resource && r["status"] == status)
    };
    assert!(
        has("analyst", "records", 200) && has("unknown", "records", 403),
        "{reads:?}"
    );
    assert!(
        has("inspector", "records", 403) && has("inspector", "audit", 200),
        "{reads:?}"
    );
    assert!(
        has("analyst", "checkpoint", 200) && has("analyst", "counters", 403),
        "{reads:?}"
    );
    let records_read: u64 = reads
        .iter()
        .filter(|r| r["client"] == "analyst" && r["resource"] == "records")
        .map(|r| r["items"].as_u64().unwrap())
        .sum();
    assert_eq!(records_read, 5, "3 records, then 2 from the cursor");
}

/// Art. 29: a recipient holding only an aggregate grant reads counts per
/// rule, destination port, measure and period over the API — the cell
/// below the minimum count suppressed, and no record or address at all.
#[test]
fn an_aggregate_grant_gets_suppressed_counts_and_never_records() {
    let (rig, certs, ids) = rig_with_certs(&["statistician"]);
    let c = certs.display();
    let cfg = rig.config(
        "",
        &format!(
            "{prelude}[aggregates]\nperiod_secs = 4\nmin_count = 3\n\n[api]\nlisten = \"127.0.0.1:9443\"\ncert = \"{c}/server.pem\"\nkey = \"{c}/server.key\"\nclient_ca = \"{c}/ca.pem\"\n\n[[purposes]]\nid = \"damage-prevention\"\ndamage_prevention = true\n\n[[recipients]]\nname = \"statistician\"\nrole = \"analyst\"\nidentity = \"{id}\"\n[[recipients.grants]]\nmeasures = [\"inbound\"]\naggregate = true\npurpose = \"damage-prevention\"\n[[recipients.sinks]]\nkind = \"api\"\n",
            prelude = export_prelude(&rig),
            id = ids[0],
        ),
    );
    let d = Daemon::start(&rig, &cfg);
    // Start just after a 4-second period boundary, so that all five flows
    // (sent within ~0.5 s, ended ~1-2 s later) fall in one period.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    std::thread::sleep(Duration::from_millis(4000 - (now.as_millis() % 4000) as u64 + 50));
    for i in 0..4u64 {
        let flow = format!("203.0.113.{},192.0.2.10,tcp,{},80", 60 + i, 9000 + i);
        rig.send(&["--count", "2", "--flow", &flow]);
    }
    rig.send(&["--count", "2", "--flow", "203.0.113.70,192.0.2.10,tcp,9100,22"]);
    // Flows end after 1 s idle; the period closes on the next boundary.
    let read = || -> String {
        let out = Command::new("sh")
            .args([
                "-c",
                &format!(
                    "cd {c} && ip netns exec {} curl -sS -m 5 --cacert ca.pem --cert statistician.pem --key statistician.key 'https://127.0.0.1:9443/v1/records?after=0'",
                    rig.ns_cap
                ),
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut body = read();
    while !body.contains("suppressed_cells") {
        assert!(Instant::now() < deadline, "no aggregate rows: {body}\n{}", d.log_text());
        std::thread::sleep(Duration::from_millis(300));
        body = read();
    }
    let rows: Vec<serde_json::Value> = body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let flows: u64 = rows
        .iter()
        .filter(|r| r["dst_port"] == 80 && r["rule"] == "indicator:c2" && r["measure"] == "inbound")
        .map(|r| r["flows"].as_u64().unwrap())
        .sum();
    assert_eq!(flows, 4, "{body}");
    assert!(
        !rows.iter().any(|r| r["dst_port"] == 22),
        "the 1-flow cell must be suppressed: {body}"
    );
    assert!(rows.iter().any(|r| r["suppressed_cells"].as_u64() >= Some(1)), "{body}");
    for forbidden in ["initiator", "responder", "key_epoch", "203.0.113.", "packets_forward"] {
        assert!(!body.contains(forbidden), "{forbidden} in aggregates: {body}");
    }
    assert_eq!(d.stop(), 0);
}

/// `curl -i` inside the rig's namespace as `who`; the whole response.
fn curl_as(rig: &Rig, certs: &std::path::Path, who: &str, path: &str) -> String {
    let out = Command::new("sh")
        .args([
            "-c",
            &format!(
                "cd {} && ip netns exec {} curl -sS -i -m 5 --cacert ca.pem --cert {who}.pem --key {who}.key 'https://127.0.0.1:9443{path}'",
                certs.display(),
                rig.ns_cap
            ),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).replace('\r', "")
}

/// The value of a response header in a `curl -i` output.
fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    response.lines().take_while(|l| !l.is_empty()).find_map(|l| {
        l.split_once(": ")
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

fn ndjson_lines(response: &str) -> Vec<serde_json::Value> {
    response
        .lines()
        .skip_while(|l| !l.is_empty())
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The API under pressure (#17 item 5): connections that never start TLS
/// (beyond the per-address cap closed at once, the rest at the handshake
/// deadline), a handshake followed by silence (the idle timeout), a
/// slow-loris request (the header deadline), 1,000 requests from a
/// certificate of no recipient (429 over the rate, audited in batches,
/// not one entry each) — while the analyst reads every time. Then the
/// trail pages by entry number, and the records cursor survives a restart.
#[test]
fn the_api_outlasts_silent_slow_and_unknown_clients_and_its_cursor_survives_a_restart() {
    let (rig, certs, ids) = rig_with_certs(&["analyst", "stranger", "inspector"]);
    let grant = "[[recipients.grants]]\nmeasures = [\"inbound\"]\nfields = [\"initiator\", \"responder_port\"]\npurpose = \"damage-prevention\"\n";
    let c = certs.display();
    let cfg = rig.config(
        "",
        &format!(
            "{prelude}[audit]\ndir = \"{audit}\"\n\n[api]\nlisten = \"127.0.0.1:9443\"\ncert = \"{c}/server.pem\"\nkey = \"{c}/server.key\"\nclient_ca = \"{c}/ca.pem\"\nheader_timeout_secs = 4\nidle_timeout_secs = 2\nmax_connections = 20\nmax_connections_per_address = 4\nrate_per_second = 5\nburst = 10\n\n[[purposes]]\nid = \"damage-prevention\"\ndamage_prevention = true\n\n[[recipients]]\nname = \"analyst\"\nrole = \"analyst\"\nidentity = \"{a}\"\n{grant}[[recipients.sinks]]\nkind = \"api\"\n\n[[recipients]]\nname = \"inspector\"\nrole = \"oversight\"\nidentity = \"{o}\"\n{grant}",
            prelude = export_prelude(&rig),
            audit = rig.path("audit").display(),
            a = ids[0],
            o = ids[2],
        ),
    );
    let d = Daemon::start(&rig, &cfg);
    rig.send(&["--count", "1", "--flow", "203.0.113.40,192.0.2.10,tcp,7000,80"]);
    d.wait_for_metric(
        "furui_export_records_total{recipient=\"analyst\",sink=\"api\"}",
        1,
        "a view for the API",
    );
    let out = Command::new("ip")
        .args(["netns", "exec", &rig.ns_cap, "python3"])
        .arg(data_file("api_pressure.py"))
        .arg(&certs)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("clients: {r}");
    let m = d.metrics();
    let refused = |reason: &str| m.get(&format!("furui_api_connections_refused_total{{reason=\"{reason}\"}}"));

    // The analyst was served every time.
    let reads = r["analyst"].as_array().unwrap();
    assert_eq!(reads.len(), 8);
    assert!(
        reads.iter().all(|x| x["status"] == 200 && x["lines"] == 1),
        "the analyst was not served: {r}"
    );
    // Connections that never start TLS: 6 over the per-address cap of 4,
    // and all 10 closed by the server.
    let closed = r["never_tls_closed_after"].as_array().unwrap();
    assert!(closed.iter().all(|x| !x.is_null()), "left open: {r}");
    assert_eq!(refused("max_per_address"), 6, "{r}");
    assert_eq!(refused("handshake_timeout"), 4, "{r}");
    // A handshake, then silence: cut by the idle timeout.
    assert!(!r["never_request_closed_after"].is_null(), "{r}");
    assert_eq!(refused("idle_timeout"), 1, "{r}");
    // Slow loris: cut before its headers were complete, never answered.
    let loris = &r["slow_loris"];
    assert!(loris["sent"].as_u64() < loris["of"].as_u64(), "{r}");
    assert_eq!(loris["answered"], false, "{r}");
    assert_eq!(refused("header_timeout"), 1, "{r}");
    // 1,000 requests of a stranger: a burst of 10 plus 5 per second get
    // their 403 (each audited), the rest 429.
    let st = &r["stranger"]["statuses"];
    let (forbidden, limited) = (st["403"].as_u64().unwrap_or(0), st["429"].as_u64().unwrap_or(0));
    assert_eq!(forbidden + limited, 1000, "{r}");
    let seconds = r["stranger"]["seconds"].as_f64().unwrap();
    assert!(forbidden >= 10, "{r}");
    assert!(
        (forbidden as f64) <= 10.0 + 5.0 * seconds + 5.0,
        "more than the rate allows: {r}"
    );
    assert_eq!(
        m.get("furui_api_requests_total{recipient=\"unknown\",status=\"429\"}"),
        limited
    );
    assert_eq!(m.get("furui_api_connections"), 0, "every connection was given back");

    // The trail by entry number, two at a time.
    let page = curl_as(&rig, &certs, "inspector", "/v1/audit?after=0&limit=2");
    let entries = ndjson_lines(&page);
    assert_eq!(
        entries.iter().map(|e| e["seq"].as_u64().unwrap()).collect::<Vec<_>>(),
        [1, 2],
        "{page}"
    );
    assert_eq!(header(&page, "x-furui-next-after"), Some("2"), "{page}");
    let page = curl_as(&rig, &certs, "inspector", "/v1/audit?after=2&limit=2");
    assert_eq!(ndjson_lines(&page)[0]["seq"], 3, "{page}");
    let history = curl_as(&rig, &certs, "inspector", "/v1/config-history?after=0&limit=1");
    assert_eq!(ndjson_lines(&history)[0]["kind"], "start", "{history}");

    // The analyst's cursor, then a restart.
    let before = curl_as(&rig, &certs, "analyst", "/v1/records?after=0");
    let cursor = ndjson_lines(&before)[0]["cursor"].as_u64().unwrap();
    assert_eq!(
        header(&before, "x-furui-next-cursor"),
        Some(cursor.to_string().as_str())
    );
    assert_eq!(d.stop(), 0);

    // Refusals over the rate are audited in batches that add up.
    let trail: Vec<serde_json::Value> = std::fs::read_to_string(rig.path("audit").join("trail.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let batches: Vec<&serde_json::Value> = trail.iter().filter(|e| e["kind"] == "api_rate_limited").collect();
    let batched: u64 = batches.iter().map(|e| e["data"]["refused"].as_u64().unwrap()).sum();
    assert_eq!(batched, limited, "every 429 is in an audit batch");
    assert!(
        (batches.len() as f64) <= seconds / 5.0 + 3.0,
        "{} batches for {seconds} s",
        batches.len()
    );
    let stranger_reads = trail
        .iter()
        .filter(|e| e["kind"] == "api_read" && e["data"]["client"] == "unknown")
        .count() as u64;
    assert_eq!(stranger_reads, forbidden, "each 403 is one entry, no 429 is");

    let d = Daemon::start(&rig, &cfg);
    rig.send(&["--count", "1", "--flow", "203.0.113.41,192.0.2.10,tcp,7001,81"]);
    d.wait_for_metric(
        "furui_export_records_total{recipient=\"analyst\",sink=\"api\"}",
        1,
        "a view for the API after the restart",
    );
    let after = curl_as(&rig, &certs, "analyst", &format!("/v1/records?after={cursor}"));
    let lines = ndjson_lines(&after);
    assert_eq!(lines.len(), 1, "the new view is above the old cursor: {after}");
    assert!(lines[0]["cursor"].as_u64().unwrap() > cursor);
    assert_eq!(lines[0]["responder_port"], 81);
    assert_eq!(header(&after, "x-furui-cursor-reset"), None);
    assert_eq!(d.stop(), 0);
    let verified = Command::new(FURUI)
        .args(["audit", "verify"])
        .arg(rig.path("audit"))
        .arg("--pubkey")
        .arg(rig.path("audit").join("appliance.pub"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&verified.stdout).starts_with("PASS"),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
}
