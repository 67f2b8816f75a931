#!/usr/bin/env bash
# make fuzz: every fuzz target for a bounded number of runs each (default
# 1,000,000; FUZZ_RUNS to change, FUZZ_TARGETS to pick some, FUZZ_JOBS
# targets at once, default 2), each bounded by FUZZ_SECONDS (default 1800),
# seeded from ../shared/pcaps, tests/data, config/ and generated trails and
# spools. A crash stops with the input kept under fuzz/artifacts/<target>/;
# copy it to fuzz/regressions/<target>/ so `cargo test` replays it
# (tests/fuzz_regressions.rs). cargo-fuzz needs nightly flags;
# RUSTC_BOOTSTRAP lets the machine's stable toolchain accept them.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
# The spool target writes and fsyncs a file per input: keep it in memory.
[ -d /dev/shm ] && export TMPDIR=${TMPDIR:-/dev/shm}
RUNS=${FUZZ_RUNS:-1000000}
SECONDS_EACH=${FUZZ_SECONDS:-1800}
JOBS=${FUZZ_JOBS:-2}
TARGETS=${FUZZ_TARGETS:-parse_frame pipeline_sequence capture_file spool_file audit_trail config_files feed_files api_query control_line}
mkdir -p ../target/fuzz-logs

seed() {
  local c=corpus/$1
  mkdir -p "$c"
  case $1 in
    parse_frame)
      cargo run -q --bin seed_corpus -- frames ../../shared/pcaps "$c"
      cargo run -q --bin seed_corpus -- frames ../tests/data "$c" ;;
    pipeline_sequence)
      cargo run -q --bin seed_corpus -- sequences ../../shared/pcaps "$c"
      cargo run -q --bin seed_corpus -- sequences ../../shared/pcaps/tunnels "$c"
      cargo run -q --bin seed_corpus -- sequences ../tests/data "$c" ;;
    capture_file)
      find ../../shared/pcaps ../tests/data -maxdepth 2 \( -name '*.pcap' -o -name '*.pcapng' \) -size -256k \
        -exec sh -c 'cp "$1" "$2/$(basename "$1")"' _ {} "$c" \; ;;
    spool_file) cargo run -q --bin seed_corpus -- spool "$c" ;;
    audit_trail) cargo run -q --bin seed_corpus -- trail "$c" ;;
    config_files)
      for f in ../config/*.toml; do
        { cat "$f"; printf '\0'; cat ../config/rules/*.toml; printf '\0'; cat ../config/prefixes/* 2>/dev/null | head -50; } > "$c/$(basename "$f")"
      done ;;
    feed_files)
      # The first byte picks the format: 0 rules, 1 json, 2 csv, 3 intel.
      for f in ../config/feeds/* ../tests/data/*.json; do
        [ -f "$f" ] || continue
        case $f in
          *.rules) b='\0' ;; *.json) b='\1' ;; *.csv) b='\2' ;; *.intel) b='\3' ;; *) continue ;;
        esac
        { printf "$b"; cat "$f"; } > "$c/$(basename "$f")"
      done ;;
    api_query)
      for q in '/v1/records?after=0' '/v1/records?after=1&limit=2' '/v1/audit?after=0&limit=5' \
               '/v1/config-history?after=3' '/v1/counters' '/v1/checkpoint' '/v1/records?after=%31&limit=1000'; do
        printf '\0%s' "$q" > "$c/a$(echo "$q" | md5sum | cut -c1-8)"
        printf '\1%s' "$q" > "$c/o$(echo "$q" | md5sum | cut -c1-8)"
      done ;;
    control_line)
      printf 'reload\n' > "$c/reload"
      printf 'reload confirm-domestic-removal\n' > "$c/confirm" ;;
  esac
}

run() {
  local t=$1 log=../target/fuzz-logs/$1.log
  seed "$t" >/dev/null
  # Inputs that once crashed a target are run first, every time.
  if [ -d "regressions/$t" ] && ! cargo fuzz run "$t" "regressions/$t" -- -runs=0 >"$log.regressions" 2>&1; then
    echo "$t: a regression input fails again (see fuzz/$log.regressions)"; return 1
  fi
  local max_len=4096
  [ "$t" = pipeline_sequence ] && max_len=65536
  [ "$t" = capture_file ] && max_len=262144
  [ "$t" = config_files ] && max_len=16384
  [ "$t" = feed_files ] && max_len=16384
  if cargo fuzz run "$t" "corpus/$t" -- -runs="$RUNS" -max_len="$max_len" -max_total_time="$SECONDS_EACH" \
       -print_final_stats=1 >"$log" 2>&1 && grep -q '^Done [0-9]* runs' "$log"; then
    echo "$t: $(grep '^Done' "$log")"
  else
    echo "$t: FAILED (see fuzz/$log and fuzz/artifacts/$t/)"; grep -E '^==[0-9]+==|panicked' "$log" | head -5
    return 1
  fi
}

# Build once, then run JOBS targets at a time.
cargo fuzz build >/dev/null 2>&1 || cargo fuzz build
status=0
running=0
for t in $TARGETS; do
  run "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$JOBS" ]; then
    wait -n || status=1
    running=$((running - 1))
  fi
done
while [ "$running" -gt 0 ]; do
  wait -n || status=1
  running=$((running - 1))
done
exit $status
