#!/usr/bin/env bash
# The live demonstration: boots a stock Debian kernel in QEMU and runs the
# CPU noisy-neighbour scenario without and with qosd, printing each tenant's
# share side by side. Run as root on Debian:  scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release --locked --bins --examples
tests/vm/run.sh "${@:-cpu-noisy-neighbour}"
