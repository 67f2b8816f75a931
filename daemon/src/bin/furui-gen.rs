//! furui-gen: a small traffic generator for the demo, tests and bench. It
//! sends crafted frames out of one interface through an AF_PACKET socket.
//! Only for use inside the test namespaces the demo and tests create.

use std::net::IpAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;

use furui::craft::tunnel::{add_vlans, wrap, Wrap};
use furui::craft::{self, FrameSpec, Transport};
use furui::sys::PacketSocket;

#[derive(Parser)]
#[command(
    name = "furui-gen",
    about = "Send crafted frames out of an interface (test namespaces only)"
)]
struct Args {
    /// Interface to send on (required unless --trafgen or --bench-fixture).
    #[arg(long, required_unless_present_any = ["trafgen", "bench_fixture", "offline_capture"])]
    iface: Option<String>,
    /// A flow to send: SRC,DST[,udp|tcp|icmp[,SPORT,DPORT]]. Repeatable; sent round-robin.
    #[arg(long = "flow")]
    flows: Vec<String>,
    /// Frames per flow (and per --non-ip / --malformed kind).
    #[arg(long, default_value_t = 1)]
    count: u64,
    /// Also send this many ARP (non-IP) frames.
    #[arg(long, default_value_t = 0)]
    non_ip: u64,
    /// Also send this many malformed IPv4 frames (IHL 4).
    #[arg(long, default_value_t = 0)]
    malformed: u64,
    /// Payload marker written at the start of every payload.
    #[arg(long, default_value = "")]
    marker: String,
    /// Payload marker written over the last bytes of every --flow frame's
    /// payload (past a snap that keeps the first bytes).
    #[arg(long, default_value = "")]
    tail_marker: String,
    /// VLAN ids, outermost first (repeatable, at most 2); with --encap,
    /// on the outermost frame.
    #[arg(long = "vlan")]
    vlans: Vec<u16>,
    /// Wrap every --flow frame in an encapsulation layer:
    /// KIND[:ID],OUTER_SRC,OUTER_DST with KIND one of mpls, gre, gre-eth,
    /// gre-mpls, erspan1, erspan2, erspan3, vxlan, geneve, gtpu, ipip,
    /// mpls-udp (e.g. vxlan:100,192.0.2.1,192.0.2.2). Repeatable: the
    /// first is the innermost layer.
    #[arg(long = "encap")]
    encaps: Vec<String>,
    /// Frame size in bytes (padded); with --encap, the inner frame's.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Send for this many seconds instead of --count (continuous mode).
    #[arg(long)]
    duration: Option<f64>,
    /// Rate limit in frames per second (0 = as fast as possible).
    #[arg(long, default_value_t = 0)]
    pps: u64,
    /// Print the frames as a trafgen(8) configuration instead of sending
    /// (for the benchmark rig); --count repeats each flow's frame.
    #[arg(long)]
    trafgen: bool,
    /// Also send every Ethernet frame of this capture, as it is (repeatable;
    /// sent once each, after the crafted frames).
    #[arg(long = "pcap")]
    pcaps: Vec<std::path::PathBuf>,
    /// Write the bench's loaded workload into this directory instead of
    /// sending: config, rules (100,000 CIDRs, 1,000 patterns, 1,000 JA4)
    /// and replay-SIZE-N.pcap files of N mixes for --size, each frame
    /// wrapped in the --encap layers if any (bench only).
    #[arg(long)]
    bench_fixture: Option<std::path::PathBuf>,
    /// Write the bench rig's offline capture to this pcap instead of
    /// sending: --offline-packets frames over --offline-flows flows, 60 to
    /// 1,400 bytes, a quarter of the flows domestic (bench only).
    #[arg(long)]
    offline_capture: Option<std::path::PathBuf>,
    #[arg(long, default_value_t = 1_000_000)]
    offline_packets: usize,
    #[arg(long, default_value_t = 20_000)]
    offline_flows: usize,
}

/// The Ethernet frames of a capture (other link types are refused).
fn pcap_frames(path: &std::path::Path) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut other_link = false;
    furui::offline::for_each_packet(path, |link, _, frame| {
        if link == furui::parse::LinkType::Ethernet {
            out.push(frame.to_vec());
        } else {
            other_link = true;
        }
        furui::erase::erase(frame);
    })
    .map_err(|e| format!("--pcap {}: {e}", path.display()))?;
    if other_link {
        return Err(format!("--pcap {}: only Ethernet captures can be sent", path.display()));
    }
    Ok(out)
}

fn trafgen_packet(frame: &[u8]) -> String {
    let bytes: Vec<String> = frame.iter().map(|b| format!("0x{b:02x}")).collect();
    format!("{{ {} }}\n", bytes.join(", "))
}

