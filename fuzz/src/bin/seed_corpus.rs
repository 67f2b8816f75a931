//! Writes seed corpora for the fuzz targets:
//! - `frames PCAP_DIR OUT`: every frame of every capture, one file each;
//! - `sequences PCAP_DIR OUT`: each capture's first 200 frames as one
//!   `pipeline_sequence` input (`[len u16 LE][dt u8][frame]`…);
//! - `trail OUT`: an audit trail signed with the fuzz key ([7; 32]);
//! - `spool OUT`: a spool file with waiting and done entries.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn captures(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read capture dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .collect();
    out.sort();
    out
}

fn frames(pcaps: &Path, out: &Path) {
    let mut n = 0;
    for p in captures(pcaps) {
        let stem = p.file_stem().unwrap_or_default().to_string_lossy().into_owned();
        let mut i = 0;
        let _ = furui::offline::for_each_packet(&p, |_, _, frame| {
            let _ = std::fs::write(out.join(format!("{stem}-{i}")), &*frame);
            furui::erase::erase(frame);
            i += 1;
        });
        n += i;
    }
    println!("seeded {n} frames into {}", out.display());
}

fn sequences(pcaps: &Path, out: &Path) {
    let mut n = 0;
    for p in captures(pcaps) {
        let stem = p.file_stem().unwrap_or_default().to_string_lossy().into_owned();
        let mut seq = Vec::new();
        let mut last = None;
        let mut count = 0;
        let _ = furui::offline::for_each_packet(&p, |link, ts, frame| {
            if count < 200 && link == furui::parse::LinkType::Ethernet && frame.len() < 4096 {
                let dt = last.map_or(0, |l: u64| (ts.saturating_sub(l) / 10_000_000).min(254)) as u8;
                seq.extend_from_slice(&(frame.len() as u16).to_le_bytes());
                seq.push(dt);
                seq.extend_from_slice(frame);
                last = Some(ts);
                count += 1;
            }
            furui::erase::erase(frame);
        });
        if count > 0 {
            let _ = std::fs::write(out.join(format!("{stem}-seq")), &seq);
            n += 1;
        }
    }
    println!("seeded {n} sequences into {}", out.display());
}

fn trail(out: &Path) {
    let dir = std::env::temp_dir().join(format!("furui-seed-trail-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let key = dir.join(furui::audit::KEY);
    std::fs::write(&key, [7u8; 32]).expect("key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("mode");
    let mut t = furui::audit::Trail::open(&dir, false).expect("trail");
    let entries = [
        ("start", serde_json::json!({ "config_sha256": "ab", "authorized": { "inbound": true } }), false),
        ("window", serde_json::json!({ "measure": "inbound", "open": true }), false),
        ("export", serde_json::json!({ "recipient": "soc-a", "records": 3, "purpose": "damage-prevention" }), false),
        (
            "checkpoint",
            serde_json::json!({ "furui_frames_received_total{queue=\"0\"}": 6, "furui_frames_erased_total{queue=\"0\"}": 6, "furui_xdp_packets_total{action=\"redirect\",class=\"inbound\"}": 6 }),
            true,
        ),
        ("retention_open", serde_json::json!({ "epoch": "inbound-2026-12-01", "measure": "inbound", "expires": "2026-12-31T00:00:00Z" }), false),
        ("purge", serde_json::json!({ "epoch": "inbound-2026-12-01", "records": 3, "expires": "2026-12-31T00:00:00Z", "key_destroyed": true }), false),
        ("stop", serde_json::json!({ "frames_received": 6, "frames_erased": 6 }), true),
    ];
    let mut witness = String::new();
    for (kind, data, sign) in entries {
        let line = t.append(kind, data, sign).expect("append");
        if kind == "checkpoint" {
            witness = line;
        }
    }
    let text = std::fs::read(dir.join(furui::audit::TRAIL)).expect("read trail");
    std::fs::write(out.join("trail"), &text).expect("seed");
    let mut with_witness = format!("W{}", witness.trim_end()).into_bytes();
    with_witness.push(b'\n');
    with_witness.extend_from_slice(&text);
    std::fs::write(out.join("trail-witness"), with_witness).expect("seed");
    let _ = std::fs::remove_dir_all(&dir);
    println!("seeded 2 trails into {}", out.display());
}

fn spool(out: &Path) {
    use furui::export::project::{Value, View};
    use furui::export::spool::{Disposition, Entry, Spool};
    let dir = std::env::temp_dir().join(format!("furui-seed-spool-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("s.spool");
    let mut s = Spool::open(&path, 1 << 20).expect("spool");
    for i in 0..4u64 {
        let v = View {
            key_epoch: "2026-12-04T13".into(),
            fields: vec![("packets_forward", Value::U64(i)), ("responder_port", Value::U16(443))],
        };
        s.push(&Entry::new("0123456789abcdef", Some("inbound"), false, &v)).expect("push");
    }
    let mut first = true;
    let _ = s.drain(|_| {
        if std::mem::take(&mut first) {
            Ok(Disposition::Sent)
        } else {
            Err(std::io::Error::other("collector down"))
        }
    });
    std::fs::copy(&path, out.join("spool")).expect("seed");
    let _ = std::fs::remove_dir_all(&dir);
    println!("seeded 1 spool into {}", out.display());
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: seed_corpus frames|sequences PCAP_DIR OUT | trail OUT | spool OUT";
    let out = PathBuf::from(args.last().expect(usage));
    std::fs::create_dir_all(&out).expect("create corpus dir");
    match args.first().map(String::as_str) {
        Some("frames") => frames(Path::new(args.get(1).expect(usage)), &out),
        Some("sequences") => sequences(Path::new(args.get(1).expect(usage)), &out),
        Some("trail") => trail(&out),
        Some("spool") => spool(&out),
        _ => panic!("{usage}"),
    }
}
