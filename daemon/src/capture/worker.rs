//! The AF_XDP worker of one RX queue.

use std::ffi::CString;
use std::io;
use std::num::NonZeroU32;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::classify::meta::{XdpMeta, META_LEN};
use xsk_rs::config::{BindFlags, FrameSize, Interface, LibxdpFlags, QueueSize, SocketConfig, UmemConfig};
use xsk_rs::{FillQueue, FrameDesc, RxQueue, Socket, TxQueue, Umem};

use super::nap::Nap;
use crate::config::{BindMode, Capture};
use crate::pipeline::{now_ns, Batch, Pipeline};
use crate::sink::RecordTx;
use crate::sys;
use crate::telemetry::queue::QueuePublisher;
use crate::telemetry::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("the UMEM of queue {queue} needs {need} bytes of locked memory but the memlock limit is {have} bytes; run as root, grant CAP_IPC_LOCK, or raise the limit (LimitMEMLOCK= in the unit, `ulimit -l`) — or lower frame_count/frame_size")]
    Memlock { queue: u32, need: u64, have: u64 },
    #[error("the UMEM of queue {queue} needs {need_pages} free 2 MiB huge pages ({reason}); reserve them (`sysctl vm.nr_hugepages=N`, N covering every queue) or set `huge_pages = false`")]
    HugePages {
        queue: u32,
        need_pages: u64,
        reason: String,
    },
    #[error("creating the UMEM for queue {queue} failed: {reason}")]
    Umem { queue: u32, reason: String },
    #[error("binding an AF_XDP socket to {interface} queue {queue} failed ({reason}); check that the queue exists (`ethtool -l {interface}`)")]
    Socket {
        interface: String,
        queue: u32,
        reason: String,
    },
    #[error(
        "zero-copy AF_XDP is not supported on {interface} ({reason}); set `bind = \"auto\"` or `\"copy\"` in [capture]"
    )]
    ZeroCopyUnsupported { interface: String, reason: String },
    #[error("locking the UMEM of queue {queue} into memory failed; grant CAP_IPC_LOCK or raise the memlock limit")]
    Lock {
        queue: u32,
        #[source]
        source: io::Error,
    },
}

/// What a worker did, for the shutdown log.
#[derive(Debug, Default, Clone, Copy)]
pub struct WorkerReport {
    pub queue: u32,
    pub frames: u64,
    pub zero_copy: bool,
    /// The per-frame path panicked: the frames of that batch still in hand
    /// (this many) were zeroed by the guard, and from then on every frame
    /// was zeroed unprocessed until capture stopped.
    pub panicked: Option<u64>,
}

/// What a worker tells the supervisor while it runs.
#[derive(Debug, Default)]
pub struct WorkerSignals {
    /// The generation of the selection state the worker runs.
    pub adopted: AtomicU64,
    /// The per-frame path panicked; capture must stop.
    pub failed: AtomicBool,
}

pub struct QueueWorker {
    queue: u32,
    batch_size: usize,
    umem: Umem,
    umem_base: *mut u8,
    umem_len: usize,
    frame_size: usize,
    fq: FillQueue,
    rx: RxQueue,
    _tx: TxQueue,
    /// Frames we own that are not on the fill ring (all zeroed, and the
    /// metadata bytes before them too).
    free: Vec<FrameDesc>,
    batch: Vec<FrameDesc>,
    /// How long to nap when the RX ring runs empty (adaptive, at most
    /// `idle_nap_us`).
    nap: Nap,
    pub zero_copy: bool,
    /// The socket busy-polls (`busy_poll_us` set, and the kernel took it).
    busy_poll: bool,
}

// SAFETY: the raw UMEM pointer is only used by the thread that owns the
// worker; the worker moves to that thread once, before it runs.
unsafe impl Send for QueueWorker {}

/// How long a busy-polling worker keeps polling after its last frame.
const BUSY_POLL_IDLE: Duration = Duration::from_millis(10);

/// Frames whose first line is requested ahead of the one being processed.
const PREFETCH_AHEAD: usize = 8;

/// The first `n` frames of a worker's batch, as the pipeline sees them.
struct UmemBatch<'w> {
    w: &'w mut QueueWorker,
    n: usize,
}

