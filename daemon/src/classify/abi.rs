//! The constants the BPF program and user space share, generated at build
//! time from `ebpf/furui_consts.h` and `furui_structs.h` (see `build.rs`):
//! classes, actions, encapsulations, outcomes, the walk's bounds and the
//! map sizes have one home, the C the kernel runs. The Rust enums take
//! their discriminants from here.
#![allow(missing_docs)]

include!(concat!(env!("OUT_DIR"), "/furui_consts.rs"));
