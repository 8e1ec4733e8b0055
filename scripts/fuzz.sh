#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer) of every decoder fed by the network or the disk.
#
#   scripts/fuzz.sh                    every target, 20 s each (the bounded run of scripts/test.sh)
#   scripts/fuzz.sh FuzzWALSegment 600 one target for 10 minutes (a long campaign: any number of seconds)
#   FUZZ_JOBS=2 scripts/fuzz.sh T 3600 (extra libFuzzer flags: FUZZ_FLAGS="-max_len=65536")
#
# Targets (Sources/Fuzz/<name>/main.swift): FuzzPeerWire, FuzzClientFrame, FuzzHTTPRequest, FuzzWALSegment,
# FuzzShardSnapshot, FuzzShardCommand. Every Swift module is built with -sanitize=fuzzer,address into its own
# build directory (.build-fuzz; the targets exist only when SUTRA_FUZZ is set, see Package.swift), so libFuzzer
# sees the Swift code's coverage. The corpus grows in .build-fuzz/corpus/<name> (seeded by the target's own
# encoders); a crash leaves .build-fuzz/crashes/<name>/crash-* — replay it with
# `.build-fuzz/debug/<name> <file>`. Exit status: 0 if no target crashed, 1 if one crashed or does not build,
# 2 if the toolchain has no libFuzzer (skipped).
set -uo pipefail
cd "$(dirname "$0")/.."
ALL="FuzzPeerWire FuzzClientFrame FuzzHTTPRequest FuzzWALSegment FuzzShardSnapshot FuzzShardCommand"
TARGETS="${1:-$ALL}"
SECONDS_EACH="${2:-20}"
BUILD=.build-fuzz
export SUTRA_FUZZ=1

build() {
    mkdir -p "$BUILD"
    for t in $TARGETS; do
        # lld: Debian 12's gold crashes (internal error in format_file_lineno) linking these.
        if ! swift build -c debug --build-path "$BUILD" -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld \
                --product "$t" >"$BUILD/build-$t.log" 2>&1; then
            grep -E "error" "$BUILD/build-$t.log" | head -10 >&2
            return 1
        fi
    done
}

# A toolchain without libFuzzer (compiler-rt's libclang_rt.fuzzer) cannot run these: skip, saying so. With it,
# a target that does not compile is a failure like any other.
toolchain_lib="$(dirname "$(readlink -f "$(command -v swiftc)")")/../lib"
if ! find "$toolchain_lib" -name 'libclang_rt.fuzzer-*.a' 2>/dev/null | grep -q .; then
    echo "fuzz: this Swift toolchain has no libFuzzer (libclang_rt.fuzzer under $toolchain_lib); skipping" >&2
    exit 2
fi
if ! build; then
    echo "fuzz: the fuzz targets do not build (see $BUILD/build-*.log)" >&2
    exit 1
fi

failed=0
for t in $TARGETS; do
    corpus="$BUILD/corpus/$t"; crashes="$BUILD/crashes/$t"
    mkdir -p "$corpus" "$crashes"
    "$BUILD/debug/$t" --write-seeds "$corpus"
    echo "==> fuzz $t for ${SECONDS_EACH}s (corpus $(ls "$corpus" | wc -l) inputs)"
    log="$BUILD/$t.log"
    ASAN_OPTIONS="detect_leaks=0:${ASAN_OPTIONS:-}" "$BUILD/debug/$t" -max_total_time="$SECONDS_EACH" -max_len=8192 \
        -print_final_stats=1 -artifact_prefix="$crashes/" ${FUZZ_FLAGS:-} "$corpus" >"$log" 2>&1
    rc=$?
    # The first and last coverage lines show the Swift code's coverage growing.
    grep -E "INITED|#[0-9]+.*(NEW|REDUCE|pulse|DONE)" "$log" | sed -n '1p;$p' | sed "s/^/    /"
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$log" | sed "s/^/    /"
    if [ $rc -ne 0 ]; then
        echo "    CRASH in $t (exit $rc): $(ls -t "$crashes" | head -1) — see $log"
        grep -E "ERROR|Fatal error|Precondition|SUMMARY" "$log" | head -5 | sed "s/^/    /"
        failed=1
    fi
done
exit $failed
