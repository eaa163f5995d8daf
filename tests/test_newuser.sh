#!/bin/bash
# tests/test_newuser.sh — rcluster as a new user finds it (issue 21): redis-cli command
# lines as they are, any address that reaches a node names it, del-node then add-node of
# the same node, advice that costs no data, output that stays readable, README's captured
# blocks against a real run. Local redis-server nodes on 127.0.0.1 ports 9500-9599 (bus
# +10000); tests/fake_docker.py for hosts without a registry; on the real daemon (skipped
# without one) the image rcnu/redis:1 and clusters rcnu-pw / rcnu-doc on 10.97.0.0/24 with
# ports 9530+ / 9570+, removed at the end.
. "$(dirname "$0")/lib.sh"
cd "$T_TMP" || exit 1
L=$T_TMP/log
mkdir -p "$L"

if [ ! -x "$RCLUSTER" ]; then not_ok "newuser: binary" "$RCLUSTER not built"; finish; fi

# nu_cluster FIRST COUNT: COUNT fresh nodes on FIRST.. formed as masters (replicas 0).
# Each node listens on 127.0.0.1 (announced) and 127.0.0.2 (an address it is reached by
# without announcing it).
nu_cluster() {
    start_nodes "$1" "$2" --bind 127.0.0.1 127.0.0.2 || return 1
    run_rc "$L/nu-create-$1" 60 -- create --replicas 0 --yes $(addrs "$1" "$2")
    [ "$RC" = 0 ] || { cat "$L/nu-create-$1.err" >&2; return 1; }
    wait_for 10 cluster_ok_all "$1" "$2"
}

# ---- 1. any address that reaches a node names it -----------------------------------
t_address_names_node() {
    local n="an address that reaches a node names it (--from/--to/--weight)"
    # 127.0.0.2:PORT reaches the node but is not what it announces (127.0.0.1:PORT).
    run_rc "$L/a1" 60 -- reshard 127.0.0.2:9500 --from 127.0.0.2:9500 --to 127.0.0.2:9501 --slots 10 --yes
    [ "$RC" = 0 ] || { not_ok "$n" "reshard by unannounced addresses: exit $RC" "$L/a1.err"; return; }
    run_rc "$L/a2" 60 -- reshard 127.0.0.1:9500 --from localhost:9501 --to 127.0.0.1:9500 --slots 10 --yes
    [ "$RC" = 0 ] || { not_ok "$n" "reshard --from localhost:PORT: exit $RC" "$L/a2.err"; return; }
    run_rc "$L/a3" 60 -- rebalance 127.0.0.1:9500 --weight 127.0.0.2:9502=1 --dry-run
    [ "$RC" = 0 ] || { not_ok "$n" "rebalance --weight ADDR=1: exit $RC" "$L/a3.err"; return; }
    # an address where nothing of this cluster answers is still refused, saying so
    run_rc "$L/a4" 30 -- reshard 127.0.0.1:9500 --from 127.0.0.1:9599 --to 127.0.0.1:9501 --slots 1 --yes
    { [ "$RC" = 2 ] && contains "$L/a4.err" "127.0.0.1:9599"; } || { not_ok "$n" "an address nothing answers at: exit $RC" "$L/a4.err"; return; }
    ok "$n"
}

# ---- 2. redis-cli command lines as they are -----------------------------------------
t_create_default_masters() {
    local n="create A B C without a replicas option makes 3 masters (redis-cli's default)"
    start_nodes 9510 3 || { not_ok "$n" "could not start nodes"; return; }
    run_rc "$L/c0" 60 -- create --yes $(addrs 9510 3)
    local why=""
    [ "$RC" = 0 ] || why+="exit $RC; "
    [ "$(roles 9510 3)" = "3 0" ] || why+="roles $(roles 9510 3), want 3 0; "
    local p; for p in 9510 9511 9512; do kill_node $p; done
    if [ -z "$why" ]; then ok "$n"; else not_ok "$n" "$why" "$L/c0.err"; fi
}

