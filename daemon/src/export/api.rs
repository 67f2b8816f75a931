//! The `api` sink: a bounded, in-memory buffer of one recipient's views,
//! each numbered by a cursor, from which the HTTPS API serves
//! `GET /v1/records?after=CURSOR`. When full, the oldest view goes (the
//! reader sees the gap in the cursors). Views are de-identified and
//! grant-projected like for every other sink.
//!
//! Cursors survive a restart without being stored: a run's first cursor
//! is the wall-clock time it started, in microseconds, so every cursor of
//! a later run is above every cursor of an earlier one (unless the earlier
//! run handed out more than a million views per second on average). A
//! client that polls with its last cursor therefore misses nothing after a
//! restart but what the buffer lost; a cursor at or beyond the newest one
//! (the clock went back) is answered from the oldest view, flagged.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::project::{View, WithCursor};
use super::Sink;

#[derive(Debug)]
pub struct Ring {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    next: u64,
    cap: usize,
    /// (cursor, JSON line with the cursor first)
    buf: VecDeque<(u64, Arc<str>)>,
}

impl Ring {
    pub fn new(cap: usize) -> Arc<Ring> {
        let start = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000;
        Ring::starting_at(cap, u64::try_from(start).unwrap_or(1).max(1))
    }

    pub fn starting_at(cap: usize, first: u64) -> Arc<Ring> {
        Arc::new(Ring {
            inner: Mutex::new(Inner {
                next: first,
                cap: cap.max(1),
                buf: VecDeque::new(),
            }),
        })
    }

    /// Stores a view; returns its cursor and whether the oldest view had
    /// to go to make room.
    pub fn push(&self, view: &View) -> Result<(u64, bool), serde_json::Error> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let cursor = g.next;
        let line: Arc<str> = Arc::from(serde_json::to_string(&WithCursor(cursor, view))?);
        g.next += 1;
        let evicted = g.buf.len() == g.cap;
        if evicted {
            g.buf.pop_front();
        }
        g.buf.push_back((cursor, line));
        Ok((cursor, evicted))
    }

    /// Up to `limit` lines after `cursor`, and whether the cursor was at
    /// or beyond the newest one handed out (then the lines start at the
    /// oldest view held).
    pub fn after(&self, cursor: u64, limit: usize) -> (Vec<Arc<str>>, bool) {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let reset = cursor >= g.next;
        let from = if reset { 0 } else { cursor };
        let lines = g
            .buf
            .iter()
            .filter(|(c, _)| *c > from)
            .take(limit)
            .map(|(_, l)| l.clone())
            .collect();
        (lines, reset)
    }

    /// The oldest cursor still held, if any.
    pub fn oldest(&self) -> Option<u64> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.buf.front().map(|(c, _)| *c)
    }
}

pub struct ApiSink {
    pub ring: Arc<Ring>,
    /// Counts views pushed out of a full buffer before anyone read them.
    pub evicted: Option<prometheus::IntCounter>,
}

impl Sink for ApiSink {
    fn kind(&self) -> &'static str {
        "api"
    }

    fn takes_rows(&self) -> bool {
        true
    }

    fn send(&mut self, _grant: usize, view: &View) -> std::io::Result<()> {
        if self.ring.push(view).map_err(std::io::Error::other)?.1 {
            if let Some(c) = &self.evicted {
                c.inc();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::project::Value;

    #[test]
    fn cursors_paging_and_the_bound() {
        let r = Ring::starting_at(3, 1);
        for i in 0..5u64 {
            let v = View {
                key_epoch: "e".into(),
                fields: vec![("packets_forward", Value::U64(i))],
                ..Default::default()
            };
            let (_, evicted) = r.push(&v).unwrap();
            assert_eq!(evicted, i >= 3);
        }
        let (all, reset) = r.after(0, 10);
        assert!(!reset);
        assert_eq!(all.len(), 3, "the two oldest were dropped");
        assert_eq!(&*all[0], r#"{"cursor":3,"packets_forward":2,"key_epoch":"e"}"#);
        assert_eq!(r.oldest(), Some(3));
        assert_eq!(r.after(4, 10).0.len(), 1);
        assert_eq!(r.after(0, 1).0.len(), 1);
        let (lines, reset) = r.after(5, 10);
        assert!(!reset && lines.is_empty(), "the newest cursor: nothing new yet");
        let (lines, reset) = r.after(6, 10);
        assert!(
            reset && lines.len() == 3,
            "a cursor beyond the newest starts over, flagged"
        );
    }

    #[test]
    fn a_row_without_fields_is_still_one_valid_json_object() {
        let r = Ring::starting_at(2, 7);
        r.push(&View {
            key_epoch: String::new(),
            fields: vec![],
            ..Default::default()
        })
        .unwrap();
        let line = r.after(0, 1).0[0].clone();
        assert_eq!(&*line, r#"{"cursor":7}"#);
        serde_json::from_str::<serde_json::Value>(&line).unwrap();
    }

    #[test]
    fn a_later_run_starts_above_every_cursor_of_an_earlier_one() {
        let a = Ring::new(10);
        let v = View {
            key_epoch: "e".into(),
            fields: vec![],
            ..Default::default()
        };
        let first = a.push(&v).unwrap().0;
        assert!(first > 1_600_000_000_000_000, "microseconds since 1970: {first}");
        assert!(first < 1u64 << 53, "exact in every JSON reader: {first}");
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = Ring::new(10);
        assert!(b.push(&v).unwrap().0 > first);
    }
}
