#!/usr/bin/env bash
# timeout: 180
# `qosd status` against the running agent (issue 6), on 2 vCPUs.
#
#   web:   cpu baseline 1.5 cores, burst 2: `stress-ng --cpu 1`, one busy
#          core: the victim, which asks for less than its baseline;
#   batch: cpu baseline 0.5 cores, burst 2: `stress-ng --cpu 4`, the noisy
#          neighbour, which would take both cores.
#
#   1. Before qosd starts, `qosd status` exits non-zero and says that qosd is
#      not running.
#   2. qosd serves /run/qosd/qosd.sock, mode 0600 in a 0700 directory.
#   3. Both tenants busy: within VM_STATUS_WAIT_S (15 s), `qosd status
#      --json` shows batch's cpu row "clamped" and web's "within_baseline",
#      and the host's cpu "contended". The table (`qosd status`) is saved
#      and shown in the report.
#   4. `qosd status --watch --interval 1s`, not on a terminal, prints a new
#      report every second (at least 2 in 3.5 s).
#   5. web stopped: batch alone shows "bursting" within VM_STATUS_WAIT_S.
#   6. When qosd stops, the socket is gone.
set -uo pipefail
# shellcheck source=tests/vm/lib.sh
. "$VM_REPO/tests/vm/lib.sh"
require_guest
cd /tmp || exit 1 # stress-ng needs a writable working directory.

CONFIG=/tmp/qosd.toml
declare -A R # stop_qosd records the exit here
SOCKET=/run/qosd/qosd.sock
WAIT_S=${VM_STATUS_WAIT_S:-15}

write_config() {
    cat >"$CONFIG" <<'EOF'
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
}

# cpu_states FILE: "tenant=state" for each cpu row of a `qosd status --json`
# report, and "host=contended|not_contended" for the host's cpu. The JSON is
# pretty-printed by qosd: one field per line.
cpu_states() {
    awk -F'"' '
        $2 == "tenant" { tenant = $4 }
        $2 == "resource" { resource = $4 }
        $2 == "contended" && resource == "cpu" { host = ($0 ~ /true/) ? "contended" : "not_contended" }
        $2 == "state" && resource == "cpu" { printf "%s=%s ", tenant, $4 }
        END { printf "host=%s\n", host }' "$1"
}

# wait_states WANT...: poll `qosd status --json` until every WANT
# ("batch=clamped", "host=contended") is in its cpu_states; the last report
# is in $OUT/status-last.json and its states in STATES.
wait_states() {
    local start=${EPOCHREALTIME/./} want missing
    while :; do
        "$QOSD_BIN" status --json >"$OUT/status-last.json" 2>"$OUT/status-last.err"
        STATES=$(cpu_states "$OUT/status-last.json")
        echo "$(t_rel) $STATES" >>"$OUT/status-polls.txt"
        missing=0
        for want in "$@"; do
            [[ " $STATES " == *" $want "* ]] || missing=1
        done
        ((missing == 0)) && return 0
        ((${EPOCHREALTIME/./} - start < WAIT_S * 1000000)) || return 1
        fsleep 0.5
    done
}

main() {
    : >"$REPORT"
    report "qosd status: web (cpu baseline 1.5, burst 2; 1 busy thread) and batch (baseline 0.5, burst 2; 4 busy threads) on 2 vCPUs, interval 1s"
    write_config
    cp "$CONFIG" "$OUT/qosd.toml"

    # 1. No agent yet.
    local said rc=0
    said=$("$QOSD_BIN" status 2>&1) || rc=$?
    if ((rc != 0)) && [[ $said == *"qosd is not running"* ]]; then
        report "1. without an agent: exit $rc, \"$said\""
    else
        fail "1. without an agent, qosd status exited $rc and said: $said"
    fi

    start_qosd "$CONFIG" "$OUT/qosd.log" || finish
    # 2. The socket and its permissions.
    local mode dir_mode
    mode=$(stat -c %a "$SOCKET" 2>&1)
    dir_mode=$(stat -c %a "${SOCKET%/*}" 2>&1)
    if [[ $mode == 600 && $dir_mode == 700 ]]; then
        report "2. $SOCKET is mode $mode in a directory of mode $dir_mode"
    else
        fail "2. $SOCKET is mode '$mode' in a directory of mode '$dir_mode', want 600 and 700"
    fi

    # 3. Contention: batch clamped, web within its baseline.
    cg_fresh web
    cg_fresh batch
    cg_spawn batch stress-ng --cpu 4 --quiet
    track "$LAST_PID"
    cg_spawn web stress-ng --cpu 1 --quiet
    track "$LAST_PID"
    if wait_states batch=clamped web=within_baseline host=contended; then
        report "3. both busy, at $(t_rel)s: $STATES"
        cp "$OUT/status-last.json" "$OUT/status-contended.json"
        "$QOSD_BIN" status >"$OUT/status-contended.txt" 2>&1
        sed 's/^/   | /' "$OUT/status-contended.txt" | tee -a "$REPORT"
    else
        fail "3. within ${WAIT_S}s, qosd status --json never showed batch clamped, web within baseline and the cpu contended; last: $STATES $(cat "$OUT/status-last.err")"
    fi

    # 4. --watch, not on a terminal: one report per interval.
    timeout 3.5 "$QOSD_BIN" status --watch --interval 1s >"$OUT/status-watch.txt" 2>&1
    local reports
    reports=$(grep -c '^qosd: tick' "$OUT/status-watch.txt")
    if ((reports >= 2)); then
        report "4. --watch printed $reports reports in 3.5 s"
    else
        fail "4. --watch printed $reports report(s) in 3.5 s, want >= 2"
    fi

    # 5. batch alone bursts.
    cg_destroy web
    if wait_states batch=bursting; then
        report "5. web stopped, at $(t_rel)s: $STATES"
    else
        fail "5. within ${WAIT_S}s of web stopping, batch never showed bursting; last: $STATES"
    fi

    stop_qosd
    if [[ -e $SOCKET ]]; then
        fail "6. $SOCKET is still there after qosd stopped"
    else
        report "6. qosd stopped (exit ${R[qosd.exit]:-?}); $SOCKET removed"
    fi
    cg_destroy batch
    report "scenario time: $(t_rel)s"
    finish
}

main
