#!/usr/bin/env bash
# timeout: 360
# Network egress noisy neighbour, three ways in the same VM run (the emulated
# machine is noisy: compare within one run):
#   none    no shaping on the host: the router's tbf (the physical link) is
#           the only bottleneck, and its FIFO is shared by every flow;
#   static  the tree qosd builds, written by hand with tc and nft (HTB class
#           per tenant, rate = baseline, ceil = burst, fq_codel leaves,
#           nftables classification by cgroup and by veth);
#   qosd    the agent builds and holds that tree from its config.
#
# Topology (tests/vm/netlib.sh): tenants' iperf3 clients in the guest's own
# netns send out of up0 through a "router" netns whose egress has a tbf at
# VM_LINK_RATE (default 20mbit: the physical link) to a "sink" netns running
# one iperf3 server per tenant. A "ctr" netns (a container-like tenant) sends
# through the host, which forwards its traffic from vctr out of up0.
#
# Contracts (link capacity 20 Mbit/s in [[host.links]]; the baselines are
# 60%, 15% and 15% of the link at any VM_LINK_RATE):
#   api   baseline 12 Mbit/s, burst 20: one iperf3 stream (+ ping in phase 2);
#   bulk  baseline  3 Mbit/s, burst 20: eight parallel iperf3 streams;
#   ctr   baseline  3 Mbit/s, burst 20: one stream from the ctr netns.
# Why 20 and not 40 Mbit/s: the emulated guest spends about 0.8 of its 2
# vCPUs moving 37 Mbit/s through HTB and nftables, and when the host gives
# the emulator less CPU for a few seconds (two runs: bulk alone at 30-33
# instead of 37 Mbit/s, with and without shaping) the check measured the
# emulator, not the shaper. Half the rate leaves half the CPU spare.
#
# Each way has the same phases (seconds from the way's start):
#   1 bulk alone     bulk's 8 streams run alone (measured after a 3 s settle);
#     api starts     api's stream starts beside the bursting bulk; we time how
#                    long until api's rate over the latest 250 ms sample
#                    reaches 90% of its baseline. (api's iperf3 is started
#                    first, before bulk, and frozen with cgroup.freeze once its
#                    data flows, then thawed here, so iperf3's start-up is not
#                    counted as the reaction);
#   2 both           steady state after a 3 s reaction window; ping from api's
#                    cgroup to the sink (every 200 ms) gives api's RTT under load;
#   3 api stopped    api's processes are killed (its group stays); we time how
#                    long until bulk is back above 80% of capacity and measure
#                    it after a 2 s settle;
#   4 ctr + bulk     one stream from the ctr netns beside bulk (forwarded
#                    traffic, classified by the veth it arrives on).
# With qosd, then: the drift checks. `tc qdisc del dev up0 root` and `nft
# delete table inet qosd` while the agent runs; we poll (every ~50 ms, with
# tc/nft) until the tree is back, and read qosd_drift_corrections_total.
#
# Rates: every 250 ms, without forking, the sampler reads rchar of each
# tenant's iperf3 server in the sink (/proc/PID/io: the TCP payload that
# tenant delivered), rx_bytes of the sink's eth0 (everything that crossed the
# link) and tx_bytes of up0 (timeline-<way>.csv). The same source serves every
# way (with no shaping there are no HTB classes to read). Payload is ~95.6% of
# the bits on the wire (1448 of 1514 bytes per full frame), so the thresholds,
# in wire bits, hold with that much to spare.
#
# Checks (with qosd): api >= 90% of its baseline in phase 2; bulk alone again
# in phase 3 >= 85% of capacity, as the median of its 250 ms samples (a cap by
# the shaper moves the median; a few slow samples, when the host starves the
# emulator, move only the mean). Phase 1 (bulk alone from its start) is
# reported, and WARNs below 85%: in one of seven runs at 20 Mbit/s its median
# was 15.25 while phase 3 of the same way, through the same tree (no tc run
# between), got 18.52; the six others gave 17.86-18.81. Phase 3 gave
# 17.82-18.87 in all seven. The tree holds nothing back there; the start of
# eight TCP streams through HTB in the emulator is my guess, not shown; ctr >= 90% of its baseline beside bulk and qosd's ctr transmit
# counter rose; the qdisc and the nft table are each restored within 2 ticks
# plus the repair's own tc or nft run (0.2-0.8 s under TCG): 3 s at a 1 s
# tick, measured from the deletion to the first poll that sees it back (one
# fresh-clone run measured 2.52 s; others 0.39-1.32 s); and the drift
# counter rises; qosd runs no tc or nft during the steady
# phase 2; promtool accepts /metrics. Reported: RTT under load, reaction
# times, bulk's recovery.
# The static way is checked the same way but only WARNs (a sanity check of
# the topology and thresholds); the none way is reported.
#
# Output (target/vm/out/<scenario>/): report.txt; timeline-<way>.csv;
# timeline.csv (lib.sh's timeline_*: phases 1-4 of every way, each tenant's
# Mbit/s beside its contract, every 0.5 s; tests/vm/run.sh charts it as
# timeline.png);
# ping-<way>.txt; shaping-<way>.txt (tc -s class, nft ruleset at the end of
# phase 2); qosd.toml, qosd-check.txt, qosd.log, metrics-*.txt, promtool.txt.
#
# Knobs: VM_WAYS="none static qosd", VM_ALONE_S=8, VM_BOTH_S=6, VM_AFTER_S=6,
# VM_CTR_S=5 (phase lengths), VM_LINK_RATE=20mbit (the router's tbf; a
# multiple of 20mbit, so that the baselines are whole Mbit/s).
set -uo pipefail
# shellcheck source=tests/vm/lib.sh
. "$VM_REPO/tests/vm/lib.sh"
# shellcheck source=tests/vm/netlib.sh
. "$VM_REPO/tests/vm/netlib.sh"
require_guest
cd /tmp || exit 1

