//! Stage 1 (model): the header walk of the XDP classifier
//! (`ebpf/furui_walk.h`) — Ethernet/VLAN, MPLS, IP and the opened
//! encapsulations down to the innermost IP header.
//!
//! Invariant kept: the same checks in the same order as the BPF walk, so the
//! class (and every fail-safe outcome: undecided, too deep, malformed) is
//! the same on both sides; a differential property test compares them.

use serde::Serialize;

use super::{abi, Class};

/// An encapsulation the walk recognizes. The numeric values are the BPF ABI
/// (`ENCAP_*` in `ebpf/furui_consts.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum Encap {
    Mpls = abi::ENCAP_MPLS as u8,
    Gre = abi::ENCAP_GRE as u8,
    Erspan = abi::ENCAP_ERSPAN as u8,
    Vxlan = abi::ENCAP_VXLAN as u8,
    Geneve = abi::ENCAP_GENEVE as u8,
    Gtpu = abi::ENCAP_GTPU as u8,
    Ipip = abi::ENCAP_IPIP as u8,
    MplsUdp = abi::ENCAP_MPLS_UDP as u8,
}

pub const NUM_ENCAPS: usize = abi::NUM_ENCAPS as usize;

impl Encap {
    pub const ALL: [Encap; NUM_ENCAPS] = [
        Encap::Mpls,
        Encap::Gre,
        Encap::Erspan,
        Encap::Vxlan,
        Encap::Geneve,
        Encap::Gtpu,
        Encap::Ipip,
        Encap::MplsUdp,
    ];

    /// The metric label, record value and config key.
    pub fn name(self) -> &'static str {
        match self {
            Encap::Mpls => "mpls",
            Encap::Gre => "gre",
            Encap::Erspan => "erspan",
            Encap::Vxlan => "vxlan",
            Encap::Geneve => "geneve",
            Encap::Gtpu => "gtpu",
            Encap::Ipip => "ipip",
            Encap::MplsUdp => "mpls_udp",
        }
    }

    pub fn from_name(s: &str) -> Option<Encap> {
        Encap::ALL.into_iter().find(|e| e.name() == s)
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// How the walk left an encapsulation (`OUTCOME_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Outcome {
    Opened = abi::OUTCOME_OPENED as u8,
    NotOpened = abi::OUTCOME_NOT_OPENED as u8,
    TooDeep = abi::OUTCOME_TOO_DEEP as u8,
    Malformed = abi::OUTCOME_MALFORMED as u8,
    Outer = abi::OUTCOME_OUTER as u8,
}

pub const NUM_OUTCOMES: usize = abi::NUM_OUTCOMES as usize;

impl Outcome {
    pub const ALL: [Outcome; NUM_OUTCOMES] = [
        Outcome::Opened,
        Outcome::NotOpened,
        Outcome::TooDeep,
        Outcome::Malformed,
        Outcome::Outer,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Opened => "opened",
            Outcome::NotOpened => "not_opened",
            Outcome::TooDeep => "too_deep",
            Outcome::Malformed => "malformed",
            Outcome::Outer => "outer",
        }
    }
}

/// What follows an MPLS bottom-of-stack label (`MPLS_PW_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum MplsPw {
    /// First nibble 4 or 6 is IP; anything else is undecided.
    #[default]
    None = abi::MPLS_PW_NONE as u8,
    /// Always an Ethernet pseudowire without control word.
    Ethernet = abi::MPLS_PW_ETH as u8,
    /// Nibble 0: RFC 4385 control word, then Ethernet; 4/6: IP.
    EthernetControlWord = abi::MPLS_PW_ETH_CW as u8,
}

/// Hard bounds of the walk (`ebpf/furui_consts.h`); the config may only
/// lower the first two.
pub const ENCAP_MAX_LAYERS: u8 = abi::ENCAP_MAX_LAYERS as u8;
pub const MPLS_MAX_LABELS: u8 = abi::MPLS_MAX_LABELS as u8;
pub const IPV6_EXT_MAX: usize = abi::IPV6_EXT_MAX as usize;
pub const GTPU_EXT_MAX: usize = abi::GTPU_EXT_MAX as usize;
pub const WALK_MAX_OFFSET: usize = abi::WALK_MAX_OFFSET as usize;
pub const WALK_MAX_STEPS: usize = abi::WALK_MAX_STEPS as usize;

