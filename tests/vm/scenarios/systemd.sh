#!/usr/bin/env bash
# timeout: 360
# vm-init: systemd
#
# qosd under a real systemd (issue 6): the line above makes tests/vm/init.sh
# boot the host's systemd 252 as PID 1 and run this script as
# qosd-scenario.service (tests/vm/systemd/). qosd runs through the shipped
# systemd/qosd.service, installed into /run/systemd/system with two drop-ins
# (tests/vm/systemd/): qosd-vm.conf points ExecStartPre/ExecStart/
# AssertPathExists at the built binary and a config in /run/qosd-test (the
# guest has no /usr/bin/qosd and a read-only /etc), and qosd-watchdog.conf
# shortens WatchdogSec from 90s to 5s for check 6. Every other line of the
# shipped unit is in force.
#
# Tenants (interval 1s, 2 vCPUs):
#   a    adopted: the slice tenant-a.slice, which systemd owns (no
#        CPUWeight=), running `stress-ng --cpu 2` as tenant-a-load.service.
#        The dash nests it: its group (qosd's `cgroup`) is
#        "tenant.slice/tenant-a.slice". cpu baseline 0.5, burst 1.0;
#   web  adopted: the top-level slice web.slice (a `sleep` in it); baseline
#        0.3, burst 1.5;
#   b    owned: qosd creates agent.parent/b (qosd.slice/b); baseline 0.25,
#        burst 0.5.
#
# Checks:
#   1. `systemctl start qosd` succeeds and the unit is active/running,
#      Type=notify (READY=1 came), within VM_SYSTEMD_START_S (10 s); the
#      drop-ins changed nothing else (Delegate, ProtectSystem, Restart...);
#   2. the contracts are written: a's cpu.weight 50 and cpu.max
#      "100000 100000" in tenant-a.slice's group (where a uses 0.8 to 1.1
#      cores), web's weight 30, b's weight 25 in qosd.slice/b and its
#      cpu.max written;
#   3. Delegate=yes: qosd.service's group (/system.slice/qosd.service, with
#      qosd's MainPID) has the cpu, io, memory and pids controllers and
#      systemd's user.delegate xattr; qosd created qosd.slice/b at the root
#      (agent.parent's default, outside the delegated group);
#   4. systemd does not undo qosd's values for good: after a daemon-reload,
#      and after a new unit starts in tenant-a.slice, each value is qosd's
#      again within VM_SYSTEMD_RESTORE_S (6 s: qosd reads the kernel's
#      values every 3 ticks). What systemd did meanwhile is reported: on a
#      daemon-reload it writes cpu.weight 100 into web.slice and disables
#      cpu in tenant.slice's subtree_control (a's files vanish), though no
#      unit sets CPUWeight=;
#   5. `systemctl reload qosd` applies a new contract (a's baseline 0.8:
#      cpu.weight 80, within 3 s; success counter 1), and a broken file
#      (invalid TOML) is refused: the unit stays active with the same
#      MainPID, cpu.weight stays 80, the failure counter is 1;
#   6. the watchdog: SIGSTOP of the main PID gets it killed (3..10 s
#      later: 5 s from the last ping) and restarted (a new MainPID,
#      NRestarts + 1, "Watchdog timeout" in the journal) within
#      VM_SYSTEMD_WATCHDOG_MAX_S (25 s; 5 s + 2 s RestartSec + the start),
#      and the restarted agent holds the contract;
#   7. `systemctl stop qosd`: Result=success; web's and b's limits stay.
#      a's are reported: systemd disables cpu in tenant.slice when
#      qosd.service (Delegate=yes) goes away, and a's files go with it.
set -uo pipefail
# shellcheck source=tests/vm/lib.sh
. "$VM_REPO/tests/vm/lib.sh"
require_guest
cd /tmp || exit 1 # stress-ng needs a writable working directory.

UNIT_DIR=/run/systemd/system
UNITS_SRC=$VM_REPO/tests/vm/systemd
TEST_DIR=/run/qosd-test
CONFIG=$TEST_DIR/qosd.toml
A_UNIT=tenant-a.slice
A= # its group, from systemd: tenant.slice/tenant-a.slice (the dash nests it)
W=web.slice # a top-level slice: its group is its name
B=qosd.slice/b
START_S=${VM_SYSTEMD_START_S:-10}
RESTORE_S=${VM_SYSTEMD_RESTORE_S:-6}
WATCHDOG_MAX_S=${VM_SYSTEMD_WATCHDOG_MAX_S:-25}

