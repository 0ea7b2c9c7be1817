#!/usr/bin/env bash
# timeout: 300
# Disk noisy neighbour on the QEMU-throttled virtio disk /dev/vda (52428800
# B/s in all = 50 MiB/s), three ways in the same VM run (the emulated machine
# is noisy: compare within one run):
#   none    no limits;
#   static  io.max written once at the baselines (what a systemd user would
#           do with IOReadBandwidthMax=);
#   qosd    the agent holds the contracts (it writes io.max itself).
#
# Two modes (tests/vm/scenarios/disk-iops-noisy-neighbour.sh sets the second):
#   bps   sequential 64k direct reads (fio psync), contracts on read_bps:
#         db     baseline 20 MiB/s, burst 50 MiB/s, one reader (offset 0);
#         backup baseline 10 MiB/s, burst 50 MiB/s, four readers (offset 512M,
#                100M apart); capacity 50 MiB/s (the QEMU throttle);
#   iops  random 4k direct writes, contracts on write_iops, same jobs and
#         regions. Under TCG the disk does far fewer IOPS than the byte
#         throttle allows (the emulation, not the throttle, is the limit), so
#         the capacity is measured first in the same run (all five jobs
#         together; VM_IOPS_CAPACITY=N skips that) and the contracts derive
#         from it: db baseline 40% (at most 75% of what its single job does
#         alone), backup 20%, bursts = capacity (see calibrate_iops);
#   qd    the disk cells of the matrix "the guarantee for every workload
#         shape" (disk-qd-noisy-neighbour.sh sets it), with cpu-shapes.sh's
#         measures: bps mode's reads and contracts, but db (the victim) reads
#         at queue depth 1 and backup (the neighbour) with 2 jobs at queue
#         depth 32, both libaio. Its ways, phases and checks are its own
#         (below, "qd mode").
#
# Each way has the same phases (seconds from the way's start):
#   1 backup alone   backup's jobs run alone (measured after a 2 s settle);
#     db starts      db's job starts beside the bursting backup; we time how
#                    long until db's rate over the latest 250 ms sample
#                    reaches 90% of its baseline. (db's fio is started first,
#                    before qosd and backup, and frozen with cgroup.freeze once
#                    it does I/O, then thawed here, so fio's start-up is not
#                    counted as qosd's reaction time);
#   2 both           steady state after a 2 s reaction window;
#   3 db stopped     db's processes are killed (its group stays, idle); we
#                    time how long until backup is back above 80% of capacity
#                    and measure it after a 2 s settle.
# Rates come from each group's io.stat (rbytes or wios of the device's
# MAJ:MIN line) over wall time, sampled every 250 ms without forking into
# timeline-<way>.csv (with /proc/diskstats for the device as a whole).
#
# Checks (with qosd): db >= 90% of its baseline in phase 2; backup >= 90% of
# capacity in phase 1; backup back above 80% of capacity within 2 ticks of db
# stopping; db at 90% of its baseline within 2 ticks of starting; promtool
# accepts /metrics. The no-limits and static numbers are reported, not
# asserted (WARN when db is not visibly hurt without limits).
#
# Output (target/vm/out/<scenario>/): report.txt; timeline-<way>.csv;
# timeline.csv (lib.sh's timeline_*: every way from phase 1 on, with io.max
# and the contracts, every 0.5 s; tests/vm/run.sh charts it as timeline.png);
# knobs-<way>.txt (io.max of both groups in each phase, phase marks);
# qosd.toml, qosd-check.txt, qosd.log, metrics-both.txt, metrics-end.txt,
# promtool.txt; calibration.csv (iops mode).
#
# Knobs: VM_WAYS="none static qosd" (which ways to run), VM_ALONE_S=8,
# VM_BOTH_S=7, VM_AFTER_S=7 (phase lengths), VM_IOPS_CAPACITY (iops mode).
#
# qd mode. Ways: none (no qosd), qosd-1s and qosd-250ms (qosd at that tick,
# in a cgroup of its own, "agent", at the default weights). Without
# VM_SHAPES=1 only qosd-1s runs, with check_qd's checks (the suite's cell);
# VM_SHAPES=1 runs VM_QD_WAYS (all three) and asserts nothing about shares.
# Both fio's are started first, up and reading, and frozen; then, per way:
#   alone      db reads, backup frozen (VM_ALONE_S=3): db's "alone" rate;
#   neighbour  db frozen, backup reads (VM_NEIGHBOUR_S=3): qosd lifts it;
#   join       db thawed beside backup; VM_REACT_S=3, not in the shares;
#   both       VM_BOTH_S=12 per-second samples of db;
#   after      db frozen (it "stops"), VM_AFTER_S=3 of backup.
# io.stat is read every 50 ms in the foreground, with builtins (nothing
# forks while measuring: a process start costs ~45 ms of CPU in the guest).
# share = db's rate / min(baseline, alone): mean and p01 (the minimum below
# 100 samples) over the per-second samples of "both". reach = seconds from
# the thaw to the end of the first window of >= 100 ms (between two rows)
# in which db gets 90% of min(baseline, alone), over join and both. after =
# backup's rate in the first second after db stops / 50 MiB/s (all of it
# is free then); free95 = seconds from db stopping to the end of the first
# >= 100 ms window that gives backup 95% of 50 MiB/s. Output: report.txt,
# shapes.csv (a line per way), rows-WAY.csv (every row), knobs.txt (io.max
# at the end of "both"), qosd-WAY.log, metrics-WAY.txt, timeline.csv.
set -uo pipefail
# shellcheck source=tests/vm/lib.sh
. "$VM_REPO/tests/vm/lib.sh"
require_guest
cd /tmp || exit 1

