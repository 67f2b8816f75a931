//! What the live-export tests' configurations share: the domestic range,
//! measures and indicator set, a recipient identity, the config prelude,
//! and a witness check of the audit trail.

use std::process::Command;

use super::*;

pub const DOMESTIC: &str = "[domestic]\nprefixes = [\"192.0.2.0/24\"]\n";
pub const MEASURES: &str = "[measures.inbound]\nenabled = true\nnot_before = \"2020-01-01T00:00:00Z\"\nnot_after = \"2099-01-01T00:00:00Z\"\n[measures.transit]\nenabled = true\nnot_before = \"2020-01-01T00:00:00Z\"\nnot_after = \"2099-01-01T00:00:00Z\"\n";
pub const SELECT: &str = "[[indicators]]\nname = \"c2\"\nprefixes = [\"203.0.113.0/24\"]\n";
pub const IDENTITY: &str = "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

pub fn recipient(port: u16, fields: &str) -> String {
    format!(
        "[[purposes]]\nid = \"damage-prevention\"\ndamage_prevention = true\n\n[[recipients]]\nname = \"nfcapd\"\nrole = \"analyst\"\nidentity = \"{IDENTITY}\"\n[[recipients.grants]]\nmeasures = [\"inbound\"]\nfields = [{fields}]\npurpose = \"damage-prevention\"\n[[recipients.sinks]]\nkind = \"ipfix-udp\"\naddress = \"127.0.0.1:{port}\"\n"
    )
}

/// A config exporting inbound records with `fields` over IPFIX/UDP to
/// 127.0.0.1:`port`, pseudonymized under keys in the rig's `keys`.
pub fn udp_export_config(rig: &Rig, port: u16, fields: &str) -> std::path::PathBuf {
    rig.config(
        "",
        &format!(
            "{DOMESTIC}{MEASURES}{SELECT}\n[deid]\nkey_dir = \"{}\"\n\n{}",
            rig.path("keys").display(),
            recipient(port, fields)
        ),
    )
}

/// `furui audit verify` of the rig's trail against a witness a recipient
/// kept (one checkpoint line); the command's output.
pub fn verify_with_witness(rig: &Rig, witness_line: &str) -> String {
    let witness = rig.path("witness.json");
    std::fs::write(&witness, witness_line).unwrap();
    let audit = rig.path("audit");
    let out = Command::new(FURUI)
        .args(["audit", "verify"])
        .arg(&audit)
        .arg("--pubkey")
        .arg(audit.join("appliance.pub"))
        .arg("--witness")
        .arg(&witness)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The common head of the live-export configs: every test's domestic
/// range, measures and indicator set, 1-second idle flows, and key and
/// spool directories inside the rig.
pub fn export_prelude(rig: &Rig) -> String {
    format!(
        "{DOMESTIC}{MEASURES}{SELECT}\n[flows]\nidle_timeout_secs = 1\n\n[deid]\nkey_dir = \"{}\"\n\n[export]\nspool_dir = \"{}\"\n\n",
        rig.path("keys").display(),
        rig.path("spool").display()
    )
}

/// What the daemon exports for `addr` under the key of `epoch` (read from
/// the rig's key directory): the exact pseudonym, to compare with. (Crypto-
/// PAn keeps a prefix with a probability far above 2^-bits, so "does not
/// start with the original prefix" is no test of pseudonymization.)
pub fn pseudonym(rig: &Rig, epoch: &str, addr: &str) -> String {
    let key = furui::deid::key_file(&rig.path("keys").join(format!("{epoch}.key"))).unwrap();
    furui::deid::CryptoPan::new(&key).ip(addr.parse().unwrap()).to_string()
}
