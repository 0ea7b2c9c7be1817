#!/usr/bin/env bash
# timeout: 180
# Network contracts on a host that cannot hold them: each failure is named,
# and the other resources keep working.
#
#   a  `qosd check` on a config whose link and contract name the interface
#      "nosuch0": exits non-zero and names nosuch0;
#   b  qosd started with a PATH that has `nft` but no `tc`;
#   c  the same with `tc` but no `nft`;
#   d  a kernel without HTB: sch_htb unloaded and module autoloading blocked
#      (/proc/sys/kernel/modprobe = /bin/false);
#   e  a kernel without nft's socket expression: nf_tables loaded, nft_socket
#      unloaded, autoloading blocked.
# In b-e qosd must start and stay up, log an error naming what is missing
# (`tc`, `nft`, sch_htb, nft_socket), and still hold tenant api's CPU
# contract: cpu.weight = 50 (baseline 0.5 cores) within 5 ticks.
#
# The link is a bare veth pair (up0 / up0p): nothing is sent.
# Output (target/vm/out/<scenario>/): report.txt, qosd-<case>.log,
# qosd-<case>.toml, check-nosuch0.txt.
set -uo pipefail
# shellcheck source=tests/vm/lib.sh
. "$VM_REPO/tests/vm/lib.sh"
# shellcheck source=tests/vm/netlib.sh
. "$VM_REPO/tests/vm/netlib.sh"
require_guest
cd /tmp || exit 1

CONFIG=/tmp/qosd.toml
PARENT=qosd.slice
MODPROBE_SAVED=

# write_config IF: api (cpu and net) and bulk (net) on link IF.
write_config() {
    cat >"$CONFIG" <<EOF
[agent]
interval = "1s"
metrics_listen = "127.0.0.1:9477"

[host]
reserved_cpu = 0

[[host.links]]
interface = "$1"
egress = "40Mbit/s"

[tenants.api]
cpu = { baseline = 0.5, burst = 2 }
net = [{ interface = "$1", egress = { baseline = "25Mbit/s", burst = "40Mbit/s" } }]

[tenants.bulk]
net = [{ interface = "$1", egress = { baseline = "5Mbit/s", burst = "40Mbit/s" } }]
EOF
}

module_loaded() {
    local name _rest
    while read -r name _rest; do
        [[ $name == "$1" ]] && return 0
    done </proc/modules
    return 1
}

# block_autoload / unblock_autoload: the kernel runs /proc/sys/kernel/modprobe
# (the initramfs's busybox modprobe) to load qdiscs and nft expressions on
# demand; /bin/false makes every such request fail, as on a kernel built
# without them.
block_autoload() {
    read -r MODPROBE_SAVED </proc/sys/kernel/modprobe
    echo /bin/false >/proc/sys/kernel/modprobe
}
unblock_autoload() {
    [[ -n $MODPROBE_SAVED ]] && echo "$MODPROBE_SAVED" >/proc/sys/kernel/modprobe
    MODPROBE_SAVED=
}

# preload KIND: have the kernel load what a qdisc or nft needs now, while
# autoloading works (a throwaway qdisc on the link's peer).
preload_qdisc() {
    tc qdisc replace dev up0p root "$1" >/dev/null 2>&1
    tc qdisc del dev up0p root >/dev/null 2>&1
}

# Back to a clean slate between cases: no qdisc, no nft table, no groups.
clean() {
    local g
    tc qdisc del dev up0 root 2>/dev/null
    nft delete table inet qosd 2>/dev/null
    for g in api bulk; do
        [[ -d $CG/$PARENT/$g ]] && rmdir "$CG/$PARENT/$g" 2>/dev/null
    done
    [[ -d $CG/$PARENT ]] && rmdir "$CG/$PARENT" 2>/dev/null
    return 0
}

