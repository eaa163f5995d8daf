#!/bin/bash
# tests/test_hostnet.sh — `rcluster up --network host` against the real Docker daemon: no
# Docker network, containers with the host's network, node i on 127.0.0.1:7660+i-1 (bus
# +10000). Judged by redis-cli --cluster check and a small cluster client that follows MOVED
# to the announced addresses; then status, re-run, repair, a mode mismatch, down, --purge.
# Only touches image rcvk-test/redis:local and clusters named rcvk-hn*; ports 7660-7665 and
# 7670-7675 (bus +10000).
. "$(dirname "$0")/lib.sh"
cd "$T_TMP" || exit 1
L=$T_TMP/log
mkdir -p "$L"
IMG=rcvk-test/redis:local
NAME=rcvk-hn
BASE=7660
DATA=$T_TMP/data
TESTS=(t_hn_refusals t_hn_image t_hn_port_busy t_hn_up t_hn_status t_hn_rerun t_hn_repair t_hn_mode_mismatch
       t_hn_down_up t_hn_purge t_hn_bind_all)

if [ "${DOCKER_OK:-}" = "" ]; then timeout 10 docker version >/dev/null 2>&1 && DOCKER_OK=1 || DOCKER_OK=0; fi
if [ "$DOCKER_OK" != 1 ]; then
    for t in "${TESTS[@]}"; do skip "hostnet: $t" "no Docker daemon"; done
    exit 0
fi
if [ ! -x "$RCLUSTER" ]; then
    not_ok "hostnet: binary" "$RCLUSTER not built"
    finish
fi

docker_clean() { docker_remove_labelled rcvk-hn; }
docker_clean
T_CLEANUPS+=("docker rmi -f $IMG" docker_clean)
UP_ARGS=(--name $NAME --network host --port $BASE --image $IMG --data-dir "$DATA" --yes --timeout 120)

# cluster_client PORT N: a minimal cluster client (RESP over TCP): SET and GET N keys
# starting at 127.0.0.1:PORT, following -MOVED to whatever address the cluster names.
cluster_client() {
    python3 - "$@" <<'EOF'
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
conns = {}
def conn(addr):
    if addr not in conns:
        h, p = addr.rsplit(":", 1)
        conns[addr] = socket.create_connection((h, int(p)), timeout=5).makefile("rwb")
    return conns[addr]
def call(addr, *args):
    f = conn(addr)
    f.write(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in (x.encode() for x in args)))
    f.flush()
    line = f.readline().rstrip(b"\r\n")
    if line[:1] == b"$":
        ln = int(line[1:])
        return None if ln < 0 else f.read(ln + 2)[:-2].decode()
    return line.decode()
moved = 0
for verb in ("SET", "GET"):
    for i in range(n):
        addr = "127.0.0.1:%d" % port
        for _ in range(3):
            r = call(addr, verb, "hk:%d" % i, *(["v%d" % i] if verb == "SET" else []))
            if isinstance(r, str) and r.startswith("-MOVED"):
                addr = r.split()[2]; moved += 1
                continue
            break
        want = "+OK" if verb == "SET" else "v%d" % i
        if r != want:
            sys.exit("%s hk:%d at %s: %r" % (verb, i, addr, r))
if moved == 0:
    sys.exit("no MOVED redirection was followed")
print("ok, followed %d redirections to %s" % (moved, sorted(conns)))
EOF
}

judge() { # TAG
    cli_check "$1" "127.0.0.1:$BASE" "" && check_roles "$1" 3 3 || return 1
    cluster_client $BASE 100 >"$L/$1.client" 2>&1 || { echo "cluster client: $(tail -1 "$L/$1.client")"; return 1; }
}

# refused NAME GREP-ERE up-args...: exit 1 or 2, message matches, nothing created.
refused() {
    local name=$1 re=$2; shift 2
    run_rc "$L/ref" 60 -- up --name rcvk-hnx --image $IMG --data-dir "$T_TMP/ref" --yes "$@"
    local why; why=$(refusal_why "$L/ref" "1 2" "" "")
    grep -qE -- "$re" "$L/ref.err" || why+="error does not match /$re/: $(tail -1 "$L/ref.err"); "
    [ "$(owned rcvk-hnx)" = "0 0" ] || why+="created $(owned rcvk-hnx); "
    [ -e "$T_TMP/ref" ] && why+="created the data dir; "
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/ref.err"; fi
}

