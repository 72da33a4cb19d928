#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each and prints executions and crashes per target.
# Usage: fuzz/run.sh SECONDS   (cargo-fuzz on PATH; see `make fuzz-smoke` / `make fuzz`)
#
# The stable toolchain builds the targets with RUSTC_BOOTSTRAP=1 (libfuzzer-sys uses no nightly
# feature, cargo-fuzz only passes -Z flags for sanitizers) and --sanitizer none: panics are what
# the targets assert on, and Rust code without unsafe needs no address sanitizer to find them.
set -euo pipefail
seconds=${1:?usage: fuzz/run.sh SECONDS}
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
cargo fuzz build --sanitizer none -O
mkdir -p logs
failed=0
printf '%-18s %12s %8s\n' target executions crashes
for target in $(cargo fuzz list); do
    # New inputs go to corpus/ (not committed); seeds/ holds the real event shapes, read only.
    mkdir -p "corpus/$target"
    log="logs/$target.log"
    status=0
    cargo fuzz run --sanitizer none -O "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 >"$log" 2>&1 || status=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
    # libFuzzer stops at the first crash, so a run finds zero or one.
    crashes=$([ "$status" -eq 0 ] && echo 0 || echo 1)
    printf '%-18s %12s %8s\n' "$target" "${execs:-0}" "$crashes"
    if [ "$status" -ne 0 ]; then
        failed=1
        echo "    $target failed: see fuzz/$log; reproduce with: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none -O $target artifacts/$target/<crash file>"
    fi
done
exit "$failed"