MODE=${DISK_MODE:-bps}
WAYS=${VM_WAYS:-none static qosd}
ALONE_S=${VM_ALONE_S:-8}
BOTH_S=${VM_BOTH_S:-7}
AFTER_S=${VM_AFTER_S:-7}
SETTLE_S=2   # after backup starts, and after db stops, before measuring
REACT_S=2    # db's reaction window before the steady "both" window
TICK_MS=1000 # qosd's interval
DEVICE=/dev/vda
DISK=vda
DEV=$(dev_majmin "$DISK") || { echo "no $DEVICE in the guest" >&2; exit 1; }
CONFIG=/tmp/qosd.toml
INTERVAL=1s  # qosd's tick (qd mode sets it per way)
FIO_DB_QD=() # fio's queue depth options (qd mode)
FIO_BK_QD=()

case $MODE in
    bps | qd)
        KEY=rbytes          # io.stat counter measured
        IOMAX_KEY=rbps      # io.max key of the static caps
        DIM=read_bps        # qosd dimension
        UNIT=MiB/s
        CAP=52428800        # the QEMU throttle (50 MiB/s)
        DB_BASE=20971520    # 20 MiB/s
        BK_BASE=10485760    # 10 MiB/s
        FIO_IO=(--rw=read --bs=64k)
        WHAT="sequential 64k direct reads"
        if [[ $MODE == qd ]]; then
            ENGINE=libaio
            FIO_DB_QD=(--iodepth=1)
            FIO_BK_QD=(--iodepth=32)
            BK_JOBS=2
            WHAT+=" (libaio), db at queue depth 1, backup 2 jobs at 32"
            QD_WAYS=${VM_QD_WAYS:-none qosd-1s qosd-250ms}
            SUMMARY=$OUT/shapes.csv
            SAMPLE_S=0.05
            ALONE_S=${VM_ALONE_S:-3} NEIGHBOUR_S=${VM_NEIGHBOUR_S:-3} REACT_S=${VM_REACT_S:-3}
            BOTH_S=${VM_BOTH_S:-12} AFTER_S=${VM_AFTER_S:-3}
        fi
        ;;
    iops)
        KEY=wios
        IOMAX_KEY=wiops
        DIM=write_iops
        UNIT=IOPS
        FIO_IO=(--rw=randwrite --bs=4k --norandommap --randrepeat=0)
        WHAT="random 4k direct writes"
        ;;
    *) echo "unknown DISK_MODE $MODE" >&2; exit 1 ;;
esac
FIO_COMMON=(--filename="$DEVICE" --direct=1 --ioengine="${ENGINE:-psync}" --time_based --runtime=600 --eta=never
    "${FIO_IO[@]}")
FIO_DB=(fio --name=db --offset=0 --size=400M --output=/tmp/fio-db.txt "${FIO_COMMON[@]}" "${FIO_DB_QD[@]}")
FIO_BACKUP=(fio --name=backup --offset=512M --size=100M --offset_increment=100M --numjobs="${BK_JOBS:-4}"
    --output=/tmp/fio-backup.txt "${FIO_COMMON[@]}" "${FIO_BK_QD[@]}")

# Results, keyed "<way>.<name>" (e.g. qosd.both_db: a rate per second).
declare -A R

# The ways as timeline.csv names them (tests/vm/run.sh charts it).
declare -A WAY_LABEL=([none]="no limits" [static]="static io.max" [qosd]=qosd)
TL_IO_DEV=$DEV
TL_IO_KEY=$KEY
# tl_unit RATE: a contract rate in the timeline's unit (MiB/s or IOPS).
tl_unit() { if [[ $MODE != iops ]]; then milli $(($1 * 1000 / 1048576)); else echo "$1"; fi; }

# mark VAR: seconds since T0 (x.yyy) into VAR, without forking.
mark() {
    milli_r $(((${EPOCHREALTIME/./} - T0) / 1000))
    printf -v "$1" %s "$REPLY"
}

add_time() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a + b }'; }

# pct N PERCENT: PERCENT% of N (integer).
pct() { echo $(($1 * $2 / 100)); }

