//! Art. 29 aggregates: per period, how many selected flows each rule (or
//! indicator set) matched, by destination port and measure. A cell counted
//! fewer than `min_count` times is suppressed: only the number of such
//! cells is published. The rows carry no address and no record field.

use std::collections::BTreeMap;

use super::project::{Value, View};
use crate::config::aggregates::Aggregates;
use crate::flow::MechanicalRecord;

/// Every field name an aggregate row may carry (the spool reads rows
/// back by these names).
pub const ROW_FIELDS: &[&str] = &[
    "period_start",
    "period_secs",
    "measure",
    "rule",
    "dst_port",
    "flows",
    "suppressed_cells",
    "min_count",
    "partial",
];

#[derive(Debug)]
pub struct Aggregator {
    cfg: Aggregates,
    /// Start of the period being counted (Unix seconds).
    period_start: Option<u64>,
    /// (measure, rule, destination port) → flows.
    cells: BTreeMap<(&'static str, String, u16), u64>,
}

impl Aggregator {
    pub fn new(cfg: Aggregates) -> Aggregator {
        Aggregator {
            cfg,
            period_start: None,
            cells: BTreeMap::new(),
        }
    }

    fn period_of(&self, now_secs: u64) -> u64 {
        let p = u64::from(self.cfg.period_secs);
        now_secs - now_secs % p
    }

    /// Counts one selected flow at `now_secs`; returns the rows of a period
    /// that this closes.
    pub fn add(&mut self, rec: &MechanicalRecord, measure: &'static str, now_secs: u64) -> Vec<View> {
        let rows = self.tick(now_secs);
        if self.period_start.is_none() {
            self.period_start = Some(self.period_of(now_secs));
        }
        let mut selectors: Vec<String> = rec.rules.clone();
        if !rec.indicator_set.is_empty() {
            selectors.push(format!("indicator:{}", rec.indicator_set));
        }
        for s in selectors {
            *self.cells.entry((measure, s, rec.responder_port)).or_insert(0) += 1;
        }
        rows
    }

    /// Closes the period if `now_secs` is past it; its rows.
    pub fn tick(&mut self, now_secs: u64) -> Vec<View> {
        match self.period_start {
            Some(start) if self.period_of(now_secs) > start => self.flush(false),
            _ => Vec::new(),
        }
    }

    /// The current period's rows (`partial` at shutdown), then a fresh period.
    pub fn flush(&mut self, partial: bool) -> Vec<View> {
        let Some(start) = self.period_start.take() else {
            return Vec::new();
        };
        let cells = std::mem::take(&mut self.cells);
        let period = u64::from(self.cfg.period_secs);
        let mut suppressed = 0u64;
        let mut rows = Vec::new();
        for ((measure, rule, port), count) in cells {
            if count < u64::from(self.cfg.min_count) {
                suppressed += 1;
                continue;
            }
            rows.push(View {
                key_epoch: String::new(),
                fields: vec![
                    ("period_start", Value::U64(start)),
                    ("period_secs", Value::U64(period)),
                    ("measure", Value::Str(measure.to_string())),
                    ("rule", Value::Str(rule)),
                    ("dst_port", Value::U16(port)),
                    ("flows", Value::U64(count)),
                ],
                ..Default::default()
            });
        }
        rows.push(View {
            key_epoch: String::new(),
            fields: vec![
                ("period_start", Value::U64(start)),
                ("period_secs", Value::U64(period)),
                ("suppressed_cells", Value::U64(suppressed)),
                ("min_count", Value::U64(u64::from(self.cfg.min_count))),
                ("partial", Value::Str(partial.to_string())),
            ],
            ..Default::default()
        });
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::project::tests::record;

    #[test]
    fn small_cells_are_suppressed_and_periods_roll() {
        let mut a = Aggregator::new(Aggregates {
            period_secs: 60,
            min_count: 3,
        });
        let mut r80 = record();
        r80.rules = vec!["scan".into()];
        r80.indicator_set = String::new();
        r80.responder_port = 80;
        let mut r22 = r80.clone();
        r22.responder_port = 22;
        for _ in 0..3 {
            assert!(a.add(&r80, "inbound", 120).is_empty());
        }
        assert!(a.add(&r22, "inbound", 150).is_empty());
        // The next period's first flow closes the last one.
        let rows = a.add(&r80, "inbound", 185);
        let json: Vec<String> = rows.iter().map(|v| serde_json::to_string(v).unwrap()).collect();
        assert_eq!(rows.len(), 2, "{json:?}");
        assert!(json[0].contains(r#""rule":"scan","dst_port":80,"flows":3"#), "{json:?}");
        assert!(
            json[1].contains(r#""suppressed_cells":1"#),
            "the port-22 cell (1 flow) is suppressed: {json:?}"
        );
        assert!(json
            .iter()
            .all(|j| !j.contains("203.0.113") && !j.contains("\"initiator\"")));
        let rest = a.flush(true);
        assert_eq!(rest.len(), 1, "one flow in the new period: suppressed");
        assert!(serde_json::to_string(&rest[0]).unwrap().contains(r#""partial":"true""#));
    }
}
