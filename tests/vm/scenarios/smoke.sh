#!/usr/bin/env bash
# timeout: 120
# Smoke test of the VM harness itself: the guest has its own cgroup v2 with
# the controllers qosd needs, the throttled disk, the scratch disk, ext4,
# module autoloading for tc and nft, and the built binaries.
set -uo pipefail
# shellcheck source=tests/vm/lib.sh
. "$VM_REPO/tests/vm/lib.sh"
require_guest

report "kernel: $(uname -r)"
report "cgroup controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
for c in cpu io memory; do
    grep -qw "$c" /sys/fs/cgroup/cgroup.controllers || fail "controller $c missing"
done
if [[ -b /dev/vda ]]; then
    report "disk: /dev/vda $(cat /sys/block/vda/size) sectors"
else
    fail "no /dev/vda"
fi
# The scratch disk (unthrottled, for the memory scenario's page-cache flood)
# and ext4 (from the initramfs).
if [[ -b /dev/vdb ]]; then
    report "scratch disk: /dev/vdb $(cat /sys/block/vdb/size) sectors"
else
    fail "no scratch disk /dev/vdb"
fi
grep -qw ext4 /proc/filesystems || fail "no ext4 in /proc/filesystems (module missing from the initramfs?)"
ip link add vm-smoke0 type veth peer name vm-smoke1 || fail "cannot create a veth pair"
tc qdisc add dev vm-smoke0 root tbf rate 10mbit burst 32k latency 50ms || fail "tc tbf (module autoload) failed"
nft add table inet vmsmoke || fail "nft add table failed"
ip link del vm-smoke0 2>/dev/null
if [[ -x $QOSD_BIN ]]; then report "qosd: $QOSD_BIN present"; else report "qosd: $QOSD_BIN missing (not needed here)"; fi
finish