WAYS=${VM_WAYS:-none static qosd}
ALONE_S=${VM_ALONE_S:-8}
BOTH_S=${VM_BOTH_S:-6}
AFTER_S=${VM_AFTER_S:-6}
CTR_S=${VM_CTR_S:-5}
LINK_RATE=${VM_LINK_RATE:-20mbit}
SETTLE_S=3   # after bulk starts, before measuring it alone
REACT_S=3    # api's reaction window before the steady "both" window
AFTER_SETTLE_S=2
TICK_MS=1000 # qosd's interval
CONFIG=/tmp/qosd.toml
PARENT=qosd.slice

CAP_MBIT=${LINK_RATE%mbit}
if [[ ! $CAP_MBIT =~ ^[1-9][0-9]*$ ]] || ((CAP_MBIT % 20 != 0)); then
    echo "VM_LINK_RATE=$LINK_RATE: want a multiple of 20mbit, e.g. 20mbit or 40mbit" >&2
    exit 1
fi
API_MBIT=$((CAP_MBIT * 3 / 5))
BULK_MBIT=$((CAP_MBIT * 3 / 20))
CTR_MBIT=$BULK_MBIT
PORT_API=5201
PORT_BULK=5202
PORT_CTR=5203

# Results, keyed "<way>.<name>" (rates in bytes per second of payload).
declare -A R

# The ways as timeline.csv names them (tests/vm/run.sh charts it).
declare -A WAY_LABEL=([none]="no shaping" [static]="static tc tree" [qosd]=qosd)

# mark VAR: seconds since T0 (x.yyy) into VAR, without forking.
mark() {
    milli_r $(((${EPOCHREALTIME/./} - T0) / 1000))
    printf -v "$1" %s "$REPLY"
}

add_time() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a + b }'; }

# pct_mbit MBIT PERCENT: PERCENT% of MBIT, in bytes per second.
pct_mbit() { awk -v m="$1" -v p="$2" 'BEGIN { printf "%d", m * p / 100 * 1e6 / 8 }'; }

# ticks SECONDS: "N.NN ticks (M ms)", or as given ("never", "-").
ticks() {
    case $1 in
        never) echo "never" ;;
        '' | -) echo "-" ;;
        *) awk -v s="$1" -v t=$TICK_MS 'BEGIN { printf "%.2f ticks (%d ms)", s * 1000 / t, s * 1000 }' ;;
    esac
}

write_config() {
    cat >"$CONFIG" <<EOF
[agent]
interval = "1s"
metrics_listen = "127.0.0.1:9477"

[[host.links]]
interface = "$NET_IF"
egress = "${CAP_MBIT}Mbit/s"

[tenants.api]
net = [{ interface = "$NET_IF", egress = { baseline = "${API_MBIT}Mbit/s", burst = "${CAP_MBIT}Mbit/s" } }]

[tenants.bulk]
net = [{ interface = "$NET_IF", egress = { baseline = "${BULK_MBIT}Mbit/s", burst = "${CAP_MBIT}Mbit/s" } }]

[tenants.ctr]
net = [{ interface = "$NET_IF", veth = "vctr", egress = { baseline = "${CTR_MBIT}Mbit/s", burst = "${CAP_MBIT}Mbit/s" } }]
EOF
    cp "$CONFIG" "$OUT/qosd.toml"
}

