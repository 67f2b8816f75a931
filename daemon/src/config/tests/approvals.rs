//! `[approvals]`: a window opens only cut to a signed approval document;
//! every way a document can fail is an error at the measure's line.

use super::*;
use crate::approvals::Approval;
use ed25519_dalek::SigningKey;

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn approval(reference: &str, measure: &str, not_before: &str, not_after: &str) -> Approval {
    Approval {
        reference: reference.into(),
        measure: measure.into(),
        not_before: not_before.into(),
        not_after: not_after.into(),
        appliances: vec![],
    }
}

/// A configuration directory with the authority's public key (key 1) and
/// the given documents in `approvals/`.
fn setup(docs: &[(&str, crate::approvals::Signed)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let public = crate::hex::encode(key(1).verifying_key().as_bytes());
    std::fs::write(d.path().join("authority.pub"), format!("{public}\n")).unwrap();
    std::fs::create_dir(d.path().join("approvals")).unwrap();
    for (name, doc) in docs {
        std::fs::write(
            d.path().join("approvals").join(name),
            serde_json::to_string_pretty(doc).unwrap(),
        )
        .unwrap();
    }
    d
}

const HEAD: &str = r#"[appliance]
id = "link-1"

[capture]
interface = "eth1"

[domestic]
prefixes = ["192.0.2.0/24"]

[records]
path = "records.jsonl"

[approvals]
authority_key_file = "authority.pub"
dir = "approvals"
"#;

fn parse_in(d: &tempfile::TempDir, measures: &str) -> Result<Config, ConfigErrors> {
    Config::parse(&d.path().join("furui.toml"), &format!("{HEAD}{measures}"))
}

fn at(s: &str) -> OffsetDateTime {
    OffsetDateTime::parse(s, &Rfc3339).unwrap()
}

#[test]
fn a_window_is_cut_to_its_signed_approval_and_an_expired_one_stays_closed() {
    let d = setup(&[
        (
            "a1.json",
            Approval {
                appliances: vec!["link-1".into(), "link-2".into()],
                ..approval("A-1", "inbound", "2026-01-01T00:00:00Z", "2099-01-01T00:00:00Z")
            }
            .sign(&key(1)),
        ),
        (
            "old.json",
            approval("A-old", "transit", "2019-01-01T00:00:00Z", "2020-01-01T00:00:00Z").sign(&key(1)),
        ),
    ]);
    // Lines: HEAD is 15 lines, so [measures.inbound] is line 16.
    let c = parse_in(
        &d,
        r#"[measures.inbound]
enabled = true
not_before = "2025-01-01T00:00:00Z"
not_after = "2100-01-01T00:00:00Z"
approval = "A-1"

[measures.transit]
enabled = true
not_before = "2025-01-01T00:00:00Z"
not_after = "2100-01-01T00:00:00Z"
approval = "A-old"
"#,
    )
    .unwrap();
    let w = &c.measures[&Measure::Inbound];
    assert!(w.enabled);
    // The configuration asked for 2025..2100; the document allows 2026..2099.
    assert_eq!(w.not_before, at("2026-01-01T00:00:00Z"));
    assert_eq!(w.not_after, at("2099-01-01T00:00:00Z"));
    assert_eq!(w.signed.as_ref().unwrap().approval.reference, "A-1");
    assert!(!c.authorized_at(at("2025-06-01T00:00:00Z"))[&Measure::Inbound]);
    assert!(c.authorized_at(at("2027-06-01T00:00:00Z"))[&Measure::Inbound]);
    assert!(!c.authorized_at(at("2099-06-01T00:00:00Z"))[&Measure::Inbound]);
    // The expired approval closes its window, with a warning at its line.
    assert!(!c.measures[&Measure::Transit].enabled);
    assert!(!c.authorized_at(at("2019-06-01T00:00:00Z"))[&Measure::Transit]);
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert_eq!(c.warnings[0].line, 22);
    assert_eq!(
        c.warnings[0].message,
        "measure transit: approval `A-old` expired at 2020-01-01T00:00:00Z; the window stays closed"
    );
    // Only the document a window was cut to goes into the audit trail.
    let kept = c.signed_approvals();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0]["approval"]["ref"], "A-1");
    assert_eq!(kept[0]["signature"], d_signature(&d, "a1.json"));
}

fn d_signature(d: &tempfile::TempDir, name: &str) -> String {
    crate::approvals::Signed::read(&d.path().join("approvals").join(name))
        .unwrap()
        .signature
}

