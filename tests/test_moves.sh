#!/bin/bash
# tests/test_moves.sh — slot moves on the servers people run now, each engine where the
# server has it: atomic (Valkey 9.1 CLUSTER MIGRATESLOTS, the Redis 8 dev build's CLUSTER
# MIGRATION IMPORT) and key by key on Valkey 9.1 (--migration keys: replicated SETSLOT and
# its stall after 200 pipelined). Local servers on 127.0.0.1:7300-7309 (bus +10000), 3
# masters with a replica each, MOVES_KEYS keys spread over all slots, a client writing
# throughout. Per pass: a reshard that empties a master (it turns replica; exit 0), add-node
# + rebalance --use-empty-masters, Ctrl-C (atomic: cancelled in flight), kill -9 then fix.
# Every step is judged by the server's own cli (--cluster check), a read-back of every key
# and the writer's acknowledged counts. Also: --migration atomic on Redis 7.0 is a usage
# error that changes nothing; with Docker, `scale` of a Valkey 9.1 cluster whose master a
# reshard emptied (image rcmv-test/valkey91:local, cluster rcmvD, 10.73.0.0/27, ports
# 7940.. +10000; Ctrl-C during `up` of cluster rcmvI, 10.73.0.64/27, ports 7960..). The servers come from ../shared/servers/ and are skipped, saying so, when
# absent.
#   MOVES_KEYS=60000   keys loaded per pass
. "$(dirname "$0")/lib.sh"
cd "$T_TMP" || exit 1
L=$T_TMP/log
mkdir -p "$L"
KEYS=${MOVES_KEYS:-60000}
SRV=$TOP/../shared/servers
PY=python3
/usr/bin/python3 -c 'import redis.cluster' 2>/dev/null && PY=/usr/bin/python3
CLIENT="$PY $TOP/tests/day2_client.py"
B=7300

if [ ! -x "$RCLUSTER" ]; then not_ok "moves: binary" "$RCLUSTER not built"; finish; fi
if ! $PY -c 'import redis.cluster' 2>/dev/null; then skip "moves" "python3 redis module (python3-redis) missing"; finish; fi

# mv_start PORT: a node of $SERVER.
mv_start() {
    local port=$1 dir=$T_TMP/node-$1
    rm -rf "$dir"; mkdir -p "$dir"
    "$SERVER" --port "$port" --bind 127.0.0.1 --cluster-enabled yes --cluster-config-file "$dir/nodes.conf" \
        --cluster-node-timeout 5000 --dir "$dir" --appendonly no --save '' --daemonize no --logfile "$dir/server.log" >/dev/null 2>&1 &
    NODE_PID[$port]=$!
    wait_for 5 bash -c "$CLI -p $port ping | grep -q PONG"
}

# judge TAG: the server's cli --cluster check is clean, every key reads back, no acknowledged write lost.
judge() {
    cli_check "$1" 127.0.0.1:$B warn "$CLI" || return 1
    local out
    out=$($CLIENT verify $B "$KEYS" 0 2>&1) || { echo "read-back: $(echo "$out" | head -1)"; return 1; }
    sleep 0.3
    out=$($CLIENT writer-check $B "$WSTATE" running 2>&1) || { echo "writer: $(echo "$out" | tail -1)"; return 1; }
}

# step NAME ENGINE -- ARGS...: rcluster exits 0 using ENGINE (as its plan says), then judge.
step() {
    local name="moves $PASS: $1" engine=$2 tag=s$RANDOM why; shift 3
    run_rc "$L/$tag" 180 -- "$@"
    if [ $RC -ne 0 ]; then not_ok "$name" "rcluster $* exited $RC" "$L/$tag.err"; return 1; fi
    [ -z "$engine" ] || grep -q "Engine: $engine" "$L/$tag.err" || { not_ok "$name" "the plan does not say 'Engine: $engine'" "$L/$tag.err"; return 1; }
    if why=$(judge "$tag"); then ok "$name"; return 0; fi
    not_ok "$name" "$why" "$L/$tag.err" "$L/$tag.check"
    return 1
}

