//! A fleet's transparency report: each appliance's report, built from its
//! own verified trail, and the fleet's figures summed over them (in
//! total and per period). Only aggregates, as for one appliance.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Figures, PeriodFigures, Report};

/// One appliance's report within a fleet's.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Member {
    /// Its directory in the fleet directory.
    pub name: String,
    /// The appliance ids its trail's entries carry.
    pub appliances: Vec<String>,
    pub report: Report,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FleetReport {
    pub from: String,
    pub to: String,
    /// The fleet's figures: the sum over its appliances.
    pub totals: Figures,
    pub periods: Vec<PeriodFigures>,
    pub appliances: Vec<Member>,
}

/// Sums the members' reports (all built over the same from, to and period).
pub fn combine(from: String, to: String, appliances: Vec<Member>) -> FleetReport {
    let mut totals = Figures::default();
    let mut periods: BTreeMap<String, PeriodFigures> = BTreeMap::new();
    for m in &appliances {
        totals.add(&m.report.totals);
        for p in &m.report.periods {
            periods
                .entry(p.start.clone())
                .or_insert_with(|| PeriodFigures {
                    start: p.start.clone(),
                    end: p.end.clone(),
                    figures: Figures::default(),
                })
                .figures
                .add(&p.figures);
        }
    }
    FleetReport {
        from,
        to,
        totals,
        periods: periods.into_values().collect(),
        appliances,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(seen: u64, erased: u64, periods: &[(&str, u64)]) -> Report {
        let mut totals = Figures::default();
        totals.packets_seen.insert("inbound".into(), seen);
        totals.frames_received = erased;
        totals.frames_erased = erased;
        totals.exported.insert("cert / analysis".into(), seen / 2);
        Report {
            from: "2026-12-01T00:00:00Z".into(),
            to: "2026-12-03T00:00:00Z".into(),
            trail_entries: 10,
            trail_last_hash: "h".into(),
            signed_checkpoints: 3,
            periods: periods
                .iter()
                .map(|(start, selected)| PeriodFigures {
                    start: start.to_string(),
                    end: "e".into(),
                    figures: Figures {
                        records_selected: *selected,
                        ..Figures::default()
                    },
                })
                .collect(),
            totals,
            windows: vec![],
        }
    }

    #[test]
    fn a_fleet_sums_its_appliances_in_total_and_per_period() {
        let day1 = "2026-12-01T00:00:00Z";
        let day2 = "2026-12-02T00:00:00Z";
        let members = vec![
            Member {
                name: "osaka-1".into(),
                appliances: vec!["osaka-1".into()],
                report: report(100, 40, &[(day1, 3), (day2, 4)]),
            },
            Member {
                name: "tokyo-1".into(),
                appliances: vec!["tokyo-1".into()],
                report: report(30, 7, &[(day1, 10), (day2, 0)]),
            },
        ];
        let f = combine(day1.into(), "2026-12-03T00:00:00Z".into(), members);
        assert_eq!(f.totals.packets_seen["inbound"], 130);
        assert_eq!((f.totals.frames_received, f.totals.frames_erased), (47, 47));
        assert_eq!(f.totals.exported["cert / analysis"], 65);
        let per: Vec<(&str, u64)> = f
            .periods
            .iter()
            .map(|p| (p.start.as_str(), p.figures.records_selected))
            .collect();
        assert_eq!(per, [(day1, 13), (day2, 4)]);
        assert_eq!(f.appliances.len(), 2);
        let json = serde_json::to_value(&f).unwrap();
        assert_eq!(json["appliances"][1]["report"]["totals"]["frames_erased"], 7);
        assert_eq!(json["totals"]["frames_erased"], 47);

        let html = super::super::html::render_fleet(&f);
        assert!(html.contains("<b id=\"fleet-frames-erased\">47</b>"), "{html}");
        assert!(html.contains("<b id=\"fleet-packets-seen\">130</b>"), "{html}");
        assert!(html.contains("<a href=\"osaka-1/report.html\">osaka-1</a>"), "{html}");
        assert!(html.contains("On every appliance, every frame copied"), "{html}");
        // One appliance that copied more than it erased is flagged.
        let mut short = f.clone();
        short.appliances[1].report.totals.frames_erased = 6;
        let html = super::super::html::render_fleet(&short);
        assert!(html.contains("frames copied and frames erased differ"), "{html}");
        assert!(html.contains("<td class=\"bad\">6 / 7</td>"), "{html}");
    }
}
