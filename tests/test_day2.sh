#!/bin/bash
# tests/test_day2.sh — day-2 operations (info, call, add-node, del-node, reshard,
# rebalance, fix, set-timeout) on a loaded cluster of real servers on 127.0.0.1:7100-7199
# (bus ports +10000), with a concurrent client writing throughout. Every step is judged
# by redis-cli --cluster check, a read-back of every key (value and type) and the
# writer's acknowledged counts. Core scenarios run once on redis-server and once more
# on each server in ../shared/servers (Valkey 8.0.1 and 9.1.0, the Redis 8 dev build)
# that is there.
#   DAY2_KEYS=200000   keys loaded (mixed types) besides 3 values of 3 MB
#   DAY2_VALKEY=0      skip the Valkey pass
. "$(dirname "$0")/lib.sh"
cd "$T_TMP" || exit 1
L=$T_TMP/log
mkdir -p "$L"
KEYS=${DAY2_KEYS:-200000}
BIG=3
PY=python3
/usr/bin/python3 -c 'import redis.cluster' 2>/dev/null && PY=/usr/bin/python3
CLIENT="$PY $TOP/tests/day2_client.py"
SERVER=redis-server
SNAME=redis
VALKEY=$TOP/../shared/servers/valkey-8.0.1/valkey-server

if [ ! -x "$RCLUSTER" ]; then not_ok "day2: binary" "$RCLUSTER not built"; finish; fi
if ! $PY -c 'import redis.cluster' 2>/dev/null; then skip "day2" "python3 redis module (python3-redis) missing"; finish; fi

# d2_start PORT [args...]: like lib.sh's start_node, with $SERVER (redis or valkey).
d2_start() {
    local port=$1; shift
    local dir=$T_TMP/node-$port
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "d2_start $port: something already listens on 127.0.0.1:$port" >&2
        return 1
    fi
    rm -rf "$dir"; mkdir -p "$dir"
    "$SERVER" --port "$port" --bind 127.0.0.1 --cluster-enabled yes --cluster-config-file "$dir/nodes.conf" \
        --cluster-node-timeout 5000 --dir "$dir" --appendonly no --save '' --daemonize no \
        --logfile "$dir/server.log" "$@" >/dev/null 2>&1 &
    NODE_PID[$port]=$!
    local i
    for i in $(seq 1 100); do
        redis-cli -p "$port" ${NODE_AUTH[$port]:-} ping 2>/dev/null | grep -q 'PONG\|NOAUTH\|WRONGPASS' && return 0
        sleep 0.05
    done
    echo "d2_start $port: $SERVER did not come up" >&2
    return 1
}

# nodes_snapshot PORT...: each node's CLUSTER NODES without the changing columns
# (ping/pong times, link state), sorted: proves that a refused command changed nothing.
nodes_snapshot() {
    local p
    for p in "$@"; do
        echo "== $p"
        rcli "$p" cluster nodes | awk '{ $5 = ""; $6 = ""; $8 = ""; print }' | sed 's/myself,//; s/,fail?//; s/ fail?//; s/,nofailover//' | sort
    done
}

# judge STEP PORT: the cluster ADDR belongs to passes redis-cli --cluster check, every
# loaded key reads back, and the writer lost no acknowledged write.
judge() {
    local step=$1 port=$2 out
    cli_check "$step" "127.0.0.1:$port" warn redis-cli ${NODE_AUTH[$port]:-} || return 1
    out=$($CLIENT verify "$port" "$KEYS" "$BIG" 2>&1) || { echo "read-back: $(echo "$out" | head -1)"; return 1; }
    if [ -n "${WRITER_STATE:-}" ]; then
        sleep 0.3
        out=$($CLIENT writer-check "$port" "$WRITER_STATE" running 2>&1) || { echo "writer: $(echo "$out" | tail -1)"; return 1; }
    fi
    return 0
}

start_writer() {
    WRITER_STATE=$T_TMP/writer-$SNAME.json
    $CLIENT writer "$1" "$WRITER_STATE" 2>"$L/writer-$SNAME.log" &
    WRITER_PID=$!
    T_PIDS+=("$WRITER_PID")
    wait_for 10 test -s "$WRITER_STATE"
}

