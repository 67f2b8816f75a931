//! Offline input: how `furui replay` reads a capture and what of it the
//! pipeline gets. The file is read in chunks and parsed in place (a pipe
//! too); the config's snap is applied as the XDP program applies it (the
//! same cut for the same frames: tests/bpf_snap.rs compares the two), so
//! bytes no rule reads are never copied, and lengths stay exact. Captures
//! cut by their writer, big-endian pcap, records larger than a read chunk,
//! pcapng sections and truncated files are each read as their format says.

use std::borrow::Cow;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use furui::config::Config;
use furui::craft::{FrameSpec, Transport};
use furui::offline::{for_each_raw, replay, OfflineError, ReplayReport};
use furui::parse::LinkType;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::{DataLink, Endianness};
use serde_json::Value;

const INSIDE: &str = "INSIDE-THE-WINDOW";
const PAYLOAD: usize = 1000;
const HEADERS: usize = 14 + 20 + 20;

fn tcp(sport: u16, payload: &[u8]) -> Vec<u8> {
    FrameSpec::new("203.0.113.5", "192.0.2.10")
        .transport(Transport::Tcp {
            src_port: sport,
            dst_port: 443,
            flags: 0x18,
        })
        .payload(payload)
        .build()
}

/// 1,000 payload bytes: the rule's marker first, another at the end.
fn marked_payload() -> Vec<u8> {
    let mut p = vec![0x5a; PAYLOAD];
    p[..INSIDE.len()].copy_from_slice(INSIDE.as_bytes());
    p[PAYLOAD - 11..].copy_from_slice(b"PAST-THE-WN");
    p
}

/// Frames as (bytes written, length on the wire), 1 ms apart.
fn write_pcap(path: &Path, header: PcapHeader, frames: &[(Vec<u8>, u32)]) {
    let mut w = PcapWriter::with_header(std::fs::File::create(path).unwrap(), header).unwrap();
    for (i, (f, orig)) in frames.iter().enumerate() {
        let ts = Duration::from_secs(1_800_000_000) + Duration::from_millis(i as u64);
        w.write_packet(&PcapPacket::new(ts, *orig, f)).unwrap();
    }
}

fn le_header() -> PcapHeader {
    PcapHeader {
        snaplen: 400_000,
        ..PcapHeader::default()
    }
}

fn whole(frames: Vec<Vec<u8>>) -> Vec<(Vec<u8>, u32)> {
    frames
        .into_iter()
        .map(|f| {
            let n = f.len() as u32;
            (f, n)
        })
        .collect()
}

/// A config in `dir` with the rule `rule` (if any) in `dir/rules`.
fn config(dir: &Path, snap: &str, rule: Option<&str>) -> Config {
    let mut text = format!(
        "[capture]\ninterface = \"x\"\nsnap = \"{snap}\"\n[domestic]\nprefixes = [\"192.0.2.0/24\"]\n[[indicators]]\nname = \"all\"\nprefixes = [\"0.0.0.0/0\"]\n[records]\npath = \"r\"\n"
    );
    if let Some(rule) = rule {
        std::fs::create_dir_all(dir.join("rules")).unwrap();
        std::fs::write(dir.join("rules/r.toml"), rule).unwrap();
        text.push_str("[selection]\nrules_dir = \"rules\"\n");
    }
    Config::parse(&dir.join("furui.toml"), &text).unwrap()
}

fn run(cfg: &Config, pcap: &Path) -> (ReplayReport, Vec<Value>) {
    let mut out = Vec::new();
    let report = replay(cfg, pcap, &mut out).unwrap();
    let records = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (report, records)
}