# write_config A_BASELINE: the contract file.
write_config() {
    cat >"$CONFIG" <<EOF
[agent]
interval = "1s"
metrics_listen = "127.0.0.1:9477"

[host]
reserved_cpu = 0

# Adopted: a slice that systemd owns (tenant-a.slice).
[tenants.a]
cgroup = "$A"
cpu = { baseline = $1, burst = 1.0 }

# Adopted: a slice at the top (no dash), as in DESIGN.md.
[tenants.web]
cgroup = "$W"
cpu = { baseline = 0.3, burst = 1.5 }

# Owned: qosd creates agent.parent/b, qosd.slice/b by default.
[tenants.b]
cpu = { baseline = 0.25, burst = 0.5 }
EOF
}

prop() { systemctl show -P "$2" "$1"; }

# A line of `systemctl show` for the report.
show() { systemctl show -p "$2" "$1" | paste -sd' '; }

# check_value FILE WANT WHAT: FILE's first line is WANT now.
check_value() {
    local v=
    read -r v <"$1" 2>/dev/null
    report "  $3: $1 = ${v:-<unreadable>}"
    [[ $v == "$2" ]] || fail "$3: $1 is '${v:-<unreadable>}', want '$2'"
}

# check_prop UNIT PROPERTY WANT
check_prop() {
    local got
    got=$(prop "$1" "$2")
    [[ $got == "$3" ]] || fail "$1: $2=$got, want $3"
}

# has_words LIST WORD...: every WORD is in the space-separated LIST.
has_words() {
    local list=" $1 " w
    shift
    for w in "$@"; do
        [[ $list == *" $w "* ]] || return 1
    done
}

# The status report's cpu row of a tenant: "baseline limit".
status_cpu() {
    "$QOSD_BIN" status --json 2>>"$OUT/status.err" |
        jq -r --arg t "$1" '.tenants[] | select(.tenant == $t and .resource == "cpu") | "\(.baseline) \(.limit)"'
}

