//! Reading capture files: pcap and pcapng, each packet handed out as a
//! slice of one reusable read buffer. The file is read in large chunks
//! (one system call per MiB) and each record parsed where the chunk holds
//! it: no other copy of a packet is made here. The buffer is erased when
//! the read ends, however it ends.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use pcap_file::pcap::{PcapHeader, PcapParser, RawPcapPacket};
use pcap_file::pcapng::{Block, PcapNgParser};
use pcap_file::TsResolution;

use super::{OfflineError, ReadSummary};
use crate::parse::LinkType;

const MAGIC_PCAPNG: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
/// The read size: small enough that a chunk stays in a core's L2 cache
/// while its packets are parsed, large enough that system calls are rare.
const CHUNK: usize = 1 << 18;
/// The largest record accepted (a pcap packet or a pcapng block): far
/// above any snap length in use (262,144), far below memory limits.
const MAX_RECORD: usize = 16 << 20;

/// One packet of a capture: its link type, timestamp (ns since the Unix
/// epoch), captured bytes and length on the wire.
pub struct Packet<'a> {
    pub link: LinkType,
    pub ts_ns: u64,
    pub data: &'a [u8],
    /// At least `data.len()`: more when the capture cut the packet.
    pub orig_len: u32,
}

/// Calls `f` for every packet of `path` (a file or a pipe), in order.
pub fn for_each_raw(path: &Path, f: impl FnMut(Packet<'_>)) -> Result<ReadSummary, OfflineError> {
    let file = File::open(path).map_err(|source| OfflineError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    for_each_raw_from(file, path, f)
}

/// Calls `f` for every packet read from `file` (named `path` in errors).
pub fn for_each_raw_from<R: Read>(
    file: R,
    path: &Path,
    mut f: impl FnMut(Packet<'_>),
) -> Result<ReadSummary, OfflineError> {
    let mut r = Reader {
        path,
        summary: ReadSummary::default(),
        links: Vec::new(),
    };
    let mut chunks = Chunks {
        src: file,
        buf: vec![0; CHUNK],
        pos: 0,
        len: 0,
    };
    let read = r.read(&mut chunks, &mut f);
    crate::erase::erase(&mut chunks.buf);
    read.map(|()| r.summary)
}

/// The file's bytes in one buffer: `buf[pos..len]` not yet parsed.
struct Chunks<R> {
    src: R,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
}

impl<R: Read> Chunks<R> {
    fn rest(&self) -> &[u8] {
        &self.buf[self.pos..self.len]
    }

    /// Makes `n` bytes available at `pos` (reading more, moving what is
    /// left to the front, growing the buffer for a large record). False
    /// when the input ends first.
    fn fill(&mut self, n: usize) -> std::io::Result<bool> {
        if self.len - self.pos >= n {
            return Ok(true);
        }
        self.buf.copy_within(self.pos..self.len, 0);
        self.len -= self.pos;
        self.pos = 0;
        if self.buf.len() < n {
            self.buf.resize(n.next_multiple_of(CHUNK), 0);
        }
        while self.len < n {
            match self.src.read(&mut self.buf[self.len..]) {
                Ok(0) => return Ok(false),
                Ok(k) => self.len += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// The next `n` bytes, consumed.
    fn take(&mut self, n: usize) -> &[u8] {
        let at = self.pos;
        self.pos += n;
        &self.buf[at..at + n]
    }
}

/// A pcap file's timestamp unit (ns) and largest valid fraction.
type TsUnit = (u64, u32);

struct Reader<'p> {
    path: &'p Path,
    summary: ReadSummary,
    /// pcapng: the link types of the current section's interfaces.
    links: Vec<LinkType>,
}

impl Reader<'_> {
    fn corrupt(&self) -> OfflineError {
        OfflineError::Corrupt {
            path: self.path.to_path_buf(),
            packets: self.summary.packets,
        }
    }

    fn io(&self, source: std::io::Error) -> OfflineError {
        OfflineError::Read {
            path: self.path.to_path_buf(),
            packets: self.summary.packets,
            source,
        }
    }

    fn format(&self) -> OfflineError {
        OfflineError::Format {
            path: self.path.to_path_buf(),
        }
    }

    fn read(&mut self, c: &mut Chunks<impl Read>, f: &mut impl FnMut(Packet<'_>)) -> Result<(), OfflineError> {
        if !c.fill(4).map_err(|e| self.io(e))? {
            return Err(self.format());
        }
        if c.rest()[..4] == MAGIC_PCAPNG {
            self.pcapng(c, f)
        } else {
            self.pcap(c, f)
        }
    }

    fn pcap(&mut self, c: &mut Chunks<impl Read>, f: &mut impl FnMut(Packet<'_>)) -> Result<(), OfflineError> {
        if !c.fill(24).map_err(|e| self.io(e))? {
            return Err(self.format());
        }
        let (_, p) = PcapParser::new(c.take(24)).map_err(|_| self.format())?;
        let header = p.header();
        let (link, ts) = self.pcap_header(&header)?;
        let big = header.endianness == pcap_file::Endianness::Big;
        loop {
            // A record: 16 bytes of header, then incl_len bytes.
            if !c.fill(16).map_err(|e| self.io(e))? {
                return if c.rest().is_empty() {
                    Ok(())
                } else {
                    Err(self.corrupt())
                };
            }
            let l = <[u8; 4]>::try_from(&c.rest()[8..12]).expect("4 bytes");
            let incl = if big {
                u32::from_be_bytes(l)
            } else {
                u32::from_le_bytes(l)
            } as usize;
            if incl > MAX_RECORD || !c.fill(16 + incl).map_err(|e| self.io(e))? {
                return Err(self.corrupt());
            }
            let (_, packet) = p.next_raw_packet(c.take(16 + incl)).map_err(|_| self.corrupt())?;
            self.pcap_packet(link, ts, packet, f);
        }
    }

    fn pcapng(&mut self, c: &mut Chunks<impl Read>, f: &mut impl FnMut(Packet<'_>)) -> Result<(), OfflineError> {
        let mut parser: Option<PcapNgParser> = None;
        let mut big = false;
        loop {
            // A block: type and total length, then the rest of its length.
            if !c.fill(12).map_err(|e| self.io(e))? {
                return match (c.rest().is_empty(), parser.is_some()) {
                    (true, true) => Ok(()),
                    (_, false) => Err(self.format()),
                    (false, true) => Err(self.corrupt()),
                };
            }
            let r = c.rest();
            // A section header says its own byte order (its type reads
            // the same both ways).
            if r[..4] == MAGIC_PCAPNG {
                big = r[8..12] == [0x1a, 0x2b, 0x3c, 0x4d];
            }
            let l = <[u8; 4]>::try_from(&r[4..8]).expect("4 bytes");
            let total = if big {
                u32::from_be_bytes(l)
            } else {
                u32::from_le_bytes(l)
            } as usize;
            if !(12..=MAX_RECORD).contains(&total) || !c.fill(total).map_err(|e| self.io(e))? {
                return Err(if parser.is_some() {
                    self.corrupt()
                } else {
                    self.format()
                });
            }
            let bytes = c.take(total);
            match &mut parser {
                None => parser = Some(PcapNgParser::new(bytes).map_err(|_| self.format())?.1),
                Some(p) => {
                    let (_, block) = p.next_block(bytes).map_err(|_| self.corrupt())?;
                    self.block(block, f)?;
                }
            }
        }
    }

    fn link(&self, linktype: u32) -> Result<LinkType, OfflineError> {
        // The upper bits of the field carry FCS information; the link type
        // is the lower 16 bits.
        let v = linktype & 0xffff;
        LinkType::from_pcap(v).ok_or(OfflineError::LinkType {
            path: self.path.to_path_buf(),
            linktype: v,
        })
    }

    fn pcap_header(&self, h: &PcapHeader) -> Result<(LinkType, TsUnit), OfflineError> {
        let unit = match h.ts_resolution {
            TsResolution::MicroSecond => (1_000, 999_999),
            TsResolution::NanoSecond => (1, 999_999_999),
        };
        Ok((self.link(u32::from(h.datalink))?, unit))
    }

    fn pcap_packet(
        &mut self,
        link: LinkType,
        (unit, max_frac): TsUnit,
        p: RawPcapPacket<'_>,
        f: &mut impl FnMut(Packet<'_>),
    ) {
        self.summary.packets += 1;
        let frac = if p.ts_frac > max_frac {
            self.summary.clamped_timestamps += 1;
            max_frac
        } else {
            p.ts_frac
        };
        let ts_ns = u64::from(p.ts_sec) * 1_000_000_000 + u64::from(frac) * unit;
        f(Packet {
            link,
            ts_ns,
            orig_len: p.orig_len.max(p.data.len() as u32),
            data: &p.data,
        });
    }

    fn block(&mut self, block: Block<'_>, f: &mut impl FnMut(Packet<'_>)) -> Result<(), OfflineError> {
        match block {
            // Interface ids count from 0 again in each section.
            Block::SectionHeader(_) => self.links.clear(),
            Block::InterfaceDescription(idb) => {
                let link = self.link(u32::from(idb.linktype))?;
                self.links.push(link);
            }
            Block::EnhancedPacket(p) => {
                let link = *self.links.get(p.interface_id as usize).ok_or_else(|| self.corrupt())?;
                self.summary.packets += 1;
                f(Packet {
                    link,
                    ts_ns: p.timestamp.as_nanos() as u64,
                    orig_len: p.original_len.max(p.data.len() as u32),
                    data: &p.data,
                });
            }
            Block::SimplePacket(p) => {
                let link = *self.links.first().ok_or_else(|| self.corrupt())?;
                self.summary.packets += 1;
                f(Packet {
                    link,
                    ts_ns: 0,
                    orig_len: p.original_len.max(p.data.len() as u32),
                    data: &p.data,
                });
            }
            _ => {}
        }
        Ok(())
    }
}
