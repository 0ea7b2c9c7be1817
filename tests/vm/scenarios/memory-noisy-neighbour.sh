#!/usr/bin/env bash
# timeout: 360
# Memory noisy neighbour: a neighbour flooding the page cache must not evict
# a tenant's protected working set. The guest has 1 GiB of RAM (960 MiB
# MemTotal); two tenants:
#   cache  re-reads one 250 MiB file over and over at a demand of
#          VM_CACHE_RATE (200 MiB/s; fio, buffered 1 MiB sequential reads,
#          looping). The file lives on ext4 on /dev/vda, the 50 MiB/s disk:
#          from the page cache cache gets its whole demand, from the disk at
#          most 50 MiB/s. (The demand is below what the guest's CPU gives from
#          memory, ~1.2-2.4 GiB/s under TCG, so the measure is memory, not the
#          vCPU time the flood and kswapd take: uncapped, even a fully
#          protected cache lost ~40% to CPU contention alone.)
#   flood  streams through 2 GiB of other files (8 x 256 MiB on ext4 on
#          /dev/vdb, the unthrottled scratch disk of tests/vm/run.sh, so that
#          flood competes with cache for memory only, not for vda) with
#          VM_FLOOD_JOBS=2 readers (fio --numjobs, one process), both going
#          through all the files at once: every page is read twice, as by an
#          indexer and a shipper over the same logs.
#          Why two: a single use-once stream does not evict cache on this
#          kernel (6.1, classic LRU). Its pages stay on the inactive list,
#          the node's inactive file list is then never "low", so reclaim
#          deactivates no active page, and cache's file (read twice in the
#          warm-up, so active) is never touched: measured, cache kept 100% of
#          its throughput and all 248 MiB resident with no protection at all.
#          Read twice, flood's pages are activated as well and the two
#          tenants' active lists compete; that is the flood memory.min is for.
#          The `none-once` way (not in the default VM_WAYS) shows the single
#          stream.
# Both filesystems are made fresh in every run (mkfs.ext4 without a journal:
# no background writes), and the files are written with O_DIRECT. The page
# cache of a block-device filesystem is what the kernel reclaims; the 9p root
# and tmpfs would not show it.
#
# Ways, in the same VM run (the emulated machine is noisy: compare within
# one run):
#   none       both tenants in cgroups (none.slice/{cache,flood}: the same
#              layout as qosd's) with no memory protection;
#   static     static.slice/{cache,flood} with memory.min = 300 MiB written by
#              hand into cache's group AND into static.slice: a child's
#              memory.min protects only up to its parent's ("Effective min
#              boundary is limited by memory.min values of all ancestor
#              cgroups", cgroup-v2.rst). The kernel mechanism alone: what
#              qosd has to write;
#   qosd       the agent holds the contracts. Tenants without `cgroup` live
#              in groups it creates under qosd.slice, and it enables the
#              memory controller itself (the scenario takes it off the root
#              first):
#                cache: memory = { baseline = "300MiB", burst = "900MiB" }
#                flood: memory = { baseline = 0, burst = "900MiB" }
#   none-once  as none, with a single flood reader (optional, see above).
#
# Each way (caches dropped at its start, and only then; fio's binary and
# libraries, ~40 MiB of page cache over 9p, are then loaded once from the
# root cgroup, so that cache is charged for its file and its own memory):
#   warm     dd reads cache's file from disk (in cache's group), then cache's
#            reader starts and reads it once from memory;
#   1 alone  cache re-reads its file alone (VM_ALONE_S);
#   2 flood  flood starts; after VM_SETTLE_S, cache's re-read throughput is
#            measured over VM_FLOOD_S while flood keeps streaming.
# Throughput is rchar of each reader (/proc/PID/io: bytes its read() calls
# returned, page-cache hits included) over wall time. Every 250 ms, without
# forking, timeline-<way>.csv gets those, each reader's read_bytes (what it
# made the kernel fetch from its disk: cache's re-reads from vda are its
# evictions made visible), memory.current, memory.stat (file,
# active/inactive file, workingset refaults) and memory.events of both
# groups, and the guest's MemFree and Cached.
#
# Checks (with qosd): cache's re-read throughput under the flood >= 80% of
# its alone value (same way); cache's memory.min is 314572800 (300 MiB),
# flood's 0, and qosd.slice's at least 314572800 (the parent caps its
# children's protection); qosd_tenant_memory_usage_bytes is exported for both
# tenants, cache's within 10% of its memory.current, and
# qosd_tenant_memory_events_total for cache; promtool accepts /metrics.
# The none and static numbers are reported, not asserted: WARN when cache
# keeps >= 50% without protection (no collapse), or < 80% with memory.min
# written by hand.
#
# Output (target/vm/out/<scenario>/): report.txt; setup.txt (mkfs, df);
# timeline-<way>.csv; timeline.csv (lib.sh's timeline_*: each way from the
# warm-up on, memory.current and memory.high beside the contracts, and each
# reader's MiB/s, every 0.5 s; tests/vm/run.sh charts it as timeline.png);
# memory-<way>.txt (memory.min/low/high/max,
# memory.current, memory.events and memory.stat lines of both groups, the
# guest's meminfo, and the cache file's pages resident (fincore) at each
# phase's end); fio-{cache,flood}-<way>.txt; qosd.toml, qosd-check.txt,
# qosd.log, metrics-flood.txt, metrics-end.txt, promtool.txt.
#
# Knobs: VM_WAYS="none static qosd", VM_ALONE_S=5, VM_SETTLE_S=3,
# VM_FLOOD_S=12 (phase lengths), VM_CACHE_MIB=250, VM_FLOOD_FILES=8,
# VM_FLOOD_FILE_MIB=256 (sizes), VM_CACHE_RATE=200 (MiB/s; 0: unlimited),
# VM_FLOOD_JOBS=2, VM_FLOOD_ENGINE=psync (fio ioengine of the flood).
# Needs e2fsprogs (mkfs.ext4) and util-linux (fincore) in the host root.
set -uo pipefail
# shellcheck source=tests/vm/lib.sh
. "$VM_REPO/tests/vm/lib.sh"
require_guest
cd /tmp || exit 1

