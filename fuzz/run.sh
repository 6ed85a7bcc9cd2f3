#!/usr/bin/env bash
# Builds the afl targets and fuzzes each one, one after another, for N seconds.
#
#     fuzz/run.sh [SECONDS] [TARGET...]      # default: 600 seconds, every target
#
# Findings and the queue go to fuzz/out/<target>/default/ (crashes/, hangs/, queue/,
# fuzzer_stats); a second run resumes where the first stopped. Exits 1 when any target has
# a crash or a hang. CARGO_TARGET_DIR is honoured (default fuzz/target).
set -euo pipefail

cd "$(dirname "$0")"
seconds=${1:-600}
shift || true
all=(fuzz_identity fuzz_uscc fuzz_roster_csv fuzz_roster_xlsx fuzz_registry_csv fuzz_config)
targets=("${@:-${all[@]}}")
target_dir=${CARGO_TARGET_DIR:-target}

export AFL_SKIP_CPUFREQ=1 AFL_NO_UI=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_AUTORESUME=1
# Other work shares the machine: do not insist on a core of our own.
export AFL_NO_AFFINITY=${AFL_NO_AFFINITY:-1}
# The table and config targets write their input to a file per run: keep it in RAM if we can.
if [[ -d /dev/shm && -w /dev/shm ]]; then export TMPDIR=${TMPDIR:-/dev/shm}; fi

cargo afl build --release --bins

mkdir -p out
found=0
for target in "${targets[@]}"; do
    echo "== $target: $seconds s"
    # -m: a run that allocates gigabytes (a hostile .xlsx dimension, say) is a crash, not
    # a machine out of memory. -t: a run over 2 s is a hang.
    cargo afl fuzz -V "$seconds" -m 4096 -t 2000 \
        -i "corpus/$target" -o "out/$target" \
        -- "$target_dir/release/$target" >"out/$target.log" 2>&1 ||
        { echo "afl-fuzz failed, see fuzz/out/$target.log"; tail -20 "out/$target.log"; exit 2; }
    stats=out/$target/default/fuzzer_stats
    awk -F' *: ' '/^(run_time|execs_done|execs_per_sec|corpus_count|corpus_found|saved_crashes|saved_hangs|bitmap_cvg) /{printf "   %-14s %s\n", $1, $2}' "$stats"
    crashes=$(awk -F' *: ' '/^saved_crashes /{print $2}' "$stats")
    hangs=$(awk -F' *: ' '/^saved_hangs /{print $2}' "$stats")
    if [[ $crashes != 0 || $hangs != 0 ]]; then
        echo "   FOUND: see fuzz/out/$target/default/crashes and hangs"
        found=1
    fi
done
exit $found
