//! Stage 1 (model): the jurisdiction classes, the verdicts of the XDP
//! classifier, the prefix sets, and the header walk through the
//! encapsulations (`walk.rs`) that mirrors `ebpf/furui.bpf.c`; the whole
//! classifier as a test-only reference model is `reference.rs` (`testkit`).
//!
//! Invariant kept: the model and the BPF program agree on every packet (a
//! differential property test checks it), so the daemon can recompute the
//! class of a captured frame without trusting anything but its prefix set.

pub mod abi;
pub mod meta;
#[cfg(any(test, feature = "testkit"))]
pub mod reference;
pub mod walk;

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use serde::Serialize;

/// Jurisdiction class of a packet. The numeric values are the BPF ABI
/// (`ebpf/furui_consts.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[repr(u32)]
pub enum Class {
    Domestic = abi::CLASS_DOMESTIC,
    Inbound = abi::CLASS_INBOUND,
    Outbound = abi::CLASS_OUTBOUND,
    Transit = abi::CLASS_TRANSIT,
    NonIp = abi::CLASS_NON_IP,
    Malformed = abi::CLASS_MALFORMED,
    /// A recognized encapsulation that is not opened, or cannot be opened
    /// (a later fragment of a tunnel packet, an undecoded payload).
    Undecided = abi::CLASS_UNDECIDED,
    /// Deeper than the walk follows (layers, labels, extension headers).
    TooDeep = abi::CLASS_TOO_DEEP,
}

/// Number of classes (`NUM_CLASSES` in furui_consts.h).
pub const NUM_CLASSES: usize = abi::NUM_CLASSES as usize;

impl Class {
    pub const ALL: [Class; NUM_CLASSES] = [
        Class::Domestic,
        Class::Inbound,
        Class::Outbound,
        Class::Transit,
        Class::NonIp,
        Class::Malformed,
        Class::Undecided,
        Class::TooDeep,
    ];

    /// Classes that are never redirected, whatever is authorized.
    pub const NEVER_CAPTURED: [Class; 5] = [
        Class::Domestic,
        Class::NonIp,
        Class::Malformed,
        Class::Undecided,
        Class::TooDeep,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Class::Domestic => "domestic",
            Class::Inbound => "inbound",
            Class::Outbound => "outbound",
            Class::Transit => "transit",
            Class::NonIp => "non_ip",
            Class::Malformed => "malformed",
            Class::Undecided => "undecided",
            Class::TooDeep => "too_deep",
        }
    }

    /// The class of a packet going the other way between the same two
    /// addresses.
    pub fn reversed(self) -> Class {
        match self {
            Class::Inbound => Class::Outbound,
            Class::Outbound => Class::Inbound,
            c => c,
        }
    }

    /// Inbound, outbound or transit: a class a measure may capture.
    pub fn is_cross_border(self) -> bool {
        self.measure().is_some()
    }

    /// The measure (transmission measure of the law) that may capture this
    /// class, if any.
    pub fn measure(self) -> Option<Measure> {
        match self {
            Class::Inbound => Some(Measure::Inbound),
            Class::Outbound => Some(Measure::Outbound),
            Class::Transit => Some(Measure::Transit),
            _ => None,
        }
    }
}

/// A transmission measure: the law authorizes each one separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    Transit,
    Inbound,
    Outbound,
}

impl Measure {
    pub const ALL: [Measure; 3] = [Measure::Transit, Measure::Inbound, Measure::Outbound];

    pub fn name(self) -> &'static str {
        self.class().name()
    }

    /// The measure named `name` (`transit`, `inbound`, `outbound`).
    pub fn from_name(name: &str) -> Option<Measure> {
        Measure::ALL.into_iter().find(|m| m.name() == name)
    }

    pub fn class(self) -> Class {
        match self {
            Measure::Transit => Class::Transit,
            Measure::Inbound => Class::Inbound,
            Measure::Outbound => Class::Outbound,
        }
    }
}

/// What the XDP program did with a packet (`ACTION_*` in furui_consts.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Action {
    Redirect = abi::ACTION_REDIRECT,
    Drop = abi::ACTION_DROP,
    Pass = abi::ACTION_PASS,
    NoSocket = abi::ACTION_NO_SOCKET,
}