#[test]
fn an_operator_cannot_open_a_window_without_a_valid_signed_approval() {
    let good = approval("A-1", "inbound", "2026-01-01T00:00:00Z", "2099-01-01T00:00:00Z");
    let mut tampered = approval("A-t", "outbound", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z").sign(&key(1));
    tampered.approval.not_after = "2099-01-01T00:00:00Z".into();
    let d = setup(&[
        ("a1.json", good.clone().sign(&key(1))),
        ("t.json", tampered),
        (
            "k.json",
            approval("A-k", "transit", "2026-01-01T00:00:00Z", "2099-01-01T00:00:00Z").sign(&key(2)),
        ),
    ]);
    let measures = |inbound: &str, outbound: &str, transit: &str| {
        format!(
            "[measures.inbound]\nenabled = true\nnot_before = \"2025-01-01T00:00:00Z\"\nnot_after = \"2100-01-01T00:00:00Z\"\n{inbound}\n\
             [measures.outbound]\nenabled = true\nnot_before = \"2025-01-01T00:00:00Z\"\nnot_after = \"2100-01-01T00:00:00Z\"\n{outbound}\n\
             [measures.transit]\nenabled = true\nnot_before = \"2025-01-01T00:00:00Z\"\nnot_after = \"2100-01-01T00:00:00Z\"\n{transit}\n"
        )
    };
    // No reference; a tampered document; one signed with another key.
    let e = parse_in(&d, &measures("", "approval = \"A-t\"", "approval = \"A-k\"")).unwrap_err();
    let lines: Vec<(usize, &str)> = e.0.iter().map(|e| (e.line, e.message.as_str())).collect();
    assert_eq!(lines.len(), 3, "{e}");
    assert_eq!(lines[0].0, 16, "{e}");
    assert!(
        lines[0]
            .1
            .starts_with("measure inbound: under [approvals] an enabled window needs `approval`"),
        "{e}"
    );
    assert_eq!(lines[1].0, 21, "{e}");
    assert_eq!(
        lines[1].1,
        "measure outbound: approval `A-t`: the signature does not verify with the authority's key (the document was altered, or signed with another key)"
    );
    assert_eq!(lines[2].0, 26, "{e}");
    assert!(
        lines[2]
            .1
            .starts_with("measure transit: approval `A-k`: the signature does not verify"),
        "{e}"
    );

    // A document for another measure, one for another appliance, one
    // that is not there, and a window that does not meet its document.
    std::fs::write(
        d.path().join("approvals/elsewhere.json"),
        serde_json::to_string(
            &Approval {
                appliances: vec!["osaka-1".into()],
                ..approval("A-e", "outbound", "2026-01-01T00:00:00Z", "2099-01-01T00:00:00Z")
            }
            .sign(&key(1)),
        )
        .unwrap(),
    )
    .unwrap();
    let text = measures("approval = \"A-9\"", "approval = \"A-e\"", "approval = \"A-1\"");
    let e = parse_in(&d, &text).unwrap_err();
    let lines: Vec<(usize, &str)> = e.0.iter().map(|e| (e.line, e.message.as_str())).collect();
    assert_eq!(
        lines,
        vec![
            (
                16,
                format!(
                    "measure inbound: no signed approval `A-9` in {}",
                    d.path().join("approvals").display()
                )
                .as_str()
            ),
            (
                21,
                "measure outbound: approval `A-e` covers appliances [\"osaka-1\"], not `link-1`"
            ),
            (
                26,
                "measure transit: approval `A-1` is for measure inbound, not transit"
            ),
        ],
        "{e}"
    );
    let outside = "[measures.inbound]\nenabled = true\nnot_before = \"2099-06-01T00:00:00Z\"\nnot_after = \"2100-01-01T00:00:00Z\"\napproval = \"A-1\"\n";
    let e = parse_in(&d, outside).unwrap_err();
    assert_eq!(e.0.len(), 1, "{e}");
    assert_eq!(e.0[0].line, 16);
    assert!(
        e.0[0]
            .message
            .contains("the configured window does not overlap approval `A-1`"),
        "{e}"
    );
    // A disabled window needs no document.
    let off = "[measures.inbound]\nenabled = false\nnot_before = \"2025-01-01T00:00:00Z\"\nnot_after = \"2100-01-01T00:00:00Z\"\n";
    assert!(parse_in(&d, off).is_ok());
}

#[test]
fn a_missing_or_bad_authority_key_and_unreadable_documents_are_errors_with_their_line() {
    let d = setup(&[]);
    std::fs::write(d.path().join("approvals/junk.json"), "{\"approval\": 1}").unwrap();
    std::fs::write(d.path().join("authority.pub"), "not a key\n").unwrap();
    let e = parse_in(&d, "").unwrap_err();
    let lines: Vec<(usize, &str)> = e.0.iter().map(|e| (e.line, e.message.as_str())).collect();
    assert_eq!(lines.len(), 2, "{e}");
    assert_eq!(lines[0].0, 14, "{e}");
    assert!(lines[0].1.contains("is not a hex Ed25519 public key"), "{e}");
    assert_eq!(lines[1].0, 15, "{e}");
    assert!(lines[1].1.contains("junk.json: not an approval document"), "{e}");
    std::fs::remove_file(d.path().join("authority.pub")).unwrap();
    std::fs::remove_dir_all(d.path().join("approvals")).unwrap();
    let e = parse_in(&d, "").unwrap_err().to_string();
    assert!(e.contains("furui.toml:14:") && e.contains("authority_key_file:"), "{e}");
    assert!(e.contains("furui.toml:15:") && e.contains("approvals dir"), "{e}");
}
