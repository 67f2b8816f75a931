//! Compiles the XDP classifier (ebpf/) into a libbpf skeleton in OUT_DIR.
use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const SRC: &str = "../ebpf/furui.bpf.c";
const HEADERS: &[&str] = &[
    "../ebpf/furui_consts.h",
    "../ebpf/furui_structs.h",
    "../ebpf/furui_maps.h",
    "../ebpf/furui_walk.h",
];

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo")).join("furui.skel.rs");
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".to_string());
    // Debian keeps <asm/types.h> under the multiarch directory, which a
    // `-target bpf` compile does not search by default.
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let multiarch = format!("-I/usr/include/{arch}-linux-gnu");
    SkeletonBuilder::new()
        .source(SRC)
        .clang(clang)
        .clang_args(["-O2", "-g", "-Wall", "-Werror", multiarch.as_str()])
        .build_and_generate(&out)
        .unwrap_or_else(|e| panic!("building the XDP skeleton from {SRC}: {e:#}"));
    println!("cargo:rerun-if-changed={SRC}");
    for h in HEADERS {
        println!("cargo:rerun-if-changed={h}");
    }
    println!("cargo:rerun-if-env-changed=CLANG");
}
