//! Oversight checks recomputed from a verified trail's signed checkpoints
//! (counters are cumulative within one run of the daemon; a `start` entry
//! begins a new run):
//! - **erasure**: at every checkpoint, frames received = frames erased, on
//!   every queue (the workers publish both after erasing a whole batch);
//! - **capture**: no domestic, non-IP or malformed packet was ever
//!   redirected to user space, and a measure's packets were redirected
//!   only while its authorization window was open;
//! - **exports**: every export batch went to a recipient of the policy in
//!   force (the last `start` or accepted `reload`), under one of its
//!   grants — same purpose, measures and fields within the grant, inside
//!   the consent's window — and no record went to the oversight role;
//! - **retention**: every retention epoch opened was purged (records
//!   deleted, key destroyed) no later than `grace` after it expired.

use std::collections::BTreeMap;

mod approvals;

use std::time::Duration;

use super::{rfc3339, time_of};
use crate::telemetry::names;
use serde_json::Value;
use time::OffsetDateTime;

/// A check's verdict and the figures behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub pass: bool,
    pub lines: Vec<String>,
}

fn counter(data: &Value, series: &str) -> u64 {
    data.get(series).and_then(Value::as_u64).unwrap_or(0)
}

fn signed(e: &Value) -> bool {
    e.get("sig").is_some() && matches!(e["kind"].as_str(), Some("checkpoint" | "stop"))
}

pub fn erasure(entries: &[Value]) -> Verdict {
    let mut lines = Vec::new();
    let mut checked = 0u64;
    let mut frames = 0u64;
    for e in entries.iter().filter(|e| signed(e)) {
        let data = &e["data"];
        let Some(obj) = data.as_object() else { continue };
        for (series, v) in obj {
            let Some(labels) = series.strip_prefix(names::FRAMES_RECEIVED) else {
                continue;
            };
            let received = v.as_u64().unwrap_or(0);
            let erased = counter(data, &format!("{}{labels}", names::FRAMES_ERASED));
            if received != erased {
                lines.push(format!(
                    "entry {}: {received} frames received but {erased} erased on {labels}",
                    e["seq"]
                ));
            }
            if e["kind"] == "stop" {
                frames += received;
            }
        }
        checked += 1;
    }
    let pass = lines.is_empty() && checked > 0;
    if checked == 0 {
        lines.push("no signed checkpoint to check".into());
    }
    lines.insert(
        0,
        format!("{checked} signed checkpoints checked; {frames} frames received and erased in completed runs"),
    );
    Verdict { pass, lines }
}

const NEVER: [&str; 5] = ["domestic", "non_ip", "malformed", "undecided", "too_deep"];
const MEASURED: [(&str, &str); 3] = [("inbound", "inbound"), ("outbound", "outbound"), ("transit", "transit")];

/// `authority`: the approving authority's public key; with it, every
/// interval in which a measure's packets were redirected must lie under a
/// signed approval the trail holds (`check::approvals`).
pub fn capture(entries: &[Value], authority: Option<&ed25519_dalek::VerifyingKey>) -> Verdict {
    let mut approvals = approvals::Approvals::default();
    let mut lines = Vec::new();
    let mut checked = 0u64;
    let mut redirected = 0u64;
    // Per run: the last checkpoint's counters, and which measures were
    // authorized at any time since it.
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    let mut open_now: BTreeMap<String, bool> = BTreeMap::new();
    let mut open_since_last: BTreeMap<String, bool> = BTreeMap::new();
    for e in entries {
        match e["kind"].as_str() {
            Some("start") | Some("new_segment") => {
                last.clear();
                open_now.clear();
                open_since_last.clear();
                approvals.start(e);
            }
            Some("reload") if e["data"]["accepted"] == true => approvals.policy(e),
            Some("window") => {
                let m = e["data"]["measure"].as_str().unwrap_or("").to_string();
                let on = e["data"]["authorized"].as_bool().unwrap_or(false);
                if on {
                    approvals.window(&m, e["data"]["approval"].as_str().unwrap_or(""));
                }
                open_now.insert(m.clone(), on);
                if on {
                    open_since_last.insert(m, true);
                }
            }
            _ if signed(e) => {
                let data = &e["data"];
                let now = |class: &str| {
                    counter(
                        data,
                        &format!("{}{{action=\"redirect\",class=\"{class}\"}}", names::XDP_PACKETS),
                    )
                };
                for class in NEVER {
                    let n = now(class);
                    if n > 0 {
                        lines.push(format!(
                            "entry {}: {n} {class} packets redirected to user space",
                            e["seq"]
                        ));
                    }
                }
                for (class, measure) in MEASURED {
                    let n = now(class);
                    let before = last.get(class).copied().unwrap_or(0);
                    let delta = n.saturating_sub(before);
                    redirected += delta;
                    if delta > 0 && !open_since_last.get(measure).copied().unwrap_or(false) {
                        lines.push(format!(
                            "entry {}: {delta} {class} packets redirected while the {measure} measure was not authorized",
                            e["seq"]
                        ));
                    }
                    if let Some(key) = authority.filter(|_| delta > 0) {
                        lines.extend(approvals.redirected(e, measure, delta, key));
                    }
                    last.insert(class.to_string(), n);
                }
                open_since_last = open_now.clone();
                approvals.checkpoint(e);
                checked += 1;
            }
            _ => {}
        }
    }
    let pass = lines.is_empty() && checked > 0;
    if checked == 0 {
        lines.push("no signed checkpoint to check".into());
    }
    lines.insert(
        0,
        format!("{checked} signed checkpoints checked; {redirected} packets of authorized measures redirected; none of another class"),
    );
    if authority.is_some() {
        lines.insert(
            1,
            format!(
                "{} intervals with redirected packets checked against the authority's signed approvals",
                approvals.checked
            ),
        );
    }
    Verdict { pass, lines }
}

