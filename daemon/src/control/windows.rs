//! Authorization windows → the XDP class map.
//!
//! The tracker decides what the class map must hold, from the
//! configuration and a clock it is handed (so tests inject one), and keeps
//! two latches the clock cannot undo:
//! - a window that has **ended** (its `not_after` was reached) stays closed
//!   until a reload brings a new approval, whatever the clock does later;
//! - after a **clock step** (the wall clock moved against the monotonic
//!   clock by more than [`CLOCK_STEP_BOUND`]), every measure that was not
//!   authorized stays closed until the next accepted reload: which clock was
//!   right is in doubt, and in doubt furui does not capture.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::classify::{Authorized, Measure};
use crate::config::{Config, Window};

/// How long the class map may stay unwritable before capture stops.
pub const WRITE_FAILURE_BOUND: Duration = Duration::from_secs(10);

/// How far the wall clock may move against the monotonic clock between two
/// ticks before it counts as a step. NTP slews at most 500 ppm (0.1 ms per
/// 200 ms tick), so anything past this bound was set, not slewed.
pub const CLOCK_STEP_BOUND: Duration = Duration::from_secs(2);

/// One reading of the two clocks.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub wall: OffsetDateTime,
    pub mono: Instant,
}

impl Now {
    /// The system clocks (test builds: shifted by `FURUI_FAULT_CLOCK_FILE`).
    pub fn read() -> Now {
        Now {
            wall: OffsetDateTime::now_utc() + fault::clock_offset(),
            mono: Instant::now(),
        }
    }
}

/// A wall-clock step seen between two readings.
#[derive(Debug, Clone, PartialEq)]
pub struct ClockStep {
    /// Seconds the wall clock moved beyond the monotonic clock (negative:
    /// set back).
    pub secs: f64,
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
    /// Measures held closed because of it.
    pub held: Vec<Measure>,
}

/// Why a measure the configuration calls open is kept closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Its window (this approval) ended earlier.
    Ended,
    /// It was closed when the clock stepped; a reload releases it.
    ClockStep,
}

impl Hold {
    pub const ALL: [Hold; 2] = [Hold::Ended, Hold::ClockStep];

    pub fn name(self) -> &'static str {
        match self {
            Hold::Ended => "window_ended",
            Hold::ClockStep => "clock_step",
        }
    }
}

/// What a window is known by: its approval reference, or without one its
/// bounds.
fn identity(m: Measure, w: &Window) -> String {
    match &w.approval {
        Some(a) => format!("{}/approval:{a}", m.name()),
        None => format!("{}/window:{}..{}", m.name(), w.not_before, w.not_after),
    }
}

/// Tracks the state last written to the class map, since when writes have
/// been failing, and the latches above.
#[derive(Debug, Default)]
pub struct WindowTracker {
    last: Option<BTreeMap<Measure, bool>>,
    /// Since when every write has failed (None: the last write succeeded).
    pub failing_since: Option<Instant>,
    ended: BTreeSet<String>,
    stepped: BTreeSet<Measure>,
    prev: Option<Now>,
}

impl WindowTracker {
    /// Compares this reading with the previous one; a step holds every
    /// measure not authorized in the class map right now.
    pub fn observe(&mut self, now: Now) -> Option<ClockStep> {
        let prev = self.prev.replace(now)?;
        let wall = (now.wall - prev.wall).as_seconds_f64();
        let mono = now.mono.saturating_duration_since(prev.mono).as_secs_f64();
        let secs = wall - mono;
        if secs.abs() <= CLOCK_STEP_BOUND.as_secs_f64() {
            return None;
        }
        let held: Vec<Measure> = Measure::ALL
            .iter()
            .copied()
            .filter(|m| self.last.as_ref().is_none_or(|l| l.get(m) != Some(&true)))
            .collect();
        self.stepped.extend(held.iter().copied());
        Some(ClockStep {
            secs,
            from: prev.wall,
            to: now.wall,
            held,
        })
    }

    /// The state the class map must hold at `wall`: the configuration's
    /// windows, minus the held ones. Records windows that have ended.
    pub fn desired(&mut self, cfg: &Config, wall: OffsetDateTime) -> BTreeMap<Measure, bool> {
        for (m, w) in &cfg.measures {
            if w.enabled && wall >= w.not_after {
                self.ended.insert(identity(*m, w));
            }
        }
        cfg.authorized_at(wall)
            .into_iter()
            .map(|(m, on)| (m, on && self.hold(cfg, m).is_none()))
            .collect()
    }

    /// Why `m` is held closed, if it is.
    pub fn hold(&self, cfg: &Config, m: Measure) -> Option<Hold> {
        let w = cfg.measures.get(&m).filter(|w| w.enabled)?;
        if self.ended.contains(&identity(m, w)) {
            Some(Hold::Ended)
        } else if self.stepped.contains(&m) {
            Some(Hold::ClockStep)
        } else {
            None
        }
    }

    /// The measures the configuration calls open at `wall` that are held
    /// closed, and why.
    pub fn held(&self, cfg: &Config, wall: OffsetDateTime) -> Vec<(Measure, Hold)> {
        cfg.authorized_at(wall)
            .into_iter()
            .filter(|(_, on)| *on)
            .filter_map(|(m, _)| self.hold(cfg, m).map(|h| (m, h)))
            .collect()
    }

    /// An accepted reload: the operator has seen the clock, so the holds
    /// of a clock step are released (ended windows stay closed: only a new
    /// approval opens them). Returns the measures released.
    pub fn reloaded(&mut self) -> Vec<Measure> {
        std::mem::take(&mut self.stepped).into_iter().collect()
    }

    /// The measures whose state in `want` differs from what was last
    /// written (all of them before the first write). Nothing is committed:
    /// call `written` once the class map holds it.
    pub fn pending(&self, want: &BTreeMap<Measure, bool>) -> Vec<(Measure, bool)> {
        want.iter()
            .filter(|(m, on)| self.last.as_ref().and_then(|l| l.get(m)) != Some(on))
            .map(|(m, on)| (*m, *on))
            .collect()
    }

    /// The class map now holds `want`.
    pub fn written(&mut self, want: BTreeMap<Measure, bool>) {
        self.last = Some(want);
        self.failing_since = None;
    }

    /// A write failed at `at`; returns how long writes have been failing.
    pub fn failed(&mut self, at: Instant) -> Duration {
        at - *self.failing_since.get_or_insert(at)
    }
}

/// The class-map contents for `want`.
pub fn classes(want: &BTreeMap<Measure, bool>) -> Authorized {
    let mut a = [false; crate::classify::NUM_CLASSES];
    for (m, on) in want {
        a[m.class() as usize] = *on;
    }
    a
}

/// Test-only clock shift, compiled in only with the `fault-injection`
/// feature: `FURUI_FAULT_CLOCK_FILE=path` adds the whole seconds written in
/// that file (read on every tick, missing or empty: 0) to the wall clock.
mod fault {
    pub fn clock_offset() -> time::Duration {
        #[cfg(feature = "fault-injection")]
        if let Some(p) = std::env::var_os("FURUI_FAULT_CLOCK_FILE") {
            let secs = std::fs::read_to_string(p)
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .unwrap_or(0);
            return time::Duration::seconds(secs);
        }
        time::Duration::ZERO
    }
}

#[cfg(test)]
mod tests;
