#!/bin/bash
# tests/test_valkey.sh — `rcluster create` and `check` against Valkey 8.0.1 nodes (local
# processes on 127.0.0.1:7400-7459, bus +10000), judged with valkey-cli; and the server
# detection ("Valkey 8.0.1" / "Redis 7.0.15") in the plan, check and --json.
# With a Docker daemon: `image build` from valkey-server (image rcvk-test/valkey:local) and
# `up` from it (clusters rcvk-vk*, subnets 10.90.0.0/24 and 10.91.0.0/24, ports 7600-7605
# and 7610-7615, bus +10000; image rcvk-test/vkprobe:1, cluster rcvk-vk3, 10.96.0.0/24, 7680-7685).
# The Valkey binaries come from ../shared/servers/valkey-8.0.1/ (relative to the repo);
# without them every test is skipped, saying so. VALKEY_DIR overrides the folder.
. "$(dirname "$0")/lib.sh"
cd "$T_TMP" || exit 1
L=$T_TMP/log
mkdir -p "$L"
VALKEY_DIR=${VALKEY_DIR:-$TOP/../shared/servers/valkey-8.0.1}
TESTS=(t_vk_create t_vk_check t_vk_password t_vk_refuse_nonempty t_vk_mixed_plan)
DTESTS=(t_vk_image_default t_vk_image_build t_vk_up t_vk_up_server_override t_vk_up_probe)
IMG=rcvk-test/valkey:local

if [ ! -x "$VALKEY_DIR/valkey-server" ] || [ ! -x "$VALKEY_DIR/valkey-cli" ]; then
    for t in "${TESTS[@]}" "${DTESTS[@]}"; do skip "valkey: $t" "no Valkey binaries in $VALKEY_DIR (see ../shared/servers/README.md)"; done
    exit 0
fi
if [ ! -x "$RCLUSTER" ]; then
    not_ok "valkey: binary" "$RCLUSTER not built"
    finish
fi
REDIS_SERVER=$(command -v redis-server || true)

# lib.sh starts and asks nodes with `redis-server` / `redis-cli` from PATH: put Valkey's
# there (wrappers, so that argv[0] stays valkey-server).
mkdir -p "$T_TMP/bin"
printf '#!/bin/sh\nexec "%s/valkey-server" "$@"\n' "$VALKEY_DIR" >"$T_TMP/bin/redis-server"
printf '#!/bin/sh\nexec "%s/valkey-cli" "$@"\n' "$VALKEY_DIR" >"$T_TMP/bin/redis-cli"
chmod +x "$T_TMP/bin/redis-server" "$T_TMP/bin/redis-cli"
PATH=$T_TMP/bin:$PATH

# judge NAME FIRST COUNT MASTERS REPLICAS [auth args]: every node ok, valkey-cli check, keys.
judge() {
    local name=$1 first=$2 n=$3 wm=$4 wr=$5; shift 5
    local why
    why=$(cluster_ok_all "$first" "$n") || { echo "right after create: $why"; return 1; }
    local r; r=$(roles "$first" "$n")
    [ "$r" = "$wm $wr" ] || { echo "roles masters/replicas = $r, want $wm $wr"; return 1; }
    cli_check "$name" "127.0.0.1:$first" "" "$VALKEY_DIR/valkey-cli" "$@" || return 1
    keys_roundtrip "$first" 100 "$@" >"$L/$name.keys" || { echo "keys: $(head -1 "$L/$name.keys")"; return 1; }
}

# is_valkey PORT: the node really is Valkey (the wrappers did their job).
is_valkey() { rcli "$1" info server | tr -d '\r' | grep -qx 'server_name:valkey'; }

t_vk_create() {
    local name="valkey: create 6 Valkey 8.0.1 nodes, 1 replica; plan and --json name the server"
    start_nodes 7400 6 || { not_ok "$name" "could not start Valkey nodes"; kill_all_nodes; return; }
    local why=""
    is_valkey 7400 || why+="node 7400 is not Valkey; "
    run_rc "$L/c1" 60 -- create --yes --replicas 1 --json $(addrs 7400 6)
    if [ $RC -ne 0 ]; then not_ok "$name" "exit $RC" "$L/c1.err"; kill_all_nodes; return; fi
    why+=$(judge c1 7400 6 3 3) || true
    contains "$L/c1.err" "Plan: 3 masters, 6 nodes, 1 replica(s) per master, Valkey 8.0.1" ||
        why+="plan line does not say 'Valkey 8.0.1': $(grep Plan "$L/c1.err"); "
    python3 - "$L/c1.out" <<'EOF' >"$L/c1.json" 2>&1 || why+="--json: $(tail -1 "$L/c1.json"); "
import json, sys
d = json.load(open(sys.argv[1]))
bad = [n for n in d["nodes"] if n.get("server") != "Valkey 8.0.1"]
if bad or len(d["nodes"]) != 6: sys.exit("nodes without server Valkey 8.0.1: %r" % bad[:1])
EOF
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/c1.err" "$L/c1.check"; fi
}

