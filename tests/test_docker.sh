#!/bin/bash
# tests/test_docker.sh — `rcluster image/up/status/down` against the real Docker daemon.
# Only touches what it creates: image rcluster-test/redis:local, clusters named rctest*
# (label io.rcluster.cluster=rctest*), the network rctest-ovl and the container rctestx-1.
# Subnets: 10.88.0.0/24 (main), 10.87.0.0/24 (dry run), 10.86.0.0/24 (preflight),
# 10.89.0.0/24 (overlap), 10.84.0.0/24 (password). Ports: 7301-7306, 7331-7336 (+10000 each),
# 7311, 7321, 7351.
. "$(dirname "$0")/lib.sh"
cd "$T_TMP" || exit 1
L=$T_TMP/log
mkdir -p "$L"
IMG=rcluster-test/redis:local
NAME=rctest
BASE=7301
DATA=$T_TMP/data

TESTS=(t_image t_dry_run t_up t_status t_up_again t_up_heals t_failover t_up_password t_down_needs_yes
       t_down t_up_resume_purge t_pre_image t_pre_subnet t_pre_overlap t_pre_foreign
       t_pre_port t_pre_daemon t_pre_publish)

if [ "${DOCKER_OK:-}" = "" ]; then
    timeout 10 docker version >/dev/null 2>&1 && DOCKER_OK=1 || DOCKER_OK=0
fi
if [ "$DOCKER_OK" != 1 ]; then
    for t in "${TESTS[@]}"; do skip "docker: $t" "no Docker daemon"; done
    exit 0
fi
if [ ! -x "$RCLUSTER" ]; then
    not_ok "docker: binary" "$RCLUSTER not built"
    finish
fi

# ---- cleanup of everything this script may have created (now and from earlier runs) ----
docker_clean() {
    docker_remove_labelled rctest
    docker rm -f rctestx-1 >/dev/null 2>&1
    docker network rm rctest-ovl >/dev/null 2>&1
    return 0
}
docker_clean
T_CLEANUPS+=(docker_clean)

# what exists with the label value NAME: "containers networks"

# cluster nodes as seen from a published port: "id addr flags master" lines
nodes_of() { redis-cli -p "$1" ${DAUTH:-} cluster nodes 2>/dev/null | awk '{sub(/@.*/, "", $2); print $1, $2, $3, $4}'; }

UP_ARGS=(--name $NAME --subnet 10.88.0.0/24 --port $BASE --image $IMG --nodes 6 --replicas 1
         --data-dir "$DATA" --yes --timeout 120)

judge_docker_cluster() { # PORT TAG: redis-cli check + keys
    local port=$1 tag=$2
    redis-cli --cluster check "127.0.0.1:$port" >"$L/$tag.check" 2>&1 || { echo "redis-cli --cluster check 127.0.0.1:$port failed"; return 1; }
    grep -q '\[OK\] All 16384 slots covered' "$L/$tag.check" || { echo "not all slots covered"; return 1; }
    grep -q '\[ERR\]' "$L/$tag.check" && { echo "redis-cli --cluster check reports [ERR]"; return 1; }
    local m r
    m=$(sed "s/\x1b\[[0-9;]*m//g" "$L/$tag.check" | grep -c "^M: "); r=$(sed "s/\x1b\[[0-9;]*m//g" "$L/$tag.check" | grep -c "^S: ")
    [ "$m $r" = "3 3" ] || { echo "masters/replicas $m/$r, want 3/3"; return 1; }
    keys_roundtrip "$port" 100 >"$L/$tag.keys" || { echo "keys: $(head -1 "$L/$tag.keys")"; return 1; }
}

# ---- tests -------------------------------------------------------------------------

t_image() {
    local name="docker: image build --tag $IMG"
    run_rc "$L/img" 300 -- image build --tag $IMG
    if [ $RC -ne 0 ]; then not_ok "$name" "exit $RC" "$L/img.err" "$L/img.out"
    elif ! docker image inspect $IMG >/dev/null 2>&1; then not_ok "$name" "image $IMG does not exist afterwards" "$L/img.err"
    else ok "$name"; fi
}

