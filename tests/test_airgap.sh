#!/bin/bash
# tests/test_airgap.sh — `rcluster up` on a host without registry access: against
# tests/fake_docker.py airgap (pulls fail, images exist once imported), the default image
# makes up build rcluster/SERVER:local from the host's redis-server or valkey-server and use
# it; an explicit --image stays an error; no server on PATH gives the old advice.
# The fake runs no containers, so each up ends when starting them fails: the tests judge
# the requests it made (the fake's log), not a cluster. Nothing touches the real daemon.
. "$(dirname "$0")/lib.sh"
cd "$T_TMP" || exit 1
L=$T_TMP/log
mkdir -p "$L"
HERE=$TOP/tests
VALKEY_DIR=${VALKEY_DIR:-$TOP/../shared/servers/valkey-8.0.1}
SOCK=$T_TMP/fd.sock

if [ ! -x "$RCLUSTER" ]; then
    not_ok "airgap: binary" "$RCLUSTER not built"
    finish
fi

start_fake() {
    # (fd.out goes first: an earlier run's "listening" must not answer for this one)
    rm -f "$SOCK" "$SOCK.log" "$L/fd.out"
    python3 "$HERE/fake_docker.py" "$SOCK" airgap >"$L/fd.out" 2>&1 &
    FD_PID=$!
    T_PIDS+=($FD_PID)
    for _ in $(seq 1 200); do grep -q listening "$L/fd.out" 2>/dev/null && [ -S "$SOCK" ] && return 0; sleep 0.05; done
    not_ok "airgap: fake_docker.py did not start" "see its output" "$L/fd.out"
    return 1
}

# up_fake OUT PATH [up args...]: rcluster up against the fake with PATH set (rcluster looks
# for redis-server / valkey-server there, nothing else).
up_fake() {
    local out=$1 path=$2; shift 2
    DOCKER_HOST=unix://$SOCK timeout 120 env PATH="$path" "$RCLUSTER" up --name rcvk-ag --subnet 10.93.0.0/24 \
        --port 7640 --data-dir "$T_TMP/ag-data" --yes --timeout 20 "$@" </dev/null >"$out.out" 2>"$out.err"
    RC=$?
}

t_ag_default_builds() {
    local name="airgap: default image unpullable, redis-server on PATH: up builds rcluster/redis:local and uses it"
    start_fake || return
    local rs; rs=$(command -v redis-server) || { skip "$name" "no redis-server"; stop_pid $FD_PID; return; }
    mkdir -p "$T_TMP/rbin"; ln -sf "$rs" "$T_TMP/rbin/redis-server"
    up_fake "$L/ag1" "$T_TMP/rbin"
    local why=""
    grep -q 'fromImage=redis' "$SOCK.log" || why+="no pull of the default image was tried; "
    grep -qx 'IMPORTED rcluster/redis:local' "$SOCK.log" || why+="rcluster/redis:local was not imported; "
    grep -qx 'IMAGE rcluster/redis:local' "$SOCK.log" || why+="containers were not created from rcluster/redis:local ($(grep '^IMAGE' "$SOCK.log" | head -1)); "
    grep -qx 'CMD \["redis-server", "/etc/redis/redis.conf"\]' "$SOCK.log" || why+="container Cmd is not redis-server /etc/redis/redis.conf; "
    [ "$(grep -c 'building rcluster/redis:local' "$L/ag1.err")" = 1 ] || why+="not exactly one progress line about building rcluster/redis:local; "
    grep -q 'Packing' "$L/ag1.err" && why+="image build's own progress shows (want one line); "
    stop_pid $FD_PID
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/ag1.err" "$SOCK.log"; fi
}

t_ag_valkey_only() {
    local name="airgap: only valkey-server on PATH: up builds rcluster/valkey:local and runs valkey-server"
    if [ ! -x "$VALKEY_DIR/valkey-server" ]; then skip "$name" "no Valkey binaries in $VALKEY_DIR"; return; fi
    start_fake || return
    mkdir -p "$T_TMP/vbin"; ln -sf "$VALKEY_DIR/valkey-server" "$T_TMP/vbin/valkey-server"
    up_fake "$L/ag2" "$T_TMP/vbin"
    local why=""
    grep -qx 'IMPORTED rcluster/valkey:local' "$SOCK.log" || why+="rcluster/valkey:local was not imported; "
    grep -qx 'IMAGE rcluster/valkey:local' "$SOCK.log" || why+="containers were not created from rcluster/valkey:local; "
    grep -qx 'CMD \["valkey-server", "/etc/valkey/redis.conf"\]' "$SOCK.log" || why+="container Cmd is not valkey-server /etc/valkey/redis.conf; "
    stop_pid $FD_PID
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/ag2.err" "$SOCK.log"; fi
}

t_ag_explicit_image() {
    local name="airgap: an explicit --image that cannot be pulled stays an error (nothing built, nothing created)"
    start_fake || return
    up_fake "$L/ag3" "$T_TMP/rbin" --image rcvk-test/nowhere:1
    local why=""
    [ $RC -eq 1 ] || why+="exit $RC (want 1); "
    contains "$L/ag3.err" "rcvk-test/nowhere:1" "could not be pulled" || why+="error does not name the image and the pull; "
    grep -q '^IMPORTED' "$SOCK.log" && why+="an image was built; "
    grep -q 'containers/create' "$SOCK.log" && why+="containers were created; "
    stop_pid $FD_PID
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/ag3.err"; fi
}

t_ag_nothing_to_build() {
    local name="airgap: no redis-server or valkey-server on PATH: today's advice (image build / image load)"
    start_fake || return
    up_fake "$L/ag4" /nonexistent
    local why=""
    [ $RC -eq 1 ] || why+="exit $RC (want 1); "
    contains "$L/ag4.err" "image build" "image load" || why+="error does not name image build and image load; "
    grep -q '^IMPORTED' "$SOCK.log" && why+="an image was built; "
    stop_pid $FD_PID
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/ag4.err"; fi
}

t_ag_default_builds
t_ag_valkey_only
t_ag_explicit_image
t_ag_nothing_to_build
finish