/// Which encapsulations are opened and where they are recognized: the
/// Rust side of `struct furui_decap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecapConfig {
    /// Bit `1 << Encap` set: decapsulate.
    pub open: u32,
    /// Bit set (and not open): classify on the outer header.
    pub outer: u32,
    pub vxlan_port: u16,
    pub geneve_port: u16,
    pub gtpu_port: u16,
    pub mpls_udp_port: u16,
    pub max_layers: u8,
    pub mpls_max_labels: u8,
    pub mpls_pw: MplsPw,
}

impl Default for DecapConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl DecapConfig {
    /// Every encapsulation opened on its standard port, 3 layers, 4 labels:
    /// opening is the safe default, the cut is then made on the inner header.
    pub const DEFAULT: DecapConfig = DecapConfig {
        open: (1 << NUM_ENCAPS) - 1,
        outer: 0,
        vxlan_port: 4789,
        geneve_port: 6081,
        gtpu_port: 2152,
        mpls_udp_port: 6635,
        max_layers: 3,
        mpls_max_labels: 4,
        mpls_pw: MplsPw::None,
    };

    pub fn is_open(&self, e: Encap) -> bool {
        self.open & e.bit() != 0
    }

    pub fn set_open(&mut self, e: Encap, open: bool) {
        if open {
            self.open |= e.bit();
        } else {
            self.open &= !e.bit();
        }
    }

    pub fn set_outer(&mut self, e: Encap, outer: bool) {
        if outer {
            self.outer |= e.bit();
        } else {
            self.outer &= !e.bit();
        }
    }
}

/// How the walk ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The class follows from the addresses of the IP header at this
    /// offset (the innermost one, or the outer one where configured).
    ByAddress { ip_offset: usize, v6: bool },
    /// The class is fixed: non_ip, malformed, undecided, too_deep.
    Fixed(Class),
}

/// The opened encapsulation layers, outermost first, 4 bits each
/// (`Encap as u16 + 1`; 0 ends the chain) — the layout of the BPF walk's
/// `chain`. Mechanical: which kinds of header were opened, nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EncapChain(u16);

impl EncapChain {
    pub const NONE: EncapChain = EncapChain(0);

    fn push(&mut self, depth: u8, e: Encap) {
        if depth < ENCAP_MAX_LAYERS {
            self.0 |= (e as u16 + 1) << (4 * depth);
        }
    }

    /// The layers, outermost first.
    pub fn iter(self) -> impl Iterator<Item = Encap> {
        (0..ENCAP_MAX_LAYERS).map_while(move |i| {
            let n = (self.0 >> (4 * i)) & 0xf;
            (n != 0).then(|| Encap::ALL[usize::from(n - 1)])
        })
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The BPF layout's bits.
    pub fn bits(self) -> u16 {
        self.0
    }

    /// From the BPF layout: None unless every layer is a known
    /// encapsulation and no layer follows an empty one.
    pub fn from_bits(bits: u16) -> Option<EncapChain> {
        let mut ended = false;
        for i in 0..4 {
            let n = (bits >> (4 * i)) & 0xf;
            if n == 0 {
                ended = true;
            } else if ended || usize::from(n) > NUM_ENCAPS {
                return None;
            }
        }
        Some(EncapChain(bits))
    }

    pub fn depth(self) -> usize {
        self.iter().count()
    }

    /// The innermost opened encapsulation.
    pub fn innermost(self) -> Option<Encap> {
        self.iter().last()
    }

    /// The record's `encap` value: the layers' names, outermost first,
    /// joined by '/' ("" for a plain frame), e.g. "ipip/vxlan".
    pub fn name(self) -> String {
        self.iter().map(Encap::name).collect::<Vec<_>>().join("/")
    }
}

/// What the walk found. Holds offsets and mechanical fields only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Walk {
    pub end: End,
    /// Opened layers, outermost first.
    pub chain: EncapChain,
    /// The innermost tunnel id and the encapsulation it belongs to:
    /// VXLAN/Geneve VNI, GTP-U TEID, ERSPAN session, GRE key, MPLS bottom
    /// label.
    pub tunnel: Option<(Encap, u32)>,
    /// The encapsulation the walk stopped at, and why.
    pub stop: Option<(Encap, Outcome)>,
}