t_dry_run() {
    local name="docker: up --dry-run prints POST requests and config, hides password, creates nothing"
    run_rc "$L/dry" 60 -- up --name rctestd --subnet 10.87.0.0/24 --port 7311 --image $IMG --nodes 6 --replicas 1 \
        --data-dir "$T_TMP/dry" --password Secr3tPw0 --dry-run --yes
    local why=""
    [ $RC -eq 0 ] || why+="exit $RC; "
    cat "$L/dry.out" "$L/dry.err" >"$L/dry.all"
    contains "$L/dry.all" "POST" || why+="no 'POST' in output; "
    contains "$L/dry.all" "cluster-enabled" || why+="no redis.conf text (cluster-enabled) in output; "
    contains "$L/dry.all" "***" || why+="password not shown as '***'; "
    grep -q 'Secr3tPw0' "$L/dry.all" && why+="the real password appears in the output; "
    [ "$(owned rctestd)" = "0 0" ] || why+="containers/networks exist: $(owned rctestd); "
    [ -e "$T_TMP/dry" ] && why+="data dir was created; "
    docker network ls --format '{{.Name}}' | grep -qx rctestd && why+="network rctestd exists; "
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/dry.err" "$L/dry.out"; fi
}

t_up() {
    local name="docker: up 6 nodes/1 replica judged by redis-cli; layout, labels, ports"
    run_rc "$L/up" 240 -- up "${UP_ARGS[@]}"
    local why=""
    if [ $RC -ne 0 ]; then not_ok "$name" "exit $RC" "$L/up.err" "$L/up.out"; return; fi
    why=$(judge_docker_cluster $BASE up) || { not_ok "$name" "$why" "$L/up.err" "$L/up.check"; return; }
    why=""
    local i
    for i in 1 2 3 4 5 6; do
        [ -f "$DATA/node-$i/conf/redis.conf" ] || why+="no $DATA/node-$i/conf/redis.conf; "
        [ -d "$DATA/node-$i/data" ] || why+="no $DATA/node-$i/data; "
        local lab ip pp
        lab=$(docker inspect -f "{{index .Config.Labels \"$LABEL\"}}" $NAME-$i 2>/dev/null)
        [ "$lab" = "$NAME" ] || why+="$NAME-$i label '$lab'; "
        ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' $NAME-$i 2>/dev/null)
        [ "$ip" = "10.88.0.$((10 + i))" ] || why+="$NAME-$i ip '$ip' (want 10.88.0.$((10 + i))); "
        pp=$(docker port $NAME-$i 2>/dev/null | tr '\n' ' ')
        case "$pp" in *"127.0.0.1:$((BASE + i - 1))"*) ;; *) why+="$NAME-$i port $((BASE + i - 1)) not published on 127.0.0.1 ($pp); " ;; esac
        case "$pp" in *"127.0.0.1:$((BASE + i - 1 + 10000))"*) ;; *) why+="$NAME-$i bus port $((BASE + i - 1 + 10000)) not published on 127.0.0.1; " ;; esac
        case "$pp" in *0.0.0.0*|*"[::]"*) why+="$NAME-$i publishes on a wildcard address ($pp); " ;; esac
    done
    local sub
    sub=$(docker network inspect -f '{{range .IPAM.Config}}{{.Subnet}}{{end}}' $NAME 2>/dev/null)
    [ "$sub" = "10.88.0.0/24" ] || why+="network $NAME subnet '$sub'; "
    [ "$(owned $NAME)" = "6 1" ] || why+="labelled containers/networks: $(owned $NAME) (want 6 1); "
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/up.err"; fi
}

t_status() {
    local name="docker: status healthy exit 0, --json healthy:true"
    local why=""
    run_rc "$L/st" 60 -- status --name $NAME
    [ $RC -eq 0 ] || why+="exit $RC; "
    run_rc "$L/stj" 60 -- status --name $NAME --json
    [ $RC -eq 0 ] || why+="--json exit $RC; "
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d.get("healthy") is True else 1)' "$L/stj.out" 2>/dev/null ||
        why+="--json has no \"healthy\":true; "
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/st.err" "$L/st.out" "$L/stj.out"; fi
}

t_up_again() {
    local name="docker: second up is a no-op (exit 0, same containers)"
    local before after
    before=$(ids_of $NAME)
    run_rc "$L/up2" 240 -- up "${UP_ARGS[@]}"
    after=$(ids_of $NAME)
    local why=""
    [ $RC -eq 0 ] || why+="exit $RC; "
    [ "$before" = "$after" ] || why+="container IDs changed; "
    [ -n "$before" ] || why+="no containers before; "
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/up2.err"; fi
}

