#!/usr/bin/env bash
# timeout: 1200
# CPU workload shapes on 2 vCPUs: the CPU cells of the matrix "the
# guarantee for every workload shape" (the disk cells are in
# disk-qd-noisy-neighbour.sh).
#
# The whole matrix runs with VM_SHAPES=1 (a benchmark, about 10 minutes; it
# asserts nothing and fails only when a workload or qosd could not run):
#   cargo build --release --bins --examples
#   VM_SHAPES=1 tests/vm/run.sh cpu-shapes
# Without it (in the suite), only cells 1 and 5 with qosd at a 1 s tick run,
# and their results are checked against the thresholds in check_suite_cells.
#
# The victim (cgroup "victim") has baseline 1.0, burst 2 in every cell:
#   1  victim: 1 busy thread; pair: 2 threads, baseline 0.6, burst 2;
#      swarm: 16 threads, baseline 0.2, burst 2
#   2  victim: 2 threads; swarm as in cell 1
#   3  victim: 1 thread; pulse: 8 threads, baseline 0.2, burst 2, running
#      100 ms and frozen 100 ms by turns (a bash loop writing cgroup.freeze;
#      stress-ng's --cpu-load would not keep the 8 threads in step)
#   4  victim: 1 thread; storm: a fork storm (`stress-ng --fork 4`: four
#      workers that fork children which exit at once), baseline 0.2, burst 2
#   5  victim: the latency loop (baseline 0.5): wakes every 1 ms and works
#      200 us (examples/wakeup_probe --work-us 200); swarm as in cell 1.
#      Its share means nothing (it asks for ~0.17 cores): the cell reports
#      its p50/p99 wake-up delay alone and beside the swarm instead.
#   6  victim: 2 threads running 100 ms and frozen 100 ms by turns (on
#      average 1 core, its baseline, in bursts of 2); swarm as in cell 1
# Busy threads are `stress-ng --cpu N` workers. Each cell runs each way of
# VM_SHAPES_WAYS: "none" (no qosd), "qosd-250ms" and "qosd-1s" (qosd at
# that tick, in a cgroup of its own, "agent", at the default weight).
#
# Phases of one cell and way (the neighbours start first, spin, and are
# frozen; then the victim starts):
#   alone       the victim with its neighbours frozen, ALONE_S per-second
#               samples: its "alone" cores;
#   neighbours  the victim frozen, the neighbours running (pulse: toggled)
#               for NEIGHBOURS_S: with qosd, their limits are lifted;
#   join        the victim thawed; REACT_S not counted in its share,
#               sampled every 100 ms for "reach";
#   both        BOTH_S per-second samples of the victim;
#   after       the victim frozen: the neighbours sampled every 100 ms for
#               1.5 s.
# The victim's share is its cores / min(baseline, alone); its mean and p01
# (the minimum below 100 samples) are over the per-second samples of
# "both"; above 1, the victim got more than its baseline. "reach" is the
# seconds from the thaw to the end of the victim's first 100 ms window at
# 90% of min(baseline, alone). "after" is the neighbours' cores over the
# second after the victim stops, as a share of what they took alone (the
# "neighbours" phase); "release" the seconds until their first 100 ms
# window at 95% of that.
#
# Nothing forks inside a phase: usage_usec is read with `read` builtins
# (lib.sh's cpu_usage_r), sleeps are lib.sh's fsleep, and the rows stay in
# a bash array until the cell ends (under TCG a process start costs ~45 ms
# of CPU, taken from the tenants being measured).
#
# The latency cell (5) has its own phases: the victim's probe runs alone
# for LATENCY_S (neighbours frozen); the neighbours run for NEIGHBOURS_S;
# a probe runs REACT_S beside them (the reaction, not counted), then the
# measuring probe for LATENCY_S; the probe reports p50/p99 of how late
# each wake-up was.
#
# Output: report.txt (the table), shapes.csv (one line per cell and way),
# latency.csv (cell 5: p50/p99 alone and beside),
# rows-CELL-WAY.csv (every sample: phase, time in us, usage_usec per
# group), knobs.txt (cpu.weight and cpu.max at the end of "both"),
# qosd-CELL-WAY.log.
#
# Knobs: VM_SHAPES_CELLS="1 2 3 4 5 6", VM_SHAPES_WAYS="none qosd-250ms
# qosd-1s", VM_SHAPES_ALONE_S=3, VM_SHAPES_NEIGHBOURS_S=3,
# VM_SHAPES_REACT_S=2, VM_SHAPES_BOTH_S=12, VM_SHAPES_LATENCY_S=8.
set -uo pipefail
# shellcheck source=tests/vm/lib.sh
. "$VM_REPO/tests/vm/lib.sh"
require_guest
cd /tmp || exit 1 # stress-ng needs a writable working directory.

