#!/usr/bin/env bash
# timeout: 240
# CPU noisy neighbour, on 2 vCPUs, first without qosd and then with it, in
# the same VM run (the emulated machine is noisy: compare within one run).
#
#   web:   baseline 1.5 cores, burst 2: `stress-ng --cpu 2` plus the wake-up
#          latency probe (examples/wakeup_probe.rs);
#   batch: baseline 0.5 cores, burst 2: `stress-ng --cpu 8`.
#
# Each part has the same phases (seconds from the part's start):
#   batch alone    batch runs alone; measured after a 3 s settle;
#   web starts     web's two busy threads start beside the bursting batch;
#                  we time how long until web gets >= 90% of its baseline.
#                  (web's stress-ng is started first, before qosd and batch,
#                  and frozen with cgroup.freeze once it spins, then thawed
#                  here: under TCG stress-ng takes ~1 s to start, which
#                  would otherwise be counted as qosd's reaction time);
#   both           steady state: web and batch cores, probe p50/p99;
#   web stopped    batch alone again (it should get the CPU back).
# Cores come from the delta of usage_usec in each cgroup's cpu.stat over
# wall time; timeline-<part>.csv has one sample every 250 ms. timeline.csv
# (lib.sh's timeline_*: both parts, from "batch alone" on, with cpu.max and
# the contracts, every 0.5 s) is what tests/vm/run.sh charts as timeline.png.
#
# Checks (with qosd): web >= 1.40 cores in "both", batch >= 1.85 alone, web
# reaches 1.35 cores within 2 s (two 1 s ticks). Without qosd web gets about
# 1.0 (equal default weights): reported, not asserted.
#
# Knobs: VM_PARTS="without with" (which parts to run), VM_ALONE_S=8,
# VM_BOTH_S=12, VM_AFTER_S=6 (phase lengths).
set -uo pipefail
# shellcheck source=tests/vm/lib.sh
. "$VM_REPO/tests/vm/lib.sh"
require_guest
cd /tmp || exit 1 # stress-ng needs a writable working directory.

PARTS=${VM_PARTS:-without with}
ALONE_S=${VM_ALONE_S:-8}
BOTH_S=${VM_BOTH_S:-12}
AFTER_S=${VM_AFTER_S:-6}
SETTLE_S=3   # batch-alone settle before measuring
REACT_S=2    # web's reaction phase before the steady "both" window
WEB_WANT=1.35 # 90% of web's baseline

# Results, keyed "<part>.<name>" (e.g. with.both_web).
declare -A R

# add_time T DELTA: T + DELTA seconds (decimals), for window bounds.
add_time() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a + b }'; }

write_config() {
    cat >/tmp/qosd.toml <<'EOF'
[agent]
interval = "1s"
cgroup_root = "/sys/fs/cgroup"
metrics_listen = "127.0.0.1:9477"

[host]
reserved_cpu = 0

[tenants.web]
cgroup = "web"
cpu = { baseline = 1.5, burst = 2.0 }

[tenants.batch]
cgroup = "batch"
cpu = { baseline = 0.5, burst = 2.0 }
EOF
    cp /tmp/qosd.toml "$OUT/qosd.toml"
}