# watch_restored EVENT GROUP:FILE:WANT...: after EVENT, poll every FILE
# (of GROUP) for RESTORE_S seconds; report any other value seen (systemd
# wrote it; "gone" when the file disappeared: the controller was disabled
# above the group) and when qosd put WANT back; fail unless each ends, and
# stays, at WANT.
watch_restored() {
    local event=$1 start=${EPOCHREALTIME/./} i spec g f w v
    shift
    local -a specs=("$@") others=() back=()
    for i in "${!specs[@]}"; do others[i]=; back[i]=-1; done
    while ((${EPOCHREALTIME/./} - start < RESTORE_S * 1000000)); do
        for i in "${!specs[@]}"; do
            spec=${specs[i]}
            g=${spec%%:*} spec=${spec#*:}
            f=${spec%%:*} w=${spec#*:}
            v=gone
            [[ -e $CG/$g/$f ]] && { v=; read -r v <"$CG/$g/$f"; }
            if [[ $v != "$w" ]]; then
                [[ " ${others[i]} " == *" '$v' "* ]] || others[i]+=" '$v'"
                back[i]=-1
            elif ((back[i] < 0)); then
                back[i]=$((${EPOCHREALTIME/./} - start))
            fi
        done
        fsleep 0.1
    done
    for i in "${!specs[@]}"; do
        spec=${specs[i]}
        g=${spec%%:*} spec=${spec#*:}
        f=${spec%%:*} w=${spec#*:}
        if ((back[i] < 0)); then
            fail "$event: $g/$f is not '$w' ${RESTORE_S}s later (seen:${others[i]})"
        elif [[ -n ${others[i]} ]]; then
            report "  $event: $g/$f was${others[i]}; qosd put $w back after $(milli $((back[i] / 1000)))s"
        else
            report "  $event: $g/$f stayed $w (systemd did not touch it)"
        fi
    done
}

# knobs GROUP: its cpu.weight and cpu.max, or "no cpu files".
knobs() {
    if [[ -e $CG/$1/cpu.weight ]]; then
        cg_cpu_knobs "$1"
    else
        echo "no cpu files (cpu not enabled for it)"
    fi
}

main() {
    : >"$REPORT"
    report "qosd under systemd as PID 1 (the shipped unit + path drop-in; WatchdogSec=5s by drop-in for check 6)"
    local comm
    read -r comm </proc/1/comm
    report "PID 1: $comm ($(systemctl --version | head -n 1)), virtualization $(systemctl show -P Virtualization); scenario started at uptime $(cut -d' ' -f1 /proc/uptime)s"
    if [[ $comm != systemd ]]; then
        fail "PID 1 is '$comm', not systemd (is the '# vm-init: systemd' line in place?)"
        finish
    fi
    systemctl --failed --no-legend --plain --no-pager >"$OUT/failed-units.txt" 2>&1
    report "failed units at boot: $(awk '{print $1}' "$OUT/failed-units.txt" | paste -sd' ' | sed 's/^$/none/')"

    # --- the units --------------------------------------------------------
    mkdir -p "$TEST_DIR" "$UNIT_DIR/qosd.service.d"
    install -m 0644 "$VM_REPO/systemd/qosd.service" "$UNIT_DIR/qosd.service"
    sed -e "s|@QOSD_BIN@|$QOSD_BIN|g" -e "s|@CONFIG@|$CONFIG|g" "$UNITS_SRC/qosd-vm.conf" \
        >"$UNIT_DIR/qosd.service.d/10-vm.conf"
    install -m 0644 "$UNITS_SRC/qosd-watchdog.conf" "$UNIT_DIR/qosd.service.d/20-watchdog.conf"
    install -m 0644 "$UNITS_SRC/$A_UNIT" "$UNITS_SRC/$W" "$UNIT_DIR/"
    systemctl daemon-reload
    systemctl cat qosd.service >"$OUT/qosd.service.txt" 2>&1
    # The drop-ins must leave the shipped unit as it is but for the paths
    # and the watchdog.
    check_prop qosd.service Type notify
    check_prop qosd.service NotifyAccess main
    check_prop qosd.service Delegate yes
    check_prop qosd.service ProtectSystem strict
    check_prop qosd.service Restart on-failure
    check_prop qosd.service RestartUSec 2s
    report "unit: $(show qosd.service FragmentPath) $(show qosd.service DropInPaths)"

    # Tenant a's workload, in the slice systemd owns.
    systemd-run --quiet --unit=tenant-a-load --slice="$A_UNIT" -p WorkingDirectory=/tmp \
        stress-ng --cpu 2 --quiet || fail "systemd-run of tenant a's workload failed"
    # A dash in a slice's name nests it: tenant-a.slice is tenant.slice's
    # child, so its group is not /sys/fs/cgroup/tenant-a.slice. qosd's
    # `cgroup` is the group's path, so take it from systemd.
    A=$(prop "$A_UNIT" ControlGroup)
    A=${A#/}
    report "$A_UNIT: ControlGroup /$A; $(show "$A_UNIT" ActiveState)"
    [[ $A == tenant.slice/tenant-a.slice && -d $CG/$A ]] || fail "$A_UNIT's group is '/$A', want /tenant.slice/tenant-a.slice"
    systemd-run --quiet --unit=web-sleep --slice="$W" sleep 600 || fail "systemd-run in $W failed"
    [[ $(prop "$W" ControlGroup) == "/$W" ]] || fail "$W's group is $(prop "$W" ControlGroup), want /$W"
    report "before qosd: root cgroup.subtree_control: $(cat "$CG/cgroup.subtree_control"); $A: $(knobs "$A"); $W: $(knobs "$W")"

    # --- 1. start ---------------------------------------------------------
    write_config 0.5
    cp "$CONFIG" "$OUT/qosd-1.toml"
    local t0 t1 rc=0
    t0=${EPOCHREALTIME/./}
    systemctl start qosd.service || rc=$?
    t1=${EPOCHREALTIME/./}
    local start_ms=$(((t1 - t0) / 1000))
    report "1. systemctl start qosd: exit $rc after $(milli "$start_ms")s; $(show qosd.service ActiveState,SubState,Type,MainPID,NRestarts)"
    local inactive_exit main_start active_enter
    inactive_exit=$(prop qosd.service InactiveExitTimestampMonotonic)
    main_start=$(prop qosd.service ExecMainStartTimestampMonotonic)
    active_enter=$(prop qosd.service ActiveEnterTimestampMonotonic)
    if ((inactive_exit > 0 && main_start > 0 && active_enter > 0)); then
        report "   start to active $(milli $(((active_enter - inactive_exit) / 1000)))s, of which ExecStartPre (qosd check) $(milli $(((main_start - inactive_exit) / 1000)))s and qosd run to READY=1 $(milli $(((active_enter - main_start) / 1000)))s"
    fi
    if ((rc != 0)); then
        fail "systemctl start qosd exited $rc"
        systemctl status --no-pager qosd.service 2>&1 | tee -a "$REPORT"
        journalctl -b -u qosd.service --no-pager -o short-monotonic >"$OUT/qosd-journal.txt" 2>&1
        finish
    fi
    check_prop qosd.service ActiveState active
    check_prop qosd.service SubState running
    check_prop qosd.service Type notify
    # Only a started service shows its watchdog (the drop-in's 5 s).
    check_prop qosd.service WatchdogUSec 5s
    ((start_ms <= START_S * 1000)) || fail "systemctl start qosd took $(milli "$start_ms")s, want <= ${START_S}s"

    # --- 2. the contracts are written ---------------------------------------
    local took
    if took=$(wait_value "$CG/$A/cpu.weight" 50 5); then
        report "2. a (adopted $A): cpu.weight 50 after ${took}s"
    else
        fail "$A/cpu.weight is '$(cat "$CG/$A/cpu.weight" 2>/dev/null)' 5 s after start, want 50"
    fi
    wait_value "$CG/$A/cpu.max" "100000 100000" 3 >/dev/null
    check_value "$CG/$A/cpu.max" "100000 100000" "a's burst 1.0"
    wait_value "$CG/$W/cpu.weight" 30 3 >/dev/null
    check_value "$CG/$W/cpu.weight" 30 "web (adopted $W) baseline 0.3"
    wait_value "$CG/$B/cpu.weight" 25 3 >/dev/null
    check_value "$CG/$B/cpu.weight" 25 "b (owned) baseline 0.25"
    # b is idle: its cpu.max is its burst, or its baseline while the host
    # is busy (contended); either way qosd wrote it (the default is max).
    local bmax
    read -r bmax <"$CG/$B/cpu.max"
    report "  b (owned, idle): $B/cpu.max = $bmax"
    [[ $bmax == "50000 100000" || $bmax == "25000 100000" ]] ||
        fail "$B/cpu.max is '$bmax', want b's burst (50000 100000) or baseline (25000 100000)"
    local u0 u1 w0 w1 cores
    cpu_usage_r "$A"; u0=$REPLY; w0=${EPOCHREALTIME/./}
    fsleep 3
    cpu_usage_r "$A"; u1=$REPLY; w1=${EPOCHREALTIME/./}
    cores=$(((u1 - u0) * 1000 / (w1 - w0)))
    report "  a's workload (stress-ng --cpu 2) uses $(milli "$cores") cores under cpu.max 1.0"
    ((cores <= 1100)) || fail "a uses $(milli "$cores") cores, above its burst 1.0 (+10%)"
    ((cores >= 800)) || fail "a uses $(milli "$cores") cores; its workload should keep 1.0 busy"
    report "  qosd status --json: a's cpu baseline/limit: $(status_cpu a)"

    # --- 3. Delegate=yes ----------------------------------------------------
    local own owned xattr
    own=$(prop qosd.service ControlGroup)
    report "3. qosd.service's group: $own; controllers: $(cat "$CG$own/cgroup.controllers"); subtree_control: '$(cat "$CG$own/cgroup.subtree_control")'; owner $(stat -c %U:%G "$CG$own")"
    [[ $own == /system.slice/qosd.service ]] || fail "qosd's ControlGroup is $own, want /system.slice/qosd.service"
    has_words "$(cat "$CG$own/cgroup.controllers")" cpu io memory pids ||
        fail "qosd.service's group has controllers '$(cat "$CG$own/cgroup.controllers")', want cpu io memory pids delegated"
    has_words "$(cat "$CG/system.slice/cgroup.subtree_control")" cpu io memory pids ||
        fail "system.slice enables only '$(cat "$CG/system.slice/cgroup.subtree_control")'"
    grep -qx "$(prop qosd.service MainPID)" "$CG$own/cgroup.procs" || fail "qosd's MainPID is not in $own"
    xattr=$(/usr/bin/python3 -c 'import os, sys; print(os.getxattr(sys.argv[1], "user.delegate").decode())' "$CG$own" 2>&1)
    report "  user.delegate xattr on it: $xattr"
    [[ $xattr == 1 ]] || fail "no user.delegate=1 on $own ($xattr)"
    report "  root cgroup.subtree_control: $(cat "$CG/cgroup.subtree_control")"
    owned=$(find "$CG/qosd.slice" -mindepth 1 -maxdepth 1 -type d -printf '%f ' 2>/dev/null)
    report "  qosd created $CG/qosd.slice (agent.parent) with: ${owned:-nothing}; its subtree_control: $(cat "$CG/qosd.slice/cgroup.subtree_control" 2>/dev/null)"
    [[ -d $CG/$B ]] || fail "qosd did not create $CG/$B"

    # --- 4. systemd and qosd's values -----------------------------------------
    local drift0 drift1
    drift0=$(metric qosd_drift_corrections_total)
    report "4. systemd beside qosd's values (a: $(knobs "$A"); web: $(knobs "$W")); tenant.slice's subtree_control: $(cat "$CG/tenant.slice/cgroup.subtree_control")"
    systemctl daemon-reload
    watch_restored "daemon-reload" "$A:cpu.weight:50" "$A:cpu.max:100000 100000" "$W:cpu.weight:30" "$B:cpu.weight:25"
    drift1=$(metric qosd_drift_corrections_total)
    systemd-run --quiet --unit=tenant-a-sleep --slice="$A_UNIT" sleep 600 || fail "systemd-run in $A_UNIT failed"
    watch_restored "a new unit in $A_UNIT" "$A:cpu.weight:50" "$A:cpu.max:100000 100000" "$W:cpu.weight:30"
    report "  tenant.slice's subtree_control: $(cat "$CG/tenant.slice/cgroup.subtree_control")"
    report "  qosd_drift_corrections_total: ${drift0:-?} before, ${drift1:-?} after the daemon-reload, $(metric qosd_drift_corrections_total) after the new unit"

    # --- 5. reload ----------------------------------------------------------
    local pid
    pid=$(prop qosd.service MainPID)
    write_config 0.8
    cp "$CONFIG" "$OUT/qosd-2.toml"
    rc=0
    systemctl reload qosd.service || rc=$?
    ((rc == 0)) || fail "systemctl reload qosd exited $rc"
    if took=$(wait_value "$CG/$A/cpu.weight" 80 3); then
        report "5. reload with a's baseline 0.8: cpu.weight 80 after ${took}s; status: a's cpu baseline/limit $(status_cpu a)"
    else
        fail "$A/cpu.weight is '$(cat "$CG/$A/cpu.weight")' 3 s after systemctl reload, want 80"
    fi
    check_metric 'qosd_config_reloads_total{result="success"}' 1
    [[ $(prop qosd.service MainPID) == "$pid" ]] || fail "qosd's MainPID changed on reload"

    # A broken file: invalid TOML.
    write_config 0.3
    echo 'this is [not toml' >>"$CONFIG"
    cp "$CONFIG" "$OUT/qosd-3-broken.toml"
    rc=0
    "$QOSD_BIN" check --config "$CONFIG" >"$OUT/check-broken.txt" 2>&1 || rc=$?
    report "   qosd check on the broken file: exit $rc: $(grep -m1 error "$OUT/check-broken.txt")"
    ((rc != 0)) || fail "qosd check accepted invalid TOML"
    rc=0
    systemctl reload qosd.service || rc=$?
    report "   systemctl reload with the broken file: exit $rc (it reports success either way)"
    fsleep 2.5
    report "   2.5 s later: $(show qosd.service ActiveState,SubState,MainPID)"
    check_prop qosd.service ActiveState active
    [[ $(prop qosd.service MainPID) == "$pid" ]] || fail "qosd's MainPID changed after a broken reload"
    check_value "$CG/$A/cpu.weight" 80 "old contract in force"
    check_metric 'qosd_config_reloads_total{result="failure"}' 1
    check_metric 'qosd_config_reloads_total{result="success"}' 1
    # The good file back: a restart must find a valid one (ExecStartPre).
    cp "$OUT/qosd-2.toml" "$CONFIG"

    # --- 6. watchdog ----------------------------------------------------------
    # Times from systemd's own CLOCK_MONOTONIC stamps against /proc/uptime
    # (the same clock here, in 10 ms steps): the polling below only waits.
    local n0 n1 t_stop t_end up line state= sub= newpid=
    n0=$(prop qosd.service NRestarts)
    read -r up _ </proc/uptime
    kill -STOP "$pid"
    t_stop=$((${up%.*} * 1000000 + 10#${up#*.} * 10000))
    t_end=$((${EPOCHREALTIME/./} + (WATCHDOG_MAX_S + 10) * 1000000))
    while ((${EPOCHREALTIME/./} < t_end)); do
        while IFS='=' read -r line up; do
            case $line in
                ActiveState) state=$up ;;
                SubState) sub=$up ;;
                MainPID) newpid=$up ;;
            esac
        done < <(systemctl show -p ActiveState,SubState,MainPID qosd.service)
        [[ $state == active && $sub == running && $newpid != "$pid" && $newpid != 0 ]] && break
        fsleep 0.2
    done
    n1=$(prop qosd.service NRestarts)
    if ! [[ $state == active && $sub == running && $newpid != "$pid" ]]; then
        fail "qosd not restarted $((WATCHDOG_MAX_S + 10))s after SIGSTOP: $(show qosd.service ActiveState,SubState,MainPID,NRestarts,Result)"
        kill -CONT "$pid" 2>/dev/null
    else
        local fired_ms back_ms
        fired_ms=$((($(prop qosd.service ActiveExitTimestampMonotonic) - t_stop) / 1000))
        back_ms=$((($(prop qosd.service ActiveEnterTimestampMonotonic) - t_stop) / 1000))
        report "6. SIGSTOP of MainPID $pid: systemd ended it (watchdog) after $(milli "$fired_ms")s; active/running again with MainPID $newpid after $(milli "$back_ms")s; NRestarts $n0 -> $n1"
        # 5 s from the last ping, which came up to a tick (1 s, a little
        # more under TCG) before the SIGSTOP: measured 4.1..4.9 s.
        ((fired_ms >= 3000 && fired_ms <= 10000)) ||
            fail "the unit left active $(milli "$fired_ms")s after SIGSTOP, want WatchdogSec (5 s) less up to a tick: 3..10 s"
        ((back_ms <= WATCHDOG_MAX_S * 1000)) || fail "the restart took $(milli "$back_ms")s, want <= ${WATCHDOG_MAX_S}s"
        ((n1 == n0 + 1)) || fail "NRestarts went $n0 -> $n1, want +1"
        kill -0 "$pid" 2>/dev/null && fail "the hung qosd ($pid) is still there"
        local wd
        wd=$(journalctl -b -u qosd.service --no-pager -o cat 2>/dev/null | grep -m1 -i 'watchdog timeout')
        report "   journal: ${wd:-<no watchdog message>}; $(show qosd.service Result)"
        [[ -n $wd ]] || fail "no 'Watchdog timeout' for qosd.service in the journal"
        wait_value "$CG/$A/cpu.weight" 80 5 >/dev/null
        check_value "$CG/$A/cpu.weight" 80 "the restarted qosd holds a's contract"
        curl -sf -o /dev/null http://127.0.0.1:9477/metrics || fail "no metrics from the restarted qosd"
    fi

    # --- 7. stop ------------------------------------------------------------
    t0=${EPOCHREALTIME/./}
    rc=0
    systemctl stop qosd.service || rc=$?
    t1=${EPOCHREALTIME/./}
    report "7. systemctl stop qosd: exit $rc after $(milli $(((t1 - t0) / 1000)))s; $(show qosd.service ActiveState,Result,ExecMainStatus)"
    check_prop qosd.service Result success
    fsleep 1
    report "   1 s later: root subtree_control: $(cat "$CG/cgroup.subtree_control"); tenant.slice's: $(cat "$CG/tenant.slice/cgroup.subtree_control")"
    report "   a ($A): $(knobs "$A")"
    report "   web ($W): $(knobs "$W")"
    report "   b ($B): $(knobs "$B")"
    # The limits stay in the top-level groups: systemd cannot take cpu off
    # the root while qosd.slice uses it. tenant.slice is systemd's, and it
    # disables cpu there (see the report).
    check_value "$CG/$W/cpu.weight" 30 "web's limits stay after stop"
    check_value "$CG/$B/cpu.weight" 25 "b's limits stay after stop"
    if [[ ! -e $CG/$A/cpu.weight ]]; then
        report "   NOTE: a's limits are gone: when qosd.service stopped, systemd disabled cpu in tenant.slice's subtree_control"
    fi

    journalctl -b -u qosd.service --no-pager -o short-monotonic >"$OUT/qosd-journal.txt" 2>&1
    journalctl -b --no-pager -o short-monotonic >"$OUT/journal.txt" 2>&1
    systemctl stop tenant-a-load.service tenant-a-sleep.service web-sleep.service 2>/dev/null
    finish
}

main
