//! Signed authorizations: an approval document, signed with the approving
//! authority's Ed25519 key, is what opens a measure's window when
//! `[approvals]` is configured. It names the measure, the interval
//! (`not_before` inclusive, `not_after` exclusive, RFC 3339), the
//! approval's reference and, optionally, the appliances it covers (none:
//! every appliance). An operator can narrow the window in the
//! configuration, never open or extend it.
//!
//! A document is JSON: `{"approval": {...}, "signature": "<hex>"}`. The
//! signature covers `furui approval v1\n` followed by the approval's
//! canonical JSON (its members in the order of `Approval`, no spaces), so
//! reformatting the file does not break it and changing any value does.

use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

const DOMAIN: &[u8] = b"furui approval v1\n";

/// What the authority approves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// The approval's reference (the committee's decision number).
    #[serde(rename = "ref")]
    pub reference: String,
    pub measure: String,
    pub not_before: String,
    pub not_after: String,
    /// The appliance ids it covers; empty: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub appliances: Vec<String>,
}

/// An approval with the authority's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signed {
    pub approval: Approval,
    pub signature: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApprovalError {
    #[error("approval document {file}: not an approval document ({why})")]
    Malformed { file: String, why: String },
    #[error("approval `{reference}`: the signature does not verify with the authority's key (the document was altered, or signed with another key)")]
    BadSignature { reference: String },
    #[error("approval `{reference}`: {what} `{value}` is not an RFC 3339 date-time")]
    BadTime {
        reference: String,
        what: &'static str,
        value: String,
    },
    #[error("approval `{reference}`: not_before must be earlier than not_after")]
    Empty { reference: String },
    #[error("approval `{reference}` expired at {not_after}")]
    Expired { reference: String, not_after: String },
    #[error("approval `{reference}` covers appliances {covered:?}, not `{appliance}`")]
    WrongAppliance {
        reference: String,
        appliance: String,
        covered: Vec<String>,
    },
    #[error("approval `{reference}` is for measure {approved}, not {wanted}")]
    WrongMeasure {
        reference: String,
        approved: String,
        wanted: String,
    },
}

impl Approval {
    fn message(&self) -> Vec<u8> {
        let mut m = DOMAIN.to_vec();
        m.extend_from_slice(&serde_json::to_vec(self).expect("plain strings"));
        m
    }

    fn time(&self, what: &'static str, v: &str) -> Result<OffsetDateTime, ApprovalError> {
        OffsetDateTime::parse(v, &Rfc3339).map_err(|_| ApprovalError::BadTime {
            reference: self.reference.clone(),
            what,
            value: v.to_string(),
        })
    }

    /// Its interval, checked.
    pub fn interval(&self) -> Result<(OffsetDateTime, OffsetDateTime), ApprovalError> {
        let nb = self.time("not_before", &self.not_before)?;
        let na = self.time("not_after", &self.not_after)?;
        if nb >= na {
            return Err(ApprovalError::Empty {
                reference: self.reference.clone(),
            });
        }
        Ok((nb, na))
    }

    pub fn covers(&self, appliance: &str) -> bool {
        self.appliances.is_empty() || self.appliances.iter().any(|a| a == appliance)
    }

    /// Signs it with the authority's key.
    pub fn sign(self, key: &SigningKey) -> Signed {
        let sig = key.sign(&self.message());
        Signed {
            approval: self,
            signature: crate::hex::encode(&sig.to_bytes()),
        }
    }
}

impl Signed {
    /// Reads a document from its JSON text (`file` names it in errors).
    pub fn parse(text: &str, file: &str) -> Result<Signed, ApprovalError> {
        serde_json::from_str(text).map_err(|e| ApprovalError::Malformed {
            file: file.to_string(),
            why: e.to_string(),
        })
    }

    pub fn read(path: &Path) -> Result<Signed, ApprovalError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ApprovalError::Malformed {
            file: file.clone(),
            why: e.to_string(),
        })?;
        Signed::parse(&text, &file)
    }

    /// The signature checks with `authority`; the interval is sound.
    pub fn verify_signature(
        &self,
        authority: &VerifyingKey,
    ) -> Result<(OffsetDateTime, OffsetDateTime), ApprovalError> {
        let a = &self.approval;
        let ok = crate::hex::decode(&self.signature)
            .and_then(|b| Signature::from_slice(&b).ok())
            .is_some_and(|s| authority.verify(&a.message(), &s).is_ok());
        if !ok {
            return Err(ApprovalError::BadSignature {
                reference: a.reference.clone(),
            });
        }
        a.interval()
    }

    /// Everything: the signature, the measure, the appliance, and that it
    /// has not expired at `now`. Its interval if it holds.
    pub fn verify(
        &self,
        authority: &VerifyingKey,
        measure: &str,
        appliance: &str,
        now: OffsetDateTime,
    ) -> Result<(OffsetDateTime, OffsetDateTime), ApprovalError> {
        let (nb, na) = self.verify_signature(authority)?;
        let a = &self.approval;
        if a.measure != measure {
            return Err(ApprovalError::WrongMeasure {
                reference: a.reference.clone(),
                approved: a.measure.clone(),
                wanted: measure.to_string(),
            });
        }
        if !a.covers(appliance) {
            return Err(ApprovalError::WrongAppliance {
                reference: a.reference.clone(),
                appliance: appliance.to_string(),
                covered: a.appliances.clone(),
            });
        }
        if na <= now {
            return Err(ApprovalError::Expired {
                reference: a.reference.clone(),
                not_after: a.not_after.clone(),
            });
        }
        Ok((nb, na))
    }

    /// The document as the audit trail keeps it.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("plain strings")
    }
}