# run_part without|with: one pass over all phases; fills R[part.*].
# Nothing forks inside a measurement window (knob snapshots use builtins, the
# analysis runs at the end): under TCG a fork+exec costs tens of ms of CPU in
# the root cgroup, which would be taken from the tenants being measured.
run_part() {
    local part=$1 csv=$OUT/timeline-$1.csv
    say "=== part: $part qosd"
    echo +cpu >"$CG/cgroup.subtree_control"
    cg_fresh web
    cg_fresh batch
    T0=$(now_us)
    start_sampler "$csv" web batch

    # Web's busy threads, up and spinning, then frozen until "web starts".
    cg_spawn web stress-ng --cpu 2 --quiet
    track "$LAST_PID"
    wait_busy web 1.5 20 || fail "$part: web's stress-ng did not start spinning within 20 s"
    cg_freeze web 1
    fsleep 1 # let web's usage settle to zero before qosd or batch start

    if [[ $part == with ]]; then
        write_config
        start_qosd /tmp/qosd.toml "$OUT/qosd.log" || { stop_sampler; return 1; }
    fi

    # Phase: batch alone.
    local t_batch t_web t_both t_both_end t_stop t_end probe_pid p50 p99 label=qosd
    [[ $part == without ]] && label="no qosd"
    timeline_phase "$label" "batch alone"
    timeline_start "$OUT/timeline.csv" cpu web:1.5:2:web batch:0.5:2:batch
    t_batch=$(t_rel)
    cg_spawn batch stress-ng --cpu 8 --quiet
    track "$LAST_PID"
    fsleep "$ALONE_S"

    # Phase: web starts beside the bursting batch.
    t_web=$(t_rel)
    timeline_phase "$label" "web joins"
    cg_freeze web 0
    fsleep "$REACT_S"

    # Phase: both, steady. The probe runs through it in web's cgroup.
    t_both=$(t_rel)
    timeline_phase "$label" "both"
    cg_spawn web "$WAKEUP_PROBE" --seconds "$BOTH_S" >"$OUT/probe-$part.txt" 2>&1
    probe_pid=$LAST_PID
    fsleep $((BOTH_S / 2))
    knob_snapshot
    wait "$probe_pid"
    t_both_end=$(t_rel)
    if [[ $part == with ]]; then
        # Still both running, but outside the measured window.
        curl -s "http://127.0.0.1:9477/metrics" >"$OUT/metrics-both.txt"
    fi

    # Phase: web stopped; batch should get the CPU back.
    cg_destroy web
    t_stop=$(t_rel)
    timeline_phase "$label" "web stopped"
    fsleep "$AFTER_S"
    t_end=$(t_rel)
    timeline_stop

    if [[ $part == with ]]; then
        curl -s "http://127.0.0.1:9477/metrics" >"$OUT/metrics-end.txt"
        stop_qosd
    fi
    cg_destroy batch
    stop_sampler

    # Analysis, from the timeline.
    R[$part.alone_batch]=$(cores_between "$csv" batch "$(add_time "$t_batch" $SETTLE_S)" "$t_web")
    R[$part.react]=$(time_to_reach "$csv" web "$t_web" "$WEB_WANT")
    R[$part.both_web]=$(cores_between "$csv" web "$t_both" "$t_both_end")
    R[$part.both_batch]=$(cores_between "$csv" batch "$t_both" "$t_both_end")
    R[$part.both_busy]=$(cores_between "$csv" guest_busy "$t_both" "$t_both_end")
    R[$part.after_batch]=$(cores_between "$csv" batch "$(add_time "$t_stop" 2)" "$t_end")
    R[$part.recover]=$(time_to_reach "$csv" batch "$t_stop" 1.85)
    read -r _ p50 p99 _ < <(tr '=' ' ' <"$OUT/probe-$part.txt" | awk '/^wakeup_us/ { print $1, $3, $5, $7 }')
    R[$part.p50]=${p50:-?}
    R[$part.p99]=${p99:-?}
    {
        echo "$KNOBS"
        echo "  marks (s since part start): batch_start=$t_batch web_start=$t_web both=$t_both..$t_both_end web_stop=$t_stop end=$t_end"
        echo "  guest busy during both (from /proc/stat, tick-based): ${R[$part.both_busy]} cores"
    } >"$OUT/knobs-$part.txt"
    say "$part: batch alone ${R[$part.alone_batch]}; both: web ${R[$part.both_web]} batch ${R[$part.both_batch]}; web reached $WEB_WANT after ${R[$part.react]} s; after: batch ${R[$part.after_batch]}; probe $(cat "$OUT/probe-$part.txt")"
}

# cpu.weight and cpu.max of both tenants into KNOBS, with builtins only
# (no fork, not even a $(...) subshell).
knob_snapshot() {
    local g w m
    milli_r $(((${EPOCHREALTIME/./} - T0) / 1000))
    KNOBS="$part qosd, at t=${REPLY}s, both running:"
    for g in web batch; do
        read -r w <"$CG/$g/cpu.weight"
        read -r m <"$CG/$g/cpu.max"
        printf -v KNOBS '%s\n  %-6s cpu.weight=%s cpu.max=%s' "$KNOBS" "$g:" "$w" "$m"
    done
}

