#!/bin/bash
# tests/test_fuzz.sh — short libFuzzer passes (ASan+UBSan+LeakSanitizer) over every parser
# harness under tests/fuzz, seeded with the committed corpus and regression inputs.
# FUZZ_SECONDS per harness (default 15). A crash, leak or timeout fails that harness; the
# input is kept under $FUZZ_WORK for inspection. Needs clang with libclang-rt (fuzzer).
source "$(dirname "$0")/lib.sh"
cd "$TOP" || exit 1
SECONDS_EACH=${FUZZ_SECONDS:-15}
WORK=${FUZZ_WORK:-/tmp/rcluster-fuzz}
if ! command -v clang >/dev/null; then skip "fuzz" "clang not installed"; finish; fi
for src in tests/fuzz/fuzz_*.c; do
    h=$(basename "$src" .c)
    if ! make -s "tests/fuzz/$h" >"$T_TMP/$h.build" 2>&1; then
        not_ok "fuzz: build $h" "make tests/fuzz/$h failed" "$T_TMP/$h.build"; continue
    fi
    mkdir -p "$WORK/$h" "tests/fuzz/regressions/$h"
    # Regression inputs first: each must run clean on its own.
    regs=(tests/fuzz/regressions/$h/*)
    if [ -e "${regs[0]}" ] && ! "./tests/fuzz/$h" "${regs[@]}" >"$T_TMP/$h.reg" 2>&1; then
        not_ok "fuzz: $h regressions" "a saved crasher fails again" "$T_TMP/$h.reg"; continue
    fi
    if "./tests/fuzz/$h" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
           -artifact_prefix="$WORK/$h-" "$WORK/$h" "tests/fuzz/corpus/$h" >"$T_TMP/$h.log" 2>&1; then
        runs=$(grep -o 'Done [0-9]* runs' "$T_TMP/$h.log" | tail -1)
        ok "fuzz: $h ${SECONDS_EACH}s, ${runs:-no count}, no crash/leak/timeout"
    else
        not_ok "fuzz: $h" "crash, leak or timeout (artifact under $WORK)" "$T_TMP/$h.log"
    fi
done
finish
