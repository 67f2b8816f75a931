//! Fuzz target: arbitrary bytes as a spool file left by an earlier run
//! (on tmpfs). Opening and draining it must not panic; every line is
//! either handed out, counted corrupt, or already done; a drain that
//! handled everything leaves the spool empty; a second drain finds
//! nothing to send twice.
use std::path::PathBuf;
use std::sync::OnceLock;

use crate::export::spool::{Disposition, Spool};

fn path() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("furui-fuzz-spool-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("spool dir");
        dir.join("fuzz.spool")
    })
}

pub fn check(data: &[u8]) {
    let p = path();
    std::fs::write(p, data).expect("write spool");
    let Ok(mut s) = Spool::open(p, 1 << 30) else { return };
    // Whole lines only: a torn last line is cut off at open.
    let lines = data.iter().filter(|b| **b == b'\n').count() as u64;
    let mut handed = 0u64;
    let d = s
        .drain(|e| {
            handed += 1;
            let _ = e.view();
            Ok(if handed.is_multiple_of(2) {
                Disposition::Sent
            } else {
                Disposition::Dropped("fuzz")
            })
        })
        .expect("drain on tmpfs");
    assert_eq!(d.sent + d.dropped_total() - d.corrupt, handed);
    assert!(handed + d.corrupt <= lines, "more entries than lines");
    assert!(s.is_empty(), "everything was handled, yet the spool is not empty");
    let again = s.drain(|_| panic!("sent twice")).expect("second drain");
    assert_eq!(again.sent + again.dropped_total(), 0);
    let _ = std::fs::remove_file(p);
}
