# shellcheck shell=bash
# Helpers shared by the VM scenarios (tests/vm/scenarios/*.sh). Sourced, in
# the guest, as root, with the settings of /run/out/vm.env in the environment.
#
# Conventions:
#   - report "text"  appends a line to $OUT/report.txt (and the console);
#   - fail "text"    records "FAIL: text"; `finish` writes $OUT/status
#                    (0 only when nothing failed) and exits;
#   - times are integers in microseconds (bash has no floating point), taken
#     from $EPOCHREALTIME, which costs no fork: under TCG every fork is slow
#     and would steal CPU from the tenants being measured.

OUT=${VM_OUT:-/run/out}
QOSD_BIN=${QOSD_BIN:-$VM_REPO/target/release/qosd}
WAKEUP_PROBE=${WAKEUP_PROBE:-$VM_REPO/target/release/examples/wakeup_probe}
CG=/sys/fs/cgroup
FAILS=0
REPORT=$OUT/report.txt

say() { echo "[$(date +%T)] $*"; }
report() { echo "$*" | tee -a "$REPORT"; }
fail() {
    FAILS=$((FAILS + 1))
    report "FAIL: $*"
}

# Write the status file and end the scenario.
finish() {
    timeline_stop
    stop_background
    if ((FAILS == 0)); then
        report "RESULT: PASS"
        echo 0 >"$OUT/status"
    else
        report "RESULT: FAIL ($FAILS failed check(s))"
        echo 1 >"$OUT/status"
    fi
    echo "$EPOCHREALTIME" >"$OUT/guest-clock-end"
    sync
    exit 0
}

# Refuse to run anywhere but in the test VM: the cgroup writes below would
# otherwise land on a real host. The VM's cgroup2 root has the cpu controller
# and the output share is mounted; the project's hosts have neither.
require_guest() {
    if ! grep -qw cpu "$CG/cgroup.controllers" 2>/dev/null || ! mountpoint -q "$OUT"; then
        echo "lib.sh: not inside the test VM (no cgroup v2 cpu controller or no $OUT); refusing" >&2
        exit 1
    fi
}

now_us() { echo "${EPOCHREALTIME/./}"; }
T0=${EPOCHREALTIME/./}
# The guest's clock at the start and at `finish`, each in a file whose mtime
# the host stamps with its own clock: tests/vm/run.sh compares the two spans.
echo "$EPOCHREALTIME" >"$OUT/guest-clock-start" 2>/dev/null

# Sleep without forking: `read -t` on a pipe that never gets data.
exec {SLEEP_FD}<> <(:)
fsleep() { read -r -t "$1" -u "$SLEEP_FD" || true; }

# Format an integer number of thousandths as x.yyy, into REPLY (no fork;
# `milli` prints it, for use outside hot loops).
milli_r() {
    local v=$1 sign=
    if ((v < 0)); then sign=-; v=$((-v)); fi
    printf -v REPLY '%s%d.%03d' "$sign" $((v / 1000)) $((v % 1000))
}
milli() { milli_r "$1"; echo "$REPLY"; }

# --- cgroups -----------------------------------------------------------------

# usage_usec of a cgroup's cpu.stat into REPLY, read with builtins only
# (0 if the group is gone). `cpu_usage_usec` prints it.
cpu_usage_r() {
    local k v
    REPLY=0
    [[ -r $CG/$1/cpu.stat ]] || return 0
    while read -r k v; do
        if [[ $k == usage_usec ]]; then
            REPLY=$v
            return 0
        fi
    done <"$CG/$1/cpu.stat"
}
cpu_usage_usec() { cpu_usage_r "$1"; echo "$REPLY"; }

# Create a fresh, empty cgroup (deleting an old one and its processes).
cg_fresh() {
    cg_destroy "$1"
    mkdir "$CG/$1"
}

# wait_value FILE WANT SECONDS: poll FILE's first line every 100 ms until it
# reads WANT, for at most SECONDS (whole); prints the seconds it took;
# non-zero on timeout.
wait_value() {
    local file=$1 want=$2 limit_us=$(($3 * 1000000)) start=${EPOCHREALTIME/./} v
    while :; do
        v=
        read -r v <"$file" 2>/dev/null
        if [[ $v == "$want" ]]; then
            milli $(((${EPOCHREALTIME/./} - start) / 1000))
            return 0
        fi
        ((${EPOCHREALTIME/./} - start < limit_us)) || return 1
        fsleep 0.1
    done
}

