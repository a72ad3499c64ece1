#!/usr/bin/env bash
# governd bare (bench/peers.yaml) and fully governed (bench/peers-full.yaml) side by side with
# LiteLLM and Portkey, in one run of ../shared/bench/peers (every gateway pinned to CPU 0).
# Usage: bench/peers.sh            all five targets (setup: bash ../shared/bench/peers/setup.sh)
#        PEERS=0 bench/peers.sh    direct and the two governd only
# Other knobs are run.sh's (LAT_S, TPUT_S, WARM_S, DELAY_MS, OUT). Prints run.sh's table.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HARNESS=$ROOT/../shared/bench/peers
GOVERND=${GOVERND:-$ROOT/.venv/bin/governd}
export GOVERND_ADMIN_KEY=peers-admin
LOGS=$(mktemp -d /tmp/governd-peers.XXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ "${PEERS:-1}" = 0 ] || "$HARNESS/peers.sh" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

# serve NAME CONFIG PORT: governd on CPU 0 with a fresh ledger; waits for /readyz
# shellcheck source=peers-lib.sh
source "$ROOT/bench/peers-lib.sh"

serve bare "$ROOT/bench/peers.yaml" 9100
serve full "$ROOT/bench/peers-full.yaml" 9101
targets=(
  direct=http://127.0.0.1:18000/v1
  "governd=http://127.0.0.1:9100/v1,Authorization:Bearer $(key 9100 bench)"
  "governd-full=http://127.0.0.1:9101/v1,Authorization:Bearer $(key 9101 bench/p1)"
)
if [ "${PEERS:-1}" != 0 ]; then
  "$HARNESS/peers.sh" start >&2
  targets+=(
    "litellm=http://127.0.0.1:4000/v1,Authorization:Bearer sk-peers-bench-local"
    "portkey=http://127.0.0.1:8787/v1,x-portkey-provider:openai,x-portkey-custom-host:http://127.0.0.1:18000/v1,Authorization:Bearer sk-mock"
  )
fi
"$HARNESS/run.sh" "${targets[@]}"