# run_case NAME WANT DESCRIPTION: start qosd (QOSD_PATH as set by the caller),
# and check that it stays up, logs an error naming WANT, and writes api's
# cpu.weight. Stops it again.
run_case() {
    local name=$1 want=$2 what=$3 log=$OUT/qosd-$1.log i w='' start=${EPOCHREALTIME/./}
    report "case $name: $what"
    cp "$CONFIG" "$OUT/qosd-$name.toml"
    if ! start_qosd "$CONFIG" "$log"; then
        fail "$name: qosd did not start ($what)"
        return
    fi
    for ((i = 0; i < 50; i++)); do
        [[ -r $CG/$PARENT/api/cpu.weight ]] && read -r w <"$CG/$PARENT/api/cpu.weight"
        [[ $w == 50 ]] && break
        fsleep 0.1
    done
    fsleep 1 # one more tick: it must stay up
    if kill -0 "$QOSD_PID" 2>/dev/null; then
        report "  qosd still running after $(milli $(((${EPOCHREALTIME/./} - start) / 1000))) s"
    else
        fail "$name: qosd exited ($what); log tail:"
        tail -n 10 "$log" | tee -a "$REPORT"
    fi
    [[ $w == 50 ]] || fail "$name: api's cpu.weight is '${w:-?}', want 50 (its CPU contract, 0.5 cores): the other resources must keep working"
    report "  api cpu.weight=${w:-?} cpu.max=$(cat "$CG/$PARENT/api/cpu.max" 2>/dev/null)"
    local line
    line=$(grep -F -- "$want" "$log" | grep -m 1 ERROR)
    if [[ -n $line ]]; then
        report "  logged: ${line:0:300}"
    else
        fail "$name: no ERROR line naming $want in $log; errors and warnings logged:"
        grep -E 'ERROR|WARN' "$log" | head -n 5 | tee -a "$REPORT"
    fi
    kill -TERM "$QOSD_PID" 2>/dev/null
    wait "$QOSD_PID" 2>/dev/null
    report ""
}

# path_with BINARY...: a directory holding links to only these binaries.
path_with() {
    local dir=/tmp/path-$1 b
    mkdir -p "$dir"
    for b in "$@"; do
        ln -sf "$(command -v "$b")" "$dir/$b"
    done
    echo "$dir"
}

case_nosuch() {
    local rc=0 out=$OUT/check-nosuch0.txt
    report "case a: qosd check on a config naming interface nosuch0"
    write_config nosuch0
    cp "$CONFIG" "$OUT/qosd-nosuch0.toml"
    "$QOSD_BIN" check --config "$CONFIG" >"$out" 2>&1 || rc=$?
    report "  exit status $rc; output: $(head -c 600 "$out" | tr '\n' '|')"
    ((rc != 0)) || fail "a: qosd check accepted a contract on the missing interface nosuch0"
    grep -q nosuch0 "$out" || fail "a: qosd check's output does not name nosuch0"
    report ""
}

main() {
    : >"$REPORT"
    T0=$(now_us)
    echo +cpu >"$CG/cgroup.subtree_control"
    if ! { ip link add up0 type veth peer name up0p && ip link set up0 up && ip link set up0p up; }; then
        fail "cannot create the veth pair up0/up0p"
        finish
    fi

    case_nosuch

    write_config up0
    clean
    # shellcheck disable=SC2016 # the backticks are literal: qosd quotes names so.
    QOSD_PATH=$(path_with nft) run_case b '`tc`' "PATH without tc (only nft)"
    clean
    # shellcheck disable=SC2016
    QOSD_PATH=$(path_with tc) run_case c '`nft`' "PATH without nft (only tc)"

    clean
    preload_qdisc fq_codel
    rmmod sch_htb 2>/dev/null
    if module_loaded sch_htb; then
        fail "d: cannot unload sch_htb (in use?); case skipped"
    else
        block_autoload
        if tc qdisc add dev up0p root handle 1: htb 2>/dev/null; then
            fail "d: an htb qdisc could still be created with autoloading blocked; case skipped"
            tc qdisc del dev up0p root 2>/dev/null
        else
            run_case d sch_htb "kernel without HTB (sch_htb unloaded, autoload blocked)"
        fi
        unblock_autoload
    fi

    clean
    preload_qdisc htb
    preload_qdisc fq_codel
    nft list tables >/dev/null 2>&1 # nf_tables
    rmmod nft_socket 2>/dev/null
    if module_loaded nft_socket; then
        fail "e: cannot unload nft_socket (in use?); case skipped"
    elif ! module_loaded nf_tables; then
        fail "e: nf_tables is not loaded; case skipped"
    else
        block_autoload
        mkdir -p "$CG/$PARENT"
        if nft -f - >/dev/null 2>&1 <<EOF
table inet vmprobe {
    chain output {
        type filter hook output priority mangle; policy accept;
        socket cgroupv2 level 1 "$PARENT" meta priority set 1:10
    }
}
EOF
        then
            fail "e: an nft socket rule could still be loaded with autoloading blocked; case skipped"
        else
            run_case e nft_socket "kernel without nft socket support (nft_socket unloaded, autoload blocked)"
        fi
        nft delete table inet vmprobe 2>/dev/null
        unblock_autoload
    fi
    report "modules at the end: $(awk '$1 ~ /^(sch_htb|sch_fq_codel|nf_tables|nft_socket)$/ { printf "%s ", $1 }' /proc/modules)"
    report "kernel.modprobe restored: $(cat /proc/sys/kernel/modprobe)"
    clean
    ip link del up0 2>/dev/null
    finish
}

main