# The tree qosd builds, by hand: HTB root 1:, class 1:1 at the link's
# capacity, 1:2 for unclassified traffic (the capacity left after the
# baselines), one class per tenant (rate = baseline, ceil = burst, quantum
# 10 ms of the baseline so that the spare is shared in proportion to the
# baselines), fq_codel on every leaf; nftables sets skb->priority to the
# tenant's class: by socket cgroup for local traffic, by veth for forwarded.
static_tree() {
    local cap=${CAP_MBIT}mbit rest=$((CAP_MBIT - API_MBIT - BULK_MBIT - CTR_MBIT))
    ((rest > 0)) || rest=1
    {
        tc qdisc replace dev "$NET_IF" root handle 1: htb default 2 &&
            tc class replace dev "$NET_IF" parent 1: classid 1:1 htb rate "$cap" ceil "$cap" &&
            tc class replace dev "$NET_IF" parent 1:1 classid 1:2 htb rate "${rest}mbit" ceil "$cap" quantum $((rest * 1250)) &&
            tc class replace dev "$NET_IF" parent 1:1 classid 1:10 htb rate "${API_MBIT}mbit" ceil "$cap" quantum $((API_MBIT * 1250)) &&
            tc class replace dev "$NET_IF" parent 1:1 classid 1:11 htb rate "${BULK_MBIT}mbit" ceil "$cap" quantum $((BULK_MBIT * 1250)) &&
            tc class replace dev "$NET_IF" parent 1:1 classid 1:12 htb rate "${CTR_MBIT}mbit" ceil "$cap" quantum $((CTR_MBIT * 1250)) &&
            tc qdisc replace dev "$NET_IF" parent 1:2 handle 2: fq_codel &&
            tc qdisc replace dev "$NET_IF" parent 1:10 handle 10: fq_codel &&
            tc qdisc replace dev "$NET_IF" parent 1:11 handle 11: fq_codel &&
            tc qdisc replace dev "$NET_IF" parent 1:12 handle 12: fq_codel &&
            nft -f - <<EOF
table inet qosd {
    chain output {
        type filter hook output priority mangle; policy accept;
        oifname "$NET_IF" socket cgroupv2 level 2 "$PARENT/api" meta priority set 1:10
        oifname "$NET_IF" socket cgroupv2 level 2 "$PARENT/bulk" meta priority set 1:11
        oifname "$NET_IF" socket cgroupv2 level 2 "$PARENT/ctr" meta priority set 1:12
    }
    chain forward {
        type filter hook forward priority mangle; policy accept;
        iifname "vctr" oifname "$NET_IF" meta priority set 1:12
    }
}
EOF
    } >"$OUT/static-tree.txt" 2>&1
}

clear_shaping() {
    tc qdisc del dev "$NET_IF" root 2>/dev/null
    nft delete table inet qosd 2>/dev/null
    return 0
}

# shaping_snapshot WAY LABEL: tc class/qdisc counters and the nft ruleset,
# appended to shaping-WAY.txt (forks: call at phase boundaries).
shaping_snapshot() {
    {
        echo "=== $2"
        tc -s qdisc show dev "$NET_IF"
        tc -s -d class show dev "$NET_IF"
        nft list table inet qosd 2>&1
        echo "router tbf:"
        tc -n router -s qdisc show dev r-sink
    } >>"$OUT/shaping-$1.txt" 2>&1
}

# Remove the tenant groups (and their processes).
clear_groups() {
    local g
    for g in api bulk ctr; do cg_destroy "$PARENT/$g"; done
    [[ -d $CG/$PARENT ]] && rmdir "$CG/$PARENT" 2>/dev/null
    return 0
}

# wait_groups SECONDS: until qosd has created every tenant's group.
wait_groups() {
    local i g ok
    for ((i = 0; i < $1 * 10; i++)); do
        ok=1
        for g in api bulk ctr; do [[ -d $CG/$PARENT/$g ]] || ok=0; done
        ((ok)) && return 0
        fsleep 0.1
    done
    return 1
}

# drift_checks: with the agent running, delete its qdisc, then its nft table,
# and time how long until each is back; read the drift counter around each.
drift_checks() {
    local m0 m1 f=$OUT/metrics-drift.txt
    metrics_save "$f"
    m0=$(metric_sum "$f" qosd_drift_corrections_total)
    R[qosd.drift0]=${m0:-?}
    say "drift: deleting the root qdisc of $NET_IF"
    tc qdisc del dev "$NET_IF" root || fail "drift check: tc qdisc del failed"
    time_until htb_present
    R[qosd.qdisc_back]=$REPLY
    fsleep 0.3
    R[qosd.tree_after]=$(tc class show dev "$NET_IF" | awk '$2 == "htb" { print $3 }' | sort | tr '\n' ' ')
    metrics_save "$f"
    m1=$(metric_sum "$f" qosd_drift_corrections_total)
    R[qosd.drift1]=${m1:-?}
    say "drift: deleting the nft table inet qosd"
    nft delete table inet qosd || fail "drift check: nft delete table failed"
    time_until nft_present
    R[qosd.nft_back]=$REPLY
    fsleep 0.3
    metrics_save "$f"
    R[qosd.drift2]=$(metric_sum "$f" qosd_drift_corrections_total)
    R[qosd.drift2]=${R[qosd.drift2]:-?}
}