# show RATE: a rate per second in the mode's unit (bytes as MiB/s).
show() {
    case $1 in
        '' | nan | -) echo "${1:--}" ;;
        *) if [[ $MODE != iops ]]; then awk -v v="$1" 'BEGIN { printf "%.2f", v / 1048576 }'; else echo "$1"; fi ;;
    esac
}

# ticks SECONDS: "N.NN ticks (M ms)", or as given ("never", "-").
ticks() {
    case $1 in
        never) echo "never" ;;
        '' | -) echo "-" ;;
        *) awk -v s="$1" -v t=$TICK_MS 'BEGIN { printf "%.2f ticks (%d ms)", s * 1000 / t, s * 1000 }' ;;
    esac
}

write_config() {
    local db_burst=$CAP bk_burst=$CAP cap=$CAP db=$DB_BASE bk=$BK_BASE
    if [[ $MODE != iops ]]; then
        cat >"$CONFIG" <<EOF
[agent]
interval = "$INTERVAL"
metrics_listen = "127.0.0.1:9477"
[host]
reserved_cpu = 0
[[host.disks]]
device = "$DEVICE"
read_bps = "50MiB/s"
write_bps = "50MiB/s"
[tenants.db]
cgroup = "db"
disk = [{ device = "$DEVICE", read_bps = { baseline = "20MiB/s", burst = "50MiB/s" } }]
[tenants.backup]
cgroup = "backup"
disk = [{ device = "$DEVICE", read_bps = { baseline = "10MiB/s", burst = "50MiB/s" } }]
EOF
    else
        cat >"$CONFIG" <<EOF
[agent]
interval = "$INTERVAL"
metrics_listen = "127.0.0.1:9477"
[host]
reserved_cpu = 0
[[host.disks]]
device = "$DEVICE"
write_iops = $cap
[tenants.db]
cgroup = "db"
disk = [{ device = "$DEVICE", write_iops = { baseline = $db, burst = $db_burst } }]
[tenants.backup]
cgroup = "backup"
disk = [{ device = "$DEVICE", write_iops = { baseline = $bk, burst = $bk_burst } }]
EOF
    fi
    cp "$CONFIG" "$OUT/qosd.toml"
}

# IOPS capacity of the emulated disk, measured in this run (3 s each, after
# a 1 s warm-up): db's single job alone, then all five jobs together (db's
# and backup's, no limits); the capacity is that total, rounded down to 50.
# db's baseline is 40% of it, but at most 75% of what its single job does
# alone: under TCG one psync job is latency-bound (the emulation, not the
# byte throttle, limits IOPS), and a baseline the workload cannot draw even
# with the disk to itself would test fio, not qosd. backup's is 20%.
# VM_IOPS_CAPACITY=N pins the capacity (and skips the db-alone cap).
# Sets CAP, DB_BASE, BK_BASE.
calibrate_iops() {
    local csv=$OUT/calibration.csv a b c d single=0 total
    if [[ -n ${VM_IOPS_CAPACITY:-} ]]; then
        CAP=$VM_IOPS_CAPACITY
        DB_BASE=$(pct "$CAP" 40)
        R[cal.note]="capacity given: VM_IOPS_CAPACITY=$CAP"
    else
        say "=== calibration: random 4k write IOPS"
        cg_fresh db
        cg_fresh backup
        T0=$(now_us)
        start_io_sampler "$csv" "$DEV" "$DISK" db backup
        cg_spawn db "${FIO_DB[@]}"
        track "$LAST_PID"
        wait_io db "$DEV" wios 20 || fail "calibration: db's fio did no I/O within 20 s"
        fsleep 1
        mark a
        fsleep 3
        mark b
        cg_spawn backup "${FIO_BACKUP[@]}"
        track "$LAST_PID"
        wait_io backup "$DEV" wios 20 || fail "calibration: backup's fio did no I/O within 20 s"
        fsleep 1
        mark c
        fsleep 3
        mark d
        cg_kill db
        cg_kill backup
        stop_sampler
        cg_destroy db
        cg_destroy backup
        single=$(rate_between "$csv" db_wios "$a" "$b")
        total=$(rate_between "$csv" dev_wios "$c" "$d")
        if [[ ! $total =~ ^[0-9]+$ || ! $single =~ ^[0-9]+$ ]] || ((total < 100)); then
            fail "calibration: could not measure the disk's write IOPS (db alone '$single', all '$total'; see $csv)"
            total=100 single=100
        fi
        CAP=$((total / 50 * 50))
        DB_BASE=$(pct "$CAP" 40)
        (($(pct "$single" 75) < DB_BASE)) && DB_BASE=$(pct "$single" 75)
        DB_BASE=$((DB_BASE / 50 * 50))
        R[cal.note]="measured: db's 1 job alone $single IOPS; all 5 jobs $total IOPS -> capacity $CAP; db baseline min(40% capacity, 75% db alone)"
    fi
    BK_BASE=$(pct "$CAP" 20)
    say "iops capacity $CAP, db baseline $DB_BASE, backup baseline $BK_BASE"
}

