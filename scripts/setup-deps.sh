#!/usr/bin/env bash
# setup-deps.sh -- installs the Debian packages a build group needs, and nothing else.
#
# Usage: scripts/setup-deps.sh [test|bench|demo]...   (no group means "test")
#
# Idempotent: asks dpkg-query which packages are missing and installs only those, running
# `apt-get update` only when something is missing, so a machine that already has everything
# pays one dpkg-query and prints nothing.  Machines are handed over fresh, so every make
# target that needs packages calls this first instead of relying on what a person installed.
set -euo pipefail

base=(build-essential cmake pkg-config)
# Tests need cmocka; python3 runs the scripted tests; the wire decoder's fuzz test needs
# clang and its libFuzzer/sanitizer runtimes (libclang-rt-14-dev: only recommended by clang
# on Debian 12, which --no-install-recommends skips; 14 is the version `clang` means there).
# The demo builds the default configuration, which includes the tests, so it needs the same set.
# The cfutures command downloads with libcurl (tested against a loopback nginx) and
# processes images with libvips (checked against Pillow on mate-backgrounds' photos); the
# demo's report page is rendered in headless Chromium.
test_pkgs=("${base[@]}" libcmocka-dev python3 clang libclang-rt-14-dev libcurl4-openssl-dev libvips-dev nginx-light python3-pil mate-backgrounds chromium)
# The benchmarks compare against GLib's thread pool, libuv's work queue and oneTBB.
bench_pkgs=("${test_pkgs[@]}" libglib2.0-dev libuv1-dev libtbb-dev)

groups=("$@")
[ ${#groups[@]} -eq 0 ] && groups=(test)

wanted=()
for g in "${groups[@]}"; do
    case "$g" in
        test | demo) wanted+=("${test_pkgs[@]}") ;;
        bench) wanted+=("${bench_pkgs[@]}") ;;
        *)
            echo "setup-deps: unknown group '$g' (expected test, bench or demo)" >&2
            exit 2
            ;;
    esac
done

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "setup-deps: not a Debian system; make sure these are installed: ${wanted[*]}" >&2
    exit 0
fi

missing=()
for p in $(printf '%s\n' "${wanted[@]}" | sort -u); do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "setup-deps: missing ${missing[*]}, and not root and no sudo to install them" >&2
    exit 1
fi

echo "setup-deps: installing ${missing[*]}"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}"