#[test]
fn the_snap_keeps_out_what_no_rule_reads_and_lengths_stay_exact() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("marked.pcap");
    // Ten marked segments of one flow, then a 2,000-byte ClientHello
    // record in three segments of another.
    let mut frames: Vec<Vec<u8>> = (0..10).map(|_| tcp(4000, &marked_payload())).collect();
    let mut first = vec![0x16, 0x03, 0x01, 0x07, 0xcb, 0x01];
    first.resize(800, 0x42);
    frames.push(tcp(4100, &first));
    frames.push(tcp(4100, &[0x42; 800]));
    frames.push(tcp(4100, &[0x42; 405]));
    frames.push(tcp(4100, &[0x42; 300]));
    write_pcap(&pcap, le_header(), &whole(frames.clone()));
    let rule = format!(
        "version = \"w\"\n[[rule]]\nid = \"inside\"\nmeasures = [\"inbound\"]\npayload = [{{ text = \"{INSIDE}\", offset = 0, depth = 64 }}]\n"
    );

    let (cut, cut_records) = run(&config(dir.path(), "ruleset", Some(&rule)), &pcap);
    let (full, full_records) = run(&config(dir.path(), "whole", Some(&rule)), &pcap);

    let seen: usize = frames.iter().map(Vec::len).sum();
    // Headers and the rule's 64 bytes of each marked segment; the three
    // hello segments whole; the segment after the hello, like the first.
    let kept = 10 * (HEADERS + 64) + 3 * HEADERS + 800 + 800 + 405 + HEADERS + 64;
    assert_eq!(
        (
            cut.counters.bytes_seen,
            cut.counters.bytes_erased,
            cut.counters.frames_truncated
        ),
        (seen as u64, kept as u64, 11),
        "bytes seen, bytes copied (and erased), frames cut"
    );
    assert_eq!(cut.hello_follows, (1, 1), "one split hello followed to its end");
    assert_eq!(
        (
            full.counters.bytes_seen,
            full.counters.bytes_erased,
            full.counters.frames_truncated
        ),
        (seen as u64, seen as u64, 0)
    );
    assert_eq!(cut.counters.frames_erased, 14);
    // The rule matched inside its window either way, and the records
    // count the packets' real lengths.
    for records in [&cut_records, &full_records] {
        let marked = records
            .iter()
            .find(|r| r["initiator_port"] == 4000)
            .expect("the marked flow's record");
        assert_eq!(marked["rules"], serde_json::json!(["inside"]));
        assert_eq!(marked["packets_forward"], 10);
        assert_eq!(marked["bytes_forward"], 10 * (20 + 20 + PAYLOAD) as u64);
        let hello = records.iter().find(|r| r["initiator_port"] == 4100).unwrap();
        assert_eq!(hello["bytes_forward"], (4 * 40 + 800 + 800 + 405 + 300) as u64);
    }
    assert_eq!(cut.counters.rule_matches, full.counters.rule_matches);
}

#[test]
fn a_capture_cut_by_its_writer_is_read_with_exact_lengths() {
    // What `tcpdump -s 96` writes: 96 bytes of each packet, and its length.
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("s96.pcap");
    let frames: Vec<(Vec<u8>, u32)> = (0..5)
        .map(|_| {
            let f = tcp(4000, &marked_payload());
            let n = f.len() as u32;
            (f[..96].to_vec(), n)
        })
        .collect();
    write_pcap(&pcap, le_header(), &frames);
    let (r, records) = run(&config(dir.path(), "whole", None), &pcap);
    assert_eq!(
        r.counters.parse_errors.iter().sum::<u64>(),
        0,
        "a cut packet is no error"
    );
    assert_eq!(
        (
            r.counters.bytes_seen,
            r.counters.bytes_erased,
            r.counters.frames_truncated
        ),
        (5 * (HEADERS + PAYLOAD) as u64, 5 * 96, 5)
    );
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["bytes_forward"], 5 * (20 + 20 + PAYLOAD) as u64);
}

/// A packet as `for_each_raw` hands it out: link, bytes, length on the wire.
type Seen = (LinkType, usize, u32);

/// What `for_each_raw` reads of `path`: the packet count, and each packet.
fn packets(path: &Path) -> (Result<u64, OfflineError>, Vec<Seen>) {
    let mut seen = Vec::new();
    let r = for_each_raw(path, |p| seen.push((p.link, p.data.len(), p.orig_len)));
    (r.map(|s| s.packets), seen)
}