WAYS=${VM_WAYS:-none static qosd}
ALONE_S=${VM_ALONE_S:-5}
SETTLE_S=${VM_SETTLE_S:-3}
FLOOD_S=${VM_FLOOD_S:-12}
CACHE_MIB=${VM_CACHE_MIB:-250}
FLOOD_FILES=${VM_FLOOD_FILES:-8}
FLOOD_FILE_MIB=${VM_FLOOD_FILE_MIB:-256}
CACHE_RATE=${VM_CACHE_RATE:-200} # MiB/s cache asks for; 0: as fast as it can
FLOOD_JOBS=${VM_FLOOD_JOBS:-2}
FLOOD_ENGINE=${VM_FLOOD_ENGINE:-psync}
MIN_BYTES=314572800 # 300 MiB: cache's baseline
KEEP_PCT=80         # with qosd, cache keeps >= this % of its alone throughput
COLLAPSE_PCT=50     # without protection, WARN unless it drops below this %
CACHE_DEV=/dev/vda
FLOOD_DEV=/dev/vdb
CACHE_FS=/tmp/cachefs
FLOOD_FS=/tmp/floodfs
CACHE_FILE=$CACHE_FS/cache.dat
CONFIG=/tmp/qosd.toml
MIB=1048576

# Results, keyed "<way>.<name>".
declare -A R

# The ways as timeline.csv names them (tests/vm/run.sh charts it).
declare -A WAY_LABEL=([none]="no protection" [static]="memory.min by hand" [qosd]=qosd
    [none-once]="no protection; 1 reader")

mark() {
    milli_r $(((${EPOCHREALTIME/./} - T0) / 1000))
    printf -v "$1" %s "$REPLY"
}
# mib_r BYTES_OR_RATE: an integer in MiB, one decimal, rounded (anything
# else as is, "-" for nothing), into REPLY. Builtins only; `mib` prints it.
mib_r() {
    local x
    if [[ $1 =~ ^[0-9]+$ ]]; then
        x=$((($1 * 10 + 524288) / 1048576))
        REPLY="$((x / 10)).$((x % 10))"
    else
        REPLY=${1:--}
    fi
}
mib() { mib_r "$1"; echo "$REPLY"; }

# rd_r FILE: the first line of FILE into REPLY (non-zero if unreadable).
rd_r() {
    REPLY=
    read -r REPLY <"$1" 2>/dev/null || [[ -n $REPLY ]]
}

# --- fork-free readers (the sampler runs in the root cgroup, beside the
# tenants; forks are slow under TCG) --------------------------------------

# reader_r GROUP: rchar (bytes its read() calls returned, page-cache hits
# included) and read_bytes (bytes it made the kernel fetch from storage) of
# the group's first process (/proc/PID/io), into RCHAR and RBYTES; 0 when
# the group is empty. The readers are single fio processes (--thread), so
# the first process is the reader.
reader_r() {
    local pid k v
    RCHAR=0 RBYTES=0
    read -r pid <"$CG/$1/cgroup.procs" 2>/dev/null || return 0
    while read -r k v; do
        case $k in
            rchar:) RCHAR=$v ;;
            read_bytes:) RBYTES=$v; return 0 ;;
        esac
    done <"/proc/$pid/io" 2>/dev/null
}