if [[ ${VM_SHAPES:-0} == 1 ]]; then
    CELLS=${VM_SHAPES_CELLS:-1 2 3 4 5 6}
    WAYS=${VM_SHAPES_WAYS:-none qosd-250ms qosd-1s}
else
    CELLS="1 5"
    WAYS=qosd-1s
fi
ALONE_S=${VM_SHAPES_ALONE_S:-3}
NEIGHBOURS_S=${VM_SHAPES_NEIGHBOURS_S:-3}
REACT_S=${VM_SHAPES_REACT_S:-2}
BOTH_S=${VM_SHAPES_BOTH_S:-12}
LATENCY_S=${VM_SHAPES_LATENCY_S:-8}
VICTIM_BASELINE=1.0
LATENCY_BASELINE=0.5
VICTIM_BURST=2
CONFIG=/tmp/qosd.toml
SUMMARY=$OUT/shapes.csv
LATENCY=$OUT/latency.csv

# Each cell: "VICTIM|NAME:WORKERS:BASELINE:BURST ..." (its neighbours).
# VICTIM and WORKERS: a number of busy threads; pN, N busy threads running
# 100 ms on, 100 ms off; fN, N fork-storm workers; VICTIM may be "latency".
declare -A CELL=(
    [1]="1|pair:2:0.6:2 swarm:16:0.2:2"
    [2]="2|swarm:16:0.2:2"
    [3]="1|pulse:p8:0.2:2"
    [4]="1|storm:f4:0.2:2"
    [5]="latency|swarm:16:0.2:2"
    [6]="p2|swarm:16:0.2:2"
)
# The groups that run 100 ms on, 100 ms off (spawn_spinning fills it).
declare -A PULSED=()
declare -A PULSE_PIDS=()

declare -A R # lib.sh's stop_qosd records the agent's exit and memory here
# cpu.max and cpu.max.burst at the end of "both", by "CELL,WAY,GROUP".
declare -A MAX=() BURST=()

# cell_label CELL: "victim 1t; pair 2t 0.6, swarm 16t 0.2" for the table.
cell_label() {
    local spec=${CELL[$1]} n name threads base label
    case ${spec%%|*} in
    latency) label="victim 1ms/200us;" ;;
    p*) label="victim ${spec:1}" label="${label%%|*}t pulsed;" ;;
    *) label="victim ${spec%%|*}t;" ;;
    esac
    for n in ${spec#*|}; do
        IFS=: read -r name threads base _ <<<"$n"
        case $threads in
        f*) threads="fork ${threads#f}" ;;
        p*) threads="${threads#p}t pulsed" ;;
        *) threads+=t ;;
        esac
        label+=" $name $threads $base,"
    done
    echo "${label%,}"
}

# write_config INTERVAL NEIGHBOURS VICTIM_BASELINE: the cell's tenants, at
# that tick.
write_config() {
    local n name base burst
    {
        printf '[agent]\ninterval = "%s"\ncgroup_root = "%s"\nmetrics_listen = "127.0.0.1:9477"\n' "$1" "$CG"
        printf '\n[host]\nreserved_cpu = 0\n'
        printf '\n[tenants.victim]\ncgroup = "victim"\ncpu = { baseline = %s, burst = %s }\n' \
            "$3" "$VICTIM_BURST"
        for n in $2; do
            IFS=: read -r name _ base burst <<<"$n"
            printf '\n[tenants.%s]\ncgroup = "%s"\ncpu = { baseline = %s, burst = %s }\n' \
                "$name" "$name" "$base" "$burst"
        done
    } >"$CONFIG"
}

# start_agent INTERVAL NEIGHBOURS VICTIM_BASELINE: qosd at that tick, moved
# into its own cgroup at the default weight (all its threads: cgroup.procs
# moves the whole process).
start_agent() {
    write_config "$1" "$2" "$3"
    cg_fresh agent
    start_qosd "$CONFIG" "$OUT/qosd.log" || return 1
    echo "$QOSD_PID" >"$CG/agent/cgroup.procs"
}