# metric_delta A_FILE B_FILE NAME [LABELS...]: B - A of a summed metric ("?").
metric_delta() {
    local a b
    a=$(metric_sum "$1" "${@:3}")
    b=$(metric_sum "$2" "${@:3}")
    if [[ -n $a && -n $b ]]; then awk -v a="$a" -v b="$b" 'BEGIN { printf "%.17g", b - a }'; else echo "?"; fi
}

# run_way none|static|qosd: one pass over all phases; fills R[way.*].
# Nothing forks inside a measurement window but the starts of bulk's iperf3
# and of ping (the analysis runs at the end).
run_way() {
    local way=$1 csv=$OUT/timeline-$1.csv
    local t_alone t_api t_both t_both_end t_stop t_end t_ctr t_ctr_end srv_api srv_bulk srv_ctr
    local mb0=$OUT/metrics-both-start.txt mb1=$OUT/metrics-both-end.txt mc0=$OUT/metrics-ctr-start.txt mc1=$OUT/metrics-ctr-end.txt
    say "=== way: $way"
    clear_shaping
    clear_groups
    if [[ $way == qosd ]]; then
        write_config
        if ! "$QOSD_BIN" check --config "$CONFIG" >"$OUT/qosd-check.txt" 2>&1; then
            fail "qosd check rejected the config ($OUT/qosd.toml):"
            tee -a "$REPORT" <"$OUT/qosd-check.txt"
            return 1
        fi
        start_qosd "$CONFIG" "$OUT/qosd.log" || return 1
        wait_groups 10 || { fail "qosd did not create $PARENT/{api,bulk,ctr} within 10 s"; stop_qosd; return 1; }
        NET_POLL_S=10 time_until htb_present || fail "qosd: no htb root qdisc on $NET_IF within 10 s"
        R[qosd.tree_up]=$REPLY
        NET_POLL_S=5 time_until nft_present || fail "qosd: no nft table inet qosd within 5 s of the qdisc"
    else
        mkdir -p "$CG/$PARENT/api" "$CG/$PARENT/bulk" "$CG/$PARENT/ctr"
        if [[ $way == static ]] && ! static_tree; then
            fail "static: could not build the tree (see $OUT/static-tree.txt): $(tail -n 3 "$OUT/static-tree.txt")"
            clear_groups
            return 1
        fi
    fi

    sink_server $PORT_API || return 1
    srv_api=$LAST_PID
    sink_server $PORT_BULK || return 1
    srv_bulk=$LAST_PID
    sink_server $PORT_CTR || return 1
    srv_ctr=$LAST_PID
    T0=$(now_us)
    start_net_sampler "$csv" api=rchar:$srv_api bulk=rchar:$srv_bulk ctr=rchar:$srv_ctr \
        link=netdev:$srv_api:eth0:rx up0=file:/sys/class/net/$NET_IF/statistics/tx_bytes guest=busy

    # api's stream, up and moving data, then frozen until "api starts".
    cg_spawn "$PARENT/api" iperf3 -c "$NET_SINK_IP" -p $PORT_API -t 600 -i 0 >"/tmp/iperf3-api-$way.txt" 2>&1
    track "$LAST_PID"
    wait_bytes "rchar:$srv_api" 1000000 20 || fail "$way: api's iperf3 moved no data within 20 s"
    cg_freeze "$PARENT/api" 1
    fsleep 1 # its socket buffer drains

    # Phase 1: bulk alone.
    local label=${WAY_LABEL[$way]}
    timeline_phase "$label" "bulk alone"
    timeline_start "$OUT/timeline.csv" net "api:$API_MBIT:$CAP_MBIT:rchar:$srv_api" \
        "bulk:$BULK_MBIT:$CAP_MBIT:rchar:$srv_bulk" "ctr:$CTR_MBIT:$CAP_MBIT:rchar:$srv_ctr"
    mark t_alone
    cg_spawn "$PARENT/bulk" iperf3 -c "$NET_SINK_IP" -p $PORT_BULK -P 8 -t 600 -i 0 >"/tmp/iperf3-bulk-$way.txt" 2>&1
    track "$LAST_PID"
    fsleep "$ALONE_S"

    # api starts beside the bursting bulk.
    mark t_api
    timeline_phase "$label" "api joins"
    cg_freeze "$PARENT/api" 0
    fsleep "$REACT_S"

    # Phase 2: both, steady; ping from api's group through it.
    [[ $way == qosd ]] && metrics_save "$mb0"
    mark t_both
    timeline_phase "$label" "both"
    cg_spawn "$PARENT/api" busybox ping -i 0.2 -c $((BOTH_S * 5 - 1)) -W 2 "$NET_SINK_IP" >"$OUT/ping-$way.txt" 2>&1
    local ping_pid=$LAST_PID
    fsleep "$BOTH_S"
    mark t_both_end
    [[ $way == qosd ]] && metrics_save "$mb1"
    wait "$ping_pid"
    shaping_snapshot "$way" "end of phase 2 (both)"

    # Phase 3: api stops (its group stays, idle).
    cg_kill "$PARENT/api"
    mark t_stop
    timeline_phase "$label" "api stopped"
    fsleep "$AFTER_S"
    mark t_end

    # Phase 4: one stream from the ctr netns (forwarded), beside bulk.
    timeline_phase "$label" "ctr joins"
    cg_spawn "$PARENT/ctr" ip netns exec ctr iperf3 -c "$NET_SINK_IP" -p $PORT_CTR -t 600 -i 0 >"/tmp/iperf3-ctr-$way.txt" 2>&1
    track "$LAST_PID"
    wait_bytes "rchar:$srv_ctr" 100000 20 || fail "$way: ctr's iperf3 moved no data within 20 s"
    fsleep 1
    [[ $way == qosd ]] && metrics_save "$mc0"
    mark t_ctr
    timeline_phase "$label" "ctr + bulk"
    fsleep "$CTR_S"
    mark t_ctr_end
    timeline_stop
    [[ $way == qosd ]] && metrics_save "$mc1"
    shaping_snapshot "$way" "end of phase 4 (ctr + bulk)"
    cg_kill "$PARENT/ctr"

    if [[ $way == qosd ]]; then
        drift_checks
        metrics_save "$OUT/metrics-end.txt"
        stop_qosd
    fi
    stop_sampler
    cg_kill "$PARENT/bulk"
    kill "$srv_api" "$srv_bulk" "$srv_ctr" 2>/dev/null
    wait "$srv_api" "$srv_bulk" "$srv_ctr" 2>/dev/null
    clear_shaping
    clear_groups

    # Analysis, from the timeline.
    R[$way.alone_bulk]=$(rate_between "$csv" bulk "$(add_time "$t_alone" $SETTLE_S)" "$t_api")
    R[$way.alone_bulk_median]=$(median_rate_between "$csv" bulk "$(add_time "$t_alone" $SETTLE_S)" "$t_api")
    R[$way.alone_link]=$(rate_between "$csv" link "$(add_time "$t_alone" $SETTLE_S)" "$t_api")
    R[$way.react]=$(time_to_rate "$csv" api "$t_api" "$(pct_mbit $API_MBIT 90)")
    R[$way.both_api]=$(rate_between "$csv" api "$t_both" "$t_both_end")
    R[$way.both_bulk]=$(rate_between "$csv" bulk "$t_both" "$t_both_end")
    R[$way.both_link]=$(rate_between "$csv" link "$t_both" "$t_both_end")
    R[$way.after_bulk]=$(rate_between "$csv" bulk "$(add_time "$t_stop" $AFTER_SETTLE_S)" "$t_end")
    R[$way.after_bulk_median]=$(median_rate_between "$csv" bulk "$(add_time "$t_stop" $AFTER_SETTLE_S)" "$t_end")
    R[$way.recover]=$(time_to_rate "$csv" bulk "$t_stop" "$(pct_mbit $CAP_MBIT 80)")
    R[$way.ctr_ctr]=$(rate_between "$csv" ctr "$t_ctr" "$t_ctr_end")
    R[$way.ctr_bulk]=$(rate_between "$csv" bulk "$t_ctr" "$t_ctr_end")
    R[$way.rtt]=$(ping_stats "$OUT/ping-$way.txt")
    R[$way.cpu]=$(for w in "$(add_time "$t_alone" $SETTLE_S) $t_api" "$t_both $t_both_end" "$(add_time "$t_stop" $AFTER_SETTLE_S) $t_end" "$t_ctr $t_ctr_end"; do
        # shellcheck disable=SC2086 # two words: the window.
        rate_between "$csv" guest $w
    done | awk '{ printf("%s%.2f", (NR > 1 ? " / " : ""), $1 / 1e6) }')
    if [[ $way == qosd ]]; then
        local dt
        dt=$(awk -v a="$t_both" -v b="$t_both_end" 'BEGIN { print b - a }')
        R[qosd.inv_tc]=$(metric_delta "$mb0" "$mb1" qosd_network_shaper_invocations_total tool=tc)
        R[qosd.inv_nft]=$(metric_delta "$mb0" "$mb1" qosd_network_shaper_invocations_total tool=nft)
        R[qosd.ticks_both]=$(metric_delta "$mb0" "$mb1" qosd_tick_duration_seconds_count)
        R[qosd.tx_api]=$(metric_delta "$mb0" "$mb1" qosd_tenant_network_transmit_bytes_total tenant=api interface=$NET_IF)
        R[qosd.tx_bulk]=$(metric_delta "$mb0" "$mb1" qosd_tenant_network_transmit_bytes_total tenant=bulk interface=$NET_IF)
        R[qosd.tx_ctr]=$(metric_delta "$mc0" "$mc1" qosd_tenant_network_transmit_bytes_total tenant=ctr interface=$NET_IF)
        R[qosd.tx_api_rate]=$(awk -v b="${R[qosd.tx_api]}" -v t="$dt" 'BEGIN { if (b ~ /^[0-9.e+]+$/ && t > 0) printf "%.0f", b / t; else print "-" }')
        R[qosd.tx_bulk_rate]=$(awk -v b="${R[qosd.tx_bulk]}" -v t="$dt" 'BEGIN { if (b ~ /^[0-9.e+]+$/ && t > 0) printf "%.0f", b / t; else print "-" }')
        R[qosd.contended]=$(metric_sum "$mb1" qosd_resource_contended resource=network device=$NET_IF)
    fi
    echo "  marks (s since way start): bulk_start=$t_alone api_start=$t_api both=$t_both..$t_both_end api_stop=$t_stop end=$t_end ctr=$t_ctr..$t_ctr_end" \
        >"$OUT/marks-$way.txt"
    say "$way: bulk alone $(mbit "${R[$way.alone_bulk]}"); both: api $(mbit "${R[$way.both_api]}") bulk $(mbit "${R[$way.both_bulk]}"); api at 90% after ${R[$way.react]} s; after: bulk $(mbit "${R[$way.after_bulk]}") (back after ${R[$way.recover]} s); ctr $(mbit "${R[$way.ctr_ctr]}") beside bulk $(mbit "${R[$way.ctr_bulk]}") Mbit/s; rtt ${R[$way.rtt]}"
}

