//! How long a worker naps when its RX ring runs empty.
//!
//! Every wake-up costs CPU whatever it finds (tens of microseconds in a
//! VM: the sleep, the timer, the context switches), so a wake-up must pay
//! for many frames. A fixed nap is either too short at low rates (many
//! wake-ups for a few frames each) or too long at high ones (the ring
//! fills). The nap adapts instead: from the frames that arrived since the
//! ring last ran empty and the time that took, it picks the nap after
//! which the ring holds about an eighth of its size — room for the rate to
//! rise eightfold during one nap, or for the worker to be held up for
//! seven naps' time (a busy host, a VM's stolen time), before anything is
//! lost. (A quarter was tried: it lost frames at 1.3 Mpps when the VM
//! stalled the worker.) It grows at most twofold per step, shrinks at
//! once, starts again from `MIN_NAP` after the ring has been idle (so a
//! burst after a quiet spell meets a short nap), and stays between
//! `MIN_NAP` and the configured longest nap (`idle_nap_us`), which is also
//! the longest a frame waits on the ring before it is read and erased. The
//! RX ring must hold the peak rate for that long: `rx_ring_size` ≥ peak
//! packets/s × `idle_nap_us`.

use std::time::Duration;

/// The shortest nap: below this a timer costs more than it saves.
pub const MIN_NAP: Duration = Duration::from_micros(50);

#[derive(Debug, Clone)]
pub struct Nap {
    max: Duration,
    /// Frames the ring should hold when a nap ends.
    target: u64,
    /// Frames at which the ring is getting dangerously full.
    high: u64,
    cur: Duration,
}

impl Nap {
    /// `max` is the configured longest nap (zero: never nap, block in
    /// `poll()` at once); `rx_ring` the RX ring's size in frames.
    pub fn new(max: Duration, rx_ring: u32) -> Nap {
        let ring = u64::from(rx_ring);
        Nap {
            max,
            target: (ring / 8).max(1),
            high: (ring * 3 / 4).max(1),
            cur: MIN_NAP.min(max),
        }
    }

    /// The nap the next wake-up will use.
    pub fn current(&self) -> Duration {
        self.cur
    }

    /// Called when the ring has just run empty: `frames` arrived and were
    /// taken in the `elapsed` since it last ran empty. Returns how long to
    /// nap now, or `None` to block in `poll()` until frames arrive (no
    /// frames came, or napping is off).
    pub fn next(&mut self, frames: u64, elapsed: Duration) -> Option<Duration> {
        if self.max.is_zero() || frames == 0 {
            // Idle: block, and start the next burst from the shortest nap.
            self.cur = MIN_NAP.min(self.max);
            return None;
        }
        let next = if frames >= self.high {
            // Close to overflowing: halve now, whatever the estimate says.
            self.cur / 2
        } else {
            // Nap long enough for `target` frames at the rate just seen.
            let ideal = elapsed.as_nanos().saturating_mul(u128::from(self.target)) / u128::from(frames);
            let ideal = Duration::from_nanos(u64::try_from(ideal).unwrap_or(u64::MAX));
            ideal.min(self.cur * 2)
        };
        self.cur = next.clamp(MIN_NAP.min(self.max), self.max);
        Some(self.cur)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn zero_max_never_naps() {
        let mut n = Nap::new(Duration::ZERO, 8192);
        assert_eq!(n.next(1000, MS), None);
        assert_eq!(n.current(), Duration::ZERO);
    }

    #[test]
    fn no_frames_means_poll() {
        let mut n = Nap::new(8 * MS, 8192);
        assert_eq!(n.next(0, MS), None);
        assert_eq!(n.current(), MIN_NAP);
    }

    #[test]
    fn a_burst_after_idle_starts_from_the_shortest_nap() {
        let mut n = Nap::new(8 * MS, 8192);
        for _ in 0..10 {
            n.next(100, MS);
        }
        assert_eq!(n.current(), 8 * MS);
        assert_eq!(n.next(0, 100 * MS), None);
        // The first frames after the quiet spell: 2 in 100 ms looks slow,
        // but the nap only doubles from the minimum.
        assert_eq!(n.next(2, 100 * MS), Some(2 * MIN_NAP));
    }

    #[test]
    fn grows_at_most_twofold_per_step_up_to_max() {
        // 100 frames per ms: an eighth of the ring (1024) takes 10.24 ms.
        let mut n = Nap::new(8 * MS, 8192);
        let mut seen = vec![];
        for _ in 0..10 {
            let d = n.next(100, MS).unwrap();
            seen.push(d.as_micros());
        }
        assert_eq!(seen, [100, 200, 400, 800, 1600, 3200, 6400, 8000, 8000, 8000]);
    }

    #[test]
    fn settles_where_a_nap_fills_an_eighth_of_the_ring() {
        // 1 frame per µs (1 Mpps): 1024 frames take 1.024 ms.
        let mut n = Nap::new(8 * MS, 8192);
        let mut d = n.current();
        for _ in 0..20 {
            let frames = d.as_micros() as u64; // what a nap of d collects
            d = n.next(frames, d).unwrap();
        }
        assert_eq!(d, Duration::from_micros(1024));
    }

    #[test]
    fn shrinks_at_once_when_the_rate_rises() {
        let mut n = Nap::new(8 * MS, 8192);
        for _ in 0..10 {
            n.next(100, MS);
        }
        assert_eq!(n.current(), 8 * MS);
        // The rate jumps to 4096 frames per 8 ms: half a ring per nap.
        assert_eq!(n.next(4096, 8 * MS), Some(2 * MS));
        // Three quarters of the ring or more: halve at least.
        assert_eq!(n.next(7000, 2 * MS), Some(MS));
        assert_eq!(n.next(8192, Duration::from_micros(100)), Some(MS / 2));
    }

    #[test]
    fn never_below_the_minimum() {
        let mut n = Nap::new(8 * MS, 64);
        assert_eq!(n.next(60, MS), Some(MIN_NAP));
        assert_eq!(n.next(1, Duration::from_nanos(1)), Some(MIN_NAP));
        // A longest nap below MIN_NAP wins.
        let mut n = Nap::new(Duration::from_micros(20), 8192);
        assert_eq!(n.next(1, MS), Some(Duration::from_micros(20)));
    }
}
