#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests, then the
# real-kernel VM scenarios. Run as root on Debian:  scripts/test.sh
# QOSD_SKIP_DEPS=1 skips the package installation step.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step's time, printed at the end (also when a step fails).
STEP_TIMES=()
STEP_NAME=
STEP_START=0
end_step() {
    [[ -z $STEP_NAME ]] || STEP_TIMES+=("$(printf '%6ss  %s' $((SECONDS - STEP_START)) "$STEP_NAME")")
    STEP_NAME=
}
step() {
    end_step
    STEP_NAME=$*
    STEP_START=$SECONDS
    printf '\n==> %s\n' "$*"
}
print_times() {
    end_step
    printf '\n==> times\n'
    printf '%s\n' "${STEP_TIMES[@]}"
    printf '%6ss  total\n' "$SECONDS"
}
trap print_times EXIT

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
