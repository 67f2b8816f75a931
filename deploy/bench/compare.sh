#!/usr/bin/env bash
# make bench, part 5: the user-space data path before and after, side by
# side in one run. Builds BASE (a commit; default b0b9140, the data path
# before the carrier-feeds work) in a temporary worktree with its own
# target directory, then runs for both builds:
#   - callgrind.sh on the plain frames (instructions per packet;
#     deterministic, so one run each);
#   - criterion's per_frame and loaded_ruleset groups, the builds
#     alternating COMPARE_ROUNDS times (default 3), since time is noisy.
#
#   bash deploy/bench/compare.sh [BASE]
set -euo pipefail
cd "$(dirname "$0")/../.."
BASE=${1:-${BENCH_BASE:-b0b9140}}
ROUNDS=${COMPARE_ROUNDS:-3}
FILTER='per_frame/copy_parse_select_erase|loaded_ruleset'
tmp=$(mktemp -d)
wt="$tmp/base"
cleanup() {
  git worktree remove --force "$wt" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
git worktree add --detach "$wt" "$BASE" >/dev/null 2>&1 ||
  { echo "compare.sh: cannot check out $BASE" >&2; exit 1; }

bench_exe() { # dir → path of its parse_erase bench executable (builds it)
  (cd "$1" && cargo bench --bench parse_erase --no-run --message-format=json 2>/dev/null) |
    grep -o '"executable":"[^"]*parse_erase[^"]*"' | tail -1 | cut -d'"' -f4
}

echo "building $BASE (its own target directory) ..."
# furui-gen needs the `testkit` feature where the base has it.
kit=""
grep -q '^testkit' "$wt/daemon/Cargo.toml" && kit="--features testkit"
(cd "$wt" && cargo build --release -q $kit --bin furui --bin furui-gen)
base_bench=$(bench_exe "$wt")
head_bench=$(bench_exe .)
[ -x "$base_bench" ] && [ -x "$head_bench" ] || { echo "compare.sh: bench executables not found" >&2; exit 1; }

echo "== callgrind, $BASE"
FURUI="$wt/target/release/furui" FURUI_GEN="$wt/target/release/furui-gen" CALLGRIND_ENCAPS="" \
  bash deploy/bench/callgrind.sh
echo "== callgrind, HEAD"
CALLGRIND_ENCAPS="" bash deploy/bench/callgrind.sh

for r in $(seq 1 "$ROUNDS"); do
  for who in "$BASE" HEAD; do
    exe=$head_bench
    [ "$who" = HEAD ] || exe=$base_bench
    echo "== criterion, $who, round $r"
    "$exe" --bench "$FILTER" --measurement-time 3 --warm-up-time 1 --noplot --output-format bencher 2>/dev/null |
      grep '^test'
  done
done