# Kill every process of a cgroup and remove it.
cg_destroy() {
    local cg=$CG/$1 i _pid
    [[ -d $cg ]] || return 0
    echo 1 >"$cg/cgroup.kill"
    # Wait for it to empty; `read` fails on an empty file. Builtins only.
    for ((i = 0; i < 100; i++)); do
        read -r _pid <"$cg/cgroup.procs" || break
        fsleep 0.1
    done
    rmdir "$cg" || say "warning: could not remove $cg"
}

# Run a command in a cgroup, in the background; sets LAST_PID (for the caller).
# The shell moves itself into the cgroup before exec, so every child
# (stress-ng's workers) starts there too.
cg_spawn() {
    local cg=$1
    shift
    # shellcheck disable=SC2016 # $$ and $0 expand in the inner shell.
    sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CG/$cg" "$@" &
    # shellcheck disable=SC2034 # used by the scenarios.
    LAST_PID=$!
}

# cg_freeze CGROUP 1|0: freeze or thaw a cgroup, and wait until it is so.
cg_freeze() {
    local cg=$CG/$1 want=$2 k v i
    echo "$want" >"$cg/cgroup.freeze"
    for ((i = 0; i < 100; i++)); do
        while read -r k v; do
            [[ $k == frozen && $v == "$want" ]] && return 0
        done <"$cg/cgroup.events"
        fsleep 0.05
    done
    say "warning: $cg did not reach frozen=$want"
    return 1
}

# wait_busy CGROUP CORES SECONDS: wait until the cgroup uses at least CORES
# over ~0.5 s (its workload is up and spinning); non-zero on timeout.
wait_busy() {
    local g=$1 want_milli start u0 t0 u1 t1
    want_milli=$(awk -v c="$2" 'BEGIN { printf "%d", c * 1000 }')
    start=${EPOCHREALTIME/./}
    while ((${EPOCHREALTIME/./} - start < $3 * 1000000)); do
        cpu_usage_r "$g"; u0=$REPLY; t0=${EPOCHREALTIME/./}
        fsleep 0.5
        cpu_usage_r "$g"; u1=$REPLY; t1=${EPOCHREALTIME/./}
        (((u1 - u0) * 1000 / (t1 - t0) >= want_milli)) && return 0
    done
    return 1
}

# "cpu.weight=N cpu.max=Q P" of a cgroup, for the report.
cg_cpu_knobs() {
    echo "cpu.weight=$(cat "$CG/$1/cpu.weight") cpu.max=$(cat "$CG/$1/cpu.max")"
}

# --- background processes ----------------------------------------------------

BG_PIDS=()
track() { BG_PIDS+=("$1"); }
stop_background() {
    local p
    for p in "${BG_PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    BG_PIDS=()
}

# --- sampling ----------------------------------------------------------------

# Busy and idle time of the whole guest from /proc/stat, in microseconds,
# into GUEST_BUSY and GUEST_IDLE (idle includes iowait). Builtins only.
guest_cpu_r() {
    local _cpu user nice system idle iowait irq softirq steal _rest
    read -r _cpu user nice system idle iowait irq softirq steal _rest </proc/stat
    # /proc/stat counts in USER_HZ (100 per second): 10 ms = 10000 us.
    GUEST_BUSY=$(((user + nice + system + irq + softirq + steal) * 10000))
    GUEST_IDLE=$(((idle + iowait) * 10000))
}

# start_sampler CSV CGROUP...: every 250 ms append one line to CSV:
#   t_s, <cgroup>_usage_usec..., guest_busy_usec, guest_idle_usec,
#   <cgroup>_cores..., guest_idle_cores
# with t_s in seconds since $T0 and *_cores over the previous sample. The
# guest totals show CPU going to neither tenant (idle, or the root cgroup:
# this sampler, qosd, kernel threads). Sets SAMPLER_PID.
start_sampler() {
    local csv=$1
    shift
    local groups=("$@") g
    {
        local header=t_s
        for g in "${groups[@]}"; do header+=",${g}_usage_usec"; done
        header+=",guest_busy_usec,guest_idle_usec"
        for g in "${groups[@]}"; do header+=",${g}_cores"; done
        echo "$header,guest_idle_cores"
    } >"$csv"
    # The loop forks nothing (no $(...)): forks are slow under TCG and this
    # runs in the root cgroup, beside the tenants it measures.
    (
        local prev_t=0 t dt line cores i u prev_idle=0
        local -a prev_u=()
        while :; do
            t=${EPOCHREALTIME/./}
            dt=$((t - prev_t))
            milli_r $(((t - T0) / 1000))
            line=$REPLY
            cores=
            for i in "${!groups[@]}"; do
                cpu_usage_r "${groups[i]}"
                u=$REPLY
                line+=",$u"
                if ((prev_t > 0)); then
                    milli_r $(((u - prev_u[i]) * 1000 / dt))
                    cores+=",$REPLY"
                else
                    cores+=","
                fi
                prev_u[i]=$u
            done
            guest_cpu_r
            line+=",$GUEST_BUSY,$GUEST_IDLE"
            if ((prev_t > 0)); then
                milli_r $(((GUEST_IDLE - prev_idle) * 1000 / dt))
                cores+=",$REPLY"
            else
                cores+=","
            fi
            prev_idle=$GUEST_IDLE
            prev_t=$t
            echo "$line$cores" >>"$csv"
            fsleep 0.25
        done
    ) &
    SAMPLER_PID=$!
    track "$SAMPLER_PID"
}

