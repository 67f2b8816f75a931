//! Test and demo traffic: builds well-formed Ethernet frames (and named
//! malformed ones) for the generator, the benches and the tests. Not part of
//! the capture data path.

use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp { src_port: u16, dst_port: u16 },
    Tcp { src_port: u16, dst_port: u16, flags: u8 },
    Icmp { icmp_type: u8, code: u8 },
}

/// A frame to build: addresses, VLAN stack, transport, payload.
#[derive(Debug, Clone)]
pub struct FrameSpec {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub vlans: Vec<u16>,
    pub transport: Transport,
    pub payload: Vec<u8>,
    pub ttl: u8,
}

const SRC_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
const DST_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];

impl FrameSpec {
    /// Panics on an unparsable address: this is a builder for literals.
    pub fn new(src: &str, dst: &str) -> Self {
        Self::from_addrs(
            src.parse().expect("source address literal"),
            dst.parse().expect("destination address literal"),
        )
    }

    pub fn from_addrs(src: IpAddr, dst: IpAddr) -> Self {
        FrameSpec {
            src,
            dst,
            vlans: Vec::new(),
            transport: Transport::Udp {
                src_port: 40000,
                dst_port: 53,
            },
            payload: Vec::new(),
            ttl: 64,
        }
    }

    /// VLAN ids, outermost first; the outer tag of two is 802.1ad.
    pub fn vlans(mut self, ids: &[u16]) -> Self {
        self.vlans = ids.to_vec();
        self
    }

    pub fn transport(mut self, t: Transport) -> Self {
        self.transport = t;
        self
    }

    pub fn payload(mut self, p: &[u8]) -> Self {
        self.payload = p.to_vec();
        self
    }

    /// Pads the payload so that the whole frame is `len` bytes (if larger).
    pub fn frame_len(mut self, len: usize) -> Self {
        let cur = self.build().len();
        if len > cur {
            self.payload.resize(self.payload.len() + len - cur, 0x5a);
        }
        self
    }

    pub fn build(&self) -> Vec<u8> {
        let mut l4 = Vec::with_capacity(20 + self.payload.len());
        match self.transport {
            Transport::Udp { src_port, dst_port } => {
                l4.extend_from_slice(&src_port.to_be_bytes());
                l4.extend_from_slice(&dst_port.to_be_bytes());
                l4.extend_from_slice(&((8 + self.payload.len()) as u16).to_be_bytes());
                l4.extend_from_slice(&[0, 0]);
            }
            Transport::Tcp {
                src_port,
                dst_port,
                flags,
            } => {
                l4.extend_from_slice(&src_port.to_be_bytes());
                l4.extend_from_slice(&dst_port.to_be_bytes());
                l4.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 5 << 4, flags, 0xff, 0xff, 0, 0, 0, 0]);
            }
            Transport::Icmp { icmp_type, code } => {
                l4.extend_from_slice(&[icmp_type, code, 0, 0, 0, 1, 0, 1]);
            }
        }
        l4.extend_from_slice(&self.payload);

        let mut f = Vec::with_capacity(14 + 8 + 40 + l4.len());
        f.extend_from_slice(&DST_MAC);
        f.extend_from_slice(&SRC_MAC);
        for (i, vid) in self.vlans.iter().enumerate() {
            let tpid: u16 = if i == 0 && self.vlans.len() > 1 { 0x88a8 } else { 0x8100 };
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
        }
        match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let proto = self.protocol(false);
                f.extend_from_slice(&0x0800u16.to_be_bytes());
                let start = f.len();
                f.extend_from_slice(&[0x45, 0]);
                f.extend_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
                f.extend_from_slice(&[0, 1, 0x40, 0, self.ttl, proto, 0, 0]);
                f.extend_from_slice(&s.octets());
                f.extend_from_slice(&d.octets());
                let sum = ipv4_checksum(&f[start..start + 20]);
                f[start + 10..start + 12].copy_from_slice(&sum.to_be_bytes());
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let proto = self.protocol(true);
                f.extend_from_slice(&0x86ddu16.to_be_bytes());
                f.extend_from_slice(&[0x60, 0, 0, 0]);
                f.extend_from_slice(&(l4.len() as u16).to_be_bytes());
                f.extend_from_slice(&[proto, self.ttl]);
                f.extend_from_slice(&s.octets());
                f.extend_from_slice(&d.octets());
            }
            _ => panic!("source and destination must be of one address family"),
        }
        f.extend_from_slice(&l4);
        f
    }

    fn protocol(&self, v6: bool) -> u8 {
        match self.transport {
            Transport::Udp { .. } => 17,
            Transport::Tcp { .. } => 6,
            Transport::Icmp { .. } if v6 => 58,
            Transport::Icmp { .. } => 1,
        }
    }
}

fn ipv4_checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in h.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Raw IPv4 packets (no Ethernet): a TCP SYN datagram 203.0.113.5:4444 →
/// 192.0.2.10:80 of 40 data bytes (20 of TCP header, 20 of payload) with
/// IP id `id`, cut into fragments at the byte offsets `cuts` (multiples of
/// 8), in datagram order.
pub fn ipv4_tcp_fragments(id: u16, cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut data = [0u8; 40];
    data[0..2].copy_from_slice(&4444u16.to_be_bytes());
    data[2..4].copy_from_slice(&80u16.to_be_bytes());
    data[12] = 5 << 4;
    data[13] = 0x02;
    let mut bounds = vec![0];
    bounds.extend_from_slice(cuts);
    bounds.push(data.len());
    bounds
        .windows(2)
        .map(|w| {
            let (s, e) = (w[0], w[1]);
            let mut p = vec![0x45, 0];
            p.extend_from_slice(&((20 + e - s) as u16).to_be_bytes());
            p.extend_from_slice(&id.to_be_bytes());
            let more = if e < data.len() { 0x2000 } else { 0 };
            p.extend_from_slice(&(more | (s / 8) as u16).to_be_bytes());
            p.extend_from_slice(&[64, 6, 0, 0, 203, 0, 113, 5, 192, 0, 2, 10]);
            p.extend_from_slice(&data[s..e]);
            p
        })
        .collect()
}

/// An ARP request: a non-IP frame.
pub fn arp_frame() -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&SRC_MAC);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&SRC_MAC);
    f.extend_from_slice(&[192, 0, 2, 1, 0, 0, 0, 0, 0, 0, 192, 0, 2, 2]);
    f
}

/// An IPv4 frame whose IHL says 16 bytes: malformed at the XDP stage.
pub fn malformed_ipv4_frame() -> Vec<u8> {
    let mut f = FrameSpec::new("203.0.113.1", "198.51.100.1").build();
    f[14] = 0x44;
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_len_pads_to_the_requested_size() {
        assert_eq!(FrameSpec::new("192.0.2.1", "192.0.2.2").frame_len(64).build().len(), 64);
        assert_eq!(
            FrameSpec::new("2001:db8::1", "2001:db8::2")
                .frame_len(600)
                .build()
                .len(),
            600
        );
    }

    #[test]
    fn ipv4_header_checksum_verifies() {
        let f = FrameSpec::new("192.0.2.1", "192.0.2.2").build();
        assert_eq!(ipv4_checksum(&f[14..34]), 0);
    }
}

pub mod tunnel;
