#!/usr/bin/env bash
# timeout: 150
# The agent at scale on a real kernel: 10, 100 and 1000 tenants whose cgroups
# qosd creates itself (under agent.parent). For each size:
#   - every tenant's group exists with the contract's cpu.weight and cpu.max
#     after a few ticks (checked: all N, not a sample);
#   - the mean tick cost (qosd_tick_duration_seconds, first tick excluded:
#     it creates the groups), the mean cost of the probe halfway between
#     ticks (qosd_probe_duration_seconds) and the agent's RSS are reported.
# The guest is emulated (TCG): its times are far slower than hardware, and
# only useful as ratios between sizes. BENCHMARKS.md records them.
set -uo pipefail
# shellcheck source=tests/vm/lib.sh
. "$VM_REPO/tests/vm/lib.sh"
require_guest

CONFIG=/tmp/qosd.toml
PARENT=scale.slice
SIZES=${VM_SCALE_SIZES:-10 100 1000}
RUN_S=${VM_SCALE_RUN_S:-6}

# write_config N: N idle tenants, baseline 0.01 cores (cpu.weight 1), burst 1.
write_config() {
    local n=$1 i
    {
        printf '[agent]\ninterval = "1s"\nparent = "%s"\n\n[host]\nreserved_cpu = 0\n' "$PARENT"
        for ((i = 0; i < n; i++)); do
            printf '\n[tenants.t%d]\ncpu = { baseline = 0.01, burst = 1.0 }\n' "$i"
        done
    } >"$CONFIG"
}

# histograms_at: "SUM COUNT SUM COUNT" of the tick and probe histograms now.
histograms_at() {
    curl -sf "http://127.0.0.1:9477/metrics" | awk '
        /^qosd_tick_duration_seconds_sum/ { ts = $2 }
        /^qosd_tick_duration_seconds_count/ { tn = $2 }
        /^qosd_probe_duration_seconds_sum/ { ps = $2 }
        /^qosd_probe_duration_seconds_count/ { pn = $2 }
        END { print ts + 0, tn + 0, ps + 0, pn + 0 }'
}

# mean_ms EARLIER LATER FIELD: the mean in ms between two histograms_at
# readings, of the histogram whose sum is field FIELD (1: tick, 3: probe).
mean_ms() {
    awk -v a="$1" -v b="$2" -v f="$3" 'BEGIN {
        split(a, x, " "); split(b, y, " ");
        if (y[f + 1] > x[f + 1]) printf "%.2f", 1000 * (y[f] - x[f]) / (y[f + 1] - x[f + 1]); else print "?" }'
}

# count_enforced N: how many of the N groups hold the contract's limits.
count_enforced() {
    local n=$1 i ok=0 w m
    for ((i = 0; i < n; i++)); do
        read -r w <"$CG/$PARENT/t$i/cpu.weight" 2>/dev/null || continue
        read -r m <"$CG/$PARENT/t$i/cpu.max" 2>/dev/null || continue
        [[ $w == 1 && $m == "100000 100000" ]] && ok=$((ok + 1))
    done
    echo "$ok"
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$QOSD_PID/status"; }

run_size() {
    local n=$1 first later enforced
    write_config "$n"
    start_qosd "$CONFIG" "$OUT/qosd-$n.log" || return 1
    fsleep 2
    first=$(histograms_at)
    fsleep "$RUN_S"
    later=$(histograms_at)
    enforced=$(count_enforced "$n")
    local rss
    rss=$(rss_kb)
    kill -TERM "$QOSD_PID"
    wait "$QOSD_PID"
    report "$(printf '%-8s | %-9s | %-10s | %-10s | %s/%s' "$n" "$(mean_ms "$first" "$later" 1)" \
        "$(mean_ms "$first" "$later" 3)" "$rss" "$enforced" "$n")"
    ((enforced == n)) || fail "$n tenants: only $enforced of $n groups hold their limits (see $OUT/qosd-$n.log)"
    rmdir "$CG/$PARENT"/t* "$CG/$PARENT" 2>/dev/null
}

main() {
    : >"$REPORT"
    report "qosd at scale in the VM (TCG, 2 vCPUs): idle tenants, interval 1s"
    report "$(printf '%-8s | %-9s | %-10s | %-10s | %s' tenants 'tick (ms)' 'probe (ms)' 'RSS (kB)' 'groups enforced')"
    local n
    for n in $SIZES; do
        run_size "$n" || fail "qosd did not run with $n tenants"
    done
    finish
}

main