# iomax_snapshot LABEL: append io.max of both groups to IOMAX (builtins
# only), for the report.
iomax_snapshot() {
    local g at
    mark at
    printf -v IOMAX '%s\n  %-32s' "$IOMAX" "$1 (t=${at}s):"
    for g in db backup; do
        io_max_r "$g"
        printf -v IOMAX '%s %s [%s]' "$IOMAX" "$g" "$REPLY"
    done
}

# run_way none|static|qosd: one pass over all phases; fills R[way.*].
# Nothing forks inside a measurement window but the fio start of backup (the
# analysis runs at the end).
run_way() {
    local way=$1 csv=$OUT/timeline-$1.csv
    local t_alone t_db t_both t_both_end t_stop t_end half
    say "=== way: $way"
    cg_fresh db
    cg_fresh backup
    if [[ $way == static ]]; then
        echo "$DEV $IOMAX_KEY=$DB_BASE" >"$CG/db/io.max" || fail "static: cannot write db's io.max"
        echo "$DEV $IOMAX_KEY=$BK_BASE" >"$CG/backup/io.max" || fail "static: cannot write backup's io.max"
    fi
    T0=$(now_us)
    start_io_sampler "$csv" "$DEV" "$DISK" db backup

    # db's job, up and doing I/O, then frozen until "db starts".
    cg_spawn db "${FIO_DB[@]}"
    track "$LAST_PID"
    wait_io db "$DEV" "$KEY" 20 || fail "$way: db's fio did no I/O within 20 s"
    cg_freeze db 1
    fsleep 1

    if [[ $way == qosd ]]; then
        write_config
        if ! "$QOSD_BIN" check --config "$CONFIG" >"$OUT/qosd-check.txt" 2>&1; then
            fail "qosd check rejected the config ($OUT/qosd.toml):"
            tee -a "$REPORT" <"$OUT/qosd-check.txt"
            stop_sampler
            cg_destroy db
            return 1
        fi
        start_qosd "$CONFIG" "$OUT/qosd.log" || { stop_sampler; cg_destroy db; return 1; }
    fi

    # Phase 1: backup alone.
    IOMAX="$way: io.max of db and backup"
    timeline_phase "${WAY_LABEL[$way]}" "backup alone"
    timeline_start "$OUT/timeline.csv" disk "db:$(tl_unit "$DB_BASE"):$(tl_unit "$CAP"):db" \
        "backup:$(tl_unit "$BK_BASE"):$(tl_unit "$CAP"):backup"
    mark t_alone
    cg_spawn backup "${FIO_BACKUP[@]}"
    track "$LAST_PID"
    half=$((ALONE_S / 2))
    fsleep "$half"
    iomax_snapshot "1 backup alone"
    io_max_r backup
    R[$way.alone_backup_iomax]=$REPLY
    fsleep $((ALONE_S - half))

    # db starts beside the bursting backup.
    mark t_db
    timeline_phase "${WAY_LABEL[$way]}" "db joins"
    cg_freeze db 0
    fsleep "$REACT_S"

    # Phase 2: both, steady.
    mark t_both
    timeline_phase "${WAY_LABEL[$way]}" "both"
    half=$((BOTH_S / 2))
    fsleep "$half"
    iomax_snapshot "2 both"
    fsleep $((BOTH_S - half))
    mark t_both_end
    if [[ $way == qosd ]]; then
        curl -s "http://127.0.0.1:9477/metrics" >"$OUT/metrics-both.txt"
    fi

    # Phase 3: db stops (its group stays, idle).
    cg_kill db
    mark t_stop
    timeline_phase "${WAY_LABEL[$way]}" "db stopped"
    fsleep "$AFTER_S"
    mark t_end
    timeline_stop
    iomax_snapshot "3 db stopped (end)"

    if [[ $way == qosd ]]; then
        curl -s "http://127.0.0.1:9477/metrics" >"$OUT/metrics-end.txt"
        stop_qosd
    fi
    stop_sampler
    cg_destroy db
    cg_destroy backup

    # Analysis, from the timeline.
    R[$way.alone_backup]=$(rate_between "$csv" "backup_$KEY" "$(add_time "$t_alone" $SETTLE_S)" "$t_db")
    R[$way.react]=$(time_to_rate "$csv" "db_$KEY" "$t_db" "$(pct "$DB_BASE" 90)")
    R[$way.both_db]=$(rate_between "$csv" "db_$KEY" "$t_both" "$t_both_end")
    R[$way.both_backup]=$(rate_between "$csv" "backup_$KEY" "$t_both" "$t_both_end")
    R[$way.both_dev]=$(rate_between "$csv" "dev_$KEY" "$t_both" "$t_both_end")
    R[$way.after_backup]=$(rate_between "$csv" "backup_$KEY" "$(add_time "$t_stop" $SETTLE_S)" "$t_end")
    R[$way.recover]=$(time_to_rate "$csv" "backup_$KEY" "$t_stop" "$(pct "$CAP" 80)")
    {
        echo "$IOMAX"
        echo "  marks (s since way start): backup_start=$t_alone db_start=$t_db both=$t_both..$t_both_end db_stop=$t_stop end=$t_end"
    } >"$OUT/knobs-$way.txt"
    say "$way: backup alone $(show "${R[$way.alone_backup]}"); both: db $(show "${R[$way.both_db]}") backup $(show "${R[$way.both_backup]}"); db reached 90% after ${R[$way.react]} s; after: backup $(show "${R[$way.after_backup]}") (back after ${R[$way.recover]} s) $UNIT"
}

