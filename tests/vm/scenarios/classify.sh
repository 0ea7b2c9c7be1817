#!/usr/bin/env bash
# timeout: 120
# Classification of processes into tenants on a real kernel (issue 5).
#
# Two tenants made of processes: alice (uid 1001; cpu baseline 0.5, burst 2)
# and burner (comm "qosd-burn*", a copy of /bin/sleep named
# /tmp/qosd-burn-sleep; cpu baseline 0.1, burst 1: a tenant without any
# contract is a config warning, and the log must have none). qosd creates
# qosd.slice/{alice,burner} and moves matching processes there. uid 1001
# needs no user database entry: processes are started as it with
# `setpriv --reuid=1001 --regid=1001 --clear-groups`.
#   1. Processes that exist before qosd starts (one of each tenant) are moved
#      by the start-up rescan; qosd says it follows new processes with the
#      proc connector.
#   2. Latency over VM_CLASSIFY_STARTS (200) starts, alternating alice
#      (setpriv ... sleep) and burner (/tmp/qosd-burn-sleep, as root). Each
#      start's /proc/PID/{comm,status,cgroup} are polled without forking
#      every VM_CLASSIFY_POLL_S (1 ms; 0: spin) from just before the fork.
#      match -> cgroup runs from the first poll in which the process matches
#      its tenant (burner: its exec, comm qosd-burn-sleep; alice: setpriv's
#      setuid, real uid 1001 in status) to the first poll that shows it in
#      the tenant's group: the time qosd takes. The check FAILs when its p99
#      is above VM_CLASSIFY_P99_MAX_MS (100 ms, the target with the proc
#      connector; four runs on 2026-11-26 measured p99 32-38 ms, max 45 ms).
#      Also reported: exec -> cgroup, from the first exec seen (comm no
#      longer "bash"; for alice that is setpriv's exec, so it includes
#      setpriv's own start-up before its setuid, 100-300 ms of loading
#      from 9p under TCG), and spawn -> cgroup, which adds the fork.
#   3. A fork bomb in alice: 4 parallel workers started as uid 1001 fork 500
#      short-lived processes (fork+exec /bin/true, forks without exec, and
#      every 25th a `sleep` that survives). 0.5 s after it ends, no process of
#      uid 1001 is outside qosd.slice/alice (every /proc/*/status checked),
#      and qosd's log (default level, info) has no WARN or ERROR line.
#      qosd_classification_rescans_total must not move while the starts run:
#      with the connector, steady ticks do no full rescan of /proc.
#   4. qosd_classification_moves_total, qosd_tenant_processes, the rescans
#      and their cost, and the tick cost are reported.
set -uo pipefail
# shellcheck source=tests/vm/lib.sh
. "$VM_REPO/tests/vm/lib.sh"
require_guest
cd /tmp || exit 1

CONFIG=/tmp/qosd.toml
BURN=/tmp/qosd-burn-sleep
ALICE_UID=1001
STARTS=${VM_CLASSIFY_STARTS:-200}
POLL_S=${VM_CLASSIFY_POLL_S:-0.001}
P99_MAX_MS=${VM_CLASSIFY_P99_MAX_MS:-100}
BOMB_WORKERS=4
BOMB_PER_WORKER=125
AS_ALICE=(setpriv --reuid="$ALICE_UID" --regid="$ALICE_UID" --clear-groups)
LAT_CSV=$OUT/latency.csv

write_config() {
    cat >"$CONFIG" <<EOF
[agent]
interval = "1s"
cgroup_root = "/sys/fs/cgroup"
metrics_listen = "127.0.0.1:9477"

[host]
reserved_cpu = 0

[tenants.alice]
match = [{ uid = $ALICE_UID }]
cpu = { baseline = 0.5, burst = 2 }

[tenants.burner]
match = [{ comm = "qosd-burn*" }]
cpu = { baseline = 0.1, burst = 1 }
EOF
}

# cgroup_of_r PID: the process's cgroup v2 path ("0::/..." line) into REPLY
# ("" when it is gone). Builtins only.
cgroup_of_r() {
    REPLY=
    read -r REPLY 2>/dev/null <"/proc/$1/cgroup" || true
}

# wait_in PID GROUP SECONDS: wait until PID is in GROUP (relative to the
# cgroup root, e.g. qosd.slice/alice); non-zero on timeout.
wait_in() {
    local start=${EPOCHREALTIME/./}
    while ((${EPOCHREALTIME/./} - start < $3 * 1000000)); do
        cgroup_of_r "$1"
        [[ $REPLY == "0::/$2" ]] && return 0
        fsleep 0.05
    done
    return 1
}

# wait_log PATTERN SECONDS: wait until qosd's log has a line with PATTERN.
wait_log() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        grep -q -- "$1" "$OUT/qosd.log" && return 0
        fsleep 0.1
    done
    return 1
}

