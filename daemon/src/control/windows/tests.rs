use super::*;
use crate::classify::Class;
use std::path::Path;
use time::format_description::well_known::Rfc3339;

fn t(s: &str) -> OffsetDateTime {
    OffsetDateTime::parse(s, &Rfc3339).unwrap()
}

/// A config with one inbound window, `approval` (if any) and `not_after`.
fn config(approval: Option<&str>, not_after: &str) -> Config {
    let approval = approval.map_or(String::new(), |a| format!("approval = \"{a}\"\n"));
    Config::parse(
        Path::new("t.toml"),
        &format!(
            "[capture]\ninterface = \"x\"\n[domestic]\nprefixes = [\"192.0.2.0/24\"]\n[measures.inbound]\nenabled = true\n{approval}not_before = \"2026-01-01T00:00:00Z\"\nnot_after = \"{not_after}\"\n[records]\npath = \"r\"\n"
        ),
    )
    .unwrap()
}

/// A clock the test moves: wall and monotonic time advance together
/// unless the test steps the wall clock.
struct Clock {
    now: Now,
}

impl Clock {
    fn at(wall: &str) -> Clock {
        Clock {
            now: Now {
                wall: t(wall),
                mono: Instant::now(),
            },
        }
    }
    /// Both clocks advance by `secs`.
    fn pass(&mut self, secs: i64) -> Now {
        self.now.wall += time::Duration::seconds(secs);
        self.now.mono += Duration::from_secs(secs as u64);
        self.now
    }
    /// The wall clock is set by `secs` (negative: back); monotonic time
    /// moves on by one tick.
    fn step(&mut self, secs: i64) -> Now {
        self.now.wall += time::Duration::seconds(secs) + time::Duration::milliseconds(200);
        self.now.mono += Duration::from_millis(200);
        self.now
    }
}

/// One tick as `apply_windows` runs it, with a class map that always
/// takes the write: returns what changed.
fn tick(w: &mut WindowTracker, cfg: &Config, now: Now) -> (Option<ClockStep>, Vec<(Measure, bool)>) {
    let step = w.observe(now);
    let want = w.desired(cfg, now.wall);
    let changed = w.pending(&want);
    w.written(want);
    (step, changed)
}

#[test]
fn window_opens_and_closes() {
    let cfg = config(Some("A-1"), "2026-01-02T00:00:00Z");
    let mut w = WindowTracker::default();
    let mut c = Clock::at("2025-12-31T23:59:59Z");
    let (_, first) = tick(&mut w, &cfg, c.now);
    assert_eq!(first.len(), 3, "the first write sets every measure");
    assert!(!classes(&w.desired(&cfg, c.now.wall))[Class::Inbound as usize]);
    assert_eq!(tick(&mut w, &cfg, c.pass(1)).1, vec![(Measure::Inbound, true)]);
    assert!(classes(&w.desired(&cfg, c.now.wall))[Class::Inbound as usize]);
    assert!(tick(&mut w, &cfg, c.pass(3600)).1.is_empty());
    c.now.wall = t("2026-01-01T23:59:59Z");
    c.now.mono += Duration::from_secs(86_400 - 3601);
    assert!(tick(&mut w, &cfg, c.now).1.is_empty());
    assert_eq!(
        tick(&mut w, &cfg, c.pass(1)).1,
        vec![(Measure::Inbound, false)],
        "not_after is exclusive"
    );
}

#[test]
fn a_failed_write_stays_pending_until_a_write_succeeds() {
    let cfg = config(None, "2026-01-02T00:00:00Z");
    let mut w = WindowTracker::default();
    let mut c = Clock::at("2026-01-01T23:59:59Z");
    tick(&mut w, &cfg, c.now);
    // The window closes; the write fails twice: still pending each time.
    let closing = c.pass(2);
    let want = w.desired(&cfg, closing.wall);
    let t0 = Instant::now();
    assert_eq!(w.pending(&want), vec![(Measure::Inbound, false)]);
    assert_eq!(w.failed(t0), Duration::ZERO);
    assert_eq!(w.failed(t0 + Duration::from_secs(3)), Duration::from_secs(3));
    assert_eq!(w.pending(&want), vec![(Measure::Inbound, false)]);
    // Written: nothing pending, the failure streak is over.
    w.written(want.clone());
    assert!(w.pending(&want).is_empty());
    assert!(w.failing_since.is_none());
}

