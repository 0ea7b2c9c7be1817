#!/usr/bin/env bash
# timeout: 300
# Disk noisy neighbour, IOPS dimension: the same scenario as
# disk-noisy-neighbour.sh (see its header for phases, ways and checks) with
# random 4k direct writes and contracts on write_iops. The capacity is
# measured first in the same VM run (VM_IOPS_CAPACITY=N pins it); db's
# baseline is 40% of it (at most 75% of its single job's rate alone),
# backup's 20%, both bursts the capacity.
export DISK_MODE=iops
exec /bin/bash "$VM_REPO/tests/vm/scenarios/disk-noisy-neighbour.sh"
