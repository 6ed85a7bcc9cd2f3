#!/usr/bin/env bash
# Bulk-check benchmark: a staff file of N rows (default 1,000,000) end to end —
# file → `safehire batch` → server over mTLS → results file — on a fresh server in a
# temporary folder. Prints rows/s; the target is ≥ 100,000 rows/s.
#
#   bench/bulk.sh [ROWS]
set -euo pipefail
rows="${1:-1000000}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cargo build --release --locked --quiet --manifest-path "$root/Cargo.toml"
bin="$root/target/release/safehire"
work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"

"$bin" serve --listen 127.0.0.1:0 2> serve.log &
server=$!
for _ in $(seq 100); do
  addr="$(sed -n 's/.*safehire listening on \([0-9.:]*\).*/\1/p' serve.log | head -1)"
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { cat serve.log; echo "the server did not start" >&2; exit 1; }
export SAFEHIRE_SERVER="https://$addr"

"$bin" gen records 10000 --seed 1 > records.csv
"$bin" --as registrar registry import records.csv > /dev/null
"$bin" gen people "$rows" --seed 2 --out staff.csv

start=$(date +%s.%N)
"$bin" --as employer batch staff.csv --purpose periodic --out results.csv
end=$(date +%s.%N)
awk -v n="$rows" -v s="$start" -v e="$end" \
  'BEGIN { t = e - s; printf "bulk: %d rows in %.2f s = %.0f rows/s (target >= 100000)\n", n, t, n / t }'