# v WAY KEY: a result, or "-" when that way did not run.
v() { echo "${R[$1.$2]:--}"; }
# vm WAY KEY: a rate as Mbit/s.
vm() { mbit "$(v "$1" "$2")"; }

has_way() { [[ " $WAYS " == *" $1 "* ]]; }

# row7 LABEL A B C D E F: one line of the side-by-side table.
row7() { printf '%-26s | %-8s %-8s | %-8s %-8s | %-8s %-8s' "$@"; }

print_report() {
    local row
    report "Network egress noisy neighbour: link $NET_IF, capacity ${CAP_MBIT} Mbit/s (router tbf $LINK_RATE)"
    report "api: baseline $API_MBIT, burst $CAP_MBIT (1 stream); bulk: baseline $BULK_MBIT, burst $CAP_MBIT (8 streams); ctr: baseline $CTR_MBIT, burst $CAP_MBIT (1 stream, forwarded from vctr)"
    report "Mbit/s of TCP payload received by each tenant's iperf3 server in the sink (rchar); 'link' = the sink's eth0 rx (wire bytes)"
    report "idle RTT host -> sink: ${R[idle_rtt]:-?}"
    report ""
    report "$(printf '%-26s | %-17s | %-17s | %-17s' 'phase (Mbit/s)' 'no shaping' 'static tree' 'qosd')"
    report "$(row7 '' api bulk api bulk api bulk)"
    report "$(printf -- '-%.0s' {1..86})"
    report "$(row7 '1 bulk alone' - "$(vm none alone_bulk)" - "$(vm static alone_bulk)" - "$(vm qosd alone_bulk)")"
    report "$(row7 '  median of 250 ms samples' - "$(vm none alone_bulk_median)" - "$(vm static alone_bulk_median)" - "$(vm qosd alone_bulk_median)")"
    report "$(row7 '2 both (steady)' "$(vm none both_api)" "$(vm none both_bulk)" \
        "$(vm static both_api)" "$(vm static both_bulk)" "$(vm qosd both_api)" "$(vm qosd both_bulk)")"
    report "$(row7 '3 api stopped' - "$(vm none after_bulk)" - "$(vm static after_bulk)" - "$(vm qosd after_bulk)")"
    report "$(row7 '  median of 250 ms samples' - "$(vm none after_bulk_median)" - "$(vm static after_bulk_median)" - "$(vm qosd after_bulk_median)")"
    report "$(row7 '4 ctr + bulk (ctr, bulk)' "$(vm none ctr_ctr)" "$(vm none ctr_bulk)" \
        "$(vm static ctr_ctr)" "$(vm static ctr_bulk)" "$(vm qosd ctr_ctr)" "$(vm qosd ctr_bulk)")"
    report "$(printf '%-26s | %-17s | %-17s | %-17s' '  link in 1 / in 2' "$(vm none alone_link) / $(vm none both_link)" \
        "$(vm static alone_link) / $(vm static both_link)" "$(vm qosd alone_link) / $(vm qosd both_link)")"
    report ""
    report "guest CPU busy (cores of 2) in phases 1 / 2 / 3 / 4: none $(v none cpu); static $(v static cpu); qosd $(v qosd cpu)"
    report ""
    report "Reaction times (interval 1 s; rates over the latest 250 ms sample):"
    for row in none static qosd; do
        has_way "$row" || continue
        report "$(printf '  %-7s api starts -> api >= 90%% of baseline: %-24s api stops -> bulk > 80%% of capacity: %s' \
            "$row:" "$(ticks "$(v "$row" react)")" "$(ticks "$(v "$row" recover)")")"
    done
    report ""
    report "api's RTT under load (busybox ping from api's cgroup to the sink, every 200 ms, phase 2):"
    for row in none static qosd; do
        has_way "$row" || continue
        report "$(printf '  %-7s %s' "$row:" "$(v "$row" rtt)")"
    done
    if has_way qosd && [[ -n ${R[qosd.exit]:-} ]]; then
        report ""
        report "qosd:"
        report "  tree up $(v qosd tree_up) s after /metrics answered"
        report "  its own view in phase 2 (transmit bytes, wire): api $(vm qosd tx_api_rate), bulk $(vm qosd tx_bulk_rate) Mbit/s; network contended: $(v qosd contended)"
        report "  tc/nft runs during phase 2 ($(v qosd ticks_both) ticks): tc +$(v qosd inv_tc), nft +$(v qosd inv_nft)"
        report "  ctr transmit bytes during phase 4: +$(v qosd tx_ctr)"
        report "  drift: qdisc deleted -> htb back after $(ticks "$(v qosd qdisc_back)"); classes then: $(v qosd tree_after)"
        report "         nft table deleted -> back after $(ticks "$(v qosd nft_back)")"
        report "         qosd_drift_corrections_total: $(v qosd drift0) -> $(v qosd drift1) (qdisc) -> $(v qosd drift2) (nft)"
        report "  exit status after SIGTERM: ${R[qosd.exit]}"
        report "  memory before SIGTERM: VmRSS ${R[qosd.VmRSS]:-?} kB, peak VmHWM ${R[qosd.VmHWM]:-?} kB"
        [[ -f $OUT/metrics-end.txt ]] && report "  tick cost in the VM: $(tick_cost "$OUT/metrics-end.txt")"
        [[ -f $OUT/metrics-both-end.txt ]] &&
            report "  tick cost in phase 2 (steady, links read, nothing to change): $(tick_cost "$OUT/metrics-both-end.txt" "$OUT/metrics-both-start.txt")"
    fi
    report ""
    for row in none static qosd; do
        if [[ -f $OUT/marks-$row.txt ]]; then report "$row $(cat "$OUT/marks-$row.txt")"; fi
    done
    report ""
}

