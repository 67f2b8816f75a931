//! A fleet: two appliances (two daemons, each on its own link) given one
//! fleet seed and run under a signed approval. Their exports pseudonymize
//! the same attacker alike; an inspector verifies and checks both trails
//! as one fleet directory (PASS per appliance and for the fleet, FAIL for
//! the one whose trail was doctored) and gets one report over both. The
//! approving authority's CLI (`furui approval keygen|sign|verify`) refuses
//! tampered, expired, wrong-appliance and wrong-key documents, and an
//! operator editing a running appliance's configuration cannot open a
//! window the authority has not signed.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::collectors::Nfcapd;
use common::export::{recipient, DOMESTIC, SELECT};
use common::*;

/// `furui ARGS...`: (exit code, stdout, stderr).
fn furui(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(FURUI).args(args).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `furui approval sign --key KEY --ref R --measure M --not-before NB
/// --not-after NA EXTRA...`: (exit code, stdout, stderr).
fn sign_cmd(key: &Path, reference: &str, measure: &str, window: [&str; 2], extra: &[&str]) -> (i32, String, String) {
    let mut args = vec![
        "approval",
        "sign",
        "--key",
        s(key),
        "--ref",
        reference,
        "--measure",
        measure,
        "--not-before",
        window[0],
        "--not-after",
        window[1],
    ];
    args.extend(extra);
    furui(&args)
}

/// Signs an inbound approval from 2020 to `not_after` with `key` into
/// `out`: the document's path.
fn sign(key: &Path, out: &Path, reference: &str, not_after: &str, appliances: &[&str]) -> PathBuf {
    let mut extra = vec!["--out", s(out)];
    for a in appliances {
        extra.extend(["--appliance", a]);
    }
    let (code, _, err) = sign_cmd(key, reference, "inbound", ["2020-01-01T00:00:00Z", not_after], &extra);
    assert_eq!(code, 0, "{err}");
    out.to_path_buf()
}

#[test]
fn the_authoritys_cli_signs_and_refuses_tampered_expired_wrong_appliance_and_wrong_key_documents() {
    let d = tempfile::tempdir().unwrap();
    let key = d.path().join("authority.key");
    let (code, public, err) = furui(&["approval", "keygen", s(&key)]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(public.trim().len(), 64, "{public}");
    assert_eq!(
        std::fs::read_to_string(d.path().join("authority.key.pub")).unwrap(),
        public
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    let (code, _, err) = furui(&["approval", "keygen", s(&key)]);
    assert_eq!(code, 1);
    assert!(err.contains("exists: a key is never overwritten"), "{err}");

    let pubkey = d.path().join("authority.key.pub");
    let doc = sign(
        &key,
        &d.path().join("a.json"),
        "PPC-7",
        "2099-01-01T00:00:00Z",
        &["link-a", "link-b"],
    );
    let verify = |doc: &Path, pubkey: &Path, extra: &[&str]| {
        let mut args = vec!["approval", "verify", s(doc), "--authority", s(pubkey)];
        args.extend(extra);
        furui(&args)
    };
    let (code, out, err) = verify(&doc, &pubkey, &["--appliance", "link-b", "--measure", "inbound"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim(),
        "valid: approval `PPC-7` for inbound from 2020-01-01T00:00:00Z to 2099-01-01T00:00:00Z, appliances link-a, link-b"
    );

    // Tampered: the window extended in the document.
    let text = std::fs::read_to_string(&doc).unwrap();
    let tampered = d.path().join("t.json");
    std::fs::write(&tampered, text.replace("2099-01-01", "2199-01-01")).unwrap();
    let (code, _, err) = verify(&tampered, &pubkey, &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("approval `PPC-7`: the signature does not verify with the authority's key"),
        "{err}"
    );
    // Another authority's key.
    let other = d.path().join("other.key");
    assert_eq!(furui(&["approval", "keygen", s(&other)]).0, 0);
    let (code, _, err) = verify(&doc, &d.path().join("other.key.pub"), &[]);
    assert_eq!(code, 1);
    assert!(err.contains("signature does not verify"), "{err}");
    // Another appliance; another measure.
    let (code, _, err) = verify(&doc, &pubkey, &["--appliance", "link-c"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("approval `PPC-7` covers appliances [\"link-a\", \"link-b\"], not `link-c`"),
        "{err}"
    );
    let (code, _, err) = verify(&doc, &pubkey, &["--measure", "transit"]);
    assert_eq!(code, 1);
    assert!(err.contains("is for measure inbound, not transit"), "{err}");
    // Expired.
    let old = sign(&key, &d.path().join("old.json"), "PPC-1", "2021-01-01T00:00:00Z", &[]);
    let (code, _, err) = verify(&old, &pubkey, &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("approval `PPC-1` expired at 2021-01-01T00:00:00Z"),
        "{err}"
    );
    // The authority cannot sign nonsense either.
    let (code, _, err) = sign_cmd(
        &key,
        "X",
        "inbound",
        ["2030-01-01T00:00:00Z", "2029-01-01T00:00:00Z"],
        &[],
    );
    assert_eq!(code, 1);
    assert!(err.contains("not_before must be earlier than not_after"), "{err}");
    let window = ["2020-01-01T00:00:00Z", "2029-01-01T00:00:00Z"];
    let (code, _, err) = sign_cmd(&key, "X", "inbound", window, &["--appliance", "link a"]);
    assert_eq!(code, 1);
    assert!(err.contains("`link a` is not an appliance id"), "{err}");
    // And no signature without the key.
    let (code, _, err) = sign_cmd(&d.path().join("none.key"), "X", "inbound", window, &[]);
    assert_eq!(code, 1);
    assert!(err.contains("does not exist"), "{err}");
}

const SEED: &str = "5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed";

/// One appliance of the fleet: its config (one seed, the signed approval
/// `PPC-7`, an audit trail, inbound records exported over IPFIX to an
/// nfcapd in its namespace).
fn appliance(rig: &Rig, id: &str, authority: &Path, approvals: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let seed = rig.path("fleet.seed");
    std::fs::write(&seed, format!("{SEED}\n")).unwrap();
    std::fs::set_permissions(&seed, std::fs::Permissions::from_mode(0o600)).unwrap();
    let fields = "\"first_seen_ns\", \"protocol\", \"initiator\", \"initiator_port\", \"responder\", \"responder_port\", \"packets_forward\"";
    rig.config_as(
        id,
        "",
        &format!(
            "{DOMESTIC}[measures.inbound]\nenabled = true\nnot_before = \"2020-01-01T00:00:00Z\"\nnot_after = \"2099-01-01T00:00:00Z\"\napproval = \"PPC-7\"\n\n[flows]\nidle_timeout_secs = 1\n\n[approvals]\nauthority_key_file = \"{}\"\ndir = \"{}\"\n\n{SELECT}\n[deid]\nkey_dir = \"{}\"\nfleet_seed_file = \"{}\"\n\n[audit]\ndir = \"{}\"\ncheckpoint_secs = 1\n\n{}",
            authority.display(),
            approvals.display(),
            rig.path("keys").display(),
            seed.display(),
            rig.path("audit").display(),
            recipient(4739, fields)
        ),
    )
}

/// A copy of an appliance's audit directory without its private key, as
/// an inspector receives it, under `fleet/<name>`.
fn hand_over(audit: &Path, fleet: &Path, name: &str) {
    let to = fleet.join(name);
    std::fs::create_dir_all(&to).unwrap();
    for e in std::fs::read_dir(audit).unwrap().flatten() {
        let p = e.path();
        if p.is_file() && p.extension().is_none_or(|x| x != "key") {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn two_appliances_share_pseudonyms_and_an_inspector_checks_them_as_one_fleet() {
    let a = Rig::new();
    let b = Rig::new();
    // The authority signs one approval covering both links.
    let authority = a.path("authority.key");
    assert_eq!(furui(&["approval", "keygen", s(&authority)]).0, 0);
    let authority_pub = a.path("authority.key.pub");
    let approvals = a.path("approvals");
    std::fs::create_dir_all(&approvals).unwrap();
    sign(
        &authority,
        &approvals.join("ppc-7.json"),
        "PPC-7",
        "2099-01-01T00:00:00Z",
        &["link-a", "link-b"],
    );
    let cfg_a = appliance(&a, "link-a", &authority_pub, &approvals);
    let cfg_b = appliance(&b, "link-b", &authority_pub, &approvals);

    // The same attacker reaches both links.
    let mut seen = Vec::new();
    for (rig, cfg) in [(&a, &cfg_a), (&b, &cfg_b)] {
        let nf = Nfcapd::start(rig, 4739);
        let d = Daemon::start(rig, cfg);
        assert!(!rig.path("fleet.seed").exists(), "the seed is erased once imported");
        rig.send_line("--count 6 --size 100 --flow 203.0.113.77,192.0.2.10,tcp,40000,443");
        d.wait_for_metric("furui_records_selected_total", 1, "the attacker's flow");
        assert_eq!(d.stop(), 0);
        let (flows, text) = nf.stop_and_read();
        assert_eq!(flows.len(), 1, "{text}");
        seen.push((
            flows[0]["src4_addr"].as_str().unwrap().to_string(),
            flows[0]["dst4_addr"].as_str().unwrap().to_string(),
        ));
    }
    assert_eq!(seen[0], seen[1], "one fleet, one pseudonym per address");
    let mut ks = furui::deid::KeyStore::open(&a.path("keys"), furui::deid::EpochPeriod::Daily, 2).unwrap();
    let key = ks.at(time::OffsetDateTime::now_utc()).unwrap();
    assert_eq!(
        seen[0].0,
        key.pan.ip("203.0.113.77".parse().unwrap()).to_string(),
        "the fleet's epoch key"
    );
    assert_ne!(seen[0].0, "203.0.113.77");

    // The inspector's view: both trails in one directory.
    let fleet = a.path("fleet");
    hand_over(&a.path("audit"), &fleet, "link-a");
    hand_over(&b.path("audit"), &fleet, "link-b");
    let (code, out, err) = furui(&["audit", "verify", s(&fleet)]);
    assert_eq!(code, 0, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("link-a: PASS") && lines[0].ends_with("entries of appliance link-a"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("link-b: PASS") && lines[1].ends_with("entries of appliance link-b"),
        "{out}"
    );
    assert_eq!(lines[2], "fleet: PASS (2 appliances)", "{out}");
    for what in ["capture", "erasure", "exports", "retention"] {
        let (code, out, err) = furui(&["audit", "check", what, s(&fleet), "--authority", s(&authority_pub)]);
        assert_eq!(code, 0, "{what}: {out}{err}");
        assert!(out.contains("link-a: PASS") && out.contains("link-b: PASS"), "{out}");
        assert!(out.trim_end().ends_with("fleet: PASS (2 appliances)"), "{out}");
    }
    let (_, out, _) = furui(&["audit", "check", "capture", s(&fleet), "--authority", s(&authority_pub)]);
    assert!(
        out.contains("intervals with redirected packets checked against the authority's signed approvals"),
        "{out}"
    );
    // Against another authority's key, the redirects have no approval.
    let other = a.path("other.key");
    assert_eq!(furui(&["approval", "keygen", s(&other)]).0, 0);
    let (code, out, _) = furui(&[
        "audit",
        "check",
        "capture",
        s(&fleet),
        "--authority",
        s(&a.path("other.key.pub")),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("link-a: FAIL") && out.contains("fleet: FAIL (2 of 2 appliances failed)"),
        "{out}"
    );

    // One report over the fleet: per appliance and in total.
    let now = time::OffsetDateTime::now_utc();
    let fmt = |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).unwrap();
    let report = a.path("report");
    let (code, out, err) = furui(&[
        "report",
        "--period",
        "hour",
        "--from",
        &fmt(now - time::Duration::hours(1)),
        "--to",
        &fmt(now + time::Duration::hours(1)),
        "--out",
        s(&report),
        s(&fleet),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let json =
        |p: PathBuf| -> serde_json::Value { serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap() };
    let f = json(report.join("report.json"));
    assert_eq!(f["totals"]["frames_erased"], 12, "{f}");
    assert_eq!(f["totals"]["frames_received"], 12, "{f}");
    assert_eq!(f["totals"]["records_selected"], 2, "{f}");
    assert_eq!(f["appliances"][0]["name"], "link-a");
    assert_eq!(f["appliances"][1]["appliances"][0], "link-b");
    for name in ["link-a", "link-b"] {
        let one = json(report.join(name).join("report.json"));
        assert_eq!(one["totals"]["frames_erased"], 6, "{name}: {one}");
        assert_eq!(one["totals"]["records_selected"], 1, "{name}: {one}");
    }
    let html = std::fs::read_to_string(report.join("report.html")).unwrap();
    assert!(html.contains("<b id=\"fleet-frames-erased\">12</b>"), "{html}");
    assert!(html.contains("href=\"link-b/report.html\""));
    for needle in ["203.0.113", "192.0.2", &seen[0].0] {
        assert!(!html.contains(needle), "no address in the report: {needle}");
    }

    // A doctored trail: link-b's checkpoint figures edited after signing.
    let trail = fleet.join("link-b").join("trail.jsonl");
    let text = std::fs::read_to_string(&trail).unwrap();
    let edited = text.replacen(
        "\"furui_frames_erased_total{queue=\\\"0\\\"}\":6",
        "\"furui_frames_erased_total{queue=\\\"0\\\"}\":5",
        1,
    );
    assert_ne!(edited, text, "the trail holds the erased-frames figure to doctor");
    std::fs::write(&trail, edited).unwrap();
    let (code, out, _) = furui(&["audit", "verify", s(&fleet)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("link-a: PASS"), "{out}");
    assert!(out.contains("link-b: FAIL"), "{out}");
    assert!(out.contains("fleet: FAIL (1 of 2 appliances failed)"), "{out}");
    let (code, _, err) = furui(&[
        "report",
        "--from",
        &fmt(now - time::Duration::hours(1)),
        "--to",
        &fmt(now + time::Duration::hours(1)),
        "--out",
        s(&a.path("report-2")),
        s(&fleet),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("link-b: the trail does not verify"), "{err}");
    assert!(!a.path("report-2").join("report.json").exists());
}

/// Under `[approvals]`, editing a running appliance's configuration cannot
/// open a window: a reload naming a document for another measure, or a
/// document edited to say so, is refused and the running windows stay as
/// they were; only a document the authority signs opens the window, and
/// the reload's audit entry keeps it.
#[test]
fn an_operator_cannot_open_a_window_by_editing_a_running_appliances_config() {
    let rig = Rig::new();
    let authority = rig.path("authority.key");
    assert_eq!(furui(&["approval", "keygen", s(&authority)]).0, 0);
    let approvals = rig.path("approvals");
    std::fs::create_dir_all(&approvals).unwrap();
    let inbound = sign(
        &authority,
        &approvals.join("ppc-7.json"),
        "PPC-7",
        "2099-01-01T00:00:00Z",
        &[],
    );
    let config = |transit: &str| {
        rig.config(
            "",
            &format!(
                "{DOMESTIC}[measures.inbound]\nenabled = true\nnot_before = \"2020-01-01T00:00:00Z\"\nnot_after = \"2099-01-01T00:00:00Z\"\napproval = \"PPC-7\"\n\n{transit}\n[approvals]\nauthority_key_file = \"{}\"\ndir = \"{}\"\n\n{SELECT}\n[audit]\ndir = \"{}\"\ncheckpoint_secs = 60\n",
                rig.path("authority.key.pub").display(),
                approvals.display(),
                rig.path("audit").display(),
            ),
        )
    };
    let transit = |approval: &str| {
        format!("[measures.transit]\nenabled = true\nnot_before = \"2020-01-01T00:00:00Z\"\nnot_after = \"2099-01-01T00:00:00Z\"\napproval = \"{approval}\"\n")
    };
    let cfg = config("");
    let d = Daemon::start(&rig, &cfg);
    let authorized = |m: &str| d.metrics().get(&format!("furui_measure_authorized{{measure=\"{m}\"}}"));
    assert_eq!((authorized("inbound"), authorized("transit")), (1, 0));

    // The inbound approval named for transit.
    config(&transit("PPC-7"));
    let (code, out) = rig.reload(&[]);
    assert_ne!(code, Some(0), "{out}");
    assert!(
        out.contains("measure transit: approval `PPC-7` is for measure inbound, not transit"),
        "{out}"
    );
    // A copy of it edited to say transit.
    let text = std::fs::read_to_string(&inbound).unwrap();
    std::fs::write(
        approvals.join("ppc-8.json"),
        text.replace("PPC-7", "PPC-8").replace("\"inbound\"", "\"transit\""),
    )
    .unwrap();
    config(&transit("PPC-8"));
    let (code, out) = rig.reload(&[]);
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains("approval `PPC-8`: the signature does not verify"), "{out}");
    assert_eq!(
        (authorized("inbound"), authorized("transit")),
        (1, 0),
        "the running windows stay"
    );

    // The authority signs transit: now the reload opens it.
    let (code, _, err) = sign_cmd(
        &authority,
        "PPC-8",
        "transit",
        ["2020-01-01T00:00:00Z", "2099-01-01T00:00:00Z"],
        &["--out", s(&approvals.join("ppc-8.json"))],
    );
    assert_eq!(code, 0, "{err}");
    let (code, out) = rig.reload(&[]);
    assert_eq!(code, Some(0), "{out}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while authorized("transit") != 1 {
        assert!(std::time::Instant::now() < deadline, "transit did not open");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(d.stop(), 0);
    let trail = std::fs::read_to_string(rig.path("audit").join("trail.jsonl")).unwrap();
    let reloads: Vec<serde_json::Value> = trail
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["kind"] == "reload" && e["data"]["accepted"] == true)
        .collect();
    assert_eq!(reloads.len(), 1, "{trail}");
    let mut refs: Vec<&str> = reloads[0]["data"]["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["approval"]["ref"].as_str().unwrap())
        .collect();
    refs.sort();
    assert_eq!(refs, ["PPC-7", "PPC-8"], "{}", reloads[0]);
}