# in_flight: atomic migrations the nodes still list as running (rcluster check says so).
in_flight() { "$RCLUSTER" check 127.0.0.1:$B 2>&1 | grep -c 'migration in progress'; }

# big_values PORT N: N values of 4 MB in slots of the master on PORT, so that a move of
# its slots lasts long enough to be interrupted.
big_values() {
    local ranges; ranges=$($CLI -p "$1" cluster nodes | grep myself | cut -d' ' -f9- | tr ' ' '\n' | grep -v '\[')
    PYTHONDONTWRITEBYTECODE=1 $PY - "$1" "$2" $ranges <<'PYEOF'
import sys, redis, redis.cluster as c
port, n, mine = int(sys.argv[1]), int(sys.argv[2]), set()
for x in sys.argv[3:]:
    lo, _, hi = x.partition("-")
    mine.update(range(int(lo), int(hi or lo) + 1))
r, v, k, i = redis.Redis(port=port), b"z" * (4 << 20), 0, 0
while k < n:
    key = b"bigmv:%d" % i
    i += 1
    if c.key_slot(key) in mine: r.set(key, v); k += 1
PYEOF
}

# moving: a move is under way (an atomic migration in flight, or a slot open on the seed).
moving() {
    "$RCLUSTER" info 127.0.0.1:$B 2>/dev/null | grep -q 'migration in progress' && return 0
    $CLI -p $B cluster nodes | grep myself | grep -q '\['
}

# interrupt SIGNAL TAG ARGS...: start rcluster ARGS, send SIGNAL once a move is under way.
interrupt() {
    local sig=$1 tag=$2 i; shift 2
    "$RCLUSTER" "$@" </dev/null >"$L/$tag.out" 2>"$L/$tag.err" &
    local pid=$!
    for i in $(seq 1 300); do moving && break; kill -0 $pid 2>/dev/null || break; sleep 0.02; done
    kill -$sig $pid 2>/dev/null; { wait $pid; } 2>/dev/null
}

# slots_of PORT: how many slots the node owns, as it says itself.
slots_of() {
    $CLI -p "$1" cluster nodes | grep myself | awk '{ c = 0; for (i = 9; i <= NF; i++) { if ($i ~ /^\[/) continue; split($i, r, "-"); c += (r[2] == "" ? 1 : r[2] - r[1] + 1) } print c }'; }

# A pass: SERVER/CLI, ENGINE (what the plans must say), MIG (extra mover options); the
# nodes and the writer go whatever happened.
pass_run() {
    WPID=
    pass_body
    [ -n "$WPID" ] && stop_pid $WPID
    kill_all_nodes
}

