#!/usr/bin/env bash
# The whole benchmark suite (see BENCHMARKS.md): builds the release binary, then runs
# `safehire bench` with the arguments given (e.g. --quick). It starts its own servers in a
# temporary folder, prints the table, and writes the JSON report to bench-report.json (or
# --report FILE). Under 10 minutes on the 2-core development machine; --quick under one.
#
#   bench/suite.sh [--quick] [safehire bench options]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cargo build --release --locked --quiet --manifest-path "$root/Cargo.toml"
exec "$root/target/release/safehire" bench "$@"
