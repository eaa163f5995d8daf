#!/bin/bash
# tests/test_podman.sh — `rcluster image/up/status/down` against Podman's Docker-compatible
# API: a `podman system service` of its own on a socket in a tmp dir, with its own storage
# (vfs, under the tmp dir) and DOCKER_HOST pointing at it. Image rcvk-test/redis:local,
# cluster rcvk-pm (subnet 10.92.0.0/24, ports 7620-7625, bus +10000).
#
# Test-environment setting, not something rcluster does: Podman gives containers default
# ulimits (nproc, nofile) that this sandbox cannot apply ("error setting rlimits ...
# operation not permitted"), so the service runs with CONTAINERS_CONF pointing at a
# containers.conf whose default_ulimits stay within this shell's hard limits.
. "$(dirname "$0")/lib.sh"
cd "$T_TMP" || exit 1
L=$T_TMP/log
mkdir -p "$L"
IMG=rcvk-test/redis:local
NAME=rcvk-pm
BASE=7620
DATA=$T_TMP/data
TESTS=(t_pm_image t_pm_load t_pm_up t_pm_status t_pm_rerun t_pm_repair t_pm_down_up t_pm_purge)

why_skip=""
command -v podman >/dev/null || why_skip="podman is not installed (apt-get install podman)"
[ -z "$why_skip" ] && [ "$(id -u)" != 0 ] && why_skip="needs root for a rootful podman service"
[ -z "$why_skip" ] && ! command -v redis-server >/dev/null && why_skip="no redis-server to build the image from"
if [ -n "$why_skip" ]; then
    for t in "${TESTS[@]}"; do skip "podman: $t" "$why_skip"; done
    exit 0
fi
if [ ! -x "$RCLUSTER" ]; then
    not_ok "podman: binary" "$RCLUSTER not built"
    finish
fi

PR=$T_TMP/podman-root PRR=$T_TMP/podman-run SOCK=$T_TMP/podman.sock
cat >"$T_TMP/containers.conf" <<EOF
[containers]
default_ulimits = ["nproc=4096:4096", "nofile=$(ulimit -Hn):$(ulimit -Hn)"]
EOF
export CONTAINERS_CONF=$T_TMP/containers.conf
P() { podman --root "$PR" --runroot "$PRR" --storage-driver vfs "$@"; }