pass_body() {
    local p
    for p in $(seq $B $((B + 6))); do mv_start $p || { not_ok "moves $PASS: start nodes" "$SERVER did not start on $p"; return; }; done
    run_rc "$L/create-$PASS" 60 -- create --replicas 1 --yes $(addrs $B 6)
    [ $RC -eq 0 ] || { not_ok "moves $PASS: create 3x1" "exit $RC" "$L/create-$PASS.err"; return; }
    $CLIENT load $B "$KEYS" 0 >"$L/load-$PASS.log" 2>&1 || { not_ok "moves $PASS: load" "load failed" "$L/load-$PASS.log"; return; }
    WSTATE=$T_TMP/writer-$PASS.json
    $CLIENT writer $B "$WSTATE" 2>"$L/writer-$PASS.log" & WPID=$!
    T_PIDS+=($WPID)
    wait_for 10 test -s "$WSTATE"
    # 1. a reshard that empties a master: it turns replica of the receiver; exit 0
    step "reshard of every slot of a master (it becomes a replica; exit 0)" "$ENGINE" -- reshard 127.0.0.1:$B \
        --from 127.0.0.1:$((B + 2)) --to 127.0.0.1:$B --slots "$(slots_of $((B + 2)))" --yes $MIG || return
    local last; last=$(ls -t "$L"/s*.err | head -1)
    if [ "$(grep -c '(100%)' "$last")" = 1 ]; then ok "moves $PASS: the final progress line once"
    else not_ok "moves $PASS: the final progress line once" "$(grep -c '(100%)' "$last") lines say 100%" "$last"; fi
    if wait_for 20 bash -c "$CLI -p $((B + 2)) role | head -1 | grep -q slave"; then ok "moves $PASS: the emptied master turned replica"
    else not_ok "moves $PASS: the emptied master turned replica" "role: $($CLI -p $((B + 2)) role | head -1)"; fi
    # 2. a new empty master, then rebalance onto it and the others
    step "add-node of an empty master" "" -- add-node 127.0.0.1:$((B + 6)) 127.0.0.1:$B --yes || true
    step "rebalance --use-empty-masters" "$ENGINE" -- rebalance 127.0.0.1:$B --use-empty-masters --yes $MIG || return
    # 3. Ctrl-C in the middle: exit 130, nothing left open or in flight, says how many moved
    big_values $B 100
    # (the replicas take the 400 MB first: a move that starts during their full sync waits on them)
    wait_for 60 bash -c "! $CLI -p $B info replication | grep -q 'lag=[1-9][0-9]\|state=wait_bgsave\|state=send_bulk'"
    local id6; id6=$(id_of $((B + 6)))
    interrupt INT "int-${PASS// /-}" reshard 127.0.0.1:$B --from 127.0.0.1:$B --to "$id6" --slots 3000 --yes $MIG --window 64
    local rc=$?
    wait_for 15 bash -c "[ \$('$RCLUSTER' check 127.0.0.1:$B 2>&1 | grep -c 'migration in progress') = 0 ]"
    local open=0; for p in $(seq $B $((B + 6))); do open=$((open + $($CLI -p $p cluster nodes | grep myself | grep -o '\[' | wc -l))); done
    if [ $rc -eq 130 ] && [ $open -eq 0 ] && [ "$(in_flight)" = 0 ] && grep -q "interrupted: moved" "$L/int-${PASS// /-}.err" &&
       grep -q "the same reshard with --slots [0-9]* moves them" "$L/int-${PASS// /-}.err"; then
        local why; if why=$(judge int-$PASS); then ok "moves $PASS: Ctrl-C mid-reshard: exit 130, nothing open or in flight, says how many moved; keys kept"
        else not_ok "moves $PASS: Ctrl-C mid-reshard: keys kept" "$why"; fi
    else not_ok "moves $PASS: Ctrl-C mid-reshard: exit 130, nothing open or in flight" "exit $rc, $open open slot(s), $(in_flight) in flight" "$L/int-${PASS// /-}.err"; fi
    # 4. kill -9 in the middle, then fix (waits for what the servers carry on with)
    local before6; before6=$(slots_of $((B + 6)))
    interrupt 9 "k9-${PASS// /-}" reshard 127.0.0.1:$B --from 127.0.0.1:$B --to "$id6" --slots 3000 --yes $MIG --window 64
    local seen; seen=$(in_flight)
    if [ "$ENGINE" = atomic ]; then
        if [ "$seen" -gt 0 ]; then ok "moves $PASS: after kill -9 check shows the migrations the servers carry on with"
        elif [ "$(slots_of $((B + 6)))" -ge $((before6 + 3000)) ]; then skip "moves $PASS: after kill -9 check shows the migrations in flight" "they had ended before check asked"
        else not_ok "moves $PASS: after kill -9 check shows the migrations in flight" "rcluster check shows none, and the move did not end"; fi
    fi
    step "fix after kill -9 mid-reshard ($seen migration(s) seen in flight by check)" "" -- fix 127.0.0.1:$B --yes || true
    step "the same reshard again after the kill" "$ENGINE" -- reshard 127.0.0.1:$B --from 127.0.0.1:$B --to "$id6" --slots 1000 --yes $MIG || true
    stop_pid $WPID
    WPID=
    # (running: a node that turns replica drops its clients, and the client library retries
    # an INCR the server had applied: counted twice, never lost)
    local w; w=$($CLIENT writer-check $B "$WSTATE" running 2>&1) && ok "moves $PASS: the concurrent writer lost no acknowledged write" ||
        not_ok "moves $PASS: the concurrent writer lost no acknowledged write" "$w"
}

