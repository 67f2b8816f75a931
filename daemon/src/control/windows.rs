//! Authorization windows → the XDP class map.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use crate::classify::{Authorized, Measure};
use crate::config::Config;

/// The class-map contents for the measures authorized at `now`.
pub fn authorized_classes(cfg: &Config, now: OffsetDateTime) -> Authorized {
    let mut a = [false; crate::classify::NUM_CLASSES];
    for (m, on) in cfg.authorized_at(now) {
        a[m.class() as usize] = on;
    }
    a
}

/// Tracks the last state written, and says what changed.
#[derive(Debug, Default)]
pub struct WindowTracker {
    last: Option<BTreeMap<Measure, bool>>,
}

impl WindowTracker {
    /// Returns the measures whose state changed since the last call (all of
    /// them on the first call), with their new state.
    pub fn update(&mut self, cfg: &Config, now: OffsetDateTime) -> Vec<(Measure, bool)> {
        let cur = cfg.authorized_at(now);
        let changed = match &self.last {
            None => cur.iter().map(|(m, on)| (*m, *on)).collect(),
            Some(prev) => cur
                .iter()
                .filter(|(m, on)| prev.get(m) != Some(on))
                .map(|(m, on)| (*m, *on))
                .collect(),
        };
        self.last = Some(cur);
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Class;
    use std::path::Path;
    use time::format_description::well_known::Rfc3339;

    #[test]
    fn window_opens_and_closes() {
        let cfg = Config::parse(
            Path::new("t.toml"),
            r#"
[capture]
interface = "x"
[domestic]
prefixes = ["192.0.2.0/24"]
[measures.inbound]
enabled = true
not_before = "2026-01-01T00:00:00Z"
not_after = "2026-01-02T00:00:00Z"
[records]
path = "r"
"#,
        )
        .unwrap();
        let t = |s: &str| OffsetDateTime::parse(s, &Rfc3339).unwrap();
        let mut w = WindowTracker::default();
        assert_eq!(w.update(&cfg, t("2025-12-31T23:59:59Z")).len(), 3);
        assert!(!authorized_classes(&cfg, t("2025-12-31T23:59:59Z"))[Class::Inbound as usize]);
        assert_eq!(
            w.update(&cfg, t("2026-01-01T00:00:00Z")),
            vec![(Measure::Inbound, true)]
        );
        assert!(authorized_classes(&cfg, t("2026-01-01T12:00:00Z"))[Class::Inbound as usize]);
        assert!(w.update(&cfg, t("2026-01-01T12:00:00Z")).is_empty());
        assert_eq!(
            w.update(&cfg, t("2026-01-02T00:00:00Z")),
            vec![(Measure::Inbound, false)]
        );
    }
}
