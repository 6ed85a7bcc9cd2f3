#!/usr/bin/env bash
# Yearly re-check benchmark: a roster of N members (default 100,000) is declared with
# `safehire roster replace`, then `safehire roster recheck` checks every member (one audited
# PERIODIC check each) and writes the results file. Prints both times.
#
#   bench/recheck.sh [MEMBERS]
set -euo pipefail
members="${1:-100000}"
source "$(dirname "$0")/lib.sh"

"$bin" gen records 10000 --seed 1 > records.csv
"$bin" --as registrar registry import records.csv > /dev/null
"$bin" gen people "$members" --seed 3 --out staff.csv

start=$(date +%s.%N)
"$bin" --as employer roster replace staff.csv > /dev/null
replace=$(elapsed "$start")
start=$(date +%s.%N)
"$bin" --as employer roster recheck --out results.csv > /dev/null || [ $? -le 4 ]
recheck=$(elapsed "$start")
echo "roster replace: $members members in $replace s"
echo "roster recheck: $members members in $recheck s (end to end, results file written)"
