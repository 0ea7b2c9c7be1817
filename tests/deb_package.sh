#!/usr/bin/env bash
# The Debian package as an operator meets it: builds the .deb
# (scripts/package.sh), installs it with dpkg into a clean Debian root and
# checks, inside that root (chroot):
#   - `qosd check --config /etc/qosd/qosd.toml` passes on the shipped file;
#   - `qosd --version` prints Cargo.toml's version;
#   - `dpkg -L qosd` lists the man pages and the bash, zsh and fish completions,
#     and the pages are where man looks (/usr/share/man/man8/qosd.8.gz), gzipped
#     roff; the bash completion registers `complete -F _qosd qosd`;
#   - /etc/qosd/qosd.toml is a conffile (dpkg-query ${Conffiles});
#   - the unit file is installed as shipped, and neither enabled nor started;
#   - `dpkg --purge qosd` removes it all again.
#
# Run as root on Debian, with debootstrap:  tests/deb_package.sh
#   QOSD_DEB      a .deb to test instead of building one
#   DEB_SUITE     the root's Debian suite (default: bookworm)
#   DEB_MIRROR    where debootstrap gets it (default: http://deb.debian.org/debian)
#
# The root (debootstrap --variant=minbase) is made once and cached in
# target/deb-root/SUITE-minbase/ (delete it to make a new one; the first run
# takes a few minutes). Every run works on a fresh copy, removed at the end,
# with /proc mounted inside only for the run.
set -euo pipefail
cd "$(dirname "$0")/.."

