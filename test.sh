#!/bin/bash
# test.sh — everything rcluster is tested with: installs what it lacks (Debian packages),
# starts dockerd when no daemon answers, builds, runs the unit binaries and then the
# integration tests under tests/. Ends with one line "N passed, N failed[, N skipped]".
#
# Environment:
#   REQUIRE_DOCKER=1   a missing or unstartable Docker daemon is a failure (CI sets it);
#                      otherwise the Docker tests are skipped.
#   FAULTS=0           skip the fault-injection tests (tests/test_faults.sh); default: run.
#   DOCKER_TESTS=0     skip the Docker tests.
#   ONLY="lint fuzz safety create day2 moves newuser json data memcheck faults docker rerun valkey podman hostnet airgap swarm scale update"
#                      which groups to run (default: all).
#   FUZZ_SECONDS=15    libFuzzer time per harness; SANITIZE=0 skips the ASan pass of create.
#   NO_INSTALL=1       never call apt-get.
set -u
cd "$(dirname "$0")" || exit 1
TOP=$(pwd)
PASSED=0 FAILED=0 SKIPPED=0
LOGDIR=$(mktemp -d /tmp/rcluster-testsh.XXXXXX)
trap 'rm -rf "$LOGDIR"' EXIT
trap 'echo "interrupted"; exit 130' INT TERM

pass() { PASSED=$((PASSED + 1)); echo "ok - $1"; }
fail() { # NAME WHY [LOGFILE]
    FAILED=$((FAILED + 1)); echo "not ok - $1: $2"
    [ -n "${3:-}" ] && [ -s "$3" ] && tail -n 20 "$3" | awk "{print \"    | \" \$0}"
}
skipped() { SKIPPED=$((SKIPPED + 1)); echo "skip - $1: $2"; }
note() { echo "# $*"; }

