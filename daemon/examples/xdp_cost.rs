//! `make bench`, part 4: the XDP program's own cost per packet, side by
//! side for several builds of it (e.g. before and after a change), from
//! the kernel's BPF_PROG_TEST_RUN timing (the average over `repeat` runs
//! of one frame, in ns). Plain frames and every encapsulation, the outer
//! endpoints domestic, the inner frame transit and authorized (so the
//! redirect path is taken, with its metadata; no socket is bound, so it
//! falls back to drop), and one domestic plain frame (classified and
//! dropped, no metadata). Each cell: median/minimum over the rounds, ns.
//!
//! Usage (root): xdp_cost NAME=OBJECT.bpf.o [NAME=OBJECT.bpf.o ...]
//! (XDP_COST_ROUNDS, default 21, and XDP_COST_REPEAT, default 1000000).
//! `deploy/bench/xdp-cost.sh` builds the objects and runs this.

use std::net::IpAddr;

use libbpf_rs::{MapCore, MapFlags, Object, ObjectBuilder, ProgramInput};

use furui::classify::walk::DecapConfig;
use furui::craft::tunnel::{add_vlans, wrap};
use furui::craft::FrameSpec;

/// Runs of one frame per timing, and rounds per (frame, build); both can
/// be raised from the environment for a quieter figure.
fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&v| v > 0)
        .unwrap_or(default)
}

fn load(path: &str) -> Result<Object, String> {
    let obj = ObjectBuilder::default()
        .open_file(path)
        .and_then(|o| o.load())
        .map_err(|e| format!("{path}: {e}"))?;
    for m in obj.maps() {
        let name = m.name().to_string_lossy().into_owned();
        let set = |k: &[u8], v: &[u8]| {
            m.update(k, v, MapFlags::ANY)
                .map_err(|e| format!("{path}: {name}: {e}"))
        };
        match name.as_str() {
            // 192.0.2.0/24 domestic: the outer endpoints below.
            "domestic_v4" => {
                let k = furui::xdp::layout::lpm_key(&"192.0.2.0/24".parse().expect("a prefix"));
                set(&k, &[1])?;
            }
            "class_authorized" => {
                for class in 1u32..=3 {
                    set(&class.to_ne_bytes(), &1u32.to_ne_bytes())?;
                }
            }
            // Only builds that walk encapsulations have it.
            "decap_cfg" => set(&0u32.to_ne_bytes(), &furui::xdp::layout::decap(&DecapConfig::DEFAULT))?,
            _ => {}
        }
    }
    Ok(obj)
}

fn ns_per_packet(obj: &Object, frame: &[u8], repeat: u32) -> Result<f64, String> {
    let prog = obj
        .progs_mut()
        .find(|p| p.name() == "furui_xdp")
        .ok_or("no furui_xdp program")?;
    let input = ProgramInput {
        data_in: Some(frame),
        repeat,
        ..ProgramInput::default()
    };
    let out = prog.test_run(input).map_err(|e| e.to_string())?;
    // The kernel reports whole nanoseconds, averaged over the repeats.
    Ok(out.duration.as_nanos() as f64)
}

fn frames() -> Vec<(String, Vec<u8>)> {
    let inner = FrameSpec::new("203.0.113.9", "8.8.8.8").frame_len(64).build();
    let (os, od): (IpAddr, IpAddr) = ("192.0.2.250".parse().unwrap(), "192.0.2.251".parse().unwrap());
    let mut out = vec![
        ("plain IPv4 64B".to_string(), inner.clone()),
        (
            "plain IPv6, QinQ".to_string(),
            FrameSpec::new("2001:4860::1", "2a00:1450::1")
                .vlans(&[10, 20])
                .frame_len(86)
                .build(),
        ),
        ("plain IPv4, VLAN".to_string(), add_vlans(inner.clone(), &[100])),
        // Domestic: classified and dropped, no metadata written.
        (
            "plain IPv4 domestic".to_string(),
            FrameSpec::new("192.0.2.9", "192.0.2.8").frame_len(64).build(),
        ),
    ];
    for (name, w) in furui::craft::tunnel::bench_wraps() {
        out.push((name.to_string(), wrap(&inner, &w, os, od)));
    }
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() -> std::process::ExitCode {
    let objs: Vec<(String, Object)> = match std::env::args()
        .skip(1)
        .map(|a| {
            let (name, path) = a.split_once('=').ok_or(format!("`{a}`: expected NAME=OBJECT"))?;
            Ok((name.to_string(), load(path)?))
        })
        .collect::<Result<Vec<_>, String>>()
    {
        Ok(o) if !o.is_empty() => o,
        Ok(_) => {
            eprintln!("usage: xdp_cost NAME=OBJECT.bpf.o [NAME=OBJECT.bpf.o ...]");
            return std::process::ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("xdp_cost: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    let frames = frames();
    let repeat = env_or("XDP_COST_REPEAT", 1_000_000) as u32;
    let rounds = env_or("XDP_COST_ROUNDS", 21);
    // Rounds alternate the builds so that a noisy moment hits all alike.
    let mut ns = vec![vec![Vec::new(); objs.len()]; frames.len()];
    for _ in 0..rounds {
        for (fi, (_, f)) in frames.iter().enumerate() {
            for (oi, (_, o)) in objs.iter().enumerate() {
                match ns_per_packet(o, f, repeat) {
                    Ok(v) => ns[fi][oi].push(v),
                    Err(e) => {
                        eprintln!("xdp_cost: {e}");
                        return std::process::ExitCode::from(1);
                    }
                }
            }
        }
    }
    print!("{:<20}", "ns/pkt median/min");
    for (n, _) in &objs {
        print!(" {n:>12}");
    }
    println!();
    for (fi, (name, _)) in frames.iter().enumerate() {
        print!("{name:<20}");
        for v in &ns[fi] {
            print!(
                " {:>7.1}/{:<4.0}",
                median(v.clone()),
                v.iter().cloned().fold(f64::MAX, f64::min)
            );
        }
        println!();
    }
    std::process::ExitCode::SUCCESS
}