fn parse_flow(s: &str, a: &Args) -> Result<Vec<u8>, String> {
    let parts: Vec<&str> = s.split(',').collect();
    if parts.len() < 2 {
        return Err(format!("--flow `{s}`: expected SRC,DST[,proto[,sport,dport]]"));
    }
    let src: IpAddr = parts[0]
        .parse()
        .map_err(|_| format!("--flow `{s}`: bad source address"))?;
    let dst: IpAddr = parts[1]
        .parse()
        .map_err(|_| format!("--flow `{s}`: bad destination address"))?;
    let port = |i: usize, d: u16| parts.get(i).and_then(|p| p.parse().ok()).unwrap_or(d);
    let t = match parts.get(2).copied().unwrap_or("udp") {
        "udp" => Transport::Udp {
            src_port: port(3, 40000),
            dst_port: port(4, 53),
        },
        "tcp" => Transport::Tcp {
            src_port: port(3, 40000),
            dst_port: port(4, 443),
            flags: 0x18,
        },
        "icmp" => Transport::Icmp {
            icmp_type: if src.is_ipv4() { 8 } else { 128 },
            code: 0,
        },
        other => return Err(format!("--flow `{s}`: unknown protocol `{other}`")),
    };
    if src.is_ipv4() != dst.is_ipv4() {
        return Err(format!(
            "--flow `{s}`: source and destination must be the same address family"
        ));
    }
    let spec = FrameSpec::from_addrs(src, dst)
        .transport(t)
        .payload(a.marker.as_bytes());
    let tail = |mut f: Vec<u8>| {
        let m = a.tail_marker.as_bytes();
        if f.len() >= m.len() + 60 {
            let at = f.len() - m.len();
            f[at..].copy_from_slice(m);
        }
        f
    };
    if a.encaps.is_empty() {
        // --size counts the VLAN tags.
        return Ok(tail(spec.vlans(&a.vlans).frame_len(a.size).build()));
    }
    // With --encap, --size is the inner frame's; the tags go outside.
    Ok(add_vlans(
        encapsulate(tail(spec.frame_len(a.size).build()), &a.encaps)?,
        &a.vlans,
    ))
}

/// Wraps `f` in the --encap layers, the first innermost.
fn encapsulate(mut f: Vec<u8>, encaps: &[String]) -> Result<Vec<u8>, String> {
    for e in encaps {
        let parts: Vec<&str> = e.split(',').collect();
        let [kind, os, od] = parts[..] else {
            return Err(format!("--encap `{e}`: expected KIND[:ID],OUTER_SRC,OUTER_DST"));
        };
        let w = Wrap::parse(kind).map_err(|m| format!("--encap {m}"))?;
        let os: IpAddr = os.parse().map_err(|_| format!("--encap `{e}`: bad outer source"))?;
        let od: IpAddr = od
            .parse()
            .map_err(|_| format!("--encap `{e}`: bad outer destination"))?;
        if os.is_ipv4() != od.is_ipv4() {
            return Err(format!("--encap `{e}`: outer addresses of two families"));
        }
        f = wrap(&f, &w, os, od);
    }
    Ok(f)
}

fn write_bench_fixture(dir: &std::path::Path, size: usize, counts: &[usize], encaps: &[String]) -> Result<(), String> {
    // Fail on a bad --encap before writing anything.
    encapsulate(FrameSpec::new("192.0.2.1", "192.0.2.2").build(), encaps)?;
    let io = |e: std::io::Error| format!("cannot write the bench fixture in {}: {e}", dir.display());
    furui::benchkit::write_fixture(dir).map_err(io)?;
    for n in counts {
        let path = dir.join(format!("replay-{size}-{n}.pcap"));
        furui::benchkit::write_replay_wrapped(&path, size, *n, |f| encapsulate(f, encaps).expect("checked above"))
            .map_err(io)?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let a = Args::parse();
    if let Some(dir) = &a.bench_fixture {
        // Two lengths, so a caller can subtract start-up cost.
        return match write_bench_fixture(dir, a.size, &[1_000, 11_000], &a.encaps) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("furui-gen: {e}");
                ExitCode::from(1)
            }
        };
    }
    if let Some(path) = &a.offline_capture {
        return match furui::benchkit::write_offline_capture(path, a.offline_packets, a.offline_flows) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("furui-gen: cannot write {}: {e}", path.display());
                ExitCode::from(1)
            }
        };
    }
    let mut frames = Vec::new();
    for f in &a.flows {
        match parse_flow(f, &a) {
            Ok(fr) => frames.push(fr),
            Err(e) => {
                eprintln!("furui-gen: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if a.trafgen {
        for _ in 0..a.count.max(1) {
            for f in &frames {
                print!("{}", trafgen_packet(f));
            }
        }
        return ExitCode::SUCCESS;
    }
    let iface = a.iface.as_deref().unwrap_or_default();
    let sock = match PacketSocket::open(iface) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("furui-gen: cannot open a packet socket on {iface}: {e}");
            return ExitCode::from(1);
        }
    };
    let mut extra = Vec::new();
    for _ in 0..a.non_ip {
        extra.push(craft::arp_frame());
    }
    for _ in 0..a.malformed {
        extra.push(craft::malformed_ipv4_frame());
    }
    for p in &a.pcaps {
        match pcap_frames(p) {
            Ok(mut f) => extra.append(&mut f),
            Err(e) => {
                eprintln!("furui-gen: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let start = Instant::now();
    let mut sent: u64 = 0;
    let pace = |sent: u64| {
        if a.pps > 0 {
            let due = start + Duration::from_secs_f64(sent as f64 / a.pps as f64);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
    };
    let send = |f: &[u8], sent: &mut u64| -> bool {
        pace(*sent);
        match sock.send(f) {
            Ok(()) => {
                *sent += 1;
                true
            }
            Err(e) => {
                eprintln!("furui-gen: send failed: {e}");
                false
            }
        }
    };
    if !frames.is_empty() {
        match a.duration {
            Some(secs) => {
                let end = start + Duration::from_secs_f64(secs);
                'outer: while Instant::now() < end {
                    for f in &frames {
                        if !send(f, &mut sent) {
                            break 'outer;
                        }
                    }
                }
            }
            None => {
                for _ in 0..a.count {
                    for f in &frames {
                        if !send(f, &mut sent) {
                            return ExitCode::from(1);
                        }
                    }
                }
            }
        }
    }
    for f in &extra {
        if !send(f, &mut sent) {
            return ExitCode::from(1);
        }
    }
    println!("sent {sent} frames in {:.3}s", start.elapsed().as_secs_f64());
    ExitCode::SUCCESS
}
