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
    # the font the VM timeline charts are drawn with (examples/timeline_chart.rs)
    fonts-dejavu-core
    # Debian's Python with venv, for the Kubernetes manifest validators below
    python3 python3-venv
    # the Debian package (scripts/package.sh: cargo-deb below runs
    # dpkg-shlibdeps and strip) and the clean root it is installed into
    # (tests/deb_package.sh)
    dpkg-dev debootstrap
)

# Kubernetes manifest validators (tests/deploy_kubernetes.rs), from PyPI, in a
# virtualenv of their own on Debian's Python, linked into /usr/local/bin.
# kubernetes-validate bundles the Kubernetes API schemas; check-jsonschema
# checks the ServiceMonitor against deploy/kubernetes/schemas/. Both work
# offline.
VALIDATORS_VENV=/opt/qosd-manifest-validators
VALIDATORS=(kubernetes-validate==1.37.0 check-jsonschema==0.39.0)
VALIDATOR_COMMANDS=(kubernetes-validate check-jsonschema)

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

missing=()
installed=$("$VALIDATORS_VENV/bin/python" -m pip freeze 2>/dev/null || true)
for requirement in "${VALIDATORS[@]}"; do
    grep -qixF -- "$requirement" <<<"$installed" || missing+=("$requirement")
done
if ((${#missing[@]} == 0)); then
    echo "deps: manifest validators present"
else
    echo "deps: installing ${missing[*]} into $VALIDATORS_VENV"
    "$VALIDATORS_VENV/bin/python" -c '' 2>/dev/null || /usr/bin/python3 -m venv --clear "$VALIDATORS_VENV"
    "$VALIDATORS_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${missing[@]}"
fi
for command in "${VALIDATOR_COMMANDS[@]}"; do
    ln -sfn "$VALIDATORS_VENV/bin/$command" "/usr/local/bin/$command"
done

# cargo-deb, for scripts/package.sh (and tests/deb_package.sh), from crates.io.
CARGO_DEB_VERSION=3.8.0
if [[ $(cargo deb --version 2>/dev/null) == "cargo-deb $CARGO_DEB_VERSION" ]]; then
    echo "deps: cargo-deb $CARGO_DEB_VERSION present"
else
    echo "deps: installing cargo-deb $CARGO_DEB_VERSION"
    cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked
fi

rustup component add rustfmt clippy >/dev/null 2>&1 || true
