//! MPLS ethertypes. The label stack itself is walked by `classify::walk`,
//! the same walk the XDP program makes (bounded by `[decap]
//! mpls_max_labels`).

pub const ETHERTYPE_MPLS_UNICAST: u16 = 0x8847;
pub const ETHERTYPE_MPLS_MULTICAST: u16 = 0x8848;
