#!/usr/bin/env bash
# make bench, part 4: the XDP program's cost per packet (BPF_PROG_TEST_RUN
# timing), for this tree's program and the programs of earlier commits,
# side by side in one run (the builds alternate within each round).
#
#   XDP_BASES="e167d06 c6c2a3c" bash deploy/bench/xdp-cost.sh
#
# Each commit's ebpf/ is compiled with the same clang and flags as the
# build (daemon/build.rs). Default bases: the last program that parsed
# only Ethernet/VLAN/IP (e167d06), and main before the current session's
# changes if given. Needs root.
set -euo pipefail
cd "$(dirname "$0")/../.."
CLANG=${CLANG:-clang-19}
BASES=${XDP_BASES:-e167d06}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
arch=$(uname -m)
# libbpf's headers (bpf_helpers.h), as libbpf-cargo passes them.
inc=$(ls -d target/*/build/libbpf-sys-*/out/include 2>/dev/null | head -1)
[ -n "$inc" ] || { echo "xdp-cost.sh: build first (libbpf-sys headers not found)" >&2; exit 1; }

compile() { # src-dir name
  "$CLANG" -O2 -g -Wall -target bpf -I"$inc" -I"/usr/include/$arch-linux-gnu" \
    -D__TARGET_ARCH_x86 -c "$1/furui.bpf.c" -o "$dir/$2.bpf.o"
}
args=()
for c in $BASES; do
  mkdir -p "$dir/src-$c"
  git archive "$c" ebpf | tar -x -C "$dir/src-$c"
  compile "$dir/src-$c/ebpf" "$c"
  args+=("$c=$dir/$c.bpf.o")
done
compile ebpf HEAD
args+=("HEAD=$dir/HEAD.bpf.o")
cargo run -q --release --example xdp_cost -- "${args[@]}"
