//! `MechanicalRecord`: the only type that leaves the data path. It holds
//! enumerated mechanical fields and no byte buffers.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::classify::Class;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    Idle,
    Active,
    Evicted,
    Shutdown,
}

/// A selected flow, RFC 5103 style: initiator is the sender of the first
/// packet seen; counts are kept per direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MechanicalRecord {
    /// Nanoseconds since the Unix epoch.
    pub first_seen_ns: u64,
    pub last_seen_ns: u64,
    pub class: Class,
    pub queue: u32,
    pub vlans: Vec<u16>,
    /// The encapsulations the flow's packets arrived in, outermost first,
    /// joined by '/' (e.g. "gre/erspan", "vxlan"); "" for plain frames.
    /// The outer headers themselves are not recorded: they are the
    /// carrier's tunnel endpoints, not the communication's.
    pub encap: String,
    /// The innermost tunnel id (VXLAN/Geneve VNI, GTP-U TEID, ERSPAN
    /// session, GRE key, MPLS bottom label), if the encapsulation has one.
    pub tunnel_id: Option<u32>,
    pub protocol: u8,
    pub initiator: IpAddr,
    pub initiator_port: u16,
    pub responder: IpAddr,
    pub responder_port: u16,
    pub packets_forward: u64,
    pub bytes_forward: u64,
    pub packets_reverse: u64,
    pub bytes_reverse: u64,
    pub tcp_flags_forward: u8,
    pub tcp_flags_reverse: u8,
    pub min_ttl: u8,
    pub max_ttl: u8,
    /// Packets of the flow that were IP fragments (later fragments are
    /// attributed through their datagram's first fragment).
    pub fragments: u64,
    /// Name of the indicator set that selected the flow ("" if only rules did).
    pub indicator_set: String,
    /// Ids of every rule that matched a packet of the flow.
    pub rules: Vec<String>,
    /// Version of the ruleset those ids belong to.
    pub ruleset_version: String,
    /// Fingerprints of the flow's first TLS ClientHello, if it had one.
    pub ja4: Option<String>,
    pub ja3: Option<String>,
    /// JA3S of the responder's ServerHello.
    pub ja3s: Option<String>,
    /// HASSH and hasshServer of the flow's SSH KEXINITs.
    pub hassh: Option<String>,
    pub hassh_server: Option<String>,
    pub end_reason: EndReason,
}

impl MechanicalRecord {
    /// The fields a record may carry, by name: the exportable set. A test
    /// checks that serialization produces exactly these.
    pub const FIELDS: &'static [&'static str] = &[
        "first_seen_ns",
        "last_seen_ns",
        "class",
        "queue",
        "vlans",
        "encap",
        "tunnel_id",
        "protocol",
        "initiator",
        "initiator_port",
        "responder",
        "responder_port",
        "packets_forward",
        "bytes_forward",
        "packets_reverse",
        "bytes_reverse",
        "tcp_flags_forward",
        "tcp_flags_reverse",
        "min_ttl",
        "max_ttl",
        "fragments",
        "indicator_set",
        "rules",
        "ruleset_version",
        "ja4",
        "ja3",
        "ja3s",
        "hassh",
        "hassh_server",
        "end_reason",
    ];
}