t_vk_check() {
    local name="valkey: check reports Valkey 8.0.1 (text and --json) and sees a dead master"
    local why=""
    run_rc "$L/k1" -- check 127.0.0.1:7401
    [ $RC -eq 0 ] || why+="check exit $RC; "
    grep -qx 'Server: Valkey 8.0.1' "$L/k1.out" || why+="no 'Server: Valkey 8.0.1' line; "
    grep -qx 'healthy' "$L/k1.out" || why+="no 'healthy' line; "
    run_rc "$L/k2" -- check --json 127.0.0.1:7401
    python3 - "$L/k2.out" <<'EOF' >"$L/k2.json" 2>&1 || why+="check --json: $(tail -1 "$L/k2.json"); "
import json, sys
d = json.load(open(sys.argv[1]))
if d.get("server") != "Valkey 8.0.1": sys.exit("top-level server is %r" % d.get("server"))
if d.get("healthy") is not True: sys.exit("not healthy")
if any(n.get("server") != "Valkey 8.0.1" for n in d["nodes"]): sys.exit("a node's server is not Valkey 8.0.1")
EOF
    kill_node 7402
    run_rc "$L/k3" -- check 127.0.0.1:7400
    [ $RC -eq 3 ] || why+="check with a dead master exit $RC (want 3); "
    grep -q '\[ERR\].*7402' "$L/k3.out" || why+="no [ERR] naming 7402; "
    kill_all_nodes
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/k1.out" "$L/k3.out"; fi
}

t_vk_password() {
    local name="valkey: create with --password-file on Valkey nodes requiring it"
    NODE_AUTH=()
    local p
    for p in 7410 7411 7412 7413 7414 7415; do NODE_AUTH[$p]="--no-auth-warning -a vkpw"; done
    start_nodes 7410 6 --requirepass vkpw --masterauth vkpw || { not_ok "$name" "could not start nodes"; kill_all_nodes; return; }
    echo vkpw >"$T_TMP/pw"
    run_rc "$L/pw" 60 -- create --yes --replicas 1 --password-file "$T_TMP/pw" $(addrs 7410 6)
    local why=""
    if [ $RC -ne 0 ]; then why="exit $RC"
    else why=$(judge pw 7410 6 3 3 --no-auth-warning -a vkpw) || true; fi
    kill_all_nodes
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/pw.err"; fi
}

t_vk_refuse_nonempty() {
    local name="valkey: a Valkey node holding a key is refused and nothing changes"
    start_nodes 7420 3 --enable-debug-command local || { not_ok "$name" "could not start nodes"; kill_all_nodes; return; }
    rcli 7421 debug populate 10 >/dev/null
    local before; before=$(snapshot 7420 3)
    run_rc "$L/ne" -- create --yes --replicas 0 $(addrs 7420 3)
    local why=""
    [ $RC -eq 1 ] || why+="exit $RC (want 1); "
    contains "$L/ne.err" "not empty" || why+="error does not say 'not empty'; "
    [ "$(snapshot 7420 3)" = "$before" ] || why+="nodes changed; "
    kill_all_nodes
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/ne.err"; fi
}

t_vk_mixed_plan() {
    local name="valkey: 3 Redis + 3 Valkey nodes: the plan names both servers with their counts"
    if [ -z "$REDIS_SERVER" ]; then skip "$name" "no redis-server on PATH"; return; fi
    start_nodes 7430 3 || { not_ok "$name" "could not start Valkey nodes"; kill_all_nodes; return; }
    local rv; rv=$("$REDIS_SERVER" --version | sed -n 's/.* v=\([0-9.]*\) .*/\1/p')
    # Redis nodes: the real redis-server, asked with valkey-cli (same protocol).
    mkdir -p "$T_TMP/rbin"; ln -sf "$REDIS_SERVER" "$T_TMP/rbin/redis-server"
    PATH=$T_TMP/rbin:$PATH start_nodes 7433 3 || { not_ok "$name" "could not start Redis nodes"; kill_all_nodes; return; }
    # No --yes and no TTY: the plan is printed, then create refuses before changing anything.
    run_rc "$L/mx" -- create --replicas 1 $(addrs 7430 6)
    local why=""
    [ $RC -ne 0 ] || why+="create without --yes and without a TTY succeeded; "
    contains "$L/mx.err" "Valkey 8.0.1 on 3 nodes, Redis $rv on 3 nodes" ||
        why+="plan does not say 'Valkey 8.0.1 on 3 nodes, Redis $rv on 3 nodes': $(grep Plan "$L/mx.err"); "
    kill_all_nodes
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/mx.err"; fi
}

