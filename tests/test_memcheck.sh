#!/bin/bash
# tests/test_memcheck.sh — one full `create` (6 nodes, 1 replica) and one `check` under
# valgrind --leak-check=full: zero errors, zero leaks. Uses a dynamic glibc debug build
# (valgrind cannot intercept malloc in the static product). Ports 7080-7085.
source "$(dirname "$0")/lib.sh"
cd "$TOP" || exit 1
if ! command -v valgrind >/dev/null; then skip "memcheck" "valgrind not installed"; finish; fi
if ! make -s rcluster-dbg >"$T_TMP/build.log" 2>&1; then
    not_ok "memcheck: build rcluster-dbg" "make failed" "$T_TMP/build.log"; finish
fi
start_nodes 7080 6 || { not_ok "memcheck: start nodes" "redis-server did not start"; finish; }
RCLUSTER=$T_TMP/rcluster-vg
printf '#!/bin/sh\nexec valgrind --leak-check=full --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 %s "$@"\n' "$TOP/rcluster-dbg" >"$RCLUSTER"
chmod +x "$RCLUSTER"
run_rc "$T_TMP/create" 120 -- create --yes --replicas 1 --timeout 60 $(addrs 7080 6)
if [ $RC -eq 0 ] && grep -q 'ERROR SUMMARY: 0 errors' "$T_TMP/create.err"; then
    ok "memcheck: create under valgrind: 0 errors, no leaks"
else
    not_ok "memcheck: create under valgrind" "exit $RC" "$T_TMP/create.err"
fi
run_rc "$T_TMP/check" 60 -- check --json 127.0.0.1:7080
if [ $RC -eq 0 ] && grep -q 'ERROR SUMMARY: 0 errors' "$T_TMP/check.err"; then
    ok "memcheck: check under valgrind: 0 errors, no leaks"
else
    not_ok "memcheck: check under valgrind" "exit $RC" "$T_TMP/check.err"
fi
finish
