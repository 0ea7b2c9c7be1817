#!/bin/sh
# /init of the test VM's initramfs (run by busybox sh as PID 1).
#
# It mounts the host's root filesystem read-only over 9p at /host, gives it
# fresh kernel filesystems (proc, sysfs, devtmpfs, cgroup2 with every
# controller, tmpfs on /tmp and /run), mounts the writable output share at
# /host/run/out and the repository read-only at /host/run/repo, and runs the scenario chrooted into /host. Whatever happens,
# it powers the VM off at the end, so QEMU exits.
#
# Written by tests/vm/run.sh into the initramfs; the scenario's settings come
# from /run/out/vm.env (written by the host into the output share).
#
# A scenario with the line "# vm-init: systemd" (or any scenario run with
# VM_INIT=systemd) runs under the host's systemd as PID 1 instead, as the
# service qosd-scenario.service (tests/vm/systemd/), which powers off.

export PATH=/bin:/sbin

say() { echo "vm-guest: $*"; }

# Any failure before the scenario runs: say so on the console and power off.
die() { say "FATAL: $*"; sync; poweroff -f; sleep 5; exit 1; }

# boot_systemd: exec the host's systemd as PID 1, chrooted into /host, to
# run the scenario as qosd-scenario.service (tests/vm/systemd/). Its units
# go into /run/systemd/system (a runtime unit directory, on our tmpfs), with
# the units and generators that cannot work on this read-only root masked
# (tests/vm/systemd/masked). systemd keeps the mounts made above (it only
# mounts what is missing), and the scenario unit powers the VM off.
boot_systemd() {
    src=/host/run/repo/tests/vm/systemd
    [ -x /host/lib/systemd/systemd ] || die "no /lib/systemd/systemd on the host root"
    mkdir -p /host/run/systemd/system /host/run/systemd/system-generators
    cp "$src/qosd-scenario.service" "$src/qosd-scenario.target" /host/run/systemd/system/ \
        || die "cannot install the scenario units from $src"
    sed -e 's/#.*//' "$src/masked" | while read -r unit; do
        [ -n "$unit" ] || continue
        case $unit in
            *-generator) ln -sf /dev/null "/host/run/systemd/system-generators/$unit" ;;
            *) ln -sf /dev/null "/host/run/systemd/system/$unit" ;;
        esac
    done
    # PrivateTmp= (as in qosd.service) needs a writable /var/tmp.
    mount -t tmpfs tmpfs /host/var/tmp || die "mount /host/var/tmp"
    say "booted in $(cut -d' ' -f1 /proc/uptime)s, starting systemd"
    # container= (empty): systemd as PID 1 takes its $container as the last
    # word, and would otherwise find the host's /.dockerenv (when the host
    # is itself a Docker container) and run in container mode. (Other
    # programs read it from /proc/1/environ: systemd-detect-virt says
    # "container-other"; `systemctl show -P Virtualization` says qemu.)
    exec env container= chroot /host /lib/systemd/systemd --unit=qosd-scenario.target
    die "cannot exec /lib/systemd/systemd"
}

mount -t proc proc /proc
# The kernel's first word on the console (loglevel=4 silences the kernel):
# a hang after it is in this script, one before it in the kernel or QEMU.
say "init started at $(cut -d' ' -f1 /proc/uptime)s uptime"
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

# crc32c_generic first: libcrc32c (pulled in by nf_tables) needs a crc32c
# implementation and cannot find one by autoloading this early.
for m in crc32c_generic virtio_pci 9pnet_virtio 9p virtio_blk \
         veth sch_htb nf_tables nft_socket ext4; do
    modprobe "$m" || say "warning: modprobe $m failed"
done

mkdir -p /host
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot /host \
    || die "cannot mount the host root (9p tag hostroot)"

mount -t proc proc /host/proc || die "mount /host/proc"
mount -t sysfs sysfs /host/sys || die "mount /host/sys"
mount -t devtmpfs devtmpfs /host/dev || die "mount /host/dev"
mkdir -p /host/dev/shm /host/dev/pts
# devtmpfs lacks these links; bash's process substitution needs /dev/fd.
ln -s /proc/self/fd /host/dev/fd
ln -s /proc/self/fd/0 /host/dev/stdin
ln -s /proc/self/fd/1 /host/dev/stdout
ln -s /proc/self/fd/2 /host/dev/stderr
mount -t tmpfs tmpfs /host/dev/shm
mount -t devpts devpts /host/dev/pts
# The guest's own cgroup v2 hierarchy. This is NOT the host's: /host is a
# read-only view of the host's files, and this mount hides its cgroup dir.
mount -t cgroup2 cgroup2 /host/sys/fs/cgroup || die "mount cgroup2"
mount -t tmpfs tmpfs /host/tmp || die "mount /host/tmp"
mount -t tmpfs tmpfs /host/run || die "mount /host/run"
mkdir -p /host/run/out /host/run/repo
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 out /host/run/out \
    || die "cannot mount the output share (9p tag out)"
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose repo /host/run/repo \
    || die "cannot mount the repository share (9p tag repo)"
[ -f /host/run/out/vm.env ] || die "no vm.env in the output share"

# Loopback: qosd serves its metrics on 127.0.0.1.
ip link set lo up

# A scenario with the line "# vm-init: systemd" (or VM_INIT=systemd in
# vm.env) runs under systemd as PID 1 instead: see boot_systemd above.
vm_init=$(
    . /host/run/out/vm.env >/dev/null 2>&1
    if [ -n "$VM_INIT" ]; then
        echo "$VM_INIT"
    elif grep -qx '# vm-init: systemd' "/host/run/repo/tests/vm/scenarios/$VM_SCENARIO.sh" 2>/dev/null; then
        echo systemd
    else
        echo busybox
    fi
)
if [ "$vm_init" = systemd ]; then
    boot_systemd
fi

say "booted in $(cut -d' ' -f1 /proc/uptime)s, running scenario"
# A clean environment: the scenario gets PATH/HOME plus what vm.env sets.
# shellcheck disable=SC2016 # expanded by the chrooted bash, after vm.env.
chroot /host /usr/bin/env -i \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root TERM=dumb LANG=C.UTF-8 TZ=UTC \
    /bin/bash -c '. /run/out/vm.env && cd "$VM_REPO" && exec /bin/bash "tests/vm/scenarios/$VM_SCENARIO.sh"'
rc=$?
say "scenario exited rc=$rc after $(cut -d' ' -f1 /proc/uptime)s uptime"

sync
umount /host/run/out 2>/dev/null
poweroff -f