# v WAY KEY: a result, or "-" when that way did not run.
v() { echo "${R[$1.$2]:--}"; }
# vs WAY KEY: a rate in the mode's unit.
vs() { show "$(v "$1" "$2")"; }

has_way() { [[ " $WAYS " == *" $1 "* ]]; }

# row7 LABEL A B C D E F: one line of the side-by-side table.
row7() { printf '%-28s | %-8s %-8s | %-8s %-8s | %-8s %-8s' "$@"; }

print_report() {
    local row
    report "Disk noisy neighbour: $WHAT on $DEVICE ($DEV), contracts on $DIM; $UNIT from each group's io.stat $KEY"
    if [[ $MODE == bps ]]; then
        report "capacity 50 MiB/s (QEMU throttle 52428800 B/s); db: baseline 20, burst 50 (1 job); backup: baseline 10, burst 50 (4 jobs)"
    else
        report "capacity $CAP IOPS (${R[cal.note]:-}); db: baseline $DB_BASE, burst $CAP (1 job); backup: baseline $BK_BASE, burst $CAP (4 jobs)"
    fi
    report ""
    report "$(printf '%-28s | %-17s | %-17s | %-17s' "phase ($UNIT)" 'no limits' 'static caps' 'qosd')"
    report "$(row7 '' db backup db backup db backup)"
    report "$(printf -- '-%.0s' {1..88})"
    report "$(row7 '1 backup alone' - "$(vs none alone_backup)" - "$(vs static alone_backup)" - "$(vs qosd alone_backup)")"
    report "$(row7 '2 both (steady)' "$(vs none both_db)" "$(vs none both_backup)" \
        "$(vs static both_db)" "$(vs static both_backup)" "$(vs qosd both_db)" "$(vs qosd both_backup)")"
    report "$(row7 '3 db stopped' - "$(vs none after_backup)" - "$(vs static after_backup)" - "$(vs qosd after_backup)")"
    report "$(printf '%-28s | %-17s | %-17s | %-17s' '  device total in 2' "$(vs none both_dev)" "$(vs static both_dev)" "$(vs qosd both_dev)")"
    report ""
    report "Reaction times (interval 1 s; rates over the latest 250 ms sample interval):"
    for row in none static qosd; do
        has_way "$row" || continue
        report "$(printf '  %-7s db starts -> db >= 90%% of baseline: %-26s db stops -> backup > 80%% of capacity: %s' \
            "$row:" "$(ticks "$(v "$row" react)")" "$(ticks "$(v "$row" recover)")")"
    done
    report ""
    for row in none static qosd; do
        if [[ -f $OUT/knobs-$row.txt ]]; then report "$(cat "$OUT/knobs-$row.txt")"; fi
    done
    if [[ -n ${R[qosd.exit]:-} ]]; then
        report "qosd exit status after SIGTERM: ${R[qosd.exit]}"
        report "qosd memory before SIGTERM: VmRSS ${R[qosd.VmRSS]:-?} kB, peak VmHWM ${R[qosd.VmHWM]:-?} kB"
        [[ -f $OUT/metrics-end.txt ]] && report "qosd tick cost in the VM: $(tick_cost "$OUT/metrics-end.txt")"
    fi
    report ""
}

