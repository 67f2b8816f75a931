//! Stage 2: AF_XDP capture. One worker per configured RX queue owns its
//! UMEM, fill ring and RX ring (quilkin style), so the rule "a frame
//! descriptor belongs to this UMEM" holds in one place.
//!
//! Invariant kept: a frame goes back to the fill ring only after the
//! pipeline has erased it; UMEM is mlocked and excluded from core dumps,
//! and wiped as a whole when the worker ends.
#![allow(unsafe_code)]

mod nap;
mod worker;

pub use worker::{CaptureError, QueueWorker, WorkerReport, WorkerSignals};