t_hn_refusals() {
    refused "hostnet: --subnet with --network host is refused, saying why" "subnet.*--network host" --network host --subnet 10.94.0.0/24
    refused "hostnet: --publish-ip with --network host is refused, saying why" "publish-ip.*--network host" --network host --publish-ip 127.0.0.1
    refused "hostnet: --bind 0.0.0.0 without a password is refused" "--password|--insecure" --network host --bind 0.0.0.0 --announce 127.0.0.1
    refused "hostnet: --bind 0.0.0.0 needs --announce" "--announce" --network host --bind 0.0.0.0 --insecure
    refused "hostnet: --bind without --network host is refused" "--bind is for --network host" --bind 127.0.0.1 --subnet 10.94.0.0/24
    refused "hostnet: --network foo is a usage error" "bridge or host" --network foo
}

t_hn_image() {
    local name="hostnet: image build --tag $IMG"
    run_rc "$L/img" 300 -- image build --tag $IMG
    if [ $RC -ne 0 ]; then not_ok "$name" "exit $RC" "$L/img.err"; else ok "$name"; fi
}

t_hn_port_busy() {
    python3 -c '
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 17672)); s.listen(5)
print("listening", flush=True)
time.sleep(120)' >"$L/listener.out" 2>&1 &
    local lp=$!; T_PIDS+=($lp)
    wait_for 5 grep -q listening "$L/listener.out"
    refused "hostnet: a busy bus port (17672) is refused before anything is created" "17672.*in use" \
        --network host --port 7670
    stop_pid $lp
}

t_hn_up() {
    local name="hostnet: up --network host: NetworkMode host, no network, ports 7660-7665; redis-cli check and a cluster client"
    run_rc "$L/up" 240 -- up "${UP_ARGS[@]}"
    if [ $RC -ne 0 ]; then not_ok "$name" "exit $RC" "$L/up.err"; return; fi
    local why=""
    why=$(judge up) || { not_ok "$name" "$why" "$L/up.err" "$L/up.check" "$L/up.client"; return; }
    why=""
    local i
    for i in 1 2 3 4 5 6; do
        local nm; nm=$(docker inspect -f '{{.HostConfig.NetworkMode}}' $NAME-$i 2>&1)
        [ "$nm" = host ] || why+="$NAME-$i NetworkMode '$nm'; "
        grep -qx "port $((BASE + i - 1))" "$DATA/node-$i/conf/redis.conf" || why+="node-$i redis.conf has no 'port $((BASE + i - 1))'; "
        grep -qx "bind 127.0.0.1" "$DATA/node-$i/conf/redis.conf" || why+="node-$i redis.conf has no 'bind 127.0.0.1'; "
    done
    redis-cli -p $BASE cluster nodes | grep -q " 127.0.0.1:$((BASE + 5))@$((BASE + 5 + 10000)) " ||
        why+="node 6 is not announced as 127.0.0.1:$((BASE + 5))@$((BASE + 10005)); "
    [ "$(owned $NAME)" = "6 0" ] || why+="labelled containers/networks $(owned $NAME) (want 6 0); "
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/up.err"; fi
}

t_hn_status() {
    local name="hostnet: status shows the host addresses and a healthy cluster"
    run_rc "$L/st" 60 -- status --name $NAME
    local why=""
    [ $RC -eq 0 ] || why+="exit $RC; "
    [ "$(grep -c "^$NAME-[0-9] .*host network, 127.0.0.1:76[0-9][0-9]" "$L/st.out")" = 6 ] || why+="not 6 rows with 'host network, 127.0.0.1:PORT'; "
    grep -qx healthy "$L/st.out" || why+="no 'healthy' line; "
    run_rc "$L/stj" 60 -- status --name $NAME --json
    python3 - "$L/stj.out" <<'EOF' >"$L/stj.py" 2>&1 || why+="status --json: $(tail -1 "$L/stj.py"); "
import json, sys
d = json.load(open(sys.argv[1]))
if d.get("healthy") is not True: sys.exit("not healthy")
got = sorted((c.get("network"), c.get("host_ip"), c.get("host_port")) for c in d["containers"])
want = [("host", "127.0.0.1", 7660 + i) for i in range(6)]
if got != want: sys.exit("containers say %r" % got[:2])
EOF
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/st.out" "$L/st.err" "$L/stj.out"; fi
}

t_hn_rerun() {
    local name="hostnet: up again on a healthy cluster changes nothing"
    local before; before=$(ids_of $NAME)
    run_rc "$L/again" 120 -- up "${UP_ARGS[@]}"
    local why=""
    [ $RC -eq 0 ] || why+="exit $RC; "
    contains "$L/again.err" "nothing to do" || why+="does not say 'nothing to do'; "
    [ "$(ids_of $NAME)" = "$before" ] || why+="containers changed; "
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/again.err"; fi
}

