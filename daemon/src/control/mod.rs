//! Control plane: starting and stopping the data path, authorization
//! windows, signals, the metrics endpoint.
//!
//! Invariant kept: the XDP class map follows the authorization windows —
//! a measure outside its window is never authorized, checked every tick.

pub mod run;
pub mod socket;
pub mod windows;

pub use run::{run, RunError};