# ---- Docker: image build from valkey-server, up from that image ----------------------

docker_clean() { docker_remove_labelled rcvk-vk; }

t_vk_image_default() {
    local name="valkey: image build with only valkey-server on PATH packs it and tags rcluster/valkey:local (dry run)"
    mkdir -p "$T_TMP/vonly"; ln -sf "$VALKEY_DIR/valkey-server" "$T_TMP/vonly/valkey-server"
    # rcluster looks for the servers on PATH; nothing else of PATH matters to it.
    timeout 60 env PATH="$T_TMP/vonly" "$RCLUSTER" image build --dry-run </dev/null >"$L/idef.out" 2>"$L/idef.err"; RC=$?
    local why=""
    [ $RC -eq 0 ] || why+="exit $RC; "
    contains "$L/idef.out" "repo=rcluster%2Fvalkey%3Alocal" || why+="import request has no repo=rcluster/valkey:local; "
    contains "$L/idef.out" "CMD%20%5B%22valkey-server%22%5D" || why+="import request has no CMD [\"valkey-server\"]; "
    contains "$L/idef.out" "&tag=" && why+="import request has a tag= parameter (Podman ignores it); "
    timeout 60 env PATH=/nonexistent "$RCLUSTER" image build --dry-run </dev/null >"$L/inone.out" 2>"$L/inone.err"; RC=$?
    [ $RC -eq 1 ] && contains "$L/inone.err" "valkey-server" || why+="no server on PATH: exit $RC or message without 'valkey-server'; "
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/idef.err" "$L/idef.out"; fi
}

t_vk_image_build() {
    local name="valkey: image build --from valkey-server --tag $IMG: tagged, runs valkey-server"
    docker rmi -f $IMG >/dev/null 2>&1
    run_rc "$L/ib" 300 -- image build --from "$VALKEY_DIR/valkey-server" --tag $IMG
    local why=""
    [ $RC -eq 0 ] || why+="exit $RC; "
    local got; got=$(docker image inspect -f '{{json .RepoTags}} {{json .Config.Cmd}}' $IMG 2>&1)
    [ "$got" = "[\"$IMG\"] [\"valkey-server\"]" ] || why+="image tags/Cmd: $got; "
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/ib.err"; fi
}

t_vk_up() {
    local name="valkey: up --image $IMG: Valkey 8.0.1 nodes judged by valkey-cli; status; re-run; down --purge"
    local data=$T_TMP/vkdata
    run_rc "$L/vu" 240 -- up --name rcvk-vk --image $IMG --subnet 10.90.0.0/24 --port 7600 --data-dir "$data" --yes --timeout 120
    if [ $RC -ne 0 ]; then not_ok "$name" "up exit $RC" "$L/vu.err"; return; fi
    local why=""
    contains "$L/vu.err" "Plan: 3 masters, 6 nodes, 1 replica(s) per master, Valkey 8.0.1" || why+="plan does not say Valkey 8.0.1; "
    contains "$L/vu.err" "(valkey-server)" || why+="progress does not say valkey-server; "
    local cmd; cmd=$(docker inspect -f '{{json .Config.Cmd}}' rcvk-vk-1 2>&1)
    [ "$cmd" = '["valkey-server","/etc/valkey/redis.conf"]' ] || why+="rcvk-vk-1 Cmd $cmd; "
    "$VALKEY_DIR/valkey-cli" --cluster check 127.0.0.1:7600 >"$L/vu.check" 2>&1 || why+="valkey-cli --cluster check failed; "
    grep -q '\[OK\] All 16384 slots covered' "$L/vu.check" || why+="valkey-cli: not all slots covered; "
    keys_roundtrip 7600 100 >"$L/vu.keys" || why+="keys: $(head -1 "$L/vu.keys"); "
    "$VALKEY_DIR/valkey-cli" -p 7603 info server | tr -d '\r' | grep -qx 'server_name:valkey' || why+="7603 is not Valkey; "
    run_rc "$L/vs" 60 -- status --name rcvk-vk
    [ $RC -eq 0 ] && grep -qx 'Server: Valkey 8.0.1' "$L/vs.out" || why+="status exit $RC or no 'Server: Valkey 8.0.1'; "
    local ids; ids=$(ids_of rcvk-vk)
    run_rc "$L/vr" 120 -- up --name rcvk-vk --image $IMG --subnet 10.90.0.0/24 --port 7600 --data-dir "$data" --yes --timeout 120
    [ $RC -eq 0 ] && contains "$L/vr.err" "nothing to do" || why+="re-run exit $RC or not 'nothing to do'; "
    [ "$(ids_of rcvk-vk)" = "$ids" ] || why+="re-run changed the containers; "
    run_rc "$L/vd" 120 -- down --name rcvk-vk --purge --yes
    [ $RC -eq 0 ] && [ "$(owned rcvk-vk)" = "0 0" ] && [ ! -e "$data" ] || why+="down --purge exit $RC, left $(owned rcvk-vk), data $(ls -d "$data" 2>/dev/null); "
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/vu.err" "$L/vr.err" "$L/vu.check"; fi
}

