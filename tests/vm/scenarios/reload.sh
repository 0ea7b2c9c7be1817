#!/usr/bin/env bash
# timeout: 180
# Configuration reload (SIGHUP) and shutdown (SIGTERM) on a real kernel.
#
# One tenant "batch" (cpu burst 1.0, interval 1s) with a busy load that wants
# 2 cores. Then:
#   1. cpu.max shows the burst: "100000 100000";
#   2. a BROKEN config (a typo'd key) + SIGHUP: after two ticks cpu.max is
#      unchanged and qosd_config_reloads_total{result="failure"} is 1;
#   3. a GOOD config with burst 0.5 + SIGHUP: within one tick (1 s) cpu.max is
#      "50000 100000" and the success counter is 1;
#   4. SIGTERM: qosd exits 0 within 2 s and leaves cpu.max at "50000 100000".
set -uo pipefail
# shellcheck source=tests/vm/lib.sh
. "$VM_REPO/tests/vm/lib.sh"
require_guest
cd /tmp || exit 1 # stress-ng needs a writable working directory.

CONFIG=/tmp/qosd.toml

# write_config BURST [BURST_KEY]: the config, with the burst under BURST_KEY
# (default "burst"; anything else is a typo qosd must reject).
write_config() {
    cat >"$CONFIG" <<EOF
[agent]
interval = "1s"
cgroup_root = "/sys/fs/cgroup"
metrics_listen = "127.0.0.1:9477"

[host]
reserved_cpu = 0

[tenants.batch]
cgroup = "batch"
cpu = { baseline = 0.25, ${2:-burst} = $1 }
EOF
}

cpu_max() { cat "$CG/batch/cpu.max"; }

qosd_alive() {
    kill -0 "$QOSD_PID" 2>/dev/null || { fail "qosd is not running (log: $OUT/qosd.log)"; return 1; }
}

main() {
    : >"$REPORT"
    report "Reload (SIGHUP) and shutdown (SIGTERM): tenant batch, cpu baseline 0.25, interval 1s, load: stress-ng --cpu 2"
    echo +cpu >"$CG/cgroup.subtree_control"
    cg_fresh batch
    cg_spawn batch stress-ng --cpu 2 --quiet
    track "$LAST_PID"

    write_config 1.0
    cp "$CONFIG" "$OUT/qosd-1-burst1.toml"
    start_qosd "$CONFIG" "$OUT/qosd.log" || finish

    # 1. The initial contract is applied.
    local took
    if took=$(wait_value "$CG/batch/cpu.max" "100000 100000" 10); then
        report "1. burst 1.0 applied: cpu.max = 100000 100000 after ${took}s"
    else
        fail "cpu.max is '$(cpu_max)' 10 s after start, want '100000 100000' (burst 1.0)"
        finish
    fi

    # 2. A broken file keeps the contract in force.
    write_config 0.5 brust
    cp "$CONFIG" "$OUT/qosd-2-broken.toml"
    kill -HUP "$QOSD_PID"
    fsleep 2.2
    report "2. broken config (key 'brust') + SIGHUP, 2 ticks later: cpu.max = $(cpu_max)"
    [[ $(cpu_max) == "100000 100000" ]] || fail "cpu.max changed to '$(cpu_max)' after a broken config"
    qosd_alive || finish
    check_metric 'qosd_config_reloads_total{result="failure"}' 1

    # 3. A good file is applied within about one tick.
    write_config 0.5
    cp "$CONFIG" "$OUT/qosd-3-burst05.toml"
    kill -HUP "$QOSD_PID"
    if took=$(wait_value "$CG/batch/cpu.max" "50000 100000" 1); then
        report "3. burst 0.5 + SIGHUP: cpu.max = 50000 100000 after ${took}s"
    else
        fail "cpu.max is '$(cpu_max)' one tick (1 s) after reloading burst 0.5, want '50000 100000'"
    fi
    qosd_alive || finish
    check_metric 'qosd_config_reloads_total{result="success"}' 1
    curl -s "http://127.0.0.1:9477/metrics" >"$OUT/metrics.txt"

    # 4. SIGTERM: a prompt, clean exit that leaves the limits in place.
    local start=${EPOCHREALTIME/./} rc=0 ms
    kill -TERM "$QOSD_PID"
    while kill -0 "$QOSD_PID" 2>/dev/null && ((${EPOCHREALTIME/./} - start < 5000000)); do
        fsleep 0.05
    done
    ms=$(((${EPOCHREALTIME/./} - start) / 1000))
    if kill -0 "$QOSD_PID" 2>/dev/null; then
        fail "qosd still running 5 s after SIGTERM"
        kill -KILL "$QOSD_PID"
    fi
    wait "$QOSD_PID" || rc=$?
    report "4. SIGTERM: qosd exited with status $rc after $(milli "$ms")s; cpu.max = $(cpu_max)"
    ((rc == 0)) || fail "qosd exited with status $rc after SIGTERM, want 0"
    ((ms <= 2000)) || fail "qosd took $(milli "$ms")s to exit after SIGTERM, want <= 2 s"
    [[ $(cpu_max) == "50000 100000" ]] || fail "cpu.max is '$(cpu_max)' after qosd exited, want '50000 100000' left in place"

    report "qosd log: $OUT/qosd.log ($(wc -l <"$OUT/qosd.log") lines)"
    cg_destroy batch
    finish
}

main
