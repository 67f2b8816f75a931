//! `[flows]`: the per-queue flow and fragment tables, their timeouts, and
//! the reassembly budget; together they bound memory by configuration,
//! never by traffic (see `memory.rs`).

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::errors::Collector;
use super::read::unspanned;

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

#[derive(Debug, Clone, PartialEq)]
pub struct Flows {
    pub idle_timeout: Duration,
    pub active_timeout: Duration,
    pub max_flows: usize,
    pub max_fragments: usize,
    pub fragment_timeout: Duration,
    /// Bytes the reassembly buffers of one queue may hold at once.
    pub reassembly_budget: usize,
}

pub(super) fn validate(s: FlowsSection, c: &mut Collector<'_>) -> Option<Flows> {
    let before = c.errors.len();
    let idle = *s.idle_timeout_secs.get_ref();
    let active = *s.active_timeout_secs.get_ref();
    if idle == 0 {
        c.at(s.idle_timeout_secs.span(), "idle_timeout_secs must be at least 1");
    }
    if active < idle {
        c.at(
            s.active_timeout_secs.span(),
            format!("active_timeout_secs {active} must not be shorter than idle_timeout_secs {idle}"),
        );
    }
    if *s.max_flows.get_ref() == 0 {
        c.at(s.max_flows.span(), "max_flows must be at least 1");
    }
    if *s.max_fragments.get_ref() == 0 {
        c.at(s.max_fragments.span(), "max_fragments must be at least 1");
    }
    let ft = *s.fragment_timeout_secs.get_ref();
    if !(1..=120).contains(&ft) {
        c.at(
            s.fragment_timeout_secs.span(),
            format!("fragment_timeout_secs {ft} must be between 1 and 120"),
        );
    }
    let budget = *s.reassembly_budget_mib.get_ref();
    if !(1..=4096).contains(&budget) {
        c.at(
            s.reassembly_budget_mib.span(),
            format!("reassembly_budget_mib {budget} must be between 1 and 4096"),
        );
    }
    (c.errors.len() == before).then(|| Flows {
        reassembly_budget: (budget as usize) << 20,
        idle_timeout: Duration::from_secs(idle),
        active_timeout: Duration::from_secs(active),
        max_flows: *s.max_flows.get_ref() as usize,
        max_fragments: *s.max_fragments.get_ref() as usize,
        fragment_timeout: Duration::from_secs(ft),
    })
}