# warn_split WAY: ctr and bulk have equal weights (baseline 5 each), so in
# phase 4 HTB should share the spare about equally; report when one gets more
# than 1.5 times the other (not a contract breach: both are above baseline).
warn_split() {
    local c b
    c=$(v "$1" ctr_ctr)
    b=$(v "$1" ctr_bulk)
    awk -v c="$c" -v b="$b" 'BEGIN { exit !(c ~ /^[0-9]+$/ && b ~ /^[0-9]+$/ && c > 0 && b > 0 && (c > 1.5 * b || b > 1.5 * c)) }' &&
        report "WARN: $1: in phase 4 the equal-weight tenants ctr and bulk split the link $(mbit "$c"):$(mbit "$b") Mbit/s (spare not shared by weight; see the class quanta in $OUT/shaping-$1.txt)"
    return 0
}

# check_way WAY fail|warn: the contract checks on one way's numbers.
check_way() {
    local way=$1 how=$2 msg
    local -a bad=()
    ge "$(v "$way" both_api)" "$(pct_mbit $API_MBIT 90)" ||
        bad+=("phase 2: api got $(vm "$way" both_api) Mbit/s beside bulk (want >= 90% of its baseline: $(mbit "$(pct_mbit $API_MBIT 90)"))")
    ge "$(v "$way" after_bulk_median)" "$(pct_mbit $CAP_MBIT 85)" ||
        bad+=("phase 3: bulk, alone again, got a median of $(vm "$way" after_bulk_median) Mbit/s over its 250 ms samples, mean $(vm "$way" after_bulk) (want a median >= 85% of capacity: $(mbit "$(pct_mbit $CAP_MBIT 85)"))")
    ge "$(v "$way" ctr_ctr)" "$(pct_mbit $CTR_MBIT 90)" ||
        bad+=("phase 4: ctr got $(vm "$way" ctr_ctr) Mbit/s beside bulk (want >= 90% of its baseline: $(mbit "$(pct_mbit $CTR_MBIT 90)"))")
    for msg in "${bad[@]}"; do
        if [[ $how == fail ]]; then fail "$way: $msg"; else report "WARN: $way: $msg"; fi
    done
}

