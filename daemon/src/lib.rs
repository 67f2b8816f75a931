//! furui (篩, "sieve"): a capture appliance that keeps only the mechanical
//! information selected as related to attacks and erases everything else.
//!
//! The modules below are listed in data-path order, each `//!` line naming
//! its stage: NIC RX queue → `xdp` with its model `classify` (1, in the
//! kernel) → `capture` (2, AF_XDP) → `parse` (3) → `flow` (4) → `select`
//! (5, its reassembly memory in `budget`) → `erase` (6), strung together by
//! `pipeline` → `sink` (7) → `store` (8, retention) → `deid` and `export`
//! (9). Then what oversight reads (`audit`, `report`), what runs the
//! appliance around the data path (`config`, `control`, `telemetry`,
//! `sys`, `hex`, `offline`), and what is not the product, compiled only for
//! tests, benches and fuzzing (feature `testkit`: `benchkit`, `craft`,
//! `classify::reference`).
#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod classify;
pub mod xdp;
pub mod capture;
pub mod parse;
pub mod flow;
pub mod budget;
pub mod select;
pub mod erase;
pub mod pipeline;
pub mod sink;
pub mod store;
pub mod deid;
pub mod export;

pub mod audit;
pub mod report;

pub mod config;
pub mod control;
pub mod telemetry;
pub mod sys;
pub mod hex;
pub mod offline;

#[cfg(any(test, feature = "testkit"))]
pub mod benchkit;
#[cfg(any(test, feature = "testkit"))]
pub mod craft;