# memcg_r GROUP: memory.current, and the memory.stat and memory.events
# values the scenario follows, into MC_CUR MC_FILE MC_ACTIVE MC_INACTIVE
# MC_REFAULT MC_LOW MC_HIGH (0 when missing).
memcg_r() {
    local d=$CG/$1 k v
    MC_CUR=0 MC_FILE=0 MC_ACTIVE=0 MC_INACTIVE=0 MC_REFAULT=0
    MC_LOW=0 MC_HIGH=0
    [[ -r $d/memory.current ]] || return 0
    read -r MC_CUR <"$d/memory.current"
    while read -r k v; do
        case $k in
            file) MC_FILE=$v ;;
            active_file) MC_ACTIVE=$v ;;
            inactive_file) MC_INACTIVE=$v ;;
            workingset_refault_file) MC_REFAULT=$v ;;
        esac
    done <"$d/memory.stat"
    while read -r k v; do
        case $k in
            low) MC_LOW=$v ;;
            high) MC_HIGH=$v ;;
        esac
    done <"$d/memory.events"
}

# meminfo_r: MemFree and Cached of the guest, in bytes, into MI_FREE MI_CACHED.
meminfo_r() {
    local k v _u
    MI_FREE=0 MI_CACHED=0
    while read -r k v _u; do
        case $k in
            MemFree:) MI_FREE=$((v * 1024)) ;;
            Cached:) MI_CACHED=$((v * 1024)); return 0 ;;
        esac
    done </proc/meminfo
}

# start_mem_sampler CSV: every 250 ms one line (t_s since T0; counters, then
# rates over the previous sample in MiB/s):
#   t_s, cache_rchar, flood_rchar, cache_disk_rbytes, flood_disk_rbytes
#   (read_bytes of each reader: what it fetched from its disk), cache_mem, cache_file,
#   cache_active_file, cache_inactive_file, cache_refaults, cache_low_events,
#   flood_mem, flood_file, flood_high_events, memfree, cached,
#   cache_MiBps, flood_MiBps, cache_disk_MiBps
# Uses G_CACHE and G_FLOOD. Sets SAMPLER_PID.
start_mem_sampler() {
    local csv=$1
    echo "t_s,cache_rchar,flood_rchar,cache_disk_rbytes,flood_disk_rbytes,cache_mem,cache_file,cache_active_file,cache_inactive_file,cache_refaults,cache_low_events,flood_mem,flood_file,flood_high_events,memfree,cached,cache_MiBps,flood_MiBps,cache_disk_MiBps" >"$csv"
    (
        local prev_t=0 t dt line cr fr cd fd p_cr=0 p_fr=0 p_cd=0 rates
        while :; do
            t=${EPOCHREALTIME/./}
            dt=$((t - prev_t))
            milli_r $(((t - T0) / 1000))
            line=$REPLY
            reader_r "$G_CACHE"; cr=$RCHAR cd=$RBYTES
            reader_r "$G_FLOOD"; fr=$RCHAR fd=$RBYTES
            line+=",$cr,$fr,$cd,$fd"
            memcg_r "$G_CACHE"
            line+=",$MC_CUR,$MC_FILE,$MC_ACTIVE,$MC_INACTIVE,$MC_REFAULT,$MC_LOW"
            memcg_r "$G_FLOOD"
            line+=",$MC_CUR,$MC_FILE,$MC_HIGH"
            meminfo_r
            line+=",$MI_FREE,$MI_CACHED"
            rates=,,
            if ((prev_t > 0)); then
                # A reader that restarted (rchar back near 0) gives no rate.
                rates=
                if ((cr >= p_cr)); then milli_r $(((cr - p_cr) * 1000000000 / MIB / dt)); rates+=$REPLY; fi
                rates+=,
                if ((fr >= p_fr)); then milli_r $(((fr - p_fr) * 1000000000 / MIB / dt)); rates+=$REPLY; fi
                rates+=,
                if ((cd >= p_cd)); then milli_r $(((cd - p_cd) * 1000000000 / MIB / dt)); rates+=$REPLY; fi
            fi
            p_cr=$cr p_fr=$fr p_cd=$cd prev_t=$t
            echo "$line,$rates" >>"$csv"
            fsleep 0.25
        done
    ) &
    SAMPLER_PID=$!
    track "$SAMPLER_PID"
}

# --- setup -------------------------------------------------------------------

# mkfs.ext4 without a journal (no jbd2 commits during the measurements) and
# with the inode tables written now (no lazy init thread later); mount it.
make_fs() {
    local dev=$1 dir=$2
    mkfs.ext4 -q -F -m 0 -O ^has_journal -E lazy_itable_init=0,nodiscard "$dev" >>"$OUT/setup.txt" 2>&1 ||
        return 1
    mkdir -p "$dir"
    mount -t ext4 -o noatime "$dev" "$dir" >>"$OUT/setup.txt" 2>&1
}

