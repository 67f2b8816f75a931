//! Stage 6: flow aggregation. Selected packets are folded into
//! bidirectional flows keyed by 5-tuple + VLAN stack; a flow that ends
//! (idle, active timeout, eviction, shutdown) becomes a `MechanicalRecord`.
//!
//! Invariant kept: the flow table holds only mechanical fields, and a
//! selected flow always ends as a record — eviction included.

pub mod frag;
pub mod hello;
pub mod key;
pub mod record;
pub mod table;

pub use frag::{FragEvent, FragTable, FragVerdict};
pub use key::FlowKey;
pub use record::{EndReason, MechanicalRecord};
pub use table::{FlowRef, FlowTable, Judged, Selected};
