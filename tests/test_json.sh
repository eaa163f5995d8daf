#!/bin/bash
# tests/test_json.sh — `--json` is one JSON document on stdout for every command and
# outcome (issue 18): results, dry runs (the plan: "requests" it would send, "files" it
# would write), failures ({"ok":false,"error":{"kind","message","exit"}}), and the exit
# status comes from the error's kind alone (0 ok, 1 fail, 2 usage, 3 unhealthy).
# Local redis-server nodes on 127.0.0.1 ports 7470-7476 (bus +10000). On the Docker
# daemon (skipped without one) only dry runs and refusals: nothing is created.
. "$(dirname "$0")/lib.sh"
cd "$T_TMP" || exit 1
L=$T_TMP/log
mkdir -p "$L"
B=7470
IMG=rcluster-test/redis:local

if [ ! -x "$RCLUSTER" ]; then not_ok "json: binary" "$RCLUSTER not built"; finish; fi

# jdoc NAME WANT_EXIT PYEXPR -- ARGS...: rcluster ARGS exits WANT_EXIT, its stdout is
# exactly one JSON object, and the Python expression PYEXPR holds for it (as d).
jdoc() {
    local name=$1 want=$2 expr=$3; shift 4
    local tag=j$RANDOM why=""
    run_rc "$L/$tag" 90 -- "$@"
    [ "$RC" = "$want" ] || why+="exit $RC (want $want); "
    why+=$(/usr/bin/python3 - "$L/$tag.out" "$expr" <<'EOF'
import json, sys
text = open(sys.argv[1]).read()
try:
    d = json.loads(text)
except ValueError as e:
    print("stdout is not one JSON document (%s): %r" % (e, text[:160]))
    sys.exit()
if not isinstance(d, dict):
    print("stdout is JSON but not an object")
else:
    try:
        good = eval(sys.argv[2], {"d": d})
    except Exception as e:
        good, sys.argv[2] = False, "%s (%s: %s)" % (sys.argv[2], type(e).__name__, e)
    if not good:
        print("the document fails: " + sys.argv[2])
EOF
)
    if [ -z "$why" ]; then ok "json: $name"; else not_ok "json: $name" "$why" "$L/$tag.out" "$L/$tag.err"; fi
}

# The error document of a failure of this kind and exit status.
err_is() { echo "d['ok'] is False and d['error']['kind'] == '$1' and d['error']['exit'] == $2 and d['error']['message']"; }

start_nodes $B 7 || { not_ok "json: start nodes" "redis-server did not start"; finish; }
A=127.0.0.1:$B

# ---- results and failures on local nodes ------------------------------------------------
jdoc "create" 0 "d['ok'] is True and len(d['nodes']) == 6" -- create --replicas 1 --yes --json $(addrs $B 6)
wait_for 10 cluster_ok_all $B 6
jdoc "create again: refused, error document" 1 "$(err_is fail 1)" -- create --yes --json $(addrs $B 3)
jdoc "create without addresses: usage" 2 "$(err_is usage 2)" -- create --json
jdoc "check: ok and healthy" 0 "d['ok'] is True and d['healthy'] is True" -- check --json $A
jdoc "check of nothing: unreachable" 1 "d['ok'] is False and d['error']['exit'] == 1" -- check --json 127.0.0.1:7479
jdoc "info" 0 "d['nodes'] == 6" -- info --json $A
jdoc "call" 0 "len(d['replies']) == 6" -- call --json $A ping
jdoc "call: error replies, still one document" 1 "d['ok'] is True and len(d['replies']) == 6" -- call --json $A nosuchcommand
jdoc "unknown command: usage" 2 "$(err_is usage 2)" -- nosuchcommand --json
jdoc "unknown option: usage" 2 "$(err_is usage 2)" -- check --nosuchoption $A --json
jdoc "bad option value: usage" 2 "$(err_is usage 2)" -- set-timeout $A 5 --json

# ---- day-2 dry runs: the plan, nothing sent ---------------------------------------------
NEW=$(rcli $((B + 6)) cluster myid)
M0=$(rcli $B cluster myid)
R5=$(rcli $((B + 5)) cluster myid)
jdoc "add-node --dry-run: CLUSTER MEET in the plan" 0 \
    "d['dry_run'] is True and d['requests'][0]['to'] == '127.0.0.1:$((B + 6))' and d['requests'][0]['command'][:2] == ['CLUSTER', 'MEET']" \
    -- add-node --dry-run --json 127.0.0.1:$((B + 6)) $A
jdoc "reshard --dry-run: the steps" 0 "d['dry_run'] is True and any('SETSLOT' in r['text'] for r in d['requests'])" \
    -- reshard --dry-run --yes --json $A --from all --to $M0 --slots 10
