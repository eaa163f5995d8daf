#!/bin/bash
# tests/test_rerun.sh — re-runs of `rcluster up` against the real daemon: a refused run
# leaves every redis.conf, the manifest, the containers and the network exactly as they
# were; an accepted run repairs the cluster as recorded. Cluster rctestr on 10.82.0.0/24,
# ports 7341-7346 (+10000). Uses the image tests/test_docker.sh builds (built here when
# missing).
. "$(dirname "$0")/lib.sh"
cd "$T_TMP" || exit 1
L=$T_TMP/log
mkdir -p "$L"
IMG=rcluster-test/redis:local
NAME=rctestr
BASE=7341
DATA=$T_TMP/data
PW=$T_TMP/pw
echo 'Re-run-pw 9' >"$PW"
echo 'other-pw' >"$T_TMP/pw2"
DAUTH=(-a 'Re-run-pw 9' --no-auth-warning)

TESTS=(t_first t_no_password t_wrong_password t_changed_config t_changed_shape t_removed_no_password
       t_stopped t_removed t_network t_down_up t_manifest_mode t_user)
if [ "${DOCKER_OK:-}" = "" ]; then timeout 10 docker version >/dev/null 2>&1 && DOCKER_OK=1 || DOCKER_OK=0; fi
if [ "$DOCKER_OK" != 1 ]; then
    for t in "${TESTS[@]}"; do skip "rerun: $t" "no Docker daemon"; done
    exit 0
fi

clean() { docker_remove_cluster $NAME ${NAME}u; }
clean
T_CLEANUPS+=(clean)
if ! docker image inspect $IMG >/dev/null 2>&1; then
    run_rc "$L/img" 300 -- image build --tag $IMG
fi

UP=(up --name $NAME --subnet 10.82.0.0/24 --port $BASE --image $IMG --nodes 6 --replicas 1 --data-dir "$DATA"
    --node-timeout 4000 --config 'maxmemory-policy allkeys-lru' --yes --timeout 120)

# The state a refused run must not touch: file hashes, containers (id, state), network.
state() {
    {
        (cd "$DATA" 2>/dev/null && sha256sum rcluster.json node-*/conf/redis.conf 2>&1)
        stat -c '%n %a' "$DATA"/rcluster.json "$DATA"/node-*/conf/redis.conf 2>&1
        docker ps -a --no-trunc --filter "label=$LABEL=$NAME" --format '{{.ID}} {{.Names}} {{.State}}' | sort
        docker network ls -q --no-trunc --filter "label=$LABEL=$NAME"
    }
}

healthy() { # TAG: redis-cli --cluster check passes and keys round-trip
    redis-cli "${DAUTH[@]}" --cluster check 127.0.0.1:$BASE >"$L/$1.check" 2>&1 || { echo "redis-cli --cluster check failed"; return 1; }
    grep -q '\[OK\] All 16384 slots covered' "$L/$1.check" || { echo "not all slots covered"; return 1; }
    grep -q '\[ERR\]' "$L/$1.check" && { echo "redis-cli --cluster check reports [ERR]"; return 1; }
    return 0
}

# refused NAME WANT ARGS...: exit 1 or 2, stderr has WANT, state byte-identical.
refused() {
    local name="rerun: $1" want=$2; shift 2
    local before after
    before=$(state)
    run_rc "$L/ref" 60 -- "$@"
    after=$(state)
    verdict "$name" "$(refusal_why "$L/ref" "1 2" "$before" "$after" "$want" "nothing was changed")" "$L/ref.err"
}

t_first() {
    local name="rerun: first up with a password writes a 0600 manifest without the password"
    run_rc "$L/first" 240 -- "${UP[@]}" --password-file "$PW"
    local why=""
    [ $RC -eq 0 ] || { not_ok "$name" "exit $RC" "$L/first.err"; return 1; }
    [ "$(stat -c %a "$DATA/rcluster.json" 2>/dev/null)" = 600 ] || why+="manifest mode is not 600; "
    grep -q 'Re-run-pw' "$DATA/rcluster.json" && why+="manifest holds the password; "
    python3 - "$DATA/rcluster.json" <<'EOF' || why+="manifest lacks recorded options; "
import json, sys
m = json.load(open(sys.argv[1]))
assert m["nodes"] == 6 and m["replicas"] == 1 and m["node_timeout"] == 4000 and m["port"] == 7341
assert m["subnet"] == "10.82.0.0/24" and m["config"] == ["maxmemory-policy allkeys-lru"] and m["password"] is True
EOF
    local f; for f in "$DATA"/node-*/conf/redis.conf; do [ "$(stat -c %a "$f")" = 600 ] || why+="$f mode $(stat -c %a "$f"); "; done
    why+=$(healthy first)
    redis-cli "${DAUTH[@]}" -c -p $BASE set rerun:key kept >/dev/null
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/first.err"; fi
}

