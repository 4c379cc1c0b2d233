#!/usr/bin/env bash
# run.sh -- install smoke test: installs a build into a temporary prefix and builds and runs
# tests/install/consumer.c against it, once through pkg-config and once through
# find_package(cfutures) (shared and static), checking each really used that prefix.
#
# Usage: run.sh <build-dir> <cmake> <c-compiler> <libdir relative to prefix> <config>
set -euo pipefail

build=$1 cmake=$2 cc=$3 libdir=$4 config=$5
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cfutures-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

step() { echo "-- install test: $*"; }
fail() { echo "install test FAILED: $*" >&2; exit 1; }

step "cmake --install into $prefix"
"$cmake" --install "$build" --prefix "$prefix" --config "$config" >"$tmp/install.log" ||
    { cat "$tmp/install.log"; fail "cmake --install"; }
for f in include/cfutures.h "$libdir/libcfutures.so.0" "$libdir/libcfutures.a" \
    "$libdir/pkgconfig/cfutures.pc" "$libdir/cmake/cfutures/cfuturesConfig.cmake" \
    "$libdir/cmake/cfutures/cfuturesConfigVersion.cmake"; do
    [ -e "$prefix/$f" ] || fail "$f was not installed"
done

step "pkg-config"
# PKG_CONFIG_LIBDIR replaces the default search path: only the prefix under test counts.
export PKG_CONFIG_LIBDIR="$prefix/$libdir/pkgconfig"
unset PKG_CONFIG_PATH
flags=$(pkg-config --cflags --libs cfutures) || fail "pkg-config does not know cfutures"
echo "   $flags"
case "$flags" in *"-I$prefix/include"*"-L$prefix/$libdir"*) ;;
    *) fail "pkg-config flags do not point into $prefix" ;; esac
case " $(pkg-config --static --libs cfutures) " in *" -pthread "*) ;;
    *) fail "pkg-config --static --libs lacks -pthread" ;; esac
# shellcheck disable=SC2086 # the flags are a word list
"$cc" "$here/consumer.c" $flags -Wl,-rpath,"$prefix/$libdir" -o "$tmp/consumer_pc"
# ldd's output is captured first: with pipefail, "ldd | grep -q" fails whenever grep exits
# on its match before ldd has finished writing (SIGPIPE), which made this check flaky.
links_to() { local deps; deps=$(ldd "$1") && grep -qF -- "$2" <<<"$deps"; }
links_to "$tmp/consumer_pc" "$prefix/$libdir/libcfutures.so.0" ||
    fail "consumer_pc does not load the installed libcfutures.so.0"
"$tmp/consumer_pc" || fail "consumer_pc"

step "find_package(cfutures)"
"$cmake" -S "$here/project" -B "$tmp/project-build" -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
    -DCF_EXPECTED_PREFIX="$prefix" >"$tmp/configure.log" ||
    { cat "$tmp/configure.log"; fail "configuring the find_package consumer"; }
"$cmake" --build "$tmp/project-build" >"$tmp/build.log" ||
    { cat "$tmp/build.log"; fail "building the find_package consumer"; }
links_to "$tmp/project-build/consumer_shared" "$prefix/$libdir/libcfutures.so.0" ||
    fail "consumer_shared does not load the installed libcfutures.so.0"
if links_to "$tmp/project-build/consumer_static" libcfutures; then
    fail "consumer_static links libcfutures dynamically"
fi
"$tmp/project-build/consumer_shared" || fail "consumer_shared"
"$tmp/project-build/consumer_static" || fail "consumer_static"

step "the installed cfutures command and its modules"
for name in download images; do
    [ -e "$prefix/$libdir/cfutures/cfutures-$name.so" ] || fail "cfutures-$name.so not installed"
    "$prefix/bin/cfutures" "$name" --help >"$tmp/help.txt" ||
        fail "the installed cfutures cannot run '$name' (its module)"
done
"$prefix/bin/cfutures" sleep -n 2 -s 0 --mode processes >"$tmp/sleep.txt" ||
    fail "the installed cfutures cannot run a process pool"
step "passed"