t_hn_repair() {
    local name="hostnet: up repairs a removed and a stopped container"
    docker rm -f $NAME-3 >/dev/null 2>&1
    docker stop -t 1 $NAME-4 >/dev/null 2>&1
    run_rc "$L/rep" 240 -- up "${UP_ARGS[@]}"
    local why=""
    [ $RC -eq 0 ] || why+="exit $RC; "
    contains "$L/rep.err" "1 container(s) missing, 1 stopped" || why+="does not say '1 container(s) missing, 1 stopped'; "
    [ $RC -eq 0 ] && { why+=$(judge rep) || true; }
    [ "$(docker inspect -f '{{.HostConfig.NetworkMode}}' $NAME-3 2>&1)" = host ] || why+="recreated $NAME-3 is not in host mode; "
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/rep.err" "$L/rep.check"; fi
}

t_hn_mode_mismatch() {
    local name="hostnet: up --network bridge on a host-mode cluster is refused and changes nothing"
    local before; before=$(ids_of $NAME)
    run_rc "$L/mm" 60 -- up --name $NAME --port $BASE --image $IMG --data-dir "$DATA" --yes --network bridge --subnet 10.94.0.0/24
    local why=""
    [ $RC -eq 1 ] || why+="exit $RC (want 1); "
    contains "$L/mm.err" "--network: host (recorded) -> bridge (given)" || why+="error does not name the recorded host networking; "
    [ "$(ids_of $NAME)" = "$before" ] || why+="containers changed; "
    [ "$(owned $NAME)" = "6 0" ] || why+="owned $(owned $NAME) (want 6 0); "
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/mm.err"; fi
}

t_hn_down_up() {
    local name="hostnet: down keeps the data; up brings the same cluster back"
    local id0; id0=$(redis-cli -p $BASE cluster myid 2>/dev/null)
    run_rc "$L/down" 120 -- down --name $NAME
    local why=""
    [ $RC -eq 0 ] || why+="down exit $RC; "
    [ "$(owned $NAME)" = "0 0" ] || why+="left $(owned $NAME); "
    run_rc "$L/back" 240 -- up "${UP_ARGS[@]}"
    [ $RC -eq 0 ] || why+="up after down exit $RC; "
    [ "$(redis-cli -p $BASE cluster myid 2>/dev/null)" = "$id0" ] || why+="node 1 has another id after up; "
    [ $RC -eq 0 ] && { why+=$(judge back) || true; }
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/down.err" "$L/back.err"; fi
}

t_hn_purge() {
    local name="hostnet: down --purge removes the containers and the data"
    run_rc "$L/purge" 120 -- down --name $NAME --purge --yes
    local why=""
    [ $RC -eq 0 ] || why+="exit $RC; "
    [ "$(owned $NAME)" = "0 0" ] || why+="left $(owned $NAME); "
    [ -e "$DATA" ] && why+="$DATA still exists; "
    redis-cli -p $BASE ping >/dev/null 2>&1 && why+="something still answers on $BASE; "
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/purge.err"; fi
}

t_hn_bind_all() {
    local name="hostnet: --bind 0.0.0.0 --announce 127.0.0.1 with a password: nodes bind all, need the password, form"
    echo hnpw >"$T_TMP/pw"
    run_rc "$L/ba" 240 -- up --name rcvk-hn2 --network host --bind 0.0.0.0 --announce 127.0.0.1 --password-file "$T_TMP/pw" \
        --port 7670 --image $IMG --data-dir "$T_TMP/hn2" --yes --timeout 120
    local why=""
    [ $RC -eq 0 ] || why+="up exit $RC; "
    grep -qx 'bind 0.0.0.0' "$T_TMP/hn2/node-1/conf/redis.conf" 2>/dev/null || why+="node-1 does not bind 0.0.0.0; "
    grep -qx 'cluster-announce-ip 127.0.0.1' "$T_TMP/hn2/node-1/conf/redis.conf" 2>/dev/null || why+="node-1 does not announce 127.0.0.1; "
    redis-cli -p 7670 ping 2>/dev/null | grep -q NOAUTH || why+="7670 answers without the password; "
    redis-cli --cluster check 127.0.0.1:7670 -a hnpw --no-auth-warning >"$L/ba.check" 2>&1 &&
        grep -q '\[OK\] All 16384 slots covered' "$L/ba.check" || why+="redis-cli --cluster check with the password failed; "
    run_rc "$L/bad" 120 -- down --name rcvk-hn2 --purge --yes
    [ "$(owned rcvk-hn2)" = "0 0" ] || why+="down left $(owned rcvk-hn2); "
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/ba.err" "$L/ba.check"; fi
}

for t in "${TESTS[@]}"; do "$t"; done
finish
