#!/usr/bin/env bash
# Run the VM scenarios one after another, each in its own fresh VM, and sum up.
#
# Usage:
#   cargo build --release --bins --examples   # this script builds nothing
#   tests/vm/run-suite.sh [SCENARIO...]        # default: every tests/vm/scenarios/*.sh
#
# Prints a table of the scenarios (PASS/FAIL and the seconds each took,
# then the total) and, last, exactly one line
#   vm-suite: N passed, N failed
# and exits non-zero if any scenario failed. Results of each scenario are in
# target/vm/out/SCENARIO/ (report.txt, CSVs, console.log). The environment
# knobs of tests/vm/run.sh (QOSD_BIN, VM_TIMEOUT, ...) apply; VM_WAYS
# defaults to "none qosd" here (below).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RUN=$REPO/tests/vm/run.sh

# The suite runs two ways of the noisy-neighbour scenarios: no limits (the
# neighbour's harm, which the checks need) and qosd. The third, "static"
# (the same limits written once by hand), is only reported, never checked:
# the benchmarks run it (VM_WAYS="none static qosd"), and the suite saves
# its two minutes.
export VM_WAYS=${VM_WAYS:-none qosd}

# Every scenario, by name, in a stable order.
all_scenarios() {
    local f
    for f in "$REPO"/tests/vm/scenarios/*.sh; do
        basename "$f" .sh
    done | sort
}

main() {
    local scenarios=("$@")
    if ((${#scenarios[@]} == 0)); then
        mapfile -t scenarios < <(all_scenarios)
    fi
    local passed=0 failed=0 s start suite_start=$SECONDS results=()
    for s in "${scenarios[@]}"; do
        start=$SECONDS
        echo "vm-suite: running $s"
        # One scenario per run.sh, so that a failure does not stop the suite.
        if "$RUN" "$s"; then
            passed=$((passed + 1))
            results+=("$(row "$s" PASS $((SECONDS - start)))")
        else
            failed=$((failed + 1))
            results+=("$(row "$s" FAIL $((SECONDS - start))) see target/vm/out/$s/")
        fi
    done
    echo
    row scenario result time
    printf '%s\n' "${results[@]}"
    row total "" $((SECONDS - suite_start))
    echo "vm-suite: $passed passed, $failed failed"
    ((failed == 0))
}

# row SCENARIO RESULT SECONDS: one line of the table printed at the end.
row() {
    local seconds=$3
    [[ $seconds != [0-9]* ]] || seconds="${seconds}s ($((seconds / 60))m$((seconds % 60))s)"
    printf 'vm-suite: %-26s %-6s %s\n' "$1" "$2" "$seconds"
}

main "$@"
