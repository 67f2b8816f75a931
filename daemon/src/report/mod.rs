//! The transparency report (`furui report`): aggregate figures only,
//! recomputed from a verified audit trail, per period and measure —
//! packets seen per class, frames erased, records selected, records
//! exported per recipient and purpose, records purged, and the
//! authorization windows. Nothing in it identifies a flow or an address:
//! the trail holds none, and the report reads nothing else.

pub mod fleet;
pub mod html;

use std::collections::BTreeMap;

use crate::audit::{rfc3339, time_of};
use crate::telemetry::names;
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Hour,
    Day,
}

impl Period {
    fn secs(self) -> i64 {
        match self {
            Period::Hour => 3_600,
            Period::Day => 86_400,
        }
    }
}

/// The figures of one period (or of the whole report).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Figures {
    /// Packets the XDP classifier saw, per class (all actions).
    pub packets_seen: BTreeMap<String, u64>,
    /// Packets copied to user space, per class (only measured classes can be).
    pub packets_redirected: BTreeMap<String, u64>,
    pub frames_received: u64,
    pub frames_erased: u64,
    pub records_selected: u64,
    /// "recipient / purpose" → records (or aggregate rows).
    pub exported: BTreeMap<String, u64>,
    /// Measure → records purged at the end of their retention.
    pub purged: BTreeMap<String, u64>,
}

impl Figures {
    fn add(&mut self, o: &Figures) {
        let merge = |a: &mut BTreeMap<String, u64>, b: &BTreeMap<String, u64>| {
            for (k, v) in b {
                *a.entry(k.clone()).or_default() += v;
            }
        };
        merge(&mut self.packets_seen, &o.packets_seen);
        merge(&mut self.packets_redirected, &o.packets_redirected);
        self.frames_received += o.frames_received;
        self.frames_erased += o.frames_erased;
        self.records_selected += o.records_selected;
        merge(&mut self.exported, &o.exported);
        merge(&mut self.purged, &o.purged);
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PeriodFigures {
    pub start: String,
    pub end: String,
    #[serde(flatten)]
    pub figures: Figures,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Window {
    pub measure: String,
    pub opened: String,
    /// Empty while still open at the end of the report.
    pub closed: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Report {
    pub from: String,
    pub to: String,
    pub trail_entries: u64,
    pub trail_last_hash: String,
    pub signed_checkpoints: u64,
    pub totals: Figures,
    pub periods: Vec<PeriodFigures>,
    pub windows: Vec<Window>,
}

/// `name{labels}` → the value of `label` in it.
fn label<'a>(series: &'a str, label: &str) -> Option<&'a str> {
    let rest = series.split_once(&format!("{label}=\""))?.1;
    rest.split('"').next()
}

/// Builds the report from a verified trail's entries.
pub fn build(entries: &[Value], from: OffsetDateTime, to: OffsetDateTime, period: Period, last_hash: &str) -> Report {
    let len = period.secs();
    let bucket = |t: OffsetDateTime| t.unix_timestamp().div_euclid(len) * len;
    let mut buckets: BTreeMap<i64, Figures> = BTreeMap::new();
    let first = bucket(from);
    let mut b = first;
    while b < to.unix_timestamp() {
        buckets.insert(b, Figures::default());
        b += len;
    }
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    let mut open: BTreeMap<String, OffsetDateTime> = BTreeMap::new();
    let mut windows = Vec::new();
    let mut signed = 0;
    for e in entries {
        let Some(t) = time_of(&e["time"]) else { continue };
        let inside = from <= t && t < to;
        let d = &e["data"];
        let kind = e["kind"].as_str().unwrap_or("");
        match kind {
            "start" | "new_segment" => {
                last.clear();
                // A restart ends every open window (the daemon re-opens them).
                for (m, since) in std::mem::take(&mut open) {
                    windows.push((m, since, Some(t)));
                }
            }
            "window" => {
                let m = d["measure"].as_str().unwrap_or("").to_string();
                if d["authorized"] == Value::Bool(true) {
                    open.entry(m).or_insert(t);
                } else if let Some(since) = open.remove(&m) {
                    windows.push((m, since, Some(t)));
                }
            }
            "export" | "purge" if inside => {
                let f = buckets.entry(bucket(t)).or_default();
                if kind == "export" {
                    for g in d["grants"].as_array().into_iter().flatten() {
                        let key = format!(
                            "{} / {}",
                            d["recipient"].as_str().unwrap_or(""),
                            g["purpose"].as_str().unwrap_or("")
                        );
                        *f.exported.entry(key).or_default() += g["records"].as_u64().unwrap_or(0);
                    }
                } else {
                    let m = d["epoch"]
                        .as_str()
                        .unwrap_or("")
                        .split('-')
                        .next()
                        .unwrap_or("")
                        .to_string();
                    *f.purged.entry(m).or_default() += d["records"].as_u64().unwrap_or(0);
                }
            }
            "checkpoint" | "stop" if e.get("sig").is_some() => {
                signed += 1;
                let Some(obj) = d.as_object() else { continue };
                let mut delta = Figures::default();
                for (series, v) in obj {
                    let now = v.as_u64().unwrap_or(0);
                    let dv = now.saturating_sub(last.get(series).copied().unwrap_or(0));
                    last.insert(series.clone(), now);
                    let name = series.split('{').next().unwrap_or("");
                    match name {
                        names::XDP_PACKETS => {
                            let class = label(series, "class").unwrap_or("").to_string();
                            *delta.packets_seen.entry(class.clone()).or_default() += dv;
                            if label(series, "action") == Some("redirect") {
                                *delta.packets_redirected.entry(class).or_default() += dv;
                            }
                        }
                        names::FRAMES_RECEIVED => delta.frames_received += dv,
                        names::FRAMES_ERASED => delta.frames_erased += dv,
                        names::RECORDS_SELECTED => delta.records_selected += dv,
                        _ => {}
                    }
                }
                if inside {
                    buckets.entry(bucket(t)).or_default().add(&delta);
                }
                if kind == "stop" {
                    // Nothing is captured while the daemon is down.
                    for (m, since) in std::mem::take(&mut open) {
                        windows.push((m, since, Some(t)));
                    }
                }
            }
            _ => {}
        }
    }
    for (m, since) in open {
        windows.push((m, since, None));
    }
    let mut totals = Figures::default();
    let periods = buckets
        .into_iter()
        .map(|(start, f)| {
            totals.add(&f);
            let s = OffsetDateTime::from_unix_timestamp(start).unwrap_or(from);
            PeriodFigures {
                start: rfc3339(s),
                end: rfc3339(s + time::Duration::seconds(len)),
                figures: f,
            }
        })
        .collect();
    let windows = windows
        .into_iter()
        .filter(|(_, since, until)| *since < to && until.is_none_or(|u| u > from))
        .map(|(measure, since, until)| Window {
            measure,
            opened: rfc3339(since.max(from)),
            closed: until.map(|u| rfc3339(u.min(to))).unwrap_or_default(),
        })
        .collect();
    Report {
        from: rfc3339(from),
        to: rfc3339(to),
        trail_entries: entries.len() as u64,
        trail_last_hash: last_hash.to_string(),
        signed_checkpoints: signed,
        totals,
        periods,
        windows,
    }
}
