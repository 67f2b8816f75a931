//! The `api` sink: a bounded, in-memory buffer of one recipient's views,
//! each numbered by a cursor, from which the HTTPS API serves
//! `GET /v1/records?after=CURSOR`. When full, the oldest view goes (the
//! reader sees the gap in the cursors). Views are de-identified and
//! grant-projected like for every other sink.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::project::View;
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
        Arc::new(Ring {
            inner: Mutex::new(Inner {
                next: 1,
                cap: cap.max(1),
                buf: VecDeque::new(),
            }),
        })
    }

    /// Stores a view; returns its cursor and whether the oldest view had
    /// to go to make room.
    pub fn push(&self, view: &View) -> (u64, bool) {
        let json = serde_json::to_string(view).unwrap_or_else(|_| "{}".into());
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let cursor = g.next;
        g.next += 1;
        // The view's JSON is an object with at least `key_epoch`.
        let line: Arc<str> = Arc::from(format!("{{\"cursor\":{cursor},{}", &json[1..]));
        let evicted = g.buf.len() == g.cap;
        if evicted {
            g.buf.pop_front();
        }
        g.buf.push_back((cursor, line));
        (cursor, evicted)
    }

    /// Up to `limit` lines after `cursor`.
    pub fn after(&self, cursor: u64, limit: usize) -> Vec<Arc<str>> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.buf
            .iter()
            .filter(|(c, _)| *c > cursor)
            .take(limit)
            .map(|(_, l)| l.clone())
            .collect()
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
        if self.ring.push(view).1 {
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
        let r = Ring::new(3);
        for i in 0..5u64 {
            let v = View {
                key_epoch: "e".into(),
                fields: vec![("packets_forward", Value::U64(i))],
            };
            let (_, evicted) = r.push(&v);
            assert_eq!(evicted, i >= 3);
        }
        let all = r.after(0, 10);
        assert_eq!(all.len(), 3, "the two oldest were dropped");
        assert_eq!(&*all[0], r#"{"cursor":3,"packets_forward":2,"key_epoch":"e"}"#);
        assert_eq!(r.after(4, 10).len(), 1);
        assert_eq!(r.after(0, 1).len(), 1);
    }
}
