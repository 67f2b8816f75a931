//! Stage 4: flows. Every cross-border packet is folded into a
//! bidirectional flow keyed by inner 5-tuple + VLAN stack + tunnel; the
//! flow keeps its class and indicator set for the selection state in
//! force, and what selection decided about it; a selected flow that ends
//! (idle, active timeout, eviction, shutdown) becomes a `MechanicalRecord`.
//!
//! Invariant kept: the flow table holds only mechanical fields, and a
//! selected flow always ends as a record — eviction included.

pub mod frag;
pub mod key;
pub mod record;
pub mod table;

pub use frag::{FragEvent, FragTable, FragVerdict};
pub use key::FlowKey;
pub use record::{EndReason, MechanicalRecord};
pub use table::{FlowRef, FlowTable, Judged, Lookup, Pending, PerFlow, Prints, Selected};
