#!/usr/bin/env bash
# run_fuzz.sh -- runs a libFuzzer target for a bounded time from its own seed corpus.
#
# Usage: run_fuzz.sh <fuzzer> <seconds> <crash-dir>
#
# The corpus (seeds written by `<fuzzer> --write-seeds=DIR`, then whatever the run adds)
# lives in a temporary directory that is always removed, so nothing is written to the
# source tree and every run starts from the same seeds.  A crash, an invariant violation
# (abort), a leak, a timeout or an out-of-memory fails the test; the offending input is
# kept in <crash-dir> and printed as hex, so the failure can be replayed with
# `<fuzzer> <crash-dir>/<file>`.
set -euo pipefail

fuzzer=$1
seconds=$2
crash_dir=$3

work=$(mktemp -d "${TMPDIR:-/tmp}/cf_fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/corpus" "$work/artifacts"

"$fuzzer" --write-seeds="$work/corpus"
seeds=$(find "$work/corpus" -type f | wc -l)
if [ "$seeds" -eq 0 ]; then
    echo "run_fuzz: $fuzzer wrote no seeds" >&2
    exit 1
fi
echo "run_fuzz: $seeds seeds, fuzzing for ${seconds}s"

# -max_len: a message with the largest body (CF__WIRE_HDR + CF__BODY_MAX = 77840 bytes)
# and the start of the next one fit.
rc=0
"$fuzzer" -max_total_time="$seconds" -max_len=80000 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/" "$work/corpus" || rc=$?

found=$(find "$work/artifacts" -type f)
if [ "$rc" -ne 0 ] || [ -n "$found" ]; then
    echo "run_fuzz: FAILED (exit status $rc)" >&2
    mkdir -p "$crash_dir"
    for f in $found; do
        cp "$f" "$crash_dir/"
        echo "run_fuzz: input kept as $crash_dir/$(basename "$f"), $(stat -c %s "$f") bytes:" >&2
        od -An -tx1 -v "$f" | head -n 64 >&2
    done
    exit 1
fi