impl Walk {
    /// The opened encapsulations, outermost first.
    pub fn chain(&self) -> impl Iterator<Item = Encap> {
        self.chain.iter()
    }

    pub fn depth(&self) -> usize {
        self.chain.depth()
    }

    /// The innermost opened encapsulation.
    pub fn innermost(&self) -> Option<Encap> {
        self.chain.innermost()
    }

    /// The innermost tunnel id, whatever encapsulation it belongs to.
    pub fn tunnel_id(&self) -> Option<u32> {
        self.tunnel.map(|(_, id)| id)
    }

    /// Every (encapsulation, outcome) this frame counts once under.
    pub fn outcomes(&self) -> impl Iterator<Item = (Encap, Outcome)> + '_ {
        self.chain().map(|e| (e, Outcome::Opened)).chain(self.stop)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Next {
    Done,
    Eth,
    Mpls,
    Ipv4,
    Ipv6,
    Gre,
    Udp,
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_MPLS: u16 = 0x8847;
const ETHERTYPE_MPLS_MC: u16 = 0x8848;
const ETHERTYPE_TEB: u16 = 0x6558;
const ETHERTYPE_ERSPAN_2: u16 = 0x88be;
const ETHERTYPE_ERSPAN_3: u16 = 0x22eb;
const VLAN_MAX_DEPTH: usize = 2;

const GRE_C: u16 = 0x8000;
const GRE_K: u16 = 0x2000;
const GRE_S: u16 = 0x1000;
const GRE_MUST_BE_ZERO: u16 = 0x4000 | 0x0800 | 0x0700;
const GRE_VERSION: u16 = 0x0007;

struct State<'a> {
    f: &'a [u8],
    cfg: &'a DecapConfig,
    next: Next,
    off: usize,
    lim: usize,
    pending: Encap,
    ip: Option<(usize, bool)>,
    depth: u8,
    chain: EncapChain,
    tunnel: Option<(Encap, u32)>,
    end: End,
    stop: Option<(Encap, Outcome)>,
}

fn rd16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn rd32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl State<'_> {
    fn have(&self, at: usize, n: usize) -> bool {
        at + n <= self.lim
    }

    fn done(&mut self, end: End) {
        self.end = end;
        self.next = Next::Done;
    }

    fn fixed(&mut self, c: Class) {
        self.done(End::Fixed(c));
    }

    fn by_address(&mut self) {
        let (ip_offset, v6) = self.ip.unwrap_or((0, false));
        self.done(End::ByAddress { ip_offset, v6 });
    }

    fn stop(&mut self, c: Option<Class>, e: Encap, o: Outcome) {
        self.stop = Some((e, o));
        match c {
            Some(c) => self.fixed(c),
            None => self.by_address(),
        }
    }

    fn may_open(&mut self, e: Encap) -> bool {
        if !self.cfg.is_open(e) {
            if self.cfg.outer & e.bit() != 0 && self.ip.is_some() {
                self.stop(None, e, Outcome::Outer);
            } else {
                self.stop(Some(Class::Undecided), e, Outcome::NotOpened);
            }
            return false;
        }
        if self.depth >= self.cfg.max_layers || self.depth >= ENCAP_MAX_LAYERS {
            self.stop(Some(Class::TooDeep), e, Outcome::TooDeep);
            return false;
        }
        true
    }

    fn opened(&mut self, e: Encap, id: Option<u32>) {
        self.chain.push(self.depth, e);
        self.depth += 1;
        if let Some(id) = id {
            self.tunnel = Some((e, id));
        }
    }

