#!/bin/bash
# tests/test_faults.sh — rcluster against peers that misbehave (tests/fake_redis.py on
# 127.0.0.1:7070-7079, tests/fake_docker.py on a unix socket in a tmp dir).
# Every case demands: non-zero exit below 128 (no crash, no hang), within --timeout + 5 s,
# no sanitizer report (test.sh runs this with ./rcluster-asan when it exists), and a
# message on stderr that names the node or the request.
. "$(dirname "$0")/lib.sh"
cd "$T_TMP" || exit 1
L=$T_TMP/log
mkdir -p "$L"
HERE=$TOP/tests
TMO=5                  # --timeout given to rcluster
LIMIT=$((TMO + 5))     # seconds it may take
CHECK_LIMIT=20         # check and image build have no --timeout in the contract: their
                       # own network timeouts must stop them within this

if [ ! -x "$RCLUSTER" ]; then
    not_ok "faults: binary" "$RCLUSTER not built"
    finish
fi

# start_fake_redis PORT SCENARIO [ARG]
start_fake_redis() {
    local port=$1; shift
    rm -f "$L/fr-$port.out"   # an earlier fake's "listening" must not answer for this one
    python3 "$HERE/fake_redis.py" "$port" "$@" >"$L/fr-$port.out" 2>&1 &
    T_PIDS+=($!)
    FR_PIDS+=($!)
    if ! wait_for 15 grep -q listening "$L/fr-$port.out"; then
        not_ok "faults: fake_redis.py $port $* did not start" "see its output" "$L/fr-$port.out"
        return 1
    fi
}
stop_fakes() {
    local p
    for p in "${FR_PIDS[@]}"; do stop_pid "$p"; done
    FR_PIDS=()
}
FR_PIDS=()

# judge NAME TAG "SUB1|SUB2" (stderr must contain all) [ANY1/ANY2 (at least one)]
judge() {
    local name=$1 tag=$2 all=$3 any=${4:-}
    local why=""
    if [ "$RC" -eq 0 ]; then why+="exit 0; "; fi
    if [ "$RC" -ge 124 ] && [ "$RC" -ne 130 ]; then
        case $RC in 124|137) why+="did not finish (killed by the test after its limit); " ;;
                    *) why+="crashed (exit $RC); " ;; esac
    fi
    grep -q 'Sanitizer\|runtime error:' "$L/$tag.err" && why+="sanitizer report; "
    local lim=${CASE_LIMIT:-$LIMIT}
    [ "$RC_MS" -le $((lim * 1000)) ] || why+="took ${RC_MS}ms (limit ${lim}s); "
    local IFS='|' s
    if [ -n "$all" ]; then
        for s in $all; do contains "$L/$tag.err" "$s" || why+="stderr lacks '$s'; "; done
    fi
    if [ -n "$any" ]; then
        IFS='/'
        local hit=0
        for s in $any; do contains "$L/$tag.err" "$s" && hit=1; done
        [ $hit = 1 ] || why+="stderr mentions none of '$any'; "
    fi
    unset IFS
    if [ -z "$why" ]; then ok "$name (exit $RC, ${RC_MS}ms)"; else not_ok "$name" "$why" "$L/$tag.err"; fi
}

# ---- Redis side --------------------------------------------------------------------

redis_check_case() { # SCENARIO [ARG]
    local sc=$1 arg=${2:-}
    start_fake_redis 7070 "$sc" $arg || { stop_fakes; return; }
    run_rc "$L/chk-$sc" $((CHECK_LIMIT + 20)) -- check 127.0.0.1:7070
    CASE_LIMIT=$CHECK_LIMIT judge "faults: check vs fake redis '$sc${arg:+ $arg}'" "chk-$sc" "127.0.0.1:7070"
    stop_fakes
}

# create against three fakes: the first runs SCENARIO, or all three when ALL=1
redis_create_case() { # SCENARIO [ARG] ; env ALL=1, ANY="a/b"
    local sc=$1 arg=${2:-}
    if [ "${ALL:-0}" = 1 ]; then
        start_fake_redis 7070 "$sc" $arg && start_fake_redis 7071 "$sc" $arg && start_fake_redis 7072 "$sc" $arg
    else
        start_fake_redis 7070 "$sc" $arg && start_fake_redis 7071 normal && start_fake_redis 7072 normal
    fi || { stop_fakes; return; }
    local tag=cr-$sc-${arg:-x}
    run_rc "$L/$tag" $((LIMIT + 20)) -- create --replicas 0 --yes --timeout $TMO 127.0.0.1:7070 127.0.0.1:7071 127.0.0.1:7072
    judge "faults: create vs fake redis '$sc${arg:+ $arg}'${ALL:+ on every node}" "$tag" "127.0.0.1:707" "${ANY:-}"
    stop_fakes
}

