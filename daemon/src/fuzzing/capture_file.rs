//! Fuzz target: arbitrary bytes as a capture file (pcap or pcapng, read
//! the way `furui replay` reads one). It may be refused, never panic;
//! every packet handed out lies within what was read.
use crate::offline::for_each_raw_from;

pub fn check(data: &[u8]) {
    let mut seen = 0u64;
    let r = for_each_raw_from(std::io::Cursor::new(data), std::path::Path::new("fuzz.pcap"), |p| {
        assert!(p.data.len() <= data.len(), "a packet larger than the file");
        assert!(u64::from(p.orig_len) >= p.data.len() as u64 || p.orig_len == 0);
        seen += 1;
    });
    if let Ok(summary) = r {
        assert!(summary.packets >= seen, "packets handed out but not counted");
    }
}
