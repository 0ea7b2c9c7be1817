# shellcheck shell=bash
# Network helpers for the VM scenarios (sourced after tests/vm/lib.sh).
#
# The topology (net_setup): the guest's own network namespace is the "host"
# that qosd shapes; tenants' cgroups and their iperf3 clients live there.
#
#   host netns                  router netns                  sink netns
#   up0 10.10.1.1/24 ---veth--- r-up 10.10.1.2/24
#                               r-sink 10.10.2.1/24 ---veth--- eth0 10.10.2.2/24
#                               (egress: tbf at the link      (iperf3 servers,
#                                rate: the physical link)      answers ping)
#   vctr 10.10.3.1/24 ---veth--- eth0 10.10.3.2/24 in the ctr netns (a
#                                container-like tenant; the host forwards its
#                                traffic out of up0, no NAT)
#
# A veth runs at ~1 Gbit/s even under TCG, so the router's tbf is the real
# bottleneck ("the physical link"). Forwarding is on in the host and the
# router, and every namespace has a route back to the others.

NET_IF=up0                 # the host's uplink, the interface qosd shapes
NET_HOST_IP=10.10.1.1
NET_SINK_IP=10.10.2.2
NET_CTR_IP=10.10.3.2
NET_NAMESPACES=(router sink ctr)

# ns NAME CMD...: run CMD in network namespace NAME.
ns() {
    local n=$1
    shift
    ip netns exec "$n" "$@"
}

# net_setup RATE: build the topology above; RATE is the router's tbf rate in
# tc's syntax (e.g. 40mbit). Returns non-zero (after a FAIL) on error.
net_setup() {
    local rate=$1 n
    net_teardown
    {
        for n in "${NET_NAMESPACES[@]}"; do
            ip netns add "$n" && ip -n "$n" link set lo up
        done &&
            ip link add "$NET_IF" type veth peer name r-up netns router &&
            ip -n router link add r-sink type veth peer name eth0 netns sink &&
            ip link add vctr type veth peer name eth0 netns ctr &&
            ip addr add "$NET_HOST_IP/24" dev "$NET_IF" &&
            ip addr add 10.10.3.1/24 dev vctr &&
            ip -n router addr add 10.10.1.2/24 dev r-up &&
            ip -n router addr add 10.10.2.1/24 dev r-sink &&
            ip -n sink addr add "$NET_SINK_IP/24" dev eth0 &&
            ip -n ctr addr add "$NET_CTR_IP/24" dev eth0 &&
            ip link set "$NET_IF" up && ip link set vctr up &&
            ip -n router link set r-up up && ip -n router link set r-sink up &&
            ip -n sink link set eth0 up && ip -n ctr link set eth0 up &&
            ip route add 10.10.2.0/24 via 10.10.1.2 &&
            ip -n router route add 10.10.3.0/24 via "$NET_HOST_IP" &&
            ip -n sink route add default via 10.10.2.1 &&
            ip -n ctr route add default via 10.10.3.1 &&
            echo 1 >/proc/sys/net/ipv4/ip_forward &&
            ns router sh -c 'echo 1 >/proc/sys/net/ipv4/ip_forward' &&
            # The physical link: 50 ms of queue at the link rate.
            tc -n router qdisc replace dev r-sink root tbf rate "$rate" burst 20kb latency 50ms
    } >"$OUT/net-setup.txt" 2>&1 || {
        fail "could not build the test network (see $OUT/net-setup.txt): $(tail -n 3 "$OUT/net-setup.txt")"
        return 1
    }
    # Both ways through the router, and the ctr namespace through the host.
    if ! ping -c 1 -W 5 "$NET_SINK_IP" >/dev/null 2>&1 ||
        ! ns ctr busybox ping -c 1 -W 5 "$NET_SINK_IP" >/dev/null 2>&1; then
        fail "the test network does not route: host or ctr cannot ping the sink $NET_SINK_IP"
        return 1
    fi
}

net_teardown() {
    local n
    for n in "${NET_NAMESPACES[@]}"; do
        ip netns del "$n" 2>/dev/null
    done
    ip link del "$NET_IF" 2>/dev/null
    ip link del vctr 2>/dev/null
    nft delete table inet qosd 2>/dev/null
    return 0
}

# ping: busybox's (the host has no iputils-ping; busybox-static is a harness
# dependency). It prints "seq=N ttl=T time=X ms" per reply.
ping() { busybox ping "$@"; }

# --- iperf3 servers in the sink ----------------------------------------------