impl Action {
    pub const ALL: [Action; 4] = [Action::Redirect, Action::Drop, Action::Pass, Action::NoSocket];

    pub fn name(self) -> &'static str {
        match self {
            Action::Redirect => "redirect",
            Action::Drop => "drop",
            Action::Pass => "pass",
            Action::NoSocket => "no_socket",
        }
    }
}

pub const NUM_ACTIONS: usize = abi::NUM_ACTIONS as usize;

/// XDP return codes (uapi `enum xdp_action`).
pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_REDIRECT: u32 = 4;

/// Which classes are authorized right now, indexed by `Class as usize`.
pub type Authorized = [bool; NUM_CLASSES];

/// Multiply-shift hashing for prefix keys. The sets are built from the
/// configuration, not from traffic, so there is nothing for an attacker to
/// flood; a lookup is one multiply.
#[derive(Default, Clone, Copy)]
pub struct PrefixHasher(u64);

impl Hasher for PrefixHasher {
    fn finish(&self) -> u64 {
        // A multiply leaves the low bits weak (masked prefixes end in
        // zeros) and hash tables index by the low bits: fold the well-mixed
        // high half down.
        self.0 ^ (self.0 >> 29)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    #[inline]
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }

    #[inline]
    fn write_u128(&mut self, v: u128) {
        let folded = (v as u64) ^ ((v >> 64) as u64).rotate_left(29);
        self.write_u64(folded);
    }

    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// An address as an integer of its family's width: IPv4 keys are `u32`,
/// so masking, hashing and comparing them costs a third of a `u128` key
/// (a lookup probes one set per prefix length in use).
trait LpmKey: Copy + Eq + std::hash::Hash + std::fmt::Debug {
    const BITS: u8;
    /// The first `len` bits (0..=BITS), the rest zero.
    fn masked(self, len: u8) -> Self;
}

impl LpmKey for u32 {
    const BITS: u8 = 32;
    #[inline]
    fn masked(self, len: u8) -> u32 {
        match len {
            0 => 0,
            l => self & (u32::MAX << (32 - l)),
        }
    }
}

impl LpmKey for u128 {
    const BITS: u8 = 128;
    #[inline]
    fn masked(self, len: u8) -> u128 {
        match len {
            0 => 0,
            l => self & (u128::MAX << (128 - l)),
        }
    }
}

/// Longest-prefix membership for one address family: one hash set of masked
/// keys per prefix length in use, probed from the longest length down.
#[derive(Debug, Clone)]
struct LpmTable<K> {
    /// (prefix length, masked addresses), sorted by length, longest first.
    by_len: Vec<(u8, HashSet<K, BuildHasherDefault<PrefixHasher>>)>,
}

impl<K> Default for LpmTable<K> {
    fn default() -> Self {
        LpmTable { by_len: Vec::new() }
    }
}

impl<K: LpmKey> LpmTable<K> {
    fn insert(&mut self, key: K, len: u8) {
        debug_assert!(len <= K::BITS);
        let k = key.masked(len);
        match self.by_len.binary_search_by(|(l, _)| len.cmp(l)) {
            Ok(i) => {
                self.by_len[i].1.insert(k);
            }
            Err(i) => {
                let mut s = HashSet::default();
                s.insert(k);
                self.by_len.insert(i, (len, s));
            }
        }
    }

    #[inline]
    fn longest(&self, key: K) -> Option<u8> {
        self.by_len
            .iter()
            .find(|(len, set)| set.contains(&key.masked(*len)))
            .map(|(len, _)| *len)
    }

    fn len(&self) -> usize {
        self.by_len.iter().map(|(_, s)| s.len()).sum()
    }
}

/// A set of IPv4 and IPv6 prefixes with longest-prefix lookup.
#[derive(Debug, Default, Clone)]
pub struct PrefixSet {
    v4: LpmTable<u32>,
    v6: LpmTable<u128>,
}

impl PrefixSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, net: IpNet) {
        match net {
            IpNet::V4(n) => self.v4.insert(u32::from(n.network()), n.prefix_len()),
            IpNet::V6(n) => self.v6.insert(u128::from(n.network()), n.prefix_len()),
        }
    }

    pub fn contains(&self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(a) => self.contains_v4(a),
            IpAddr::V6(a) => self.contains_v6(a),
        }
    }

    pub fn contains_v4(&self, a: Ipv4Addr) -> bool {
        self.v4.longest(u32::from(a)).is_some()
    }

    pub fn contains_v6(&self, a: Ipv6Addr) -> bool {
        self.v6.longest(u128::from(a)).is_some()
    }

    /// Number of distinct prefixes held.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl FromIterator<IpNet> for PrefixSet {
    fn from_iter<I: IntoIterator<Item = IpNet>>(iter: I) -> Self {
        let mut s = PrefixSet::new();
        for n in iter {
            s.insert(n);
        }
        s
    }
}

