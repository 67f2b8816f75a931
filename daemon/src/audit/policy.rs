//! The export policy as the trail records it (in `start` and `reload`
//! entries): every recipient with its role, sinks and grants. The
//! `exports` check compares each export batch with the policy in force.

use serde_json::{json, Value};

use crate::config::export::Export;
use crate::config::recipients::Grant;

/// One grant, as recorded (also copied into each export batch's entry).
pub fn grant(index: usize, g: &Grant) -> Value {
    json!({
        "grant": index,
        "aggregate": g.aggregate,
        "measures": g.measures.iter().map(|m| m.name()).collect::<Vec<_>>(),
        "fields": g.fields,
        "purpose": g.purpose,
        "consent": g.consent.as_ref().map(|c| json!({
            "id": c.id,
            "not_before": super::rfc3339(c.not_before),
            "not_after": super::rfc3339(c.not_after),
        })),
    })
}

/// Every recipient, by name.
pub fn of(export: &Export) -> Value {
    let mut m = serde_json::Map::new();
    for r in &export.recipients {
        m.insert(
            r.name.clone(),
            json!({
                "role": r.role.name(),
                "sinks": r.sinks.iter().map(|s| s.name()).collect::<Vec<_>>(),
                "grants": r.grants.iter().enumerate().map(|(i, g)| grant(i, g)).collect::<Vec<_>>(),
            }),
        );
    }
    Value::Object(m)
}