# sink_server PORT: start an iperf3 server in the sink on PORT and wait until
# it listens. Sets LAST_PID (the iperf3 process itself: `ip netns exec` execs
# it), and tracks it. Returns non-zero if it does not listen within 10 s.
sink_server() {
    local port=$1 i
    # Not through `ns`: a function in the background is a subshell, and $!
    # would be that shell's pid.
    ip netns exec sink iperf3 -s -p "$port" >"$OUT/iperf3-server-$port.txt" 2>&1 &
    LAST_PID=$!
    track "$LAST_PID"
    for ((i = 0; i < 100; i++)); do
        tcp_listening "$LAST_PID" "$port" && return 0
        fsleep 0.1
    done
    fail "iperf3 server on port $port did not listen within 10 s"
    return 1
}

# tcp_listening PID PORT: true if PORT is listening in PID's network
# namespace, from /proc/PID/net/tcp{,6}. Builtins only.
tcp_listening() {
    local hex _sl local_addr _rem st _rest f
    printf -v hex ':%04X' "$2"
    for f in "/proc/$1/net/tcp" "/proc/$1/net/tcp6"; do
        [[ -r $f ]] || continue
        while read -r _sl local_addr _rem st _rest; do
            [[ $local_addr == *"$hex" && $st == 0A ]] && return 0
        done <"$f"
    done
    return 1
}

# --- fork-free counters --------------------------------------------------------

# counter_r SPEC: read one byte counter into REPLY (empty when unreadable).
# SPEC is one of
#   rchar:PID         bytes PID read (/proc/PID/io): for a sink iperf3
#                     server, the TCP payload it received from its clients;
#   netdev:PID:IF:rx  rx_bytes (or tx) of IF in PID's network namespace;
#   file:PATH         a file holding one number (e.g. sysfs statistics);
#   busy              the guest's busy CPU time in microseconds (/proc/stat;
#                     the sampler gives its rate in cores, not Mbit/s).
# Builtins only.
counter_r() {
    local spec=$1 k v line pid ifname dir rx tx _f
    REPLY=
    case $spec in
        rchar:*)
            while read -r k v; do
                if [[ $k == rchar: ]]; then
                    REPLY=$v
                    return 0
                fi
            done <"/proc/${spec#rchar:}/io" 2>/dev/null
            ;;
        netdev:*)
            IFS=: read -r _f pid ifname dir <<<"$spec"
            while read -r line; do
                [[ $line == "$ifname:"* ]] || continue
                # "eth0:123 ..." has no space once the count is 8+ digits wide.
                read -r rx _f _f _f _f _f _f _f tx _f <<<"${line#*:}"
                if [[ $dir == rx ]]; then REPLY=$rx; else REPLY=$tx; fi
                return 0
            done <"/proc/$pid/net/dev" 2>/dev/null
            ;;
        file:*)
            read -r REPLY <"${spec#file:}" 2>/dev/null
            ;;
        busy)
            guest_cpu_r
            REPLY=$GUEST_BUSY
            ;;
    esac
    return 0
}

# start_net_sampler CSV NAME=SPEC...: every 250 ms append one line to CSV:
#   t_s, <name>..., <name>_Mbps...
# with the byte counters (see counter_r) and their rates in Mbit/s over the
# previous sample (<name>_cores for a `busy` counter: the guest's CPU load
# shows when the emulator, not the link, limits throughput); t_s is in
# seconds since $T0. A counter that cannot be read
# (its process is gone) keeps its previous value. Nothing in the loop forks.
# Sets SAMPLER_PID (stop it with stop_sampler).
start_net_sampler() {
    local csv=$1
    shift
    local -a names=() specs=()
    local arg header rates=
    for arg in "$@"; do
        names+=("${arg%%=*}")
        specs+=("${arg#*=}")
    done
    header=t_s
    for arg in "${!names[@]}"; do
        header+=",${names[arg]}"
        if [[ ${specs[arg]} == busy ]]; then rates+=",${names[arg]}_cores"; else rates+=",${names[arg]}_Mbps"; fi
    done
    echo "$header$rates" >"$csv"
    (
        local prev_t=0 t dt line rates i
        local -a cur prev=()
        while :; do
            t=${EPOCHREALTIME/./}
            dt=$((t - prev_t))
            milli_r $(((t - T0) / 1000))
            line=$REPLY
            rates=
            for i in "${!specs[@]}"; do
                counter_r "${specs[i]}"
                cur[i]=${REPLY:-${prev[i]:-0}}
                line+=",${cur[i]}"
                if ((prev_t > 0)); then
                    if [[ ${specs[i]} == busy ]]; then
                        milli_r $(((cur[i] - prev[i]) * 1000 / dt)) # cores
                    else
                        # bytes * 8 / us = Mbit/s; in thousandths for milli_r.
                        milli_r $(((cur[i] - prev[i]) * 8000 / dt))
                    fi
                    rates+=",$REPLY"
                else
                    rates+=,
                fi
            done
            prev=("${cur[@]}")
            prev_t=$t
            echo "$line$rates" >>"$csv"
            fsleep 0.25
        done
    ) &
    SAMPLER_PID=$!
    track "$SAMPLER_PID"
}