for sc in garbage wrong_type stall huge_bulk; do redis_check_case $sc; done
redis_check_case drop_after 1
for sc in garbage wrong_type stall huge_bulk; do redis_create_case $sc; done
redis_create_case drop_after 2
redis_create_case drop_after 6
ANY="fake failure" redis_create_case error_on INFO
# a refused cluster-changing command fails create at once, with the node's own words
# (not at --timeout); below Redis 7 slots go out with ADDSLOTS, so the fakes say 6.2.14
for cmd in MEET ADDSLOTSRANGE SET-CONFIG-EPOCH; do
    CASE_LIMIT=$((TMO - 2)) ALL=1 ANY="fake failure on $cmd" redis_create_case error_on $cmd
done
FAKE_REDIS_VERSION=6.2.14 CASE_LIMIT=$((TMO - 2)) ALL=1 ANY="fake failure on ADDSLOTS" redis_create_case error_on ADDSLOTS
# restoring the formation settings fails: exit non-zero naming each node and the value still set
ALL=1 ANY="NOT restored" redis_create_case config_set_once
grep -q "127.0.0.1:7070: cluster-node-timeout is still 500 (was 5000)" "$L/cr-config_set_once-x.err" ||
    not_ok "faults: unrestored settings are named per node and value" "stderr lacks '127.0.0.1:7070: cluster-node-timeout is still 500 (was 5000)'" "$L/cr-config_set_once-x.err"
# a healthy-looking set of fakes that never converges: create must stop at --timeout
ALL=1 ANY="timeout/timed out/time" redis_create_case normal

# ---- Docker side -------------------------------------------------------------------

start_fake_docker() { # SCENARIO [ARG]
    rm -f "$T_TMP/fd.sock" "$T_TMP/fd.sock.log" "$L/fd.out"
    python3 "$HERE/fake_docker.py" "$T_TMP/fd.sock" "$@" >"$L/fd.out" 2>&1 &
    FD_PID=$!; T_PIDS+=($FD_PID)
    if ! wait_for 15 grep -q listening "$L/fd.out"; then
        not_ok "faults: fake_docker.py $* did not start" "see its output" "$L/fd.out"
        return 1
    fi
}

# docker_case SCENARIO "ANY1/ANY2" [ARG] -- rcluster ARGS
docker_case() {
    local sc=$1 any=$2; shift 2
    local arg=""
    [ "$1" != "--" ] && { arg=$1; shift; }
    shift
    start_fake_docker "$sc" $arg || { stop_pid "$FD_PID"; return; }
    local tag=dk-$sc-${arg:-x}
    local t0=$(date +%s%N)
    DOCKER_HOST=unix://$T_TMP/fd.sock timeout -k 5 $((LIMIT + 20)) "$RCLUSTER" "$@" </dev/null >"$L/$tag.out" 2>"$L/$tag.err"
    RC=$?
    RC_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
    judge "faults: ${*:1:1} vs fake docker '$sc${arg:+ $arg}'" "$tag" "" "$any"
    if [ -e "$T_TMP/fdata" ]; then
        not_ok "faults: ${*:1:1} vs fake docker '$sc': no data dir left" "$T_TMP/fdata was created"
    fi
    rm -rf "$T_TMP/fdata"
    cp "$T_TMP/fd.sock.log" "$L/$tag.requests" 2>/dev/null
    stop_pid "$FD_PID"
}

UPARGS=(up --name rcfault --subnet 10.85.0.0/24 --port 7361 --image fake:1 --nodes 6 --replicas 1
        --data-dir "$T_TMP/fdata" --yes --timeout $TMO)
REQ="_ping/GET /POST /containers/networks/images/docker"
for sc in 500json 500plain close_mid_header close_mid_chunk bad_chunk_size endless_header \
          huge_content_length never_answer; do
    docker_case $sc "$REQ" -- "${UPARGS[@]}"
done
docker_case 500json "fake daemon: internal error" -- "${UPARGS[@]}"   # the daemon's own words
docker_case api_version_out_of_range "1.12/API version/api version" 1.12 -- "${UPARGS[@]}"
CASE_LIMIT=60 docker_case pull_error_in_stream "stream failed half way" -- image build --tag rcfault/redis:1
docker_case 409_on_create "409/Conflict" -- "${UPARGS[@]}"
grep -q containers/create "$L/dk-409_on_create-x.requests" 2>/dev/null ||
    not_ok "faults: up vs fake docker '409_on_create' reached containers/create" "no POST .../containers/create was sent" "$L/dk-409_on_create-x.requests"

# an API version above ours must not crash (negotiating down is fine): exit < 128, no report
start_fake_docker api_version_out_of_range 9.99
DOCKER_HOST=unix://$T_TMP/fd.sock run_rc "$L/dk-999" $((LIMIT + 20)) -- status --name rcfault
if [ $RC -ge 124 ] && [ $RC -ne 130 ] || grep -q 'Sanitizer\|runtime error:' "$L/dk-999.err"; then
    not_ok "faults: status vs fake docker Api-Version 9.99 does not crash" "exit $RC" "$L/dk-999.err"
else ok "faults: status vs fake docker Api-Version 9.99 does not crash (exit $RC)"; fi
stop_pid "$FD_PID"

finish
