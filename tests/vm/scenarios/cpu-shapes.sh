#!/usr/bin/env bash
# timeout: 600
# CPU workload shapes on 2 vCPUs: the first cells of the matrix "the
# guarantee for every workload shape". A benchmark, not a test: it reports
# what the victim got and asserts nothing about it. It fails only when a
# workload or qosd could not run.
#
# Skipped unless VM_SHAPES=1. The suite (tests/vm/run-suite.sh) runs every
# scenario file, and this one takes about 4 minutes (227-240 s of VM time
# in 3 runs, boot included; the timeout is 2.5 times that). Skipped, it
# costs the suite one boot (8 s) and writes status 0. Run it with:
#   cargo build --release --bins --examples
#   VM_SHAPES=1 tests/vm/run.sh cpu-shapes
#
# The victim (cgroup "victim") has baseline 1.0, burst 2 in every cell:
#   1  victim: 1 busy thread; pair: 2 threads, baseline 0.6, burst 2;
#      swarm: 16 threads, baseline 0.2, burst 2
#   2  victim: 2 threads; swarm as in cell 1
#   3  victim: 1 thread; pulse: 8 threads, baseline 0.2, burst 2, running
#      100 ms and frozen 100 ms by turns (a bash loop writing cgroup.freeze;
#      stress-ng's --cpu-load would not keep the 8 threads in step)
# Busy threads are `stress-ng --cpu N` workers. Each cell runs each way of
# VM_SHAPES_WAYS: "none" (no qosd), "qosd-500ms" and "qosd-1s" (qosd at
# that tick, in a cgroup of its own, "agent", at the default weight).
#
# Phases of one cell and way (the neighbours start first, spin, and are
# frozen; then the victim starts):
#   alone       the victim with its neighbours frozen, ALONE_S per-second
#               samples: its "alone" cores;
#   neighbours  the victim frozen, the neighbours running (pulse: toggled)
#               for NEIGHBOURS_S: with qosd, their limits are lifted;
#   join        the victim thawed; REACT_S not counted (qosd's reaction,
#               two ticks at 1 s), sampled every 250 ms for "reach";
#   both        BOTH_S per-second samples of the victim;
#   after       the victim frozen: the neighbours' cores over the next
#               second, as a share of the 2 cores (nothing else runs).
# The victim's share is its cores / min(baseline, alone); its mean and p01
# (the minimum below 100 samples) are over the per-second samples of
# "both"; above 1, the victim got more than its baseline. "reach" is the
# seconds from the thaw until a trailing >= 0.5 s window first gives the
# victim 90% of min(baseline, alone), so it cannot measure below 0.5 s.
#
# Nothing forks inside a phase: usage_usec is read with `read` builtins
# (lib.sh's cpu_usage_r), sleeps are lib.sh's fsleep, and the rows stay in
# a bash array until the cell ends (under TCG a process start costs ~45 ms
# of CPU, taken from the tenants being measured).
#
# Output: report.txt (the table), shapes.csv (one line per cell and way),
# rows-CELL-WAY.csv (every sample: phase, time in us, usage_usec per
# group), knobs.txt (cpu.weight and cpu.max at the end of "both"),
# qosd-CELL-WAY.log.
#
# Knobs: VM_SHAPES_CELLS="1 2 3", VM_SHAPES_WAYS="none qosd-500ms qosd-1s",
# VM_SHAPES_ALONE_S=3, VM_SHAPES_NEIGHBOURS_S=3, VM_SHAPES_REACT_S=2,
# VM_SHAPES_BOTH_S=12.
set -uo pipefail
# shellcheck source=tests/vm/lib.sh
. "$VM_REPO/tests/vm/lib.sh"
require_guest
cd /tmp || exit 1 # stress-ng needs a writable working directory.

CELLS=${VM_SHAPES_CELLS:-1 2 3}
WAYS=${VM_SHAPES_WAYS:-none qosd-500ms qosd-1s}
ALONE_S=${VM_SHAPES_ALONE_S:-3}
NEIGHBOURS_S=${VM_SHAPES_NEIGHBOURS_S:-3}
REACT_S=${VM_SHAPES_REACT_S:-2}
BOTH_S=${VM_SHAPES_BOTH_S:-12}
VICTIM_BASELINE=1.0
VICTIM_BURST=2
CONFIG=/tmp/qosd.toml
SUMMARY=$OUT/shapes.csv

# Each cell: "VICTIM_THREADS|NAME:THREADS:BASELINE:BURST ..." (its neighbours).
declare -A CELL=(
    [1]="1|pair:2:0.6:2 swarm:16:0.2:2"
    [2]="2|swarm:16:0.2:2"
    [3]="1|pulse:8:0.2:2"
)
# The neighbour that runs 100 ms on, 100 ms off.
PULSED=pulse