# ---- 1. packages ---------------------------------------------------------------------
install_missing() {
    local need=()
    command -v gcc >/dev/null || need+=(build-essential)
    command -v make >/dev/null || need+=(make)
    command -v musl-gcc >/dev/null || need+=(musl-tools)
    command -v redis-server >/dev/null || need+=(redis-server)
    command -v redis-cli >/dev/null || need+=(redis-tools)
    { command -v docker >/dev/null && command -v dockerd >/dev/null; } || need+=(docker.io)
    command -v python3 >/dev/null || need+=(python3)
    command -v clang >/dev/null || need+=(clang)
    dpkg -s libclang-rt-14-dev >/dev/null 2>&1 || need+=(libclang-rt-14-dev)
    command -v timeout >/dev/null || need+=(coreutils)
    command -v valgrind >/dev/null || need+=(valgrind)
    command -v cppcheck >/dev/null || need+=(cppcheck)
    command -v clang-tidy >/dev/null || need+=(clang-tidy)
    command -v podman >/dev/null || need+=(podman)
    dpkg -s python3-redis >/dev/null 2>&1 || need+=(python3-redis)
    command -v ip >/dev/null || need+=(iproute2)
    command -v iptables >/dev/null || need+=(iptables)
    [ ${#need[@]} -eq 0 ] && return 0
    if [ "${NO_INSTALL:-0}" = 1 ] || [ "$(id -u)" != 0 ]; then
        note "missing packages (not installing): ${need[*]}"
        return 0
    fi
    note "installing: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -q && apt-get install -y -q "${need[@]}"; } >"$LOGDIR/apt.log" 2>&1; then
        fail "install packages" "apt-get install ${need[*]} failed" "$LOGDIR/apt.log"
    fi
}
install_missing

# ---- 2. Docker daemon ----------------------------------------------------------------
docker_up() { timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }
DOCKER_OK=0
if [ "${DOCKER_TESTS:-1}" != 0 ]; then
    if docker_up; then
        DOCKER_OK=1
    elif command -v dockerd >/dev/null && [ "$(id -u)" = 0 ] && [ -z "${DOCKER_HOST:-}" ]; then
        note "no Docker daemon answers; starting dockerd (log: /tmp/rcluster-dockerd.log)"
        # detached (own session, no inherited stdin/stdout): it may outlive this script
        if command -v setsid >/dev/null; then setsid nohup dockerd </dev/null >/tmp/rcluster-dockerd.log 2>&1 &
        else nohup dockerd </dev/null >/tmp/rcluster-dockerd.log 2>&1 & fi
        for _ in $(seq 1 30); do docker_up && { DOCKER_OK=1; break; }; sleep 1; done
    fi
    if [ $DOCKER_OK = 1 ]; then
        note "docker daemon $(docker version --format '{{.Server.Version}}' 2>/dev/null) answers"
    elif [ "${REQUIRE_DOCKER:-0}" = 1 ]; then
        fail "docker daemon" "REQUIRE_DOCKER=1 but no Docker daemon answers and dockerd could not be started" /tmp/rcluster-dockerd.log
    else
        note "no Docker daemon: Docker tests will be skipped"
    fi
fi

# ---- 3. build ------------------------------------------------------------------------
build() { # NAME TARGET...
    local name=$1; shift
    local log=$LOGDIR/build-${name//\//_}.log
    if make "$@" >"$log" 2>&1; then pass "build $name"
    else fail "build $name" "make $* failed" "$log"; fi
}
build rcluster rcluster
UNITS=()
for u in unit unit_sds unit_json; do
    if [ -f "tests/$u.c" ]; then UNITS+=("$u"); build "tests/$u" "tests/$u"
    else skipped "build tests/$u" "tests/$u.c does not exist yet"; fi
done
if [ -f rcluster.c ]; then build rcluster-asan rcluster-asan; fi
for u in "${UNITS[@]}"; do build "tests/$u-asan" "tests/$u-asan"; done

# ---- 4. unit binaries ----------------------------------------------------------------
run_unit() { # BINARY
    local b=$1 log=$LOGDIR/$(basename "$1").log
    [ -x "$b" ] || return 0
    timeout -k 10 600 "$b" >"$log" 2>&1
    local rc=$? np nf
    np=$(grep -c '^PASS ' "$log"); nf=$(grep -c '^FAIL ' "$log")
    PASSED=$((PASSED + np)); FAILED=$((FAILED + nf))
    grep '^FAIL ' "$log" | sed "s|^FAIL |not ok - $b: |"
    if grep -q 'Sanitizer\|runtime error:' "$log"; then
        fail "$b" "sanitizer report (exit $rc)" "$log"
    elif [ $rc -ne 0 ] && [ "$nf" -eq 0 ]; then
        fail "$b" "exit $rc without FAIL lines" "$log"
    elif [ $rc -eq 0 ] && [ "$nf" -ne 0 ]; then
        fail "$b" "exit 0 although it printed FAIL lines" "$log"
    else
        echo "# $b: $np PASS, $nf FAIL (exit $rc)"
    fi
}
for u in "${UNITS[@]}"; do run_unit "tests/$u"; done
for u in "${UNITS[@]}"; do run_unit "tests/$u-asan"; done

# ---- 5. integration tests ------------------------------------------------------------
run_script() { # NAME SCRIPT [ENV=VAL...]
    local name=$1 script=$2; shift 2
    local log=$LOGDIR/$name.log
    note "== $script"
    env "$@" timeout -k 20 1500 bash "$script" </dev/null 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]} np nf ns
    np=$(grep -c '^ok - ' "$log"); nf=$(grep -c '^not ok - ' "$log"); ns=$(grep -c '^skip - ' "$log")
    PASSED=$((PASSED + np)); FAILED=$((FAILED + nf)); SKIPPED=$((SKIPPED + ns))
    if [ $rc -ne 0 ] && [ "$nf" -eq 0 ]; then fail "$script" "exited $rc without a failing test" "$log"; fi
}
ONLY=${ONLY:-lint fuzz safety create day2 moves newuser json data memcheck faults docker rerun valkey podman hostnet airgap swarm scale update}
want() { case " $ONLY " in *" $1 "*) return 0 ;; esac; return 1; }

if [ ! -x ./rcluster ]; then
    fail "integration tests" "./rcluster was not built"
