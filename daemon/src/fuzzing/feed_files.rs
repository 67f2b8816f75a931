//! Fuzz target: an imported rules file — the first byte picks the format
//! (Suricata `.rules`, STIX/MISP `.json`, MISP `.csv`, Zeek `.intel`), the
//! rest is its text, as a feed or a TAXII server could hand it over. It
//! compiles or is refused with errors on lines inside the file, both when
//! refusals fail the load and when they are skipped; nothing panics; a
//! compiled ruleset has unique ids and matches a packet.
use std::path::PathBuf;

use crate::classify::Class;
use crate::craft::{FrameSpec, Transport};
use crate::parse::parse_ethernet;

const FORMATS: [&str; 4] = ["rules", "json", "csv", "intel"];

pub fn check(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let name = PathBuf::from(format!("fuzz-feed.{}", FORMATS[usize::from(pick) % FORMATS.len()]));
    let text = String::from_utf8_lossy(rest).into_owned();
    let lines = text.lines().count() + 1;
    for skip in [false, true] {
        let opts = crate::config::rules::import::ImportOptions {
            skip_refused: skip,
            ..Default::default()
        };
        match crate::config::rules::compile_with(&[(name.clone(), text.clone())], Vec::new(), &opts) {
            Err(e) => {
                for err in &e.0 {
                    assert!(
                        err.line <= lines,
                        "error line {} beyond the file's {lines} lines",
                        err.line
                    );
                    assert_eq!(err.file, name);
                }
                let _ = e.to_string();
            }
            Ok(rs) => {
                let mut ids = std::collections::HashSet::new();
                assert!(rs.rules.iter().all(|r| ids.insert(r.id.clone())), "rule ids are unique");
                assert!(
                    skip || rs.imports.refusals.is_empty(),
                    "a refusal is an error unless skipped"
                );
                let frame = FrameSpec::new("203.0.113.5", "192.0.2.1")
                    .transport(Transport::Tcp {
                        src_port: 4444,
                        dst_port: 80,
                        flags: 0x18,
                    })
                    .payload(b"BEACON:x")
                    .build();
                let h = parse_ethernet(&frame).expect("a crafted frame parses");
                let mut out = Vec::new();
                let mut st = rs.new_match_state();
                rs.matching(Class::Inbound, &h, h.payload(&frame), None, true, &mut st, 1, &mut out);
                assert!(out.iter().all(|i| usize::from(*i) < rs.rules.len()));
            }
        }
    }
}