stop_writer() {
    [ -n "${WRITER_PID:-}" ] || return 0
    kill -TERM "$WRITER_PID" 2>/dev/null; wait "$WRITER_PID" 2>/dev/null
    local keep=() p
    for p in "${T_PIDS[@]}"; do [ "$p" = "$WRITER_PID" ] || keep+=("$p"); done
    T_PIDS=("${keep[@]}")
    WRITER_PID=
}

# step NAME PORT -- ARGS...: run rcluster, want exit 0, then judge the cluster.
step() {
    local name="$SNAME: $1" port=$2; shift 3
    local tag=s$RANDOM
    run_rc "$L/$tag" 180 -- "$@"
    if [ $RC -ne 0 ]; then not_ok "$name" "rcluster $* exited $RC" "$L/$tag.err" "$L/$tag.out"; return 1; fi
    local why
    if why=$(judge "$tag" "$port"); then ok "$name"; return 0; fi
    not_ok "$name" "$why" "$L/$tag.err" "$L/$tag.check"
    return 1
}

# refuse NAME SUBSTRING PORTS -- ARGS...: rcluster must exit non-zero naming the problem
# and leave every node's CLUSTER NODES as it was.
refuse() {
    local name="$SNAME: refused: $1" sub=$2 ports=$3; shift 4
    local before after tag=r$RANDOM
    before=$(nodes_snapshot $ports)
    run_rc "$L/$tag" 60 -- "$@"
    after=$(nodes_snapshot $ports)
    verdict "$name" "$(refusal_why "$L/$tag" nonzero "$before" "$after" "$sub")" "$L/$tag.err"
}

# unchanged NAME PORTS -- ARGS...: rcluster exits 0 and every node's CLUSTER NODES stays.
unchanged() {
    local name="$SNAME: $1" ports=$2; shift 3
    local before after why="" tag=r$RANDOM
    before=$(nodes_snapshot $ports)
    run_rc "$L/$tag" 60 -- "$@"
    after=$(nodes_snapshot $ports)
    [ $RC -eq 0 ] || why+="exit $RC; "
    [ "$before" = "$after" ] || why+="CLUSTER NODES changed; "
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/$tag.err"; fi
}

# ---- the core scenario (run per server) ---------------------------------------------------

