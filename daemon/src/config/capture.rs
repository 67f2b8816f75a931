//! `[capture]`: the interface, its RX queues, the XDP and bind modes and
//! the UMEM and ring sizes of each queue's worker.

use std::collections::HashSet;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::errors::Collector;
use super::read::unspanned;

/// Highest queue id the XSKMAP has room for (FURUI_MAX_QUEUES - 1).
pub const MAX_QUEUE_ID: u32 = crate::classify::abi::FURUI_MAX_QUEUES - 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum XdpMode {
    /// In the driver; fastest; the NIC driver must support XDP.
    Native,
    /// In the generic (skb) path; works on any interface.
    Generic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureMode {
    /// On a mirror/tap port: what is not captured is dropped.
    Mirror,
    /// On a live interface: what is not captured goes on to the stack.
    Inline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BindMode {
    /// Copy mode. (It once meant zero-copy where the driver supports it;
    /// zero-copy leaves the frames XDP drops or passes in the UMEM, never
    /// zeroed, so it is chosen only explicitly.)
    Auto,
    Copy,
    /// Zero-copy: needs `zero_copy_exposes_dropped_frames = true` and
    /// mirror mode.
    ZeroCopy,
}

/// What of a captured frame the XDP program copies to user space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapMode {
    /// The headers, plus the payload bytes the loaded rules can read, plus
    /// whole the frames fingerprinting reads (data minimization).
    Ruleset,
    /// Every byte (for comparison runs; more copying, no more selection).
    Whole,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureSection {
    pub interface: Spanned<String>,
    #[serde(default = "default_queues")]
    pub queues: Spanned<Vec<u32>>,
    #[serde(default = "default_xdp_mode")]
    pub xdp_mode: XdpMode,
    #[serde(default = "default_capture_mode")]
    pub mode: CaptureMode,
    #[serde(default = "default_bind")]
    pub bind: Spanned<BindMode>,
    /// The operator's acknowledgment that with `bind = "zero_copy"` the NIC
    /// writes every frame of the queue into the UMEM, the domestic and
    /// unauthorized frames XDP drops included, and nothing zeroes those.
    #[serde(default)]
    pub zero_copy_exposes_dropped_frames: bool,
    #[serde(default = "default_frame_count")]
    pub frame_count: Spanned<u32>,
    #[serde(default = "default_frame_size")]
    pub frame_size: Spanned<u32>,
    #[serde(default = "default_ring")]
    pub fill_ring_size: Spanned<u32>,
    #[serde(default = "default_ring")]
    pub rx_ring_size: Spanned<u32>,
    #[serde(default = "default_batch")]
    pub batch_size: Spanned<u32>,
    /// Back the UMEM with 2 MiB huge pages (needs `vm.nr_hugepages`).
    #[serde(default)]
    pub huge_pages: bool,
    /// The longest nap a worker takes when its RX ring runs empty, so that
    /// the next wake-up finds a batch; the nap adapts below it to the rate
    /// (capture/nap.rs). 0 = never nap, block in poll() at once.
    #[serde(default = "default_nap")]
    pub idle_nap_us: Spanned<u32>,
    #[serde(default = "default_snap")]
    pub snap: SnapMode,
    /// Busy polling: microseconds the kernel polls the device per call
    /// (0: off, interrupts and naps as usual), and packets per poll.
    #[serde(default = "default_busy_poll_us")]
    pub busy_poll_us: Spanned<u32>,
    #[serde(default = "default_busy_poll_budget")]
    pub busy_poll_budget: Spanned<u32>,
    /// The CPU each queue's worker is pinned to, in `queues` order (empty:
    /// not pinned; the scheduler places them).
    #[serde(default = "default_cpus")]
    pub cpus: Spanned<Vec<u32>>,
}

fn default_queues() -> Spanned<Vec<u32>> {
    unspanned(vec![0])
}
fn default_xdp_mode() -> XdpMode {
    XdpMode::Native
}
fn default_capture_mode() -> CaptureMode {
    CaptureMode::Mirror
}
fn default_bind() -> Spanned<BindMode> {
    unspanned(BindMode::Auto)
}
// 16384 frames of 2 KiB (32 MiB locked per queue) behind 8192-entry rings:
// ~5 ms of buffering at 1.5 Mpps, measured loss-free at the veth rig's
// generator ceiling. 2 KiB frames hold a 1518-byte frame plus headroom.
fn default_frame_count() -> Spanned<u32> {
    unspanned(16384)
}
fn default_frame_size() -> Spanned<u32> {
    unspanned(2048)
}
fn default_ring() -> Spanned<u32> {
    unspanned(8192)
}
fn default_nap() -> Spanned<u32> {
    unspanned(4000)
}
fn default_busy_poll_us() -> Spanned<u32> {
    unspanned(0)
}
fn default_busy_poll_budget() -> Spanned<u32> {
    unspanned(64)
}
fn default_cpus() -> Spanned<Vec<u32>> {
    unspanned(Vec::new())
}
fn default_snap() -> SnapMode {
    SnapMode::Ruleset
}
fn default_batch() -> Spanned<u32> {
    unspanned(64)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Capture {
    pub interface: String,
    pub queues: Vec<u32>,
    pub xdp_mode: XdpMode,
    pub mode: CaptureMode,
    pub bind: BindMode,
    pub frame_count: u32,
    pub frame_size: u32,
    pub fill_ring_size: u32,
    pub rx_ring_size: u32,
    pub batch_size: u32,
    pub huge_pages: bool,
    pub idle_nap: Duration,
    pub snap: SnapMode,
    /// CPU of each queue's worker, in `queues` order; empty: not pinned.
    pub cpus: Vec<u32>,
    /// Busy polling (0 µs: off) and its budget.
    pub busy_poll_us: u32,
    pub busy_poll_budget: u32,
}

impl Capture {
    /// The CPU the worker of `queue` is pinned to, if any.
    pub fn cpu_of(&self, queue: u32) -> Option<u32> {
        let i = self.queues.iter().position(|q| *q == queue)?;
        self.cpus.get(i).copied()
    }
}

impl Capture {
    /// Bytes of UMEM one queue's worker locks.
    pub fn umem_bytes(&self) -> u64 {
        u64::from(self.frame_count) * u64::from(self.frame_size)
    }
}

pub(super) fn validate(s: CaptureSection, c: &mut Collector<'_>) -> Option<Capture> {
    let before = c.errors.len();
    check_interface(&s.interface, c);
    check_queues(&s.queues, c);
    check_cpus(&s.cpus, s.queues.get_ref().len(), c);
    check_sizes(&s, c);
    check_bind(&s, c);
    let (bp, budget) = (*s.busy_poll_us.get_ref(), *s.busy_poll_budget.get_ref());
    if bp > 1000 {
        c.at(
            s.busy_poll_us.span(),
            format!("busy_poll_us {bp} is above 1000; a longer poll holds the CPU without finding more"),
        );
    }
    if !(1..=1024).contains(&budget) {
        c.at(
            s.busy_poll_budget.span(),
            format!("busy_poll_budget {budget} must be between 1 and 1024"),
        );
    }
    let nap = *s.idle_nap_us.get_ref();
    if nap > 20_000 {
        c.at(
            s.idle_nap_us.span(),
            format!("idle_nap_us {nap} is above 20000; a long nap lets the RX ring overflow under load and keeps frames waiting unerased"),
        );
    }
    if c.errors.len() != before {
        return None;
    }
    Some(Capture {
        interface: s.interface.into_inner(),
        queues: s.queues.into_inner(),
        xdp_mode: s.xdp_mode,
        mode: s.mode,
        bind: *s.bind.get_ref(),
        frame_count: *s.frame_count.get_ref(),
        frame_size: *s.frame_size.get_ref(),
        fill_ring_size: *s.fill_ring_size.get_ref(),
        rx_ring_size: *s.rx_ring_size.get_ref(),
        batch_size: *s.batch_size.get_ref(),
        huge_pages: s.huge_pages,
        idle_nap: Duration::from_micros(u64::from(nap)),
        snap: s.snap,
        cpus: s.cpus.into_inner(),
        busy_poll_us: bp,
        busy_poll_budget: budget,
    })
}

fn check_interface(interface: &Spanned<String>, c: &mut Collector<'_>) {
    let iface = interface.get_ref();
    if iface.is_empty() || iface.len() > 15 || iface.contains('/') || iface.contains(char::is_whitespace) {
        c.at(
            interface.span(),
            format!("interface name `{iface}` is not a valid Linux interface name (1-15 characters, no '/' or spaces)"),
        );
    }
}

fn check_queues(queues: &Spanned<Vec<u32>>, c: &mut Collector<'_>) {
    if queues.get_ref().is_empty() {
        c.at(queues.span(), "`queues` is empty: list at least one RX queue, e.g. [0]");
    }
    let mut seen = HashSet::new();
    for q in queues.get_ref() {
        if *q > MAX_QUEUE_ID {
            c.at(queues.span(), format!("queue {q} is above the maximum {MAX_QUEUE_ID}"));
        }
        if !seen.insert(*q) {
            c.at(queues.span(), format!("queue {q} is listed twice"));
        }
    }
}

/// Largest CPU number a worker can be pinned to (the kernel's CPU set).
pub const MAX_CPU: u32 = 1023;

fn check_cpus(cpus: &Spanned<Vec<u32>>, queues: usize, c: &mut Collector<'_>) {
    let list = cpus.get_ref();
    if list.is_empty() {
        return;
    }
    if list.len() != queues {
        c.at(
            cpus.span(),
            format!(
                "`cpus` lists {} CPUs for {queues} queues: give one CPU per queue, in `queues` order, or none",
                list.len()
            ),
        );
    }
    let mut seen = HashSet::new();
    for cpu in list {
        if *cpu > MAX_CPU {
            c.at(cpus.span(), format!("cpu {cpu} is above the maximum {MAX_CPU}"));
        }
        if !seen.insert(*cpu) {
            c.at(
                cpus.span(),
                format!("cpu {cpu} is listed twice: two workers on one CPU take turns, neither gains"),
            );
        }
    }
}

fn check_sizes(s: &CaptureSection, c: &mut Collector<'_>) {
    let fs = *s.frame_size.get_ref();
    if fs != 2048 && fs != 4096 {
        c.at(s.frame_size.span(), format!("frame_size {fs} must be 2048 or 4096"));
    }
    for (name, v) in [("fill_ring_size", &s.fill_ring_size), ("rx_ring_size", &s.rx_ring_size)] {
        let n = *v.get_ref();
        if !n.is_power_of_two() || !(64..=65536).contains(&n) {
            c.at(
                v.span(),
                format!("{name} {n} must be a power of two between 64 and 65536"),
            );
        }
    }
    let fc = *s.frame_count.get_ref();
    if fc < *s.fill_ring_size.get_ref() {
        c.at(
            s.frame_count.span(),
            format!(
                "frame_count {fc} is smaller than fill_ring_size {}; the fill ring could never be filled",
                s.fill_ring_size.get_ref()
            ),
        );
    }
    let b = *s.batch_size.get_ref();
    if b == 0 || b > *s.rx_ring_size.get_ref() {
        c.at(
            s.batch_size.span(),
            format!("batch_size {b} must be between 1 and rx_ring_size"),
        );
    }
}

/// Zero-copy puts every frame of the queue in the UMEM, the ones XDP drops
/// (domestic, unauthorized) or passes included, and nothing zeroes those:
/// only on the operator's explicit word, never inline.
fn check_bind(s: &CaptureSection, c: &mut Collector<'_>) {
    if *s.bind.get_ref() != BindMode::ZeroCopy {
        return;
    }
    if s.mode == CaptureMode::Inline {
        c.at(
            s.bind.span(),
            "bind = \"zero_copy\" cannot be used with mode = \"inline\": the frames XDP passes to the stack \
             stay in the UMEM and cannot be zeroed; use bind = \"copy\"",
        );
    } else if !s.zero_copy_exposes_dropped_frames {
        c.at(
            s.bind.span(),
            "bind = \"zero_copy\" makes the NIC write every frame of the queue into furui's memory, the domestic \
             and unauthorized frames XDP drops included, and those are never zeroed; use bind = \"copy\", or \
             set zero_copy_exposes_dropped_frames = true if that is accepted",
        );
    }
}
