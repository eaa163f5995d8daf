#!/bin/bash
# tests/test_swarm.sh — `up/status/down --swarm` on a three-host Swarm made of three dockerd
# in network namespaces (tests/swarm_rig.sh; torn down on every exit). Needs root, nsenter,
# ip, iptables and dockerd; skipped, saying so, without them. Never touches the host's
# own daemon: every call names a rig socket.
. "$(dirname "$0")/lib.sh"

RIG=$TOP/tests/swarm_rig.sh
S1=unix:///tmp/rcsw/rcsw1.sock
IMG=rcsw-test/redis:local
NAME=rcsw
PW=rcsw-pass-$$
PORT=7800

missing=""
for t in nsenter ip iptables dockerd docker redis-cli; do command -v "$t" >/dev/null || missing="$missing $t"; done
/usr/bin/python3 -c 'import redis.cluster' 2>/dev/null || missing="$missing python3-redis"
if [ "$(id -u)" != 0 ]; then skip "swarm" "needs root (network namespaces, a bridge, dockerd)"; exit 0; fi
if [ -n "$missing" ]; then skip "swarm" "missing:$missing"; exit 0; fi

T_CLEANUPS+=("$RIG stop")
t0=$(date +%s)
if ! "$RIG" start >"$T_TMP/rig.log" 2>&1; then
    not_ok "swarm rig: three dockerd joined into one Swarm" "tests/swarm_rig.sh start failed" "$T_TMP/rig.log"
    exit 1
fi
ok "swarm rig: three dockerd joined into one Swarm, image built into each ($(( $(date +%s) - t0 )) s)"