core() {
    local ports="7100 7101 7102"
    local p
    for p in 7100 7101 7102 7103 7104 7105; do d2_start $p || { not_ok "$SNAME: start nodes" "could not start $p"; return; }; done
    run_rc "$L/create-$SNAME" 60 -- create --replicas 0 --yes $(addrs 7100 3)
    [ $RC -eq 0 ] || { not_ok "$SNAME: create 3 masters" "exit $RC" "$L/create-$SNAME.err"; return; }
    if ! $CLIENT load 7100 "$KEYS" "$BIG" >"$L/load-$SNAME.log" 2>&1; then not_ok "$SNAME: load $KEYS keys" "load failed" "$L/load-$SNAME.log"; return; fi
    start_writer 7100
    local why
    if why=$(judge load-$SNAME 7100); then ok "$SNAME: $KEYS keys of 5 types + $BIG x 3 MB loaded, writer running"
    else not_ok "$SNAME: loaded cluster is sound" "$why"; return; fi

    step "add-node as an empty master" 7100 -- add-node 127.0.0.1:7103 127.0.0.1:7100 --yes || return
    local n; n=$(rcli 7103 cluster nodes | grep -vc handshake)
    [ "$n" -eq 4 ] || not_ok "$SNAME: add-node: the new node knows all 4 nodes" "it knows $n"
    local empty=--cluster-use-empty-masters
    case $SNAME in valkey*) empty=--cluster-use-empty-primaries ;; esac   # Valkey's spelling
    step "rebalance $empty" 7100 -- rebalance 127.0.0.1:7100 "$empty" --yes || return
    local s3; s3=$(rcli 7103 cluster info | tr -d '\r' | sed -n 's/^cluster_slots_assigned://p')
    n=$(rcli 7100 cluster nodes | grep "^$(id_of 7103)" | awk '{ c = 0; for (i = 9; i <= NF; i++) { split($i, r, "-"); c += (r[2] == "" ? 1 : r[2] - r[1] + 1) } print c }')
    if [ "${n:-0}" -ge 4000 ] && [ "${n:-0}" -le 4200 ]; then ok "$SNAME: rebalance gave the new master its share ($n slots)"
    else not_ok "$SNAME: rebalance gave the new master its share" "it owns ${n:-0} slots (want about 4096)"; fi
    step "reshard 1500 slots to 7100 (redis-cli option spellings)" 7100 -- reshard 127.0.0.1:7100 --cluster-from "$(id_of 7103)" \
        --cluster-to "$(id_of 7100)" --cluster-slots 1500 --cluster-yes || return
    step "reshard 1500 slots back (--from all, id prefix, ip:port)" 7100 -- reshard 127.0.0.1:7101 --from all \
        --to "$(id_of 7103 | cut -c1-12)" --slots 1500 --yes || return
    step "rebalance --weight ID=0 empties a master" 7100 -- rebalance 127.0.0.1:7100 --weight "$(id_of 7103)=0" --yes || return
    local id3; id3=$(id_of 7103)
    step "del-node of the emptied master" 7100 -- del-node 127.0.0.1:7100 "$id3" --yes || return
    if rcli 7100 cluster nodes | grep -q "$id3" || [ "$(rcli 7103 cluster nodes | grep -c .)" -ne 1 ]; then
        not_ok "$SNAME: del-node: no node lists it and it was reset" "$(rcli 7100 cluster nodes | grep -c "$id3") node line(s) left; it knows $(rcli 7103 cluster nodes | grep -c .) node(s)"
    else ok "$SNAME: del-node: no node lists it and it was CLUSTER RESET"; fi

    # the joining replica holds cluster-replica-no-failover yes while it forms, then gets its own value back
    # (MONITOR does not show CONFIG: sample the value while the node joins)
    ( while :; do rcli 7104 config get cluster-replica-no-failover | tail -1; sleep 0.02; done ) > "$L/mon7104-$SNAME.log" & local mon=$!
    step "add-node --replica (fewest replicas)" 7100 -- add-node 127.0.0.1:7104 127.0.0.1:7100 --cluster-slave --yes || { kill $mon; return; }
    kill $mon 2>/dev/null; wait $mon 2>/dev/null
    if rcli 7104 info replication | grep -q 'master_link_status:up'; then ok "$SNAME: add-node --replica: link up when it returns"
    else not_ok "$SNAME: add-node --replica: link up when it returns" "$(rcli 7104 info replication | grep -m1 link)"; fi
    local held back
    held=$(grep -n '^yes' "$L/mon7104-$SNAME.log" | head -1 | cut -d: -f1)
    back=$(grep -n '^no' "$L/mon7104-$SNAME.log" | tail -1 | cut -d: -f1)
    if [ -n "$held" ] && [ -n "$back" ] && [ "$held" -lt "$back" ] && grep -q '^no' <(rcli 7104 config get cluster-replica-no-failover | tail -1); then
        ok "$SNAME: add-node --replica: cluster-replica-no-failover yes while it joined, its own value (no) back after"
    else not_ok "$SNAME: add-node --replica: cluster-replica-no-failover held while joining, restored after" \
        "set yes at line '${held}', back to no at line '${back}', now $(rcli 7104 config get cluster-replica-no-failover | tail -1)" "$L/mon7104-$SNAME.log"; fi
    core_refusals
    step "del-node of a replica" 7100 -- del-node 127.0.0.1:7100 127.0.0.1:7104 --yes || return
    step "add-node --replica --master-id" 7100 -- add-node 127.0.0.1:7105 127.0.0.1:7100 --replica --master-id "$(id_of 7101)" --yes || return
    local id5; id5=$(id_of 7105)
    kill_node 7105
    wait_for 20 bash -c "redis-cli -p 7100 cluster nodes | grep '$id5' | grep -q fail" || true
    step "del-node of a killed node" 7100 -- del-node 127.0.0.1:7100 "$id5" --yes || return
    local left=0
    for p in $ports; do left=$((left + $(rcli "$p" cluster nodes | grep -c "$id5"))); done
    [ $left -eq 0 ] && ok "$SNAME: del-node of a killed node: no node lists it" || not_ok "$SNAME: del-node of a killed node: no node lists it" "$left line(s) left"

    core_kill9
    stop_writer
    local w; w=$($CLIENT writer-check 7100 "$WRITER_STATE" 2>&1) && ok "$SNAME: the concurrent writer lost no acknowledged write ($(grep -o '"errors": [0-9]*' "$WRITER_STATE") retried)" ||
        not_ok "$SNAME: the concurrent writer lost no acknowledged write" "$w"
    WRITER_STATE=
    kill_all_nodes
}