impl Batch for UmemBatch<'_> {
    fn frames(&self) -> usize {
        self.n
    }

    /// The frames were just written by the core that ran the XDP copy:
    /// their first cache line is the main per-packet stall, and we both
    /// read and zero it. Keep PREFETCH_AHEAD frames in flight, for
    /// writing, ahead of the one in hand.
    #[inline]
    fn before(&self, i: usize) {
        let base = self.w.umem_base;
        if i == 0 {
            for desc in &self.w.batch[..self.n.min(PREFETCH_AHEAD)] {
                prefetch_for_write(base.wrapping_add(desc.addr()));
            }
        }
        if let Some(ahead) = self.w.batch[..self.n].get(i + PREFETCH_AHEAD) {
            prefetch_for_write(base.wrapping_add(ahead.addr()));
        }
    }

    #[inline]
    fn with_frame<F: FnOnce(&mut [u8], Option<XdpMeta>)>(&mut self, i: usize, f: F) {
        let meta = self.w.take_meta(self.w.batch[i].addr());
        // SAFETY: the kernel handed this frame to us through the RX ring;
        // until it is produced to the fill ring nobody else touches it.
        let mut data = unsafe { self.w.umem.data_mut(&mut self.w.batch[i]) };
        f(data.contents_mut(), meta);
    }

    fn zero(&mut self, i: usize) -> u64 {
        self.w.zero_frame(i)
    }
}

