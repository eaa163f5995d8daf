#!/bin/bash
# tests/test_scale.sh — `rcluster scale` against the real daemon, keys and all: a cluster
# rcscT made by `up` (10.72.0.32/27, ports 7920.. and +10000) holding SCALE_KEYS keys
# (default 200000, mixed types) goes 3x1 -> 5x1 -> 5x2 -> 3x1 -> 3x0 -> 3x1 while a client
# writes throughout. The first step is interrupted with SIGINT during its slot moves and
# then re-run. After every step: redis-cli --cluster check passes, every key reads back,
# no acknowledged write is lost, containers/network/manifest are as expected, no node
# keeps cluster-replica-no-failover yes, and `rcluster status` says healthy. Bad input
# (--masters 2, more nodes than the subnet holds, a port in use, a cluster that does not
# exist or is not ours) is refused with nothing changed.
#   SCALE_KEYS=200000   keys loaded
. "$(dirname "$0")/lib.sh"
cd "$T_TMP" || exit 1
L=$T_TMP/log
mkdir -p "$L"
IMG=rcsc-test/redis:local
NAME=rcscT
BASE=7920
SUBNET=10.72.0.32/27
DATA=$T_TMP/data
KEYS=${SCALE_KEYS:-200000}
PY=python3
/usr/bin/python3 -c 'import redis.cluster' 2>/dev/null && PY=/usr/bin/python3
CLIENT="$PY $TOP/tests/day2_client.py"

if [ "${DOCKER_OK:-}" = "" ]; then timeout 10 docker version >/dev/null 2>&1 && DOCKER_OK=1 || DOCKER_OK=0; fi
if [ "$DOCKER_OK" != 1 ]; then skip "scale" "no Docker daemon"; exit 0; fi
if ! $PY -c 'import redis.cluster' 2>/dev/null; then skip "scale" "python3 redis module (python3-redis) missing"; exit 0; fi

clean() {
    docker_remove_cluster $NAME rcscforeign
    docker rm -f rcscforeign-1 >/dev/null 2>&1
    return 0
}
clean
T_CLEANUPS+=(clean)
if ! docker image inspect $IMG >/dev/null 2>&1; then run_rc "$L/img" 300 -- image build --tag $IMG; fi

run_rc "$L/up" 180 -- up --name $NAME --subnet $SUBNET --port $BASE --image $IMG --nodes 6 --replicas 1 \
    --data-dir "$DATA" --yes --timeout 120
if [ "$RC" != 0 ]; then not_ok "scale: up 3x1" "exit $RC" "$L/up.err"; exit 1; fi
ok "scale: up 3x1"
if ! $CLIENT load $BASE "$KEYS" >"$L/load.log" 2>&1; then not_ok "scale: load $KEYS keys" "load failed" "$L/load.log"; exit 1; fi
ok "scale: load $KEYS keys"
WSTATE=$T_TMP/writer.json
$CLIENT writer $BASE "$WSTATE" >"$L/writer.log" 2>&1 &
WPID=$!
T_PIDS+=($WPID)

