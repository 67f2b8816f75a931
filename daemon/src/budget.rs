//! Stage 5's memory (reassembly): one byte budget per worker for every buffer that
//! holds payload across packets (the first segment of a split TCP
//! ClientHello, QUIC CRYPTO data). A buffer takes its bytes from the
//! budget when it is allocated or grows and gives them back when dropped;
//! a buffer that would overrun the budget is refused and counted, and its
//! flow goes on without a fingerprint. Every buffer zeroes itself when
//! dropped or moved.
//!
//! Invariant kept: the bytes held by a worker's reassembly buffers never
//! exceed its budget, whatever the traffic claims.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::erase::erase;

struct Inner {
    limit: usize,
    used: AtomicUsize,
    peak: AtomicUsize,
    refused: AtomicU64,
    timed_out: AtomicU64,
}

/// A worker's reassembly budget (cheap to clone: the clones share it).
#[derive(Clone)]
pub struct Budget(Arc<Inner>);

impl std::fmt::Debug for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budget")
            .field("limit", &self.0.limit)
            .field("used", &self.used())
            .field("refused", &self.refused())
            .finish()
    }
}

impl Default for Budget {
    fn default() -> Self {
        Budget::unlimited()
    }
}

impl Budget {
    pub fn new(limit: usize) -> Budget {
        Budget(Arc::new(Inner {
            limit,
            used: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            refused: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
        }))
    }

    /// No limit (tools and tests that parse one message at a time).
    pub fn unlimited() -> Budget {
        Budget::new(usize::MAX)
    }

    pub fn limit(&self) -> usize {
        self.0.limit
    }

    /// Bytes held by live buffers.
    pub fn used(&self) -> usize {
        self.0.used.load(Ordering::Relaxed)
    }

    /// The most bytes ever held at once.
    pub fn peak(&self) -> usize {
        self.0.peak.load(Ordering::Relaxed)
    }

    /// Buffers refused (or not grown) because the budget was spent.
    pub fn refused(&self) -> u64 {
        self.0.refused.load(Ordering::Relaxed)
    }

    /// Reassemblies given up because they did not complete in time.
    pub fn timed_out(&self) -> u64 {
        self.0.timed_out.load(Ordering::Relaxed)
    }

    pub fn count_timed_out(&self, n: u64) {
        self.0.timed_out.fetch_add(n, Ordering::Relaxed);
    }

    fn take(&self, bytes: usize) -> bool {
        let got = self.0.used.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
            u.checked_add(bytes).filter(|n| *n <= self.0.limit)
        });
        match got {
            Ok(before) => {
                self.0.peak.fetch_max(before + bytes, Ordering::Relaxed);
                true
            }
            Err(_) => false,
        }
    }

    fn refuse(&self) {
        self.0.refused.fetch_add(1, Ordering::Relaxed);
    }

    fn give(&self, bytes: usize) {
        self.0.used.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// An empty buffer with room for `capacity` bytes, or `None` (counted)
    /// if the budget cannot hold it.
    pub fn buf(&self, capacity: usize) -> Option<Buf> {
        if !self.take(capacity) {
            self.refuse();
            return None;
        }
        let data = Vec::with_capacity(capacity);
        // Vec may round up; the budget is charged what it holds.
        let extra = data.capacity() - capacity;
        if extra > 0 && !self.take(extra) {
            self.give(capacity);
            self.refuse();
            return None;
        }
        Some(Buf {
            data,
            budget: self.clone(),
        })
    }
}

/// A payload buffer charged to a budget: zeroed and given back when dropped.
pub struct Buf {
    data: Vec<u8>,
    budget: Budget,
}

impl Drop for Buf {
    fn drop(&mut self) {
        erase(&mut self.data);
        self.budget.give(self.data.capacity());
    }
}

impl std::ops::Deref for Buf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.data
    }
}

impl std::ops::DerefMut for Buf {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }
}

impl Buf {
    /// Resizes to `len` (new bytes zero). Growing past the capacity takes
    /// the difference from the budget and moves the bytes, zeroing the old
    /// allocation; if the budget cannot hold it, nothing changes and the
    /// refusal is counted: returns false.
    pub fn resize(&mut self, len: usize) -> bool {
        let old = self.data.capacity();
        if len > old {
            // Doubling is a preference; what is needed is `len`.
            let want = len.max(old.saturating_mul(2)).max(256);
            let cap = if self.budget.take(want - old) {
                want
            } else if want > len && self.budget.take(len - old) {
                len
            } else {
                self.budget.refuse();
                return false;
            };
            let mut grown = Vec::with_capacity(cap);
            let extra = grown.capacity() - cap;
            if extra > 0 && !self.budget.take(extra) {
                self.budget.give(cap - old);
                self.budget.refuse();
                return false;
            }
            // Charged now: the old capacity plus the growth, which is the
            // new capacity; the old allocation is zeroed and freed.
            grown.extend_from_slice(&self.data);
            erase(&mut self.data);
            self.data = grown;
        }
        self.data.resize(len.max(self.data.len()), 0);
        true
    }

    /// Appends `bytes`, growing as `resize` does; false if refused.
    pub fn extend(&mut self, bytes: &[u8]) -> bool {
        let at = self.data.len();
        if !self.resize(at + bytes.len()) {
            return false;
        }
        self.data[at..].copy_from_slice(bytes);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_charged_their_capacity_and_give_it_back() {
        let b = Budget::new(1000);
        let x = b.buf(600).unwrap();
        assert_eq!(b.used(), 600);
        assert!(b.buf(500).is_none(), "over the budget");
        assert_eq!(b.refused(), 1);
        let y = b.buf(400).unwrap();
        assert_eq!(b.used(), 1000);
        drop(x);
        assert_eq!(b.used(), 400);
        drop(y);
        assert_eq!((b.used(), b.peak(), b.refused()), (0, 1000, 1));
    }

    #[test]
    fn growing_takes_the_difference_or_is_refused_without_change() {
        let b = Budget::new(1000);
        let mut x = b.buf(100).unwrap();
        assert!(x.extend(&[7; 100]));
        // Doubling (to 256) fits.
        assert!(x.extend(&[8; 50]));
        assert_eq!((x.len(), b.used()), (150, 256));
        // Doubling would need 512 more than the rest: exactly what is
        // needed is taken instead.
        let _y = b.buf(300).unwrap();
        assert!(x.resize(600));
        assert_eq!(b.used(), 900);
        assert_eq!(b.refused(), 0);
        // Past the budget: refused, the bytes stay as they were.
        assert!(!x.extend(&[9; 200]));
        assert_eq!(b.refused(), 1);
        assert_eq!(x.len(), 600);
        assert_eq!(&x[..2], &[7, 7]);
        assert_eq!(&x[100..102], &[8, 8]);
        drop(x);
        assert_eq!(b.used(), 300);
    }
}