check_results() {
    local db90 cap90 cap80
    db90=$(pct "$DB_BASE" 90)
    cap90=$(pct "$CAP" 90)
    cap80=$(pct "$CAP" 80)
    if has_way none && ge "$(v none both_db)" "$(pct "$DB_BASE" 80)"; then
        report "WARN: without limits db got $(vs none both_db) $UNIT beside backup (>= 80% of its baseline): the neighbour was not noisy enough to show the effect"
    fi
    has_way qosd || return 0
    [[ -n ${R[qosd.both_db]:-} ]] || { fail "the qosd way did not complete"; return; }
    if [[ -s $OUT/metrics-end.txt ]]; then
        promtool check metrics <"$OUT/metrics-end.txt" >"$OUT/promtool.txt" 2>&1 ||
            fail "promtool check metrics rejected the agent's /metrics (see $OUT/promtool.txt): $(head -n 3 "$OUT/promtool.txt")"
    else
        fail "no /metrics saved from qosd"
    fi
    ge "$(v qosd both_db)" "$db90" ||
        fail "phase 2 with qosd: db got $(vs qosd both_db) $UNIT beside backup (want >= 90% of its baseline: $(show "$db90"))"
    ge "$(v qosd alone_backup)" "$cap90" ||
        fail "phase 1 with qosd: backup alone got $(vs qosd alone_backup) $UNIT (want >= 90% of capacity: $(show "$cap90"); backup's io.max mid-phase: $(v qosd alone_backup_iomax))"
    le "$(v qosd recover)" 2.0 ||
        fail "phase 3 with qosd: backup back above 80% of capacity ($(show "$cap80") $UNIT) after $(ticks "$(v qosd recover)") (want <= 2 ticks)"
    le "$(v qosd react)" 2.0 ||
        fail "db starting with qosd: db at 90% of its baseline ($(show "$db90") $UNIT) after $(ticks "$(v qosd react)") (want <= 2 ticks)"
}

# --- qd mode: queue depth 1 beside queue depth 32 ------------------------------
#
# The disk cells of the matrix "the guarantee for every workload shape", with
# cpu-shapes.sh's measures (see this file's header). Rows of
# "phase,t_us,db_rbytes,backup_rbytes" every SAMPLE_S, taken in the foreground
# with builtins and kept in a bash array until the way ends.

# sample_io PHASE SECONDS: rows into ROWS for SECONDS (the first at once).
sample_io() {
    local phase=$1 end=$((${EPOCHREALTIME/./} + $2 * 1000000)) t db
    while :; do
        t=${EPOCHREALTIME/./}
        io_stat_r db "$DEV"
        db=$IO_RBYTES
        io_stat_r backup "$DEV"
        ROWS+=("$phase,$t,$db,$IO_RBYTES")
        ((t < end)) || return 0
        fsleep "$SAMPLE_S"
    done
}

