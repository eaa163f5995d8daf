#!/bin/bash
# tests/test_update.sh — `rcluster update` against the real daemon: a cluster rcupT made
# by `up` (10.74.0.0/27, ports 9800.. and +10000) with a password, UPDATE_KEYS keys of
# mixed types and a client writing throughout, goes Redis 7.0 (this host's redis-server)
# -> Valkey 8.0.1 -> a live and a restart-only directive -> a password rotation ->
# Valkey 9.1.0, the last one killed with SIGKILL half-way and run again. After each step:
# redis-cli --cluster check is clean, every node runs the asked server, every key reads
# back, no acknowledged write is lost, no previous container is left. A downgrade
# (Valkey -> Redis 7.0) is refused naming both versions, with nothing changed. The
# Valkey steps skip, saying so, without ../shared/servers.
#   UPDATE_KEYS=3000   keys loaded
. "$(dirname "$0")/lib.sh"
cd "$T_TMP" || exit 1
L=$T_TMP/log
mkdir -p "$L"
NAME=rcupT
BASE=9800
SUBNET=10.74.0.0/27
DATA=$T_TMP/data
LABEL=io.rcluster.cluster
KEYS=${UPDATE_KEYS:-3000}
SERVERS=$TOP/../shared/servers
IMG70=rcup-test/redis70:local
IMG8=rcup-test/valkey801:local
IMG9=rcup-test/valkey910:local
PY=python3
/usr/bin/python3 -c 'import redis.cluster' 2>/dev/null && PY=/usr/bin/python3
CLIENT="$PY $TOP/tests/day2_client.py"
PW1=$T_TMP/pw1; PW2=$T_TMP/pw2; PWNOW=$T_TMP/pw.now
echo 'first secret' >"$PW1"; echo 'second secret' >"$PW2"; cp "$PW1" "$PWNOW"
export RC_TEST_PASSWORD_FILE=$PWNOW

if [ "${DOCKER_OK:-}" = "" ]; then timeout 10 docker version >/dev/null 2>&1 && DOCKER_OK=1 || DOCKER_OK=0; fi
if [ "$DOCKER_OK" != 1 ]; then skip "update" "no Docker daemon"; exit 0; fi
if ! $PY -c 'import redis.cluster' 2>/dev/null; then skip "update" "python3 redis module (python3-redis) missing"; exit 0; fi