# write_file PATH MIB: a file of real blocks (zeros, written with O_DIRECT so
# the writes leave nothing in the page cache).
write_file() {
    dd if=/dev/zero of="$1" bs=4M count=$(($2 / 4)) oflag=direct status=none
}

setup() {
    local t0 i
    say "=== setup"
    if [[ ! -b $CACHE_DEV || ! -b $FLOOD_DEV ]]; then
        fail "need $CACHE_DEV and the scratch disk $FLOOD_DEV (tests/vm/run.sh attaches them)"
        return 1
    fi
    if ! command -v mkfs.ext4 >/dev/null; then
        fail "mkfs.ext4 not found (install e2fsprogs on the host)"
        return 1
    fi
    local need=$(((FLOOD_FILES * FLOOD_FILE_MIB + 64) * MIB)) have
    have=$(($(cat /sys/block/vdb/size) * 512))
    if ((have < need)); then
        fail "the scratch disk $FLOOD_DEV has $((have / MIB)) MiB, the flood needs $((need / MIB)) MiB (VM_SCRATCH_SIZE)"
        return 1
    fi
    make_fs "$CACHE_DEV" "$CACHE_FS" || { fail "mkfs/mount of $CACHE_DEV failed: $(tail -n 3 "$OUT/setup.txt")"; return 1; }
    make_fs "$FLOOD_DEV" "$FLOOD_FS" || { fail "mkfs/mount of $FLOOD_DEV failed: $(tail -n 3 "$OUT/setup.txt")"; return 1; }
    # Both disks at once: cache's file in the background.
    t0=$(now_us)
    (
        write_file "$CACHE_FILE" "$CACHE_MIB" || exit 1
        echo $((($(now_us) - t0) / 1000)) >/tmp/cache-write-ms
    ) &
    local writer=$!
    FLOOD_LIST=
    for ((i = 0; i < FLOOD_FILES; i++)); do
        write_file "$FLOOD_FS/flood.$i" "$FLOOD_FILE_MIB" || { fail "cannot write $FLOOD_FS/flood.$i"; return 1; }
        FLOOD_LIST+=${FLOOD_LIST:+:}$FLOOD_FS/flood.$i
    done
    R[setup.flood_write_s]=$(milli $((($(now_us) - t0) / 1000)))
    wait "$writer" || { fail "cannot write $CACHE_FILE"; return 1; }
    R[setup.cache_write_s]=$(milli "$(</tmp/cache-write-ms)")
    sync
    say "setup: cache file ${CACHE_MIB} MiB written in ${R[setup.cache_write_s]} s, flood $FLOOD_FILES x $FLOOD_FILE_MIB MiB in ${R[setup.flood_write_s]} s"
    {
        echo "lru_gen: $(cat /sys/kernel/mm/lru_gen/enabled 2>/dev/null || echo n/a)"
        df -h "$CACHE_FS" "$FLOOD_FS"
        ls -l "$CACHE_FS" "$FLOOD_FS"
    } >>"$OUT/setup.txt" 2>&1
}

# --- one way -----------------------------------------------------------------

write_config() {
    cat >"$CONFIG" <<EOF
[agent]
interval = "1s"
metrics_listen = "127.0.0.1:9477"
[tenants.cache]
memory = { baseline = "300MiB", burst = "900MiB" }
[tenants.flood]
memory = { baseline = 0, burst = "900MiB" }
EOF
    cp "$CONFIG" "$OUT/qosd.toml"
}

# mem_snapshot WAY LABEL: the memory knobs and counters of both groups, and
# the cache file's resident bytes, appended to memory-<way>.txt. It forks:
# it runs at each phase's end, outside the measurement windows.
mem_snapshot() {
    local way=$1 label=$2 g d f at line k v _u
    local -a lines
    mark at
    {
        echo "== $label (t=${at}s)"
        for g in "$PARENT" "$G_CACHE" "$G_FLOOD"; do
            d=$CG/$g
            echo "-- $g"
            for f in memory.min memory.low memory.high memory.max memory.current; do
                [[ -r $d/$f ]] && read -r v <"$d/$f" && echo "$f: $v"
            done
            if [[ -r $d/memory.events ]]; then
                mapfile -t lines <"$d/memory.events"
                echo "memory.events: ${lines[*]}"
            fi
            if [[ -r $d/memory.stat ]]; then
                line=
                while read -r k v; do
                    case $k in
                        anon | file | active_file | inactive_file | workingset_refault_file | \
                            workingset_activate_file | pgscan | pgsteal) line+="$k $v " ;;
                    esac
                done <"$d/memory.stat"
                echo "memory.stat: $line"
            fi
        done
        line=
        while read -r k v _u; do
            case $k in
                MemFree: | Cached: | 'Active(file):' | 'Inactive(file):') line+="$k $v kB " ;;
            esac
        done </proc/meminfo
        echo "meminfo: $line"
        resident_r
        echo "cache's file resident in the page cache: $REPLY bytes (fincore)"
    } >>"$OUT/memory-$way.txt"
}