# psi_some_r GROUP: the group's io.pressure "some" total (us) into REPLY.
psi_some_r() {
    local _kind _a10 _a60 _a300 total
    REPLY=0
    read -r _kind _a10 _a60 _a300 total <"$CG/$1/io.pressure" && REPLY=${total#total=}
}

# spawn_reading GROUP FIO...: fio in GROUP, up and reading.
spawn_reading() {
    cg_spawn "$@"
    track "$LAST_PID"
    wait_io "$1" "$DEV" rbytes 20 && return 0
    fail "$1: fio did no I/O within 20 s"
    return 1
}

# measure_shape WAY: the phases, into ROWS (both fio's are started first,
# up and reading, so their start-up is not measured).
measure_shape() {
    spawn_reading backup "${FIO_BACKUP[@]}" || return 1
    cg_freeze backup 1
    spawn_reading db "${FIO_DB[@]}" || return 1
    fsleep 1
    ROWS=()
    timeline_phase "$1" "db alone"
    sample_io alone "$ALONE_S"
    cg_freeze db 1
    cg_freeze backup 0
    timeline_phase "$1" "backup alone"
    sample_io neighbour "$NEIGHBOUR_S"
    # The thaw is written, not waited for: the join's first row is its time.
    echo 0 >"$CG/db/cgroup.freeze"
    timeline_phase "$1" "both"
    sample_io join "$REACT_S"
    psi_some_r db
    local stall=$REPLY
    sample_io both "$BOTH_S"
    psi_some_r db
    # Whether db's waits show as I/O pressure: qosd reads it as wanting more.
    IOMAX+=$'\n'"  db's io.pressure \"some\" in both: $(((REPLY - stall) / 1000)) ms of ${BOTH_S} s"
    iomax_snapshot "end of both"
    echo 1 >"$CG/db/cgroup.freeze"
    timeline_phase "$1" "db stopped"
    sample_io after "$AFTER_S"
}

# start_agent INTERVAL: qosd at that tick, in a cgroup of its own ("agent",
# default weights), as in cpu-shapes.sh.
start_agent() {
    INTERVAL=$1
    write_config
    cg_fresh agent
    start_qosd "$CONFIG" "$OUT/qosd.log" || return 1
    echo "$QOSD_PID" >"$CG/agent/cgroup.procs"
}

stop_agent() {
    [[ -n ${QOSD_PID:-} ]] || return 0
    curl -s "http://127.0.0.1:9477/metrics" >"$OUT/metrics-$1.txt"
    stop_qosd
    IOMAX+=$'\n'"  qosd: exit status ${R[qosd.exit]} after SIGTERM, VmHWM ${R[qosd.VmHWM]:-?} kB"
    IOMAX+=$'\n'"  qosd tick cost: $(tick_cost "$OUT/metrics-$1.txt")"
    mv "$OUT/qosd.log" "$OUT/qosd-$1.log"
    QOSD_PID=
    cg_destroy agent
}

# run_shape WAY: one way (none, qosd-1s, qosd-250ms), from fresh cgroups to
# its line in SUMMARY.
run_shape() {
    local way=$1 ok=1 rows=$OUT/rows-$1.csv
    say "=== way: $way"
    cg_fresh db
    cg_fresh backup
    IOMAX="$way: io.max of db and backup"
    T0=$(now_us)
    if [[ $way == qosd-* ]]; then start_agent "${way#qosd-}" || ok=0; fi
    timeline_start "$OUT/timeline.csv" disk "db:$(tl_unit "$DB_BASE"):$(tl_unit "$CAP"):db" \
        "backup:$(tl_unit "$BK_BASE"):$(tl_unit "$CAP"):backup"
    ((ok)) && { measure_shape "$way" || ok=0; }
    timeline_stop
    stop_agent "$way"
    cg_destroy db
    cg_destroy backup
    ((ok)) || { fail "$way: the workload did not run"; return 1; }
    { echo "phase,t_us,db_rbytes,backup_rbytes"; printf '%s\n' "${ROWS[@]}"; } >"$rows"
    echo "$IOMAX" >>"$OUT/knobs.txt"
    echo "$way,$(analyse_shape "$rows")" >>"$SUMMARY"
    say "$way: $(tail -n 1 "$SUMMARY")"
}

# analyse_shape ROWS_CSV: "alone,db_both,share_mean,share_p01,samples,
# reach_s,backup_alone,backup_both,after_share,free95_s" (rates in MiB/s;
# see the header).
analyse_shape() {
    awk -F, -v base="$DB_BASE" -v cap="$CAP" '
        # reach(T, V, n, want): seconds from T[1] to the end of the first
        # window of >= 100 ms between rows in which V grew by want per second.
        function reach(T, V, n, want,    i, j) {
            for (j = 2; j <= n; j++) {
                for (i = j - 1; i >= 1 && T[j] - T[i] < 0.1; i--) ;
                if (i >= 1 && (V[j] - V[i]) / (T[j] - T[i]) >= want) return sprintf("%.2f", T[j] - T[1])
            }
            return "never"
        }
        NR == 1 { next }
        { ph = $1; t = $2 / 1e6; v = $3; b = $4 }
        ph == "alone" { if (a0 == "") { a0 = t; av0 = v } a1 = t; av1 = v }
        ph == "neighbour" { if (n0 == "") { n0 = t; nb0 = b } n1 = t; nb1 = b }
        ph == "join" || ph == "both" { J++; JT[J] = t; JV[J] = v }
        ph == "both" {
            if (b0 == "") { b0 = t; bv0 = v; bb0 = b; s0 = t; sv0 = v }
            else if (t - s0 >= 1) { S[++k] = (v - sv0) / (t - s0); s0 = t; sv0 = v }
            b1 = t; bv1 = v; bb1 = b
        }
        ph == "after" { F++; FT[F] = t; FB[F] = b; if (f1 == "" && t - FT[1] >= 1) { f1 = t; fb1 = b } }
        END {
            mib = 1048576
            alone = (av1 - av0) / (a1 - a0)
            ref = alone < base ? alone : base
            for (i = 1; i <= k; i++) { s[i] = S[i] / ref; sum += s[i] }
            for (i = 2; i <= k; i++) for (j = i; j > 1 && s[j - 1] > s[j]; j--) { x = s[j]; s[j] = s[j - 1]; s[j - 1] = x }
            p = int(0.01 * k); if (p < 0.01 * k) p++; if (p < 1) p = 1
            printf "%.2f,%.2f,%.3f,%.3f,%d,%s,%.2f,%.2f,%.3f,%s\n", alone / mib, (bv1 - bv0) / (b1 - b0) / mib,
                sum / k, s[p], k, reach(JT, JV, J, 0.9 * ref), (nb1 - nb0) / (n1 - n0) / mib,
                (bb1 - bb0) / (b1 - b0) / mib, (fb1 - FB[1]) / (f1 - FT[1]) / cap, reach(FT, FB, F, 0.95 * cap)
        }' "$1"
}

# goal WAY: which of the goals the way met, with its numbers.
goal() {
    local mean p01 reach after free95
    IFS=, read -r _ _ mean p01 _ reach _ _ after free95 <<<"$1"
    awk -v m="$mean" -v p="$p01" -v r="$reach" -v a="$after" -v f="$free95" 'BEGIN {
        ok = "met"; no = "NOT met"
        printf "victim mean %s >= 0.97: %s; p01 %s >= 0.90: %s; reaction %s s <= 0.25: %s; ", m, (m >= 0.97 ? ok : no), p, (p >= 0.9 ? ok : no), r, (r != "never" && r <= 0.25 ? ok : no)
        printf "neighbour >= 95%% of free within %s s <= 1: %s (%s of it in the first second)", f, (f != "never" && f <= 1 ? ok : no), a
    }'
}

