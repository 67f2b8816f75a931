//! The signed-approval half of the capture check (with the authority's
//! public key): every interval in which a measure's packets were
//! redirected lies under an approval document the trail holds, signed by
//! the authority, for that measure and that appliance.

use std::collections::BTreeMap;

use ed25519_dalek::VerifyingKey;
use serde_json::Value;
use time::OffsetDateTime;

use crate::approvals::Signed;
use crate::audit::time_of;

/// What the trail says of approvals, entry by entry.
#[derive(Default)]
pub(super) struct Approvals {
    /// The documents of the policy in force (the last start or reload),
    /// by reference.
    docs: BTreeMap<String, Signed>,
    /// The approval each measure's window last opened under.
    opened_under: BTreeMap<String, String>,
    /// Time of the previous signed checkpoint of this run.
    previous: Option<OffsetDateTime>,
    /// Intervals checked against a document.
    pub checked: u64,
}

impl Approvals {
    pub fn start(&mut self, e: &Value) {
        self.previous = None;
        self.opened_under.clear();
        self.policy(e);
    }

    /// A start or reload entry: the documents it carries.
    pub fn policy(&mut self, e: &Value) {
        if let Some(list) = e["data"]["approvals"].as_array() {
            self.docs = list
                .iter()
                .filter_map(|d| serde_json::from_value::<Signed>(d.clone()).ok())
                .map(|d| (d.approval.reference.clone(), d))
                .collect();
        }
    }

    pub fn window(&mut self, measure: &str, approval: &str) {
        self.opened_under.insert(measure.to_string(), approval.to_string());
    }

    /// `delta` packets of `measure` redirected since the previous
    /// checkpoint, at checkpoint `e`: the reason it fails, if it does.
    pub fn redirected(&mut self, e: &Value, measure: &str, delta: u64, authority: &VerifyingKey) -> Option<String> {
        self.checked += 1;
        let at = e["seq"].clone();
        let Some(reference) = self.opened_under.get(measure) else {
            return Some(format!(
                "entry {at}: {delta} {measure} packets redirected, and no window of the measure opened under an approval in this run"
            ));
        };
        let Some(doc) = self.docs.get(reference) else {
            return Some(format!(
                "entry {at}: {delta} {measure} packets redirected under approval `{reference}`, which the trail does not hold as a signed document"
            ));
        };
        let (nb, na) = match doc.verify_signature(authority) {
            Ok(i) => i,
            Err(err) => return Some(format!("entry {at}: {delta} {measure} packets redirected: {err}")),
        };
        if doc.approval.measure != measure {
            return Some(format!(
                "entry {at}: {delta} {measure} packets redirected under approval `{reference}`, which is for {}",
                doc.approval.measure
            ));
        }
        if let Some(appliance) = e["appliance"].as_str().filter(|a| !doc.approval.covers(a)) {
            return Some(format!(
                "entry {at}: {delta} {measure} packets redirected on appliance `{appliance}`, which approval `{reference}` does not cover"
            ));
        }
        let now = time_of(&e["time"]);
        let since = self.previous.or(now);
        // The packets went through between the previous checkpoint and
        // this one: that interval must meet the approval's.
        match (since, now) {
            (Some(since), Some(now)) if since < na && now >= nb => None,
            _ => Some(format!(
                "entry {at}: {delta} {measure} packets redirected between {} and {}, outside approval `{reference}` ({} to {})",
                since.map(crate::audit::rfc3339).unwrap_or_default(),
                e["time"].as_str().unwrap_or(""),
                doc.approval.not_before,
                doc.approval.not_after
            )),
        }
    }

    pub fn checkpoint(&mut self, e: &Value) {
        self.previous = time_of(&e["time"]);
    }
}