clean() {
    local ids n
    for n in $NAME ${NAME}0; do
        ids=$(docker ps -aq --filter "label=$LABEL=$n"); [ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1
        ids=$(docker network ls -q --filter "label=$LABEL=$n"); [ -n "$ids" ] && docker network rm $ids >/dev/null 2>&1
    done
    return 0
}
clean
T_CLEANUPS+=(clean)

# build IMAGE [--from BINARY]: an image of a server binary (this host's redis-server by default).
build() {
    local img=$1; shift
    docker image inspect "$img" >/dev/null 2>&1 && return 0
    run_rc "$L/img-${img//[\/:]/_}" 300 -- image build --tag "$img" "$@"
    [ "$RC" = 0 ]
}
if ! build $IMG70; then not_ok "update: image build (Redis 7.0)" "exit $RC"; exit 1; fi
VALKEY=1
if [ ! -x "$SERVERS/valkey-8.0.1/valkey-server" ] || [ ! -x "$SERVERS/valkey-9.1.0/valkey-server" ]; then VALKEY=0
elif ! build $IMG8 --from "$SERVERS/valkey-8.0.1/valkey-server" || ! build $IMG9 --from "$SERVERS/valkey-9.1.0/valkey-server"; then
    not_ok "update: image build (Valkey)" "exit $RC"; exit 1
fi

rcl() { redis-cli --no-auth-warning -a "$(cat "$PWNOW")" "$@"; }

run_rc "$L/up" 180 -- up --name $NAME --subnet $SUBNET --port $BASE --image $IMG70 --nodes 6 --replicas 1 \
    --data-dir "$DATA" --password-file "$PW1" --yes --timeout 120
if [ "$RC" != 0 ]; then not_ok "update: up 3x1 (Redis 7.0, password)" "exit $RC" "$L/up.err"; exit 1; fi
ok "update: up 3x1 (Redis 7.0, password)"
if ! $CLIENT load $BASE "$KEYS" >"$L/load.log" 2>&1; then not_ok "update: load $KEYS keys" "load failed" "$L/load.log"; exit 1; fi
WSTATE=$T_TMP/writer.json
$CLIENT writer $BASE "$WSTATE" >"$L/writer.log" 2>&1 &
WPID=$!
T_PIDS+=($WPID)

# judge STEP SERVER VERSION: healthy, every node runs SERVER VERSION, data intact, no
# previous container left, the manifest names the image of every container.
judge() {
    local step=$1 server=$2 version=$3 why="" p
    rcl --cluster check 127.0.0.1:$BASE 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >"$L/$step.check"
    [ "${PIPESTATUS[0]}" = 0 ] || why="redis-cli --cluster check failed"
    [ -z "$why" ] && grep -q '\[ERR\]' "$L/$step.check" && why="redis-cli --cluster check reports [ERR]"
    [ -z "$why" ] && [ "$(grep -c '^M: ' "$L/$step.check")" != 3 ] && why="not 3 masters"
    for p in $(seq $BASE $((BASE + 5))); do
        [ -n "$why" ] && break
        rcl -p $p info server >"$L/$step.info.$p" 2>&1
        if [ "$server" = valkey ]; then grep -q "^valkey_version:$version" "$L/$step.info.$p" || why="node :$p does not run Valkey $version"
        else grep -q "^redis_version:$version" "$L/$step.info.$p" && ! grep -q '^server_name:valkey' "$L/$step.info.$p" || why="node :$p does not run Redis $version"; fi
    done
    [ -z "$why" ] && ! $CLIENT verify $BASE "$KEYS" >"$L/$step.verify" 2>&1 && why="keys lost or changed: $(head -1 "$L/$step.verify")"
    [ -z "$why" ] && ! $CLIENT writer-check $BASE "$WSTATE" running >"$L/$step.wcheck" 2>&1 && why="acknowledged writes lost: $(head -1 "$L/$step.wcheck")"
    [ -z "$why" ] && [ -n "$(docker ps -aq --filter "name=$NAME-.*\.previous")" ] && why="a previous container is left"
    local img
    img=$(docker ps --filter "label=$LABEL=$NAME" --format '{{.Image}}' | sort -u)
    [ -z "$why" ] && ! grep -q "\"image\":\"$img\"" "$DATA/rcluster.json" && why="containers run '$img' but the manifest says $(cut -c1-200 "$DATA/rcluster.json")"
    # once set, the directives stay: in the manifest, in every redis.conf, on every node
    if [ -z "$why" ] && [ "${CONF_SET:-0}" = 1 ]; then
        grep -q '"config":\["maxmemory-policy allkeys-lru","tcp-backlog 256"\]' "$DATA/rcluster.json" || why="the manifest lost the directives: $(cut -c1-300 "$DATA/rcluster.json")"
        [ -z "$why" ] && { grep -qx 'tcp-backlog 256' "$DATA/node-1/conf/redis.conf" || why="node 1's redis.conf lost tcp-backlog 256"; }
        [ -z "$why" ] && [ "$(rcl -p $BASE config get tcp-backlog | tail -1)" != 256 ] && why="node :$BASE: tcp-backlog is not 256"
    fi
    if [ -z "$why" ]; then ok "update: $step"; else not_ok "update: $step" "$why" "$L/$step.err" "$L/$step.check"; fi
}
judge "before: healthy on Redis 7.0" redis 7.0

# A dry run prints the plan (JSON too) and changes nothing.
cp "$DATA/rcluster.json" "$T_TMP/manifest.before"
IMGS_BEFORE=$(docker ps --filter "label=$LABEL=$NAME" --format '{{.Names}} {{.Image}} {{.ID}}' | sort)
run_rc "$L/dry" 60 -- update --name $NAME --image $IMG70 --config 'maxmemory-policy allkeys-lru' --dry-run --json --password-file "$PW1"
why=""
[ "$RC" = 0 ] || why="exit $RC"
[ -z "$why" ] && ! $PY -c 'import json,sys; d=json.load(sys.stdin); assert d["ok"] and d["dry_run"] and d["config_live"] == ["maxmemory-policy allkeys-lru"]' <"$L/dry.out" 2>/dev/null && why="not the plan as JSON: $(head -c 300 "$L/dry.out")"
[ -z "$why" ] && [ "$(docker ps --filter "label=$LABEL=$NAME" --format '{{.Names}} {{.Image}} {{.ID}}' | sort)" != "$IMGS_BEFORE" ] && why="containers changed"
[ -z "$why" ] && ! cmp -s "$DATA/rcluster.json" "$T_TMP/manifest.before" && why="manifest changed"
[ -z "$why" ] && [ "$(rcl -p $BASE config get maxmemory-policy | tail -1)" = allkeys-lru ] && why="the directive was set"
if [ -z "$why" ]; then ok "update: --dry-run --json prints the plan, changes nothing"; else not_ok "update: --dry-run --json prints the plan, changes nothing" "$why" "$L/dry.err"; fi

# masters: the container numbers of the masters, in order.
masters() { for p in $(seq $BASE $((BASE + 5))); do rcl -p $p role 2>/dev/null | head -1 | grep -q master && echo -n "$((p - BASE + 1)) "; done; }
if [ "$VALKEY" = 1 ]; then
    M_BEFORE=$(masters)
    run_rc "$L/to8" 300 -- update --name $NAME --image $IMG8 --password-file "$PW1" --yes --timeout 240
    if [ "$RC" != 0 ]; then not_ok "update: Redis 7.0 -> Valkey 8.0.1 under writes" "exit $RC" "$L/to8.err"
    else judge "Redis 7.0 -> Valkey 8.0.1 under writes" valkey 8.0.1; fi
    M_AFTER=$(masters)
    # every master handed its slots to its replica (no master restarted in place)
    if [ -n "$M_BEFORE" ] && [ -z "$(comm -12 <(echo $M_BEFORE | tr ' ' '\n' | sort) <(echo $M_AFTER | tr ' ' '\n' | sort))" ] && [ "$(echo $M_AFTER | wc -w)" = 3 ]; then
        ok "update: every master failed over to its updated replica first"
    else not_ok "update: every master failed over to its updated replica first" "masters before: $M_BEFORE, after: $M_AFTER" "$L/to8.err"; fi

    # Valkey 8 -> Redis 7.0: a Redis 7.0 replica cannot take a full sync from Valkey (RDB 11).
    cp "$DATA/rcluster.json" "$T_TMP/manifest.before"
    IMGS_BEFORE=$(docker ps --filter "label=$LABEL=$NAME" --format '{{.Names}} {{.Image}} {{.ID}}' | sort)
    run_rc "$L/down70" 60 -- update --name $NAME --image $IMG70 --password-file "$PW1" --yes
    why=""
    [ "$RC" = 1 ] || why="exit $RC, want 1"
    [ -z "$why" ] && ! contains "$L/down70.err" "Redis 7.0.15" "Valkey 8.0.1" "nothing was changed" && why="message does not name both versions"
    [ -z "$why" ] && [ "$(docker ps --filter "label=$LABEL=$NAME" --format '{{.Names}} {{.Image}} {{.ID}}' | sort)" != "$IMGS_BEFORE" ] && why="containers changed"
    [ -z "$why" ] && ! cmp -s "$DATA/rcluster.json" "$T_TMP/manifest.before" && why="manifest changed"
    if [ -z "$why" ]; then ok "update: Valkey -> Redis 7.0 refused, naming both versions, nothing changed"; else not_ok "update: Valkey -> Redis 7.0 refused, naming both versions, nothing changed" "$why" "$L/down70.err"; fi
    CUR=valkey; CURV=8.0.1
else
    skip "update: Redis 7.0 -> Valkey 8.0.1 -> 9.1.0" "no ../shared/servers/valkey-8.0.1 and valkey-9.1.0"
    CUR=redis; CURV=7.0
fi

# A live directive (CONFIG SET) and one that needs the rolling restart (tcp-backlog).
run_rc "$L/conf" 300 -- update --name $NAME --config 'maxmemory-policy allkeys-lru' --config 'tcp-backlog 256' \
    --password-file "$PW1" --yes --timeout 240
why=""
[ "$RC" = 0 ] || why="exit $RC"
for p in $(seq $BASE $((BASE + 5))); do
        [ -n "$why" ] && break
    [ "$(rcl -p $p config get maxmemory-policy | tail -1)" = allkeys-lru ] || why="node :$p: maxmemory-policy not set"
    [ -z "$why" ] && [ "$(rcl -p $p config get tcp-backlog | tail -1)" = 256 ] || why="${why:-node :$p: tcp-backlog is not 256 (no restart?)}"
done
[ -z "$why" ] && ! grep -qx 'tcp-backlog 256' "$DATA/node-3/conf/redis.conf" && why="redis.conf lacks the line"
[ -z "$why" ] && ! grep -q '"config":\["maxmemory-policy allkeys-lru","tcp-backlog 256"\]' "$DATA/rcluster.json" && why="manifest: $(cut -c1-300 "$DATA/rcluster.json")"
CONF_SET=1
if [ -z "$why" ]; then judge "--config: one directive live, one by a rolling restart" $CUR $CURV; else not_ok "update: --config: one directive live, one by a rolling restart" "$why" "$L/conf.err"; fi

# Password rotation: no restart; the old password is refused, the new one survives a restart.
run_rc "$L/pw" 120 -- update --name $NAME --password-file "$PW1" --new-password-file "$PW2" --yes
cp "$PW2" "$PWNOW"
why=""
[ "$RC" = 0 ] || why="exit $RC"
[ -z "$why" ] && [ "$(redis-cli --no-auth-warning -a "$(cat "$PW1")" -p $BASE ping 2>&1)" = PONG ] && why="the old password still works"
# a replica: restarting it takes no slots away
REPL=$(for p in $(seq $BASE $((BASE + 5))); do rcl -p $p role 2>/dev/null | head -1 | grep -q slave && { echo $((p - BASE + 1)); break; }; done)
[ -z "$why" ] && docker restart $NAME-${REPL:-1} >/dev/null 2>&1
for i in $(seq 1 50); do [ "$(rcl -p $((BASE + ${REPL:-1} - 1)) ping 2>&1)" = PONG ] && break; sleep 0.2; done
[ -z "$why" ] && [ "$(rcl -p $((BASE + ${REPL:-1} - 1)) ping 2>&1)" != PONG ] && why="the new password does not work after a restart"
for i in $(seq 1 100); do "$RCLUSTER" check 127.0.0.1:$BASE --password-file "$PW2" >/dev/null 2>&1 && break; sleep 0.2; done
if [ -z "$why" ]; then judge "password rotated without a restart, kept across one" $CUR $CURV; else not_ok "update: password rotated without a restart, kept across one" "$why" "$L/pw.err"; fi

if [ "$VALKEY" = 1 ]; then
    # SIGKILL half-way (the second node is being replaced), then the same command again.
    "$RCLUSTER" update --name $NAME --image $IMG9 --password-file "$PW2" --yes --timeout 240 >"$L/kill.out" 2>"$L/kill.err" &
    KPID=$!
    for i in $(seq 1 300); do [ "$(grep -c ' -> ' "$L/kill.err")" -ge 2 ] && break; sleep 0.1; done
    kill -9 $KPID 2>/dev/null; wait $KPID 2>/dev/null
    run_rc "$L/midstatus" 60 -- status --name $NAME --password-file "$PW2"
    contains "$L/midstatus.out" "Mid-update" && ok "update: status says a killed update is mid-update" \
        || not_ok "update: status says a killed update is mid-update" "no Mid-update line" "$L/midstatus.out" "$L/kill.err"
    run_rc "$L/resume" 300 -- update --name $NAME --image $IMG9 --password-file "$PW2" --yes --timeout 240
    if [ "$RC" != 0 ]; then not_ok "update: killed half-way to Valkey 9.1.0, the same command finishes it" "exit $RC" "$L/resume.err" "$L/kill.err"
    else judge "killed half-way to Valkey 9.1.0, the same command finishes it" valkey 9.1.0; fi
    # Valkey 9.1 -> 8.0.1: 9.1 sends RDB 11 to an 8.0 replica, but 8.0 cannot read the files
    # 9.1 wrote (VALKEY080): each node starts empty and takes a full sync.
    run_rc "$L/to8b" 300 -- update --name $NAME --image $IMG8 --password-file "$PW2" --yes --timeout 240
    if [ "$RC" != 0 ]; then not_ok "update: Valkey 9.1.0 -> 8.0.1: each node starts empty and syncs" "exit $RC" "$L/to8b.err"
    elif ! contains "$L/to8b.err" "starting empty"; then not_ok "update: Valkey 9.1.0 -> 8.0.1: each node starts empty and syncs" "no node started empty" "$L/to8b.err"
    else judge "Valkey 9.1.0 -> 8.0.1: each node starts empty and syncs" valkey 8.0.1; fi
fi

if [ "$VALKEY" = 1 ]; then
    # 3 masters, no replicas, on Valkey 9.1: going to 8.0.1 would start each master empty
    # (it cannot read 9.1's files) with nobody to sync from: refused even with --allow-downtime.
    run_rc "$L/up0" 180 -- up --name ${NAME}0 --subnet 10.74.0.32/27 --port 9810 --image $IMG9 --nodes 3 --replicas 0 \
        --data-dir "$T_TMP/data0" --yes --timeout 120
    IMGS_BEFORE=$(docker ps --filter "label=$LABEL=${NAME}0" --format '{{.Names}} {{.Image}} {{.ID}}' | sort)
    run_rc "$L/lose" 60 -- update --name ${NAME}0 --image $IMG8 --allow-downtime --yes
    why=""
    [ "$RC" = 1 ] || why="exit $RC, want 1"
    [ -z "$why" ] && ! contains "$L/lose.err" "keys would be lost" "nothing was changed" && why="message does not say why"
    [ -z "$why" ] && [ "$(docker ps --filter "label=$LABEL=${NAME}0" --format '{{.Names}} {{.Image}} {{.ID}}' | sort)" != "$IMGS_BEFORE" ] && why="containers changed"
    if [ -z "$why" ]; then ok "update: a master without a replica that would start empty is refused, even with --allow-downtime"
    else not_ok "update: a master without a replica that would start empty is refused" "$why" "$L/up0.err" "$L/lose.err"; fi
    ids=$(docker ps -aq --filter "label=$LABEL=${NAME}0"); [ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1
    ids=$(docker network ls -q --filter "label=$LABEL=${NAME}0"); [ -n "$ids" ] && docker network rm $ids >/dev/null 2>&1
fi

# Changes up cannot make are refused naming the command that can.
run_rc "$L/upimg" 60 -- up --name $NAME --image $IMG70 --password-file "$PW2"
[ "$RC" != 0 ] && contains "$L/upimg.err" "rcluster update" && ok "update: up with another --image names update" \
    || not_ok "update: up with another --image names update" "exit $RC" "$L/upimg.err"
# set-timeout persists into rcluster's own files: a later up with that --node-timeout agrees.
run_rc "$L/st" 60 -- set-timeout 127.0.0.1:$BASE 6000 --password-file "$PW2"
run_rc "$L/upto" 120 -- up --name $NAME --node-timeout 6000 --password-file "$PW2"
[ "$RC" = 0 ] && grep -q '"node_timeout":6000' "$DATA/rcluster.json" && grep -qx 'cluster-node-timeout 6000' "$DATA/node-1/conf/redis.conf" \
    && ok "update: set-timeout is recorded: up --node-timeout 6000 agrees" \
    || not_ok "update: set-timeout is recorded: up --node-timeout 6000 agrees" "exit $RC" "$L/st.err" "$L/upto.err"

kill -TERM $WPID 2>/dev/null; wait $WPID 2>/dev/null
if $CLIENT writer-check $BASE "$WSTATE" >"$L/final.wcheck" 2>&1; then
    ok "update: no acknowledged write lost (longest pause $($PY -c 'import json,sys; print("%.2f s" % json.load(open(sys.argv[1]))["longest_pause"])' "$WSTATE"))"
else not_ok "update: no acknowledged write lost" "$(head -1 "$L/final.wcheck")" "$L/writer.log"; fi

# down --purge removes all rcluster wrote, the manifest update kept as .previous too.
had_previous=0; [ -f "$DATA/rcluster.json.previous" ] && had_previous=1
run_rc "$L/purge" 120 -- down --name $NAME --purge --yes
[ "$RC" = 0 ] && [ $had_previous = 1 ] && [ ! -e "$DATA" ] \
    && ok "update: down --purge leaves no data dir (rcluster.json.previous included)" \
    || not_ok "update: down --purge leaves no data dir (rcluster.json.previous included)" "exit $RC, had .previous: $had_previous, left: $(ls -A "$DATA" 2>/dev/null | tr '\n' ' ')" "$L/purge.err"
exit 0