print_shapes() {
    local way line
    report "Disk workload shapes: $WHAT on $DEVICE ($DEV), contracts on read_bps"
    report "capacity 50 MiB/s (QEMU throttle); db (victim): baseline 20, burst 50; backup (neighbour): baseline 10, burst 50"
    report "share = db's rate / min(baseline, alone), per-second samples of \"both\" (${BOTH_S} s, after ${REACT_S} s of reaction)"
    report "reach = s from db's thaw to the end of the first >= 100 ms window with db at 90% of min(baseline, alone) (rows every ${SAMPLE_S} s)"
    report "after = backup's rate in the second after db stops / 50 MiB/s; free95 = s until a >= 100 ms window gives backup 95% of 50 MiB/s"
    report ""
    local head='%-11s %-6s %-6s %-6s %-6s %-3s %-6s %-8s %-7s %-6s %-6s'
    # shellcheck disable=SC2059 # the format is the table's.
    report "$(printf "$head" way alone db mean p01 n reach bk-alone bk-both after free95)"
    while IFS=, read -r way line; do
        IFS=, read -r -a f <<<"$line"
        # shellcheck disable=SC2059
        report "$(printf "$head" "$way" "${f[@]}")"
    done < <(tail -n +2 "$SUMMARY")
    report "columns: alone, db (in both), bk-alone (backup with db frozen), bk-both in MiB/s; mean, p01 of the share over n samples; reach, free95 in s"
    report ""
    while IFS=, read -r way line; do
        [[ $way == qosd-* ]] && report "goals, $way: $(goal "$line")"
    done < <(tail -n +2 "$SUMMARY")
    report ""
    [[ ! -f $OUT/knobs.txt ]] || report "$(cat "$OUT/knobs.txt")"
}

# check_qd: the suite's cell (qosd at a 1 s tick) against thresholds with
# margins below six VM runs (2026-12-08, after the disk's activity floor
# became 1% of the baseline: before it, db starved at 0.77 MiB/s was taken
# for idle and never protected). The goal of a reaction within 250 ms is
# not met at this tick (db's waits show no I/O pressure, so nothing wakes
# qosd before the tick): the check holds what the code reaches.
check_qd() {
    local line alone mean p01 reach after free95
    line=$(grep '^qosd-1s,' "$SUMMARY" | cut -d, -f2-)
    [[ -n $line ]] || { fail "the qosd-1s way did not complete"; return; }
    IFS=, read -r alone _ mean p01 _ reach _ _ after free95 <<<"$line"
    # 5 runs: 50.02, 50.11, 50.00, 50.01, 50.05 MiB/s
    ge "$alone" 45 || fail "qosd-1s: db alone read $alone MiB/s (want >= 45)"
    # 5 runs: 1.669, 1.665, 1.669, 1.668, 1.666 (the goal: 0.97)
    ge "$mean" 0.97 || fail "qosd-1s: db's mean share beside backup $mean (want >= 0.97)"
    # 5 runs: 1.618, 1.614, 1.646, 1.640, 1.632 (the goal: 0.90)
    ge "$p01" 0.90 || fail "qosd-1s: db's p01 share beside backup $p01 (want >= 0.90)"
    # 5 runs: 1.30, 1.11, 1.02, 1.38, 1.12 s
    le "$reach" 2.0 || fail "qosd-1s: db at 90% of its baseline after $reach s (want <= 2.0)"
    # 6 runs: 0.605, 0.687, 0.778, 0.605, 0.702, 0.332. It depends on where
    # db stops in the tick: disk is released at the tick only, and until
    # then backup holds its clamp (17 MiB/s, 0.34 of the free disk).
    ge "$after" 0.25 || fail "qosd-1s: backup got $after of the free 50 MiB/s in the second after db stopped (want >= 0.25)"
    # 6 runs: 0.91, 0.75, 0.65, 0.93, 0.77, 1.12 s (at most a tick, and the
    # device's queue)
    le "$free95" 1.4 || fail "qosd-1s: backup at 95% of the free 50 MiB/s after $free95 s (want <= 1.4)"
}

main_qd() {
    local way
    if [[ ${VM_SHAPES:-0} != 1 ]]; then QD_WAYS=qosd-1s; fi
    echo "way,alone,db_both,share_mean,share_p01,samples,reach_s,backup_alone,backup_both,after_share,free95_s" >"$SUMMARY"
    for way in $QD_WAYS; do
        run_shape "$way"
    done
    print_shapes
    [[ ${VM_SHAPES:-0} == 1 ]] || check_qd
    finish
}

main() {
    : >"$REPORT"
    echo +io +cpu >"$CG/cgroup.subtree_control"
    [[ $MODE == qd ]] && main_qd
    [[ $MODE == iops ]] && calibrate_iops
    local way
    for way in $WAYS; do
        run_way "$way" || say "way $way did not complete"
    done
    print_report
    check_results
    finish
}

main
