//! Fuzz target: arbitrary bytes as an audit trail handed to an inspector
//! (`furui audit verify`, then the checks). Verification may fail, never
//! panic; the checks run on whatever lines parse, verified or not.
use std::sync::OnceLock;

use ed25519_dalek::{SigningKey, VerifyingKey};

fn key() -> &'static VerifyingKey {
    static K: OnceLock<VerifyingKey> = OnceLock::new();
    // The same key the seed trails were signed with (seed_corpus --trail).
    K.get_or_init(|| SigningKey::from_bytes(&[7; 32]).verifying_key())
}

pub fn check(data: &[u8]) {
    // The first line may be a witness.
    let (witness, trail) = match data.iter().position(|b| *b == b'\n') {
        Some(i) if data.first() == Some(&b'W') => (std::str::from_utf8(&data[1..i]).ok(), &data[i + 1..]),
        _ => (None, data),
    };
    let path = std::path::Path::new("fuzz-trail.jsonl");
    let verified = crate::audit::verify_from(trail, path, key(), witness);
    if let Ok(v) = &verified {
        assert!(v.checkpoints <= v.entries);
    }
    let entries: Vec<serde_json::Value> = trail
        .split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect();
    let _ = crate::audit::check::erasure(&entries);
    let _ = crate::audit::check::capture(&entries, None);
    let _ = crate::audit::check::exports(&entries);
    let _ = crate::audit::check::retention(&entries, std::time::Duration::from_secs(60));
}
