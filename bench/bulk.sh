#!/usr/bin/env bash
# Bulk-check benchmark: a staff file of N rows (default 1,000,000) end to end —
# file → `safehire batch` → server over mTLS → results file — on a fresh server in a
# temporary folder. Prints rows/s; the target is ≥ 100,000 rows/s.
#
#   bench/bulk.sh [ROWS]
set -euo pipefail
rows="${1:-1000000}"
source "$(dirname "$0")/lib.sh"

"$bin" gen records 10000 --seed 1 > records.csv
"$bin" --as registrar registry import records.csv > /dev/null
"$bin" gen people "$rows" --seed 2 --out staff.csv

start=$(date +%s.%N)
"$bin" --as employer batch staff.csv --purpose periodic --out results.csv
end=$(date +%s.%N)
awk -v n="$rows" -v s="$start" -v e="$end" \
  'BEGIN { t = e - s; printf "bulk: %d rows in %.2f s = %.0f rows/s (target >= 100000)\n", n, t, n / t }'