/// Class from the domestic status of source and destination.
pub fn class_of(src_domestic: bool, dst_domestic: bool) -> Class {
    match (src_domestic, dst_domestic) {
        (true, true) => Class::Domestic,
        (false, true) => Class::Inbound,
        (true, false) => Class::Outbound,
        (false, false) => Class::Transit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(nets: &[&str]) -> PrefixSet {
        nets.iter().map(|n| n.parse::<IpNet>().unwrap()).collect()
    }

    #[test]
    fn longest_prefix_membership_v4_and_v6() {
        let s = set(&["10.0.0.0/8", "192.0.2.128/25", "2001:db8::/32", "0.0.0.0/0"]);
        assert!(s.contains("10.1.2.3".parse().unwrap()));
        assert!(s.contains("8.8.8.8".parse().unwrap()), "default route matches all v4");
        assert!(s.contains("2001:db8::1".parse().unwrap()));
        assert!(!s.contains("2001:db9::1".parse().unwrap()));
        let s = set(&["192.0.2.128/25", "::/0"]);
        assert!(s.contains("192.0.2.200".parse().unwrap()));
        assert!(!s.contains("192.0.2.1".parse().unwrap()));
        assert!(s.contains("fe80::1".parse().unwrap()));
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn host_bits_in_a_prefix_are_ignored() {
        let s = set(&["10.1.2.3/8"]);
        assert!(s.contains("10.200.0.1".parse().unwrap()));
    }

    proptest::proptest! {
        /// Membership equals the naive answer: some prefix of the set
        /// holds the address (IPv4 keys are u32, IPv6 u128; every length
        /// 0..=width, host bits set in the prefixes).
        #[test]
        fn membership_is_any_prefix_holding_the_address(
            v4 in proptest::collection::vec((proptest::prelude::any::<u32>(), 0u8..=32), 0..24),
            v6 in proptest::collection::vec((proptest::prelude::any::<u128>(), 0u8..=128), 0..24),
            probes4 in proptest::collection::vec(proptest::prelude::any::<u32>(), 1..16),
            probes6 in proptest::collection::vec(proptest::prelude::any::<u128>(), 1..16),
        ) {
            let mut s = PrefixSet::new();
            for (a, l) in &v4 {
                s.insert(IpNet::V4(ipnet::Ipv4Net::new(Ipv4Addr::from(*a), *l).unwrap()));
            }
            for (a, l) in &v6 {
                s.insert(IpNet::V6(ipnet::Ipv6Net::new(Ipv6Addr::from(*a), *l).unwrap()));
            }
            // Probe near the prefixes too, not only at random.
            let near4 = v4.iter().map(|(a, l)| a ^ (1u32.checked_shl(u32::from(32 - l)).unwrap_or(0) >> 1));
            for p in probes4.iter().copied().chain(v4.iter().map(|(a, _)| *a)).chain(near4) {
                let naive = v4.iter().any(|(a, l)| *l == 0 || (a ^ p) >> (32 - u32::from(*l)) == 0);
                proptest::prop_assert_eq!(s.contains_v4(Ipv4Addr::from(p)), naive);
            }
            for p in probes6.iter().copied().chain(v6.iter().map(|(a, _)| *a)) {
                let naive = v6.iter().any(|(a, l)| *l == 0 || (a ^ p) >> (128 - u32::from(*l)) == 0);
                proptest::prop_assert_eq!(s.contains_v6(Ipv6Addr::from(p)), naive);
            }
        }
    }

    #[test]
    fn direction_table() {
        assert_eq!(class_of(true, true), Class::Domestic);
        assert_eq!(class_of(false, true), Class::Inbound);
        assert_eq!(class_of(true, false), Class::Outbound);
        assert_eq!(class_of(false, false), Class::Transit);
    }
}