jdoc "rebalance --dry-run" 0 "d['ok'] is True" -- rebalance --dry-run --yes --json $A --weight $M0=2
jdoc "fix --dry-run" 0 "d['ok'] is True" -- fix --dry-run --yes --json $A
jdoc "del-node --dry-run: FORGET in the plan" 0 "any(r['command'][:2] == ['CLUSTER', 'FORGET'] for r in d['requests'])" \
    -- del-node --dry-run --json $A $R5
jdoc "set-timeout --dry-run: CONFIG SET on every node" 0 "sum(r['command'][:2] == ['CONFIG', 'SET'] for r in d['requests']) == 6" \
    -- set-timeout --dry-run --yes --json $A 7000
t_dry_text() {   # without --json a dry run still prints its plan as text
    run_rc "$L/dt" 30 -- add-node --dry-run 127.0.0.1:$((B + 6)) $A
    if [ "$RC" = 0 ] && contains "$L/dt.out" "would send to 127.0.0.1:$((B + 6)): CLUSTER MEET"; then ok "json: a dry run without --json prints its plan as text"
    else not_ok "json: a dry run without --json prints its plan as text" "exit $RC" "$L/dt.out" "$L/dt.err"; fi
}
t_dry_text
[ "$(rcli $((B + 6)) cluster nodes | grep -c .)" = 1 ] && ok "json: the dry runs sent nothing" ||
    not_ok "json: the dry runs sent nothing" "127.0.0.1:$((B + 6)) met the cluster"

# ---- interrupted: exit 130, the error document says so ---------------------------------
t_interrupted() {
    local name="json: Ctrl-C mid-reshard: exit 130, one error document of kind interrupted"
    "$RCLUSTER" reshard $A --from all --to $M0 --slots 8000 --yes --json </dev/null >"$L/int.out" 2>"$L/int.err" &
    local pid=$!
    sleep 0.3
    kill -INT $pid 2>/dev/null
    wait $pid
    RC=$?
    if [ $RC = 0 ]; then skip "$name" "the reshard ended before the signal"; return; fi
    local why; why=$(/usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
if not (d["ok"] is False and d["error"]["kind"] == "interrupted" and d["error"]["exit"] == 130): print("document: %r" % d)
' "$L/int.out" 2>&1)
    [ $RC = 130 ] || why+="exit $RC (want 130); "
    verdict "$name" "$why" "$L/int.out" "$L/int.err"
    wait_for 20 cluster_ok_all $B 6
}
t_interrupted

# ---- unhealthy: exit 3 from the kind, the report is the one document ---------------------
kill_node $((B + 2))
jdoc "check of a cluster with a master down: exit 3, ok false" 3 "d['ok'] is False and d['healthy'] is False and d['problems']" -- check --json $A

# ---- the Docker commands: dry runs and refusals (nothing is created) ---------------------
if ! timeout 10 docker version >/dev/null 2>&1; then
    skip "json: docker commands" "no Docker daemon answers"
    finish
fi
docker image inspect $IMG >/dev/null 2>&1 || IMG=redis:7
UP=(--name rcjson --subnet 10.94.0.0/24 --port 7480 --image $IMG --data-dir "$T_TMP/up" --yes --json)
jdoc "up --dry-run: requests and files" 0 \
    "d['dry_run'] is True and any(r['path'].endswith('/networks/create') for r in d['requests']) and any(f['path'].endswith('node-1/conf/redis.conf') for f in d['files'])" \
    -- up --dry-run "${UP[@]}"
jdoc "up --subnet bad: usage" 2 "$(err_is usage 2)" -- up "${UP[@]}" --subnet 10.94.0.0/33
jdoc "up --name bad: usage" 2 "$(err_is usage 2)" -- up "${UP[@]}" --name 'bad/name'
jdoc "status of no cluster: error document" 1 "d['ok'] is False" -- status --name rcjson --json
jdoc "down of no cluster: a document" 0 "d['ok'] is True and d['command'] == 'down'" -- down --name rcjson --yes --json
jdoc "scale --dry-run of no cluster: error document" 1 "d['ok'] is False" -- scale --name rcjson --masters 4 --dry-run --yes --json
jdoc "image build --dry-run: the request" 0 "d['dry_run'] is True and d['requests'][0]['method'] == 'POST'" -- image build --dry-run --json
jdoc "image load of no file: error document" 1 "$(err_is fail 1)" -- image load "$T_TMP/none.tar" --json
[ -z "$(docker ps -aq --filter label=io.rcluster.cluster=rcjson)" ] && ok "json: the docker dry runs created nothing" ||
    not_ok "json: the docker dry runs created nothing" "containers labelled rcjson exist"
finish