/// Reads an authority's public key: 64 hex digits.
pub fn read_authority(path: &Path) -> Result<VerifyingKey, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    crate::hex::decode(text.trim())
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .and_then(|b| VerifyingKey::from_bytes(&b).ok())
        .ok_or_else(|| format!("{} is not a hex Ed25519 public key (64 hex digits)", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    fn approval() -> Approval {
        Approval {
            reference: "PPC-2026-017".into(),
            measure: "inbound".into(),
            not_before: "2026-12-01T00:00:00Z".into(),
            not_after: "2027-01-01T00:00:00Z".into(),
            appliances: vec!["tokyo-1".into(), "osaka-1".into()],
        }
    }

    const NOW: OffsetDateTime = datetime!(2026-12-05 12:00 UTC);

    #[test]
    fn a_signed_approval_verifies_and_survives_reformatting() {
        let doc = approval().sign(&key(1));
        let (nb, na) = doc.verify(&key(1).verifying_key(), "inbound", "tokyo-1", NOW).unwrap();
        assert_eq!(
            (nb, na),
            (datetime!(2026-12-01 0:00 UTC), datetime!(2027-01-01 0:00 UTC))
        );
        let pretty = serde_json::to_string_pretty(&doc).unwrap();
        let again = Signed::parse(&pretty, "x.json").unwrap();
        assert!(again.verify(&key(1).verifying_key(), "inbound", "osaka-1", NOW).is_ok());
        let everyone = Approval {
            appliances: vec![],
            ..approval()
        }
        .sign(&key(1));
        assert!(everyone
            .verify(&key(1).verifying_key(), "inbound", "anyone", NOW)
            .is_ok());
    }

    #[test]
    fn tampered_expired_wrong_appliance_measure_or_key_are_refused() {
        let doc = approval().sign(&key(1));
        let auth = key(1).verifying_key();
        // Tampered: the window extended by editing the document.
        let mut t = doc.clone();
        t.approval.not_after = "2027-06-01T00:00:00Z".into();
        let e = t.verify(&auth, "inbound", "tokyo-1", NOW).unwrap_err();
        assert!(matches!(e, ApprovalError::BadSignature { .. }), "{e}");
        assert!(e.to_string().contains("altered, or signed with another key"), "{e}");
        let mut t = doc.clone();
        t.approval.appliances.push("nagoya-1".into());
        assert!(matches!(
            t.verify(&auth, "inbound", "nagoya-1", NOW),
            Err(ApprovalError::BadSignature { .. })
        ));
        // Wrong key.
        let e = doc
            .verify(&key(2).verifying_key(), "inbound", "tokyo-1", NOW)
            .unwrap_err();
        assert!(matches!(e, ApprovalError::BadSignature { .. }), "{e}");
        // Expired.
        let e = doc
            .verify(&auth, "inbound", "tokyo-1", datetime!(2027-01-01 0:00 UTC))
            .unwrap_err();
        assert_eq!(e.to_string(), "approval `PPC-2026-017` expired at 2027-01-01T00:00:00Z");
        // Wrong appliance.
        let e = doc.verify(&auth, "inbound", "nagoya-1", NOW).unwrap_err();
        assert_eq!(
            e.to_string(),
            "approval `PPC-2026-017` covers appliances [\"tokyo-1\", \"osaka-1\"], not `nagoya-1`"
        );
        // Wrong measure.
        let e = doc.verify(&auth, "transit", "tokyo-1", NOW).unwrap_err();
        assert_eq!(
            e.to_string(),
            "approval `PPC-2026-017` is for measure inbound, not transit"
        );
        // An extra member is refused, not ignored.
        let extra = serde_json::to_string(&doc)
            .unwrap()
            .replacen("\"measure\"", "\"scope\":\"all\",\"measure\"", 1);
        assert!(matches!(
            Signed::parse(&extra, "x.json"),
            Err(ApprovalError::Malformed { .. })
        ));
        // Bad and empty intervals.
        let e = Approval {
            not_before: "yesterday".into(),
            ..approval()
        }
        .sign(&key(1))
        .verify(&auth, "inbound", "tokyo-1", NOW)
        .unwrap_err();
        assert!(e.to_string().contains("`yesterday` is not an RFC 3339"), "{e}");
        let e = Approval {
            not_after: "2026-12-01T00:00:00Z".into(),
            ..approval()
        }
        .sign(&key(1))
        .verify(&auth, "inbound", "tokyo-1", NOW)
        .unwrap_err();
        assert!(matches!(e, ApprovalError::Empty { .. }), "{e}");
    }
}