    fn eth(&mut self) {
        let mut off = self.off;
        if !self.have(off, 14) {
            return self.fixed(Class::Malformed);
        }
        let mut proto = rd16(self.f, off + 12);
        off += 14;
        for _ in 0..VLAN_MAX_DEPTH {
            if proto != ETHERTYPE_VLAN && proto != ETHERTYPE_QINQ {
                break;
            }
            if !self.have(off, 4) {
                return self.fixed(Class::Malformed);
            }
            proto = rd16(self.f, off + 2);
            off += 4;
        }
        self.off = off;
        self.after_ethertype(proto);
    }

    /// What an ethertype leads to: IP, an MPLS stack, or nothing we look
    /// into (ARP, LLDP, a third VLAN tag, ...).
    fn after_ethertype(&mut self, proto: u16) {
        match proto {
            ETHERTYPE_IPV4 => self.next = Next::Ipv4,
            ETHERTYPE_IPV6 => self.next = Next::Ipv6,
            ETHERTYPE_MPLS | ETHERTYPE_MPLS_MC => {
                if self.may_open(Encap::Mpls) {
                    self.pending = Encap::Mpls;
                    self.next = Next::Mpls;
                }
            }
            _ => self.fixed(Class::NonIp),
        }
    }

    fn mpls(&mut self) {
        let e = self.pending;
        let mut off = self.off;
        let mut label = 0;
        let mut bos = false;
        for i in 0..MPLS_MAX_LABELS {
            if i >= self.cfg.mpls_max_labels {
                break;
            }
            if !self.have(off, 4) {
                return self.stop(Some(Class::Malformed), e, Outcome::Malformed);
            }
            label = rd32(self.f, off) >> 12;
            bos = self.f[off + 2] & 1 != 0;
            off += 4;
            if bos {
                break;
            }
        }
        if !bos {
            return self.stop(Some(Class::TooDeep), e, Outcome::TooDeep);
        }
        if !self.have(off, 1) {
            return self.stop(Some(Class::Malformed), e, Outcome::Malformed);
        }
        let nibble = self.f[off] >> 4;
        self.next = match (self.cfg.mpls_pw, nibble) {
            (MplsPw::Ethernet, _) => Next::Eth,
            (_, 4) => Next::Ipv4,
            (_, 6) => Next::Ipv6,
            (MplsPw::EthernetControlWord, 0) => {
                if !self.have(off, 4) {
                    return self.stop(Some(Class::Malformed), e, Outcome::Malformed);
                }
                off += 4;
                Next::Eth
            }
            _ => return self.stop(Some(Class::Undecided), e, Outcome::NotOpened),
        };
        self.opened(e, Some(label));
        self.off = off;
    }

    fn after_ip(&mut self, proto: u8, l4: usize, later_fragment: bool) {
        match proto {
            4 | 41 => {
                if !self.may_open(Encap::Ipip) {
                    return;
                }
                if later_fragment {
                    return self.stop(Some(Class::Undecided), Encap::Ipip, Outcome::NotOpened);
                }
                self.opened(Encap::Ipip, None);
                self.off = l4;
                self.next = if proto == 4 { Next::Ipv4 } else { Next::Ipv6 };
            }
            47 => {
                if later_fragment {
                    if self.may_open(Encap::Gre) {
                        self.stop(Some(Class::Undecided), Encap::Gre, Outcome::NotOpened);
                    }
                    return;
                }
                self.off = l4;
                self.next = Next::Gre;
            }
            // A later UDP fragment has no port: whether it carries a tunnel
            // (and whose traffic is inside) is said in another fragment.
            17 if later_fragment => self.fixed(Class::Undecided),
            17 => {
                self.off = l4;
                self.next = Next::Udp;
            }
            _ => self.by_address(),
        }
    }

    fn ipv4(&mut self) {
        let off = self.off;
        if !self.have(off, 20) {
            return self.fixed(Class::Malformed);
        }
        let vihl = self.f[off];
        if vihl >> 4 != 4 || vihl & 0x0f < 5 {
            return self.fixed(Class::Malformed);
        }
        let hdr_len = usize::from(vihl & 0x0f) * 4;
        let tot_len = usize::from(rd16(self.f, off + 2));
        if off + hdr_len > self.lim || tot_len < hdr_len || off + tot_len > self.lim {
            return self.fixed(Class::Malformed);
        }
        self.ip = Some((off, false));
        self.lim = off + tot_len;
        let frag = rd16(self.f, off + 6) & 0x1fff;
        self.after_ip(self.f[off + 9], off + hdr_len, frag != 0);
    }