t_passes() {
    local v91=$SRV/valkey-9.1.0 r8=$SRV/redis-8.x-dev
    if [ -x "$v91/valkey-server" ]; then
        SERVER=$v91/valkey-server CLI=$v91/valkey-cli PASS="valkey-9.1 atomic" ENGINE=atomic MIG="" pass_run
        [ -n "${MOVES_ONLY:-}" ] || SERVER=$v91/valkey-server CLI=$v91/valkey-cli PASS="valkey-9.1 keys" ENGINE=keys MIG="--migration keys" pass_run
    else skip "moves valkey-9.1" "no Valkey 9.1 binaries in $v91 (see ../shared/servers/README.md)"; fi
    if [ -x "$r8/redis-server" ]; then
        [ -n "${MOVES_ONLY:-}" ] || SERVER=$r8/redis-server CLI=$r8/redis-cli PASS="redis-8-dev atomic" ENGINE=atomic MIG="" pass_run
    else skip "moves redis-8-dev" "no Redis 8 dev binaries in $r8 (see ../shared/servers/README.md)"; fi
}

# --migration atomic where a node lacks it: exit 2, nothing changed.
t_atomic_refused() {
    local name="moves: --migration atomic on Redis 7.0 is refused (exit 2), nothing changed"
    SERVER=redis-server CLI=redis-cli
    local p; for p in $B $((B + 1)) $((B + 2)); do mv_start $p || { not_ok "$name" "redis-server did not start"; return; }; done
    run_rc "$L/r7c" 60 -- create --replicas 0 --yes $(addrs $B 3)
    local before after; before=$(redis-cli -p $B cluster nodes | awk '{print $1, $9, $10}' | sort)
    run_rc "$L/r7a" 60 -- reshard 127.0.0.1:$B --from all --to 127.0.0.1:$B --slots 100 --yes --migration atomic
    after=$(redis-cli -p $B cluster nodes | awk '{print $1, $9, $10}' | sort)
    if [ $RC -eq 2 ] && contains "$L/r7a.err" "Redis 7.0" "nothing changed" && [ "$before" = "$after" ]; then ok "$name"
    else not_ok "$name" "exit $RC" "$L/r7a.err"; fi
    kill_all_nodes
}

# A Redis 7.0 master in a Valkey 9.1 cluster cannot read Valkey 9's DUMP payloads (version
# 80): a reshard to it is refused before anything changes, with --json one error document.
t_payload_refused() {
    local name="moves: keys a target cannot read (Valkey 9.1 -> Redis 7.0) refused before any change"
    local v91=$SRV/valkey-9.1.0
    [ -x "$v91/valkey-server" ] || { skip "$name" "no Valkey 9.1 binaries"; return; }
    SERVER=$v91/valkey-server CLI=$v91/valkey-cli
    local p; for p in $B $((B + 1)) $((B + 2)); do mv_start $p || { not_ok "$name" "valkey-server did not start"; return; }; done
    SERVER=redis-server; mv_start $((B + 3)) || { not_ok "$name" "redis-server did not start"; kill_all_nodes; return; }
    SERVER=$v91/valkey-server
    run_rc "$L/pv1" 60 -- create --replicas 0 --yes $(addrs $B 3)
    run_rc "$L/pv2" 60 -- add-node 127.0.0.1:$((B + 3)) 127.0.0.1:$B
    $CLIENT load $B 2000 0 >"$L/pv-load.log" 2>&1
    local before after; before=$(for p in $B $((B + 1)) $((B + 2)) $((B + 3)); do $CLI -p $p cluster nodes | awk '{print $1, $3, $9, $10}' | sort; done)
    run_rc "$L/pv3" 60 -- reshard 127.0.0.1:$B --from all --to 127.0.0.1:$((B + 3)) --slots 20 --yes --json
    after=$(for p in $B $((B + 1)) $((B + 2)) $((B + 3)); do $CLI -p $p cluster nodes | awk '{print $1, $3, $9, $10}' | sort; done)
    local why=""
    [ $RC -eq 1 ] || why+="exit $RC (want 1); "
    contains "$L/pv3.err" "cannot take" "nothing changed" || why+="stderr does not name the payload versions; "
    [ "$before" = "$after" ] || why+="CLUSTER NODES changed; "
    $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["ok"] is False and d["error"]["kind"] and "cannot take" in d["error"]["message"]' "$L/pv3.out" 2>/dev/null ||
        why+="stdout is not one JSON error document; "
    [ -z "$why" ] && ok "$name" || not_ok "$name" "$why" "$L/pv3.err" "$L/pv3.out"
    kill_all_nodes
}

