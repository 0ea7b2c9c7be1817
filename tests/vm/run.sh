#!/usr/bin/env bash
# Run qosd VM scenarios on a real, stock Debian kernel under QEMU (TCG).
#
# Usage:
#   tests/vm/run.sh SCENARIO...          e.g. tests/vm/run.sh cpu-noisy-neighbour
#
#   Each SCENARIO is tests/vm/scenarios/SCENARIO.sh. It runs as root inside a
#   fresh VM (2 vCPUs, 1 GiB) whose / is the host's / shared read-only, so
#   every host binary (stress-ng, fio, curl, target/release/qosd, ...) is
#   there. It writes its results to target/vm/out/SCENARIO/ (a writable
#   share, /run/out in the guest): `status` (0 = pass), `report.txt`, CSVs.
#   This script prints the report and exits non-zero if any scenario's status
#   is missing or non-zero. The serial console goes to .../console.log.
#   A scenario's line "# timeout: N" bounds its VM run to N seconds.
#
#   Build first:  cargo build --release --bins --examples
#
# Environment:
#   QOSD_BIN       qosd binary (default: target/release/qosd)
#   WAKEUP_PROBE   wake-up latency probe (default: target/release/examples/wakeup_probe)
#   VM_TIMEOUT     seconds before a whole QEMU run is killed (default: the
#                  scenario's "# timeout: N" line; see scenario_timeout)
#   VM_BOOT_TIMEOUT seconds a guest may take to boot before it is killed and
#                  booted again, once (default: 60; see the boot watchdog)
#   VM_KEEP_GOING  1: run the remaining scenarios after a failure (default: 0)
#   VM_CONSOLE     1: also show the guest's serial console live (default: 0)
#   VM_CACHE       cache directory (default: target/vm)
#   VM_SCRATCH_SIZE size of the scratch disk /dev/vdb (default: 3G; sparse,
#                  unthrottled, recreated empty for every scenario)
#   VM_DISK_DIR    where both disks' image files are made (default: /dev/shm,
#                  host memory; see make_disk)
#   VM_*, QOSD_*   every such variable is passed on to the scenario.
#   TIMELINE_CHART the chart renderer (default:
#                  target/release/examples/timeline_chart)
#   TSC_KHZ        the host TSC rate probe (default:
#                  target/release/examples/tsc_khz; see guest_clock_args)
#   VM_KERNEL_ARGS more guest kernel arguments (e.g. loglevel=7)
#
# A scenario that writes timeline.csv (tests/vm/lib.sh's timeline_*) gets it
# charted as timeline.png beside it; a chart that cannot be drawn is
# reported and leaves the scenario's result as it is.
#
# Runs are serialised with a lock in the cache directory (one VM at a time).
# A VM run takes ~10 s to boot and run a trivial scenario; the caches
# (kernel under target/vm/kernel/VERSION/, initramfs keyed by a hash of its
# inputs) make every run after the first skip the download and build.
#
# The host's own cgroup hierarchy is never touched: the guest mounts its own
# cgroup2 over the read-only view of the host's /sys/fs/cgroup.
#
# Needs: qemu-system-x86 busybox-static kmod cpio (and apt-get to fetch the
# kernel); scenarios use stress-ng fio iperf3 nftables iproute2 curl, and
# e2fsprogs (mkfs.ext4, for the memory scenario).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VM_DIR=${VM_CACHE:-$REPO/target/vm}
VM_KEEP_GOING=${VM_KEEP_GOING:-0}
VM_CONSOLE=${VM_CONSOLE:-0}

# Modules the guest loads at boot (see tests/vm/init.sh), and whole module
# folders for the network scenarios: the kernel autoloads qdiscs and nft
# expressions with /sbin/modprobe from the initramfs, not from the chroot.
# ext4: the memory scenario needs a block-device filesystem (its page cache
# is reclaimable; 9p's and tmpfs's are not a fair stand-in).
BOOT_MODULES=(crc32c_generic virtio_pci 9pnet_virtio 9p virtio_blk veth sch_htb nf_tables nft_socket ext4)
MODULE_DIRS=(kernel/net/sched kernel/net/netfilter kernel/net/ipv4/netfilter kernel/net/ipv6/netfilter)