    fn ipv6(&mut self) {
        let off = self.off;
        if !self.have(off, 40) {
            return self.fixed(Class::Malformed);
        }
        if self.f[off] >> 4 != 6 {
            return self.fixed(Class::Malformed);
        }
        let len = usize::from(rd16(self.f, off + 4));
        if off + 40 + len > self.lim {
            return self.fixed(Class::Malformed);
        }
        self.ip = Some((off, true));
        self.lim = off + 40 + len;
        let is_ext = |nh: u8| matches!(nh, 0 | 43 | 60 | 44 | 51);
        let mut nh = self.f[off + 6];
        let mut pos = off + 40;
        let mut later_fragment = false;
        for _ in 0..IPV6_EXT_MAX {
            if !is_ext(nh) {
                break;
            }
            if pos > WALK_MAX_OFFSET {
                return self.fixed(Class::TooDeep);
            }
            if !self.have(pos, 8) {
                return self.fixed(Class::Malformed);
            }
            let (next, ext_len) = (self.f[pos], usize::from(self.f[pos + 1]));
            match nh {
                44 => {
                    later_fragment = rd16(self.f, pos + 2) & 0xfff8 != 0;
                    nh = next;
                    pos += 8;
                    if later_fragment {
                        break;
                    }
                }
                51 => {
                    nh = next;
                    pos += (ext_len + 2) * 4;
                }
                _ => {
                    nh = next;
                    pos += (ext_len + 1) * 8;
                }
            }
        }
        if !later_fragment && is_ext(nh) {
            return self.fixed(Class::TooDeep);
        }
        self.after_ip(nh, pos, later_fragment);
    }

    fn gre(&mut self) {
        let mut off = self.off;
        if !self.have(off, 4) {
            return self.stop(Some(Class::Malformed), Encap::Gre, Outcome::Malformed);
        }
        let flags = rd16(self.f, off);
        let proto = rd16(self.f, off + 2);
        let e = if proto == ETHERTYPE_ERSPAN_2 || proto == ETHERTYPE_ERSPAN_3 {
            Encap::Erspan
        } else {
            Encap::Gre
        };
        let malformed = |s: &mut Self| s.stop(Some(Class::Malformed), e, Outcome::Malformed);
        if !self.may_open(e) {
            return;
        }
        if flags & GRE_MUST_BE_ZERO != 0 {
            return malformed(self);
        }
        if flags & GRE_VERSION != 0 {
            return self.stop(Some(Class::Undecided), e, Outcome::NotOpened);
        }
        let mut hl = 4;
        if flags & GRE_C != 0 {
            hl += 4;
        }
        let mut key = None;
        if flags & GRE_K != 0 {
            if !self.have(off + hl, 4) {
                return malformed(self);
            }
            key = Some(rd32(self.f, off + hl));
            hl += 4;
        }
        if flags & GRE_S != 0 {
            hl += 4;
        }
        if !self.have(off, hl) {
            return malformed(self);
        }
        off += hl;
        match proto {
            ETHERTYPE_IPV4 | ETHERTYPE_IPV6 | ETHERTYPE_TEB => {
                self.opened(Encap::Gre, key);
                self.next = match proto {
                    ETHERTYPE_IPV4 => Next::Ipv4,
                    ETHERTYPE_IPV6 => Next::Ipv6,
                    _ => Next::Eth,
                };
                self.off = off;
            }
            ETHERTYPE_MPLS | ETHERTYPE_MPLS_MC => {
                self.opened(Encap::Gre, key);
                if self.may_open(Encap::Mpls) {
                    self.pending = Encap::Mpls;
                    self.next = Next::Mpls;
                    self.off = off;
                }
            }
            ETHERTYPE_ERSPAN_2 => {
                let mut session = 0;
                if flags & GRE_S != 0 {
                    if !self.have(off, 8) || self.f[off] >> 4 != 1 {
                        return malformed(self);
                    }
                    session = u32::from(rd16(self.f, off + 2) & 0x3ff);
                    off += 8;
                }
                // Type I carries no session id.
                self.opened(Encap::Erspan, (flags & GRE_S != 0).then_some(session));
                self.next = Next::Eth;
                self.off = off;
            }
            ETHERTYPE_ERSPAN_3 => {
                if !self.have(off, 12) || self.f[off] >> 4 != 2 {
                    return malformed(self);
                }
                if (self.f[off + 10] >> 2) & 0x1f != 0 {
                    return self.stop(Some(Class::Undecided), e, Outcome::NotOpened);
                }
                let session = u32::from(rd16(self.f, off + 2) & 0x3ff);
                let platform = self.f[off + 11] & 1 != 0;
                off += 12;
                if platform {
                    if !self.have(off, 8) {
                        return malformed(self);
                    }
                    off += 8;
                }
                self.opened(Encap::Erspan, Some(session));
                self.next = Next::Eth;
                self.off = off;
            }
            _ => self.stop(Some(Class::Undecided), e, Outcome::NotOpened),
        }
    }

