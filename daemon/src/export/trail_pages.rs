//! Pages of the audit trail by entry number, for the oversight API,
//! without reading the whole trail per request: a sparse index (the byte
//! offset of every `EVERY`th entry) is extended with what was appended
//! since the last request, and a page is read from the nearest indexed
//! entry. A request reads at most `MAX_SCAN` entries, matching or not,
//! and says where the next one should start.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use serde_json::Value;

const EVERY: u64 = 256;
/// Entries looked at per request (a filter that matches little still
/// answers quickly; the client continues from `next`).
pub const MAX_SCAN: usize = 50_000;

pub struct TrailPages {
    path: PathBuf,
    /// (inode, length) of the file the index describes.
    file: Option<(u64, u64)>,
    /// (seq, byte offset) of every EVERY-th entry, in order.
    marks: Vec<(u64, u64)>,
    /// Entries indexed, and the offset after the last one.
    entries: u64,
    end: u64,
}

/// Entries after a sequence number, and where the next page starts.
#[derive(Debug, PartialEq, Eq)]
pub struct Page {
    pub lines: Vec<String>,
    /// The last entry looked at (pass it as `after`), or the request's
    /// `after` if there was none.
    pub next: u64,
}

fn seq_of(line: &str) -> Option<u64> {
    serde_json::from_str::<Value>(line).ok()?["seq"].as_u64()
}

impl TrailPages {
    pub fn new(path: PathBuf) -> TrailPages {
        TrailPages {
            path,
            file: None,
            marks: Vec::new(),
            entries: 0,
            end: 0,
        }
    }

    /// Indexes what was appended since the last call (everything if the
    /// file was replaced or shortened).
    fn extend(&mut self, f: &mut File) -> std::io::Result<()> {
        let meta = f.metadata()?;
        let same = self
            .file
            .is_some_and(|(ino, _)| ino == meta.ino() && meta.len() >= self.end);
        if !same {
            self.marks.clear();
            self.entries = 0;
            self.end = 0;
        }
        self.file = Some((meta.ino(), meta.len()));
        f.seek(SeekFrom::Start(self.end))?;
        let mut r = BufReader::with_capacity(1 << 16, f);
        let mut line = String::new();
        loop {
            line.clear();
            let n = r.read_line(&mut line)?;
            // Only whole lines: one being appended is indexed next time.
            if n == 0 || !line.ends_with('\n') {
                break;
            }
            if self.entries.is_multiple_of(EVERY) {
                let Some(seq) = seq_of(&line) else { break };
                self.marks.push((seq, self.end));
            }
            self.entries += 1;
            self.end += n as u64;
        }
        Ok(())
    }

    /// Up to `limit` entries with a sequence number above `after` for
    /// which `keep` holds.
    pub fn page(&mut self, after: u64, limit: usize, keep: impl Fn(&Value) -> bool) -> std::io::Result<Page> {
        let mut f = File::open(&self.path)?;
        self.extend(&mut f)?;
        let start = match self.marks.partition_point(|(seq, _)| *seq <= after) {
            0 => 0,
            i => self.marks[i - 1].1,
        };
        f.seek(SeekFrom::Start(start))?;
        let mut r = BufReader::with_capacity(1 << 16, f).take(self.end - start);
        let (mut lines, mut next, mut scanned) = (Vec::new(), after, 0);
        let mut line = String::new();
        while lines.len() < limit && scanned < MAX_SCAN {
            line.clear();
            if r.read_line(&mut line)? == 0 {
                break;
            }
            let Ok(e) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            let Some(seq) = e["seq"].as_u64() else { continue };
            if seq <= after {
                continue;
            }
            scanned += 1;
            next = seq;
            if keep(&e) {
                lines.push(line.trim_end().to_string());
            }
        }
        Ok(Page { lines, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn trail(dir: &std::path::Path, from: u64, to: u64) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("trail.jsonl"))
            .unwrap();
        for seq in from..=to {
            let kind = if seq % 100 == 0 { "reload" } else { "export" };
            writeln!(f, r#"{{"data":{{"seq":0}},"kind":"{kind}","seq":{seq}}}"#).unwrap();
        }
    }

    #[test]
    fn pages_follow_the_entry_number_and_see_what_is_appended() {
        let dir = tempfile::tempdir().unwrap();
        trail(dir.path(), 1, 1000);
        let mut p = TrailPages::new(dir.path().join("trail.jsonl"));
        let page = p.page(0, 3, |_| true).unwrap();
        assert_eq!(page.next, 3);
        assert_eq!(page.lines.len(), 3);
        assert!(page.lines[0].ends_with(r#""seq":1}"#));
        let page = p.page(700, 2, |_| true).unwrap();
        assert_eq!(page.next, 702, "from the middle, through the index");
        assert!(page.lines[0].ends_with(r#""seq":701}"#), "{:?}", page.lines);
        assert_eq!(p.marks.len(), 4, "one mark per 256 entries");
        let reloads = p.page(0, 100, |e| e["kind"] == "reload").unwrap();
        assert_eq!(reloads.lines.len(), 10);
        assert_eq!(reloads.next, 1000);
        trail(dir.path(), 1001, 1100);
        let page = p.page(1000, 1000, |e| e["kind"] == "reload").unwrap();
        assert_eq!((page.lines.len(), page.next), (1, 1100), "appended entries are seen");
        let page = p.page(5000, 10, |_| true).unwrap();
        assert_eq!(
            page,
            Page {
                lines: vec![],
                next: 5000
            }
        );
    }

    #[test]
    fn a_half_written_line_waits_and_a_replaced_file_is_indexed_again() {
        let dir = tempfile::tempdir().unwrap();
        trail(dir.path(), 1, 10);
        let path = dir.path().join("trail.jsonl");
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        write!(f, r#"{{"kind":"export","se"#).unwrap();
        let mut p = TrailPages::new(path.clone());
        assert_eq!(p.page(0, 100, |_| true).unwrap().lines.len(), 10);
        std::fs::remove_file(&path).unwrap();
        trail(dir.path(), 1, 4);
        assert_eq!(p.page(0, 100, |_| true).unwrap().lines.len(), 4);
    }
}
