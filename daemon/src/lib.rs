//! furui (篩, "sieve"): a capture appliance that keeps only the mechanical
//! information selected as related to attacks and erases everything else.
//!
//! The modules below are listed in data-path order:
//! NIC RX queue → `xdp` (classify, in the kernel) → `capture` (AF_XDP) →
//! `parse` → `select` → `flow` → `erase` → `sink` → `store` (retention);
//! `export` and `deid` send records out; `audit` and `report` are what
//! oversight reads; `pipeline` strings the
//! per-frame stages together; `control`, `config` and `telemetry` run the
//! appliance around them.
#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod budget;
pub mod capture;
pub mod classify;
pub mod deid;
pub mod erase;
pub mod export;
pub mod flow;
pub mod offline;
pub mod parse;
pub mod pipeline;
pub mod report;
pub mod select;
pub mod sink;
pub mod store;
pub mod xdp;

pub mod config;
pub mod control;
pub mod telemetry;

pub mod audit;
pub mod benchkit;
pub mod craft;
pub mod sys;