# judge STEP MASTERS REPLICAS: the cluster is healthy and complete as scaled.
judge() {
    local step=$1 m=$2 r=$3 n=$(($2 * ($3 + 1))) why=""
    why=$(cli_check "$step" 127.0.0.1:$BASE err && check_roles "$step" "$m" $((m * r)))
    if [ -z "$why" ]; then   # every master has exactly R replicas
        local per
        per=$(redis-cli -p $BASE cluster nodes | awk '$3 ~ /slave/ {c[$4]++} END {for (k in c) print c[k]}' | sort -u | tr '\n' ' ')
        [ "$r" -gt 0 ] && [ "$per" != "$r " ] && why="replicas per master: $per (want $r each)"
    fi
    local running
    running=$(docker ps --filter "label=$LABEL=$NAME" --format '{{.Names}}' | sort -V | tr '\n' ' ')
    local want_names=""
    for ((i = 1; i <= n; i++)); do want_names+="$NAME-$i "; done
    [ -z "$why" ] && [ "$running" != "$want_names" ] && why="running containers: $running; want $want_names"
    [ -z "$why" ] && [ "$(docker ps -aq --filter "label=$LABEL=$NAME" | wc -l)" != "$n" ] && why="stopped containers left behind"
    [ -z "$why" ] && [ -z "$(docker network ls -q --filter "label=$LABEL=$NAME")" ] && why="network $NAME is gone"
    [ -z "$why" ] && ! grep -q "\"nodes\":$n,\"replicas\":$r," "$DATA/rcluster.json" && why="manifest says $(cut -c1-120 "$DATA/rcluster.json")"
    if [ -z "$why" ]; then
        local p
        for ((i = 0; i < n; i++)); do
            p=$(redis-cli -p $((BASE + i)) config get cluster-replica-no-failover | tail -1)
            [ "$p" != no ] && { why="$NAME-$((i + 1)) keeps cluster-replica-no-failover $p"; break; }
        done
    fi
    [ -z "$why" ] && ! $CLIENT verify $BASE "$KEYS" >"$L/$step.verify" 2>&1 && why="keys: $(head -1 "$L/$step.verify")"
    [ -z "$why" ] && ! $CLIENT writer-check $BASE "$WSTATE" running >"$L/$step.wcheck" 2>&1 && why="writer: $(head -1 "$L/$step.wcheck")"
    if [ -z "$why" ]; then
        run_rc "$L/$step.status" 60 -- status --name $NAME
        [ "$RC" != 0 ] && why="rcluster status exit $RC"
    fi
    echo "$why"
}

# step NAME ARGS...: scale, then judge.
step() {
    local name=$1 m=$2 r=$3
    run_rc "$L/$name" 400 -- scale --name $NAME --masters $m --replicas $r --yes --timeout 120
    if [ "$RC" != 0 ]; then not_ok "scale: $name" "exit $RC" "$L/$name.err"; return 1; fi
    local why
    why=$(judge "$name" "$m" "$r")
    if [ -n "$why" ]; then not_ok "scale: $name" "$why" "$L/$name.err" "$L/$name.check"; return 1; fi
    ok "scale: $name ($(grep -o '[0-9]* slot(s) and [0-9]* key(s) moved in [0-9.]* s' "$L/$name.out"))"
}

# The state a refused run must not touch.
state() {
    {
        sha256sum "$DATA"/rcluster.json
        docker ps -a --no-trunc --filter "label=$LABEL=$NAME" --format '{{.ID}} {{.Names}} {{.State}}' | sort
        # a transient PFAIL mark on a loaded host (fail?) is not a change made by rcluster
        redis-cli -p $BASE cluster nodes | awk '{gsub(/,fail\?/, "", $3); print $1, $2, $3, $4, $9, $10, $11}' | sed 's/myself,//' | sort
    } 2>&1
}
# The state once two looks 0.5 s apart agree (at most 3 s): a node just under load can show a
# transient flag that is no change of anyone's.
settled_state() {
    local a b i
    a=$(state)
    for i in 1 2 3 4 5 6; do sleep 0.5; b=$(state); [ "$a" = "$b" ] && break; a=$b; done
    echo "$a"
}
# refuse NAME CODE PATTERN -- ARGS: exit CODE, stderr matches PATTERN, nothing changed.
refuse() {
    local name=$1 code=$2 pat=$3; shift 4
    local before after
    before=$(settled_state)
    run_rc "$L/refuse" 60 -- "$@"
    after=$(state)
    [ "$after" = "$before" ] || after=$(settled_state)
    local why; why=$(refusal_why "$L/refuse" "$code" "$before" "$after")
    grep -qiE "$pat" "$L/refuse.err" || why+="message does not match '$pat'; "
    [ -z "$why" ] && name+=": $(grep -o 'error: .*' "$L/refuse.err" | cut -c8-110)"
    verdict "scale: refuses $name" "$why" "$L/refuse.err"
}