t_host_port_form() {
    local n="redis-cli's HOST PORT form is an ADDR (check, info, reshard, call)"
    run_rc "$L/hp1" 30 -- check 127.0.0.1 9500
    [ "$RC" = 0 ] || { not_ok "$n" "check 127.0.0.1 9500: exit $RC" "$L/hp1.err"; return; }
    run_rc "$L/hp2" 30 -- info 127.0.0.1 9501
    [ "$RC" = 0 ] || { not_ok "$n" "info 127.0.0.1 9501: exit $RC" "$L/hp2.err"; return; }
    run_rc "$L/hp3" 60 -- reshard 127.0.0.1 9500 --from 127.0.0.1:9501 --to 127.0.0.1:9500 --slots 5 --yes
    [ "$RC" = 0 ] || { not_ok "$n" "reshard 127.0.0.1 9500: exit $RC" "$L/hp3.err"; return; }
    run_rc "$L/hp4" 30 -- call 127.0.0.1 9500 --masters PING
    { [ "$RC" = 0 ] && [ "$(grep -c 'PONG' "$L/hp4.out")" = 3 ]; } || { not_ok "$n" "call 127.0.0.1 9500 --masters PING: exit $RC" "$L/hp4.out" "$L/hp4.err"; return; }
    ok "$n"
}

t_call_help() {
    local n="the help says everything after call's command belongs to it"
    run_rc "$L/help" 10 -- --help
    if contains "$L/help.out" "after \`call\`'s command"; then ok "$n"; else not_ok "$n" "--help does not say so" "$L/help.out"; fi
}

# ---- 2+3. add-node, del-node, rebalance without --yes; del-node then add-node ---------
t_join_leave_rejoin() {
    local n="add-node, rebalance, del-node need no --yes; del-node then add-node of the same node joins at once"
    start_node 9503 || { not_ok "$n" "could not start 9503"; return; }
    run_rc "$L/j1" 40 -- add-node 127.0.0.1 9503 127.0.0.1 9500 --timeout 20
    [ "$RC" = 0 ] || { not_ok "$n" "add-node without --yes (HOST PORT twice): exit $RC" "$L/j1.err"; return; }
    run_rc "$L/j2" 60 -- rebalance 127.0.0.1:9500 --use-empty-masters
    [ "$RC" = 0 ] || { not_ok "$n" "rebalance --use-empty-masters without --yes: exit $RC" "$L/j2.err"; return; }
    run_rc "$L/j3" 60 -- rebalance 127.0.0.1:9500 --weight 127.0.0.1:9503=0
    [ "$RC" = 0 ] || { not_ok "$n" "rebalance --weight ADDR=0 without --yes: exit $RC" "$L/j3.err"; return; }
    local old; old=$(id_of 9503)
    run_rc "$L/j4" 40 -- del-node 127.0.0.1:9500 127.0.0.1:9503
    [ "$RC" = 0 ] || { not_ok "$n" "del-node without --yes: exit $RC" "$L/j4.err"; return; }
    run_rc "$L/j5" 30 -- add-node 127.0.0.1:9503 127.0.0.1:9500 --timeout 15
    [ "$RC" = 0 ] || { not_ok "$n" "add-node right after del-node: exit $RC after $RC_MS ms" "$L/j5.err"; return; }
    [ "$(id_of 9503)" != "$old" ] || { not_ok "$n" "the removed node kept its id $old" "$L/j5.err"; return; }
    run_rc "$L/j6" 30 -- check 127.0.0.1:9501
    [ "$RC" = 0 ] || { not_ok "$n" "check after the rejoin: exit $RC" "$L/j6.out"; return; }
    ok "$n"
}

# ---- 3. check sees a node only part of the cluster knows -----------------------------
t_check_partial_member() {
    local n="check reports a node only part of the cluster knows"
    # 9503 is an empty master of the cluster (t_join_leave_rejoin); 9502 forgets it.
    rcli 9502 cluster forget "$(id_of 9503)" >/dev/null
    run_rc "$L/pm" 30 -- check 127.0.0.1:9500
    local why=""
    [ "$RC" = 3 ] || why+="exit $RC, want 3; "
    contains "$L/pm.out" "known to only" || why+="no 'known to only' finding; "
    if [ -z "$why" ]; then ok "$n"; else not_ok "$n" "$why" "$L/pm.out"; fi
    # put it back: forget it everywhere, then it joins again
    run_rc "$L/pm2" 40 -- del-node 127.0.0.1:9500 127.0.0.1:9503
}

