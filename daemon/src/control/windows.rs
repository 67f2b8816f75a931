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

/// How long the class map may stay unwritable before capture stops.
pub const WRITE_FAILURE_BOUND: std::time::Duration = std::time::Duration::from_secs(10);

/// Tracks the state last written to the class map, and since when writes
/// have been failing.
#[derive(Debug, Default)]
pub struct WindowTracker {
    last: Option<BTreeMap<Measure, bool>>,
    /// Since when every write has failed (None: the last write succeeded).
    pub failing_since: Option<std::time::Instant>,
}

impl WindowTracker {
    /// The measures whose state differs from what was last written (all of
    /// them before the first write), with their new state. Nothing is
    /// committed: call `written` once the class map holds it.
    pub fn pending(&self, cfg: &Config, now: OffsetDateTime) -> Vec<(Measure, bool)> {
        let cur = cfg.authorized_at(now);
        match &self.last {
            None => cur.iter().map(|(m, on)| (*m, *on)).collect(),
            Some(prev) => cur
                .iter()
                .filter(|(m, on)| prev.get(m) != Some(on))
                .map(|(m, on)| (*m, *on))
                .collect(),
        }
    }

    /// The class map now holds the state at `now`.
    pub fn written(&mut self, cfg: &Config, now: OffsetDateTime) {
        self.last = Some(cfg.authorized_at(now));
        self.failing_since = None;
    }

    /// A write failed at `at`; returns how long writes have been failing.
    pub fn failed(&mut self, at: std::time::Instant) -> std::time::Duration {
        at - *self.failing_since.get_or_insert(at)
    }

    /// Returns the measures whose state changed since the last call, and
    /// commits it (for callers that cannot fail to write).
    pub fn update(&mut self, cfg: &Config, now: OffsetDateTime) -> Vec<(Measure, bool)> {
        let changed = self.pending(cfg, now);
        self.written(cfg, now);
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_stays_pending_until_a_write_succeeds() {
        let cfg = Config::parse(
            std::path::Path::new("t.toml"),
            "[capture]\ninterface = \"x\"\n[domestic]\nprefixes = [\"192.0.2.0/24\"]\n[measures.inbound]\nenabled = true\nnot_before = \"2026-01-01T00:00:00Z\"\nnot_after = \"2026-01-02T00:00:00Z\"\n[records]\npath = \"r\"\n",
        )
        .unwrap();
        let t = |s: &str| OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap();
        let mut w = WindowTracker::default();
        w.update(&cfg, t("2026-01-01T12:00:00Z"));
        // The window closes; the write fails twice: still pending each time.
        let closing = t("2026-01-02T00:00:01Z");
        let t0 = std::time::Instant::now();
        assert_eq!(w.pending(&cfg, closing), vec![(Measure::Inbound, false)]);
        assert_eq!(w.failed(t0), std::time::Duration::ZERO);
        assert_eq!(
            w.failed(t0 + std::time::Duration::from_secs(3)),
            std::time::Duration::from_secs(3)
        );
        assert_eq!(w.pending(&cfg, closing), vec![(Measure::Inbound, false)]);
        // Written: nothing pending, the failure streak is over.
        w.written(&cfg, closing);
        assert!(w.pending(&cfg, closing).is_empty());
        assert!(w.failing_since.is_none());
    }
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