refuse "--masters 2" 2 "at least 3 masters" -- scale --name $NAME --masters 2 --yes
refuse "more nodes than the subnet holds" 1 "no room for node" -- scale --name $NAME --masters 7 --replicas 2 --yes
$PY -c 'import socket,time,sys; s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(1); time.sleep(120)' $((BASE + 6)) &
LPID=$!; T_PIDS+=($LPID); sleep 0.5
refuse "a port in use" 1 "port 127.0.0.1:$((BASE + 6)).*in use" -- scale --name $NAME --masters 4 --replicas 1 --yes
stop_pid $LPID
refuse "a cluster that does not exist" 1 "no cluster named 'rcscnone'" -- scale --name rcscnone --masters 3 --yes
docker create --name rcscforeign-1 $IMG >/dev/null 2>&1
refuse "a cluster that is not ours" 1 "not rcluster's|not ours" -- scale --name rcscforeign --masters 3 --yes
docker rm -f rcscforeign-1 >/dev/null 2>&1

# 3x1 -> 5x1, interrupted with SIGINT while slots move, then the same command again.
t_interrupted() {
    local t0=$SECONDS
    "$RCLUSTER" scale --name $NAME --masters 5 --replicas 1 --yes --timeout 120 </dev/null >"$L/int.out" 2>"$L/int.err" &
    local pid=$!
    while kill -0 $pid 2>/dev/null && ! grep -q 'moved [0-9]*/' "$L/int.err"; do
        sleep 0.1
        [ $((SECONDS - t0)) -gt 200 ] && break
    done
    kill -INT $pid 2>/dev/null
    wait $pid
    local rc=$?
    if [ $rc != 130 ]; then not_ok "scale: SIGINT during the moves" "exit $rc, want 130" "$L/int.err"; return 1; fi
    if ! grep -q 'Run the same `rcluster scale' "$L/int.err" || ! grep -q 'stay in it' "$L/int.err"; then
        not_ok "scale: SIGINT during the moves" "the message does not say how to finish" "$L/int.err"; return 1
    fi
    redis-cli --cluster check 127.0.0.1:$BASE >"$L/int.check" 2>&1
    if grep -q '\[ERR\]\|\[WARNING\]' "$L/int.check" || ! grep -q 'All 16384 slots covered' "$L/int.check"; then
        not_ok "scale: SIGINT during the moves" "cluster left unhealthy" "$L/int.check"; return 1
    fi
    if ! $CLIENT verify $BASE "$KEYS" >"$L/int.verify" 2>&1; then not_ok "scale: SIGINT during the moves" "keys: $(head -1 "$L/int.verify")"; return 1; fi
    ok "scale: SIGINT during the moves leaves a healthy cluster, every key, and says how to finish"
}
t_interrupted
step "3x1 -> 5x1 (re-run after SIGINT)" 5 1
step "5x1 -> 5x2" 5 2
run_rc "$L/up-again" 120 -- up --name $NAME --yes
if [ "$RC" = 0 ] && contains "$L/up-again.err" "nothing to do"; then ok "scale: up on the grown cluster changes nothing"
else not_ok "scale: up on the grown cluster changes nothing" "exit $RC" "$L/up-again.err"; fi
step "5x2 -> 3x1" 3 1
if [ -d "$DATA/node-15" ] && [ -d "$DATA/node-7" ]; then ok "scale: data dirs of removed nodes kept"
else not_ok "scale: data dirs of removed nodes kept" "node-7 or node-15 is gone"; fi
step "3x1 -> 3x0" 3 0
step "3x0 -> 3x1" 3 1

kill -TERM $WPID 2>/dev/null; wait $WPID 2>/dev/null
if $CLIENT writer-check $BASE "$WSTATE" >"$L/wfinal.log" 2>&1 && ! grep -q '"errors": [1-9][0-9]\{3,\}' "$WSTATE"; then
    ok "scale: the writer lost no acknowledged write ($(grep -o '"errors": [0-9]*' "$WSTATE"))"
else not_ok "scale: the writer lost no acknowledged write" "$(head -1 "$L/wfinal.log")" "$L/wfinal.log"; fi
finish
