//! Fuzz target: arbitrary bytes through every parser entry point, the
//! Rust reference classifier and the full per-frame pipeline. None may
//! panic, and the pipeline must leave the frame zeroed.
use std::sync::OnceLock;

use crate::classify::reference::classify_frame;
use crate::classify::PrefixSet;
use crate::config::Config;
use crate::parse::{parse_ethernet, parse_link, LinkType};
use crate::pipeline::Pipeline;

fn config() -> &'static Config {
    static C: OnceLock<Config> = OnceLock::new();
    C.get_or_init(|| {
        Config::parse(
            std::path::Path::new("fuzz.toml"),
            "[capture]\ninterface = \"x\"\n[domestic]\nprefixes = [\"192.168.0.0/16\", \"10.0.0.0/8\", \"2001:db8::/32\"]\n[[indicators]]\nname = \"all\"\nprefixes = [\"0.0.0.0/0\", \"::/0\"]\n[flows]\nmax_flows = 1024\n[records]\npath = \"r\"\n",
        )
        .expect("fuzz config")
    })
}

const LINKS: [LinkType; 6] = [
    LinkType::Ethernet,
    LinkType::RawIp,
    LinkType::Null,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::Ppp,
];

pub fn check(data: &[u8]) {
    let _ = parse_ethernet(data);
    for l in LINKS {
        let _ = parse_link(l, data);
    }
    let set: PrefixSet = config().domestic.clone();
    let _ = classify_frame(data, &set, &crate::classify::walk::DecapConfig::default());

    let _ = crate::select::tls::fingerprint_record(data);
    let mut scratch = Vec::new();
    let mut crypto = crate::select::quic::CryptoStream::default();
    let _ = crate::select::quic::open_initials(data, &mut scratch, &mut crypto);
    assert!(scratch.iter().all(|b| *b == 0), "QUIC plaintext not erased");
    let _ = crate::select::quic::read_frames(data, &mut crypto);
    if let Some(m) = crypto.client_hello() {
        let _ = crate::select::tls::fingerprint_handshake(m, crate::select::tls::Transport::Quic);
    }

    let mut p = Pipeline::new(config(), 0);
    let mut frame = data.to_vec();
    p.process_frame(&mut frame, 1);
    assert!(frame.iter().all(|b| *b == 0), "frame not erased");
    let mut frame = data.to_vec();
    p.process_packet(LinkType::RawIp, &mut frame, 2);
    assert!(frame.iter().all(|b| *b == 0), "frame not erased");
    p.drain();
}
