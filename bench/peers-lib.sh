# What bench/peers.sh and bench/peers-ab.sh share (sourced): start governd pinned to CPU 0, make keys.
# Needs GOVERND, LOGS and the array `pids` (the servers to stop) from the script that sources it.

serve() {  # serve NAME CONFIG PORT: governd on CPU 0 with a fresh ledger; waits for /readyz
  rm -f "$LOGS/$1.db"*
  GOVERND_STORAGE="$LOGS/$1.db" taskset -c 0 "$GOVERND" serve --config "$2" --port "$3" \
    > "$LOGS/$1.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$3/readyz" >/dev/null && return; sleep 0.1; done
  echo "governd $1 did not start:" >&2; cat "$LOGS/$1.log" >&2; exit 1
}

key() {  # key PORT PRINCIPAL: a new API key of PRINCIPAL
  curl -sf -X POST "http://127.0.0.1:$1/admin/v1/keys" -H "authorization: Bearer $GOVERND_ADMIN_KEY" \
    -d "{\"principal\": \"$2\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])'
}
