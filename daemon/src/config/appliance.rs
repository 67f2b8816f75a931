//! `[appliance]`: which appliance of a fleet this is. Its id is carried in
//! every exported view and aggregate row, every audit entry and checkpoint,
//! and names its NATS messages (`Nats-Msg-Id`), so that every datum says
//! which link it came from.

use serde::Deserialize;
use toml::Spanned;

use super::errors::Collector;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplianceSection {
    /// Default: the host's name.
    #[serde(default)]
    pub id: Option<Spanned<String>>,
}

/// Longest id: it is part of every message id and every audit entry.
pub const MAX_ID: usize = 64;

/// Whether `id` may name an appliance: 1–64 of `A-Z a-z 0-9 . _ -`, so
/// that it is one NATS token, a file name and a label value as it is.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID
        && !id.starts_with('.')
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

pub(super) fn validate(a: ApplianceSection, c: &mut Collector<'_>) -> Option<String> {
    let (id, span) = match &a.id {
        Some(v) => (v.get_ref().clone(), Some(v.span())),
        None => (host_name(), None),
    };
    if valid_id(&id) {
        return Some(id);
    }
    let msg = match span {
        Some(_) => format!("appliance id `{id}` must be 1-{MAX_ID} characters of A-Z, a-z, 0-9, '.', '_' and '-', not starting with '.'"),
        None => format!("the host name `{id}` cannot serve as the appliance id (1-{MAX_ID} characters of A-Z, a-z, 0-9, '.', '_', '-'): set [appliance] id"),
    };
    match span {
        Some(s) => c.at(s, msg),
        None => c.at_line(1, msg),
    }
    None
}

#[cfg(test)]
mod tests {
    use super::valid_id;

    #[test]
    fn ids() {
        for ok in ["tokyo-1", "link.osaka_2", "A", &"x".repeat(64)] {
            assert!(valid_id(ok), "{ok}");
        }
        for bad in ["", ".x", "a b", "a*", "a>b", "é", &"x".repeat(65), "a/b"] {
            assert!(!valid_id(bad), "{bad}");
        }
    }
}