echo "$PW" >"$T_TMP/pw"
export DOCKER_HOST=$S1
UP=(up --swarm --name "$NAME" --port $PORT --subnet 10.71.0.0/24 --image "$IMG" --password-file "$T_TMP/pw")
dk() { local n=$1; shift; DOCKER_HOST=unix:///tmp/rcsw/rcsw$n.sock timeout 30 docker "$@"; }
cli() { REDISCLI_AUTH=$PW timeout 10 redis-cli "$@"; }

# ---- fewer Swarm nodes than masters: refused without --yes, nothing made --------------
run_rc "$T_TMP/redund" 60 -- up --swarm --name rcswr --port 7860 --nodes 4 --replicas 0 --subnet 10.71.1.0/24 --image "$IMG" --insecure
if [ "$RC" != 0 ] && grep -q "redundancy is lost" "$T_TMP/redund.err" && grep -q "2 of the 4 masters" "$T_TMP/redund.err" &&
   grep -q "refusing without --yes" "$T_TMP/redund.err" && [ -z "$(dk 1 service ls -q --filter label=io.rcluster.cluster=rcswr)" ] &&
   [ -z "$(dk 1 network ls -q --filter label=io.rcluster.cluster=rcswr)" ]; then
    ok "swarm: 4 masters on 3 Swarm nodes: says what redundancy is lost, refuses without --yes, makes nothing"
else
    not_ok "swarm: 4 masters on 3 Swarm nodes refused" "exit $RC" "$T_TMP/redund.err"
fi

# ---- --dry-run: every request shown, nothing made, the password nowhere --------------------
run_rc "$T_TMP/dry" 60 -- "${UP[@]}" --dry-run
if [ "$RC" = 0 ] && grep -q "POST /v1.[0-9]*/services/create" "$T_TMP/dry.out" && [ "$(grep -c "/configs/create" "$T_TMP/dry.out")" = 6 ] &&
   grep -q '/secrets/create {"Name":"rcsw-password","Data":"\*\*\*"}' "$T_TMP/dry.out" &&
   ! grep -q "$PW\|cmVxdWlyZXBhc3M" "$T_TMP/dry.out" "$T_TMP/dry.err" && [ -z "$(dk 1 service ls -q)" ] &&
   [ -z "$(dk 1 network ls -q --filter label=io.rcluster.cluster=$NAME)" ]; then
    ok "swarm: --dry-run prints the network, secret, config and service requests, masks the secret, creates nothing"
else
    not_ok "swarm: --dry-run" "exit $RC" "$T_TMP/dry.out" "$T_TMP/dry.err"
fi

# ---- the image missing on two Swarm nodes: named, and rolled back -----------------------
dk 1 tag "$IMG" rcsw-test/only1:local >/dev/null
run_rc "$T_TMP/noimg" 120 -- up --swarm --name rcswi --port 7870 --subnet 10.71.2.0/24 --image rcsw-test/only1:local --insecure --timeout 90
if [ "$RC" != 0 ] && grep -q "missing on Swarm node(s)" "$T_TMP/noimg.err" && grep -q "10.70.0.12" "$T_TMP/noimg.err" &&
   grep -q "10.70.0.13" "$T_TMP/noimg.err" && ! grep "missing on" "$T_TMP/noimg.err" | grep -q "10.70.0.11" &&
   grep -q "rcluster image build" "$T_TMP/noimg.err" && [ -z "$(dk 1 service ls -q --filter label=io.rcluster.cluster=rcswi)" ] &&
   [ -z "$(dk 1 config ls -q --filter label=io.rcluster.cluster=rcswi)" ]; then
    ok "swarm: an image missing on two Swarm nodes is named per node, with the build step; the run is rolled back"
else
    not_ok "swarm: image missing on some Swarm nodes" "exit $RC" "$T_TMP/noimg.err"
fi
dk 1 rmi rcsw-test/only1:local >/dev/null 2>&1

# ---- up --swarm: 6 nodes over 3 Swarm nodes -------------------------------------------
run_rc "$T_TMP/up" 200 -- "${UP[@]}" --timeout 180
UP_MS=$RC_MS
cli --cluster check 10.70.0.11:$PORT >"$T_TMP/check.txt" 2>&1 || cli --cluster check 10.70.0.12:$PORT >"$T_TMP/check.txt" 2>&1 ||
    cli --cluster check 10.70.0.13:$PORT >"$T_TMP/check.txt" 2>&1
sed -i 's/\x1b\[[0-9;]*m//g' "$T_TMP/check.txt"   # redis-cli colours even a file
if [ "$RC" = 0 ] && grep -q "All 16384 slots covered" "$T_TMP/check.txt" && ! grep -q "ERR\|WARN" "$T_TMP/check.txt" &&
   [ "$(grep -c '^M:' "$T_TMP/check.txt")" = 3 ] && [ "$(grep -c '^S:' "$T_TMP/check.txt")" = 3 ]; then
    ok "swarm: up --swarm forms 3 masters + 3 replicas over 3 Swarm nodes; redis-cli --cluster check agrees (${UP_MS} ms)"
else
    not_ok "swarm: up --swarm" "exit $RC" "$T_TMP/up.err" "$T_TMP/up.out" "$T_TMP/check.txt"
fi

# Placement: each service's task runs on the Swarm node it is pinned to, and that node's
# address is what the Redis node announces; masters on distinct hosts, no replica on its
# master's host; overlay dnsrr, host-mode ports, config + secret + labelled volume.
placement_ok=1 why=""
declare -A ADDR_OF
AT=()   # announced addr:port of each node, in node order
for id in $(dk 1 node ls -q); do ADDR_OF[$id]=$(dk 1 node inspect "$id" --format '{{.Status.Addr}}'); done
for i in 1 2 3 4 5 6; do
    svc=$NAME-$i port=$((PORT + i - 1))
    pin=$(dk 1 service inspect "$svc" --format '{{index .Spec.TaskTemplate.Placement.Constraints 0}}' 2>/dev/null)
    ran=$(dk 1 service ps "$svc" --filter desired-state=running -q 2>/dev/null | head -1)
    node=$(dk 1 inspect "$ran" --format '{{.NodeID}}' 2>/dev/null)
    spec=$(dk 1 service inspect "$svc" --format '{{.Spec.EndpointSpec.Mode}} {{(index .Spec.EndpointSpec.Ports 0).PublishMode}} {{len .Spec.TaskTemplate.ContainerSpec.Configs}} {{len .Spec.TaskTemplate.ContainerSpec.Secrets}} {{(index .Spec.TaskTemplate.ContainerSpec.Mounts 0).Type}}' 2>/dev/null)
    me=$(cli -h "${ADDR_OF[$node]}" -p $port cluster nodes 2>/dev/null | grep myself | awk '{print $2}')
    AT+=("${ADDR_OF[$node]}:$port")
    [ "$pin" = "node.id==$node" ] || { placement_ok=0; why="$why $svc pinned '$pin' but runs on $node;"; }
    [ "$spec" = "dnsrr host 1 1 volume" ] || { placement_ok=0; why="$why $svc spec '$spec';"; }
    [ "${me%@*}" = "${ADDR_OF[$node]}:$port" ] || { placement_ok=0; why="$why $svc announces '$me', runs on ${ADDR_OF[$node]};"; }
done
# a live seed (not on Swarm node 2, which the lost-host test stops) and all startup nodes
SEED=""
for a in "${AT[@]}"; do [ "${a%:*}" != 10.70.0.12 ] && [ -z "$SEED" ] && SEED=$a; done
SEED=${SEED:-10.70.0.11:$PORT}
STARTUP=$(IFS=,; echo "${AT[*]}")
cli -h "${SEED%:*}" -p "${SEED#*:}" cluster nodes >"$T_TMP/nodes.txt" 2>&1
# pairs.py NODES MASTERS [distinct]: MASTERS masters (on distinct hosts with "distinct"), no
# replica on its master's host, no failed node left
cat >"$T_TMP/pairs.py" <<'EOF'
import sys
lines = [l.split() for l in open(sys.argv[1]) if l.strip()]
host = {l[0]: l[1].split(':')[0] for l in lines}
masters = [l for l in lines if 'master' in l[2]]
mh = [host[m[0]] for m in masters]
assert len(mh) == int(sys.argv[2]), "%d masters: %s" % (len(mh), mh)
assert len(sys.argv) < 4 or len(set(mh)) == len(mh), "masters share a host: %s" % mh
assert not [l for l in lines if 'fail' in l[2].split(',')], "failed nodes listed: %s" % [l[1] for l in lines if 'fail' in l[2].split(',')]
for l in lines:
    if 'slave' in l[2]:
        assert host[l[0]] != host[l[3]], "replica %s on its master's host %s" % (l[1], host[l[3]])
print("ok")
EOF
/usr/bin/python3 "$T_TMP/pairs.py" "$T_TMP/nodes.txt" 3 distinct >"$T_TMP/pairs.txt" 2>&1 || { placement_ok=0; why="$why $(tr '\n' ' ' <"$T_TMP/pairs.txt")"; }
if [ $placement_ok = 1 ]; then
    ok "swarm: each task runs where its service is pinned and announces that Swarm node's address; masters on 3 hosts, no replica beside its master; dnsrr, host-mode ports, config, secret, volume"
else
    not_ok "swarm: placement" "$why" "$T_TMP/nodes.txt"
fi

# ---- a cluster client through the announced addresses; acknowledged writes -------------
cat >"$T_TMP/client.py" <<'EOF'
import sys, json, redis
from redis.cluster import RedisCluster, ClusterNode
mode, pw, path, startup = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
nodes = [ClusterNode(a.rsplit(":", 1)[0], int(a.rsplit(":", 1)[1])) for a in startup.split(",") if a]
rc = RedisCluster(startup_nodes=nodes, password=pw,
                  socket_timeout=5, cluster_error_retry_attempts=10)
if mode == "write":
    # SET then WAIT 1 on the same connection to the key's master: acknowledged = on a replica too
    conns, acked = {}, {}
    for i in range(300):
        k, v = "k:%d" % i, "v%d" % i
        n = rc.get_node_from_key(k)
        c = conns.setdefault(n.name, redis.Redis(host=n.host, port=n.port, password=pw, socket_timeout=5))
        c.set(k, v)
        if c.execute_command("WAIT", 1, 2000) >= 1:
            acked[k] = v
    for i in range(50):  # and through the cluster client itself
        rc.set("c:%d" % i, "w%d" % i)
        assert rc.get("c:%d" % i) == b"w%d" % i
    json.dump(acked, open(path, "w"))
    print("acked %d of 300" % len(acked))
else:
    acked = json.load(open(path))
    lost = [k for k, v in acked.items() if rc.get(k) != v.encode()]
    print("lost %d of %d acknowledged keys %s" % (len(lost), len(acked), lost[:5]))
    sys.exit(1 if lost or not acked else 0)
EOF
if /usr/bin/python3 "$T_TMP/client.py" write "$PW" "$T_TMP/acked.json" "$STARTUP" >"$T_TMP/write.txt" 2>&1 &&
   grep -q "acked 300 of 300" "$T_TMP/write.txt"; then
    ok "swarm: a cluster client (redis-py RedisCluster) reads and writes through the announced addresses; $(cat "$T_TMP/write.txt")"
else
    not_ok "swarm: cluster client" "$(tail -1 "$T_TMP/write.txt")" "$T_TMP/write.txt"
fi

# ---- the manifest: a Swarm config; a re-run with other options is refused, nothing changed ----
svc_state() { dk 1 service ls --format '{{.ID}} {{.Name}}' | sort; dk 1 config ls --format '{{.ID}} {{.Name}}' | sort; }
man=$(dk 1 config ls --filter label=io.rcluster.manifest --format '{{.Name}}')
mdata=$(dk 1 config inspect "$man" --format '{{printf "%s" .Spec.Data}}' 2>/dev/null)
before=$(svc_state)
run_rc "$T_TMP/refuse" 30 -- up --swarm --name "$NAME" --password-file "$T_TMP/pw" --node-timeout 7000 --replicas 2 --nodes 9
if [ "$man" = "$NAME-manifest-1" ] && echo "$mdata" | grep -q '"nodes":6' && echo "$mdata" | grep -q '"pinned":{"rcsw-1":' &&
   echo "$mdata" | grep -q '"password":true' && ! echo "$mdata" | grep -q "$PW" && [ "$RC" = 1 ] &&
   grep -q -- "--node-timeout: 5000 (recorded) -> 7000 (given)" "$T_TMP/refuse.err" && grep -q -- "--nodes: 6 (recorded) -> 9 (given)" "$T_TMP/refuse.err" &&
   grep -q "recorded in Swarm config $NAME-manifest-1" "$T_TMP/refuse.err" && [ "$before" = "$(svc_state)" ]; then
    ok "swarm: the manifest is the Swarm config $man (shape, pinning, password yes/no, never the password); other options are refused, listed, nothing changed"
else
    echo "$mdata" >"$T_TMP/manifest.json"
    not_ok "swarm: manifest and refusal" "manifest '$man', exit $RC" "$T_TMP/refuse.err" "$T_TMP/manifest.json"
fi

# ---- a lost host: stop Swarm node 2's daemon (10.70.0.12) --------------------------------
t0=$(date +%s)
"$RIG" kill 2
healthy=0
for _ in $(seq 1 60); do
    cli --cluster check "$SEED" >"$T_TMP/check2.txt" 2>&1
    sed -i 's/\x1b\[[0-9;]*m//g' "$T_TMP/check2.txt"
    states=""
    for a in "${AT[@]}"; do
        [ "${a%:*}" = 10.70.0.12 ] && continue
        states="$states $(cli -h "${a%:*}" -p "${a#*:}" cluster info 2>/dev/null | tr -d '\r' | grep cluster_state)"
    done
    if grep -q "All 16384 slots covered" "$T_TMP/check2.txt" && [ -z "$(echo "$states" | tr ' ' '\n' | grep -v '^cluster_state:ok$' | grep .)" ] &&
       ! grep "^M:" "$T_TMP/check2.txt" | grep -q "10.70.0.12"; then healthy=1; break; fi
    sleep 1
done
FO_S=$(( $(date +%s) - t0 ))
if [ $healthy = 1 ] && /usr/bin/python3 "$T_TMP/client.py" read "$PW" "$T_TMP/acked.json" "$STARTUP" >"$T_TMP/read.txt" 2>&1; then
    ok "swarm: Swarm node 2 lost: the cluster fails over in ${FO_S} s and keeps every acknowledged key ($(tail -1 "$T_TMP/read.txt"))"
else
    not_ok "swarm: failover after a lost host" "healthy=$healthy after ${FO_S} s; $(tail -1 "$T_TMP/read.txt" 2>/dev/null)" "$T_TMP/check2.txt" "$T_TMP/read.txt"
fi

# status reports what the Swarm knows: wait until the manager has marked the node down
for _ in $(seq 1 60); do dk 1 node ls --format '{{.Status}}' | grep -q Down && break; sleep 1; done
run_rc "$T_TMP/status" 30 -- status --swarm --name "$NAME" --password-file "$T_TMP/pw"
if [ "$RC" = 3 ] && grep -q "lost host: Swarm node .*10.70.0.12.* is down" "$T_TMP/status.err" &&
   grep -q "FAILED OVER" "$T_TMP/status.err" && grep -q "DOWN" "$T_TMP/status.out"; then
    ok "swarm: status names the lost host and says its master failed over (exit 3)"
else
    not_ok "swarm: status with a lost host" "exit $RC" "$T_TMP/status.out" "$T_TMP/status.err"
fi

# cluster_ok FILE MASTERS REPLICAS: redis-cli --cluster check from a live node agrees
cluster_ok() {
    cli --cluster check "$SEED" >"$1" 2>&1
    sed -i 's/\x1b\[[0-9;]*m//g' "$1"
    grep -q "All 16384 slots covered" "$1" && ! grep -q "ERR\|WARN" "$1" && [ "$(grep -c '^M:' "$1")" = "$2" ] && [ "$(grep -c '^S:' "$1")" = "$3" ]
}
pin_of() { dk 1 service inspect "$1" --format '{{index .Spec.TaskTemplate.Placement.Constraints 0}}' 2>/dev/null; }
DEAD=$(dk 1 node ls --format '{{.ID}} {{.Status}}' | awk '$2 == "Down" {print $1}')
LOST=()
for i in 1 2 3 4 5 6; do [ "$(pin_of "$NAME-$i")" = "node.id==$DEAD" ] && LOST+=("$NAME-$i"); done

# ---- re-home: --dry-run shows it; up --swarm again moves the lost services to live nodes ----
run_rc "$T_TMP/rehome-dry" 60 -- up --swarm --name "$NAME" --password-file "$T_TMP/pw" --dry-run
still=0
for s in "${LOST[@]}"; do [ "$(pin_of "$s")" = "node.id==$DEAD" ] && still=$((still + 1)); done
if [ "$RC" = 0 ] && [ "${#LOST[@]}" = 2 ] && [ "$(grep -c "is down -> re-homed on" "$T_TMP/rehome-dry.err")" = 2 ] &&
   grep -q "DELETE /v1.[0-9]*/services/${LOST[0]}" "$T_TMP/rehome-dry.out" && [ $still = 2 ]; then
    ok "swarm: --dry-run shows the re-homing of ${LOST[*]} (DELETE, then create on a live node) and changes nothing"
else
    not_ok "swarm: re-home --dry-run" "exit $RC, lost '${LOST[*]}', still pinned $still" "$T_TMP/rehome-dry.err" "$T_TMP/rehome-dry.out"
fi
t0=$(date +%s)
run_rc "$T_TMP/rehome" 200 -- up --swarm --name "$NAME" --password-file "$T_TMP/pw" --timeout 180
REHOME_S=$(( $(date +%s) - t0 ))
moved=1
for s in "${LOST[@]}"; do
    pin=$(pin_of "$s")
    { [ -n "$pin" ] && [ "$pin" != "node.id==$DEAD" ] && [ -n "$(dk 1 service ps "$s" --filter desired-state=running -q)" ]; } || moved=0
done
cli -h "${SEED%:*}" -p "${SEED#*:}" cluster nodes >"$T_TMP/nodes3.txt" 2>&1
run_rc "$T_TMP/status3" 30 -- status --swarm --name "$NAME" --password-file "$T_TMP/pw"
if [ "$(grep -c "is down -> re-homed on" "$T_TMP/rehome.err")" = 2 ] && [ $moved = 1 ] && cluster_ok "$T_TMP/check3.txt" 3 3 &&
   ! grep -q "10.70.0.12" "$T_TMP/nodes3.txt" && [ "$(grep -c . "$T_TMP/nodes3.txt")" = 6 ] &&
   /usr/bin/python3 "$T_TMP/pairs.py" "$T_TMP/nodes3.txt" 3 >"$T_TMP/pairs3.txt" 2>&1 && [ "$RC" = 0 ] &&
   /usr/bin/python3 "$T_TMP/client.py" read "$PW" "$T_TMP/acked.json" "$STARTUP" >"$T_TMP/read3.txt" 2>&1; then
    ok "swarm: up --swarm re-homes ${LOST[*]} on live Swarm nodes as replicas in ${REHOME_S} s (old ids forgotten, no replica beside its master); check and status healthy; $(tail -1 "$T_TMP/read3.txt")"
else
    not_ok "swarm: re-home" "moved=$moved status exit $RC; $(cat "$T_TMP/pairs3.txt" 2>/dev/null)" "$T_TMP/rehome.err" "$T_TMP/check3.txt" "$T_TMP/nodes3.txt" "$T_TMP/read3.txt"
fi

# ---- the host comes back: its old tasks go, the cluster stays as re-homed ------------------
"$RIG" revive 2 >"$T_TMP/revive.log" 2>&1
for _ in $(seq 1 60); do [ "$(dk 1 node ls --format '{{.Status}}' | grep -c Ready)" = 3 ] && break; sleep 1; done
run_rc "$T_TMP/rerun" 200 -- "${UP[@]}" --timeout 180
run_rc "$T_TMP/status2" 30 -- status --swarm --name "$NAME" --password-file "$T_TMP/pw"
cli -h "${SEED%:*}" -p "${SEED#*:}" cluster nodes >"$T_TMP/nodes4.txt" 2>&1
if [ "$RC" = 0 ] && grep -q "healthy" "$T_TMP/status2.out" && grep -q "all 6 services exist" "$T_TMP/rerun.err" &&
   [ "$(grep -c . "$T_TMP/nodes4.txt")" = 6 ] && [ -z "$(dk 2 ps -q --filter label=io.rcluster.cluster=$NAME)" ] &&
   /usr/bin/python3 "$T_TMP/client.py" read "$PW" "$T_TMP/acked.json" "$STARTUP" >"$T_TMP/read2.txt" 2>&1; then
    ok "swarm: the host is back: its old tasks are gone, up --swarm again changes nothing; status healthy; keys kept"
else
    not_ok "swarm: re-run after the host came back" "status exit $RC" "$T_TMP/rerun.err" "$T_TMP/status2.out" "$T_TMP/nodes4.txt"
fi

# ---- scale --swarm: 6 -> 8 nodes and back, keys and all ------------------------------------
nsvc() { dk 1 service ls -q --filter label=io.rcluster.cluster=$NAME | wc -l; }
run_rc "$T_TMP/grow" 300 -- scale --swarm --name "$NAME" --nodes 8 --password-file "$T_TMP/pw" --yes --timeout 180
grow=$RC
cli -h "${SEED%:*}" -p "${SEED#*:}" cluster nodes >"$T_TMP/nodes5.txt" 2>&1
man=$(dk 1 config ls --filter label=io.rcluster.manifest --format '{{.Name}}')
if [ "$grow" = 0 ] && cluster_ok "$T_TMP/check5.txt" 4 4 && [ "$(nsvc)" = 8 ] &&
   /usr/bin/python3 "$T_TMP/pairs.py" "$T_TMP/nodes5.txt" 4 >"$T_TMP/pairs5.txt" 2>&1 && [ "$(echo "$man" | wc -w)" = 1 ] &&
   dk 1 config inspect "$man" --format '{{printf "%s" .Spec.Data}}' | grep -q '"nodes":8' &&
   /usr/bin/python3 "$T_TMP/client.py" read "$PW" "$T_TMP/acked.json" "$STARTUP" >"$T_TMP/read5.txt" 2>&1; then
    ok "swarm: scale --swarm --nodes 8: two services join (a master given slots, its replica on another host); one manifest ($man); $(tail -1 "$T_TMP/grow.out")"
else
    not_ok "swarm: scale --swarm grow" "exit $grow; $(tail -1 "$T_TMP/pairs5.txt" 2>/dev/null)" "$T_TMP/grow.err" "$T_TMP/nodes5.txt" "$T_TMP/read5.txt"
fi
run_rc "$T_TMP/shrink" 300 -- scale --swarm --name "$NAME" --nodes 6 --password-file "$T_TMP/pw" --yes --timeout 180
shrink=$RC
if [ "$shrink" = 0 ] && cluster_ok "$T_TMP/check6.txt" 3 3 && [ "$(nsvc)" = 6 ] &&
   [ -z "$(dk 1 config ls -q --filter name=$NAME-7.conf)$(dk 1 config ls -q --filter name=$NAME-8.conf)" ] &&
   /usr/bin/python3 "$T_TMP/client.py" read "$PW" "$T_TMP/acked.json" "$STARTUP" >"$T_TMP/read6.txt" 2>&1; then
    ok "swarm: scale --swarm --nodes 6: slots moved off, del-node, services and configs removed; $(tail -1 "$T_TMP/shrink.out")"
else
    not_ok "swarm: scale --swarm shrink" "exit $shrink" "$T_TMP/shrink.err" "$T_TMP/check6.txt" "$T_TMP/read6.txt"
fi

# ---- update --swarm, a client writing throughout: Redis 7.0 -> Valkey 8.0.1 with a directive and
#      a new password; -> Valkey 9.1.0 killed with SIGKILL half-way and run again; a refused downgrade ----
VB8=$TOP/../shared/servers/valkey-8.0.1/valkey-server
VB9=$TOP/../shared/servers/valkey-9.1.0/valkey-server
# sw_why SERVER_VERSION_LINE: "" when every node of the cluster says it, the check is clean and
# every acknowledged key reads back; else why not.
sw_why() {
    local a why=""
    cli -h "${SEED%:*}" -p "${SEED#*:}" cluster nodes >"$T_TMP/nodes-u.txt" 2>&1
    for a in $(awk '{print $2}' "$T_TMP/nodes-u.txt" | sed 's/@.*//'); do
        cli -h "${a%:*}" -p "${a#*:}" info server | grep -q "^$1" || { why="$a does not say $1"; break; }
    done
    [ -z "$why" ] && ! cluster_ok "$T_TMP/check-u.txt" 3 3 && why="cluster check: $(grep -m1 'ERR\|WARN' "$T_TMP/check-u.txt")"
    [ -z "$why" ] && ! /usr/bin/python3 "$T_TMP/client.py" read "$PW" "$T_TMP/acked.json" "$STARTUP" >"$T_TMP/read-u.txt" 2>&1 && why="$(tail -1 "$T_TMP/read-u.txt")"
    echo "$why"
}
svc_images() { dk 1 service ls --filter label=io.rcluster.cluster=$NAME --format '{{.Name}} {{.Image}}' | sed 's/@.*//' | sort; }
if [ -x "$VB8" ] && [ -x "$VB9" ]; then
    for n in 1 2 3; do
        DOCKER_HOST=unix:///tmp/rcsw/rcsw$n.sock run_rc "$T_TMP/v8img$n" 300 -- image build --from "$VB8" --tag rcsw-test/valkey801:local
        DOCKER_HOST=unix:///tmp/rcsw/rcsw$n.sock run_rc "$T_TMP/v9img$n" 300 -- image build --from "$VB9" --tag rcsw-test/valkey910:local
    done
    cp "$T_TMP/pw" "$T_TMP/pw.now"
    RC_TEST_HOST=${SEED%:*} RC_TEST_PASSWORD_FILE="$T_TMP/pw.now" /usr/bin/python3 "$TOP/tests/day2_client.py" writer "${SEED#*:}" \
        "$T_TMP/sw-writer.json" >"$T_TMP/sw-writer.log" 2>&1 &
    SWW=$!
    T_PIDS+=($SWW)
    sleep 1
    echo "$PW-2" >"$T_TMP/pw2"
    run_rc "$T_TMP/upd8" 900 -- update --swarm --name "$NAME" --image rcsw-test/valkey801:local --config 'maxmemory-policy allkeys-lru' \
        --password-file "$T_TMP/pw" --new-password-file "$T_TMP/pw2" --yes --timeout 120
    upd=$RC
    cp "$T_TMP/pw2" "$T_TMP/pw.now"
    OLDPW=$PW; PW="$PW-2"; cp "$T_TMP/pw2" "$T_TMP/pw"
    why=""
    [ "$upd" = 0 ] || why="exit $upd"
    [ -z "$why" ] && [ "$(svc_images | awk '{print $2}' | sort -u)" != rcsw-test/valkey801:local ] && why="services run $(svc_images | tr '\n' ' ')"
    [ -z "$why" ] && why=$(sw_why 'valkey_version:8.0.1')
    for a in $(awk '{print $2}' "$T_TMP/nodes-u.txt" | sed 's/@.*//'); do
        [ -n "$why" ] && break
        [ "$(cli -h "${a%:*}" -p "${a#*:}" config get maxmemory-policy | tail -1)" != allkeys-lru ] && why="$a: maxmemory-policy not set"
        [ -z "$why" ] && [ "$(REDISCLI_AUTH=$OLDPW timeout 10 redis-cli -h "${a%:*}" -p "${a#*:}" ping 2>&1)" = PONG ] && why="$a still takes the old password"
    done
    if [ -z "$why" ]; then ok "swarm: update --swarm: Valkey 8.0.1, a directive and a new password on every service, a client writing; $(tail -1 "$T_TMP/upd8.out")"
    else not_ok "swarm: update --swarm to Valkey 8.0.1" "$why" "$T_TMP/upd8.err" "$T_TMP/check-u.txt"; fi

    # SIGKILL while the second service is updated, then the same command again
    "$RCLUSTER" update --swarm --name "$NAME" --image rcsw-test/valkey910:local --password-file "$T_TMP/pw" --yes --timeout 120 \
        >"$T_TMP/swkill.out" 2>"$T_TMP/swkill.err" &
    KPID=$!
    for i in $(seq 1 900); do [ "$(grep -c 'service -> ' "$T_TMP/swkill.err")" -ge 2 ] && break; sleep 0.2; done
    kill -9 $KPID 2>/dev/null; wait $KPID 2>/dev/null
    run_rc "$T_TMP/swresume" 900 -- update --swarm --name "$NAME" --image rcsw-test/valkey910:local --password-file "$T_TMP/pw" --yes --timeout 120
    why=""
    [ "$RC" = 0 ] || why="exit $RC"
    [ -z "$why" ] && [ "$(svc_images | awk '{print $2}' | sort -u)" != rcsw-test/valkey910:local ] && why="services run $(svc_images | tr '\n' ' ')"
    [ -z "$why" ] && why=$(sw_why 'valkey_version:9.1.0')
    if [ -z "$why" ]; then ok "swarm: update --swarm killed half-way to Valkey 9.1.0; the same command finishes it"
    else not_ok "swarm: update --swarm killed half-way, then run again" "$why" "$T_TMP/swresume.err" "$T_TMP/swkill.err"; fi

    # Valkey 9.1 -> Redis 7.0: refused before anything changes, naming both versions
    before=$(dk 1 service ls --filter label=io.rcluster.cluster=$NAME --format '{{.Name}} {{.Image}} {{.ID}}' | sort)
    run_rc "$T_TMP/swdown" 120 -- update --swarm --name "$NAME" --image "$IMG" --password-file "$T_TMP/pw" --yes
    why=""
    [ "$RC" = 1 ] || why="exit $RC, want 1"
    [ -z "$why" ] && ! contains "$T_TMP/swdown.err" "Redis 7.0" "Valkey 9.1.0" "nothing was changed" && why="message does not name both versions"
    [ -z "$why" ] && [ "$(dk 1 service ls --filter label=io.rcluster.cluster=$NAME --format '{{.Name}} {{.Image}} {{.ID}}' | sort)" != "$before" ] && why="services changed"
    if [ -z "$why" ]; then ok "swarm: update --swarm to Redis 7.0 refused, naming both versions, nothing changed"
    else not_ok "swarm: update --swarm downgrade refused" "$why" "$T_TMP/swdown.err"; fi

    kill -TERM $SWW 2>/dev/null; wait $SWW 2>/dev/null
    if RC_TEST_HOST=${SEED%:*} RC_TEST_PASSWORD_FILE="$T_TMP/pw.now" /usr/bin/python3 "$TOP/tests/day2_client.py" writer-check "${SEED#*:}" \
        "$T_TMP/sw-writer.json" >"$T_TMP/sw-wcheck.txt" 2>&1; then
        ok "swarm: no write the client saw acknowledged during the updates was lost (longest pause $(/usr/bin/python3 -c 'import json,sys; print("%.2f s" % json.load(open(sys.argv[1]))["longest_pause"])' "$T_TMP/sw-writer.json"))"
    else not_ok "swarm: acknowledged writes during the updates" "$(head -1 "$T_TMP/sw-wcheck.txt")" "$T_TMP/sw-writer.log"; fi
else
    skip "swarm: update --swarm" "no ../shared/servers/valkey-8.0.1 and valkey-9.1.0"
fi

# ---- down --purge: nothing labelled is left, on any Swarm node --------------------------
dk 1 volume create --label keep=1 rcsw-unlabelled >/dev/null
run_rc "$T_TMP/down" 120 -- down --swarm --name "$NAME" --purge --yes
rc1=$RC
for n in 2 3; do DOCKER_HOST=unix:///tmp/rcsw/rcsw$n.sock run_rc "$T_TMP/down$n" 120 -- down --swarm --name "$NAME" --purge --yes; rc1="$rc1$RC"; done
for _ in $(seq 1 15); do   # a removed overlay network may linger in the list for a moment
    left=""
    for kind in service config secret network; do
        [ -n "$(dk 1 $kind ls -q --filter label=io.rcluster.cluster=$NAME)" ] && left="$left ${kind}s"
    done
    for n in 1 2 3; do [ -n "$(dk $n volume ls -q --filter label=io.rcluster.cluster=$NAME)" ] && left="$left volumes-on-$n"; done
    [ -z "$left" ] && break
    sleep 1
done
if [ "$rc1" = 000 ] && [ -z "$left" ] && grep -q "10.70.0.1[23]" "$T_TMP/down.err" && dk 1 volume inspect rcsw-unlabelled >/dev/null; then
    ok "swarm: down --purge removes services, configs (the manifest too), secret, network and (per node) volumes; names the nodes to purge; unlabelled kept"
else
    not_ok "swarm: down --purge" "exits $rc1, left:$left" "$T_TMP/down.err" "$T_TMP/down2.err"
fi
# ---- --announce container: nodes keep their overlay addresses ---------------------------
run_rc "$T_TMP/upc" 200 -- up --swarm --name rcswc --port 7880 --subnet 10.71.3.0/24 --image "$IMG" --password-file "$T_TMP/pw" \
    --announce container --timeout 180
cli -h 10.70.0.11 -p 7880 cluster nodes >"$T_TMP/nodesc.txt" 2>&1 || cli -h 10.70.0.12 -p 7880 cluster nodes >"$T_TMP/nodesc.txt" 2>&1 ||
    cli -h 10.70.0.13 -p 7880 cluster nodes >"$T_TMP/nodesc.txt" 2>&1
upc=$RC
run_rc "$T_TMP/statusc" 30 -- status --swarm --name rcswc --password-file "$T_TMP/pw"
if [ "$upc" = 0 ] && [ "$RC" = 0 ] && [ "$(grep -c ' 10\.71\.3\.[0-9]*:6379@16379 ' "$T_TMP/nodesc.txt")" = 6 ] &&
   [ "$(grep -c 'cluster_state:ok slots_ok:16384 known_nodes:6' "$T_TMP/statusc.out")" = 6 ]; then
    ok "swarm: --announce container: all 6 nodes announce overlay addresses (10.71.3.x:6379); status asks each through its published port"
else
    not_ok "swarm: --announce container" "up exit $upc, status exit $RC" "$T_TMP/upc.err" "$T_TMP/nodesc.txt" "$T_TMP/statusc.out"
fi
for n in 1 2 3; do DOCKER_HOST=unix:///tmp/rcsw/rcsw$n.sock run_rc "$T_TMP/downc$n" 120 -- down --swarm --name rcswc --purge --yes; done
exit 0