# resident_r: bytes of the cache file in the page cache (fincore), into REPLY.
resident_r() {
    REPLY=$(fincore -nb -o RES "$CACHE_FILE" 2>/dev/null)
    REPLY=${REPLY//[[:space:]]/}
    REPLY=${REPLY:--}
}

# wait_rchar GROUP BYTES SECONDS: until the group's reader has read BYTES.
wait_rchar() {
    local start=${EPOCHREALTIME/./}
    while ((${EPOCHREALTIME/./} - start < $3 * 1000000)); do
        reader_r "$1"
        ((RCHAR >= $2)) && return 0
        fsleep 0.1
    done
    return 1
}

# wait_min GROUP VALUE SECONDS: until the group's memory.min reads VALUE.
wait_min() {
    local start=${EPOCHREALTIME/./} v
    while ((${EPOCHREALTIME/./} - start < $3 * 1000000)); do
        v=
        read -r v <"$CG/$1/memory.min" 2>/dev/null
        [[ $v == "$2" ]] && return 0
        fsleep 0.1
    done
    return 1
}

# run_way none|static|qosd: one pass over all phases; fills R[way.*].
run_way() {
    local way=$1 csv=$OUT/timeline-$1.csv
    local t_warm t_alone t_alone_end t_flood t_meas t_end v jobs=$FLOOD_JOBS
    [[ $way == none-once ]] && jobs=1
    R[$way.flood_jobs]=$jobs
    say "=== way: $way"
    if [[ $way == qosd ]]; then
        PARENT=qosd.slice G_CACHE=qosd.slice/cache G_FLOOD=qosd.slice/flood
        # qosd is to enable the memory controller itself.
        echo -memory >"$CG/cgroup.subtree_control" 2>/dev/null ||
            say "note: could not take memory off the root's subtree_control"
        rd_r "$CG/cgroup.subtree_control"
        R[qosd.root_controllers_before]=${REPLY:-(empty)}
        write_config
        if ! "$QOSD_BIN" check --config "$CONFIG" >"$OUT/qosd-check.txt" 2>&1; then
            fail "qosd check rejected the config ($OUT/qosd.toml):"
            tee -a "$REPORT" <"$OUT/qosd-check.txt"
            return 1
        fi
        start_qosd "$CONFIG" "$OUT/qosd.log" || return 1
        if ! wait_min "$G_CACHE" "$MIN_BYTES" 5; then
            fail "qosd: $CG/$G_CACHE/memory.min is not $MIN_BYTES 5 s after start (it is '$(cat "$CG/$G_CACHE/memory.min" 2>&1)'; root subtree_control: $(cat "$CG/cgroup.subtree_control"))"
            [[ -d $CG/$G_CACHE && -d $CG/$G_FLOOD ]] || { stop_qosd; return 1; }
        fi
    else
        # The same layout as qosd's: both tenants under one parent.
        PARENT=$way.slice G_CACHE=$way.slice/cache G_FLOOD=$way.slice/flood
        echo +memory >"$CG/cgroup.subtree_control"
        cg_destroy "$G_CACHE"
        cg_destroy "$G_FLOOD"
        cg_fresh "$PARENT"
        echo +memory >"$CG/$PARENT/cgroup.subtree_control"
        mkdir "$CG/$G_CACHE" "$CG/$G_FLOOD"
        if [[ $way == static ]]; then
            # A child's memory.min counts only up to its parent's protection
            # (cgroup-v2.rst: "Effective min boundary is limited by
            # memory.min values of all ancestor cgroups"), so the parent
            # holds the sum of its children's baselines too.
            echo "$MIN_BYTES" >"$CG/$PARENT/memory.min" || fail "static: cannot write $PARENT's memory.min"
            echo "$MIN_BYTES" >"$CG/$G_CACHE/memory.min" || fail "static: cannot write cache's memory.min"
        fi
    fi
    sync
    echo 3 >/proc/sys/vm/drop_caches
    # fio's binary and libraries (read over 9p, ~40 MiB of page cache) are
    # charged to whoever reads them first: the root, not cache.
    fio --version >/dev/null
    T0=$(now_us)
    start_mem_sampler "$csv"
    : >"$OUT/memory-$way.txt"
    local label=${WAY_LABEL[$way]:-$way}
    timeline_phase "$label" "warm-up"
    timeline_start "$OUT/timeline.csv" \
        memory "cache:$((MIN_BYTES / MIB)):900:$G_CACHE" "flood:0:900:$G_FLOOD" \
        read "cache:::$G_CACHE" "flood:::$G_FLOOD"

    # Warm: dd reads cache's file from disk in cache's group (so the pages
    # are charged to it), then the reader starts and reads it once from
    # memory (twice read, the pages are active). Were the rate-limited
    # reader to do the disk pass itself, it would fall behind its rate there
    # and then catch up at full speed during "alone".
    mark t_warm
    cg_spawn "$G_CACHE" dd if="$CACHE_FILE" of=/dev/null bs=1M status=none
    wait "$LAST_PID" || fail "$way: dd of cache's file failed"
    local rate=()
    ((CACHE_RATE > 0)) && rate=(--rate="${CACHE_RATE}M")
    cg_spawn "$G_CACHE" fio --name=cache --thread --filename="$CACHE_FILE" --rw=read --bs=1M \
        --ioengine=psync --invalidate=0 --time_based --runtime=600 --eta=never "${rate[@]}" \
        --output="$OUT/fio-cache-$way.txt"
    track "$LAST_PID"
    if ! wait_rchar "$G_CACHE" $((CACHE_MIB * MIB)) 30; then
        fail "$way: cache's reader did not read its file once within 30 s of the warm-up"
    fi
    mark t_alone
    mem_snapshot "$way" "warm (cache's file read twice: dd, then the reader)"
    mark t_alone

    # Phase 1: cache alone.
    timeline_phase "$label" "cache alone"
    fsleep "$ALONE_S"
    mark t_alone_end
    mem_snapshot "$way" "1 cache alone"
    R[$way.alone_resident]=$REPLY

    # Phase 2: the flood.
    mark t_flood
    timeline_phase "$label" "flood starts"
    cg_spawn "$G_FLOOD" fio --name=flood --thread --filename="$FLOOD_LIST" --rw=read --bs=1M \
        --numjobs="$jobs" --ioengine="$FLOOD_ENGINE" --invalidate=0 --time_based --runtime=600 --eta=never \
        --output="$OUT/fio-flood-$way.txt"
    track "$LAST_PID"
    fsleep "$SETTLE_S"
    mark t_meas
    timeline_phase "$label" "flood"
    fsleep "$FLOOD_S"
    mark t_end
    timeline_stop
    mem_snapshot "$way" "2 flood (end)"
    R[$way.flood_resident]=$REPLY
    if [[ $way == qosd ]]; then
        rd_r "$CG/$PARENT/memory.min" && R[qosd.parent_min]=$REPLY
        rd_r "$CG/$G_CACHE/memory.min" && R[qosd.cache_min]=$REPLY
        rd_r "$CG/$G_FLOOD/memory.min" && R[qosd.flood_min]=$REPLY
        rd_r "$CG/$G_CACHE/memory.high" && R[qosd.cache_high]=$REPLY
        rd_r "$CG/$G_FLOOD/memory.high" && R[qosd.flood_high]=$REPLY
        rd_r "$CG/cgroup.subtree_control" && R[qosd.root_controllers]=$REPLY
        rd_r "$CG/$G_CACHE/memory.current" && R[qosd.cache_current]=$REPLY
        curl -s "http://127.0.0.1:9477/metrics" >"$OUT/metrics-flood.txt"
    fi

    cg_kill "$G_FLOOD"
    cg_kill "$G_CACHE"
    stop_sampler
    if [[ $way == qosd ]]; then
        fsleep 1.5 # a tick with the tenants idle
        curl -s "http://127.0.0.1:9477/metrics" >"$OUT/metrics-end.txt"
        stop_qosd
        # The groups are qosd's; remove what is left of them.
        rmdir "$CG/$G_CACHE" "$CG/$G_FLOOD" "$CG/qosd.slice" 2>/dev/null || true
    else
        cg_destroy "$G_CACHE"
        cg_destroy "$G_FLOOD"
        cg_destroy "$PARENT"
    fi

    # Analysis, from the timeline, in one pass: rates are from the first
    # sample at or after a window's start to the last one at or before its
    # end (as lib.sh's rate_between); values are the last sample at or
    # before a mark.
    local key val
    while read -r key val; do
        R[$way.$key]=$val
    done < <(awk -F, -v w="$t_warm" -v a="$t_alone" -v ae="$t_alone_end" -v m="$t_meas" -v e="$t_end" '
        NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
        $1 >= a && $1 <= ae { if (a0 == "") { a0 = $1; ca0 = $c["cache_rchar"] } a1 = $1; ca1 = $c["cache_rchar"] }
        $1 >= m && $1 <= e {
            if (m0 == "") { m0 = $1; cm0 = $c["cache_rchar"]; fm0 = $c["flood_rchar"]; dm0 = $c["cache_disk_rbytes"] }
            m1 = $1; cm1 = $c["cache_rchar"]; fm1 = $c["flood_rchar"]; dm1 = $c["cache_disk_rbytes"]
        }
        $1 <= ae { for (k in c) at_ae[k] = $c[k] }
        $1 <= e { for (k in c) at_e[k] = $c[k] }
        function rate(u0, u1, t0, t1) { return (t0 == "" || t1 <= t0) ? "nan" : sprintf("%.0f", (u1 - u0) / (t1 - t0)) }
        END {
            printf "warm_s %.1f\n", a - w
            alone = rate(ca0, ca1, a0, a1); flood = rate(cm0, cm1, m0, m1)
            print "alone", alone
            print "flood_cache", flood
            print "flood_flood", rate(fm0, fm1, m0, m1)
            print "flood_cache_disk", rate(dm0, dm1, m0, m1)
            print "ratio", (alone ~ /^[0-9]+$/ && flood ~ /^[0-9]+$/ && alone > 0) ? sprintf("%.1f", 100 * flood / alone) : "-"
            print "flood_read_total", at_e["flood_rchar"]
            n = split("cache_mem cache_file flood_mem flood_file memfree", cols, " ")
            for (i = 1; i <= n; i++) { print "alone_" cols[i], at_ae[cols[i]]; print "flood_" cols[i], at_e[cols[i]] }
            print "alone_cache_low", at_ae["cache_low_events"]
            print "flood_cache_low", at_e["cache_low_events"]
            print "flood_cache_refaults", at_e["cache_refaults"]
        }' "$csv")
    echo "marks (s since way start): cache_start=$t_warm alone=$t_alone..$t_alone_end flood_start=$t_flood measured=$t_meas..$t_end" \
        >>"$OUT/memory-$way.txt"
    say "$way: cache alone $(mib "${R[$way.alone]}") MiB/s; under flood $(mib "${R[$way.flood_cache]}") MiB/s (${R[$way.ratio]}%), from disk $(mib "${R[$way.flood_cache_disk]}") MiB/s; flood $(mib "${R[$way.flood_flood]}") MiB/s"
}

# --- report --------------------------------------------------------------------

v() { echo "${R[$1.$2]:--}"; }
has_way() { [[ " $WAYS " == *" $1 "* ]]; }

print_report() {
    local w
    report "Memory noisy neighbour: guest with $(($(awk '/^MemTotal:/ { print $2 }' /proc/meminfo) / 1024)) MiB MemTotal, 2 vCPUs"
    report "cache: re-reads a ${CACHE_MIB} MiB file on ext4 on $CACHE_DEV (50 MiB/s); flood: streams $FLOOD_FILES x $FLOOD_FILE_MIB MiB on ext4 on $FLOOD_DEV (unthrottled)"
    report "setup: cache file written in $(v setup cache_write_s) s, flood files in $(v setup flood_write_s) s"
    report "throughput: rchar of each reader over wall time (MiB/s); memory in MiB at each phase's end"
    report ""
    local hdr sep
    printf -v hdr '%-34s' ''
    sep=$(printf -- '-%.0s' {1..34})
    for w in $WAYS; do
        printf -v hdr '%s | %-10s' "$hdr" "$w"
        sep+=-------------
    done
    report "$hdr"
    report "$sep"
    row() {
        local label=$1 key=$2 conv=$3 line x
        printf -v line '%-34s' "$label"
        for w in $WAYS; do
            x=$(v "$w" "$key")
            if [[ $conv == mib ]]; then mib_r "$x"; x=$REPLY; fi
            printf -v line '%s | %-10s' "$line" "$x"
        done
        report "$line"
    }
    row "warm-up (dd + 1 pass, s)" warm_s -
    row "1 alone: cache re-read MiB/s" alone mib
    row "2 flood: cache re-read MiB/s" flood_cache mib
    row "  cache under flood / alone (%)" ratio -
    row "  cache reads from vda MiB/s" flood_cache_disk mib
    row "  flood readers of each file" flood_jobs -
    row "  flood read MiB/s (all readers)" flood_flood mib
    row "  flood read in all (MiB)" flood_read_total mib
    row "1 alone: cache memory.current" alone_cache_mem mib
    row "1 alone: cache file" alone_cache_file mib
    row "1 alone: cache's file resident" alone_resident mib
    row "1 alone: guest MemFree" alone_memfree mib
    row "2 flood: cache memory.current" flood_cache_mem mib
    row "2 flood: cache file" flood_cache_file mib
    row "2 flood: cache's file resident" flood_resident mib
    row "2 flood: flood memory.current" flood_flood_mem mib
    row "2 flood: flood file" flood_flood_file mib
    row "2 flood: guest MemFree" flood_memfree mib
    row "1 alone: cache memory.events low" alone_cache_low -
    row "2 flood: cache memory.events low" flood_cache_low -
    row "2 flood: cache workingset refaults" flood_cache_refaults -
    report ""
    if has_way qosd; then
        report "qosd: qosd.slice memory.min=$(v qosd parent_min); cache memory.min=$(v qosd cache_min) memory.high=$(v qosd cache_high); flood memory.min=$(v qosd flood_min) memory.high=$(v qosd flood_high); root subtree_control before/after: '$(v qosd root_controllers_before)' / '$(v qosd root_controllers)'"
        if [[ -n ${R[qosd.exit]:-} ]]; then
            report "qosd exit status after SIGTERM: ${R[qosd.exit]}; VmRSS ${R[qosd.VmRSS]:-?} kB, peak VmHWM ${R[qosd.VmHWM]:-?} kB"
            [[ -f $OUT/metrics-end.txt ]] && report "qosd tick cost in the VM: $(tick_cost "$OUT/metrics-end.txt")"
        fi
        if [[ -s $OUT/metrics-flood.txt ]]; then
            report "qosd memory metrics under the flood:"
            grep -E '^qosd_tenant_memory_' "$OUT/metrics-flood.txt" | sed 's/^/  /' | tee -a "$REPORT" >/dev/null
            grep -E '^qosd_tenant_memory_' "$OUT/metrics-flood.txt" | sed 's/^/  /'
        fi
    fi
    report ""
}

check_results() {
    local r
    if has_way none && [[ $(v none ratio) != - ]] && ge "$(v none ratio)" "$COLLAPSE_PCT"; then
        report "WARN: without protection cache kept $(v none ratio)% of its alone throughput under the flood (>= $COLLAPSE_PCT%): the flood did not evict it"
    fi
    if has_way static && [[ $(v static ratio) != - ]] && ! ge "$(v static ratio)" "$KEEP_PCT"; then
        report "WARN: with memory.min written by hand cache kept only $(v static ratio)% (< $KEEP_PCT%): the mechanism itself does not hold here"
    fi
    has_way qosd || return 0
    [[ $(v qosd flood_cache) != - ]] || { fail "the qosd way did not complete"; return; }
    r=$(v qosd ratio)
    ge "$r" "$KEEP_PCT" ||
        fail "with qosd cache re-read $(mib "$(v qosd flood_cache)") MiB/s under the flood, $r% of its alone $(mib "$(v qosd alone)") MiB/s (want >= $KEEP_PCT%)"
    [[ $(v qosd cache_min) == "$MIN_BYTES" ]] ||
        fail "with qosd cache's memory.min is '$(v qosd cache_min)' (want $MIN_BYTES)"
    local pm
    pm=$(v qosd parent_min)
    [[ $pm =~ ^[0-9]+$ ]] || pm=0
    ((pm >= MIN_BYTES)) ||
        fail "with qosd qosd.slice's memory.min is '$(v qosd parent_min)' (want >= $MIN_BYTES, the sum of its tenants' baselines: \"Effective min boundary is limited by memory.min values of all ancestor cgroups\", cgroup-v2.rst)"
    [[ $(v qosd flood_min) == 0 ]] ||
        fail "with qosd flood's memory.min is '$(v qosd flood_min)' (want 0)"
    local m t
    for t in cache flood; do
        m=$(awk -v n="qosd_tenant_memory_usage_bytes{tenant=\"$t\"}" 'index($0, n " ") == 1 { print $NF }' "$OUT/metrics-flood.txt" 2>/dev/null)
        [[ -n $m ]] || fail "qosd exports no qosd_tenant_memory_usage_bytes{tenant=\"$t\"} (see $OUT/metrics-flood.txt)"
        # cache is protected, so its usage holds still: the gauge (read at
        # the last tick) must be within 10% of memory.current now.
        if [[ $t == cache && -n $m ]] && ! awk -v m="$m" -v c="$(v qosd cache_current)" \
            'BEGIN { exit !(c > 0 && m >= 0.9 * c && m <= 1.1 * c) }'; then
            fail "qosd_tenant_memory_usage_bytes{tenant=\"cache\"} is $m, memory.current $(v qosd cache_current) (want within 10%)"
        fi
    done
    grep -q '^qosd_tenant_memory_events_total{.*tenant="cache"' "$OUT/metrics-flood.txt" 2>/dev/null ||
        fail "qosd exports no qosd_tenant_memory_events_total for cache (see $OUT/metrics-flood.txt)"
    if [[ -s $OUT/metrics-end.txt ]]; then
        promtool check metrics <"$OUT/metrics-end.txt" >"$OUT/promtool.txt" 2>&1 ||
            fail "promtool check metrics rejected the agent's /metrics (see $OUT/promtool.txt): $(head -n 3 "$OUT/promtool.txt")"
    else
        fail "no /metrics saved from qosd"
    fi
}

main() {
    : >"$REPORT"
    : >"$OUT/setup.txt"
    local way
    if setup; then
        for way in $WAYS; do
            run_way "$way" || say "way $way did not complete"
        done
    fi
    print_report
    check_results
    umount "$CACHE_FS" "$FLOOD_FS" 2>/dev/null
    finish
}

main