# ---- 3. add-node of a node redis-cli's del-node left (FORGET + RESET SOFT: same id) ----
t_add_after_cli_del() {
    local n="add-node of a node redis-cli's del-node just removed (its id banned for 60 s) joins at once"
    local id p; id=$(id_of 9503)
    for p in 9500 9501 9502; do rcli $p cluster forget "$id" >/dev/null; done
    rcli 9503 cluster reset soft >/dev/null
    run_rc "$L/cd" 30 -- add-node 127.0.0.1:9503 127.0.0.1:9500 --timeout 15
    [ "$RC" = 0 ] || { not_ok "$n" "exit $RC after $RC_MS ms" "$L/cd.err"; return; }
    contains "$L/cd.err" "RESET HARD" || { not_ok "$n" "add-node did not say it gave the node a new id" "$L/cd.err"; return; }
    ok "$n"
}

# ---- 6. info names the server ---------------------------------------------------------
t_info_server() {
    local n="info and info --json name the server (Redis and its version)"
    local v; v=$(rcli 9500 info server | tr -d '\r' | sed -n 's/^redis_version://p')
    run_rc "$L/inf" 30 -- info 127.0.0.1:9500
    contains "$L/inf.out" "Server: Redis $v" || { not_ok "$n" "no 'Server: Redis $v' line" "$L/inf.out"; return; }
    run_rc "$L/infj" 30 -- info 127.0.0.1:9500 --json
    grep -q "\"server\":\"Redis $v\"" "$L/infj.out" || { not_ok "$n" "--json has no server Redis $v" "$L/infj.out"; return; }
    ok "$n"
}

# ---- 4 and 6 without a registry: tests/fake_docker.py airgap (pulls fail) --------------
FD_SOCK=$T_TMP/fd.sock
nu_fake_start() {
    rm -f "$FD_SOCK" "$FD_SOCK.log" "$L/fd.out"
    python3 "$TOP/tests/fake_docker.py" "$FD_SOCK" airgap >"$L/fd.out" 2>&1 &
    FD_PID=$!; T_PIDS+=("$FD_PID")
    local i; for i in $(seq 100); do [ -S "$FD_SOCK" ] && grep -q listening "$L/fd.out" 2>/dev/null && return 0; sleep 0.05; done
    return 1
}
nu_fake_up() { # OUT PATH [args]
    local out=$1 path=$2; shift 2
    DOCKER_HOST=unix://$FD_SOCK timeout 120 env PATH="$path" "$RCLUSTER" up --name rcnu-ag --subnet 10.97.0.0/24 \
        --port 9560 --data-dir "$T_TMP/ag-data" --yes --timeout 20 "$@" </dev/null >"$out.out" 2>"$out.err"
    RC=$?
}

t_airgap_advice() {
    local n="air-gapped up without a server binary names image load and image build --from PATH"
    nu_fake_start || { not_ok "$n" "fake_docker.py did not start" "$L/fd.out"; return; }
    nu_fake_up "$L/ag" /nonexistent
    local why=""
    [ "$RC" = 1 ] || why+="exit $RC, want 1; "
    contains "$L/ag.err" "image load" "image build --from" || why+="advice does not name image load and image build --from; "
    stop_pid "$FD_PID"
    if [ -z "$why" ]; then ok "$n"; else not_ok "$n" "$why" "$L/ag.err"; fi
}

t_dry_run_image() {
    local n="up --dry-run without a registry shows the image the run would build and use"
    nu_fake_start || { not_ok "$n" "fake_docker.py did not start" "$L/fd.out"; return; }
    mkdir -p "$T_TMP/rbin"; ln -sf "$(command -v redis-server)" "$T_TMP/rbin/redis-server"
    nu_fake_up "$L/dry" "$T_TMP/rbin" --dry-run
    local why=""
    [ "$RC" = 0 ] || why+="exit $RC; "
    grep -q 'containers/create.*"Image":"rcluster/redis:local"' "$L/dry.out" || why+="containers are not created from rcluster/redis:local; "
    grep -q '"Image":"redis:7.2-alpine"' "$L/dry.out" && why+="a request still names redis:7.2-alpine; "
    stop_pid "$FD_PID"
    if [ -z "$why" ]; then ok "$n"; else not_ok "$n" "$why" "$L/dry.out" "$L/dry.err"; fi
}