log() { echo "vm: $*"; }
die() { echo "vm: ERROR: $*" >&2; exit 1; }

# Absolute path of $1, relative to the repository when not absolute.
abs_path() {
    case $1 in
        /*) echo "$1" ;;
        *) echo "$REPO/$1" ;;
    esac
}

# The package of the current generic amd64 kernel, e.g. linux-image-6.1.0-56-amd64.
kernel_package() {
    local pkg
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
    if [[ -z $pkg ]]; then
        # The package lists may not have been fetched yet on a fresh machine.
        apt-get update -qq >/dev/null
        pkg=$(apt-cache depends linux-image-amd64 |
            awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
    fi
    [[ -n $pkg ]] || die "cannot find the kernel package behind linux-image-amd64"
    echo "$pkg"
}

# Download and unpack the kernel into $KDIR/root, with modules.dep built.
fetch_kernel() {
    local pkg=$1
    if [[ -f $KDIR/root/.complete ]]; then
        log "kernel $KVER cached"
        return
    fi
    log "downloading $pkg"
    local tmp
    tmp=$(mktemp -d "$VM_DIR/dl.XXXXXX")
    # apt-get download writes to the current directory.
    (cd "$tmp" && apt-get download -q "$pkg" >/dev/null 2>&1) || die "apt-get download $pkg failed"
    rm -rf "$KDIR/root"
    mkdir -p "$KDIR/root"
    dpkg-deb -x "$tmp"/"$pkg"_*.deb "$KDIR/root"
    rm -rf "$tmp"
    depmod -b "$KDIR/root" "$KVER"
    [[ -f $KDIR/root/boot/vmlinuz-$KVER ]] || die "no vmlinuz-$KVER in $pkg"
    touch "$KDIR/root/.complete"
}

# Module files (relative to lib/modules/$KVER) that the initramfs needs:
# BOOT_MODULES and everything in MODULE_DIRS, with all their dependencies.
module_closure() {
    local mdir=$KDIR/root/lib/modules/$KVER m
    {
        # --show-depends prints "insmod /abs/path.ko" for the module and its deps.
        for m in "${BOOT_MODULES[@]}"; do
            modprobe -d "$KDIR/root" -S "$KVER" --show-depends "$m" |
                awk -v p="$mdir/" '$1 == "insmod" { sub(p, "", $2); print $2 }'
        done
        # modules.dep lines are "file: dep dep ..." with the full transitive list.
        local pattern
        pattern=$(printf '%s|' "${MODULE_DIRS[@]}")
        awk -v re="^(${pattern%|})/" '{ sub(":", "", $1) } $1 ~ re { for (i = 1; i <= NF; i++) print $i }' \
            "$mdir/modules.dep"
    } | sort -u
}

# Build the initramfs: static busybox (with an applet link each, and
# /sbin/modprobe for the kernel's module autoloading), the module closure,
# and tests/vm/init.sh as /init. Cached by a hash of its inputs.
build_initramfs() {
    local busybox=/bin/busybox
    # A dynamic busybox would find no libc in the initramfs.
    [[ -x $busybox ]] || die "$busybox not found (install busybox-static)"
    { ldd "$busybox" 2>&1 || true; } | grep -qE 'not a dynamic|statically linked' ||
        die "$busybox is not a static busybox (install busybox-static)"
    local key
    key=$(cat "$REPO/tests/vm/init.sh" "$busybox" <(printf '%s\n' "${BOOT_MODULES[@]}" "${MODULE_DIRS[@]}") |
        sha256sum | cut -c1-16)
    INITRD=$KDIR/initramfs-$key.cpio.gz
    if [[ -f $INITRD ]]; then
        log "initramfs cached"
        return
    fi
    log "building initramfs"
    local tmp src=$KDIR/root/lib/modules/$KVER f applet
    tmp=$(mktemp -d "$VM_DIR/initramfs.XXXXXX")
    mkdir -p "$tmp"/{bin,sbin,dev,proc,sys,host,lib/modules/"$KVER"}
    cp "$busybox" "$tmp/bin/busybox"
    for applet in $("$busybox" --list); do
        [[ $applet == busybox ]] || ln -sf busybox "$tmp/bin/$applet"
    done
    ln -sf ../bin/busybox "$tmp/sbin/modprobe"
    while read -r f; do
        mkdir -p "$tmp/lib/modules/$KVER/$(dirname "$f")"
        cp "$src/$f" "$tmp/lib/modules/$KVER/$f"
    done < <(module_closure)
    cp "$src"/modules.{order,builtin,builtin.modinfo} "$tmp/lib/modules/$KVER/"
    depmod -b "$tmp" "$KVER"
    install -m 0755 "$REPO/tests/vm/init.sh" "$tmp/init"
    (cd "$tmp" && find . | cpio -o -H newc --quiet | gzip -6) >"$INITRD.part"
    mv "$INITRD.part" "$INITRD"
    rm -rf "$tmp"
    log "initramfs: $(find "$INITRD" -printf '%s') bytes, $(module_closure | wc -l) modules"
}

# A sparse 1 GiB disk for the disk scenarios (throttled to 50 MB/s by QEMU).
# Both disks' image files live in host memory (/dev/shm, a tmpfs), made
# empty for every scenario and removed after it. On the host's own disk (a
# cloud volume here) the throttled disk gave 1 700-2 200 of its 2 500 IOPS in
# some runs, and the disk scenarios measured the host's disk instead of the
# throttle. VM_DISK_DIR overrides the place.
DISK_DIR=${VM_DISK_DIR:-/dev/shm}
make_disk() {
    [[ -d $DISK_DIR && -w $DISK_DIR ]] || DISK_DIR=$VM_DIR
    DISK=$DISK_DIR/qosd-vm-disk.$$.img
    rm -f "$DISK"
    truncate -s 1G "$DISK"
}

# A scratch disk, /dev/vdb in the guest: sparse, unthrottled, and recreated
# empty for every scenario (and removed after it), so that a scenario can
# write gigabytes of files quickly (the memory scenario's page-cache flood)
# without the 50 MB/s throttle of /dev/vda. Its size: VM_SCRATCH_SIZE.
SCRATCH_SIZE=${VM_SCRATCH_SIZE:-3G}
make_scratch() {
    SCRATCH=$DISK_DIR/qosd-vm-scratch.$$.img
    rm -f "$SCRATCH"
    truncate -s "$SCRATCH_SIZE" "$SCRATCH"
}

# Where the guest sees the repository: its own read-only share, because the
# guest's /tmp and /run are fresh tmpfs and would hide a checkout under them
# (CI may clone anywhere).
GUEST_REPO=/run/repo

# in_guest PATH: PATH as the guest sees it (paths inside the repository move
# to its share; others are seen through the host root share).
in_guest() {
    case $1 in
        "$REPO"/*) echo "$GUEST_REPO/${1#"$REPO"/}" ;;
        *) echo "$1" ;;
    esac
}

# Write the guest's settings into the output share as shell assignments.
write_env() {
    local scenario=$1 out=$2 name
    {
        printf 'export VM_REPO=%q VM_SCENARIO=%q VM_OUT=/run/out\n' "$GUEST_REPO" "$scenario"
        printf 'export QOSD_BIN=%q WAKEUP_PROBE=%q\n' "$(in_guest "$QOSD_BIN")" "$(in_guest "$WAKEUP_PROBE")"
        # Pass every other VM_* / QOSD_* knob through.
        for name in $(compgen -e); do
            case $name in
                VM_REPO | VM_SCENARIO | VM_OUT | QOSD_BIN | WAKEUP_PROBE) ;;
                VM_* | QOSD_*) printf 'export %s=%q\n' "$name" "${!name}" ;;
            esac
        done
    } >"$out/vm.env"
}

# render_timeline SCENARIO OUT: chart OUT/timeline.csv as OUT/timeline.png
# (examples/timeline_chart.rs). Never fails: a missing renderer or a chart
# that cannot be drawn is a warning (its output in OUT/timeline-chart.log).
render_timeline() {
    local scenario=$1 out=$2
    [[ -s $out/timeline.csv ]] || return 0
    if [[ ! -x $TIMELINE_CHART ]]; then
        log "warning: no $TIMELINE_CHART (cargo build --release --examples): no timeline.png"
        return 0
    fi
    if "$TIMELINE_CHART" -o "$out/timeline.png" \
        --title "$scenario: each tenant's usage beside its contract" \
        --note "tests/vm/run.sh, $(date -u +%F): stock Debian kernel $KVER in QEMU (TCG), 2 vCPUs, 1 GiB" \
        "$out/timeline.csv" >"$out/timeline-chart.log" 2>&1; then
        log "chart: $out/timeline.png"
    else
        log "warning: could not chart $out/timeline.csv (the scenario's result stands): $(tail -n 1 "$out/timeline-chart.log")"
    fi
    return 0
}

# guest_clock_args: "tsc_early_khz=N" with the host's TSC rate, or nothing
# (and a warning) where it cannot be known. Under TCG the guest's TSC is the
# host's, but the guest calibrates its rate at boot against the emulated PIT
# or HPET, and a vCPU preempted by a busy host during that window gets a wrong
# rate: every clock in the guest then runs fast or slow for the whole run
# (seen: 120 s of guest time in a 41 s VM run). With the rate given, the guest
# does not calibrate; its later refinement only adopts a rate within 1%.
guest_clock_args() {
    local flags khz
    flags=$(grep -m1 '^flags' /proc/cpuinfo)
    if [[ " $flags " != *" constant_tsc "* || " $flags " != *" nonstop_tsc "* ]]; then
        log "warning: the host's TSC is not constant: the guest calibrates its own clock" >&2
        return 0
    fi
    if [[ ! -x $TSC_KHZ ]] || ! khz=$("$TSC_KHZ"); then
        log "warning: no host TSC rate from $TSC_KHZ (cargo build --release --examples): the guest calibrates its own clock" >&2
        return 0
    fi
    echo "tsc_early_khz=$khz"
}

# check_guest_clock SCENARIO OUT: fails when the guest's clock ran at another
# rate than the host's during the scenario, and every rate and delay it
# measured is void. tests/vm/lib.sh writes the guest's time into
# guest-clock-start and guest-clock-end on the 9p share, and the host stamps
# each file's mtime with its own clock as it is written. Allowed: 2% and
# 0.5 s (the 9p writes' own latency).
check_guest_clock() {
    local scenario=$1 out=$2 start=$2/guest-clock-start end=$2/guest-clock-end spans
    [[ -s $start && -s $end ]] || return 0
    spans=$(awk -v hs="$(stat -c %.9Y "$start")" -v he="$(stat -c %.9Y "$end")" \
        'NR == 1 { gs = $1 } NR == 2 { printf "%.2f %.2f", $1 - gs, he - hs }' "$start" "$end")
    if ! awk -v g="${spans% *}" -v h="${spans#* }" 'BEGIN { d = g - h; exit !((d < 0 ? -d : d) <= 0.02 * h + 0.5) }'; then
        echo "vm: FAIL: $scenario: the guest's clock counted ${spans% *} s while the host's counted ${spans#* } s: its timings are void" >&2
        return 1
    fi
    log "$scenario: guest clock ${spans% *} s, host clock ${spans#* } s"
}

# scenario_timeout SCRIPT: the seconds one QEMU run of the scenario may take:
# VM_TIMEOUT when set, else the scenario's own "# timeout: N" line, else
# DEFAULT_TIMEOUT. Each line is 2-3 times the scenario's whole VM run (boot
# included) as measured once with the suite's VM_WAYS="none qosd" (a third
# way adds about half) on the 2-core host at load 2-4: smoke 18 s, calibrate
# 17, classify 39, scale 49, cpu-noisy-neighbour 90, systemd 125,
# memory-noisy-neighbour 128, net-noisy-neighbour 133; and at least 120 s,
# since a boot alone took up to 47 s on a loaded host (see the boot
# watchdog). Not measured, judged from their phases: disk-noisy-neighbour
# and disk-iops-noisy-neighbour (like cpu's), status, reload, net-bad-input.
DEFAULT_TIMEOUT=900
scenario_timeout() {
    local script=$1 line
    if [[ -n ${VM_TIMEOUT:-} ]]; then
        echo "$VM_TIMEOUT"
    elif line=$(grep -m1 -xE '# timeout: [0-9]+' "$script"); then
        echo "${line#'# timeout: '}"
    else
        log "warning: no '# timeout: N' line in $script: ${DEFAULT_TIMEOUT}s" >&2
        echo "$DEFAULT_TIMEOUT"
    fi
}

# qemu_args OUT: the QEMU command line of one scenario's VM, into QEMU_ARGS.
qemu_args() {
    local out=$1
    # shellcheck disable=SC2054 # the commas are QEMU's option syntax.
    QEMU_ARGS=(
        qemu-system-x86_64 -accel tcg -smp 2 -m 1024 -nographic -no-reboot -nic none
        # The monitor, for dump_registers (the serial console stays on stdout).
        -monitor "pipe:$MONITOR"
        -kernel "$KDIR/root/boot/vmlinuz-$KVER" -initrd "$INITRD"
        # tsc=reliable: under TCG the TSC follows the host clock on every
        # vCPU, but the kernel's sync check fails and falls back to HPET, whose
        # every read is a slow MMIO exit; sched_clock (and so cpu.stat) then
        # also loses time. With it, clock reads are cheap and usage adds up.
        # edd=off: the kernel's real-mode probe of BIOS disk data (only for
        # /sys/firmware/edd) once hung a boot at "Probing EDD" until the
        # timeout; nothing here needs it.
        # tsc_early_khz: see guest_clock_args.
        -append "console=ttyS0 panic=-1 mitigations=off loglevel=4 tsc=reliable edd=off $GUEST_CLOCK_ARGS ${VM_KERNEL_ARGS:-}"
        # The host's / read-only: the guest chroots into it.
        -fsdev "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap"
        -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot
        # The repository (scripts and the built binaries), read-only.
        -fsdev "local,id=repo,path=$REPO,security_model=none,readonly=on,multidevs=remap"
        -device virtio-9p-pci,fsdev=repo,mount_tag=repo
        # The scenario's output directory, writable.
        -fsdev "local,id=out,path=$out,security_model=none"
        -device virtio-9p-pci,fsdev=out,mount_tag=out
        # A disk with a fixed, known capacity: 50 MB/s and 2500 IOs/s. Without
        # the IOPS cap, small random I/O is bound by the emulator's CPU, which
        # varies from run to run, so no contract on IOPS could be checked.
        # cache=writeback: the image is in memory already, and tmpfs may
        # refuse the O_DIRECT of cache=none.
        -drive "file=$DISK,format=raw,if=virtio,cache=writeback,throttling.bps-total=52428800,throttling.iops-total=2500"
        # The scratch disk (/dev/vdb, after vda in PCI order): no throttle,
        # and host memory behind it (its contents are disposable).
        -drive "file=$SCRATCH,format=raw,if=virtio,cache=unsafe"
    )
}

# The boot watchdog. Once, a guest (scale's) showed nothing on its console
# but SeaBIOS's "Booting from ROM.." for 900 s, while 12 others booted. Its
# cause is not known. What was found:
#   - loglevel=4 keeps the kernel silent on the console: until
#     tests/vm/init.sh prints, such a console is every boot's, so the hang
#     may have been anywhere from QEMU's -kernel loader to /init's 9p mounts.
#     The first sign of the kernel is the escape sequence right after
#     "Booting from ROM.." (its real-mode setup's int 10h, which SeaBIOS
#     writes to the serial console), seen within 1.5 s in every boot below.
#   - Not reproduced: 40 boots of the same guest (every scenario's is the
#     same until it boots; QEMU 7.2, kernel 6.1.0-57, -accel tcg -smp 2),
#     20 with tsc=reliable tsc_early_khz=N and 20 without, alternating,
#     beside `stress-ng --cpu 1` and other builds on the 2-core host (load
#     average 4.4-9.9). Each boot: qemu_args's command line with its
#     console polled every 0.2 s, ended at "vm-guest: booted", 60 s allowed.
#     All 40 booted, after 8.8-47.0 s (mean 21 s) of wall time, alike with
#     and without the tsc arguments. Those cannot act before the kernel
#     runs anyway, and the 12 guests that booted had them too.
# So the harness does not wait for a cause: a guest that has not booted
# within VM_BOOT_TIMEOUT seconds is killed and booted again, once, and its
# vCPUs' registers are saved first (dump_registers: where it hung). "Booted"
# is init.sh's "vm-guest: booted", printed just before the scenario starts:
# everything before it can be redone safely. Its default, 60 s, is what the
# issue asked for and above the slowest boot measured above (47 s, at a load
# the 2-core CI machine does not reach); a slow boot costs one reboot.
VM_BOOT_TIMEOUT=${VM_BOOT_TIMEOUT:-60}
BOOT_ATTEMPTS=2
BOOTED_MARK='vm-guest: booted'
BOOT_MISSED=200 # run_qemu's status when the watchdog killed QEMU

# wait_for_boot PID CONSOLE: until CONSOLE has BOOTED_MARK (0) or PID exits
# (0: its exit status tells), or VM_BOOT_TIMEOUT seconds pass (1). Polls
# twice a second with builtins (one `sleep` a poll).
wait_for_boot() {
    local pid=$1 console=$2 text deadline=$((SECONDS + VM_BOOT_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null; do
        text=
        IFS= read -r -d '' text <"$console" || true
        [[ $text != *"$BOOTED_MARK"* ]] || return 0
        ((SECONDS < deadline)) || return 1
        sleep 0.5
    done
}

# dump_registers OUT: ask QEMU's monitor for every vCPU's registers, into
# OUT/registers.txt, and log their instruction pointers: where a hung guest
# was. EIP below 0x100000: the BIOS or the kernel's real-mode setup (a
# second vCPU waits in the BIOS, halted, until the kernel starts it); a
# 64-bit RIP below 0x100000000: the kernel's decompressor; ffffffff8...: the
# kernel (KASLR moves it). No answer means QEMU itself is stuck.
dump_registers() {
    local out=$1 fd line where
    exec {fd}<>"$MONITOR.out"
    echo 'info registers -a' >"$MONITOR.in"
    while IFS= read -r -t 2 -u "$fd" line; do
        printf '%s\n' "${line//$'\r'/}"
    done >"$out/registers.txt"
    exec {fd}<&-
    where=$(awk '/^CPU#/ { cpu = $1 }
        match($0, /^[ER]IP=[0-9a-f]+/) { printf "%s%s %s", sep, cpu, substr($0, 1, RLENGTH); sep = ", " }' \
        "$out/registers.txt")
    log "vCPUs: ${where:-no answer from the QEMU monitor} (registers in $out/registers.txt)"
}

# run_qemu OUT LIMIT: one QEMU run of QEMU_ARGS, at most LIMIT seconds, its
# console in OUT/console.log. Returns QEMU's exit status (124 or 137 when
# killed at LIMIT), or BOOT_MISSED when the boot watchdog killed it.
run_qemu() {
    local out=$1 limit=$2 rc=0
    rm -f "$MONITOR.in" "$MONITOR.out"
    mkfifo "$MONITOR.in" "$MONITOR.out"
    : >"$out/console.log" # there before the background QEMU opens it
    timeout --kill-after=10 "$limit" "${QEMU_ARGS[@]}" </dev/null >"$out/console.log" 2>&1 &
    QEMU_PID=$!
    if [[ $VM_CONSOLE == 1 ]]; then
        tail -n +1 -f --pid="$QEMU_PID" "$out/console.log" &
    fi
    if ! wait_for_boot "$QEMU_PID" "$out/console.log"; then
        dump_registers "$out"
        # timeout passes the TERM on to QEMU (and KILLs it 10 s later).
        kill "$QEMU_PID" 2>/dev/null || true
        wait "$QEMU_PID" || true
        rc=$BOOT_MISSED
    else
        wait "$QEMU_PID" || rc=$?
    fi
    QEMU_PID=
    rm -f "$MONITOR.in" "$MONITOR.out"
    return "$rc"
}

# stop_qemu: end the QEMU run still going, if any (run.sh interrupted).
stop_qemu() {
    [[ -z ${QEMU_PID:-} ]] || kill "$QEMU_PID" 2>/dev/null || true
}

# boot_scenario SCENARIO OUT LIMIT: run_qemu on fresh disks, booting again
# once when the watchdog fires; each step said in the log and in
# OUT/report.txt. Returns the last run_qemu's status.
boot_scenario() {
    local scenario=$1 out=$2 limit=$3 attempt rc note
    for ((attempt = 1; ; attempt++)); do
        make_disk
        make_scratch
        qemu_args "$out"
        rc=0
        run_qemu "$out" "$limit" || rc=$?
        rm -f "$SCRATCH" "$DISK"
        ((rc == BOOT_MISSED && attempt < BOOT_ATTEMPTS)) || return "$rc"
        mv "$out/console.log" "$out/console-attempt$attempt.log"
        mv "$out/registers.txt" "$out/registers-attempt$attempt.txt" 2>/dev/null || true
        note="boot watchdog: no '$BOOTED_MARK' on the console in ${VM_BOOT_TIMEOUT} s, rebooting (attempt $((attempt + 1)) of $BOOT_ATTEMPTS; that boot's console and registers: console-attempt$attempt.log, registers-attempt$attempt.txt)"
        log "$scenario: $note"
        echo "$note" >>"$out/report.txt"
    done
}

# Boot one VM for one scenario. Returns non-zero if the scenario failed.
run_scenario() {
    local scenario=$1
    local script=$REPO/tests/vm/scenarios/$scenario.sh
    [[ -f $script ]] || { echo "vm: no such scenario: $script" >&2; return 1; }
    local out=$VM_DIR/out/$scenario limit
    limit=$(scenario_timeout "$script")
    rm -rf "$out"
    mkdir -p "$out"
    write_env "$scenario" "$out"

    # The host's load matters: the vCPUs are host threads, and a busy host
    # (e.g. a parallel cargo build) makes the guest slower and noisier.
    log "booting VM for $scenario (timeout ${limit}s, boot watchdog ${VM_BOOT_TIMEOUT}s; host load $(cut -d' ' -f1-3 /proc/loadavg))"
    local start=$SECONDS rc=0
    boot_scenario "$scenario" "$out" "$limit" || rc=$?
    local took=$((SECONDS - start))
    check_qemu_status "$scenario" "$out" "$limit" "$rc" || return 1
    log "$scenario: VM ran ${took}s (host load $(cut -d' ' -f1-3 /proc/loadavg))"
    check_guest_clock "$scenario" "$out" || return 1
    render_timeline "$scenario" "$out"
    check_scenario_status "$scenario" "$out"
}

# check_qemu_status SCENARIO OUT LIMIT RC: fails (and says why) unless the
# QEMU run ended by itself with status 0.
check_qemu_status() {
    local scenario=$1 out=$2 limit=$3 rc=$4 why
    case $rc in
        0) return 0 ;;
        "$BOOT_MISSED")
            why="boot watchdog: no '$BOOTED_MARK' on the console in ${VM_BOOT_TIMEOUT} s, on each of $BOOT_ATTEMPTS boots: the guest never started the scenario"
            echo "$why" >>"$out/report.txt"
            ;;
        # `timeout` exits 124 (137 after the kill) when the guest hung.
        124 | 137) why="QEMU killed after ${limit}s, the scenario's timeout (guest hung?)" ;;
        *) why="QEMU exited $rc" ;;
    esac
    echo "vm: FAIL: $scenario: $why; see $out/console.log" >&2
    tail -n 20 "$out/console.log" >&2 || true
    return 1
}

# check_scenario_status SCENARIO OUT: prints the scenario's report and fails
# unless it wrote status 0.
check_scenario_status() {
    local scenario=$1 out=$2 status
    if [[ -f $out/report.txt ]]; then
        echo "----- $scenario: report.txt -----"
        cat "$out/report.txt"
        echo "-----"
    fi
    if [[ ! -f $out/status ]]; then
        echo "vm: FAIL: $scenario: no status written (scenario crashed?); console tail:" >&2
        tail -n 30 "$out/console.log" >&2 || true
        return 1
    fi
    status=$(tr -d '[:space:]' <"$out/status")
    if [[ $status != 0 ]]; then
        echo "vm: FAIL: $scenario: status $status; results in $out" >&2
        return 1
    fi
    log "PASS: $scenario"
}

main() {
    (($# > 0)) || { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 2; }
    local tool lock_fd
    for tool in qemu-system-x86_64 depmod modprobe cpio apt-get dpkg-deb timeout gzip flock; do
        command -v "$tool" >/dev/null || die "$tool not found (see the package list at the top of $0)"
    done
    mkdir -p "$VM_DIR"
    # One VM at a time per cache: they share the disk image (QEMU locks it)
    # and would compete for the host's CPUs, which skews the measurements.
    exec {lock_fd}>"$VM_DIR/lock"
    flock -n "$lock_fd" || { log "waiting for another VM run to finish"; flock "$lock_fd"; }
    QOSD_BIN=$(abs_path "${QOSD_BIN:-target/release/qosd}")
    WAKEUP_PROBE=$(abs_path "${WAKEUP_PROBE:-target/release/examples/wakeup_probe}")
    TIMELINE_CHART=$(abs_path "${TIMELINE_CHART:-target/release/examples/timeline_chart}")
    TSC_KHZ=$(abs_path "${TSC_KHZ:-target/release/examples/tsc_khz}")
    GUEST_CLOCK_ARGS=$(guest_clock_args)
    [[ -z $GUEST_CLOCK_ARGS ]] || log "guest clock: $GUEST_CLOCK_ARGS (the host's TSC rate)"

    local pkg
    pkg=$(kernel_package)
    KVER=${pkg#linux-image-}
    KDIR=$VM_DIR/kernel/$KVER
    mkdir -p "$KDIR"
    fetch_kernel "$pkg"
    build_initramfs
    MONITOR=$VM_DIR/monitor.$$
    # Also when interrupted: QEMU runs in the background (see run_qemu).
    trap 'stop_qemu; rm -f "${DISK:-}" "${SCRATCH:-}" "$MONITOR.in" "$MONITOR.out"' EXIT

    local scenario failed=0
    for scenario in "$@"; do
        if ! run_scenario "$scenario"; then
            failed=$((failed + 1))
            [[ $VM_KEEP_GOING == 1 ]] || break
        fi
    done
    if ((failed > 0)); then
        echo "vm: $failed scenario(s) FAILED" >&2
        exit 1
    fi
}

main "$@"