stop_sampler() { kill "$SAMPLER_PID" 2>/dev/null || true; wait "$SAMPLER_PID" 2>/dev/null || true; }

# Seconds since T0, for phase marks: x.yyy
t_rel() { milli $(((${EPOCHREALTIME/./} - T0) / 1000)); }

# cores_between CSV GROUP FROM TO: mean cores of GROUP between two times
# (seconds since T0), from the first sample at or after FROM to the last one
# at or before TO. GROUP may also be guest_busy or guest_idle.
cores_between() {
    awk -F, -v g="$2" -v from="$3" -v to="$4" '
        NR == 1 { for (i = 1; i <= NF; i++) if ($i == g "_usage_usec" || $i == g "_usec") c = i; next }
        $1 >= from && $1 <= to { if (t0 == "") { t0 = $1; u0 = $c } t1 = $1; u1 = $c }
        END {
            if (c == "" || t0 == "" || t1 <= t0) { print "nan"; exit }
            printf "%.3f\n", (u1 - u0) / 1e6 / (t1 - t0)
        }' "$1"
}

# time_to_reach CSV GROUP START CORES: seconds from START until the group's
# usage over a trailing window of >= 500 ms first reaches CORES ("never").
time_to_reach() {
    awk -F, -v g="$2" -v start="$3" -v want="$4" '
        NR == 1 { for (i = 1; i <= NF; i++) if ($i == g "_usage_usec") c = i; next }
        {
            n++; t[n] = $1; u[n] = $c
            if ($1 <= start) next
            for (j = n - 1; j >= 1; j--) if (t[j] <= $1 - 0.5) break
            if (j < 1) next
            if ((u[n] - u[j]) / 1e6 / (t[n] - t[j]) >= want) { printf "%.2f\n", $1 - start; found = 1; exit }
        }
        END { if (!found) print "never" }' "$1"
}

# ge A B: true when the decimal A >= B (false for "nan"/"never").
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a ~ /^[0-9.]+$/ && a + 0 >= b + 0) }'; }

# --- qosd ----------------------------------------------------------------------

# start_qosd CONFIG LOG: start qosd in the background and wait for /metrics.
# Sets QOSD_PID. Returns non-zero (after a FAIL) if it does not come up.
# QOSD_PATH, when set, is qosd's PATH (e.g. one without `tc`); the helpers
# here keep the scenario's.
start_qosd() {
    local config=$1 log=$2 i
    if [[ ! -x $QOSD_BIN ]]; then
        fail "qosd binary not found at $QOSD_BIN (build with cargo build --release --bins)"
        return 1
    fi
    PATH=${QOSD_PATH:-$PATH} RUST_LOG=${QOSD_LOG:-info} "$QOSD_BIN" run --config "$config" >"$log" 2>&1 &
    QOSD_PID=$!
    track "$QOSD_PID"
    for ((i = 0; i < 100; i++)); do
        if ! kill -0 "$QOSD_PID" 2>/dev/null; then
            wait "$QOSD_PID"
            fail "qosd exited at start with status $?; log tail:"
            tail -n 20 "$log" | tee -a "$REPORT"
            return 1
        fi
        curl -sf -o /dev/null "http://${METRICS_ADDR:-127.0.0.1:9477}/metrics" && return 0
        fsleep 0.1
    done
    fail "qosd metrics endpoint did not come up within 10 s"
    return 1
}

