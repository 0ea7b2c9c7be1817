#!/usr/bin/env bash
# timeout: 120
# `qosd calibrate` on a real device: the guest's /dev/vda is a scratch disk
# that QEMU throttles to 50 MB/s (52428800 B/s, reads and writes together).
# Checked:
#   - it refuses to write to the device without --overwrite-device;
#   - with it, the measured sequential read and write bandwidth are within
#     25% of the throttle, and the printed [[host.disks]] block is a config
#     that `qosd check` accepts.
set -uo pipefail
# shellcheck source=tests/vm/lib.sh
. "$VM_REPO/tests/vm/lib.sh"
require_guest

THROTTLE=52428800
SECONDS_PER_TEST=${VM_CALIBRATE_SECONDS:-2}

# within PERCENT VALUE TARGET: true when VALUE is within PERCENT% of TARGET.
within() { awk -v p="$1" -v v="$2" -v t="$3" 'BEGIN { d = v - t; if (d < 0) d = -d; exit !(v > 0 && d <= t * p / 100) }'; }

# bytes_per_second TEXT: "50MiB/s" -> 52428800 (the units calibrate prints).
bytes_per_second() {
    awk -v s="$1" 'BEGIN {
        n = s + 0; u = s; sub(/^[0-9.]+/, "", u);
        m = (u ~ /^GiB/) ? 1073741824 : (u ~ /^MiB/) ? 1048576 : (u ~ /^KiB/) ? 1024 : 1;
        printf "%.0f", n * m }'
}

main() {
    : >"$REPORT"
    report "qosd calibrate on /dev/vda (QEMU throttle $THROTTLE B/s), $SECONDS_PER_TEST s per test"
    if "$QOSD_BIN" calibrate --device /dev/vda --seconds 1 >"$OUT/refused.txt" 2>&1; then
        fail "calibrate wrote to /dev/vda without --overwrite-device"
    else
        report "without --overwrite-device: $(head -c 200 "$OUT/refused.txt")"
    fi
    if ! "$QOSD_BIN" calibrate --device /dev/vda --seconds "$SECONDS_PER_TEST" --overwrite-device \
        >"$OUT/block.toml" 2>"$OUT/calibrate.log"; then
        fail "calibrate failed: $(tail -n 3 "$OUT/calibrate.log")"
        finish
    fi
    report "$(cat "$OUT/block.toml")"
    local read write
    read=$(bytes_per_second "$(sed -n 's/^read_bps = "\(.*\)"/\1/p' "$OUT/block.toml")")
    write=$(bytes_per_second "$(sed -n 's/^write_bps = "\(.*\)"/\1/p' "$OUT/block.toml")")
    report "read_bps $read B/s, write_bps $write B/s (throttle $THROTTLE)"
    within 25 "$read" "$THROTTLE" || fail "read_bps $read is not within 25% of $THROTTLE"
    within 25 "$write" "$THROTTLE" || fail "write_bps $write is not within 25% of $THROTTLE"
    { echo '[host]'; echo 'reserved_cpu = 0'; echo; cat "$OUT/block.toml"; } >/tmp/calibrated.toml
    "$QOSD_BIN" check --config /tmp/calibrated.toml >"$OUT/check.txt" 2>&1 ||
        fail "qosd check refused the printed block: $(tail -n 3 "$OUT/check.txt")"
    finish
}

main
