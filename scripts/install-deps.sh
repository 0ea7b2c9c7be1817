#!/usr/bin/env bash
# Installs what building and testing qosd needs on a fresh Debian machine (as root).
# The Rust toolchain itself is expected to be there (rustup's cargo on PATH).
set -euo pipefail

PACKAGES=(
    # the real-kernel VM: emulator, guest userland, kernel module tools
    qemu-system-x86 busybox-static kmod cpio
    # workloads and shaping tools run inside the VM (the host's / is shared)
    stress-ng fio iperf3 nftables iproute2 curl procps
    # filesystems for the memory scenario (mkfs.ext4), setpriv and fincore
    e2fsprogs util-linux
    # promtool (metrics format), systemd-analyze (unit file)
    prometheus systemd
)

missing=()
for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]} == 0)); then
    echo "deps: all Debian packages present"
else
    echo "deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true