t_vk_up_server_override() {
    local name="valkey: up --server redis with the Valkey image fails (no redis-server in it) and leaves nothing"
    run_rc "$L/vo" 120 -- up --name rcvk-vk2 --server redis --image $IMG --subnet 10.91.0.0/24 --port 7610 \
        --data-dir "$T_TMP/vk2" --yes --timeout 30
    local why=""
    [ $RC -eq 1 ] || why+="exit $RC (want 1); "
    contains "$L/vo.err" "redis-server" || why+="error does not name redis-server; "
    [ "$(owned rcvk-vk2)" = "0 0" ] || why+="left containers/networks: $(owned rcvk-vk2); "
    run_rc "$L/vo2" 60 -- up --name rcvk-vk2 --server memcached --image $IMG --yes
    [ $RC -eq 2 ] || why+="--server memcached exit $RC (want 2); "
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/vo.err"; fi
}

t_vk_up_probe() {
    local name="valkey: an image whose config names no server: up finds valkey-server among its files"
    # The Valkey image re-imported with Cmd /run.sh and its Env: nothing in its config says Valkey.
    local cid envs=()
    cid=$(docker create $IMG 2>"$L/pr.err") || { not_ok "$name" "docker create failed" "$L/pr.err"; return; }
    local e
    while IFS= read -r e; do [ -n "$e" ] && envs+=(--change "ENV $e"); done < <(docker image inspect -f '{{range .Config.Env}}{{println .}}{{end}}' $IMG)
    docker export "$cid" | docker import "${envs[@]}" --change 'CMD ["/run.sh"]' - rcvk-test/vkprobe:1 >"$L/pr.imp" 2>&1
    docker rm -f "$cid" >/dev/null 2>&1
    T_CLEANUPS+=("docker rmi -f rcvk-test/vkprobe:1")
    run_rc "$L/pr" 240 -- up --name rcvk-vk3 --image rcvk-test/vkprobe:1 --subnet 10.96.0.0/24 --port 7680 \
        --data-dir "$T_TMP/vk3" --yes --timeout 120
    local why=""
    [ $RC -eq 0 ] || why+="up exit $RC; "
    local cmd; cmd=$(docker inspect -f '{{json .Config.Cmd}}' rcvk-vk3-1 2>&1)
    [ "$cmd" = '["valkey-server","/etc/valkey/redis.conf"]' ] || why+="rcvk-vk3-1 Cmd $cmd; "
    contains "$L/pr.err" "assuming redis-server" && why+="warned that it could not tell; "
    [ "$(owned rcvk-vk3)" = "6 1" ] || why+="labelled containers/networks $(owned rcvk-vk3) (want 6 1: the probe container removed); "
    "$VALKEY_DIR/valkey-cli" -p 7680 info server | tr -d '\r' | grep -qx 'server_name:valkey' || why+="7680 is not Valkey; "
    run_rc "$L/prd" 120 -- down --name rcvk-vk3 --purge --yes
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/pr.err" "$L/pr.imp"; fi
}

for t in "${TESTS[@]}"; do "$t"; done
if [ "${DOCKER_OK:-}" = "" ]; then timeout 10 docker version >/dev/null 2>&1 && DOCKER_OK=1 || DOCKER_OK=0; fi
if [ "$DOCKER_OK" != 1 ]; then
    for t in "${DTESTS[@]}"; do skip "valkey: $t" "no Docker daemon"; done
else
    docker_clean
    T_CLEANUPS+=(docker_clean "docker rmi -f $IMG")
    for t in "${DTESTS[@]}"; do "$t"; done
fi
finish