# wait_bytes SPEC BYTES SECONDS: wait until the counter SPEC has risen by at
# least BYTES (a workload is up and moving data); non-zero on timeout.
wait_bytes() {
    local start=${EPOCHREALTIME/./} v0
    counter_r "$1"
    v0=${REPLY:-0}
    while ((${EPOCHREALTIME/./} - start < $3 * 1000000)); do
        counter_r "$1"
        ((${REPLY:-0} - v0 >= $2)) && return 0
        fsleep 0.05
    done
    return 1
}

# mbit BYTES_PER_S: as Mbit/s with two decimals ("-" and "nan" pass through).
mbit() {
    case $1 in
        '' | - | nan) echo "${1:--}" ;;
        *) awk -v v="$1" 'BEGIN { printf "%.2f", v * 8 / 1e6 }' ;;
    esac
}

# bytes_per_s MBIT: Mbit/s as bytes per second (integer).
bytes_per_s() { awk -v v="$1" 'BEGIN { printf "%d", v * 1e6 / 8 }'; }

# --- ping ----------------------------------------------------------------------

# ping_stats FILE: "avg A p50 B p90 C max D ms, L% lost (N replies)" from
# busybox ping output (per-reply "time=X ms" lines and the summary).
ping_stats() {
    awk '
        /time=/ { for (i = 1; i <= NF; i++) if ($i ~ /^time=/) { v = substr($i, 6); t[n++] = v + 0; s += v } }
        / packet loss/ { for (i = 1; i <= NF; i++) if ($i ~ /%$/) loss = $i }
        END {
            if (n == 0) { printf "no replies (%s lost)\n", loss == "" ? "?" : loss; exit }
            # insertion sort: a few dozen samples
            for (i = 1; i < n; i++) { x = t[i]; for (j = i - 1; j >= 0 && t[j] > x; j--) t[j + 1] = t[j]; t[j + 1] = x }
            printf "avg %.1f p50 %.1f p90 %.1f max %.1f ms, %s lost (%d replies)\n",
                s / n, t[int(0.5 * (n - 1))], t[int(0.9 * (n - 1))], t[n - 1], loss == "" ? "?" : loss, n
        }' "$1"
}

# --- metrics -------------------------------------------------------------------

# metrics_save FILE: qosd's /metrics into FILE (empty when unreachable).
metrics_save() {
    curl -sf "http://${METRICS_ADDR:-127.0.0.1:9477}/metrics" >"$1" 2>/dev/null || : >"$1"
}

# metric_sum FILE NAME [LABEL=VALUE...]: the sum of every sample of NAME in a
# saved /metrics FILE whose labels include all the given ones, in any order
# ("" when there is none).
metric_sum() {
    local file=$1 name=$2
    shift 2
    awk -v name="$name" -v want="$*" '
        BEGIN { nw = split(want, w, " ") }
        /^#/ { next }
        {
            series = $1
            base = series; sub(/\{.*/, "", base)
            if (base != name) next
            labels = series; if (sub(/^[^{]*\{/, "", labels)) sub(/\}$/, "", labels); else labels = ""
            ok = 1
            for (i = 1; i <= nw; i++) {
                split(w[i], kv, "=")
                if (index("," labels ",", "," kv[1] "=\"" kv[2] "\",") == 0) ok = 0
            }
            if (ok) { sum += $NF; found = 1 }
        }
        END { if (found) printf "%.17g\n", sum }' "$file"
}

# --- tc / nft ------------------------------------------------------------------

# htb_present: true while up0's root qdisc is htb 1: (forks tc).
htb_present() { tc qdisc show dev "$NET_IF" 2>/dev/null | grep -q '^qdisc htb 1: root'; }

# nft_present: true while the inet qosd table exists (forks nft).
nft_present() { nft list table inet qosd >/dev/null 2>&1; }

# time_until CMD...: seconds (x.yyy) until CMD succeeds, polling every
# ~50 ms, into REPLY; "never" after NET_POLL_S (default 10) seconds. The time
# is taken after the successful check, so it errs long by up to one check.
time_until() {
    local start=${EPOCHREALTIME/./} now ok
    while :; do
        ok=0
        "$@" && ok=1
        now=${EPOCHREALTIME/./}
        if ((ok)); then
            milli_r $(((now - start) / 1000))
            return 0
        fi
        if ((now - start > ${NET_POLL_S:-10} * 1000000)); then
            REPLY=never
            return 1
        fi
        fsleep 0.05
    done
}