declare -A R # lib.sh's stop_qosd records the agent's exit and memory here

# cell_label CELL: "victim 1t; pair 2t 0.6, swarm 16t 0.2" for the table.
cell_label() {
    local spec=${CELL[$1]} n name threads base label
    label="victim ${spec%%|*}t;"
    for n in ${spec#*|}; do
        IFS=: read -r name threads base _ <<<"$n"
        label+=" $name ${threads}t $base,"
    done
    echo "${label%,}"
}

# write_config INTERVAL NEIGHBOURS: the cell's tenants, at that tick.
write_config() {
    local n name base burst
    {
        printf '[agent]\ninterval = "%s"\ncgroup_root = "%s"\nmetrics_listen = "127.0.0.1:9477"\n' "$1" "$CG"
        printf '\n[host]\nreserved_cpu = 0\n'
        printf '\n[tenants.victim]\ncgroup = "victim"\ncpu = { baseline = %s, burst = %s }\n' \
            "$VICTIM_BASELINE" "$VICTIM_BURST"
        for n in $2; do
            IFS=: read -r name _ base burst <<<"$n"
            printf '\n[tenants.%s]\ncgroup = "%s"\ncpu = { baseline = %s, burst = %s }\n' \
                "$name" "$name" "$base" "$burst"
        done
    } >"$CONFIG"
}

# start_agent INTERVAL NEIGHBOURS: qosd at that tick, moved into its own
# cgroup at the default weight (all its threads: cgroup.procs moves the
# whole process).
start_agent() {
    write_config "$1" "$2"
    cg_fresh agent
    start_qosd "$CONFIG" "$OUT/qosd.log" || return 1
    echo "$QOSD_PID" >"$CG/agent/cgroup.procs"
}

# spawn_spinning GROUP THREADS: THREADS busy workers in GROUP, up and
# spinning (stress-ng takes ~1 s to start under TCG).
spawn_spinning() {
    local want=1.5
    (($2 == 1)) && want=0.8
    cg_spawn "$1" stress-ng --cpu "$2" --quiet
    track "$LAST_PID"
    wait_busy "$1" "$want" 30 && return 0
    fail "$1: stress-ng --cpu $2 did not reach $want cores within 30 s"
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
# in the background (the loop forks nothing). Sets PULSE_PID.
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
    PULSE_PID=$!
    track "$PULSE_PID"
}

stop_pulse() {
    [[ -n ${PULSE_PID:-} ]] || return 0
    kill "$PULSE_PID" 2>/dev/null
    wait "$PULSE_PID" 2>/dev/null
    PULSE_PID=
}

# thaw_neighbours GROUP...: let them run (the pulsed one by turns).
thaw_neighbours() {
    local g
    for g in "$@"; do
        if [[ $g == "$PULSED" ]]; then start_pulse "$g"; else cg_freeze "$g" 0; fi
    done
}

# knob_snapshot CELL WAY GROUP...: cpu.weight and cpu.max into KNOBS,
# builtins only.
knob_snapshot() {
    local g w m
    KNOBS="cell $1, $2, end of both:"
    for g in "${@:3}"; do
        read -r w <"$CG/$g/cpu.weight"
        read -r m <"$CG/$g/cpu.max"
        printf -v KNOBS '%s\n  %-7s cpu.weight=%s cpu.max=%s' "$KNOBS" "$g:" "$w" "$m"
    done
}

# measure_cell CELL WAY GROUP...: the phases, with the workloads; GROUP...
# is the victim then the neighbours. Fills ROWS and KNOBS.
measure_cell() {
    local cell=$1 way=$2 spec=${CELL[$1]} n name threads
    shift 2
    for n in ${spec#*|}; do
        IFS=: read -r name threads _ <<<"$n"
        spawn_spinning "$name" "$threads" || return 1
        cg_freeze "$name" 1
    done
    spawn_spinning victim "${spec%%|*}" || return 1
    ROWS=()
    sample_rows alone "$ALONE_S" 1 "$@"
    cg_freeze victim 1
    thaw_neighbours "${@:2}"
    sample_rows neighbours "$NEIGHBOURS_S" 1 "$@"
    cg_freeze victim 0
    sample_rows join $((REACT_S * 4)) 0.25 "$@"
    sample_rows both "$BOTH_S" 1 "$@"
    knob_snapshot "$cell" "$way" "$@"
    cg_freeze victim 1
    sample_rows after 1 1 "$@"
}

# run_cell CELL WAY: one cell one way, from fresh cgroups to its summary line.
run_cell() {
    local cell=$1 way=$2 spec=${CELL[$1]} n groups=(victim) rows=$OUT/rows-$1-$2.csv ok=1
    for n in ${spec#*|}; do groups+=("${n%%:*}"); done
    say "=== cell $cell ($(cell_label "$cell")), $way"
    for n in "${groups[@]}"; do cg_fresh "$n"; done
    KNOBS=
    if [[ $way == qosd-* ]]; then
        start_agent "${way#qosd-}" "${spec#*|}" || ok=0
    fi
    ((ok)) && { measure_cell "$cell" "$way" "${groups[@]}" || ok=0; }
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
    {
        printf 'phase,t_us'
        printf ',%s' "${groups[@]}"
        echo
        printf '%s\n' "${ROWS[@]}"
    } >"$rows"
    [[ -z $KNOBS ]] || echo "$KNOBS" >>"$OUT/knobs.txt"
    echo "$cell,$way,$(analyse "$rows")" >>"$SUMMARY"
    say "cell $cell, $way: $(tail -n 1 "$SUMMARY")"
}

# analyse ROWS_CSV: "alone,victim_both,share_mean,share_p01,samples,
# reach_s,neighbours_both,after_share" of one cell and way (see the header).
analyse() {
    awk -F, -v base="$VICTIM_BASELINE" -v cpus="$(getconf _NPROCESSORS_ONLN)" '
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
        ph == "after" { if (f0 == "") { f0 = t; fn0 = nb } f1 = t; fn1 = nb }
        END {
            alone = (av1 - av0) / (a1 - a0)
            ref = alone < base ? alone : base
            reach = "never"
            for (j = 2; j <= n && reach == "never"; j++) {
                for (i = j - 1; i >= 1 && T[j] - T[i] < 0.5; i--) ;
                if (i >= 1 && (V[j] - V[i]) / (T[j] - T[i]) >= 0.9 * ref) reach = sprintf("%.2f", T[j] - T[1])
            }
            for (i = 1; i <= k; i++) { s[i] = S[i] / ref; sum += s[i] }
            for (i = 2; i <= k; i++) for (j = i; j > 1 && s[j - 1] > s[j]; j--) { x = s[j]; s[j] = s[j - 1]; s[j - 1] = x }
            p = int(0.01 * k); if (p < 0.01 * k) p++; if (p < 1) p = 1
            printf "%.3f,%.3f,%.3f,%.3f,%d,%s,%.3f,%.3f\n", alone, (bv1 - bv0) / (b1 - b0), sum / k, s[p], k,
                reach, (bn1 - bn0) / (b1 - b0), (fn1 - fn0) / (f1 - f0) / cpus
        }' "$1"
}

print_report() {
    local line cell alone vboth mean p01 reach nboth after
    report "CPU workload shapes on 2 vCPUs: victim baseline $VICTIM_BASELINE, burst $VICTIM_BURST"
    report "share = victim cores / min(baseline, alone), per-second samples of \"both\" (${BOTH_S} s, after ${REACT_S} s of reaction)"
    report "after = the neighbours' cores in the second after the victim stops / 2 cores"
    report ""
    report "$(printf '%-4s %-11s %-6s %-7s %-6s %-6s %-6s %-8s %-6s' cell way alone victim mean p01 reach neighbrs after)"
    while IFS=, read -r cell way line; do
        IFS=, read -r alone vboth mean p01 _samples reach nboth after <<<"$line"
        report "$(printf '%-4s %-11s %-6s %-7s %-6s %-6s %-6s %-8s %-6s' \
            "$cell" "$way" "$alone" "$vboth" "$mean" "$p01" "$reach" "$nboth" "$after")"
    done < <(tail -n +2 "$SUMMARY")
    report ""
    for cell in $CELLS; do report "cell $cell: $(cell_label "$cell")"; done
    report "columns: alone and victim (in both) in cores; mean and p01 of the share; reach in s; neighbrs: the neighbours' cores in both"
    report ""
    [[ ! -f $OUT/knobs.txt ]] || report "$(cat "$OUT/knobs.txt")"
}

main() {
    : >"$REPORT"
    if [[ ${VM_SHAPES:-0} != 1 ]]; then
        report "SKIP: cpu-shapes is a benchmark (about 4 minutes); run it with VM_SHAPES=1 tests/vm/run.sh cpu-shapes"
        finish
    fi
    echo "cell,way,alone,victim_both,share_mean,share_p01,samples,reach_s,neighbours_both,after_share" >"$SUMMARY"
    echo +cpu >"$CG/cgroup.subtree_control"
    local cell way
    for cell in $CELLS; do
        for way in $WAYS; do
            run_cell "$cell" "$way"
        done
    done
    print_report
    finish
}

main
