#!/usr/bin/env bash
# make bench, part 2: instructions per packet under callgrind — a figure
# that does not move with the machine's load, unlike time.
#
# The loaded workload (furui::benchkit: 100,000 CIDR indicators, 1,000
# sealed patterns, 1,000 JA4 values; a 4-frame mix, half selected) is
# replayed through `furui replay` — the live pipeline code — twice, with
# 4,000 and 44,000 frames. The difference divided by 40,000 is the cost
# per packet of parse → select → flow → erase, with start-up (loading the
# ruleset, reading the config) subtracted out. "of which pipeline" is the
# same difference for the per-frame pipeline alone (callgrind's inclusive
# count for Pipeline::select_and_erase), without reading the capture.
set -euo pipefail
cd "$(dirname "$0")/../.."
FURUI=${FURUI:-target/release/furui}
GEN=${FURUI_GEN:-target/release/furui-gen}
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind is not installed (make deps)" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

instructions() { # out-file → total instructions executed
  awk '/^(summary|totals):/ { print $2; exit }' "$1"
}
pipeline_instructions() { # out-file → inclusive instructions of the per-frame pipeline
  callgrind_annotate --inclusive=yes "$1" 2>/dev/null |
    awk '/Pipeline::select_and_erase/ && !seen { gsub(",", "", $1); print $1; seen = 1 }'
}

# Plain frames at 64 and 1500 bytes, then the 64-byte mix inside each
# encapsulation (CALLGRIND_ENCAPS="" for the plain rows only).
ENCAPS=${CALLGRIND_ENCAPS-"mpls:16 gre:1 erspan2:7 vxlan:5001 geneve:5001 gtpu:1 ipip mpls-udp:21"}
printf '%-14s %16s %16s %14s %18s\n' frames "Ir (4,000 fr)" "Ir (44,000 fr)" "Ir per packet" "of which pipeline"
for run in 64 1500 $ENCAPS; do
  case $run in
    64|1500) size=$run; label="${run}B"; encap=() ;;
    *) size=64; label="$run"; encap=(--encap "$run,198.18.0.1,198.18.0.2") ;;
  esac
  "$GEN" --bench-fixture "$dir" --size "$size" "${encap[@]}"
  declare -A ir=() pl=()
  for n in 1000 11000; do
    # Records go to stdout, the counters to stderr.
    valgrind --tool=callgrind --log-file="$dir/valgrind.log" --callgrind-out-file="$dir/cg-$size-$n.out" \
      "$FURUI" replay --config "$dir/furui.toml" --pcap "$dir/replay-$size-$n.pcap" \
      >/dev/null 2>"$dir/replay.out" || { cat "$dir/valgrind.log" "$dir/replay.out" >&2; exit 1; }
    grep -q "frames erased: *$((n * 4))\$" "$dir/replay.out" || { echo "replay of $n mixes did not erase every frame" >&2; cat "$dir/replay.out" >&2; exit 1; }
    ir[$n]=$(instructions "$dir/cg-$size-$n.out")
    pl[$n]=$(pipeline_instructions "$dir/cg-$size-$n.out")
  done
  printf '%-14s %16s %16s %14s %18s\n' "$label" "${ir[1000]}" "${ir[11000]}" \
    "$(( (ir[11000] - ir[1000]) / 40000 ))" "$(( (${pl[11000]:-0} - ${pl[1000]:-0}) / 40000 ))"
done