else
    want lint && [ -f tests/lint.sh ] && run_script lint tests/lint.sh
    want fuzz && run_script fuzz tests/test_fuzz.sh
    want safety && run_script safety tests/test_safety.sh
    want create && run_script create tests/test_create.sh
    # The same create/check suite once more against the ASan+UBSan build.
    want create && [ -x "$TOP/rcluster-asan" ] && [ "${SANITIZE:-1}" != 0 ] &&
        run_script create-asan tests/test_create.sh RCLUSTER="$TOP/rcluster-asan" TEST_PREFIX=asan
    want day2 && run_script day2 tests/test_day2.sh
    # Slot moves on Valkey 9.1 and Redis 8 (atomic and key by key), from ../shared/servers.
    want moves && run_script moves tests/test_moves.sh DOCKER_OK=$DOCKER_OK
    # redis-cli habits, addresses, advice and output shape (ports 9500-9599).
    want newuser && run_script newuser tests/test_newuser.sh
    # --json: one document for every command and outcome, dry runs and failures too (ports 7470-7479).
    want json && run_script json tests/test_json.sh
    # backup, restore, import: Redis 7.0 and Valkey 9.1 clusters and a standalone source (ports 9600-9699).
    want data && run_script data tests/test_data.sh
    want memcheck && run_script memcheck tests/test_memcheck.sh
    if want faults; then
        if [ "${FAULTS:-1}" = 0 ]; then skipped "tests/test_faults.sh" "FAULTS=0"
        else
            RC_BIN=$TOP/rcluster; [ -x "$TOP/rcluster-asan" ] && RC_BIN=$TOP/rcluster-asan
            run_script faults tests/test_faults.sh RCLUSTER="$RC_BIN"
        fi
    fi
    # up on a host without registry access (a fake daemon; builds the image itself).
    want airgap && run_script airgap tests/test_airgap.sh
    # Podman's Docker-compatible API, on a service of its own (tests/test_podman.sh).
    want podman && run_script podman tests/test_podman.sh
    # Valkey 8.0.1 from ../shared/servers (skipped, saying so, without it).
    want valkey && run_script valkey tests/test_valkey.sh DOCKER_OK=$DOCKER_OK
    # up --network host against the real daemon.
    want hostnet && run_script hostnet tests/test_hostnet.sh DOCKER_OK=$DOCKER_OK
    # up/status/down --swarm on three dockerd in network namespaces (tests/swarm_rig.sh);
    # needs root, skipped otherwise; never touches the host's daemon, so REQUIRE_DOCKER does not apply.
    want swarm && run_script swarm tests/test_swarm.sh
    if want docker; then
        if [ "${DOCKER_TESTS:-1}" = 0 ]; then skipped "tests/test_docker.sh" "DOCKER_TESTS=0"
        else run_script docker tests/test_docker.sh DOCKER_OK=$DOCKER_OK; fi
    fi
    # update: a rolling update of an up cluster's server, config and password (tests/test_update.sh).
    if want update; then
        if [ "${DOCKER_TESTS:-1}" = 0 ]; then skipped "tests/test_update.sh" "DOCKER_TESTS=0"
        else run_script update tests/test_update.sh DOCKER_OK=$DOCKER_OK; fi
    fi
    # scale: grow and shrink an up cluster with keys and a writer (tests/test_scale.sh).
    if want scale; then
        if [ "${DOCKER_TESTS:-1}" = 0 ]; then skipped "tests/test_scale.sh" "DOCKER_TESTS=0"
        else run_script scale tests/test_scale.sh DOCKER_OK=$DOCKER_OK; fi
    fi
    if want rerun; then
        if [ "${DOCKER_TESTS:-1}" = 0 ]; then skipped "tests/test_rerun.sh" "DOCKER_TESTS=0"
        else run_script rerun tests/test_rerun.sh DOCKER_OK=$DOCKER_OK; fi
    fi
fi

if [ "$SKIPPED" -gt 0 ]; then echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
else echo "$PASSED passed, $FAILED failed"; fi
[ "$FAILED" -eq 0 ]