t_build_from_not_server() {
    local n="image build --from /bin/ls is refused: not a redis/valkey server"
    nu_fake_start || { not_ok "$n" "fake_docker.py did not start" "$L/fd.out"; return; }
    DOCKER_HOST=unix://$FD_SOCK run_rc "$L/ls" 30 -- image build --from /bin/ls --tag rcnu/ls:1
    local why=""
    [ "$RC" = 1 ] || why+="exit $RC, want 1; "
    contains "$L/ls.err" "not a redis-server or valkey-server" || why+="does not say it is not a server; "
    grep -q '^IMPORTED' "$FD_SOCK.log" 2>/dev/null && why+="an image was imported; "
    stop_pid "$FD_PID"
    if [ -z "$why" ]; then ok "$n"; else not_ok "$n" "$why" "$L/ls.err"; fi
}

# ---- 4 and 6 on the real daemon: cluster rcnu-pw, subnet 10.97.0.0/24, ports 9530-9532 -----
NU_IMG=rcnu/redis:1
nu_docker_ok() { timeout 10 docker version >/dev/null 2>&1; }
nu_down() { "$RCLUSTER" down --name rcnu-pw --data-dir "$T_TMP/pw-data" --purge --yes >/dev/null 2>&1; }

t_docker_status_and_rerun() {
    local n="status: without the password exits 1, --json names the server; an up re-run that resizes names scale"
    nu_docker_ok || { skip "$n" "no Docker daemon"; return; }
    run_rc "$L/img" 300 -- image build --tag $NU_IMG
    [ "$RC" = 0 ] || { not_ok "$n" "image build --tag $NU_IMG: exit $RC" "$L/img.err"; return; }
    T_CLEANUPS+=("nu_down; docker rmi -f $NU_IMG")
    echo nupw >"$T_TMP/pw"
    run_rc "$L/up" 180 -- up --name rcnu-pw --nodes 3 --replicas 0 --image $NU_IMG --subnet 10.97.0.0/24 --port 9530 \
        --data-dir "$T_TMP/pw-data" --password-file "$T_TMP/pw" --yes
    [ "$RC" = 0 ] || { not_ok "$n" "up: exit $RC" "$L/up.err"; return; }
    local why="" v
    v=$(redis-cli -p 9530 --no-auth-warning -a nupw info server | tr -d '\r' | sed -n 's/^redis_version://p')
    run_rc "$L/st-nopw" 60 -- status --name rcnu-pw
    [ "$RC" = 1 ] || why+="status without the password: exit $RC, want 1; "
    RCLUSTER_PASSWORD=nupw run_rc "$L/st-json" 60 -- status --name rcnu-pw --json
    [ "$RC" = 0 ] || why+="status --json with the password: exit $RC; "
    grep -q "\"server\":\"Redis $v\"" "$L/st-json.out" || why+="status --json does not name Redis $v; "
    run_rc "$L/rerun" 60 -- up --name rcnu-pw --nodes 6 --replicas 1 --image $NU_IMG --subnet 10.97.0.0/24 --port 9530 \
        --data-dir "$T_TMP/pw-data" --password-file "$T_TMP/pw" --yes
    [ "$RC" = 1 ] || why+="re-run with other --nodes/--replicas: exit $RC, want 1; "
    contains "$L/rerun.err" "rcluster scale --name rcnu-pw --masters 3 --replicas 1" || why+="the refusal does not name scale; "
    grep -q -- "--purge" "$L/rerun.err" && why+="the refusal still advises --purge; "
    nu_down
    if [ -z "$why" ]; then ok "$n"; else not_ok "$n" "$why" "$L/st-nopw.err" "$L/st-json.out" "$L/rerun.err"; fi
}

# README's up, status and image build blocks (made with the defaults: cluster redis on
# 10.38.0.0/16, ports 6371+) against rcnu-doc on 10.97.0.0/24, ports 9570+.
t_readme_docker() {
    nu_docker_ok || { skip "README: up/status/image build blocks" "no Docker daemon"; return; }
    [ -s "$L/img.err" ] || { skip "README: up/status/image build blocks" "no image was built"; return; }
    local doc=(rcnu-doc=redis 10.97.0.0/24=10.38.0.0/16 "$T_TMP/doc-data=/var/lib/rcluster/redis" "$NU_IMG=rcluster/redis:local")
    cat "$L/img.err" "$L/img.out" >"$L/rd-img.all"
    readme_drift "README: 'image build' block matches a real run" "./rcluster image build" "$L/rd-img.all" "$NU_IMG=rcluster/redis:local"
    T_CLEANUPS+=("'$RCLUSTER' down --name rcnu-doc --data-dir '$T_TMP/doc-data' --purge --yes")
    run_rc "$L/rd-up" 180 -- up --name rcnu-doc --image $NU_IMG --subnet 10.97.0.0/24 --port 9570 --data-dir "$T_TMP/doc-data" --yes
    cat "$L/rd-up.err" "$L/rd-up.out" >"$L/rd-up.all"
    readme_drift "README: 'up' block matches a real run" "./rcluster up --image rcluster/redis:local" "$L/rd-up.all" "${doc[@]}"
    run_rc "$L/rd-st" 60 -- status --name rcnu-doc
    cat "$L/rd-st.err" "$L/rd-st.out" >"$L/rd-st.all"
    readme_drift "README: 'status' block matches a real run" "./rcluster status" "$L/rd-st.all" "${doc[@]}"
    "$RCLUSTER" down --name rcnu-doc --data-dir "$T_TMP/doc-data" --purge --yes >/dev/null 2>&1
}