t_no_password() { refused "no password on a password cluster is refused" "made with a password" up --name $NAME --yes; }
t_wrong_password() { refused "a wrong password is refused" "not the one" up --name $NAME --password-file "$T_TMP/pw2" --yes; }
t_changed_config() {
    refused "a changed --config is refused, listing it" "--config: 'maxmemory-policy allkeys-lru' (recorded) -> 'maxmemory-policy noeviction' (given)" \
        up --name $NAME --password-file "$PW" --config 'maxmemory-policy noeviction' --yes
}
t_changed_shape() {
    refused "changed --nodes/--replicas/--subnet/--port/--node-timeout are refused, each listed" "--nodes: 6 (recorded) -> 9 (given)" \
        up --name $NAME --password-file "$PW" --nodes 9 --replicas 2 --subnet 10.83.0.0/24 --port 7351 --node-timeout 3000 --yes
    local s; for s in "--replicas: 1 (recorded) -> 2 (given)" "--subnet: 10.82.0.0/24 (recorded) -> 10.83.0.0/24 (given)" \
        "--port: 7341 (recorded) -> 7351 (given)" "--node-timeout: 4000 (recorded) -> 3000 (given)"; do
        contains "$L/ref.err" "$s" || { not_ok "rerun: difference listed: $s" "missing" "$L/ref.err"; return; }
    done
    ok "rerun: every changed option listed with recorded and given values"
}
# The reported defect: one container lost, re-run without the password -> nothing rewritten.
t_removed_no_password() {
    docker rm -f $NAME-6 >/dev/null
    refused "container removed + re-run without the password: refused, configs untouched" "made with a password" up --name $NAME --yes
}
# repaired NAME TAG: `up --name X` + password repairs the cluster, leaving every config
# and the manifest byte-identical; the cluster is then healthy.
repaired() {
    local name="rerun: $1" tag=$2 before after why=""
    before=$(cd "$DATA" && sha256sum rcluster.json node-*/conf/redis.conf)
    run_rc "$L/$tag" 240 -- up --name $NAME --password-file "$PW" --yes
    after=$(cd "$DATA" && sha256sum rcluster.json node-*/conf/redis.conf)
    [ $RC -eq 0 ] || why+="exit $RC; "
    [ "$before" = "$after" ] || why+="a config or the manifest was rewritten; "
    docker inspect $NAME-6 >/dev/null 2>&1 || why+="$NAME-6 not recreated; "
    [ -z "$why" ] && { wait_for 30 healthy $tag; why+=$(healthy $tag); }
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/$tag.err"; fi
}
t_removed() { repaired "container removed, 'up --name X' + password alone repairs it; configs byte-identical" rm; }
t_stopped() {
    docker stop -t 1 $NAME-2 $NAME-5 >/dev/null
    repaired "stopped containers are started; configs byte-identical" stop
}
t_network() {
    local name="rerun: network removed (containers stopped) -> network made anew, containers re-attached, healthy"
    docker stop -t 1 $(docker ps -q --filter "label=$LABEL=$NAME") >/dev/null
    docker network rm $NAME >/dev/null
    run_rc "$L/net" 240 -- up --name $NAME --password-file "$PW" --yes
    local why=""
    [ $RC -eq 0 ] || why+="exit $RC; "
    [ -z "$why" ] && { wait_for 30 healthy net; why+=$(healthy net); }
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/net.err"; fi
}
t_down_up() {
    local name="rerun: down, then 'up --name X' alone brings the same cluster and its keys back"
    local ids_before ids_after why=""
    ids_before=$(redis-cli "${DAUTH[@]}" -p $BASE cluster nodes | awk '{print $1}' | sort)
    run_rc "$L/down" 120 -- down --name $NAME
    [ $RC -eq 0 ] || why+="down exit $RC; "
    [ -z "$(docker ps -aq --filter "label=$LABEL=$NAME")" ] || why+="containers left after down; "
    run_rc "$L/back" 240 -- up --name $NAME --data-dir "$DATA" --password-file "$PW" --yes
    [ $RC -eq 0 ] || why+="up exit $RC; "
    [ -z "$why" ] && { wait_for 30 healthy back; why+=$(healthy back); }
    ids_after=$(redis-cli "${DAUTH[@]}" -p $BASE cluster nodes | awk '{print $1}' | sort)
    [ "$ids_before" = "$ids_after" ] || why+="node ids differ; "
    [ "$(redis-cli "${DAUTH[@]}" -c -p $BASE get rerun:key)" = kept ] || why+="key rerun:key lost; "
    [ "$(redis-cli "${DAUTH[@]}" -p $BASE config get cluster-node-timeout | tail -1)" = 4000 ] || why+="node timeout not the recorded 4000; "
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/back.err" "$L/down.err"; fi
}
t_manifest_mode() {
    local name="rerun: down --purge removes the manifest and the data dir"
    run_rc "$L/purge" 120 -- down --name $NAME --data-dir "$DATA" --purge --yes
    local why=""
    [ $RC -eq 0 ] || why+="exit $RC; "
    [ -e "$DATA" ] && why+="$DATA still exists ($(ls -A "$DATA" | tr '\n' ' ')); "
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/purge.err"; fi
}

t_user() {
    local name="rerun: up --user U makes an ACL user that clients and replicas use (masteruser)"
    run_rc "$L/user" 240 -- up --name ${NAME}u --subnet 10.80.0.0/24 --port 7371 --image $IMG --data-dir "$T_TMP/udata" \
        --user app --password-file "$PW" --yes --timeout 120
    local why=""
    [ $RC -eq 0 ] || why+="exit $RC; "
    grep -q '^masteruser app$' "$T_TMP/udata/node-4/conf/redis.conf" || why+="no masteruser in redis.conf; "
    redis-cli --user app -a 'Re-run-pw 9' --no-auth-warning --cluster check 127.0.0.1:7371 >"$L/user.check" 2>&1 || why+="redis-cli --user app --cluster check failed; "
    grep -q '\[OK\] All 16384 slots covered' "$L/user.check" || why+="not all slots covered; "
    [ "$(redis-cli --user app -a 'Re-run-pw 9' --no-auth-warning -p 7374 info replication | tr -d '\r' | sed -n 's/^master_link_status://p')" = up ] ||
        why+="replica link not up; "
    run_rc "$L/userdown" 120 -- down --name ${NAME}u --data-dir "$T_TMP/udata" --purge --yes
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/user.err" "$L/user.check"; fi
}

t_first || { for t in "${TESTS[@]:1}"; do skip "rerun: $t" "first up failed"; done; finish; }
for t in "${TESTS[@]:1}"; do $t; done
finish
