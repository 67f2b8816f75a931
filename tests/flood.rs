//! A flood cannot make furui's memory exceed what its configuration
//! allows. Spoofed source ports open more flows than `max_flows`; TCP
//! segments claim 16 KiB ClientHellos; QUIC Initials (their keys are
//! public) carry a CRYPTO frame at a far offset, which would make each
//! flow hold a zero-filled, resident buffer. `furui replay` runs the same
//! pipeline a queue's worker runs: its peak RSS must stay under the
//! configuration's bound (`config::memory`), and its counters must say
//! what was refused. The same flood with an unbounded budget goes past
//! that bound, so the test can fail.

mod common;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::{Command, Stdio};

use common::{quic, FURUI};
use furui::config::memory::{mib, MemoryBound};
use furui::config::Config;
use furui::craft::{FrameSpec, Transport};

const TCP_FLOWS: u32 = 40_000;
const QUIC_FLOWS: u32 = 20_000;
const MAX_FLOWS: u32 = 50_000;

fn src(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1 + (i % 250) as u8))
}

fn port(i: u32) -> u16 {
    1024 + (i / 250) as u16
}

/// A TLS record that announces a ClientHello of `len` bytes, with only
/// its first bytes present.
fn claimed_client_hello(len: u32) -> Vec<u8> {
    let rec = len + 4;
    let mut p = vec![
        22,
        3,
        1,
        (rec >> 8) as u8,
        rec as u8,
        1,
        0,
        (len >> 8) as u8,
        len as u8,
        3,
        3,
    ];
    p.resize(100, 0x5a);
    p
}

fn write_flood(path: &Path) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    f.write_all(&[
        0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0,
    ])
    .unwrap();
    let mut n = 0u32;
    let mut put = |frame: Vec<u8>| {
        // Every packet within one second: nothing times out.
        for v in [1_700_000_000u32, n, frame.len() as u32, frame.len() as u32] {
            f.write_all(&v.to_le_bytes()).unwrap();
        }
        f.write_all(&frame).unwrap();
        n += 1;
    };
    let dst = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    for i in 0..TCP_FLOWS {
        put(FrameSpec::from_addrs(src(i), dst)
            .transport(Transport::Tcp {
                src_port: port(i),
                dst_port: 443,
                flags: 0x18,
            })
            .payload(&claimed_client_hello(16_000))
            .build());
    }
    for i in 0..QUIC_FLOWS {
        let dcid = (i as u64).to_be_bytes();
        let initial = quic::initial(&dcid, &quic::crypto_frame(15_000, &[0x5a; 100]));
        put(FrameSpec::from_addrs(src(i), dst)
            .transport(Transport::Udp {
                src_port: port(i),
                dst_port: 443,
            })
            .payload(&initial)
            .build());
    }
}

fn config(dir: &Path, budget_mib: u32) -> std::path::PathBuf {
    let p = dir.join(format!("furui-{budget_mib}.toml"));
    std::fs::write(
        &p,
        format!(
            "[capture]\ninterface = \"x\"\n[domestic]\nprefixes = [\"192.0.2.0/24\"]\n[measures.inbound]\nenabled = true\nnot_before = \"2020-01-01T00:00:00Z\"\nnot_after = \"2099-01-01T00:00:00Z\"\n[records]\npath = \"r\"\n[flows]\nmax_flows = {MAX_FLOWS}\nreassembly_budget_mib = {budget_mib}\n"
        ),
    )
    .unwrap();
    p
}

/// Runs `furui replay`: (its report, its peak RSS in bytes). The child is
/// reaped with wait4(2), which also gives its own peak RSS.
#[allow(clippy::zombie_processes)]
fn replay(cfg: &Path, pcap: &Path, dir: &Path) -> (String, u64) {
    let report = dir.join("report.txt");
    let child = Command::new(FURUI)
        .args(["replay", "--config"])
        .arg(cfg)
        .arg("--pcap")
        .arg(pcap)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&report).unwrap())
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: plain syscall on our own child, with valid out-pointers.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32);
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "{text}");
    (text, usage.ru_maxrss as u64 * 1024)
}

fn field(report: &str, name: &str) -> u64 {
    report
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_flood_stays_within_the_memory_bound_and_the_counters_say_what_was_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("flood.pcap");
    write_flood(&pcap);

    let cfg = config(dir.path(), 4);
    let bound = MemoryBound::of(&Config::load(&cfg).unwrap()).replay();
    let (report, rss) = replay(&cfg, &pcap, dir.path());
    eprintln!(
        "budget 4 MiB: peak RSS {} MiB, bound {} MiB\n{report}",
        mib(rss),
        mib(bound)
    );
    assert_eq!(field(&report, "packets read:"), u64::from(TCP_FLOWS + QUIC_FLOWS));
    assert_eq!(field(&report, "frames erased:"), u64::from(TCP_FLOWS + QUIC_FLOWS));
    // Spoofed ports: the table holds max_flows, the rest is evicted, counted.
    assert_eq!(field(&report, "flows peak:"), u64::from(MAX_FLOWS));
    assert_eq!(
        field(&report, "flows evicted:"),
        u64::from(TCP_FLOWS + QUIC_FLOWS - MAX_FLOWS)
    );
    // The budget was spent and held: every later reassembly was refused.
    let peak = field(&report, "reassembly peak:");
    assert!(peak <= 4 << 20 && peak > 3 << 20, "{report}");
    // 4 MiB hold 262 of the 16,009-byte TCP buffers; the QUIC streams come
    // when the budget is spent and evictions have not freed it.
    let refused = field(&report, "reassembly refused:");
    assert!(
        refused >= u64::from(TCP_FLOWS - 300) && refused <= u64::from(TCP_FLOWS + QUIC_FLOWS),
        "{report}"
    );
    assert!(
        rss < bound,
        "peak RSS {} MiB over the bound {} MiB",
        mib(rss),
        mib(bound)
    );

    // Without a budget the same flood takes more than that bound allows.
    let (report, unbounded) = replay(&config(dir.path(), 4096), &pcap, dir.path());
    eprintln!("budget 4096 MiB: peak RSS {} MiB\n{report}", mib(unbounded));
    assert_eq!(field(&report, "reassembly refused:"), 0, "{report}");
    assert!(
        unbounded > bound,
        "the flood is too small to test anything: {} MiB",
        mib(unbounded)
    );
}

/// The sealer the flood relies on: furui opens what it builds.
#[test]
fn a_sealed_initial_opens_to_its_crypto_data() {
    use furui::select::quic::{open_initials, CryptoStream};
    let msg = [1u8, 0, 0, 6, 10, 11, 12, 13, 14, 15];
    let mut frames = quic::crypto_frame(4, &msg[4..]);
    frames.extend(quic::crypto_frame(0, &msg[..4]));
    let pkt = quic::initial(&[0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08], &frames);
    assert_eq!(pkt.len(), 1200);
    let mut scratch = Vec::new();
    let mut crypto = CryptoStream::default();
    assert_eq!(open_initials(&pkt, &mut scratch, &mut crypto), Ok(1));
    assert_eq!(crypto.client_hello(), Some(&msg[..]));
}
