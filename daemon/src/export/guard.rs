//! What keeps the HTTPS API serving its recipients while strangers and
//! slow clients try to wear it down: a cap on connections (in all and per
//! source address), a request rate per client (a token bucket per
//! recipient, one shared by every certificate of no recipient), whose
//! refusals are counted here and audited in batches, and an I/O wrapper
//! that notes when a connection last moved a byte (the idle timeout).

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::config::api::Limits;

/// Open connections, in all and per source address.
pub struct Connections {
    max: usize,
    per_address: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// Why a connection was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    All,
    Address,
}

impl Full {
    pub fn reason(self) -> &'static str {
        match self {
            Full::All => "max_connections",
            Full::Address => "max_per_address",
        }
    }
}

/// A connection's place; given back when dropped.
pub struct Slot {
    owner: Arc<Connections>,
    addr: IpAddr,
}

impl Connections {
    pub fn new(limits: &Limits) -> Arc<Connections> {
        Arc::new(Connections {
            max: limits.max_connections,
            per_address: limits.max_per_address,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A place for a connection from `addr`, unless a cap is reached.
    pub fn take(self: &Arc<Self>, addr: IpAddr) -> Result<Slot, Full> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.values().sum::<usize>() >= self.max {
            return Err(Full::All);
        }
        let n = open.entry(addr).or_default();
        if *n >= self.per_address {
            return Err(Full::Address);
        }
        *n += 1;
        Ok(Slot {
            owner: self.clone(),
            addr,
        })
    }

    pub fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).values().sum()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.owner.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.addr) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.addr);
            }
        }
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Requests refused for rate since the last audit entry, per client.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Refused {
    pub count: u64,
    pub first: Option<time::OffsetDateTime>,
    pub last: Option<time::OffsetDateTime>,
}

/// A token bucket per client name, and what it refused.
pub struct Rate {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
    refused: Mutex<HashMap<String, Refused>>,
}

impl Rate {
    pub fn new(limits: &Limits) -> Arc<Rate> {
        Arc::new(Rate {
            per_second: f64::from(limits.rate_per_second),
            burst: f64::from(limits.burst),
            buckets: Mutex::new(HashMap::new()),
            refused: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a token for `client` at `now`; false (and counted) if none
    /// is left.
    pub fn allow(&self, client: &str, now: Instant) -> bool {
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = b.entry(client.to_string()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return true;
        }
        drop(b);
        let t = time::OffsetDateTime::now_utc();
        let mut r = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        let e = r.entry(client.to_string()).or_default();
        e.count += 1;
        e.first.get_or_insert(t);
        e.last = Some(t);
        false
    }

    /// Seconds until `client` has a token again (for `Retry-After`).
    pub fn retry_after(&self) -> u64 {
        (1.0 / self.per_second).ceil().max(1.0) as u64
    }

    /// The refusals counted so far, taken out for an audit entry.
    pub fn take_refused(&self) -> Vec<(String, Refused)> {
        let mut r = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<_> = r.drain().collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Puts back refusals whose audit entry could not be written.
    pub fn restore(&self, client: String, back: Refused) {
        let mut r = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        let e = r.entry(client).or_default();
        e.count += back.count;
        e.first = match (e.first, back.first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        e.last = e.last.max(back.last);
    }
}

/// A stream that notes when it last moved a byte, in milliseconds since
/// `origin`.
pub struct Tracked<S> {
    inner: S,
    origin: Instant,
    last: Arc<AtomicU64>,
}

impl<S> Tracked<S> {
    pub fn new(inner: S) -> (Tracked<S>, Activity) {
        let origin = Instant::now();
        let last = Arc::new(AtomicU64::new(0));
        (
            Tracked {
                inner,
                origin,
                last: last.clone(),
            },
            Activity { origin, last },
        )
    }

    fn touch(&self) {
        self.last
            .store(self.origin.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

/// Reads how long a `Tracked` stream has been still.
pub struct Activity {
    origin: Instant,
    last: Arc<AtomicU64>,
}

impl Activity {
    pub fn idle(&self) -> Duration {
        let now = self.origin.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last.load(Ordering::Relaxed)))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize, per: usize, rate: u32, burst: u32) -> Limits {
        Limits {
            header_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            max_connections: max,
            max_per_address: per,
            rate_per_second: rate,
            burst,
        }
    }

    #[test]
    fn connections_are_capped_in_all_and_per_address_and_given_back() {
        let c = Connections::new(&limits(3, 2, 1, 1));
        let (a, b): (IpAddr, IpAddr) = ("127.0.0.2".parse().unwrap(), "127.0.0.1".parse().unwrap());
        let s1 = c.take(a).unwrap();
        let _s2 = c.take(a).unwrap();
        assert_eq!(c.take(a).err(), Some(Full::Address));
        let _s3 = c.take(b).unwrap();
        assert_eq!(c.take(b).err(), Some(Full::All));
        assert_eq!(c.open(), 3);
        drop(s1);
        assert_eq!(c.open(), 2);
        assert!(c.take(b).is_ok(), "a slot given back is free again");
    }

    #[test]
    fn the_rate_allows_a_burst_then_refills_and_counts_refusals_per_client() {
        let r = Rate::new(&limits(1, 1, 10, 5));
        let t0 = Instant::now();
        let allowed = (0..20).filter(|_| r.allow("unknown", t0)).count();
        assert_eq!(allowed, 5, "the burst");
        assert!(r.allow("analyst", t0), "each client has its own bucket");
        assert!(!r.allow("unknown", t0 + Duration::from_millis(50)));
        assert!(r.allow("unknown", t0 + Duration::from_millis(200)), "refilled at 10/s");
        let refused = r.take_refused();
        assert_eq!(refused.len(), 1);
        assert_eq!((refused[0].0.as_str(), refused[0].1.count), ("unknown", 16));
        assert!(r.take_refused().is_empty(), "taken out once");
        r.restore("unknown".into(), refused[0].1.clone());
        assert_eq!(r.take_refused()[0].1.count, 16, "put back when its entry failed");
    }
}
