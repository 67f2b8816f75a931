//! The TOML shape of a furui config file: one struct per section, each
//! `deny_unknown_fields`. Values that need checks beyond their type stay
//! `Spanned` so that an error can point at their line.

use serde::Deserialize;
use toml::Spanned;

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
}

/// `[domestic]`: the prefixes, and how much of them one reload may remove
/// without the operator confirming it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomesticSection {
    #[serde(default)]
    pub prefixes: Vec<Spanned<String>>,
    #[serde(default)]
    pub files: Vec<Spanned<String>>,
    /// Percent of the domestic address space in force that one reload may
    /// stop covering unless `furui reload --confirm-domestic-removal`.
    pub reload_max_removed_percent: Option<Spanned<u8>>,
}

pub const DEFAULT_RELOAD_MAX_REMOVED_PERCENT: u8 = 10;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasureSection {
    #[serde(default)]
    pub enabled: bool,
    /// RFC 3339, as a string or a TOML datetime.
    pub not_before: Spanned<toml::Value>,
    pub not_after: Spanned<toml::Value>,
    /// Reference of the committee's approval (Art. 18), recorded in logs.
    #[serde(default)]
    pub approval: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndicatorSection {
    pub name: Spanned<String>,
    #[serde(default)]
    pub prefixes: Vec<Spanned<String>>,
    #[serde(default)]
    pub files: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowsSection {
    #[serde(default = "default_idle")]
    pub idle_timeout_secs: Spanned<u64>,
    #[serde(default = "default_active")]
    pub active_timeout_secs: Spanned<u64>,
    #[serde(default = "default_max_flows")]
    pub max_flows: Spanned<u64>,
    /// Datagrams whose fragments are tracked at once (per queue).
    #[serde(default = "default_max_fragments")]
    pub max_fragments: Spanned<u64>,
    /// How long a datagram's fragments are waited for.
    #[serde(default = "default_fragment_timeout")]
    pub fragment_timeout_secs: Spanned<u64>,
    /// Bytes (MiB) all reassembly buffers of one queue may hold at once.
    #[serde(default = "default_reassembly_budget")]
    pub reassembly_budget_mib: Spanned<u64>,
}

impl Default for FlowsSection {
    fn default() -> Self {
        FlowsSection {
            idle_timeout_secs: default_idle(),
            active_timeout_secs: default_active(),
            max_flows: default_max_flows(),
            max_fragments: default_max_fragments(),
            fragment_timeout_secs: default_fragment_timeout(),
            reassembly_budget_mib: default_reassembly_budget(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordsSection {
    pub path: Spanned<String>,
    #[serde(default = "default_records_queue")]
    pub queue_capacity: Spanned<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    #[serde(default = "default_listen")]
    pub listen: Spanned<String>,
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection {
            listen: default_listen(),
        }
    }
}

fn unspanned<T>(v: T) -> Spanned<T> {
    Spanned::new(0..0, v)
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
fn default_batch() -> Spanned<u32> {
    unspanned(64)
}
fn default_idle() -> Spanned<u64> {
    unspanned(30)
}
fn default_active() -> Spanned<u64> {
    unspanned(300)
}
// 7/8 of 2^20: the most a 2^20-bucket table holds before it doubles
// (169 B a bucket: 266 MiB at its growth peak; see config::memory).
pub const DEFAULT_MAX_FLOWS: u64 = 917_504;
fn default_max_flows() -> Spanned<u64> {
    unspanned(DEFAULT_MAX_FLOWS)
}
// Each entry is ~200 bytes: 65,536 datagrams is ~13 MB per queue at most.
fn default_max_fragments() -> Spanned<u64> {
    unspanned(65_536)
}
pub const DEFAULT_REASSEMBLY_BUDGET_MIB: u64 = 32;
fn default_reassembly_budget() -> Spanned<u64> {
    unspanned(DEFAULT_REASSEMBLY_BUDGET_MIB)
}
// Linux's ipfrag_time.
fn default_fragment_timeout() -> Spanned<u64> {
    unspanned(30)
}
fn default_records_queue() -> Spanned<u32> {
    unspanned(65_536)
}
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9464";
fn default_listen() -> Spanned<String> {
    unspanned(DEFAULT_METRICS_LISTEN.to_string())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectionSection {
    /// Directory of rules files (`*.toml`), relative to the config file.
    #[serde(default)]
    pub rules_dir: Option<Spanned<String>>,
}

pub const DEFAULT_CONTROL_SOCKET: &str = "/run/furui/control.sock";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlSection {
    /// Unix socket for `furui reload` (mode 0600: root and the daemon's user).
    #[serde(default = "default_control_socket")]
    pub socket: String,
}

impl Default for ControlSection {
    fn default() -> Self {
        ControlSection {
            socket: default_control_socket(),
        }
    }
}

fn default_control_socket() -> String {
    DEFAULT_CONTROL_SOCKET.to_string()
}
