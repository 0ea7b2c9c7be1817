#!/usr/bin/env bash
# timeout: 300
# Disk workload shapes, queue depth: the same scenario as
# disk-noisy-neighbour.sh (see its header, "qd mode") with db reading at
# queue depth 1 beside backup's 2 jobs at queue depth 32 (libaio), contracts
# on read_bps. The suite runs one cell (qosd at a 1 s tick) with checks;
# VM_SHAPES=1 runs the benchmark: no qosd, qosd at 1 s and at 250 ms.
export DISK_MODE=qd
exec /bin/bash "$VM_REPO/tests/vm/scenarios/disk-noisy-neighbour.sh"