fn names(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Why one batch's grant is not within the policy's grant, if it is not.
fn outside(used: &Value, policy: &Value, at: OffsetDateTime) -> Option<String> {
    if policy.is_null() {
        return Some(format!("grant {} does not exist in the policy in force", used["grant"]));
    }
    if used["purpose"] != policy["purpose"] || used["aggregate"] != policy["aggregate"] {
        return Some(format!(
            "purpose {} is not the grant's purpose {}",
            used["purpose"], policy["purpose"]
        ));
    }
    let allowed = names(&policy["fields"]);
    if let Some(f) = names(&used["fields"]).into_iter().find(|f| !allowed.contains(f)) {
        return Some(format!("field `{f}` is not granted"));
    }
    let measures = names(&policy["measures"]);
    if let Some(m) = names(&used["measures"]).into_iter().find(|m| !measures.contains(m)) {
        return Some(format!("measure `{m}` is not granted"));
    }
    if let Some(c) = policy.get("consent").filter(|c| !c.is_null()) {
        let (from, to) = (time_of(&c["not_before"]), time_of(&c["not_after"]));
        if !matches!((from, to), (Some(f), Some(t)) if f <= at && at < t) {
            return Some(format!("outside consent {}'s window", c["id"]));
        }
    }
    None
}

pub fn exports(entries: &[Value]) -> Verdict {
    let mut lines = Vec::new();
    let mut policy = Value::Null;
    let mut batches = 0u64;
    let mut per_recipient: BTreeMap<String, u64> = BTreeMap::new();
    for e in entries {
        match e["kind"].as_str() {
            Some("start") => policy = e["data"]["recipients"].clone(),
            Some("reload") if e["data"]["accepted"] == Value::Bool(true) => policy = e["data"]["recipients"].clone(),
            Some("export") => {
                batches += 1;
                let d = &e["data"];
                let name = d["recipient"].as_str().unwrap_or("");
                let n = d["records"].as_u64().unwrap_or(0);
                *per_recipient.entry(name.to_string()).or_default() += n;
                let at = time_of(&e["time"]).unwrap_or(OffsetDateTime::UNIX_EPOCH);
                let rp = &policy[name];
                let fail = |why: String| format!("entry {}: {n} records to `{name}`: {why}", e["seq"]);
                if rp.is_null() {
                    lines.push(fail("no such recipient in the policy in force".into()));
                    continue;
                }
                if rp["role"] == "oversight" {
                    lines.push(fail("the oversight role never receives records".into()));
                }
                let sinks = names(&rp["sinks"]);
                if let Some(s) = names(&d["sinks"]).into_iter().find(|s| !sinks.contains(s)) {
                    lines.push(fail(format!("sink `{s}` is not configured for it")));
                }
                for used in d["grants"].as_array().into_iter().flatten() {
                    let i = used["grant"].as_u64().unwrap_or(u64::MAX) as usize;
                    let granted = rp["grants"].get(i).unwrap_or(&Value::Null);
                    if let Some(why) = outside(used, granted, at) {
                        lines.push(fail(why));
                    }
                }
            }
            _ => {}
        }
    }
    let total: u64 = per_recipient.values().sum();
    let pass = lines.is_empty();
    let mut head = vec![format!(
        "{batches} export batches checked, {total} records (or aggregate rows) in all"
    )];
    head.extend(per_recipient.iter().map(|(r, n)| format!("  {r}: {n}")));
    head.extend(lines);
    Verdict { pass, lines: head }
}

/// `grace`: how late after its expiry a purge may come (the store checks
/// for due purges every few seconds; a longer delay is a finding).
pub fn retention(entries: &[Value], grace: Duration) -> Verdict {
    let mut lines = Vec::new();
    // epoch -> (expires, records purged, purge time)
    let mut opened: BTreeMap<String, (OffsetDateTime, Option<(u64, OffsetDateTime)>)> = BTreeMap::new();
    let mut end = OffsetDateTime::UNIX_EPOCH;
    for e in entries {
        let at = time_of(&e["time"]).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        end = end.max(at);
        let d = &e["data"];
        let epoch = d["epoch"].as_str().unwrap_or("").to_string();
        match e["kind"].as_str() {
            Some("retention_open") => {
                let expires = time_of(&d["expires"]).unwrap_or(OffsetDateTime::UNIX_EPOCH);
                opened.entry(epoch).or_insert((expires, None));
            }
            Some("purge") => {
                let n = d["records"].as_u64().unwrap_or(0);
                match opened.get_mut(&epoch) {
                    Some(o) => o.1 = Some((n, at)),
                    None => lines.push(format!(
                        "entry {}: purge of epoch {epoch}, never opened in this trail",
                        e["seq"]
                    )),
                }
            }
            _ => {}
        }
    }
    let (mut purged, mut records, mut pending) = (0u64, 0u64, 0u64);
    for (epoch, (expires, purge)) in &opened {
        match purge {
            Some((n, at)) => {
                purged += 1;
                records += n;
                if *at > *expires + grace {
                    lines.push(format!(
                        "epoch {epoch}: purged {}s after it expired ({} allowed)",
                        (*at - *expires).whole_seconds(),
                        grace.as_secs()
                    ));
                }
            }
            None if end > *expires + grace => lines.push(format!(
                "epoch {epoch}: expired at {} and not purged by the trail's last entry ({})",
                rfc3339(*expires),
                rfc3339(end)
            )),
            None => pending += 1,
        }
    }
    let pass = lines.is_empty();
    lines.insert(
        0,
        format!(
            "{} retention epochs opened: {purged} purged ({records} records, keys destroyed), {pending} not yet due",
            opened.len()
        ),
    );
    Verdict { pass, lines }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Trail;
    use serde_json::json;

    fn entries(dir: &std::path::Path) -> Vec<Value> {
        std::fs::read_to_string(dir.join(crate::audit::TRAIL))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn run(windows: &[(&str, bool)], checkpoints: &[Value]) -> Vec<Value> {
        let dir = tempfile::tempdir().unwrap();
        let mut t = Trail::open(dir.path(), false).unwrap();
        t.append("start", json!({}), false).unwrap();
        for (m, on) in windows {
            t.append("window", json!({ "measure": m, "authorized": on }), false)
                .unwrap();
        }
        for c in checkpoints {
            t.append("checkpoint", c.clone(), true).unwrap();
        }
        entries(dir.path())
    }

    #[test]
    fn erasure_passes_when_every_received_frame_was_erased() {
        let ok = run(
            &[],
            &[json!({"furui_frames_received_total{queue=\"0\"}": 64, "furui_frames_erased_total{queue=\"0\"}": 64})],
        );
        assert!(erasure(&ok).pass);
        // A daemon whose trail shows one frame not erased.
        let bad = run(
            &[],
            &[json!({"furui_frames_received_total{queue=\"0\"}": 64, "furui_frames_erased_total{queue=\"0\"}": 63})],
        );
        let v = erasure(&bad);
        assert!(!v.pass);
        assert!(
            v.lines.iter().any(|l| l.contains("64 frames received but 63 erased")),
            "{v:?}"
        );
    }

    #[test]
    fn capture_fails_on_a_domestic_redirect_or_one_outside_a_window() {
        let redirect = |class: &str, n: u64| json!({ format!("furui_xdp_packets_total{{action=\"redirect\",class=\"{class}\"}}"): n });
        assert!(capture(&run(&[("inbound", true)], &[redirect("inbound", 10)]), None).pass);
        let v = capture(&run(&[("inbound", true)], &[redirect("domestic", 1)]), None);
        assert!(
            !v.pass && v.lines.iter().any(|l| l.contains("1 domestic packets redirected")),
            "{v:?}"
        );
        let v = capture(&run(&[("inbound", true)], &[redirect("transit", 5)]), None);
        assert!(
            !v.pass && v.lines.iter().any(|l| l.contains("transit measure was not authorized")),
            "{v:?}"
        );
        // Redirected while open, then the window closed: later growth fails.
        let v = capture(
            &run(&[("inbound", true), ("inbound", false)], &[redirect("inbound", 3)]),
            None,
        );
        assert!(v.pass, "open during the interval: {v:?}");
        let dir = tempfile::tempdir().unwrap();
        let mut t = Trail::open(dir.path(), false).unwrap();
        t.append("start", json!({}), false).unwrap();
        t.append("window", json!({"measure": "inbound", "authorized": true}), false)
            .unwrap();
        t.append("checkpoint", redirect("inbound", 3), true).unwrap();
        t.append("window", json!({"measure": "inbound", "authorized": false}), false)
            .unwrap();
        t.append("checkpoint", redirect("inbound", 3), true).unwrap();
        t.append("checkpoint", redirect("inbound", 4), true).unwrap();
        let v = capture(&entries(dir.path()), None);
        assert!(
            !v.pass && v.lines.iter().any(|l| l.contains("1 inbound packets redirected while")),
            "{v:?}"
        );
    }

    /// With the authority's key: redirects under a signed approval the
    /// trail holds pass; under a tampered one, one signed with another
    /// key, another measure's, another appliance's, or outside its
    /// interval, they fail, each named.
    #[test]
    fn capture_with_the_authority_checks_every_interval_against_a_signed_approval() {
        use crate::approvals::Approval;
        use ed25519_dalek::SigningKey;
        let authority = SigningKey::from_bytes(&[3; 32]);
        let redirect = |n: u64| json!({ "furui_xdp_packets_total{action=\"redirect\",class=\"inbound\"}": n });
        let doc = |measure: &str, nb: &str, na: &str, appliances: &[&str], key: &SigningKey| {
            Approval {
                reference: "PPC-1".into(),
                measure: measure.into(),
                not_before: nb.into(),
                not_after: na.into(),
                appliances: appliances.iter().map(|a| a.to_string()).collect(),
            }
            .sign(key)
            .to_json()
        };
        let trail = |doc: Value, appliance: &str| {
            let dir = tempfile::tempdir().unwrap();
            let mut t = Trail::open_as(dir.path(), false, Some(appliance)).unwrap();
            t.append("start", json!({ "approvals": [doc] }), false).unwrap();
            t.append(
                "window",
                json!({"measure": "inbound", "authorized": true, "approval": "PPC-1"}),
                false,
            )
            .unwrap();
            t.append("checkpoint", redirect(5), true).unwrap();
            entries(dir.path())
        };
        let (past, future) = ("2020-01-01T00:00:00Z", "2099-01-01T00:00:00Z");
        let key = authority.verifying_key();
        let v = capture(
            &trail(doc("inbound", past, future, &["tokyo-1"], &authority), "tokyo-1"),
            Some(&key),
        );
        assert!(v.pass, "{v:?}");
        assert!(
            v.lines[1].starts_with("1 intervals with redirected packets checked"),
            "{v:?}"
        );
        let mut tampered = doc("inbound", past, "2030-01-01T00:00:00Z", &[], &authority);
        tampered["approval"]["not_after"] = json!(future);
        let other = SigningKey::from_bytes(&[4; 32]);
        for (d, appliance, why) in [
            (tampered, "tokyo-1", "altered, or signed with another key"),
            (
                doc("inbound", past, future, &[], &other),
                "tokyo-1",
                "altered, or signed with another key",
            ),
            (
                doc("transit", past, future, &[], &authority),
                "tokyo-1",
                "which is for transit",
            ),
            (
                doc("inbound", past, future, &["osaka-1"], &authority),
                "tokyo-1",
                "does not cover",
            ),
            (
                doc("inbound", past, "2021-01-01T00:00:00Z", &[], &authority),
                "tokyo-1",
                "outside approval `PPC-1`",
            ),
        ] {
            let v = capture(&trail(d, appliance), Some(&key));
            assert!(!v.pass && v.lines.iter().any(|l| l.contains(why)), "{why}: {v:?}");
        }
        // Without the key the check is what it was.
        assert!(capture(&trail(doc("transit", past, future, &[], &other), "x"), None).pass);
        // A window opened under an approval the trail does not hold.
        let dir = tempfile::tempdir().unwrap();
        let mut t = Trail::open(dir.path(), false).unwrap();
        t.append("start", json!({}), false).unwrap();
        t.append(
            "window",
            json!({"measure": "inbound", "authorized": true, "approval": "PPC-9"}),
            false,
        )
        .unwrap();
        t.append("checkpoint", redirect(2), true).unwrap();
        let v = capture(&entries(dir.path()), Some(&key));
        assert!(
            !v.pass && v.lines.iter().any(|l| l.contains("does not hold as a signed document")),
            "{v:?}"
        );
    }
}
