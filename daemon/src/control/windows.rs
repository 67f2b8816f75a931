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
//!
//! With an audit directory, ended windows are remembered across restarts
//! in [`ENDED_FILE`] there (one window identity per line, appended and
//! fsynced when a window ends): a restart with the clock set back does not
//! reopen them. If that file exists but cannot be read, which windows have
//! ended is in doubt: every measure is held until a reload finds it
//! readable again (fixed, or removed by the operator).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
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
    /// The record of ended windows could not be read at start; a reload
    /// that finds it readable again releases it.
    StateUnknown,
}

impl Hold {
    pub const ALL: [Hold; 3] = [Hold::Ended, Hold::ClockStep, Hold::StateUnknown];

    pub fn name(self) -> &'static str {
        match self {
            Hold::Ended => "window_ended",
            Hold::ClockStep => "clock_step",
            Hold::StateUnknown => "state_unknown",
        }
    }

    /// Why, in words (reload answers).
    pub fn why(self) -> &'static str {
        match self {
            Hold::Ended => "its approval's window has ended; only a new approval reopens it",
            Hold::ClockStep => "held since a clock step",
            Hold::StateUnknown => "the record of ended windows cannot be read (fix or remove it, then reload)",
        }
    }
}

/// The file in the audit directory that remembers ended windows.
pub const ENDED_FILE: &str = "windows-ended";

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
    /// Held because the record of ended windows could not be read.
    unknown: BTreeSet<Measure>,
    /// Where ended windows are remembered (None: only in memory).
    ended_file: Option<PathBuf>,
    prev: Option<Now>,
}

/// A line of the ended-windows file: a measure's window identity.
fn is_identity(line: &str) -> bool {
    Measure::ALL.iter().any(|m| {
        line.strip_prefix(m.name())
            .and_then(|r| r.strip_prefix('/'))
            .is_some_and(|r| r.starts_with("approval:") || r.starts_with("window:"))
    })
}

/// The identities in `path` (none if it does not exist).
fn read_ended(path: &Path) -> Result<BTreeSet<String>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    text.lines()
        .enumerate()
        .map(|(i, l)| match is_identity(l) {
            true => Ok(l.to_string()),
            false => Err(format!("{}:{}: not a window identity", path.display(), i + 1)),
        })
        .collect()
}

impl WindowTracker {
    /// A tracker that remembers ended windows in `path`, starting from
    /// what it holds: how many it remembered, or why it could not be read
    /// (then every measure is held, `Hold::StateUnknown`, until a reload).
    pub fn remembering(path: PathBuf) -> (WindowTracker, Result<usize, String>) {
        let mut t = WindowTracker {
            ended_file: Some(path.clone()),
            ..WindowTracker::default()
        };
        match read_ended(&path) {
            Ok(ended) => {
                let n = ended.len();
                t.ended = ended;
                (t, Ok(n))
            }
            Err(e) => {
                t.unknown = Measure::ALL.into_iter().collect();
                (t, Err(e))
            }
        }
    }

    /// Appends a newly ended window to the file, fsynced.
    fn remember(&self, identity: &str) {
        let Some(path) = &self.ended_file else { return };
        let wrote = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .and_then(|mut f| {
                f.write_all(format!("{identity}\n").as_bytes())?;
                f.sync_data()
            });
        if let Err(e) = wrote {
            tracing::error!(
                path = %path.display(),
                error = %e,
                window = identity,
                "could not record an ended window: it stays closed in this run, but a restart with the clock set back could reopen it"
            );
        }
    }

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
                let id = identity(*m, w);
                if self.ended.insert(id.clone()) {
                    self.remember(&id);
                }
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
        } else if self.unknown.contains(&m) {
            Some(Hold::StateUnknown)
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
    /// approval opens them). Holds of an unreadable record are released
    /// once the record reads again (fixed or removed), its windows then
    /// remembered. Returns the measures released.
    pub fn reloaded(&mut self) -> Vec<Measure> {
        let mut released = std::mem::take(&mut self.stepped);
        if !self.unknown.is_empty() {
            let again = self.ended_file.as_deref().map_or(Ok(BTreeSet::new()), read_ended);
            match again {
                Ok(ended) => {
                    self.ended.extend(ended);
                    released.append(&mut self.unknown);
                }
                Err(e) => tracing::error!(
                    error = %e,
                    "the record of ended windows still cannot be read: every measure stays held (fix or remove the file, then reload)"
                ),
            }
        }
        released.into_iter().collect()
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
