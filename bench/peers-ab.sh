#!/usr/bin/env bash
# governd bare (bench/peers.yaml) against fully governed (bench/peers-full.yaml), loaded AT THE SAME
# TIME on one pinned core in front of ../shared/bench/peers's mock. Both servers share CPU 0, so
# the ratio of their req/s is the inverse ratio of their CPU per request, measured under the same
# noise: this machine's speed drifts 2-3x within minutes, which a run of targets one after the
# other (bench/peers.sh) cannot tell from a difference between them. At one connection against a
# 20 ms upstream the two barely contend: the p50 difference is governance's unloaded latency.
# Usage: bench/peers-ab.sh [ROUNDS (3)] [SECONDS (8)]   (setup: bash ../shared/bench/peers/setup.sh)
# Prints a markdown table and exits 0.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HARNESS=$ROOT/../shared/bench/peers
GOVERND=${GOVERND:-$ROOT/.venv/bin/governd}
ROUNDS=${1:-3}
SECS=${2:-8}
export GOVERND_ADMIN_KEY=peers-admin
LOGS=$(mktemp -d /tmp/governd-ab.XXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  "$HARNESS/mock.sh" stop
}
trap cleanup EXIT

# shellcheck source=peers-lib.sh
source "$ROOT/bench/peers-lib.sh"
load() {  # load PORT KEY CONNECTIONS FIELD: one wrk run on CPU 1, prints rps or p50_ms
  taskset -c 1 wrk -t1 -c"$3" -d"${SECS}s" --timeout 10s --latency -s "$HARNESS/bench.lua" \
    -H "Authorization: Bearer $2" "http://127.0.0.1:$1/v1/chat/completions" 2>&1 \
    | sed -n "s/^RESULT.* $4=\([0-9.]*\).*/\1/p"
}
both() {  # both CONNECTIONS FIELD: bare and full at once; prints "bare full"
  load 9100 "$KB" "$1" "$2" > "$LOGS/bare.out" & local a=$!
  load 9101 "$KF" "$1" "$2" > "$LOGS/full.out"
  wait "$a"
  echo "$(cat "$LOGS/bare.out") $(cat "$LOGS/full.out")"
}

"$HARNESS/mock.sh" 0 >&2
serve bare "$ROOT/bench/peers.yaml" 9100
serve full "$ROOT/bench/peers-full.yaml" 9101
KB=$(key 9100 bench)
KF=$(key 9101 bench/p1)
echo "== $(date -u +%FT%TZ) bare and full at once on CPU 0, ${ROUNDS} rounds of ${SECS} s" >&2
rows=()
for c in 32 128; do
  both "$c" rps >/dev/null  # warm-up
  for r in $(seq "$ROUNDS"); do
    read -r b f < <(both "$c" rps)
    rows+=("tput-c$c|$r|$b|$f|$(python3 -c "print(f'{$f / $b:.3f}')")")
  done
done
"$HARNESS/mock.sh" 20 >&2
both 1 p50_ms >/dev/null
for r in $(seq "$ROUNDS"); do
  read -r b f < <(both 1 p50_ms)
  rows+=("delay20-c1 p50 ms|$r|$b|$f|$(python3 -c "print(f'{$f - $b:+.3f} ms')")")
done
echo "| scenario | round | bare | full | full / bare (req/s), full - bare (p50) |"
echo "|---|--:|--:|--:|--:|"
for row in "${rows[@]}"; do echo "| ${row//|/ | } |"; done