# matches PID TENANT: whether PID now matches TENANT's matcher (alice: real
# uid, the first field of Uid: in status; burner: comm). Builtins only.
matches() {
    local k v
    case $2 in
        alice)
            while read -r k v _; do
                [[ $k == Uid: ]] && { [[ $v == "$ALICE_UID" ]]; return; }
            done 2>/dev/null <"/proc/$1/status"
            return 1
            ;;
        burner)
            v=
            read -r v 2>/dev/null <"/proc/$1/comm"
            [[ $v == "${BURN##*/}" ]]
            ;;
    esac
}

# measure_start TENANT CMD...: start CMD in the background and poll, without
# forking, its /proc/PID/comm until it is no longer the forked shell's
# ("bash": CMD has exec'd), whether it matches TENANT, and its
# /proc/PID/cgroup until it shows qosd.slice/TENANT; then kill it. Appends
# to the CSV
#   i, tenant, spawn_exec_us (fork to the first exec seen),
#   spawn_cg_us (fork to the tenant's group), exec_cg_us (first exec seen to
#   the tenant's group), match_cg_us (first poll matching to the tenant's
#   group; 0 when both showed in one poll)
# with -1 for what was not seen within 2 s.
measure_start() {
    local tenant=$1 want="0::/qosd.slice/$1" t0 t pid line comm
    local t_exec=-1 t_match=-1 t_cg=-1 exec_cg=-1 match_cg=-1
    shift
    t0=${EPOCHREALTIME/./}
    "$@" &
    pid=$!
    while :; do
        if ((t_exec < 0)); then
            comm=bash
            read -r comm 2>/dev/null <"/proc/$pid/comm"
            [[ $comm == bash ]] || t_exec=$((${EPOCHREALTIME/./} - t0))
        fi
        if ((t_match < 0)) && matches "$pid" "$tenant"; then
            t_match=$((${EPOCHREALTIME/./} - t0))
        fi
        line=
        read -r line 2>/dev/null <"/proc/$pid/cgroup"
        t=$((${EPOCHREALTIME/./} - t0))
        if [[ $line == "$want" ]]; then
            t_cg=$t
            # The exec, the match and the move fell in one poll.
            ((t_exec >= 0)) || t_exec=$t
            ((t_match >= 0)) || t_match=$t
            break
        fi
        ((t < 2000000)) || break
        [[ $POLL_S == 0 ]] || fsleep "$POLL_S"
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    if ((t_cg >= 0)); then
        exec_cg=$((t_cg - t_exec))
        match_cg=$((t_cg - t_match))
    fi
    echo "$N_STARTS,$tenant,$t_exec,$t_cg,$exec_cg,$match_cg" >>"$LAT_CSV"
    N_STARTS=$((N_STARTS + 1))
}

# latency_stats COLUMN [TENANT]: "p50=X p99=Y max=Z ms (n=N, missed=M)" of a
# CSV column (spawn_exec_us, spawn_cg_us, exec_cg_us or match_cg_us) over the rows of
# TENANT, or all; a miss (-1) counts as infinitely late.
latency_stats() {
    awk -F, -v col="$1" -v t="${2:-}" '
        NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
        t == "" || $2 == t { print ($c < 0 ? "999999999999" : $c) }' "$LAT_CSV" |
        sort -n | awk '
            { v[++n] = $1; if ($1 >= 999999999999) miss++ }
            function q(p,   i) { i = int(p * n + 0.999999); if (i < 1) i = 1; return v[i] / 1000 }
            END {
                if (n == 0) { print "n=0"; exit }
                printf "p50=%.1f p99=%.1f max=%.1f ms (n=%d, missed=%d)\n", q(0.5), q(0.99), v[n] / 1000, n, miss
            }'
}

# metric_value NAME FILE: the value of an unlabelled metric in a scrape.
metric_value() { awk -v name="$1" '$1 == name { print $2 }' "$2"; }

# p99_ms COLUMN [TENANT]: the p99 of latency_stats, in ms.
p99_ms() { latency_stats "$@" | sed -n 's/.* p99=\([0-9.]*\) .*/\1/p'; }

# scan_uid UID GROUP: every process of real uid UID, and the ones not in
# GROUP, into SCAN_SEEN (count) and SCAN_OUTSIDE (array of "pid comm cgroup").
# Builtins only.
scan_uid() {
    local d k v comm uid cg
    SCAN_SEEN=0
    SCAN_OUTSIDE=()
    for d in /proc/[0-9]*; do
        uid="" comm=""
        while read -r k v _; do
            case $k in
                Name:) comm=$v ;;
                Uid:) uid=$v; break ;;
            esac
        done 2>/dev/null <"$d/status"
        [[ $uid == "$1" ]] || continue
        cg=
        read -r cg 2>/dev/null <"$d/cgroup" || continue
        SCAN_SEEN=$((SCAN_SEEN + 1))
        [[ $cg == "0::/$2" ]] || SCAN_OUTSIDE+=("${d#/proc/} $comm $cg")
    done
}