# ---- 5. check and fix group open slots by node and range ------------------------------
t_open_slots_grouped() {
    local n="check and fix --dry-run group 300 open slots by node and range"
    nu_cluster 9520 3 || { not_ok "$n" "could not form 9520-9522"; return; }
    local src dst k
    src=$(id_of 9520); dst=$(id_of 9521)
    for ((k = 100; k < 400; k++)); do echo "CLUSTER SETSLOT $k IMPORTING $src"; done | redis-cli -p 9521 >/dev/null
    for ((k = 100; k < 400; k++)); do echo "CLUSTER SETSLOT $k MIGRATING $dst"; done | redis-cli -p 9520 >/dev/null
    run_rc "$L/og" 30 -- check 127.0.0.1:9520
    local why="" errs
    errs=$(grep -c '^\[ERR\]' "$L/og.out")
    [ "$RC" = 3 ] || why+="check: exit $RC, want 3; "
    [ "$errs" -le 4 ] || why+="check printed $errs [ERR] lines; "
    contains "$L/og.out" "300 slots are open on 127.0.0.1:9520: migrating to 127.0.0.1:9521: 100-399" ||
        why+="no grouped migrating line; "
    contains "$L/og.out" "300 slots are open on 127.0.0.1:9521: importing from 127.0.0.1:9520: 100-399" ||
        why+="no grouped importing line; "
    run_rc "$L/fg" 60 -- fix 127.0.0.1:9520 --dry-run
    [ "$RC" = 0 ] || why+="fix --dry-run: exit $RC; "
    [ "$(grep -c 'roll back the move' "$L/fg.err")" = 1 ] || why+="fix plan: $(grep -c 'roll back the move' "$L/fg.err") roll-back lines, want 1; "
    contains "$L/fg.err" "300 slots: roll back the move 127.0.0.1:9520 -> 127.0.0.1:9521" || why+="fix plan line is not grouped; "
    run_rc "$L/fx" 60 -- fix 127.0.0.1:9520 --yes
    [ "$RC" = 0 ] || why+="fix: exit $RC; "
    local p; for p in 9520 9521 9522; do kill_node $p; done
    if [ -z "$why" ]; then ok "$n"; else not_ok "$n" "$why" "$L/og.out" "$L/fg.err"; fi
}

