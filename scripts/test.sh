#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests, then the
# real-kernel VM scenarios. Run as root on Debian:  scripts/test.sh
# QOSD_SKIP_DEPS=1 skips the package installation step.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

if [[ "${QOSD_SKIP_DEPS:-0}" != 1 ]]; then
    step "installing dependencies"
    scripts/install-deps.sh
fi

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy -D warnings"
cargo clippy --all-targets --locked -- -D warnings

# In the release profile: the VM scenarios need a release build anyway, and
# sharing its compiled dependencies saves a whole debug build (about two
# minutes of the suite). It is also the build that runs on hosts.
step "unit and integration tests (release profile)"
cargo test --release --locked

step "release build for the VM"
cargo build --release --locked --bins --examples

step "Debian package: built, installed into a clean Debian root, checked"
tests/deb_package.sh

step "real-kernel VM scenarios"
tests/vm/run-suite.sh
