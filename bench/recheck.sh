#!/usr/bin/env bash
# Yearly re-check benchmark: a roster of N members (default 100,000) is declared with
# `safehire roster replace`, then `safehire roster recheck` checks every member (one audited
# PERIODIC check each) and writes the results file. Prints both times.
#
#   bench/recheck.sh [MEMBERS]
set -euo pipefail
members="${1:-100000}"
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
"$bin" gen people "$members" --seed 3 --out staff.csv

elapsed() { awk -v s="$1" -v e="$(date +%s.%N)" 'BEGIN { printf "%.2f", e - s }'; }
start=$(date +%s.%N)
"$bin" --as employer roster replace staff.csv > /dev/null
replace=$(elapsed "$start")
start=$(date +%s.%N)
"$bin" --as employer roster recheck --out results.csv > /dev/null || [ $? -le 4 ]
recheck=$(elapsed "$start")
echo "roster replace: $members members in $replace s"
echo "roster recheck: $members members in $recheck s (end to end, results file written)"