check_results() {
    if has_way none && ge "$(v none both_api)" "$(pct_mbit $API_MBIT 50)"; then
        report "WARN: without shaping api got $(vm none both_api) Mbit/s beside bulk (>= 50% of its baseline): the neighbour was not noisy enough to show the effect"
    fi
    if has_way static && [[ -n ${R[static.both_api]:-} ]]; then
        check_way static warn
        warn_split static
    fi
    has_way qosd || return 0
    [[ -n ${R[qosd.both_api]:-} ]] || { fail "the qosd way did not complete"; return; }
    check_way qosd fail
    ge "$(v qosd alone_bulk_median)" "$(pct_mbit $CAP_MBIT 85)" ||
        report "WARN: qosd: phase 1: bulk alone got a median of $(vm qosd alone_bulk_median) Mbit/s (< 85% of capacity); phase 3, bulk alone again, is the checked one"
    warn_split qosd
    if [[ $(v qosd inv_tc) != 0 || $(v qosd inv_nft) != 0 ]]; then
        fail "qosd ran tc +$(v qosd inv_tc) and nft +$(v qosd inv_nft) times during the steady phase 2 (want none while nothing changes)"
    fi
    if [[ -s $OUT/metrics-end.txt ]]; then
        promtool check metrics <"$OUT/metrics-end.txt" >"$OUT/promtool.txt" 2>&1 ||
            fail "promtool check metrics rejected the agent's /metrics (see $OUT/promtool.txt): $(head -n 3 "$OUT/promtool.txt")"
    else
        fail "no /metrics saved from qosd"
    fi
    ge "$(v qosd tx_ctr)" 1 ||
        fail "qosd_tenant_network_transmit_bytes_total{tenant=\"ctr\"} did not rise while ctr sent (delta $(v qosd tx_ctr))"
    # 2 ticks, and the repair's own tc or nft run under TCG.
    local repair_max_s=3.0
    le "$(v qosd qdisc_back)" "$repair_max_s" ||
        fail "drift: the root qdisc was back after $(ticks "$(v qosd qdisc_back)") (want <= 2 ticks + 1 s for tc)"
    le "$(v qosd nft_back)" "$repair_max_s" ||
        fail "drift: the nft table was back after $(ticks "$(v qosd nft_back)") (want <= 2 ticks + 1 s for nft)"
    awk -v a="$(v qosd drift0)" -v b="$(v qosd drift1)" 'BEGIN { exit !(a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > a) }' ||
        fail "drift: qosd_drift_corrections_total did not rise when the qdisc was deleted ($(v qosd drift0) -> $(v qosd drift1))"
    awk -v a="$(v qosd drift1)" -v b="$(v qosd drift2)" 'BEGIN { exit !(a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > a) }' ||
        fail "drift: qosd_drift_corrections_total did not rise when the nft table was deleted ($(v qosd drift1) -> $(v qosd drift2))"
}

main() {
    : >"$REPORT"
    local way
    net_setup "$LINK_RATE" || finish
    R[idle_rtt]=$(ping -c 5 -i 0.2 "$NET_SINK_IP" >"$OUT/ping-idle.txt" 2>&1; ping_stats "$OUT/ping-idle.txt")
    for way in $WAYS; do
        run_way "$way" || say "way $way did not complete"
    done
    print_report
    check_results
    finish
}

main
