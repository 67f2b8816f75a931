//! Per-packet cost of the user-space data path: parse → classify → select
//! → flow → erase, at 64 B and 1500 B, beside the cost of the copy alone
//! (what the kernel does in copy mode) as a baseline.

use std::path::Path;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

use furui::config::Config;
use furui::craft::{FrameSpec, Transport};
use furui::pipeline::Pipeline;

fn cfg() -> Config {
    Config::parse(
        Path::new("bench.toml"),
        "[capture]\ninterface = \"x\"\n[domestic]\nprefixes = [\"192.0.2.0/24\", \"2001:db8::/32\"]\n[[indicators]]\nname = \"c2\"\nprefixes = [\"203.0.113.0/24\"]\n[records]\npath = \"r\"\n",
    )
    .expect("bench config")
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("per_frame");
    for size in [64usize, 1500] {
        // Half selected (indicator peer), half not: the common mix.
        let selected = FrameSpec::new("203.0.113.9", "192.0.2.1")
            .transport(Transport::Tcp {
                src_port: 4444,
                dst_port: 443,
                flags: 0x18,
            })
            .frame_len(size)
            .build();
        let unselected = FrameSpec::new("198.18.0.1", "192.0.2.1").frame_len(size).build();
        let mut buf = vec![0u8; size];
        g.throughput(Throughput::Elements(2));
        g.bench_function(format!("copy_only/{size}B"), |b| {
            b.iter(|| {
                buf.copy_from_slice(&selected);
                black_box(&buf);
                buf.copy_from_slice(&unselected);
                black_box(&buf);
            })
        });
        let mut p = Pipeline::new(&cfg(), 0);
        g.bench_function(format!("copy_parse_select_erase/{size}B"), |b| {
            b.iter(|| {
                buf.copy_from_slice(&selected);
                p.process_frame(&mut buf, 1);
                buf.copy_from_slice(&unselected);
                p.process_frame(&mut buf, 1);
                p.counters.clear();
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