#[test]
fn an_ended_window_stays_closed_when_the_clock_is_set_back() {
    let cfg = config(Some("A-1"), "2026-01-02T00:00:00Z");
    let mut w = WindowTracker::default();
    let mut c = Clock::at("2026-01-01T23:59:58Z");
    tick(&mut w, &cfg, c.now);
    assert_eq!(tick(&mut w, &cfg, c.pass(2)).1, vec![(Measure::Inbound, false)]);
    // Set back an hour: the window would be open again by the clock.
    let (step, changed) = tick(&mut w, &cfg, c.step(-3600));
    let step = step.expect("a step of an hour is seen");
    assert!((step.secs + 3600.0).abs() < 0.01, "{step:?}");
    assert!(changed.is_empty(), "the ended window reopened: {changed:?}");
    assert!(cfg.authorized_at(c.now.wall)[&Measure::Inbound]);
    assert_eq!(w.held(&cfg, c.now.wall), vec![(Measure::Inbound, Hold::Ended)]);
    // A reload releases clock-step holds, not an ended approval.
    w.reloaded();
    assert!(tick(&mut w, &cfg, c.pass(1)).1.is_empty());
    assert_eq!(w.held(&cfg, c.now.wall), vec![(Measure::Inbound, Hold::Ended)]);
}

#[test]
fn only_a_new_approval_reopens_an_ended_window() {
    let cfg = config(Some("A-1"), "2026-01-02T00:00:00Z");
    let mut w = WindowTracker::default();
    let mut c = Clock::at("2026-01-01T23:59:59Z");
    tick(&mut w, &cfg, c.now);
    tick(&mut w, &cfg, c.pass(1));
    // The same approval with a later end: still closed.
    let extended = config(Some("A-1"), "2026-02-01T00:00:00Z");
    w.reloaded();
    assert!(tick(&mut w, &cfg, c.pass(1)).1.is_empty());
    assert!(tick(&mut w, &extended, c.pass(1)).1.is_empty());
    assert_eq!(w.held(&extended, c.now.wall), vec![(Measure::Inbound, Hold::Ended)]);
    // A new approval: open.
    let renewed = config(Some("A-2"), "2026-02-01T00:00:00Z");
    assert_eq!(tick(&mut w, &renewed, c.pass(1)).1, vec![(Measure::Inbound, true)]);
    assert!(w.held(&renewed, c.now.wall).is_empty());
    // Without an approval reference, the bounds are the identity.
    let mut w = WindowTracker::default();
    let bare = config(None, "2026-01-02T00:00:00Z");
    let mut c = Clock::at("2026-01-02T00:00:00Z");
    tick(&mut w, &bare, c.now);
    let later = config(None, "2026-02-01T00:00:00Z");
    assert_eq!(tick(&mut w, &later, c.pass(1)).1, vec![(Measure::Inbound, true)]);
}

#[test]
fn a_clock_step_holds_closed_windows_until_a_reload() {
    let cfg = config(Some("A-1"), "2026-02-01T00:00:00Z");
    let mut w = WindowTracker::default();
    let mut c = Clock::at("2025-12-31T23:00:00Z");
    tick(&mut w, &cfg, c.now);
    // Slew-sized drift is no step.
    c.now.wall += time::Duration::milliseconds(1500);
    assert_eq!(tick(&mut w, &cfg, c.now).0, None);
    // Set forward two hours, past not_before: the window stays closed.
    let (step, changed) = tick(&mut w, &cfg, c.step(7200));
    let step = step.expect("a forward step is seen");
    assert!((step.secs - 7200.0).abs() < 0.01, "{step:?}");
    assert_eq!(step.held, Measure::ALL.to_vec(), "nothing was open, everything is held");
    assert!(changed.is_empty(), "a window opened across a clock step: {changed:?}");
    assert_eq!(w.held(&cfg, c.now.wall), vec![(Measure::Inbound, Hold::ClockStep)]);
    // The next tick without a step still holds; a reload releases it.
    assert!(tick(&mut w, &cfg, c.pass(1)).1.is_empty());
    assert_eq!(w.reloaded(), Measure::ALL.to_vec());
    assert_eq!(tick(&mut w, &cfg, c.pass(1)).1, vec![(Measure::Inbound, true)]);
}