t_up_heals() {
    local name="docker: docker rm -f $NAME-2, up again -> healthy, others untouched"
    local id2 before after
    id2=$(docker inspect -f '{{.Id}}' $NAME-2 2>/dev/null)
    before=$(ids_of $NAME | tr ' ' '\n' | grep -v "^$id2$" | tr '\n' ' ')
    docker rm -f $NAME-2 >/dev/null 2>&1
    run_rc "$L/up3" 240 -- up "${UP_ARGS[@]}"
    local why=""
    [ $RC -eq 0 ] || why+="exit $RC; "
    after=$(ids_of $NAME)
    local id; for id in $before; do case " $after " in *" $id "*) ;; *) why+="container ${id:0:12} was recreated or removed; " ;; esac; done
    docker inspect $NAME-2 >/dev/null 2>&1 || why+="$NAME-2 not recreated; "
    if [ -z "$why" ]; then
        wait_for 30 redis-cli --cluster check 127.0.0.1:$BASE
        why=$(judge_docker_cluster $BASE heal) || true
        run_rc "$L/st2" 60 -- status --name $NAME
        [ $RC -eq 0 ] || why+="status exit $RC; "
    fi
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/up3.err" "$L/heal.check"; fi
}

t_failover() {
    local name="docker: docker stop a master -> its replica takes over within 15 s, acknowledged keys kept"
    # keys acknowledged by one replica (WAIT 1)
    local i bad=0
    for ((i = 0; i < 60; i++)); do
        local out
        out=$(printf 'SET fo:%d v%d\nWAIT 1 2000\n' $i $i | redis-cli -c -p $BASE 2>&1 | tail -1)
        [ "$out" = 1 ] || bad=$((bad + 1))
    done
    [ $bad -eq 0 ] || { not_ok "$name" "$bad writes not acknowledged by a replica (WAIT 1)"; return; }
    nodes_of $BASE >"$L/fo.nodes"
    # pick a master; find its replica and the container at its address
    local mid maddr rid raddr
    read -r mid maddr _ < <(grep ' master' "$L/fo.nodes" | grep -v fail | head -1)
    read -r rid raddr _ < <(awk -v m="$mid" '$4 == m' "$L/fo.nodes" | head -1)
    [ -n "$mid" ] && [ -n "$rid" ] || { not_ok "$name" "could not find a master and its replica" "$L/fo.nodes"; return; }
    local mip=${maddr%:*} cont=""
    for i in 1 2 3 4 5 6; do
        [ "$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' $NAME-$i 2>/dev/null)" = "$mip" ] && cont=$NAME-$i
    done
    if [ -z "$cont" ]; then # announced 127.0.0.1:published port
        for i in 1 2 3 4 5 6; do [ "${maddr##*:}" = $((BASE + i - 1)) ] && cont=$NAME-$i; done
    fi
    [ -n "$cont" ] || { not_ok "$name" "no container for master $maddr" "$L/fo.nodes"; return; }
    local t0=$(date +%s)
    docker stop -t 1 "$cont" >/dev/null 2>&1
    # right after the stop, before any failover: status must say unhealthy
    run_rc "$L/st-down" 30 -- status --name $NAME
    local st_rc=$RC
    local promoted=0
    while [ $(( $(date +%s) - t0 )) -lt 15 ]; do
        [ "$(redis-cli -h "${raddr%:*}" -p "${raddr##*:}" role 2>/dev/null | head -1)" = master ] && { promoted=1; break; }
        sleep 0.5
    done
    local took=$(( $(date +%s) - t0 ))
    [ $promoted = 1 ] || { not_ok "$name" "replica $raddr of stopped $cont ($maddr) not master after ${took}s"; return; }
    # read back through a node that is still up
    local live=""
    for i in 1 2 3 4 5 6; do [ "$NAME-$i" != "$cont" ] && { live=$((BASE + i - 1)); break; }; done
    wait_for 10 bash -c "redis-cli -p $live cluster info | grep -q cluster_state:ok"
    bad=0
    for ((i = 0; i < 60; i++)); do
        [ "$(redis-cli -c -p $live get fo:$i 2>/dev/null)" = "v$i" ] || bad=$((bad + 1))
    done
    if [ $bad -ne 0 ]; then not_ok "$name" "$bad of 60 acknowledged keys lost or unreadable after failover"
    elif [ $st_rc -ne 3 ]; then not_ok "$name" "status right after stopping master $cont exit $st_rc (want 3)" "$L/st-down.err" "$L/st-down.out"
    else ok "$name (promoted after ~${took}s; status said 3 while it was down)"; fi
}

t_up_password() {
    local name="docker: up --password --json: JSON on stdout, redis-cli needs the password, password not printed"
    local pw='Pw-rc-9f3k'
    run_rc "$L/uppw" 240 -- up --name rctestpw --subnet 10.84.0.0/24 --port 7331 --image $IMG --nodes 6 --replicas 1 \
        --data-dir "$T_TMP/pwdata" --password "$pw" --json --yes --timeout 120
    local why=""
    [ $RC -eq 0 ] || why+="exit $RC; "
    python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$L/uppw.out" 2>/dev/null || why+="stdout is not JSON; "
    grep -q "$pw" "$L/uppw.out" "$L/uppw.err" && why+="password printed; "
    if [ $RC -eq 0 ]; then
        redis-cli -p 7331 set nopw x 2>&1 | grep -q NOAUTH || why+="a write without password was not refused with NOAUTH; "
        redis-cli --no-auth-warning -a "$pw" --cluster check 127.0.0.1:7331 >"$L/uppw.check" 2>&1 || why+="redis-cli --cluster check -a failed; "
        keys_roundtrip 7331 50 --no-auth-warning -a "$pw" >"$L/uppw.keys" || why+="keys: $(head -1 "$L/uppw.keys"); "
        local repl
        repl=$(for p in 7331 7332 7333 7334 7335 7336; do redis-cli --no-auth-warning -a "$pw" -p $p info replication; done | tr -d '\r' | grep -c '^master_link_status:up')
        [ "$repl" = 3 ] || why+="$repl replicas linked (want 3: masterauth missing?); "
        # The password lives only in the 0600 redis.conf inside 0700 dirs: never in the
        # containers' command, environment or labels.
        docker inspect rctestpw-1 rctestpw-2 2>/dev/null | grep -q "$pw" && why+="password visible in docker inspect; "
        local m
        m=$(stat -c %a "$T_TMP/pwdata/node-1/conf/redis.conf" 2>/dev/null); [ "$m" = 600 ] || why+="redis.conf mode $m (want 600); "
        m=$(stat -c %a "$T_TMP/pwdata/node-1/conf" 2>/dev/null); [ "$m" = 700 ] || why+="conf dir mode $m (want 700); "
        # Status with the password from the environment, kept out of argv.
        RCLUSTER_PASSWORD="$pw" run_rc "$L/pwstatus" 60 -- status --name rctestpw
        [ $RC -eq 0 ] || why+="status with RCLUSTER_PASSWORD exit $RC; "
        grep -q "$pw" "$L/pwstatus.out" "$L/pwstatus.err" && why+="password printed by status; "
        run_rc "$L/pwbad" 60 -- status --name rctestpw --password wrong-Pw-x
        grep -q "wrong-Pw-x" "$L/pwbad.out" "$L/pwbad.err" && why+="wrong password echoed in an error; "
    fi
    run_rc "$L/pwdown" 120 -- down --name rctestpw --purge --yes
    [ $RC -eq 0 ] || why+="down --purge exit $RC; "
    [ "$(owned rctestpw)" = "0 0" ] || why+="left behind: $(owned rctestpw); "
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/uppw.err" "$L/uppw.check"; fi
}

t_down_needs_yes() {
    # Plain `down` keeps the data (the next `up` restores the cluster), like
    # `docker compose down`; only --purge destroys data, so only it must be confirmed.
    local name="docker: down --purge without --yes and without a TTY refused, nothing removed"
    local before; before=$(ids_of $NAME)
    run_rc "$L/dny" 60 -- down --name $NAME --purge
    local why=""
    [ $RC -eq 1 ] || why+="exit $RC (want 1); "
    contains "$L/dny.err" "--yes" || why+="message lacks '--yes'; "
    [ "$before" = "$(ids_of $NAME)" ] || why+="containers changed; "
    [ -f "$DATA/node-1/conf/redis.conf" ] || why+="data removed; "
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/dny.err"; fi
}

t_down() {
    local name="docker: down --yes removes containers and network, keeps data"
    run_rc "$L/down" 120 -- down --name $NAME --yes
    local why=""
    [ $RC -eq 0 ] || why+="exit $RC; "
    [ "$(owned $NAME)" = "0 0" ] || why+="left behind (containers networks): $(owned $NAME); "
    [ -f "$DATA/node-1/conf/redis.conf" ] || why+="data dir not kept; "
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/down.err"; fi
}

t_up_resume_purge() {
    local name="docker: up on kept data resumes healthy; down --purge --yes removes data"
    run_rc "$L/up4" 240 -- up "${UP_ARGS[@]}"
    local why=""
    [ $RC -eq 0 ] || why+="up on kept data exit $RC; "
    if [ -z "$why" ]; then
        run_rc "$L/st4" 60 -- status --name $NAME
        [ $RC -eq 0 ] || why+="status after resume exit $RC; "
    fi
    run_rc "$L/purge" 120 -- down --name $NAME --purge --yes
    [ $RC -eq 0 ] || why+="down --purge exit $RC; "
    [ "$(owned $NAME)" = "0 0" ] || why+="left behind: $(owned $NAME); "
    ls -d "$DATA"/node-* >/dev/null 2>&1 && why+="data not purged ($(ls "$DATA" | tr '\n' ' ')); "
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/up4.err" "$L/purge.err"; fi
}

# pre NAME CLUSTER "SUB1|SUB2" (any of) [ENV=VAL...] -- up ARGS: a refused up leaves nothing.
pre() {
    local name=$1 cl=$2 subs=$3; shift 3
    local envs=()
    while [ "$1" != "--" ]; do envs+=("$1"); shift; done
    shift
    local dd=$T_TMP/pre-$cl-$RANDOM tag=pre$RANDOM
    local nets_before; nets_before=$(docker network ls -q | sort | tr '\n' ' ')
    local t0=$(date +%s%N)
    env "${envs[@]}" timeout -k 5 120 "$RCLUSTER" up --name "$cl" --data-dir "$dd" --yes "$@" \
        </dev/null >"$L/$tag.out" 2>"$L/$tag.err"
    RC=$?
    local why=""
    [ $RC -eq 1 ] || [ $RC -eq 2 ] || why+="exit $RC (want 1 or 2); "
    if [ -n "$subs" ]; then
        local IFS='|' s hit=0
        for s in $subs; do contains "$L/$tag.err" "$s" && hit=1; done
        unset IFS
        [ $hit = 1 ] || why+="stderr mentions none of '$subs'; "
    fi
    [ -s "$L/$tag.err" ] || why+="no message on stderr; "
    [ "$(owned "$cl")" = "0 0" ] || why+="left behind: $(owned "$cl"); "
    [ "$nets_before" = "$(docker network ls -q | sort | tr '\n' ' ')" ] || why+="the set of networks changed; "
    [ -e "$dd" ] && why+="data dir $dd was created; "
    crashed "$L/$tag.err" && why+="crashed; "
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/$tag.err" "$L/$tag.out"; fi
}
PRE=(--subnet 10.86.0.0/24 --port 7321 --image $IMG --nodes 6 --replicas 1)

t_pre_image() {
    pre "docker: preflight: missing image" rctestp "image build|image load" -- \
        --subnet 10.86.0.0/24 --port 7321 --image does-not-exist:1 --nodes 6 --replicas 1
}
t_pre_subnet() {
    pre "docker: preflight: subnet 10.1.2.0/33" rctestp "" -- --subnet 10.1.2.0/33 --port 7321 --image $IMG
    pre "docker: preflight: subnet foo" rctestp "" -- --subnet foo --port 7321 --image $IMG
}
t_pre_overlap() {
    if ! docker network create --subnet 10.89.0.0/24 rctest-ovl >/dev/null 2>"$L/ovl.err"; then
        not_ok "docker: preflight: overlapping subnet" "could not create network rctest-ovl" "$L/ovl.err"; return
    fi
    pre "docker: preflight: overlapping subnet" rctestp "overlap" -- \
        --subnet 10.89.0.0/25 --port 7321 --image $IMG --nodes 6 --replicas 1
    docker network rm rctest-ovl >/dev/null 2>&1
}
t_pre_foreign() {
    local fid
    fid=$(docker create --name rctestx-1 --entrypoint /nonexistent $IMG 2>"$L/fx.err")
    [ -n "$fid" ] || { not_ok "docker: preflight: foreign container with the name" "docker create failed" "$L/fx.err"; return; }
    pre "docker: preflight: foreign container with the name" rctestx "not ours|foreign" -- \
        --subnet 10.86.0.0/24 --port 7321 --image $IMG --nodes 6 --replicas 1
    if [ "$(docker inspect -f '{{.Id}}' rctestx-1 2>/dev/null)" != "$fid" ]; then
        not_ok "docker: preflight: foreign container survives" "rctestx-1 was removed or replaced"
    else ok "docker: preflight: foreign container survives"; fi
    docker rm -f rctestx-1 >/dev/null 2>&1
}
t_pre_port() {
    python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 7351)); s.listen(5)
print("listening", flush=True)
time.sleep(120)' >"$L/listener.out" 2>&1 &
    local lp=$!; T_PIDS+=($lp)
    wait_for 5 grep -q listening "$L/listener.out"
    pre "docker: preflight: port in use" rctestp "in use" -- \
        --subnet 10.86.0.0/24 --port 7351 --image $IMG --nodes 6 --replicas 1
    stop_pid $lp
}
t_pre_daemon() {
    pre "docker: preflight: unreachable daemon (DOCKER_HOST=unix:///tmp/nonexistent.sock)" rctestp \
        "/tmp/nonexistent.sock" DOCKER_HOST=unix:///tmp/nonexistent.sock -- "${PRE[@]}"
    pre "docker: preflight: DOCKER_HOST=ssh://x not supported" rctestp "not supported" DOCKER_HOST=ssh://x -- "${PRE[@]}"
}
t_pre_publish() {
    pre "docker: preflight: --publish-ip 0.0.0.0 without password" rctestp "--password|--insecure" -- \
        "${PRE[@]}" --publish-ip 0.0.0.0
}
# A full data filesystem: a clear error naming the file, and nothing left behind.
t_fault_fullfs() {
    local name="docker: fault: data dir on a full filesystem -> clear error, nothing left"
    local mnt=$T_TMP/tinyfs
    mkdir -p "$mnt"
    if ! mount -t tmpfs -o size=4k tmpfs "$mnt" 2>/dev/null; then skip "$name" "cannot mount a tmpfs here"; return; fi
    T_CLEANUPS+=("umount $mnt")
    dd if=/dev/zero of="$mnt/fill" bs=1k count=4 2>/dev/null
    run_rc "$L/full" 60 -- up --name rctestfull --subnet 10.83.0.0/24 --port 7381 --image $IMG --data-dir "$mnt/d" --yes
    local why=""
    [ $RC -eq 1 ] || why+="exit $RC (want 1); "
    contains "$L/full.err" "No space left" || why+="message lacks 'No space left'; "
    [ -e "$mnt/d" ] && why+="left $mnt/d behind; "
    [ "$(owned rctestfull)" = "0 0" ] || why+="left containers/networks: $(owned rctestfull); "
    umount "$mnt" 2>/dev/null
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/full.err"; fi
}
TESTS+=(t_fault_fullfs)

