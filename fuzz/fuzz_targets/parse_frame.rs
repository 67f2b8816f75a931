//! Fuzz target: arbitrary bytes through every parser entry point, the
//! Rust reference classifier and the full per-frame pipeline. None may
//! panic, and the pipeline must leave the frame zeroed.
#![no_main]

use std::sync::OnceLock;

use furui::classify::reference::classify_frame;
use furui::classify::PrefixSet;
use furui::config::Config;
use furui::parse::{parse_ethernet, parse_link, LinkType};
use furui::pipeline::Pipeline;
use libfuzzer_sys::fuzz_target;

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

const LINKS: [LinkType; 6] =
    [LinkType::Ethernet, LinkType::RawIp, LinkType::Null, LinkType::LinuxSll, LinkType::LinuxSll2, LinkType::Ppp];

fuzz_target!(|data: &[u8]| {
    let _ = parse_ethernet(data);
    for l in LINKS {
        let _ = parse_link(l, data);
    }
    let set: PrefixSet = config().domestic.clone();
    let _ = classify_frame(data, &set, &furui::classify::walk::DecapConfig::default());

    let _ = furui::select::tls::fingerprint_record(data);
    let mut scratch = Vec::new();
    let mut crypto = furui::select::quic::CryptoStream::default();
    let _ = furui::select::quic::open_initials(data, &mut scratch, &mut crypto);
    assert!(scratch.iter().all(|b| *b == 0), "QUIC plaintext not erased");
    let _ = furui::select::quic::read_frames(data, &mut crypto);
    if let Some(m) = crypto.client_hello() {
        let _ = furui::select::tls::fingerprint_handshake(m, furui::select::tls::Transport::Quic);
    }

    let mut p = Pipeline::new(config(), 0);
    let mut frame = data.to_vec();
    p.process_frame(&mut frame, 1);
    assert!(frame.iter().all(|b| *b == 0), "frame not erased");
    let mut frame = data.to_vec();
    p.process_packet(LinkType::RawIp, &mut frame, 2);
    assert!(frame.iter().all(|b| *b == 0), "frame not erased");
    p.drain();
});