#[test]
fn an_open_window_is_not_held_by_a_step_it_survives() {
    let cfg = config(Some("A-1"), "2026-02-01T00:00:00Z");
    let mut w = WindowTracker::default();
    let mut c = Clock::at("2026-01-01T00:05:00Z");
    tick(&mut w, &cfg, c.now);
    let (step, changed) = tick(&mut w, &cfg, c.step(-60));
    assert_eq!(step.unwrap().held, vec![Measure::Transit, Measure::Outbound]);
    assert!(changed.is_empty());
    assert!(w.held(&cfg, c.now.wall).is_empty());
    // Set back before not_before: closed by the clock, and open again
    // when the clock gets there, since it was open when the step happened.
    let (_, changed) = tick(&mut w, &cfg, c.step(-600));
    assert_eq!(changed, vec![(Measure::Inbound, false)]);
    assert!(tick(&mut w, &cfg, c.pass(300)).1.is_empty());
    assert_eq!(tick(&mut w, &cfg, c.pass(60)).1, vec![(Measure::Inbound, true)]);
}

/// Ended windows outlive a restart: the next tracker on the same file
/// holds the window closed although the clock (set back) calls it open.
#[test]
fn an_ended_window_stays_closed_after_a_restart_with_the_clock_set_back() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(ENDED_FILE);
    let cfg = config(Some("A-1"), "2026-01-02T00:00:00Z");
    let (mut w, remembered) = WindowTracker::remembering(file.clone());
    assert_eq!(remembered, Ok(0));
    let mut c = Clock::at("2026-01-01T23:59:59Z");
    assert!(tick(&mut w, &cfg, c.now).1.contains(&(Measure::Inbound, true)));
    tick(&mut w, &cfg, c.pass(1));
    tick(&mut w, &cfg, c.pass(1));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "inbound/approval:A-1\n",
        "written once"
    );
    drop(w);
    // The restart, an hour earlier by the clock.
    let (mut w, remembered) = WindowTracker::remembering(file.clone());
    assert_eq!(remembered, Ok(1));
    let c = Clock::at("2026-01-01T23:00:00Z");
    assert!(cfg.authorized_at(c.now.wall)[&Measure::Inbound]);
    assert!(tick(&mut w, &cfg, c.now).1.contains(&(Measure::Inbound, false)));
    assert_eq!(w.held(&cfg, c.now.wall), vec![(Measure::Inbound, Hold::Ended)]);
    // A new approval still opens it.
    let renewed = config(Some("A-2"), "2026-02-01T00:00:00Z");
    assert_eq!(tick(&mut w, &renewed, c.now).1, vec![(Measure::Inbound, true)]);
}

/// A record that cannot be read puts every window in doubt: all held
/// closed until an accepted reload.
#[test]
fn an_unreadable_record_of_ended_windows_holds_every_measure_until_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(ENDED_FILE);
    std::fs::write(&file, "inbound/approval:A-1\ninbou").unwrap();
    let cfg = config(Some("A-2"), "2026-02-01T00:00:00Z");
    let (mut w, remembered) = WindowTracker::remembering(file.clone());
    let e = remembered.unwrap_err();
    assert!(
        e.ends_with(&format!("{}:2: not a window identity", file.display())),
        "{e}"
    );
    let c = Clock::at("2026-01-10T00:00:00Z");
    assert!(tick(&mut w, &cfg, c.now).1.contains(&(Measure::Inbound, false)));
    assert_eq!(w.held(&cfg, c.now.wall), vec![(Measure::Inbound, Hold::StateUnknown)]);
    // A reload while it is still unreadable releases nothing.
    assert!(w.reloaded().is_empty());
    assert!(tick(&mut w, &cfg, c.now).1.is_empty());
    // The operator fixes it (the torn line cut off): the reload releases
    // the holds, and the window it names stays ended.
    std::fs::write(&file, "inbound/approval:A-2\n").unwrap();
    assert_eq!(w.reloaded(), Measure::ALL.to_vec());
    assert!(tick(&mut w, &cfg, c.now).1.is_empty());
    assert_eq!(w.held(&cfg, c.now.wall), vec![(Measure::Inbound, Hold::Ended)]);
    std::fs::remove_file(&file).unwrap();
    let (mut w, remembered) = WindowTracker::remembering(file.clone());
    assert_eq!(remembered, Ok(0), "removed: nothing remembered");
    assert!(tick(&mut w, &cfg, c.now).1.contains(&(Measure::Inbound, true)));
    // A directory in its place cannot be read either.
    let (_, remembered) = WindowTracker::remembering(dir.path().to_path_buf());
    assert!(remembered.is_err());
}
