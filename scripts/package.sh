#!/usr/bin/env bash
# Builds the Debian package: the release binary, the man pages and shell
# completions (examples/package_assets.rs, from qosd::cli, into
# target/assets/), then `cargo deb --no-build` with [package.metadata.deb] of
# Cargo.toml. Prints the .deb's path as the last line of its output.
#
# Needs cargo-deb (cargo install cargo-deb --version 3.8.0 --locked) and dpkg.
# Run from anywhere:  scripts/package.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo deb --version >/dev/null 2>&1; then
    echo "package: cargo-deb is missing: cargo install cargo-deb --version 3.8.0 --locked" >&2
    exit 1
fi

echo "package: building the release binary and the asset generator" >&2
cargo build --release --locked --bin qosd --example package_assets

# cargo-deb reads the assets from target/assets/ (relative to this directory,
# whatever CARGO_TARGET_DIR says), as Cargo.toml lists them.
echo "package: writing man pages and completions to target/assets/" >&2
cargo run --release --locked --quiet --example package_assets -- target/assets >&2

echo "package: cargo deb --no-build" >&2
deb=$(cargo deb --no-build --locked)
deb=${deb##*$'\n'}
[[ -f $deb ]] || { echo "package: cargo deb printed no package path (got: $deb)" >&2; exit 1; }
echo "$deb"