# stop_qosd: SIGTERM the agent started by start_qosd and record how it
# exited (R[qosd.exit]) and its memory (R[qosd.VmRSS], R[qosd.VmHWM]); a
# qosd that died during the run fails the scenario.
stop_qosd() {
    local key value _unit rc=0
    if ! kill -0 "$QOSD_PID" 2>/dev/null; then
        wait "$QOSD_PID"
        rc=$?
        fail "qosd died during the run (exit status $rc); log tail:"
        tail -n 20 "$OUT/qosd.log" | tee -a "$REPORT"
        R[qosd.exit]="died ($rc)"
        return
    fi
    while read -r key value _unit; do
        case $key in
            VmRSS: | VmHWM:) R[qosd.${key%:}]=$value ;;
        esac
    done <"/proc/$QOSD_PID/status"
    kill -TERM "$QOSD_PID" 2>/dev/null
    wait "$QOSD_PID" || rc=$?
    R[qosd.exit]=$rc
}

# metric NAME_WITH_LABELS: the value of one sample line of /metrics ("" if absent).
metric() {
    curl -sf "http://${METRICS_ADDR:-127.0.0.1:9477}/metrics" |
        awk -v m="$1" 'index($0, m " ") == 1 { print $NF; exit }'
}

# check_metric NAME_WITH_LABELS WANT: reports the metric's value, and fails
# unless it is WANT.
check_metric() {
    local got
    got=$(metric "$1")
    report "  $1 = ${got:-<absent>}"
    awk -v g="$got" -v w="$2" 'BEGIN { exit !(g != "" && g + 0 == w + 0) }' ||
        fail "$1 is ${got:-absent}, want $2"
}

# --- disks -------------------------------------------------------------------

# dev_majmin DEVICE: "MAJ:MIN" of a whole block device (/dev/vda or vda), from
# sysfs. Forks; call it outside measurement windows.
dev_majmin() {
    local d
    read -r d <"/sys/block/${1##*/}/dev" || return 1
    echo "$d"
}