# SIGTERM qosd and record how it exited (the reload scenario checks this).
stop_qosd() {
    local key value _unit
    while read -r key value _unit; do
        case $key in
            VmRSS: | VmHWM:) R[with.${key%:}]=$value ;;
        esac
    done <"/proc/$QOSD_PID/status"
    kill -TERM "$QOSD_PID" 2>/dev/null
    local rc=0
    wait "$QOSD_PID" || rc=$?
    R[with.qosd_exit]=$rc
}

# v PART KEY: a result, or "-" when that part did not run.
v() { echo "${R[$1.$2]:--}"; }

print_report() {
    report "CPU noisy neighbour on 2 vCPUs (cores = usage_usec delta / wall time)"
    report "web: baseline 1.5, burst 2 (stress-ng --cpu 2 + wake-up probe); batch: baseline 0.5, burst 2 (stress-ng --cpu 8)"
    report ""
    report "$(printf '%-26s | %-17s | %-17s' phase 'without qosd' 'with qosd')"
    report "$(printf '%-26s | %-8s %-8s | %-8s %-8s' '' web batch web batch)"
    report "$(printf -- '-%.0s' {1..68})"
    report "$(printf '%-26s | %-8s %-8s | %-8s %-8s' 'batch alone' - "$(v without alone_batch)" - "$(v with alone_batch)")"
    report "$(printf '%-26s | %-8s %-8s | %-8s %-8s' 'both (steady)' "$(v without both_web)" "$(v without both_batch)" "$(v with both_web)" "$(v with both_batch)")"
    report "$(printf '%-26s | %-8s %-8s | %-8s %-8s' 'web stopped' - "$(v without after_batch)" - "$(v with after_batch)")"
    report "$(printf '%-26s | %-17s | %-17s' "web reaches $WEB_WANT cores (s)" "$(v without react)" "$(v with react)")"
    report "$(printf '%-26s | %-17s | %-17s' 'batch back to 1.85 (s)' "$(v without recover)" "$(v with recover)")"
    report "$(printf '%-26s | %-17s | %-17s' 'wake-up p50/p99 (us)' "$(v without p50)/$(v without p99)" "$(v with p50)/$(v with p99)")"
    report ""
    local part
    for part in without with; do
        if [[ -f $OUT/knobs-$part.txt ]]; then report "$(cat "$OUT/knobs-$part.txt")"; fi
    done
    if [[ -n ${R[with.qosd_exit]:-} ]]; then
        report "qosd exit status after SIGTERM: ${R[with.qosd_exit]}"
        report "qosd memory before SIGTERM: VmRSS ${R[with.VmRSS]:-?} kB, peak VmHWM ${R[with.VmHWM]:-?} kB"
        report "qosd tick cost in the VM: $(tick_cost "$OUT/metrics-end.txt")"
    fi
    report ""
}

# has_part NAME: true if VM_PARTS includes NAME.
has_part() { [[ " $PARTS " == *" $1 "* ]]; }

check_results() {
    if has_part without && ge "$(v without both_web)" 1.40; then
        report "WARN: web got $(v without both_web) cores without qosd: the neighbour was not noisy enough to show the effect"
    fi
    local part
    for part in $PARTS; do
        [[ -z ${R[$part.p50]:-} || ${R[$part.p50]} != "?" ]] ||
            fail "$part qosd: the wake-up probe printed no result (see $OUT/probe-$part.txt; is $WAKEUP_PROBE built?)"
    done
    has_part with || return 0
    [[ -n ${R[with.both_web]:-} ]] || { fail "the with-qosd part did not complete"; return; }
    promtool check metrics <"$OUT/metrics-end.txt" >"$OUT/promtool.txt" 2>&1 ||
        fail "promtool check metrics rejected the agent's /metrics (see $OUT/promtool.txt)"
    ge "$(v with both_web)" 1.40 ||
        fail "with qosd, web got $(v with both_web) cores beside batch (want >= 1.40)"
    ge "$(v with alone_batch)" 1.85 ||
        fail "with qosd, batch alone got $(v with alone_batch) cores (want >= 1.85: burst 2 on an idle host)"
    awk -v t="$(v with react)" 'BEGIN { exit !(t ~ /^[0-9.]+$/ && t <= 2.0) }' ||
        fail "with qosd, web reached $WEB_WANT cores after $(v with react) s (want <= 2 s, two ticks)"
}

main() {
    : >"$REPORT"
    local part
    for part in $PARTS; do
        run_part "$part" || say "part $part did not complete"
    done
    print_report
    check_results
    finish
}

main