# image load: a `docker save` archive (made here with the docker CLI, as a user would on a
# connected machine) loads with progress; a file that is not an archive is refused cleanly.
t_image_load() {
    local name="docker: image load of a docker save archive; garbage refused"
    local why=""
    docker tag $IMG rctest-load/redis:1 >/dev/null 2>&1 &&
        docker save rctest-load/redis:1 -o "$T_TMP/img.tar" && docker rmi rctest-load/redis:1 >/dev/null 2>&1 ||
        { not_ok "$name" "could not prepare the archive with docker save"; return; }
    T_CLEANUPS+=("docker rmi rctest-load/redis:1")
    run_rc "$L/load" 120 -- image load "$T_TMP/img.tar"
    [ $RC -eq 0 ] || why+="load exit $RC; "
    docker image inspect rctest-load/redis:1 >/dev/null 2>&1 || why+="image not present after load; "
    head -c 4096 /dev/urandom >"$T_TMP/garbage.tar"
    run_rc "$L/loadbad" 60 -- image load "$T_TMP/garbage.tar"
    [ $RC -eq 1 ] || why+="garbage load exit $RC (want 1); "
    crashed "$L/loadbad.err" && why+="crashed on garbage; "
    contains "$L/loadbad.err" "images/load" || why+="garbage error does not name the request; "
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/load.err" "$L/loadbad.err"; fi
}
TESTS+=(t_image_load)

