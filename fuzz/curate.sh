#!/usr/bin/env bash
# Copies a curated few of afl's queue entries into the corpus, for tests/integration/fuzz_corpus.rs.
#
#     fuzz/curate.sh [MAX] [TARGET...]      # default: 50 a target, every target with an out/
#
# For each target: afl-cmin reduces out/<target>/default/queue to a set covering the same
# edges; of those, the entries afl saved for new coverage (+cov) and not copies of seeds are
# taken, MAX at most, spread evenly over the run, and written as corpus/<target>/afl-<id>.
# Earlier afl-* files of the target are replaced. CARGO_TARGET_DIR is honoured.
set -euo pipefail

cd "$(dirname "$0")"
max=${1:-50}
shift || true
targets=("$@")
if [[ ${#targets[@]} == 0 ]]; then
    for dir in out/*/default/queue; do targets+=("$(basename "$(dirname "$(dirname "$dir")")")"); done
fi
target_dir=${CARGO_TARGET_DIR:-target}
# The bash afl-cmin: `cargo afl cmin` runs the Python one, which recorded no edges for these
# persistent-mode targets (AFL++ 4.40c).
afl_bin=${AFL_BIN:-$(ls -d ~/.local/share/afl.rs/rustc-*/afl.rs-*/afl/bin | tail -n 1)}
export PATH=$afl_bin:$PATH
export AFL_SKIP_CPUFREQ=1 AFL_NO_UI=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
if [[ -d /dev/shm && -w /dev/shm ]]; then export TMPDIR=${TMPDIR:-/dev/shm}; fi

for target in "${targets[@]}"; do
    minimised=out/$target.cmin
    rm -rf "$minimised"
    afl-cmin.bash -i "out/$target/default/queue" -o "$minimised" \
        -- "$target_dir/release/$target" >/dev/null 2>&1
    mapfile -t picked < <(
        ls "$minimised" | grep -F '+cov' | grep -vF 'orig:' | sort |
            awk -v max="$max" '{ line[NR] = $0 } END {
                n = NR < max ? NR : max
                for (i = 0; i < n; i++) print line[int(i * NR / n) + 1]
            }'
    )
    rm -f "corpus/$target"/afl-*
    for name in "${picked[@]}"; do
        id=${name#id:}
        install -m 644 "$minimised/$name" "corpus/$target/afl-${id%%,*}"
    done
    echo "$target: $(ls "$minimised" | wc -l) entries cover the queue's edges; kept ${#picked[@]}"
    rm -rf "$minimised"
done