    /// GTP-U header length: Ok(len), Err(true) too deep, Err(false) malformed.
    fn gtpu_header_len(&self, at: usize) -> Result<usize, bool> {
        let f = self.f;
        if !self.have(at, 8) {
            return Err(false);
        }
        let flags = f[at];
        if flags >> 5 != 1 || flags & 0x10 == 0 {
            return Err(false);
        }
        if flags & 0x07 == 0 {
            return Ok(8);
        }
        if !self.have(at, 12) {
            return Err(false);
        }
        let mut next = f[at + 11];
        let mut hl = 12;
        if flags & 0x04 == 0 {
            return Ok(hl);
        }
        for _ in 0..GTPU_EXT_MAX {
            if next == 0 {
                return Ok(hl);
            }
            if hl > 64 {
                return Err(true);
            }
            if !self.have(at + hl, 1) {
                return Err(false);
            }
            let len = usize::from(f[at + hl]) * 4;
            if len == 0 || len > 64 {
                return Err(false);
            }
            if !self.have(at + hl + len - 1, 1) {
                return Err(false);
            }
            next = f[at + hl + len - 1];
            hl += len;
        }
        if next == 0 {
            Ok(hl)
        } else {
            Err(true)
        }
    }

    fn udp(&mut self) {
        let mut off = self.off;
        if !self.have(off, 8) {
            return self.fixed(Class::Malformed);
        }
        let dport = rd16(self.f, off + 2);
        off += 8;
        let cfg = *self.cfg;
        if dport == cfg.vxlan_port {
            if !self.may_open(Encap::Vxlan) {
                return;
            }
            if !self.have(off, 8) || self.f[off] & 0x08 == 0 {
                return self.stop(Some(Class::Malformed), Encap::Vxlan, Outcome::Malformed);
            }
            self.opened(Encap::Vxlan, Some(rd32(self.f, off + 4) >> 8));
            self.off = off + 8;
            self.next = Next::Eth;
        } else if dport == cfg.geneve_port {
            if !self.may_open(Encap::Geneve) {
                return;
            }
            if !self.have(off, 8) || self.f[off] >> 6 != 0 {
                return self.stop(Some(Class::Malformed), Encap::Geneve, Outcome::Malformed);
            }
            let optlen = usize::from(self.f[off] & 0x3f) * 4;
            if !self.have(off, 8 + optlen) {
                return self.stop(Some(Class::Malformed), Encap::Geneve, Outcome::Malformed);
            }
            self.next = match rd16(self.f, off + 2) {
                ETHERTYPE_TEB => Next::Eth,
                ETHERTYPE_IPV4 => Next::Ipv4,
                ETHERTYPE_IPV6 => Next::Ipv6,
                _ => return self.stop(Some(Class::Undecided), Encap::Geneve, Outcome::NotOpened),
            };
            self.opened(Encap::Geneve, Some(rd32(self.f, off + 4) >> 8));
            self.off = off + 8 + optlen;
        } else if dport == cfg.gtpu_port {
            if !self.may_open(Encap::Gtpu) {
                return;
            }
            let hl = match self.gtpu_header_len(off) {
                Ok(hl) => hl,
                Err(true) => return self.stop(Some(Class::TooDeep), Encap::Gtpu, Outcome::TooDeep),
                Err(false) => return self.stop(Some(Class::Malformed), Encap::Gtpu, Outcome::Malformed),
            };
            self.opened(Encap::Gtpu, Some(rd32(self.f, off + 4)));
            if self.f[off + 1] != 0xff {
                return self.fixed(Class::NonIp);
            }
            off += hl;
            if off > WALK_MAX_OFFSET {
                return self.fixed(Class::TooDeep);
            }
            if !self.have(off, 1) {
                return self.fixed(Class::Malformed);
            }
            self.off = off;
            self.next = match self.f[off] >> 4 {
                4 => Next::Ipv4,
                6 => Next::Ipv6,
                _ => return self.fixed(Class::NonIp),
            };
        } else if dport == cfg.mpls_udp_port {
            if self.may_open(Encap::MplsUdp) {
                self.pending = Encap::MplsUdp;
                self.off = off;
                self.next = Next::Mpls;
            }
        } else {
            self.by_address();
        }
    }
}

