#!/usr/bin/env bash
# make fuzz: the packet-parser fuzz target for a bounded number of runs
# (default 1,000,000; FUZZ_RUNS to change), seeded with every frame of
# ../shared/pcaps and tests/data (QUIC Initials). cargo-fuzz needs nightly
# flags; RUSTC_BOOTSTRAP lets the machine's stable toolchain accept them.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
RUNS=${FUZZ_RUNS:-1000000}
cargo run -q --bin seed_corpus -- ../../shared/pcaps corpus/parse_frame
cargo run -q --bin seed_corpus -- ../tests/data corpus/parse_frame
cargo fuzz run parse_frame corpus/parse_frame -- -runs="$RUNS" -max_len=4096 -max_total_time=1800 2>&1 | tee ../target/fuzz.log | grep -E '^(#[0-9]+ +(INITED|DONE)|Done|==[0-9]+==)' || true
grep -q '^Done [0-9]* runs' ../target/fuzz.log || { echo "fuzzing did not complete cleanly"; exit 1; }
grep '^Done' ../target/fuzz.log
