//! Stage 3: zero-copy, bounds-checked header views over a received frame
//! (smoltcp style: `new_checked` validates once; accessors cannot panic).
//!
//! Invariant kept: parsing never allocates and never copies packet bytes;
//! what leaves this module is `Headers`, a set of mechanical fields.
//! A `ParseError` names what was wrong, never what the bytes were.

pub mod ethernet;
pub mod headers;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod link;
pub mod mpls;
pub mod tcp;
pub mod udp;

pub use headers::{
    parse_ethernet, parse_frame, parse_frame_into, parse_ip, parse_with_meta, parse_with_meta_into, Fragment, Headers,
    L4,
};
pub use link::{parse_link, parse_link_into, parse_link_with, LinkType};

/// Why a frame could not be parsed. `kind()` is the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("ethernet header truncated")]
    TruncatedEthernet,
    #[error("VLAN tag truncated")]
    TruncatedVlan,
    #[error("IPv4 header truncated")]
    TruncatedIpv4,
    #[error("IPv4 version field is not 4")]
    BadIpv4Version,
    #[error("IPv4 header length below 20 or beyond the frame")]
    BadIpv4HeaderLength,
    #[error("IPv4 total length inconsistent with header or frame")]
    BadIpv4TotalLength,
    #[error("IPv6 header truncated")]
    TruncatedIpv6,
    #[error("IPv6 version field is not 6")]
    BadIpv6Version,
    #[error("IPv6 payload length beyond the frame")]
    BadIpv6PayloadLength,
    #[error("IPv6 extension header truncated")]
    TruncatedExtensionHeader,
    #[error("too many IPv6 extension headers")]
    TooManyExtensionHeaders,
    #[error("TCP header truncated")]
    TruncatedTcp,
    #[error("TCP data offset invalid")]
    BadTcpDataOffset,
    #[error("UDP header truncated")]
    TruncatedUdp,
    #[error("UDP length field invalid")]
    BadUdpLength,
    #[error("ICMP header truncated")]
    TruncatedIcmp,
    #[error("link-layer header truncated")]
    TruncatedLinkHeader,
    #[error("encapsulation header truncated or invalid")]
    BadEncapsulation,
    #[error("a header inside an opened encapsulation is truncated or invalid")]
    BadInnerHeader,
    #[error("encapsulation recognized but not opened by [decap]")]
    EncapsulationNotOpened,
    #[error("deeper than the classifier walks (encapsulation layers, MPLS labels, IPv6 extension headers)")]
    TooDeep,
    #[error("a later fragment of UDP, GRE or IP-in-IP: whether it carries a tunnel is said in another fragment")]
    UndecidedFragment,
}

impl ParseError {
    pub const ALL: [ParseError; 22] = [
        ParseError::TruncatedEthernet,
        ParseError::TruncatedVlan,
        ParseError::TruncatedIpv4,
        ParseError::BadIpv4Version,
        ParseError::BadIpv4HeaderLength,
        ParseError::BadIpv4TotalLength,
        ParseError::TruncatedIpv6,
        ParseError::BadIpv6Version,
        ParseError::BadIpv6PayloadLength,
        ParseError::TruncatedExtensionHeader,
        ParseError::TooManyExtensionHeaders,
        ParseError::TruncatedTcp,
        ParseError::BadTcpDataOffset,
        ParseError::TruncatedUdp,
        ParseError::BadUdpLength,
        ParseError::TruncatedIcmp,
        ParseError::TruncatedLinkHeader,
        ParseError::BadEncapsulation,
        ParseError::BadInnerHeader,
        ParseError::EncapsulationNotOpened,
        ParseError::TooDeep,
        ParseError::UndecidedFragment,
    ];

    /// Bounded label for `furui_parse_errors_total{kind}`.
    pub fn kind(self) -> &'static str {
        match self {
            ParseError::TruncatedEthernet => "truncated_ethernet",
            ParseError::TruncatedVlan => "truncated_vlan",
            ParseError::TruncatedIpv4 => "truncated_ipv4",
            ParseError::BadIpv4Version => "bad_ipv4_version",
            ParseError::BadIpv4HeaderLength => "bad_ipv4_header_length",
            ParseError::BadIpv4TotalLength => "bad_ipv4_total_length",
            ParseError::TruncatedIpv6 => "truncated_ipv6",
            ParseError::BadIpv6Version => "bad_ipv6_version",
            ParseError::BadIpv6PayloadLength => "bad_ipv6_payload_length",
            ParseError::TruncatedExtensionHeader => "truncated_extension_header",
            ParseError::TooManyExtensionHeaders => "too_many_extension_headers",
            ParseError::TruncatedTcp => "truncated_tcp",
            ParseError::BadTcpDataOffset => "bad_tcp_data_offset",
            ParseError::TruncatedUdp => "truncated_udp",
            ParseError::BadUdpLength => "bad_udp_length",
            ParseError::TruncatedIcmp => "truncated_icmp",
            ParseError::TruncatedLinkHeader => "truncated_link_header",
            ParseError::BadEncapsulation => "bad_encapsulation",
            ParseError::BadInnerHeader => "bad_inner_header",
            ParseError::EncapsulationNotOpened => "encapsulation_not_opened",
            ParseError::TooDeep => "too_deep",
            ParseError::UndecidedFragment => "undecided_fragment",
        }
    }

    pub fn index(self) -> usize {
        Self::ALL.iter().position(|e| *e == self).unwrap_or(0)
    }
}

pub type Result<T> = core::result::Result<T, ParseError>;

#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
