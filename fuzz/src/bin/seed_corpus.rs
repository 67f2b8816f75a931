//! Writes every frame of the shared captures into the fuzz corpus
//! directory (one file per frame), as the seed corpus.

use std::path::PathBuf;

fn main() {
    let mut args = std::env::args().skip(1);
    let pcaps = PathBuf::from(args.next().expect("usage: seed_corpus PCAP_DIR CORPUS_DIR"));
    let out = PathBuf::from(args.next().expect("usage: seed_corpus PCAP_DIR CORPUS_DIR"));
    std::fs::create_dir_all(&out).expect("create corpus dir");
    let mut n = 0;
    for e in std::fs::read_dir(&pcaps).expect("read pcap dir") {
        let p = e.expect("dir entry").path();
        if p.extension().is_none_or(|x| x != "pcap") {
            continue;
        }
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
