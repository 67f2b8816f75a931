//! furui (篩, "sieve"): a capture appliance that keeps only the mechanical
//! information selected as related to attacks and erases everything else.
//!
//! The modules below are listed in data-path order, each `//!` line naming
//! its stage: NIC RX queue → `xdp` with its model `classify` (1, in the
//! kernel) → `capture` (2, AF_XDP), which calls `pipeline`, the per-batch
//! function that runs the stages below in order → `parse` (3) → `flow` (4)
//! → `select` (5, its reassembly memory in `budget`) → `erase` (6). Selected
//! records leave through the `sink` (7) on two branches (8): `deid` and
//! `export` to the recipients, and the retention `store` the sink commits
//! to. Then what oversight reads (`audit`, `approvals`, `report`), what runs the
//! appliance around the data path (`config`, `feeds`, `control`, `telemetry`,
//! `sys`, `hex`, `offline`), and what is not the product, compiled only for
//! tests, benches and fuzzing (feature `testkit`: `benchkit`, `craft`,
//! `fuzzing`, `classify::reference`).
#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod classify;
pub mod xdp;
pub mod capture;
pub mod pipeline;
pub mod parse;
pub mod flow;
pub mod select;
pub mod budget;
pub mod erase;
pub mod sink;
pub mod deid;
pub mod export;
pub mod store;

pub mod audit;
pub mod approvals;
pub mod report;

pub mod config;
pub mod feeds;
pub mod control;
pub mod telemetry;
pub mod sys;
pub mod hex;
pub mod offline;

#[cfg(any(test, feature = "testkit"))]
pub mod benchkit;
#[cfg(any(test, feature = "testkit"))]
pub mod craft;
#[cfg(any(test, feature = "testkit"))]
pub mod fuzzing;