# ---- 7. README's captured blocks against real runs -------------------------------------
# readme_drift NAME README_CMD OUTFILE [FROM=TO...]: the README block that starts with the
# line "$ README_CMD" (up to the next "$ " line or the fence) and OUTFILE (a real run's
# stderr then stdout) must have the same line shapes: ids, addresses, paths, numbers and
# durations masked, FROM=TO applied to the run first. Every README line must be in the
# run; unless the block elides ("..."), every line of the run must be in the README.
readme_drift() {
    local name=$1 cmd=$2 out=$3; shift 3
    if /usr/bin/python3 - "$TOP/README.md" "$cmd" "$out" "$@" >"$out.drift" 2>&1 <<'PY'; then ok "$name"; else not_ok "$name" "README and a real run differ" "$out.drift"; fi
import re, sys
readme, cmd, out, subs = sys.argv[1], sys.argv[2], sys.argv[3], [a.split("=", 1) for a in sys.argv[4:]]
def shape(l):
    l = re.sub(r"\x1b\[[0-9;]*m", "", l)
    l = re.sub(r"\bUp (Less than a second|About a minute|About an hour|\d+ \w+)", "Up T", l)
    l = re.sub(r"sha256:[0-9a-f]+…?", "SHA", l)
    l = re.sub(r"\b[0-9a-f]{8,40}\b", "H", l)
    l = re.sub(r"\[?[0-9a-f:]*\d+\.\d+\.\d+\.\d+\]?(:\d+)?(@\d+)?", "A", l)
    l = re.sub(r"(?<![\w.])/[\w./-]*", "P", l)
    l = re.sub(r"\d+(\.\d+)?", "N", l)
    l = re.sub(r"\s+", " ", l).strip()
    # how fast formation may go depends on the host's cores: the line is there, its words vary
    if l.startswith(">>> While forming: "): l = ">>> While forming:"
    return l
lines = open(readme).read().split("\n")
try: start = lines.index("$ " + cmd)
except ValueError: sys.exit("README has no line '$ %s'" % cmd)
block = []
for l in lines[start + 1:]:
    if l.startswith("$ ") or l.startswith("```"): break
    block.append(l)
text = open(out).read()
for a, b in subs: text = text.replace(a, b)
ran = [l for l in text.split("\n") if l.strip()]
elided = any(l.strip() == "..." for l in block)
R = {shape(l) for l in block if l.strip() and l.strip() != "..."}
O = {shape(l) for l in ran}
missing, extra = sorted(R - O), ([] if elided else sorted(O - R))
for l in missing: print("README only: " + l)
for l in extra: print("run only:    " + l)
sys.exit(1 if missing or extra else 0)
PY
}

t_readme_create_check_fix() {
    nu_start_six 9540 || { not_ok "README: create" "could not start 9540-9545"; return; }
    local cmd; cmd=$(grep -m1 '^\$ ./rcluster create --yes 127.0.0.1:7600' "$TOP/README.md" | cut -c3-)
    [ -n "$cmd" ] || { not_ok "README: create block" "README has no create block on 7600"; return; }
    # the README's own command line, on this test's ports
    local args; args=$(echo "${cmd#./rcluster }" | sed 's/127\.0\.0\.1:760\([0-9]\)/127.0.0.1:954\1/g')
    # shellcheck disable=SC2086
    run_rc "$L/rd-create" 60 -- $args
    cat "$L/rd-create.err" "$L/rd-create.out" >"$L/rd-create.all"
    readme_drift "README: '$cmd' block matches a real run" "$cmd" "$L/rd-create.all"
    run_rc "$L/rd-check" 30 -- check 127.0.0.1:9543
    cat "$L/rd-check.err" "$L/rd-check.out" >"$L/rd-check.all"
    readme_drift "README: 'check 127.0.0.1:7603' block matches a real run" "./rcluster check 127.0.0.1:7603" "$L/rd-check.all"
    # an interrupted move of slot 100 from the first master to the second
    redis-cli -p 9541 cluster setslot 100 importing "$(id_of 9540)" >/dev/null
    redis-cli -p 9540 cluster setslot 100 migrating "$(id_of 9541)" >/dev/null
    run_rc "$L/rd-open" 30 -- check 127.0.0.1:9540
    cat "$L/rd-open.err" "$L/rd-open.out" | grep -v '^rcluster: ' >"$L/rd-open.all"
    readme_drift "README: 'check' of an open slot block matches a real run" "./rcluster check 127.0.0.1:20000" "$L/rd-open.all"
    run_rc "$L/rd-fix" 60 -- fix 127.0.0.1:9540 --yes
    cat "$L/rd-fix.err" "$L/rd-fix.out" >"$L/rd-fix.all"
    readme_drift "README: 'fix' block matches a real run" "./rcluster fix 127.0.0.1:20000 --yes" "$L/rd-fix.all"
    local p; for p in 9540 9541 9542 9543 9544 9545; do kill_node $p; done
}

nu_start_six() { start_nodes "$1" 6; }

start_all() {
    if ! nu_cluster 9500 3; then not_ok "newuser: cluster on 9500-9502" "could not form"; return 1; fi
}

t_create_default_masters
t_call_help
t_airgap_advice
t_dry_run_image
t_build_from_not_server
t_docker_status_and_rerun
t_readme_docker
start_all || finish
t_address_names_node
t_host_port_form
t_join_leave_rejoin
t_add_after_cli_del
t_check_partial_member
t_info_server
t_open_slots_grouped
t_readme_create_check_fix
finish