#[test]
fn big_endian_pcap_and_records_larger_than_a_read_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("be.pcap");
    // A 300,000-byte record (larger than a read chunk) between small ones.
    let mut big = tcp(1, &[]);
    big.resize(300_000, 7);
    let frames = whole(vec![tcp(1, b"a"), big, tcp(2, b"b")]);
    write_pcap(
        &pcap,
        PcapHeader {
            endianness: Endianness::Big,
            ..le_header()
        },
        &frames,
    );
    let (n, seen) = packets(&pcap);
    assert_eq!(n.unwrap(), 3);
    let lens: Vec<usize> = seen.iter().map(|s| s.1).collect();
    assert_eq!(lens, vec![HEADERS + 1, 300_000, HEADERS + 1]);
    assert!(seen.iter().all(|s| s.0 == LinkType::Ethernet));
}

#[test]
fn a_truncated_capture_is_corrupt_after_its_whole_packets() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("cut.pcap");
    write_pcap(&pcap, le_header(), &whole((0..5).map(|i| tcp(i, b"x")).collect()));
    let len = std::fs::metadata(&pcap).unwrap().len();
    // Cut inside the last packet's data, then inside its record header.
    for chop in [10, HEADERS as u64 + 1 + 6] {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&pcap)
            .unwrap()
            .set_len(len - chop)
            .unwrap();
        let (r, seen) = packets(&pcap);
        assert!(
            matches!(r, Err(OfflineError::Corrupt { packets: 4, .. })),
            "cut {chop} bytes short: {r:?}"
        );
        assert_eq!(seen.len(), 4, "the whole packets before the cut are read");
    }
    // Not a capture at all; an empty file.
    std::fs::write(&pcap, b"not a capture file at all").unwrap();
    assert!(matches!(packets(&pcap).0, Err(OfflineError::Format { .. })));
    std::fs::write(&pcap, b"").unwrap();
    assert!(matches!(packets(&pcap).0, Err(OfflineError::Format { .. })));
}

#[test]
fn a_pipe_reads_like_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("f.pcap");
    let frames: Vec<Vec<u8>> = (0..2_000).map(|i| tcp(i as u16, &vec![i as u8; i % 1400])).collect();
    write_pcap(&pcap, le_header(), &whole(frames));
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let bytes = std::fs::read(&pcap).unwrap();
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            // Small writes, so the reader sees records split across reads.
            let mut f = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
            for c in bytes.chunks(777) {
                f.write_all(c).unwrap();
            }
        })
    };
    let from_pipe = packets(&fifo);
    writer.join().unwrap();
    let from_file = packets(&pcap);
    assert_eq!(from_pipe.0.unwrap(), 2_000);
    assert_eq!(from_pipe.1, from_file.1);
}

#[test]
fn each_pcapng_section_has_its_own_interfaces() {
    // Two sections, as `cat a.pcapng b.pcapng` makes: interface 0 is
    // Ethernet in the first and raw IP in the second.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("two.pcapng");
    let mut bytes = Vec::new();
    for (link, frame) in [
        (DataLink::ETHERNET, tcp(1, b"eth")),
        (DataLink::RAW, tcp(1, b"raw")[14..].to_vec()),
    ] {
        let mut w = PcapNgWriter::new(Vec::new()).unwrap();
        w.write_pcapng_block(InterfaceDescriptionBlock {
            linktype: link,
            snaplen: 0,
            options: vec![],
        })
        .unwrap();
        for _ in 0..2 {
            w.write_pcapng_block(EnhancedPacketBlock {
                interface_id: 0,
                timestamp: Duration::from_secs(1_800_000_000),
                original_len: frame.len() as u32,
                data: Cow::Borrowed(&frame),
                options: vec![],
            })
            .unwrap();
        }
        bytes.extend(w.into_inner());
    }
    std::fs::write(&path, &bytes).unwrap();
    let (n, seen) = packets(&path);
    assert_eq!(n.unwrap(), 4);
    let links: Vec<LinkType> = seen.iter().map(|s| s.0).collect();
    assert_eq!(
        links,
        vec![LinkType::Ethernet, LinkType::Ethernet, LinkType::RawIp, LinkType::RawIp]
    );
    // Cut short inside the last block: corrupt after the three before it.
    std::fs::write(&path, &bytes[..bytes.len() - 8]).unwrap();
    assert!(matches!(
        packets(&path).0,
        Err(OfflineError::Corrupt { packets: 3, .. })
    ));
}