# Podman's own CLI on the same storage, for what the tests do behind rcluster's back.
podman_clean() {
    local ids
    ids=$(P ps -aq --filter "label=$LABEL=$NAME" 2>/dev/null)
    [ -n "$ids" ] && P rm -f $ids >/dev/null 2>&1
    P network rm -f $NAME >/dev/null 2>&1
    return 0
}
# Not through P(): $! must be podman itself, so that stop_pid stops the service.
podman --root "$PR" --runroot "$PRR" --storage-driver vfs system service --time=0 "unix://$SOCK" >"$L/service.log" 2>&1 &
PSVC=$!
T_PIDS+=($PSVC)
# Cleanup order (reverse): remove our containers and network, stop the service, then the
# storage (vfs layers are plain directories).
T_CLEANUPS+=("rm -rf '$PR' '$PRR'" "stop_pid $PSVC" podman_clean)
export DOCKER_HOST=unix://$SOCK
for _ in $(seq 1 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
if [ ! -S "$SOCK" ]; then
    not_ok "podman: system service" "no socket at $SOCK" "$L/service.log"
    finish
fi

UP_ARGS=(--name $NAME --subnet 10.92.0.0/24 --port $BASE --image $IMG --data-dir "$DATA" --yes --timeout 120)
DOCKER_CLI=P   # owned, ids_of (tests/lib.sh) ask Podman's own CLI

judge() { # TAG: redis-cli check, 3 masters + 3 replicas, keys
    cli_check "$1" "127.0.0.1:$BASE" "" && check_roles "$1" 3 3 || return 1
    keys_roundtrip $BASE 50 >"$L/$1.keys" || { echo "keys: $(head -1 "$L/$1.keys")"; return 1; }
}

t_pm_image() {
    local name="podman: image build --tag $IMG is tagged $IMG (not latest)"
    run_rc "$L/img" 300 -- image build --tag $IMG
    if [ $RC -ne 0 ]; then not_ok "$name" "exit $RC" "$L/img.err" "$L/service.log"
    elif ! P image exists $IMG; then not_ok "$name" "no image $IMG afterwards: $(P images --format '{{.Repository}}:{{.Tag}}' | tr '\n' ' ')" "$L/img.err"
    else ok "$name"; fi
}

t_pm_load() {
    local name="podman: image load of a saved archive brings $IMG back"
    local why=""
    P save -o "$T_TMP/img.tar" $IMG >"$L/save.log" 2>&1 || why+="podman save failed; "
    P rmi -f $IMG >/dev/null 2>&1
    P image exists $IMG && why+="podman rmi did not remove $IMG; "
    run_rc "$L/load" 300 -- image load "$T_TMP/img.tar"
    [ $RC -eq 0 ] || why+="image load exit $RC; "
    P image exists $IMG || why+="no image $IMG after image load; "
    rm -f "$T_TMP/img.tar"
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/load.err" "$L/save.log"; fi
}

t_pm_up() {
    local name="podman: up 6 nodes/1 replica judged by redis-cli"
    run_rc "$L/up" 240 -- up "${UP_ARGS[@]}"
    if [ $RC -ne 0 ]; then not_ok "$name" "exit $RC" "$L/up.err" "$L/service.log"; return; fi
    local why
    why=$(judge up) || { not_ok "$name" "$why" "$L/up.err" "$L/up.check"; return; }
    [ "$(owned $NAME)" = "6 1" ] || { not_ok "$name" "labelled containers/networks: $(owned $NAME) (want 6 1)"; return; }
    ok "$name"
}

t_pm_status() {
    local name="podman: status lists 6 running containers and a healthy cluster"
    run_rc "$L/st" 60 -- status --name $NAME
    local why=""
    [ $RC -eq 0 ] || why+="exit $RC; "
    [ "$(grep -c "^$NAME-[0-9] *Up" "$L/st.out")" = 6 ] || why+="not 6 'Up' rows; "
    grep -qx healthy "$L/st.out" || why+="no 'healthy' line; "
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/st.out" "$L/st.err"; fi
}

t_pm_rerun() {
    local name="podman: up again on a healthy cluster changes nothing"
    local before; before=$(ids_of $NAME)
    run_rc "$L/again" 120 -- up "${UP_ARGS[@]}"
    local why=""
    [ $RC -eq 0 ] || why+="exit $RC; "
    contains "$L/again.err" "nothing to do" || why+="does not say 'nothing to do'; "
    [ "$(ids_of $NAME)" = "$before" ] || why+="containers changed; "
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/again.err"; fi
}

t_pm_repair() {
    local name="podman: up repairs a removed and a stopped container"
    P rm -f $NAME-2 >/dev/null 2>&1
    P stop -t 1 $NAME-5 >/dev/null 2>&1
    run_rc "$L/rep" 240 -- up "${UP_ARGS[@]}"
    local why=""
    [ $RC -eq 0 ] || why+="exit $RC; "
    contains "$L/rep.err" "1 container(s) missing, 1 stopped" || why+="does not say '1 container(s) missing, 1 stopped'; "
    [ $RC -eq 0 ] && { why+=$(judge rep) || true; }
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/rep.err" "$L/rep.check"; fi
}

t_pm_down_up() {
    local name="podman: down keeps the data; up brings the same cluster back"
    local ids0; ids0=$(redis-cli -p $BASE cluster myid 2>/dev/null)
    run_rc "$L/down" 120 -- down --name $NAME
    local why=""
    [ $RC -eq 0 ] || why+="down exit $RC; "
    [ "$(owned $NAME)" = "0 0" ] || why+="left $(owned $NAME); "
    [ -f "$DATA/node-1/data/nodes.conf" ] || why+="no nodes.conf kept; "
    run_rc "$L/back" 240 -- up "${UP_ARGS[@]}"
    [ $RC -eq 0 ] || why+="up after down exit $RC; "
    [ "$(redis-cli -p $BASE cluster myid 2>/dev/null)" = "$ids0" ] || why+="node 1 has another id after up; "
    [ $RC -eq 0 ] && { why+=$(judge back) || true; }
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/down.err" "$L/back.err"; fi
}

t_pm_purge() {
    local name="podman: down --purge removes containers, network and data"
    run_rc "$L/purge" 120 -- down --name $NAME --purge --yes
    local why=""
    [ $RC -eq 0 ] || why+="exit $RC; "
    [ "$(owned $NAME)" = "0 0" ] || why+="left $(owned $NAME); "
    [ -e "$DATA" ] && why+="$DATA still exists; "
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/purge.err"; fi
}

podman_clean
for t in "${TESTS[@]}"; do "$t"; done
finish