# spawn_spinning GROUP WORKERS: WORKERS (a thread count, or fN for N
# fork-storm workers) in GROUP, up and spinning (stress-ng takes ~1 s to
# start under TCG).
spawn_spinning() {
    local want=1.5 load=(--cpu "${2#p}")
    [[ $2 == 1 ]] && want=0.8
    [[ $2 == f* ]] && load=(--fork "${2#f}") want=1.0
    [[ $2 == p* ]] && PULSED[$1]=1
    cg_spawn "$1" stress-ng "${load[@]}" --quiet
    track "$LAST_PID"
    wait_busy "$1" "$want" 30 && return 0
    fail "$1: stress-ng ${load[*]} did not reach $want cores within 30 s"
    return 1
}

# sample_rows PHASE COUNT INTERVAL GROUP...: COUNT+1 rows, INTERVAL seconds
# apart, of "PHASE,time_us,usage_usec..." appended to ROWS. Builtins only.
sample_rows() {
    local phase=$1 count=$2 interval=$3 i g row
    shift 3
    for ((i = 0; i <= count; i++)); do
        ((i == 0)) || fsleep "$interval"
        row="$phase,${EPOCHREALTIME/./}"
        for g in "$@"; do
            cpu_usage_r "$g"
            row+=",$REPLY"
        done
        ROWS+=("$row")
    done
}

# start_pulse GROUP: thaw GROUP for 100 ms, freeze it for 100 ms, by turns,
# in the background (the loop forks nothing).
start_pulse() {
    local freeze=$CG/$1/cgroup.freeze
    (
        while :; do
            echo 0 >"$freeze"
            fsleep 0.1
            echo 1 >"$freeze"
            fsleep 0.1
        done
    ) &
    PULSE_PIDS[$1]=$!
    track "$!"
}

