#!/bin/bash
# tests/lint.sh — static analysis of rcluster.c and vendor/: cppcheck and clang-tidy
# (bugprone-*, cert-*, clang-analyzer-*). Prints one "ok - ..." / "not ok - ..." line per
# tool and "skip - ..." when a tool is not installed. Run by test.sh.
cd "$(dirname "$0")/.." || exit 1
TIDY_CHECKS='-*,bugprone-*,cert-*,clang-analyzer-*'
# Off, with reasons: Annex K "_s" functions do not exist in glibc/musl; swappable
# parameters and reserved-identifier rules flag the sds API shape people expect;
# cert-err33-c wants every printf's result checked (stdout errors surface at exit).
TIDY_CHECKS+=',-clang-analyzer-security.insecureAPI.DeprecatedOrUnsafeBufferHandling'
TIDY_CHECKS+=',-bugprone-easily-swappable-parameters,-bugprone-reserved-identifier'
TIDY_CHECKS+=',-cert-dcl37-c,-cert-dcl51-cpp,-cert-err33-c'
status=0
if command -v cppcheck >/dev/null; then
    out=$(timeout 600 cppcheck --enable=warning,portability,performance --std=c11 --quiet \
          --inline-suppr --error-exitcode=1 -I vendor rcluster.c vendor/sds.c 2>&1)
    if [ $? -eq 0 ]; then echo "ok - cppcheck"; else echo "not ok - cppcheck"; echo "$out" | head -40; status=1; fi
else
    echo "skip - cppcheck: not installed"
fi
if command -v clang-tidy >/dev/null; then
    out=$(timeout 900 clang-tidy --quiet -checks="$TIDY_CHECKS" --warnings-as-errors='*' \
          rcluster.c vendor/sds.c tests/unit_json.c -- -std=gnu11 -I. 2>&1)
    if [ $? -eq 0 ]; then echo "ok - clang-tidy"; else echo "not ok - clang-tidy"; echo "$out" | grep -E 'warning:|error:' | head -40; status=1; fi
else
    echo "skip - clang-tidy: not installed"
fi
exit $status