SUITE=${DEB_SUITE:-bookworm}
VARIANT=minbase
MIRROR=${DEB_MIRROR:-http://deb.debian.org/debian}
BASE=target/deb-root
CACHE=$BASE/$SUITE-$VARIANT

log() { printf 'deb-package: %s\n' "$*" >&2; }
fail() {
    log "FAIL: $*"
    exit 1
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

((EUID == 0)) || fail "run as root (debootstrap, chroot, mount)"
command -v debootstrap >/dev/null || fail "debootstrap is missing (scripts/install-deps.sh installs it)"

T0=$(now)
mkdir -p "$BASE"

# The cached root, made once (under a lock, so that two runs do not both make
# it), in a temporary directory renamed into place when complete.
exec {lock_fd}>"$BASE/.lock"
flock "$lock_fd"
if [[ ! -x $CACHE/usr/bin/dpkg ]]; then
    log "making the $SUITE $VARIANT root in $CACHE (once; cached)"
    t=$(now)
    partial=$CACHE.partial
    rm -rf --one-file-system "$partial"
    if ! debootstrap --variant="$VARIANT" "$SUITE" "$partial" "$MIRROR" >"$BASE/debootstrap-$SUITE-$VARIANT.log" 2>&1; then
        tail -n 20 "$BASE/debootstrap-$SUITE-$VARIANT.log" >&2
        fail "debootstrap failed (log: $BASE/debootstrap-$SUITE-$VARIANT.log)"
    fi
    # debootstrap leaves nothing mounted, but make sure before anything is
    # copied or renamed.
    if grep -qF " $(realpath "$partial")/" /proc/self/mounts; then
        fail "something is still mounted under $partial"
    fi
    mv "$partial" "$CACHE"
    log "root made in $(since "$t") s"
fi
flock -u "$lock_fd"

# The package.
if [[ -n ${QOSD_DEB:-} ]]; then
    DEB=$QOSD_DEB
else
    t=$(now)
    DEB=$(scripts/package.sh | tail -n 1)
    log "package built in $(since "$t") s: $DEB"
fi
[[ -f $DEB ]] || fail "no package at $DEB"
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
[[ -n $VERSION ]] || fail "no version in Cargo.toml"

# A fresh copy of the cached root, and /proc inside it (qosd check counts the
# CPUs and reads MemTotal). Whatever happens, /proc is unmounted and the copy
# removed; the copy is never removed while something is still mounted in it.
ROOT=$(mktemp -d "$BASE/run.XXXXXX")
ROOT=$(realpath "$ROOT")
cleanup() {
    local status=$?
    if mountpoint -q "$ROOT/proc"; then
        umount "$ROOT/proc" || umount -l "$ROOT/proc" || true
    fi
    if grep -qF " $ROOT/" /proc/self/mounts; then
        log "still mounted under $ROOT; left in place"
        status=1
    else
        rm -rf --one-file-system "$ROOT"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

t=$(now)
cp -a "$CACHE/." "$ROOT/"
log "fresh root copied in $(since "$t") s"
mount -t proc proc "$ROOT/proc"

# in_root CMD...: run CMD in the root, with a plain environment.
in_root() {
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 TERM=dumb chroot "$ROOT" "$@"
}

cp "$DEB" "$ROOT/tmp/qosd.deb"
in_root dpkg -i /tmp/qosd.deb >"$ROOT/tmp/dpkg-i.log" 2>&1 || {
    cat "$ROOT/tmp/dpkg-i.log" >&2
    fail "dpkg -i failed"
}
log "installed $(basename "$DEB")"

# qosd check on the shipped configuration, on this root's view of the host.
if ! out=$(in_root qosd check --config /etc/qosd/qosd.toml 2>&1); then
    printf '%s\n' "$out" >&2
    fail "qosd check --config /etc/qosd/qosd.toml failed in the root"
fi
grep -qF "/etc/qosd/qosd.toml: ok" <<<"$out" || fail "qosd check did not say ok: $out"
log "qosd check: ok"

out=$(in_root qosd --version)
[[ $out == "qosd $VERSION" ]] || fail "qosd --version printed '$out', not 'qosd $VERSION'"
log "qosd --version: $out"

# The files, as dpkg knows them.
listed=$(in_root dpkg -L qosd)
for path in /usr/bin/qosd /etc/qosd/qosd.toml /usr/lib/systemd/system/qosd.service \
    /usr/share/man/man8/qosd.8.gz /usr/share/man/man8/qosd-run.8.gz /usr/share/man/man8/qosd-check.8.gz \
    /usr/share/man/man8/qosd-status.8.gz /usr/share/man/man8/qosd-calibrate.8.gz \
    /usr/share/bash-completion/completions/qosd /usr/share/zsh/vendor-completions/_qosd \
    /usr/share/fish/vendor_completions.d/qosd.fish /usr/share/doc/qosd/README.md; do
    grep -qxF "$path" <<<"$listed" || fail "dpkg -L qosd does not list $path"
    in_root test -f "$path" || fail "$path is listed but not installed"
done
log "dpkg -L: binary, config, unit, 5 man pages, 3 completions, README"

# What `man -w qosd` finds (minbase has no man-db): man8/qosd.8.gz, gzipped
# roff of section 8 (a daemon, and commands run as root).
for page in qosd qosd-run qosd-check qosd-status qosd-calibrate; do
    in_root sh -c "zcat /usr/share/man/man8/$page.8.gz | grep -q '^\\.TH $page 8 '" ||
        fail "/usr/share/man/man8/$page.8.gz is not a gzipped section 8 page named $page"
done
# The bash completion, sourced, registers itself for qosd.
out=$(in_root bash -c 'source /usr/share/bash-completion/completions/qosd && complete -p qosd')
[[ $out == *"-F _qosd"* ]] || fail "the bash completion does not register for qosd: $out"
log "man pages are gzipped roff; bash completion registers: $out"

# shellcheck disable=SC2016 # a dpkg-query format, not a shell expansion
conffiles=$(in_root dpkg-query -W -f='${Conffiles}' qosd)
grep -qE '^ /etc/qosd/qosd\.toml [0-9a-f]{32}$' <<<"$conffiles" ||
    fail "/etc/qosd/qosd.toml is not a conffile: '$conffiles'"
log "conffile: /etc/qosd/qosd.toml"

cmp -s systemd/qosd.service "$ROOT/usr/lib/systemd/system/qosd.service" ||
    fail "the installed unit differs from systemd/qosd.service"
enabled=$(find "$ROOT/etc/systemd" -name 'qosd.service' 2>/dev/null || true)
[[ -z $enabled ]] || fail "the unit is enabled on install: $enabled"
log "unit: /usr/lib/systemd/system/qosd.service, not enabled"

in_root dpkg --purge qosd >"$ROOT/tmp/dpkg-purge.log" 2>&1 || {
    cat "$ROOT/tmp/dpkg-purge.log" >&2
    fail "dpkg --purge qosd failed"
}
for path in /usr/bin/qosd /etc/qosd/qosd.toml /usr/lib/systemd/system/qosd.service; do
    ! in_root test -e "$path" || fail "$path is still there after dpkg --purge"
done
log "dpkg --purge: removed"

log "ok ($(since "$T0") s)"