# stop_pulse [GROUP]: end GROUP's pulse (every pulse without GROUP).
stop_pulse() {
    local groups=("$@") g pid
    ((${#groups[@]})) || groups=("${!PULSE_PIDS[@]}")
    for g in "${groups[@]}"; do
        pid=${PULSE_PIDS[$g]:-}
        [[ -n $pid ]] || continue
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        unset "PULSE_PIDS[$g]"
    done
}

# run_groups GROUP...: let them run (a pulsed one by turns).
run_groups() {
    local g
    for g in "$@"; do
        if [[ -n ${PULSED[$g]:-} ]]; then start_pulse "$g"; else cg_freeze "$g" 0; fi
    done
}

# stop_groups GROUP...: freeze them (a pulsed one ends its pulse first).
stop_groups() {
    local g
    for g in "$@"; do
        [[ -z ${PULSED[$g]:-} ]] || stop_pulse "$g"
        cg_freeze "$g" 1
    done
}

# knob_snapshot CELL WAY GROUP...: cpu.weight and cpu.max into KNOBS,
# builtins only.
knob_snapshot() {
    local g w m b
    KNOBS="cell $1, $2, end of both:"
    for g in "${@:3}"; do
        read -r w <"$CG/$g/cpu.weight"
        read -r m <"$CG/$g/cpu.max"
        read -r b <"$CG/$g/cpu.max.burst"
        MAX[$1,$2,$g]=$m BURST[$1,$2,$g]=$b
        printf -v KNOBS '%s\n  %-7s cpu.weight=%s cpu.max=%s cpu.max.burst=%s' "$KNOBS" "$g:" "$w" "$m" "$b"
    done
}

# spawn_neighbours CELL: the cell's neighbours, spinning, then frozen.
spawn_neighbours() {
    local spec=${CELL[$1]} n name workers
    for n in ${spec#*|}; do
        IFS=: read -r name workers _ <<<"$n"
        spawn_spinning "$name" "$workers" || return 1
        cg_freeze "$name" 1
    done
}

# measure_cell CELL WAY GROUP...: the phases, with the workloads; GROUP...
# is the victim then the neighbours. Fills ROWS and KNOBS.
measure_cell() {
    local cell=$1 way=$2 spec=${CELL[$1]}
    shift 2
    spawn_neighbours "$cell" || return 1
    spawn_spinning victim "${spec%%|*}" || return 1
    run_groups victim
    ROWS=()
    sample_rows alone "$ALONE_S" 1 "$@"
    stop_groups victim
    run_groups "${@:2}"
    sample_rows neighbours "$NEIGHBOURS_S" 1 "$@"
    run_groups victim
    sample_rows join $((REACT_S * 10)) 0.1 "$@"
    sample_rows both "$BOTH_S" 1 "$@"
    knob_snapshot "$cell" "$way" "$@"
    stop_groups victim
    sample_rows after 15 0.1 "$@"
}

# probe_latency SECONDS FILE: the latency loop in the victim's group for
# SECONDS; its one-line result into FILE.
probe_latency() {
    cg_spawn victim "$WAKEUP_PROBE" --seconds "$1" --sleep-us 1000 --work-us 200 >"$2" 2>&1
    wait "$LAST_PID"
}

# latency_of FILE: "p50,p99" of a probe's result, in us.
latency_of() {
    local line
    read -r line <"$1" || line=
    [[ $line =~ p50=([0-9]+)\ p99=([0-9]+) ]] || return 1
    echo "${BASH_REMATCH[1]},${BASH_REMATCH[2]}"
}

# measure_latency CELL WAY GROUP...: the latency cell's phases; its line in
# LATENCY ("cell,way,alone_p50,alone_p99,beside_p50,beside_p99").
measure_latency() {
    local cell=$1 way=$2 probe=$OUT/probe-$1-$2 alone beside
    shift 2
    spawn_neighbours "$cell" || return 1
    probe_latency "$LATENCY_S" "$probe-alone.txt"
    run_groups "${@:2}"
    fsleep "$NEIGHBOURS_S"
    probe_latency "$REACT_S" "$probe-react.txt"
    probe_latency "$LATENCY_S" "$probe-beside.txt"
    knob_snapshot "$cell" "$way" "$@"
    alone=$(latency_of "$probe-alone.txt") && beside=$(latency_of "$probe-beside.txt") || {
        fail "cell $cell, $way: the probe printed no result (see $probe-*.txt; is $WAKEUP_PROBE built?)"
        return 1
    }
    echo "$cell,$way,$alone,$beside" >>"$LATENCY"
}

# run_cell CELL WAY: one cell one way, from fresh cgroups to its summary line.
run_cell() {
    local cell=$1 way=$2 spec=${CELL[$1]} n groups=(victim) ok=1 baseline=$VICTIM_BASELINE
    local measure=measure_cell
    if [[ ${spec%%|*} == latency ]]; then
        measure=measure_latency baseline=$LATENCY_BASELINE
    fi
    for n in ${spec#*|}; do groups+=("${n%%:*}"); done
    say "=== cell $cell ($(cell_label "$cell")), $way"
    for n in "${groups[@]}"; do cg_fresh "$n"; done
    PULSED=()
    KNOBS=
    if [[ $way == qosd-* ]]; then
        start_agent "${way#qosd-}" "${spec#*|}" "$baseline" || ok=0
    fi
    ((ok)) && { "$measure" "$cell" "$way" "${groups[@]}" || ok=0; }
    stop_pulse
    if [[ $way == qosd-* && -n ${QOSD_PID:-} ]]; then
        stop_qosd
        KNOBS+=$'\n'"  qosd: exit status ${R[qosd.exit]} after SIGTERM, VmHWM ${R[qosd.VmHWM]:-?} kB"
        mv "$OUT/qosd.log" "$OUT/qosd-$cell-$way.log"
        QOSD_PID=
        cg_destroy agent
    fi
    for n in "${groups[@]}"; do cg_destroy "$n"; done
    ((ok)) || { fail "cell $cell, $way: the workload did not run"; return 1; }
    [[ -z $KNOBS ]] || echo "$KNOBS" >>"$OUT/knobs.txt"
    if [[ $measure == measure_latency ]]; then
        say "cell $cell, $way: $(tail -n 1 "$LATENCY")"
    else
        summarise_cell "$cell" "$way" "${groups[@]}"
    fi
}

# summarise_cell CELL WAY GROUP...: ROWS into rows-CELL-WAY.csv, and the
# cell's line in SUMMARY.
summarise_cell() {
    local rows=$OUT/rows-$1-$2.csv
    {
        printf 'phase,t_us'
        printf ',%s' "${@:3}"
        echo
        printf '%s\n' "${ROWS[@]}"
    } >"$rows"
    echo "$1,$2,$(analyse "$rows")" >>"$SUMMARY"
    say "cell $1, $2: $(tail -n 1 "$SUMMARY")"
}

# analyse ROWS_CSV: "alone,victim_both,share_mean,share_p01,samples,
# reach_s,neighbours_both,after_share,release_s" of one cell and way (see
# the header). A "window" is two consecutive 100 ms samples (at least
# 90 ms apart, for the sleep's jitter).
analyse() {
    awk -F, -v base="$VICTIM_BASELINE" '
        NR == 1 { next }
        {
            ph = $1; t = $2 / 1e6; v = $3 / 1e6; nb = 0
            for (i = 4; i <= NF; i++) nb += $i / 1e6
        }
        ph == "alone" { if (a0 == "") { a0 = t; av0 = v } a1 = t; av1 = v }
        ph == "join" || ph == "both" { n++; T[n] = t; V[n] = v }
        ph == "both" {
            if (b0 == "") { b0 = t; bv0 = v; bn0 = nb } else S[++k] = (v - pv) / (t - pt)
            pt = t; pv = v; b1 = t; bv1 = v; bn1 = nb
        }
        ph == "neighbours" { if (m0 == "") { m0 = t; mn0 = nb } m1 = t; mn1 = nb }
        ph == "after" {
            if (f0 == "") { f0 = t; fn0 = nb; free = (mn1 - mn0) / (m1 - m0) }
            else if (release == "" && t - ft >= 0.09 && (nb - fnp) / (t - ft) >= 0.95 * free) release = sprintf("%.2f", t - f0)
            if (t - f0 <= 1.05) { f1 = t; fn1 = nb }
            ft = t; fnp = nb
        }
        END {
            alone = (av1 - av0) / (a1 - a0)
            ref = alone < base ? alone : base
            reach = "never"
            for (j = 2; j <= n && reach == "never"; j++) {
                i = j - 1
                if (T[j] - T[i] >= 0.09 && (V[j] - V[i]) / (T[j] - T[i]) >= 0.9 * ref) reach = sprintf("%.2f", T[j] - T[1])
            }
            if (release == "") release = "never"
            for (i = 1; i <= k; i++) { s[i] = S[i] / ref; sum += s[i] }
            for (i = 2; i <= k; i++) for (j = i; j > 1 && s[j - 1] > s[j]; j--) { x = s[j]; s[j] = s[j - 1]; s[j - 1] = x }
            p = int(0.01 * k); if (p < 0.01 * k) p++; if (p < 1) p = 1
            printf "%.3f,%.3f,%.3f,%.3f,%d,%s,%.3f,%.3f,%s\n", alone, (bv1 - bv0) / (b1 - b0), sum / k, s[p], k,
                reach, (bn1 - bn0) / (b1 - b0), (fn1 - fn0) / (f1 - f0) / free, release
        }' "$1"
}

print_report() {
    local line cell way alone vboth mean p01 reach nboth after release a50 a99 b50 b99
    report "CPU workload shapes on 2 vCPUs: victim baseline $VICTIM_BASELINE (latency victim $LATENCY_BASELINE), burst $VICTIM_BURST"
    report "share = victim cores / min(baseline, alone), per-second samples of \"both\" (${BOTH_S} s, after ${REACT_S} s of reaction)"
    report "reach = s from the victim's start to the end of its first 100 ms window at 90% of min(baseline, alone)"
    report "after = the neighbours' cores in the second after the victim stops / their cores alone (\"neighbours\" phase); release = s until a 100 ms window at 95% of that"
    report ""
    report "$(printf '%-4s %-11s %-6s %-7s %-6s %-6s %-6s %-8s %-6s %-7s' cell way alone victim mean p01 reach neighbrs after release)"
    while IFS=, read -r cell way line; do
        IFS=, read -r alone vboth mean p01 _samples reach nboth after release <<<"$line"
        report "$(printf '%-4s %-11s %-6s %-7s %-6s %-6s %-6s %-8s %-6s %-7s' \
            "$cell" "$way" "$alone" "$vboth" "$mean" "$p01" "$reach" "$nboth" "$after" "$release")"
    done < <(tail -n +2 "$SUMMARY")
    if [[ -s $LATENCY ]]; then
        report ""
        report "latency loop (wake every 1 ms, work 200 us), wake-up delay in us:"
        report "$(printf '%-4s %-11s %-9s %-9s %-10s %-10s %-6s' cell way alone_p50 alone_p99 beside_p50 beside_p99 p99x)"
        while IFS=, read -r cell way a50 a99 b50 b99; do
            report "$(printf '%-4s %-11s %-9s %-9s %-10s %-10s %-6s' "$cell" "$way" "$a50" "$a99" "$b50" "$b99" \
                "$(awk -v a="$a99" -v b="$b99" 'BEGIN { printf "%.1f", (a > 0 ? b / a : 0) }')")"
        done <"$LATENCY"
    fi
    report ""
    for cell in $CELLS; do report "cell $cell: $(cell_label "$cell")"; done
    report "columns: alone and victim (in both) in cores; mean and p01 of the share; reach and release in s; neighbrs: the neighbours' cores in both"
    report ""
    [[ ! -f $OUT/knobs.txt ]] || report "$(cat "$OUT/knobs.txt")"
}

# The suite's thresholds. Five VM runs of the suite's cells (2026-12-08,
# 04:27-04:37 UTC; the last three after release ticks stopped waiting on
# weight writes): cell 1 mean 1.000, 1.001, 1.002, 1.002, 1.001 and p01
# 0.999, 1.000, 0.999, 1.000, 0.999 (the checks are the goals: 0.97 and
# 0.90); reach 0.31, 0.21, 0.21, 0.21, 0.22 s; release 0.10, 0.62, 0.22,
# 0.63, 1.27 s (the goal, 1 s, is not met in every run); cell 5, p50
# beside / alone 0.99, 1.06, 0.85, 1.01, 0.93.
SUITE_MEAN_MIN=0.97
SUITE_P01_MIN=0.90
SUITE_REACH_MAX=0.5
SUITE_RELEASE_MAX=1.9
SUITE_P50_RATIO_MAX=2

# check_suite_cells: the suite's cells against the SUITE_* thresholds.
check_suite_cells() {
    local line alone vboth mean p01 reach nboth after release a50 a99 b50 b99
    line=$(grep '^1,qosd-1s,' "$SUMMARY" | cut -d, -f3-)
    IFS=, read -r alone vboth mean p01 _samples reach nboth after release <<<"$line"
    ge "$mean" "$SUITE_MEAN_MIN" || fail "cell 1: the victim's mean share $mean < $SUITE_MEAN_MIN"
    ge "$p01" "$SUITE_P01_MIN" || fail "cell 1: the victim's p01 share $p01 < $SUITE_P01_MIN"
    le "$reach" "$SUITE_REACH_MAX" || fail "cell 1: reach $reach s > $SUITE_REACH_MAX s"
    le "$release" "$SUITE_RELEASE_MAX" || fail "cell 1: release $release s > $SUITE_RELEASE_MAX s"
    # qosd clamps the neighbours, and lets each save one period's quota.
    local g quota
    for g in pair swarm; do
        quota=${MAX[1,qosd-1s,$g]%% *}
        [[ $quota =~ ^[0-9]+$ && ${BURST[1,qosd-1s,$g]} == "$quota" ]] ||
            fail "cell 1: $g's cpu.max.burst ${BURST[1,qosd-1s,$g]:-?} is not its quota (cpu.max ${MAX[1,qosd-1s,$g]:-?})"
    done
    IFS=, read -r _ _ a50 a99 b50 b99 < <(grep '^5,qosd-1s,' "$LATENCY")
    # The p99 is reported, not checked: no cgroup knob but a CPU of its own
    # holds it (cpu-latency-knobs.sh, BENCHMARKS.md).
    le "$b50" "$((a50 * SUITE_P50_RATIO_MAX))" ||
        fail "cell 5: p50 wake-up delay beside the swarm ${b50} us > $SUITE_P50_RATIO_MAX x alone (${a50} us)"
}

main() {
    : >"$REPORT"
    echo "cell,way,alone,victim_both,share_mean,share_p01,samples,reach_s,neighbours_both,after_share,release_s" >"$SUMMARY"
    : >"$LATENCY"
    echo +cpu >"$CG/cgroup.subtree_control"
    local cell way
    for cell in $CELLS; do
        for way in $WAYS; do
            run_cell "$cell" "$way"
        done
    done
    print_report
    [[ ${VM_SHAPES:-0} == 1 ]] || check_suite_cells
    finish
}

main