# kill -9 in the middle of a reshard, then fix. One slot in the middle of the move gets
# 20000 extra keys and small MIGRATE batches, so the kill lands while that slot has keys on
# both sides (the case fix must finish, not roll back).
core_kill9() {
    local tag=k9$SNAME src=7101 dst=7102
    local slots; slots=$(rcli $src cluster nodes | grep myself | cut -d' ' -f9- | tr ' ' '\n' | grep -v '\[')
    local info; info=$(PYTHONDONTWRITEBYTECODE=1 $PY - "$src" $slots <<'PYEOF'
import sys, redis, redis.cluster as c
port, owned = int(sys.argv[1]), []
for r in sys.argv[2:]:
    lo, _, hi = r.partition("-")
    owned += range(int(lo), int(hi or lo) + 1)
want = owned[min(1000, len(owned) // 2)]
tag = next("k9-%d" % i for i in range(10**6) if c.key_slot(b"{k9-%d}" % i) == want)
before = redis.Redis(port=port).execute_command("CLUSTER COUNTKEYSINSLOT", want)
p = redis.Redis(port=port).pipeline(transaction=False)
for i in range(20000): p.set("{%s}:%d" % (tag, i), i)
p.execute()
print(want, before)
PYEOF
)
    local slot=${info%% *} before=${info##* }
    "$RCLUSTER" reshard 127.0.0.1:7100 --from "$(id_of $src)" --to "$(id_of $dst)" --slots 4000 --yes --window 16 --pipeline 20 --migration keys \
        </dev/null >"$L/$tag.out" 2>"$L/$tag.err" &
    local pid=$! i
    for i in $(seq 1 1000); do
        rcli $src cluster nodes | grep myself | grep -q -- "\[$slot->-" && break
        sleep 0.01
    done
    sleep 0.1
    kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
    local open=0 on_src on_dst p
    for p in 7100 7101 7102; do open=$((open + $(rcli "$p" cluster nodes | grep myself | grep -o '\[[0-9]*-[<>]-' | wc -l))); done
    on_src=$(rcli $src cluster countkeysinslot "$slot"); on_dst=$(rcli $dst cluster countkeysinslot "$slot")
    if [ $open -eq 0 ]; then skip "$SNAME: fix after kill -9 mid-reshard" "the kill left no open slot"; return; fi
    step "fix after kill -9 mid-reshard ($open open slot(s); slot $slot: $on_src keys left on the source, $on_dst on the target)" 7100 -- fix 127.0.0.1:7100 --yes || return
    local owner n
    owner=$(rcli 7100 cluster nodes | awk -v s="$slot" '{ for (i = 9; i <= NF; i++) { split($i, r, "-"); if (r[2] == "") r[2] = r[1]; if (s >= r[1] && s <= r[2]) print $2 } }' | head -1 | sed 's/.*:\([0-9]*\)@.*/\1/')
    n=$(rcli "$owner" cluster countkeysinslot "$slot")
    [ "$n" = $((before + 20000)) ] && ok "$SNAME: after fix, all $((before + 20000)) keys of the interrupted slot are on its owner" ||
        not_ok "$SNAME: after fix, all keys of the interrupted slot are on its owner" "$n keys on the owner 127.0.0.1:$owner, want $((before + 20000))"
}

core_refusals() {
    local ports="7100 7101 7102 7104"
    refuse "unknown id" "no such node" "$ports" -- reshard 127.0.0.1:7100 --from all --to 0123456789abcdef --slots 10 --yes
    refuse "--to a replica" "is a replica" "$ports" -- reshard 127.0.0.1:7100 --from all --to "$(id_of 7104)" --slots 10 --yes
    refuse "more slots than the sources hold" "hold only" "$ports" -- reshard 127.0.0.1:7100 --from "$(id_of 7101)" --to "$(id_of 7100)" --slots 9000 --yes
    refuse "unreachable seed" "connecting to 127.0.0.1:7199" "$ports" -- reshard 127.0.0.1:7199 --from all --to "$(id_of 7100)" --slots 10 --yes
    refuse "del-node of a master with slots" "still owns" "$ports" -- del-node 127.0.0.1:7100 "$(id_of 7101)" --yes
    # an open slot left by someone else: reshard refuses, fix is the way
    local slot=$(rcli 7101 cluster nodes | grep myself | awk '{ split($9, r, "-"); print r[1] }')
    rcli 7100 cluster setslot "$slot" importing "$(id_of 7101)" >/dev/null
    refuse "open slot before a reshard" "open" "$ports" -- reshard 127.0.0.1:7100 --from all --to "$(id_of 7100)" --slots 10 --yes
    step "fix rolls back an open slot with no keys moved" 7100 -- fix 127.0.0.1:7100 --yes
    # a slot nobody owns any more (DELSLOTS everywhere) while its keys stay on the old owner
    slot=$(rcli 7102 cluster nodes | grep myself | awk '{ split($9, r, "-"); print r[1] + 7 }')
    local keys_in; keys_in=$(rcli 7102 cluster countkeysinslot "$slot")
    for p in 7100 7101 7102 7104; do rcli $p cluster delslots "$slot" >/dev/null; done
    step "fix assigns an uncovered slot to the master holding its $keys_in key(s)" 7100 -- fix 127.0.0.1:7100 --yes
    # A key the target holds in a slot it does not own (an orphan): MIGRATE would fail
    # with BUSYKEY halfway, so reshard refuses up front; --replace overwrites it.
    local src=7101 dst=7100
    slot=$(rcli $src cluster nodes | grep myself | awk '{ split($9, r, "-"); print r[1] }')
    local k; k=$($PY -c 'import sys, redis.cluster as c; s = int(sys.argv[1]); print(next("busy:%d" % i for i in range(10**6) if c.key_slot(b"busy:%d" % i) == s))' "$slot")
    rcli $src set "$k" source-value >/dev/null
    rcli $dst cluster setslot "$slot" importing "$(id_of $src)" >/dev/null
    printf 'ASKING\nSET %s orphan\n' "$k" | redis-cli -p $dst >/dev/null
    rcli $dst cluster setslot "$slot" stable >/dev/null
    if [ "$(rcli $dst cluster countkeysinslot "$slot")" = 0 ]; then   # Redis >= 8.4 trims keys of slots it does not own
        skip "$SNAME: refused: BUSYKEY without --replace" "127.0.0.1:$dst keeps no key in a slot it does not own (it trims them)"
        rcli $src del "$k" >/dev/null
        return
    fi
    refuse "BUSYKEY without --replace" "--replace" "$ports" -- reshard 127.0.0.1:7100 --from "$(id_of $src)" --to "$(id_of $dst)" --slots 1 --yes
    refuse "BUSYKEY without --replace, on a dry run too" "--replace" "$ports" -- reshard 127.0.0.1:7100 --from "$(id_of $src)" --to "$(id_of $dst)" --slots 1 --dry-run
    local tag=rep$SNAME
    run_rc "$L/$tag" 120 -- reshard 127.0.0.1:7100 --from "$(id_of $src)" --to "$(id_of $dst)" --slots 1 --yes --replace
    local v; v=$(rcli $dst get "$k")
    if [ $RC -eq 0 ] && [ "$v" = source-value ]; then ok "$SNAME: reshard --replace overwrites the target's stale key"
    else not_ok "$SNAME: reshard --replace overwrites the target's stale key" "exit $RC, value '$v'" "$L/$tag.err"; fi
    rcli $dst del "$k" >/dev/null
    step "rebalance after the --replace moves" 7100 -- rebalance 127.0.0.1:7100 --yes
}

# ---- once: CLI, password, JSON, info/call/set-timeout, Ctrl-C, dry-run ---------------------

once() {
    local why=""
    local c
    for c in info call add-node del-node reshard rebalance fix set-timeout; do
        run_rc "$L/help-$c" -- "$c" --help
        [ $RC -eq 0 ] && [ -s "$L/help-$c.out" ] || why+="'$c --help' exit $RC; "
    done
    run_rc "$L/noargs" -- reshard 127.0.0.1:7110 --to x --slots 1
    [ $RC -eq 2 ] || why+="reshard without --from exit $RC (want 2); "
    run_rc "$L/badslots" -- reshard 127.0.0.1:7110 --from all --to x --slots 0
    [ $RC -eq 2 ] || why+="--slots 0 exit $RC (want 2); "
    run_rc "$L/badweight" -- rebalance 127.0.0.1:7110 --weight abc
    [ $RC -eq 2 ] || why+="--weight abc exit $RC (want 2); "
    [ -z "$why" ] && ok "day2 cli: --help, usage errors exit 2" || not_ok "day2 cli: --help, usage errors exit 2" "$why"

    # a password cluster: MIGRATE carries AUTH; a wrong password changes nothing
    local p
    for p in 7110 7111 7112; do NODE_AUTH[$p]="--no-auth-warning -a pw"; d2_start $p --requirepass pw --masterauth pw || return; done
    run_rc "$L/pwc" 60 -- create --replicas 0 --yes --password pw $(addrs 7110 3)
    for p in $(seq 0 999); do printf 'SET pk:%d %d\n' $p $p; done | redis-cli -c -p 7110 -a pw --no-auth-warning >/dev/null
    run_rc "$L/pwr" 60 -- reshard 127.0.0.1:7110 --password pw --from all --to "$(id_of 7110)" --slots 2000 --yes --json
    local got; got=$(for p in $(seq 0 999); do printf 'GET pk:%d\n' $p; done | redis-cli -c -p 7110 -a pw --no-auth-warning | grep -cx '[0-9][0-9]*')
    if [ $RC -eq 0 ] && $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["ok"] and d["slots_moved"] == 2000 and d["keys_moved"] > 0' "$L/pwr.out" 2>/dev/null &&
       [ "$got" = 1000 ] && redis-cli --cluster check 127.0.0.1:7110 -a pw --no-auth-warning >/dev/null 2>&1; then
        ok "reshard with --password: MIGRATE ... AUTH moves the keys; --json result"
    else not_ok "reshard with --password: MIGRATE ... AUTH moves the keys; --json result" "exit $RC, $got of 1000 keys read back" "$L/pwr.err" "$L/pwr.out"; fi
    refuse "wrong password" "WRONGPASS" "7110 7111 7112" -- reshard 127.0.0.1:7110 --password wrong --from all --to "$(id_of 7110)" --slots 10 --yes
    refuse "no password" "NOAUTH" "7110 7111 7112" -- rebalance 127.0.0.1:7110 --yes

    run_rc "$L/info" -- info 127.0.0.1:7110 --password pw
    if [ $RC -eq 0 ] && grep -q '1000 keys in 3 masters' "$L/info.out" && grep -q '\[#' "$L/info.out"; then ok "info: keys, slots and a slot map bar"
    else not_ok "info: keys, slots and a slot map bar" "exit $RC" "$L/info.out" "$L/info.err"; fi
    run_rc "$L/infoj" -- info 127.0.0.1:7110 --password pw --json
    $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["keys"] == 1000 and len(d["masters"]) == 3 and sum(m["slots"] for m in d["masters"]) == 16384' "$L/infoj.out" 2>/dev/null &&
        ok "info --json" || not_ok "info --json" "bad JSON" "$L/infoj.out" "$L/infoj.err"
    run_rc "$L/call" -- call 127.0.0.1:7110 --password pw --cluster-only-masters DBSIZE
    if [ $RC -eq 0 ] && [ "$(grep -c '(integer)' "$L/call.out")" = 3 ]; then ok "call --cluster-only-masters DBSIZE: one answer per master"
    else not_ok "call --cluster-only-masters DBSIZE: one answer per master" "exit $RC" "$L/call.out" "$L/call.err"; fi
    run_rc "$L/st" -- set-timeout 127.0.0.1:7110 --password pw 7000 --yes
    local all=1; for p in 7110 7111 7112; do rcli $p config get cluster-node-timeout | grep -qx 7000 || all=0; done
    [ $RC -eq 0 ] && [ $all = 1 ] && ok "set-timeout: cluster-node-timeout on every node" || not_ok "set-timeout: cluster-node-timeout on every node" "exit $RC" "$L/st.err"
    rcli 7111 config set cluster-node-timeout 9000 >/dev/null
    run_rc "$L/chk" -- check --password pw 127.0.0.1:7110
    contains "$L/chk.err" "cluster-node-timeout" && ok "check warns when nodes disagree on cluster-node-timeout" ||
        not_ok "check warns when nodes disagree on cluster-node-timeout" "no warning" "$L/chk.err"
    unchanged "--dry-run changes nothing" "7110 7111 7112" -- reshard 127.0.0.1:7110 --password pw --from all --to "$(id_of 7111)" --slots 100 --dry-run --yes
    grep -q 'SETSLOT .* IMPORTING' "$L"/r*.out 2>/dev/null && ok "--dry-run prints the commands" || not_ok "--dry-run prints the commands" "no SETSLOT line"

    # Ctrl-C: finishes the slots in flight, leaves none open, says how many moved
    "$RCLUSTER" reshard 127.0.0.1:7110 --password pw --from "$(id_of 7110)" --to "$(id_of 7112)" --slots 5000 --yes --window 8 \
        </dev/null >"$L/int.out" 2>"$L/int.err" &
    local pid=$!
    sleep 0.4
    kill -INT $pid; wait $pid; local rc=$?
    local open=0; for p in 7110 7111 7112; do open=$((open + $(rcli "$p" cluster nodes | grep myself | grep -o '\[' | wc -l))); done
    if [ $rc -eq 130 ] && [ $open -eq 0 ] && grep -q 'interrupted: moved' "$L/int.err"; then ok "Ctrl-C mid-reshard: exit 130, no open slot, says how many moved"
    elif [ $rc -eq 0 ]; then skip "Ctrl-C mid-reshard" "it finished before the signal"
    else not_ok "Ctrl-C mid-reshard: exit 130, no open slot, says how many moved" "exit $rc, $open open slot(s)" "$L/int.err"; fi
    memcheck
    for p in 7110 7111 7112 7113; do kill_node $p; done
}

# The day-2 paths under valgrind (dynamic glibc debug build): zero errors, zero leaks.
memcheck() {
    if ! command -v valgrind >/dev/null; then skip "day2 memcheck" "valgrind not installed"; return; fi
    if ! (cd "$TOP" && make -s rcluster-dbg) >"$L/dbg.log" 2>&1; then not_ok "day2 memcheck: build rcluster-dbg" "make failed" "$L/dbg.log"; return; fi
    local vg=$T_TMP/rcluster-vg
    printf '#!/bin/sh\nexec valgrind --leak-check=full --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 %s "$@"\n' "$TOP/rcluster-dbg" >"$vg"
    chmod +x "$vg"
    NODE_AUTH[7113]="--no-auth-warning -a pw"
    d2_start 7113 --requirepass pw --masterauth pw || return
    local why="" args
    local saved=$RCLUSTER
    RCLUSTER=$vg
    for args in "reshard 127.0.0.1:7110 --password pw --from all --to $(id_of 7111) --slots 300 --yes" \
                "rebalance 127.0.0.1:7110 --password pw --simulate" "info 127.0.0.1:7110 --password pw --json" \
                "call 127.0.0.1:7110 --password pw --replicas PING" "fix 127.0.0.1:7110 --password pw --yes" \
                "add-node 127.0.0.1:7113 127.0.0.1:7110 --password pw --replica --yes" \
                "del-node 127.0.0.1:7110 127.0.0.1:7113 --password pw --yes" \
                "reshard 127.0.0.1:7110 --password pw --from all --to 0000 --slots 1 --yes"; do
        local tag=vg$RANDOM
        run_rc "$L/$tag" 180 -- $args
        grep -q 'ERROR SUMMARY: 0 errors' "$L/$tag.err" || why+="'${args%% *}' exit $RC without a clean valgrind summary; "
    done
    RCLUSTER=$saved
    [ -z "$why" ] && ok "day2 memcheck: reshard, rebalance, info, call, fix, add-node, del-node and a refusal under valgrind: 0 errors, no leaks" ||
        not_ok "day2 memcheck: day-2 commands under valgrind" "$why" "$L/$tag.err"
}

once
core; stop_writer; kill_all_nodes
# The same scenario on the newer servers (../shared/servers): Valkey 8.0.1 moves key by
# key (replicated SETSLOT), Valkey 9.1 and the Redis 8 dev build move atomically (the
# kill -9 case, and --replace, key by key).
if [ "${DAY2_VALKEY:-1}" != 0 ]; then
    ALL=$KEYS
    for pass in "valkey $VALKEY" "valkey91 $TOP/../shared/servers/valkey-9.1.0/valkey-server" "redis8 $TOP/../shared/servers/redis-8.x-dev/redis-server"; do
        SNAME=${pass%% *} SERVER=${pass#* }
        if [ -x "$SERVER" ]; then
            KEYS=$((ALL / 4))
            core; stop_writer; kill_all_nodes
        else skip "$SNAME pass" "no server binary at $SERVER (see ../shared/servers/README.md)"; fi
    done
fi
finish