/// Where a walk starts: at an Ethernet header (a live frame), or after a
/// link layer that named its payload by ethertype (offline input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Ethernet,
    /// The payload's ethertype; anything but IPv4, IPv6 or MPLS is non-IP.
    Ethertype(u16),
}

/// Walks `frame` exactly as the XDP program does.
pub fn walk(frame: &[u8], cfg: &DecapConfig) -> Walk {
    walk_at(frame, 0, Start::Ethernet, cfg)
}

/// Walks `frame` from byte `at`, where a header of kind `start` begins.
pub fn walk_at(frame: &[u8], at: usize, start: Start, cfg: &DecapConfig) -> Walk {
    let mut s = State {
        f: frame,
        cfg,
        next: Next::Eth,
        off: at,
        lim: frame.len(),
        pending: Encap::Mpls,
        ip: None,
        depth: 0,
        chain: EncapChain::NONE,
        tunnel: None,
        end: End::Fixed(Class::TooDeep),
        stop: None,
    };
    // Unwritten settings (validation never lets max_layers be 0): the
    // tunnel ports are unknown, so no frame can be judged.
    if cfg.max_layers == 0 {
        s.fixed(Class::Undecided);
    } else if let Start::Ethertype(t) = start {
        s.after_ethertype(t);
    }
    for _ in 0..WALK_MAX_STEPS {
        if s.next != Next::Done && s.off > WALK_MAX_OFFSET {
            s.fixed(Class::TooDeep);
        }
        match s.next {
            Next::Done => break,
            Next::Eth => s.eth(),
            Next::Mpls => s.mpls(),
            Next::Ipv4 => s.ipv4(),
            Next::Ipv6 => s.ipv6(),
            Next::Gre => s.gre(),
            Next::Udp => s.udp(),
        }
    }
    if s.next != Next::Done {
        s.end = End::Fixed(Class::TooDeep);
    }
    Walk {
        end: s.end,
        chain: s.chain,
        tunnel: s.tunnel,
        stop: s.stop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_lists_layers_outermost_first() {
        let mut c = EncapChain::NONE;
        assert!(c.is_empty());
        assert_eq!(c.name(), "");
        c.push(0, Encap::Ipip);
        c.push(1, Encap::Vxlan);
        c.push(2, Encap::MplsUdp);
        c.push(3, Encap::Mpls);
        c.push(4, Encap::Gre); // past the hard bound: not recorded
        assert_eq!(
            c.iter().collect::<Vec<_>>(),
            [Encap::Ipip, Encap::Vxlan, Encap::MplsUdp, Encap::Mpls]
        );
        assert_eq!(c.depth(), 4);
        assert_eq!(c.innermost(), Some(Encap::Mpls));
        assert_eq!(c.name(), "ipip/vxlan/mpls_udp/mpls");
    }
}
