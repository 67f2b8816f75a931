//! Fuzz target: a sequence of frames through one pipeline with a loaded
//! ruleset (payload signatures, scans, port and flag rules), so that state
//! carries across packets: ClientHellos split over segments, several QUIC
//! datagrams, fragments, idle expiry and evictions from a small flow table.
//! Input: repeated `[len: u16 LE][dt: u8][len bytes]`; time advances by
//! `dt` × 10 ms per frame. No frame may survive unerased, nothing may
//! panic, and every record must name only rules of the ruleset.
use std::sync::{Arc, OnceLock};

use crate::config::Config;
use crate::pipeline::Pipeline;

const RULES: &str = r#"
version = "fuzz-1"

[[rule]]
id = "sig-window"
measures = ["inbound", "outbound", "transit"]
payload = [{ text = "EVIL-CMD", offset = 0, depth = 64 }]

[[rule]]
id = "sig-anywhere"
measures = ["inbound", "outbound", "transit"]
payload = [{ hex = "16030100", offset = 0, depth = 0 }]

[[rule]]
id = "syn-scan"
measures = ["inbound", "transit"]
protocols = ["tcp"]
tcp_flags = { mask = "SYN,ACK", value = "SYN" }
scan = { distinct = "destinations", more_than = 3, within_secs = 10 }

[[rule]]
id = "ports"
measures = ["inbound", "outbound", "transit"]
protocols = ["udp", "tcp"]
dst_ports = ["443", "4433-4440"]
size = "0-1500"
"#;

fn config() -> &'static Config {
    static C: OnceLock<Config> = OnceLock::new();
    C.get_or_init(|| {
        let mut cfg = Config::parse(
            std::path::Path::new("fuzz.toml"),
            "[capture]\ninterface = \"x\"\n[domestic]\nprefixes = [\"192.168.0.0/16\", \"10.0.0.0/8\", \"2001:db8::/32\"]\n[[indicators]]\nname = \"some\"\nprefixes = [\"203.0.113.0/24\", \"2001:db8:ffff::/48\"]\n[flows]\nmax_flows = 64\nidle_timeout_secs = 1\n[records]\npath = \"r\"\n",
        )
        .expect("fuzz config");
        let rules = crate::config::rules::compile(&[("fuzz.toml".into(), RULES.into())], Vec::new()).expect("fuzz rules");
        cfg.rules = Arc::new(rules);
        cfg
    })
}

pub fn check(data: &[u8]) {
    let cfg = config();
    let mut p = Pipeline::new(cfg, 0);
    let mut now = 1_000_000_000u64;
    let mut rest = data;
    let mut records = 0usize;
    while rest.len() >= 3 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]])) % 4096;
        let dt = rest[2];
        rest = &rest[3..];
        let take = len.min(rest.len());
        let mut frame = rest[..take].to_vec();
        rest = &rest[take..];
        now += u64::from(dt) * 10_000_000;
        p.process_frame(&mut frame, now);
        assert!(frame.iter().all(|b| *b == 0), "frame not erased");
        if dt == 255 {
            p.expire(now);
        }
        records += p.take_records().count();
    }
    p.expire(now + 3_600_000_000_000);
    for r in p.take_records() {
        for id in &r.rules {
            assert!(
                ["sig-window", "sig-anywhere", "syn-scan", "ports"].contains(&id.as_ref()),
                "a rule id that is not in the ruleset"
            );
        }
        records += 1;
    }
    let _ = records;
}
