#!/usr/bin/env bash
# timeout: 300
# Which cgroup knobs hold a latency-sensitive tenant's wake-up delay beside
# a busy neighbour: the evaluation behind the latency cell of cpu-shapes.sh.
# A benchmark without qosd: each setting is written by hand, and the report
# gives the victim's p50/p99 wake-up delay under it. It asserts nothing and
# fails only when a workload could not run.
#
# Skipped unless VM_SHAPES=1 (about 2 minutes):
#   cargo build --release --bins --examples
#   VM_SHAPES=1 tests/vm/run.sh cpu-latency-knobs
#
# victim: examples/wakeup_probe --sleep-us 1000 --work-us 200 (wakes every
#         1 ms, works 200 us), LATENCY_S per setting;
# swarm:  `stress-ng --cpu 16`.
# Settings ("victim weight / swarm weight, cpu.max of each, cpu.idle of the
# swarm, cpusets"): the kernel's defaults; what qosd writes (the victim
# boosted, both capped); a larger boost; weights alone; cpu.idle on the
# swarm with and without quotas; a 10 ms quota period; a CPU of its own for
# the victim (cpuset); the victim pinned to one CPU that the swarm shares.
set -uo pipefail
# shellcheck source=tests/vm/lib.sh
. "$VM_REPO/tests/vm/lib.sh"
require_guest
cd /tmp || exit 1

LATENCY_S=${VM_SHAPES_LATENCY_S:-6}
PROBE_OUT=/tmp/probe.txt

# set_knobs VICTIM_WEIGHT SWARM_WEIGHT VICTIM_MAX SWARM_MAX SWARM_IDLE
# VICTIM_CPUS SWARM_CPUS (a cpu.max of "QUOTA,PERIOD" is written "QUOTA PERIOD")
set_knobs() {
    echo "$1" >"$CG/victim/cpu.weight"
    echo "$2" >"$CG/swarm/cpu.weight"
    echo "${3/,/ }" >"$CG/victim/cpu.max"
    echo "${4/,/ }" >"$CG/swarm/cpu.max"
    echo "$5" >"$CG/swarm/cpu.idle"
    echo "$6" >"$CG/victim/cpuset.cpus"
    echo "$7" >"$CG/swarm/cpuset.cpus"
}

# probe: the latency loop in the victim's group; its result line.
probe() {
    cg_spawn victim "$WAKEUP_PROBE" --seconds "$LATENCY_S" --sleep-us 1000 --work-us 200 >"$PROBE_OUT" 2>&1
    wait "$LAST_PID"
    cat "$PROBE_OUT"
}

main() {
    : >"$REPORT"
    if [[ ${VM_SHAPES:-0} != 1 ]]; then
        report "SKIP: cpu-latency-knobs is a benchmark; run it with VM_SHAPES=1 tests/vm/run.sh cpu-latency-knobs"
        finish
    fi
    echo +cpu +cpuset >"$CG/cgroup.subtree_control"
    cg_fresh victim
    cg_fresh swarm
    cg_spawn swarm stress-ng --cpu 16 --quiet
    track "$LAST_PID"
    wait_busy swarm 1.5 30 || { fail "swarm: stress-ng did not reach 1.5 cores"; finish; }
    cg_freeze swarm 1
    report "latency loop (wake every 1 ms, work 200 us) beside 16 busy threads, ${LATENCY_S} s per setting"
    report "alone (swarm frozen): $(probe)"
    cg_freeze swarm 0
    local setting
    while IFS='|' read -r setting name; do
        # shellcheck disable=SC2086 # the setting is a list of words.
        set_knobs $setting
        report "$(printf '%-34s' "$name:") $(probe)"
    done <<'SETTINGS'
100 100 max max 0 0-1 0-1|defaults
200 20 50000 150000 0 0-1 0-1|qosd (boosted 10:1, both capped)
10000 20 50000 150000 0 0-1 0-1|boost 10000, both capped
200 20 max max 0 0-1 0-1|weights alone
200 20 50000 150000 1 0-1 0-1|swarm cpu.idle, both capped
200 20 max max 1 0-1 0-1|swarm cpu.idle, no quotas
200 20 5000,10000 15000,10000 0 0-1 0-1|quotas at a 10 ms period
200 20 max max 0 1 0|a CPU of its own (cpuset)
200 20 max max 0 1 0-1|victim pinned, swarm on both
SETTINGS
    finish
}

main