/// Hints the CPU to fetch the cache line at `p` ready to be written
/// (PREFETCHW), so reading and then zeroing it costs one transfer, not two.
/// A hint never faults, whatever the address.
#[inline(always)]
fn prefetch_for_write(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHW is a hint; it cannot fault or change memory.
    unsafe {
        core::arch::asm!("prefetchw [{0}]", in(reg) p, options(nostack, preserves_flags, readonly));
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

fn is_memlock_error(e: &str) -> bool {
    e.contains("No buffer space") || e.contains("Operation not permitted") || e.contains("Cannot allocate memory")
}

/// The AF_XDP bind attempts for a bind mode, in order (flags, zero-copy).
/// `auto` is copy mode: zero-copy is only ever tried when configured (and
/// acknowledged, see `[capture] zero_copy_exposes_dropped_frames`).
fn bind_attempts(mode: BindMode) -> &'static [(BindFlags, bool)] {
    match mode {
        BindMode::ZeroCopy => &[(BindFlags::XDP_ZEROCOPY, true)],
        BindMode::Auto | BindMode::Copy => &[(BindFlags::XDP_COPY, false)],
    }
}

impl QueueWorker {
    pub fn open(cfg: &Capture, queue: u32) -> Result<QueueWorker, CaptureError> {
        let need = cfg.umem_bytes();
        let have = sys::memlock_limit();
        if !sys::has_cap_ipc_lock() && have < need {
            return Err(CaptureError::Memlock { queue, need, have });
        }
        let umem_err = |reason: String| CaptureError::Umem { queue, reason };
        let umem_cfg = UmemConfig::builder()
            .frame_size(FrameSize::new(cfg.frame_size).map_err(|e| umem_err(e.to_string()))?)
            .fill_queue_size(QueueSize::new(cfg.fill_ring_size).map_err(|e| umem_err(e.to_string()))?)
            .comp_queue_size(QueueSize::new(64).map_err(|e| umem_err(e.to_string()))?)
            .build()
            .map_err(|e| umem_err(e.to_string()))?;
        let frames = NonZeroU32::new(cfg.frame_count).ok_or_else(|| umem_err("frame_count is 0".into()))?;
        let (umem, descs) = Umem::new(umem_cfg, frames, cfg.huge_pages).map_err(|e| {
            let reason = format!("{e:#}");
            if cfg.huge_pages {
                CaptureError::HugePages {
                    queue,
                    need_pages: need.div_ceil(2 << 20),
                    reason,
                }
            } else if is_memlock_error(&reason) {
                CaptureError::Memlock { queue, need, have }
            } else {
                umem_err(reason)
            }
        })?;

        // The UMEM is one mapping of frame_count * frame_size bytes; frame
        // i's data starts at i * frame_size + headroom.
        let first = descs[0];
        // SAFETY: `first` is a descriptor of this UMEM and nothing else
        // accesses that frame yet.
        let first_ptr = unsafe { umem.data(&first) }.contents().as_ptr();
        let umem_base = first_ptr.wrapping_sub(first.addr()) as *mut u8;
        let umem_len = cfg.frame_count as usize * cfg.frame_size as usize;
        // SAFETY: base..base+len is the UMEM mapping, owned by `umem`,
        // which lives as long as this worker.
        unsafe { sys::lock_and_exclude_from_dumps(umem_base.cast(), umem_len) }
            .map_err(|source| CaptureError::Lock { queue, source })?;

        let iface = Interface::new(
            CString::new(cfg.interface.clone()).map_err(|_| umem_err("interface name has a NUL byte".into()))?,
        );
        let attempts = bind_attempts(cfg.bind);
        let mut last_err = String::new();
        let mut bound = None;
        for (flags, zc) in attempts {
            let sock_cfg = SocketConfig::builder()
                .rx_queue_size(QueueSize::new(cfg.rx_ring_size).map_err(|e| umem_err(e.to_string()))?)
                .tx_queue_size(QueueSize::new(64).map_err(|e| umem_err(e.to_string()))?)
                .libxdp_flags(LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD)
                .bind_flags(*flags | BindFlags::XDP_USE_NEED_WAKEUP)
                .build();
            // SAFETY: the UMEM is not shared with another socket on this
            // (interface, queue), and our own XDP program is managed by us
            // (INHIBIT_PROG_LOAD), as Socket::new requires.
            match unsafe { Socket::new(sock_cfg, &umem, &iface, queue) } {
                Ok(s) => {
                    bound = Some((s, *zc));
                    break;
                }
                Err(e) => {
                    last_err = format!("{e:#}");
                }
            }
        }
        let Some(((tx, rx, rings), zero_copy)) = bound else {
            if cfg.bind == BindMode::ZeroCopy {
                return Err(CaptureError::ZeroCopyUnsupported {
                    interface: cfg.interface.clone(),
                    reason: last_err,
                });
            }
            return Err(CaptureError::Socket {
                interface: cfg.interface.clone(),
                queue,
                reason: last_err,
            });
        };
        let Some((fq, _cq)) = rings else {
            return Err(CaptureError::Socket {
                interface: cfg.interface.clone(),
                queue,
                reason: "fill ring already owned by another socket".into(),
            });
        };
        let mut w = QueueWorker {
            queue,
            batch_size: cfg.batch_size as usize,
            umem,
            umem_base,
            umem_len,
            frame_size: cfg.frame_size as usize,
            fq,
            rx,
            _tx: tx,
            free: descs,
            batch: vec![FrameDesc::default(); cfg.batch_size as usize],
            nap: Nap::new(cfg.idle_nap, cfg.rx_ring_size),
            zero_copy,
            busy_poll: false,
        };
        if cfg.busy_poll_us > 0 {
            match sys::set_busy_poll(w.fd(), cfg.busy_poll_us, cfg.busy_poll_budget) {
                Ok(()) => {
                    w.busy_poll = true;
                    tracing::info!(
                        queue,
                        busy_poll_us = cfg.busy_poll_us,
                        budget = cfg.busy_poll_budget,
                        "busy polling on"
                    );
                }
                Err(e) => {
                    tracing::warn!(queue, error = %e, "busy polling is not available on this socket; the worker waits for interrupts and naps instead")
                }
            }
        }
        w.refill();
        Ok(w)
    }

    /// The socket's fd, for the XSKMAP.
    pub fn fd(&self) -> RawFd {
        self.rx.fd().as_raw_fd()
    }

    /// Hands as many free (zeroed) frames to the fill ring as it has room for.
    /// Reads and zeroes the XDP metadata the kernel copied just before the
    /// frame at `addr` (`classify::meta`); None if there is none.
    fn take_meta(&self, addr: usize) -> Option<XdpMeta> {
        // The kernel puts a received frame at least XDP_PACKET_HEADROOM
        // (256) bytes into its chunk; anything closer to the chunk's start
        // has no room for metadata.
        if addr % self.frame_size < META_LEN || addr > self.umem_len {
            return None;
        }
        // SAFETY: addr - META_LEN .. addr lies inside the UMEM mapping
        // (checked above) and inside this frame's own chunk, which the
        // kernel handed to us through the RX ring: nothing else reads or
        // writes it until the frame goes back to the fill ring.
        let bytes = unsafe { &mut *(self.umem_base.add(addr - META_LEN) as *mut [u8; META_LEN]) };
        let meta = XdpMeta::decode(bytes);
        crate::erase::erase(bytes);
        meta
    }

    fn refill(&mut self) {
        if self.free.is_empty() {
            return;
        }
        // nb_free may report more room than asked for; never more than we hold.
        let room = (self.fq.nb_free(self.free.len() as u32) as usize).min(self.free.len());
        if room == 0 {
            return;
        }
        let start = self.free.len() - room;
        // SAFETY: every descriptor in `free` belongs to this UMEM, is not
        // on any ring, and has been zeroed.
        let n = unsafe { self.fq.produce(&self.free[start..]) };
        self.free.truncate(self.free.len() - n);
        if n > 0 && self.fq.needs_wakeup() {
            let _ = self.fq.wakeup(self.rx.fd_mut(), 0);
        }
    }

    /// Runs until `stop` is set and the RX ring is empty. `signals.adopted`
    /// gets the generation of the selection state the worker runs, once it
    /// runs it (a reload waits for every worker's); `signals.failed` is set
    /// if the per-frame path panics (the supervisor then stops capture).
    pub fn run(
        mut self,
        mut pipeline: Pipeline,
        metrics: &Metrics,
        records: &RecordTx,
        stop: &AtomicBool,
        signals: &WorkerSignals,
    ) -> WorkerReport {
        let adopted = &signals.adopted;
        let mut publish = QueuePublisher::new(metrics, self.queue, pipeline.budget());
        let mut report = WorkerReport {
            queue: self.queue,
            frames: 0,
            zero_copy: self.zero_copy,
            panicked: None,
        };
        let mut last_housekeeping = Instant::now();
        // Frames taken since the ring last ran empty, and when that was.
        let mut taken = 0u64;
        let mut last_empty = Instant::now();
        // When the last batch came (busy polling keeps on for a while).
        let mut last_frames = Instant::now();

        loop {
            // SAFETY: the batch descriptors are written by the ring from
            // frames of this UMEM.
            let n = unsafe { self.rx.consume(&mut self.batch[..self.batch_size]) };
            if n > 0 && report.panicked.is_some() {
                // After a panic: nothing is processed any more, every frame
                // that still arrives (until the supervisor has taken the
                // socket out of the XSKMAP) is zeroed and counted.
                let bytes = (0..n).map(|i| self.zero_frame(i)).sum();
                publish.zeroed(n as u64, bytes);
                self.free.extend_from_slice(&self.batch[..n]);
                self.refill();
            } else if n > 0 {
                taken += n as u64;
                // A reload swaps the selection state between batches.
                pipeline.refresh();
                adopted.store(pipeline.generation(), Ordering::Release);
                let t0 = Instant::now();
                last_frames = t0;
                let outcome = pipeline.process_batch(&mut UmemBatch { w: &mut self, n }, now_ns());
                if let Some(zeroed) = outcome.panicked {
                    // Erase on unwind: the frame in hand and the rest of the
                    // batch were zeroed (their metadata too) and counted;
                    // capture stops.
                    report.panicked = Some(zeroed);
                    signals.failed.store(true, Ordering::Release);
                    tracing::error!(
                        queue = self.queue,
                        zeroed,
                        "the per-frame path panicked; the frames of the batch still in hand were zeroed; capture stops"
                    );
                }
                publish.batch(outcome.received, pipeline.counters(), t0.elapsed().as_secs_f64());
                report.frames += pipeline.counters().frames;
                pipeline.clear_counters();
                self.free.extend_from_slice(&self.batch[..n]);
                self.refill();
                for r in pipeline.take_records() {
                    records.send(r);
                }
            } else {
                self.refill();
                // Idle, a worker still adopts a new state at once, so that
                // a reload is acknowledged without waiting for traffic.
                pipeline.refresh();
                adopted.store(pipeline.generation(), Ordering::Release);
                if stop.load(Ordering::Acquire) {
                    // Drained: give late frames one short chance, then go.
                    if !self.rx.poll(10).unwrap_or(false) {
                        break;
                    }
                    continue;
                }
                // Busy polling: drive the device's poll from this thread
                // while frames came recently; after an idle spell, wait
                // like everyone else (poll() busy-polls first, too).
                if self.busy_poll && last_frames.elapsed() < BUSY_POLL_IDLE {
                    sys::busy_poll_once(self.fd());
                    continue;
                }
                // Under load, a nap lets the ring fill: each wake-up costs
                // tens of microseconds of CPU (more in a VM), so it must pay
                // for many frames. The nap adapts to the rate (see nap.rs).
                // If nothing came since the last wake-up, block in poll(),
                // which wakes as soon as frames arrive.
                let now = Instant::now();
                let nap = self.nap.next(taken, now - last_empty);
                taken = 0;
                last_empty = now;
                match nap {
                    Some(d) => std::thread::sleep(d),
                    None => {
                        let _ = self.rx.poll(100);
                    }
                }
            }
            if last_housekeeping.elapsed() >= Duration::from_millis(250) {
                last_housekeeping = Instant::now();
                pipeline.expire(now_ns());
                for r in pipeline.take_records() {
                    records.send(r);
                }
                self.publish_tables(&mut publish, &mut pipeline);
                publish.nap(self.nap.current().as_secs_f64());
            }
        }

        // Flows end in steps, each step's records sent before the next:
        // a full table never turns into one heap of records at once.
        loop {
            let more = pipeline.drain_some(crate::flow::table::RECORDS_PER_SWEEP);
            for r in pipeline.take_records() {
                records.send(r);
            }
            if !more {
                break;
            }
        }
        self.publish_tables(&mut publish, &mut pipeline);
        self.wipe();
        report
    }

    fn publish_tables(&self, publish: &mut QueuePublisher, pipeline: &mut Pipeline) {
        let evicted = pipeline.take_evicted();
        let fragments = pipeline.take_fragment_counts();
        publish.tables(pipeline.flows_tracked().0, evicted, &fragments, pipeline.budget());
        if let Ok(s) = self.rx.fd().xdp_statistics() {
            publish.xsk([
                s.rx_dropped(),
                s.rx_invalid_descs(),
                s.rx_ring_full(),
                s.rx_fill_ring_empty_descs(),
            ]);
        }
    }

    /// Zeroes frame `i` of the batch, with its metadata, without
    /// processing it; returns the bytes zeroed.
    fn zero_frame(&mut self, i: usize) -> u64 {
        let _ = self.take_meta(self.batch[i].addr());
        // SAFETY: the kernel handed this frame to us through the RX ring
        // and nobody else touches it until it is back on the fill ring.
        let mut data = unsafe { self.umem.data_mut(&mut self.batch[i]) };
        crate::erase::erase(data.contents_mut()) as u64
    }

    /// Zeroes the whole UMEM before it is unmapped: nothing of a frame
    /// still on a ring outlives the worker.
    fn wipe(&mut self) {
        // SAFETY: base..base+len is our UMEM mapping; the socket is out of
        // the XSKMAP, so no new frames are written while we wipe.
        let all = unsafe { std::slice::from_raw_parts_mut(self.umem_base, self.umem_len) };
        crate::erase::erase(all);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_explicit_zero_copy_mode_tries_zero_copy() {
        for mode in [BindMode::Auto, BindMode::Copy] {
            let a = bind_attempts(mode);
            assert_eq!(a.len(), 1);
            assert!(a[0].0.contains(BindFlags::XDP_COPY) && !a[0].0.contains(BindFlags::XDP_ZEROCOPY));
            assert!(!a[0].1);
        }
        let a = bind_attempts(BindMode::ZeroCopy);
        assert_eq!(a.len(), 1);
        assert!(a[0].0.contains(BindFlags::XDP_ZEROCOPY) && a[0].1);
    }
}