# --announce IP: nodes announce that address with their published ports (published on it),
# so a client that reaches only that address can follow redirections. The address used is
# the gateway of the test's own private network (this host's side of the bridge). Loopback
# is refused: inside a container it is the container itself.
t_announce() {
    local name="docker: up --announce IP: nodes announce IP:published ports, redirections work through it"
    local gw=10.82.0.1
    run_rc "$L/annlo" 30 -- up --name rctestann --subnet 10.82.0.0/24 --port 7361 --image $IMG \
        --data-dir "$T_TMP/anndata" --announce 127.0.0.1 --yes
    local why=""
    [ $RC -eq 1 ] || why+="--announce 127.0.0.1 exit $RC (want 1); "
    contains "$L/annlo.err" "container itself" || why+="loopback refusal unclear; "
    run_rc "$L/ann" 240 -- up --name rctestann --subnet 10.82.0.0/24 --port 7361 --image $IMG \
        --data-dir "$T_TMP/anndata" --announce $gw --insecure --yes --timeout 120
    [ $RC -eq 0 ] || why+="exit $RC; "
    if [ $RC -eq 0 ]; then
        local addrs
        addrs=$(redis-cli -h $gw -p 7361 cluster nodes 2>/dev/null | awk '{print $2}' | cut -d@ -f1 | sort | tr '\n' ' ')
        [ "$addrs" = "$gw:7361 $gw:7362 $gw:7363 $gw:7364 $gw:7365 $gw:7366 " ] || why+="announced addresses: $addrs; "
        keys_roundtrip 7361 30 -h $gw >"$L/ann.keys" || why+="keys: $(head -1 "$L/ann.keys"); "
    fi
    run_rc "$L/anndown" 120 -- down --name rctestann --purge --yes
    [ "$(owned rctestann)" = "0 0" ] || why+="left behind: $(owned rctestann); "
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/ann.err" "$L/annlo.err"; fi
}
TESTS+=(t_announce)