# The fork bomb, run by bash as uid 1001: $1 workers in parallel, $2
# processes each: fork+exec /bin/true, a fork without exec, and every 25th a
# `sleep 20` that outlives the bomb.
# shellcheck disable=SC2016 # expanded by the bomb's shell.
BOMB='
workers=$1 per=$2
for ((w = 0; w < workers; w++)); do
    (
        for ((i = 1; i <= per; i++)); do
            if ((i % 25 == 0)); then
                sleep 20 &
            elif ((i % 2)); then
                /bin/true
            else
                ( : )
            fi
        done
    ) &
done
wait
'

main() {
    : >"$REPORT"
    report "Classification: tenants alice (uid $ALICE_UID) and burner (comm qosd-burn*), interval 1s"
    command -v setpriv >/dev/null || { fail "setpriv (util-linux) not found in the guest"; finish; }
    if ! cp /bin/sleep "$BURN" || ! chmod 0755 "$BURN"; then fail "cannot copy /bin/sleep to $BURN"; finish; fi
    write_config
    cp "$CONFIG" "$OUT/qosd.toml"

    # 1. Processes that exist before qosd: the start-up rescan moves them.
    "${AS_ALICE[@]}" sleep 60 &
    local pre_alice=$!
    track "$pre_alice"
    "$BURN" 60 &
    local pre_burn=$!
    track "$pre_burn"
    fsleep 0.2

    local t_start=${EPOCHREALTIME/./}
    start_qosd "$CONFIG" "$OUT/qosd.log" || finish
    report "qosd up after $(milli $(((${EPOCHREALTIME/./} - t_start) / 1000)))s"
    if wait_in "$pre_alice" qosd.slice/alice 5; then
        report "1. pre-existing uid $ALICE_UID process (sleep, pid $pre_alice) is in qosd.slice/alice"
    else
        cgroup_of_r "$pre_alice"
        fail "pre-existing uid $ALICE_UID process $pre_alice is in '$REPLY' 5 s after qosd started, want qosd.slice/alice"
    fi
    if wait_in "$pre_burn" qosd.slice/burner 5; then
        report "1. pre-existing qosd-burn-sleep (pid $pre_burn) is in qosd.slice/burner"
    else
        cgroup_of_r "$pre_burn"
        fail "pre-existing qosd-burn-sleep $pre_burn is in '$REPLY' 5 s after qosd started, want qosd.slice/burner"
    fi
    local connector=1
    if wait_log "following new processes with the proc connector" 5; then
        report "1. qosd follows new processes with the proc connector"
    else
        connector=0
        fail "qosd did not log 'following new processes with the proc connector' within 5 s (log: $(grep -m1 'proc connector' "$OUT/qosd.log"))"
    fi
    report "   alice cpu.max=$(cat "$CG/qosd.slice/alice/cpu.max" 2>&1) cpu.weight=$(cat "$CG/qosd.slice/alice/cpu.weight" 2>&1)"
    curl -sf "http://127.0.0.1:9477/metrics" >"$OUT/metrics-0-start.txt"

    # 2. Latency over STARTS starts, alternating the two tenants.
    echo "i,tenant,spawn_exec_us,spawn_cg_us,exec_cg_us,match_cg_us" >"$LAT_CSV"
    N_STARTS=0
    local i t_lat=${EPOCHREALTIME/./}
    for ((i = 0; i < STARTS; i++)); do
        if ((i % 2 == 0)); then
            measure_start alice "${AS_ALICE[@]}" sleep 5
        else
            measure_start burner "$BURN" 5
        fi
    done
    report "2. latency over $STARTS starts in $(milli $(((${EPOCHREALTIME/./} - t_lat) / 1000)))s (polled every ${POLL_S}s, no fork):"
    report "   match -> tenant cgroup (from the first poll where it matches: burner's exec, alice's setuid; qosd's own latency):"
    report "     alice:  $(latency_stats match_cg_us alice)"
    report "     burner: $(latency_stats match_cg_us burner)"
    report "     all:    $(latency_stats match_cg_us)"
    report "   exec -> tenant cgroup (from the first exec seen; alice: setpriv's exec, so it includes setpriv's start-up up to its setuid):"
    report "     alice:  $(latency_stats exec_cg_us alice)"
    report "     burner: $(latency_stats exec_cg_us burner)"
    report "     all:    $(latency_stats exec_cg_us)"
    report "   spawn (fork) -> tenant cgroup, an upper bound that includes fork+exec from 9p under TCG:"
    report "     alice:  $(latency_stats spawn_cg_us alice)"
    report "     burner: $(latency_stats spawn_cg_us burner)"
    report "     all:    $(latency_stats spawn_cg_us)"
    report "   spawn -> first exec (the cost of starting, no qosd involved): alice $(latency_stats spawn_exec_us alice); burner $(latency_stats spawn_exec_us burner)"
    curl -sf "http://127.0.0.1:9477/metrics" >"$OUT/metrics-1-latency.txt"
    local rescans_before rescans_after
    rescans_before=$(metric_value qosd_classification_rescans_total "$OUT/metrics-0-start.txt")
    rescans_after=$(metric_value qosd_classification_rescans_total "$OUT/metrics-1-latency.txt")
    if [[ -n $rescans_before && $rescans_before == "$rescans_after" ]]; then
        report "   full rescans of /proc while the $STARTS starts ran: none (qosd_classification_rescans_total stayed $rescans_before): events did the work"
    else
        fail "qosd_classification_rescans_total went from '${rescans_before:-absent}' to '${rescans_after:-absent}' during the starts: steady ticks must not rescan with the connector"
    fi
    local p99
    p99=$(p99_ms match_cg_us)
    if le "$p99" "$P99_MAX_MS"; then
        report "   match -> cgroup p99 $p99 ms <= $P99_MAX_MS ms"
    else
        fail "match -> cgroup p99 $p99 ms > $P99_MAX_MS ms (connector: $connector)"
    fi

    # 3. Fork bomb inside alice.
    local total=$((BOMB_WORKERS * BOMB_PER_WORKER)) t_bomb rc=0
    t_bomb=${EPOCHREALTIME/./}
    "${AS_ALICE[@]}" bash -c "$BOMB" bomb "$BOMB_WORKERS" "$BOMB_PER_WORKER" || rc=$?
    report "3. fork bomb: $total processes as uid $ALICE_UID ($BOMB_WORKERS workers in parallel) took $(milli $(((${EPOCHREALTIME/./} - t_bomb) / 1000)))s (exit $rc)"
    fsleep 0.5
    scan_uid "$ALICE_UID" qosd.slice/alice
    report "   0.5 s later: $SCAN_SEEN process(es) of uid $ALICE_UID, ${#SCAN_OUTSIDE[@]} outside qosd.slice/alice"
    local p
    for p in "${SCAN_OUTSIDE[@]}"; do
        report "   outside: $p"
    done
    ((${#SCAN_OUTSIDE[@]} == 0)) || fail "${#SCAN_OUTSIDE[@]} process(es) of uid $ALICE_UID outside qosd.slice/alice after the fork bomb"
    ((SCAN_SEEN >= total / 25)) ||
        fail "only $SCAN_SEEN process(es) of uid $ALICE_UID seen after the bomb, want >= $((total / 25)) (its surviving sleeps)"

    # 4. Metrics (the process gauge is refreshed every tick).
    fsleep 1.2
    curl -sf "http://127.0.0.1:9477/metrics" >"$OUT/metrics.txt"
    report "4. metrics: $(grep -E '^qosd_classification_(moves|rescans|rescan_seconds)_total' "$OUT/metrics.txt" | tr '\n' ' ')"
    report "   $(grep -E '^qosd_tenant_processes' "$OUT/metrics.txt" | tr '\n' ' ')"
    report "   procs in qosd.slice/alice: $(wc -l <"$CG/qosd.slice/alice/cgroup.procs"), burner: $(wc -l <"$CG/qosd.slice/burner/cgroup.procs")"
    report "   tick cost: $(tick_cost "$OUT/metrics.txt")"
    local moves
    moves=$(awk '/^qosd_classification_moves_total/ { print $2 }' "$OUT/metrics.txt")
    awk -v m="$moves" 'BEGIN { exit !(m + 0 > 0) }' || fail "qosd_classification_moves_total is '${moves:-absent}', want > 0"

    # The log: no WARN or ERROR line (a vanished process is debug level).
    local bad
    bad=$(grep -c ' WARN \| ERROR ' "$OUT/qosd.log")
    if ((bad > 0)); then
        fail "qosd log has $bad WARN/ERROR line(s):"
        grep ' WARN \| ERROR ' "$OUT/qosd.log" | head -n 10 | tee -a "$REPORT"
    else
        report "   qosd log: no WARN/ERROR lines ($(wc -l <"$OUT/qosd.log") lines)"
    fi

    kill -KILL "$pre_alice" "$pre_burn" 2>/dev/null
    echo 1 >"$CG/qosd.slice/alice/cgroup.kill" 2>/dev/null
    report "scenario time: $(t_rel)s"
    finish
}

main