# Docker: a Valkey 9.1 cluster made by `up`; a reshard empties a master (it turns replica),
# scale --masters 3 makes it a master again, scale --masters 4 grows with atomic moves.
t_docker_scale() {
    local name="moves docker: Valkey 9.1 scale after a reshard emptied a master, then 3 -> 4 masters"
    local v91=$SRV/valkey-9.1.0 IMG=rcmv-test/valkey91:local NAME=rcmvD D=7940
    [ -x "$v91/valkey-server" ] || { skip "$name" "no Valkey 9.1 binaries"; return; }
    if [ "${DOCKER_OK:-}" = "" ]; then timeout 10 docker version >/dev/null 2>&1 && DOCKER_OK=1 || DOCKER_OK=0; fi
    [ "$DOCKER_OK" = 1 ] || { skip "$name" "no Docker daemon"; return; }
    local clean="ids=\$(docker ps -aq --filter label=io.rcluster.cluster=$NAME); [ -n \"\$ids\" ] && docker rm -f \$ids; ids=\$(docker network ls -q --filter label=io.rcluster.cluster=$NAME); [ -n \"\$ids\" ] && docker network rm \$ids"
    eval "$clean" >/dev/null 2>&1
    T_CLEANUPS+=("$clean")
    docker image inspect $IMG >/dev/null 2>&1 || run_rc "$L/dimg" 300 -- image build --from "$v91/valkey-server" --tag $IMG
    # Ctrl-C while up starts the containers: exit 130, one plain line, nothing of it left
    local ni=rcmvI
    "$RCLUSTER" up --name $ni --subnet 10.73.0.64/27 --port 7960 --image $IMG --nodes 6 --replicas 1 --data-dir "$T_TMP/di" --yes \
        </dev/null >"$L/dint.out" 2>"$L/dint.err" &
    local upid=$!
    wait_for 20 bash -c "docker ps -aq --filter label=io.rcluster.cluster=$ni | grep -q ."
    kill -INT $upid; { wait $upid; } 2>/dev/null; local urc=$?
    local left; left=$(docker ps -aq --filter label=io.rcluster.cluster=$ni | wc -l)
    left=$((left + $(docker network ls -q --filter label=io.rcluster.cluster=$ni | wc -l)))
    if [ $urc -eq 130 ] && [ "$left" = 0 ] && contains "$L/dint.err" "interrupted: up removed what this run had created" &&
       ! grep -q "POST /v1" "$L/dint.err"; then ok "moves docker: Ctrl-C during up: exit 130, one plain line, nothing left"
    else not_ok "moves docker: Ctrl-C during up: exit 130, one plain line, nothing left" "exit $urc, $left object(s) left" "$L/dint.err"
        docker rm -f $(docker ps -aq --filter label=io.rcluster.cluster=$ni) >/dev/null 2>&1
        docker network rm $(docker network ls -q --filter label=io.rcluster.cluster=$ni) >/dev/null 2>&1; fi
    run_rc "$L/dup" 180 -- up --name $NAME --subnet 10.73.0.0/27 --port $D --image $IMG --nodes 6 --replicas 1 --data-dir "$T_TMP/dd" --yes --timeout 120
    [ $RC -eq 0 ] || { not_ok "$name" "up exit $RC" "$L/dup.err"; return; }
    CLI=$v91/valkey-cli B=$D KEYS=30000
    $CLIENT load $D "$KEYS" 0 >"$L/dload.log" 2>&1 || { not_ok "$name" "load failed" "$L/dload.log"; return; }
    WSTATE=$T_TMP/writer-docker.json
    $CLIENT writer $D "$WSTATE" 2>"$L/dwriter.log" & WPID=$!
    T_PIDS+=($WPID)
    wait_for 10 test -s "$WSTATE"
    PASS="docker valkey-9.1"
    step "reshard empties master 3" atomic -- reshard 127.0.0.1:$D --from "$(id_of $((D + 2)))" --to "$(id_of $D)" --slots "$(slots_of $((D + 2)))" --yes || { stop_pid $WPID; return; }
    wait_for 20 bash -c "$CLI -p $((D + 2)) role | head -1 | grep -q slave"
    run_rc "$L/ds3" 300 -- scale --name $NAME --masters 3 --data-dir "$T_TMP/dd" --yes --timeout 120
    local why=""
    [ $RC -eq 0 ] || why="scale --masters 3 exit $RC"
    [ -z "$why" ] && { why=$(judge ds3) || true; }
    [ -z "$why" ] && [ "$($CLI -p $((D + 2)) role | head -1)" != master ] && why="node 3 is not a master again"
    [ -z "$why" ] && ok "moves docker: scale --masters 3 makes the emptied master a master again; keys kept" || { not_ok "moves docker: scale --masters 3 repairs a master emptied by a reshard" "$why" "$L/ds3.err"; return; }
    run_rc "$L/ds4" 300 -- scale --name $NAME --masters 4 --data-dir "$T_TMP/dd" --yes --timeout 120
    why=""
    [ $RC -eq 0 ] || why="scale --masters 4 exit $RC"
    [ -z "$why" ] && { why=$(judge ds4) || true; }
    [ -z "$why" ] && ! grep -q "Engine: atomic" "$L/ds4.err" && why="its moves did not use the atomic engine"
    [ -z "$why" ] && ok "moves docker: scale --masters 4 on Valkey 9.1 (atomic moves); keys kept" || not_ok "moves docker: scale --masters 4 on Valkey 9.1" "$why" "$L/ds4.err"
    stop_pid $WPID
    # set-timeout on nodes made by `up`: set at once, and recorded in rcluster's own files (each
    # redis.conf's cluster-node-timeout line, the manifest), the former text kept beside them
    local conf=$T_TMP/dd/node-1/conf/redis.conf
    run_rc "$L/dst" 60 -- set-timeout 127.0.0.1:$D 7000 --yes
    why=""
    [ $RC -eq 0 ] || why="exit $RC; "
    grep -qx 'cluster-node-timeout 7000' "$conf" || why+="node 1's redis.conf does not say 7000; "
    grep -qx 'cluster-node-timeout 5000' "$conf.previous" 2>/dev/null || why+="node 1's former redis.conf is not kept; "
    grep -q '"node_timeout":7000' "$T_TMP/dd/rcluster.json" || why+="the manifest does not say 7000; "
    $CLI -p $D config get cluster-node-timeout | grep -qx 7000 || why+="cluster-node-timeout is not 7000 on node 1; "
    [ -z "$why" ] && ok "moves docker: set-timeout sets every node and records it in rcluster's own redis.conf and manifest" ||
        not_ok "moves docker: set-timeout on nodes made by up" "$why" "$L/dst.err"
    eval "$clean" >/dev/null 2>&1
}

[ -n "${MOVES_ONLY:-}" ] || t_atomic_refused
[ -n "${MOVES_ONLY:-}" ] || t_payload_refused
[ -n "${MOVES_SKIP_PASSES:-}" ] || t_passes
[ -n "${MOVES_ONLY:-}${MOVES_SKIP_PASSES:-}" ] || t_docker_scale
finish