# DOCKER_HOST=tcp:// through a local forwarder to the real socket; then a daemon that goes
# away in the middle of a run (the forwarder drops every connection after the first few):
# rcluster names the request that failed, and the next `up` repairs the cluster.
start_proxy() { # PORT [--drop-after N]
    python3 "$TOP/tests/tcp_proxy.py" "$@" /var/run/docker.sock >/dev/null 2>&1 &
    T_PIDS+=($!)
    wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}
t_tcp_daemon_loss() {
    local name="docker: DOCKER_HOST=tcp:// works; daemon lost mid-down -> request named, next up repairs"
    [ -S /var/run/docker.sock ] || { skip "$name" "no /var/run/docker.sock"; return; }
    local why="" args=(--name rctesttcp --subnet 10.81.0.0/24 --port 7391 --image $IMG --data-dir "$T_TMP/tcpdata" --yes --timeout 120)
    start_proxy 23760 || { not_ok "$name" "tcp forwarder did not start"; return; }
    DOCKER_HOST=tcp://127.0.0.1:23760 run_rc "$L/tcpup" 240 -- up "${args[@]}"
    [ $RC -eq 0 ] || why+="up over tcp exit $RC; "
    DOCKER_HOST=tcp://127.0.0.1:23760 run_rc "$L/tcpst" 60 -- status --name rctesttcp
    [ $RC -eq 0 ] || why+="status over tcp exit $RC; "
    start_proxy 23761 --drop-after 3 || { not_ok "$name" "tcp forwarder did not start"; return; }
    DOCKER_HOST=tcp://127.0.0.1:23761 run_rc "$L/tcpdown" 120 -- down --name rctesttcp --yes
    [ $RC -eq 1 ] || why+="down through a dying daemon exit $RC (want 1); "
    crashed "$L/tcpdown.err" && why+="crashed; "
    grep -q "POST /v1\.[0-9]*/containers/\|DELETE /v1\.[0-9]*/\|GET /" "$L/tcpdown.err" || why+="error does not name the request; "
    run_rc "$L/tcpup2" 240 -- up "${args[@]}"
    [ $RC -eq 0 ] || why+="next up exit $RC; "
    run_rc "$L/tcpdown2" 120 -- down --name rctesttcp --purge --yes
    [ "$(owned rctesttcp)" = "0 0" ] || why+="left behind: $(owned rctesttcp); "
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/tcpup.err" "$L/tcpdown.err" "$L/tcpup2.err"; fi
}
TESTS+=(t_tcp_daemon_loss)

for t in "${TESTS[@]}"; do "$t"; done
finish