# io_stat_r CGROUP MAJ:MIN: the cgroup's io.stat counters for one device,
# summed over its lines, into IO_RBYTES IO_WBYTES IO_RIOS IO_WIOS (0 when the
# group or the line is missing, or before the group's first I/O). Builtins only.
io_stat_r() {
    local dev rest kv
    IO_RBYTES=0 IO_WBYTES=0 IO_RIOS=0 IO_WIOS=0
    [[ -r $CG/$1/io.stat ]] || return 0
    while read -r dev rest; do
        [[ $dev == "$2" ]] || continue
        for kv in $rest; do
            case $kv in
                rbytes=*) IO_RBYTES=$((IO_RBYTES + ${kv#*=})) ;;
                wbytes=*) IO_WBYTES=$((IO_WBYTES + ${kv#*=})) ;;
                rios=*) IO_RIOS=$((IO_RIOS + ${kv#*=})) ;;
                wios=*) IO_WIOS=$((IO_WIOS + ${kv#*=})) ;;
            esac
        done
    done <"$CG/$1/io.stat" 2>/dev/null
}

# diskstats_r NAME: a whole device's counters from /proc/diskstats (e.g. vda)
# into DISK_RBYTES DISK_WBYTES DISK_RIOS DISK_WIOS DISK_TICKS_MS (io_ticks:
# milliseconds the device had I/O in flight). Builtins only.
diskstats_r() {
    local _maj _min name rios _rm rsec _rt wios _wm wsec _wt _inflight ticks _rest
    DISK_RBYTES=0 DISK_WBYTES=0 DISK_RIOS=0 DISK_WIOS=0 DISK_TICKS_MS=0
    while read -r _maj _min name rios _rm rsec _rt wios _wm wsec _wt _inflight ticks _rest; do
        if [[ $name == "$1" ]]; then
            DISK_RIOS=$rios DISK_WIOS=$wios DISK_TICKS_MS=$ticks
            DISK_RBYTES=$((rsec * 512)) DISK_WBYTES=$((wsec * 512))
            return 0
        fi
    done </proc/diskstats
}

# io_max_r CGROUP: the cgroup's io.max, its lines joined by "; " ("(none)"
# when empty), into REPLY. Builtins only.
io_max_r() {
    local line
    REPLY=
    if [[ -r $CG/$1/io.max ]]; then
        while read -r line; do
            REPLY+=${REPLY:+; }$line
        done <"$CG/$1/io.max"
    fi
    REPLY=${REPLY:-(none)}
}

# wait_io CGROUP MAJ:MIN KEY SECONDS: wait until the cgroup's io.stat KEY
# (rbytes, wbytes, rios or wios) for the device is above zero (its workload
# is up and doing I/O); non-zero on timeout. Builtins only.
wait_io() {
    local g=$1 dev=$2 key=$3 start=${EPOCHREALTIME/./} v
    while ((${EPOCHREALTIME/./} - start < $4 * 1000000)); do
        io_stat_r "$g" "$dev"
        case $key in
            rbytes) v=$IO_RBYTES ;; wbytes) v=$IO_WBYTES ;;
            rios) v=$IO_RIOS ;; wios) v=$IO_WIOS ;;
        esac
        ((v > 0)) && return 0
        fsleep 0.05
    done
    return 1
}

# cg_kill CGROUP: kill every process of a cgroup and wait until it is empty,
# keeping the group (a tenant that goes idle, not one that goes away).
cg_kill() {
    local cg=$CG/$1 i _pid
    [[ -d $cg ]] || return 0
    echo 1 >"$cg/cgroup.kill"
    for ((i = 0; i < 100; i++)); do
        read -r _pid <"$cg/cgroup.procs" || return 0
        fsleep 0.05
    done
    say "warning: $cg did not empty after cgroup.kill"
    return 1
}

# start_io_sampler CSV MAJ:MIN DISK GROUP...: every 250 ms append one line to
# CSV with the io.stat counters of each group for device MAJ:MIN and the
# device's own counters from /proc/diskstats (DISK, e.g. vda):
#   t_s, <g>_rbytes, <g>_wbytes, <g>_rios, <g>_wios (per group),
#   dev_rbytes, dev_wbytes, dev_rios, dev_wios, dev_ticks_ms,
#   then rates over the previous sample: <g>_rMiBps, <g>_wMiBps, <g>_riops,
#   <g>_wiops (per group), dev_rMiBps, dev_wMiBps, dev_riops, dev_wiops,
#   dev_util_pct
# with t_s in seconds since $T0 (MiB = 1048576 bytes). Nothing in the loop
# forks. Sets SAMPLER_PID (stop it with stop_sampler).
start_io_sampler() {
    local csv=$1 dev=$2 disk=$3
    shift 3
    local groups=("$@") g k
    {
        local header=t_s rates=
        for g in "${groups[@]}" dev; do
            for k in rbytes wbytes rios wios; do header+=",${g}_$k"; done
            [[ $g == dev ]] && header+=",dev_ticks_ms"
            for k in rMiBps wMiBps riops wiops; do rates+=",${g}_$k"; done
        done
        echo "$header$rates,dev_util_pct"
    } >"$csv"
    (
        local prev_t=0 t dt line rates i j v
        local -a cur prev=()
        while :; do
            t=${EPOCHREALTIME/./}
            dt=$((t - prev_t))
            milli_r $(((t - T0) / 1000))
            line=$REPLY
            cur=()
            for g in "${groups[@]}"; do
                io_stat_r "$g" "$dev"
                cur+=("$IO_RBYTES" "$IO_WBYTES" "$IO_RIOS" "$IO_WIOS")
            done
            diskstats_r "$disk"
            cur+=("$DISK_RBYTES" "$DISK_WBYTES" "$DISK_RIOS" "$DISK_WIOS" "$DISK_TICKS_MS")
            rates=
            for ((i = 0; i < ${#cur[@]}; i++)); do
                line+=",${cur[i]}"
                ((i == ${#cur[@]} - 1)) && break # ticks: the utilisation below
                if ((prev_t == 0)); then
                    rates+=,
                    continue
                fi
                v=$((cur[i] - prev[i]))
                j=$((i % 4))
                if ((j < 2)); then
                    milli_r $((v * 1000000000 / 1048576 / dt)) # MiB/s
                else
                    milli_r $((v * 1000000000 / dt)) # IO/s
                fi
                rates+=",$REPLY"
            done
            if ((prev_t > 0)); then
                milli_r $(((cur[i] - prev[i]) * 100000000 / dt)) # % of wall time
                rates+=",$REPLY"
            else
                rates+=,
            fi
            prev=("${cur[@]}")
            prev_t=$t
            echo "$line$rates" >>"$csv"
            fsleep 0.25
        done
    ) &
    SAMPLER_PID=$!
    track "$SAMPLER_PID"
}

# rate_between CSV COLUMN FROM TO: mean rate per second of the counter COLUMN
# (e.g. db_rbytes, backup_wios) between two times (seconds since T0), from the
# first sample at or after FROM to the last one at or before TO; "nan" if the
# window holds fewer than two samples.
rate_between() {
    awk -F, -v col="$2" -v from="$3" -v to="$4" '
        NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
        $1 >= from && $1 <= to { if (t0 == "") { t0 = $1; u0 = $c } t1 = $1; u1 = $c }
        END {
            if (c == "" || t0 == "" || t1 <= t0) { print "nan"; exit }
            printf "%.0f\n", (u1 - u0) / (t1 - t0)
        }' "$1"
}

# median_rate_between CSV COLUMN FROM TO: the median of the per-sample rates
# (one per sampler interval) in the same window as rate_between. It is the rate
# held most of the time: a cap or a throttle moves it, while one or two slow
# samples, when the host starves the emulator for half a second, do not.
median_rate_between() {
    awk -F, -v col="$2" -v from="$3" -v to="$4" '
        NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
        $1 >= from && $1 <= to {
            if (t != "" && $1 > t) r[++n] = ($c - u) / ($1 - t)
            t = $1; u = $c
        }
        END {
            if (c == "" || n == 0) { print "nan"; exit }
            for (i = 2; i <= n; i++) for (j = i; j > 1 && r[j - 1] > r[j]; j--) { x = r[j]; r[j] = r[j - 1]; r[j - 1] = x }
            printf "%.0f\n", (n % 2 ? r[(n + 1) / 2] : (r[n / 2] + r[n / 2 + 1]) / 2)
        }' "$1"
}

# time_to_rate CSV COLUMN START RATE: seconds from START until the counter
# COLUMN's rate per second over the latest sample interval (>= RATE_WINDOW_S,
# in practice one 250 ms sample) first reaches RATE ("never"). A longer window
# would add its own length to every reaction: the throttled disk's rate is
# steady enough to be read over one sample. Windows may begin before START
# (then they understate).
RATE_WINDOW_S=${VM_RATE_WINDOW_S:-0.2}
time_to_rate() {
    awk -F, -v col="$2" -v start="$3" -v want="$4" -v window="$RATE_WINDOW_S" '
        NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
        {
            n++; t[n] = $1; u[n] = $c
            if ($1 <= start) next
            for (j = n - 1; j >= 1; j--) if (t[j] <= $1 - window) break
            if (j < 1) next
            if ((u[n] - u[j]) / (t[n] - t[j]) >= want) { printf "%.2f\n", $1 - start; found = 1; exit }
        }
        END { if (!found) print "never" }' "$1"
}

# le A B: true when the decimal A <= B (false for "nan"/"never").
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a ~ /^[0-9.]+$/ && a + 0 <= b + 0) }'; }

# tick_cost METRICS_FILE [EARLIER_FILE]: mean of the qosd_tick_duration_seconds
# histogram, over the agent's life or, given an earlier scrape, between the
# two; and how many ticks took more than 51.2 ms (those that started tc or
# nft, under TCG).
tick_cost() {
    awk '/^qosd_tick_duration_seconds_sum/ { sum[FILENAME] = $2 }
        /^qosd_tick_duration_seconds_count/ { n[FILENAME] = $2 }
        /^qosd_tick_duration_seconds_bucket\{le="0.0512"\}/ { fast[FILENAME] = $2 }
        END {
            later = ARGV[1]; earlier = (ARGC > 2) ? ARGV[2] : ""
            count = n[later] - n[earlier]; total = sum[later] - sum[earlier]
            slow = count - (fast[later] - fast[earlier])
            if (count > 0) printf "mean %.3f ms over %d ticks (%d above 51.2 ms)\n", 1000 * total / count, count, slow
            else print "?"
        }' "$@"
}

# --- timeline (for the charts) -------------------------------------------------
#
# A per-tick record of each tenant's usage beside its contract and its
# current limit, for examples/timeline_chart.rs (tests/vm/run.sh renders
# $OUT/timeline.png from $OUT/timeline.csv after the scenario):
#
#   timeline_phase PART PHASE        name what runs from now on: PART is the
#                                    way the run is made ("no qosd", "qosd",
#                                    ...), PHASE the step within it ("batch
#                                    alone", "both", ...); no commas;
#   timeline_start CSV RESOURCE SERIES... [RESOURCE SERIES...]...
#                                    start sampling in the background;
#   timeline_stop                    stop it (finish also does).
#
# A scenario runs one sampler per part (timeline_start ... timeline_stop);
# later starts on the same CSV append to it, on the same clock (t_s counts
# from the first start), so the parts follow each other on one time axis.
# Samples go to a tmpfs buffer, appended to CSV at timeline_stop, which also
# adds the sampler's own CPU time to $OUT/timeline-cost.txt.
#
# CSV: t_s,part,phase,resource,unit,tenant,usage,baseline,burst,limit
# one line per series per sample (every TL_INTERVAL s, VM_TIMELINE_S, 0.5 by
# default). usage is over the previous sample (empty on the first, or when a
# counter went back; 0 when the group or its process is gone); limit is
# "max" when unlimited, empty when unknown.
#
# SERIES is TENANT:BASELINE:BURST:SOURCE (BASELINE and BURST in the
# resource's unit, as the contract says; either may be empty). By RESOURCE:
#   cpu     SOURCE a cgroup; cores from cpu.stat usage_usec; limit cpu.max.
#   disk    SOURCE a cgroup; the io.stat counter TL_IO_KEY (rbytes, wbytes:
#           MiB/s; rios, wios: IOPS) of device TL_IO_DEV (MAJ:MIN); limit the
#           matching io.max key (rbps, wbps, riops, wiops).
#   memory  SOURCE a cgroup; MiB of memory.current; limit memory.high.
#   read    SOURCE a cgroup; MiB/s that the read() calls of the group's first
#           process returned (rchar of /proc/PID/io; page-cache hits count).
#   net     SOURCE a counter of netlib.sh's counter_r (rchar:PID,
#           netdev:PID:IF:rx, file:PATH); Mbit/s; no limit.
# Nothing in the loop forks: it runs in the root cgroup, beside the tenants.
# VM_TIMELINE=0 turns it off (to compare a scenario's numbers without it).
TL_ON=${VM_TIMELINE:-1}
TL_INTERVAL=${VM_TIMELINE_S:-0.5}
TL_PHASE_FILE=/tmp/qosd-timeline.phase
TL_BUF=/tmp/qosd-timeline.buf # tmpfs: no write to the 9p share per sample
TL_CSV=
TL_T0=
TL_PID=

timeline_phase() {
    printf '%s,%s\n' "${1//,/;}" "${2//,/;}" >"$TL_PHASE_FILE"
}

timeline_start() {
    [[ $TL_ON == 0 ]] && return 0
    local csv=$1 res= arg
    shift
    local -a kinds=() units=() names=() bases=() bursts=() srcs=()
    for arg in "$@"; do
        if [[ $arg != *:* ]]; then
            res=$arg
            continue
        fi
        kinds+=("$res")
        case $res in
            cpu) units+=(cores) ;;
            disk) case ${TL_IO_KEY:-rbytes} in rbytes | wbytes) units+=(MiB/s) ;; *) units+=(IOPS) ;; esac ;;
            memory) units+=(MiB) ;;
            read) units+=(MiB/s) ;;
            net) units+=(Mbit/s) ;;
            *) say "timeline: unknown resource '$res'"; return 1 ;;
        esac
        names+=("${arg%%:*}")
        arg=${arg#*:}
        bases+=("${arg%%:*}")
        arg=${arg#*:}
        bursts+=("${arg%%:*}")
        srcs+=("${arg#*:}")
    done
    if [[ $csv != "$TL_CSV" || ! -f $csv ]]; then
        echo "t_s,part,phase,resource,unit,tenant,usage,baseline,burst,limit" >"$csv"
        TL_CSV=$csv
        TL_T0=${EPOCHREALTIME/./}
    fi
    [[ -f $TL_PHASE_FILE ]] || timeline_phase - -
    : >"$TL_BUF"
    TL_START=${EPOCHREALTIME/./}
    (
        local t prev_t=0 dt ts pp=-,- i cur src usage limit buf q p k v x line
        local iokey=${TL_IO_KEY:-rbytes} iomax
        case $iokey in rbytes) iomax=rbps ;; wbytes) iomax=wbps ;; rios) iomax=riops ;; *) iomax=wiops ;; esac
        local -a prev=()
        while :; do
            t=${EPOCHREALTIME/./}
            dt=$((t - prev_t))
            read -r line <"$TL_PHASE_FILE" && [[ -n $line ]] && pp=$line
            x=$(((t - TL_T0) / 1000))
            printf -v ts '%d.%03d' $((x / 1000)) $((x % 1000))
            buf=
            for i in "${!kinds[@]}"; do
                src=${srcs[i]} cur= usage= limit=
                case ${kinds[i]} in
                    cpu)
                        # The cheapest kind, as the CPU scenario is the one
                        # that feels the sampler: usage_usec is cpu.stat's
                        # first line; no function calls, no regex.
                        if read -r k cur 2>/dev/null <"$CG/$src/cpu.stat"; then
                            [[ $k == usage_usec ]] || cur=
                            q= p=
                            read -r q p 2>/dev/null <"$CG/$src/cpu.max"
                            if [[ $q == max ]]; then
                                limit=max
                            elif [[ -n $q && $q != *[!0-9]* ]] && ((p > 0)); then
                                x=$((q * 1000 / p))
                                printf -v limit '%d.%03d' $((x / 1000)) $((x % 1000))
                            fi
                        elif ((prev_t > 0)); then
                            usage=0 # no group (yet, or any more): no use
                        fi
                        ;;
                    disk)
                        if [[ -r $CG/$src/io.stat ]]; then
                            io_stat_r "$src" "$TL_IO_DEV"
                            case $iokey in rbytes) cur=$IO_RBYTES ;; wbytes) cur=$IO_WBYTES ;; rios) cur=$IO_RIOS ;; *) cur=$IO_WIOS ;; esac
                            limit=max
                            while read -r k line; do
                                [[ $k == "$TL_IO_DEV" ]] || continue
                                for v in $line; do
                                    [[ $v == "$iomax="* ]] || continue
                                    v=${v#*=}
                                    if [[ $v == max ]]; then limit=max
                                    elif [[ $iomax == *bps ]]; then milli_r $((v * 1000 / 1048576)); limit=$REPLY
                                    else limit=$v; fi
                                done
                            done <"$CG/$src/io.max" 2>/dev/null
                        elif ((prev_t > 0)); then
                            usage=0
                        fi
                        ;;
                    memory)
                        if read -r v <"$CG/$src/memory.current" 2>/dev/null; then
                            milli_r $((v * 1000 / 1048576))
                            usage=$REPLY
                            read -r v <"$CG/$src/memory.high" 2>/dev/null
                            if [[ $v =~ ^[0-9]+$ ]]; then milli_r $((v * 1000 / 1048576)); limit=$REPLY; else limit=$v; fi
                        fi
                        ;;
                    read)
                        if read -r v <"$CG/$src/cgroup.procs" 2>/dev/null; then
                            while read -r k line; do
                                if [[ $k == rchar: ]]; then cur=$line; break; fi
                            done <"/proc/$v/io" 2>/dev/null
                        elif ((prev_t > 0)); then
                            usage=0 # no process in the group
                        fi
                        ;;
                    net)
                        counter_r "$src"
                        cur=$REPLY
                        ;;
                esac
                if [[ -n $cur ]]; then
                    if ((prev_t > 0)) && [[ -n ${prev[i]} ]] && ((cur >= prev[i])); then
                        # x: the rate in thousandths of the unit.
                        case ${kinds[i]} in
                            cpu) x=$(((cur - prev[i]) * 1000 / dt)) ;;
                            disk)
                                if [[ ${units[i]} == MiB/s ]]; then x=$(((cur - prev[i]) * 1000000000 / 1048576 / dt))
                                else x=$(((cur - prev[i]) * 1000000000 / dt)); fi
                                ;;
                            read) x=$(((cur - prev[i]) * 1000000000 / 1048576 / dt)) ;;
                            net) x=$(((cur - prev[i]) * 8000 / dt)) ;;
                        esac
                        printf -v usage '%d.%03d' $((x / 1000)) $((x % 1000))
                    fi
                fi
                prev[i]=$cur
                buf+="$ts,$pp,${kinds[i]},${units[i]},${names[i]},$usage,${bases[i]},${bursts[i]},$limit"$'\n'
            done
            printf '%s' "$buf" >>"$TL_BUF"
            prev_t=$t
            fsleep "$TL_INTERVAL"
        done
    ) &
    TL_PID=$!
    track "$TL_PID"
}

timeline_stop() {
    [[ -n $TL_PID ]] || return 0
    local -a st=()
    read -r -a st <"/proc/$TL_PID/stat" 2>/dev/null
    kill "$TL_PID" 2>/dev/null || true
    wait "$TL_PID" 2>/dev/null || true
    TL_PID=
    cat "$TL_BUF" >>"$TL_CSV"
    # What the sampler itself cost (utime + stime, in USER_HZ = 100 ticks/s).
    if ((${#st[@]} > 15)); then
        local cpu_ms=$(((st[13] + st[14]) * 10)) wall_ms=$(((${EPOCHREALTIME/./} - TL_START) / 1000))
        echo "timeline sampler: ${cpu_ms} ms of CPU over ${wall_ms} ms (every ${TL_INTERVAL} s)" >>"$OUT/timeline-cost.txt"
    fi
}
