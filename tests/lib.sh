# tests/lib.sh — helpers shared by the integration test scripts (sourced, never run).
#
# Every test prints exactly one line: "ok - NAME", "not ok - NAME: WHY" (followed by
# indented log tails) or "skip - NAME: WHY". test.sh counts those lines.
# Local redis-server nodes live on 127.0.0.1 ports 7000-7099 (bus ports 17000-17099).

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RCLUSTER=${RCLUSTER:-$TOP/rcluster}
T_FAILED=0
T_TMP=$(mktemp -d /tmp/rcluster-test.XXXXXX)
T_PIDS=()          # helper processes this script started and has not reaped (see stop_pid)
declare -A NODE_PID NODE_AUTH   # port -> redis-server pid / redis-cli auth args
T_CLEANUPS=()      # extra cleanup commands (strings, eval'd in reverse order)

t_cleanup() {
    local i
    for ((i = ${#T_CLEANUPS[@]} - 1; i >= 0; i--)); do eval "${T_CLEANUPS[$i]}" >/dev/null 2>&1; done
    local p
    for p in "${NODE_PID[@]}" "${T_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    for p in "${NODE_PID[@]}" "${T_PIDS[@]}"; do wait "$p" 2>/dev/null; done
    if [ "${KEEP_TMP:-0}" = 1 ]; then echo "# kept $T_TMP" >&2; else rm -rf "$T_TMP"; fi
}
trap t_cleanup EXIT
trap 'exit 130' INT TERM

# TEST_PREFIX names a second pass of the same script (e.g. against rcluster-asan).
T_PFX=${TEST_PREFIX:+$TEST_PREFIX: }
ok()   { echo "ok - $T_PFX$1"; }
skip() { echo "skip - $T_PFX$1: $2"; }
# not_ok NAME WHY [FILE...]: one line, then the last lines of each FILE, indented.
not_ok() {
    local name=$1 why=$2; shift 2
    T_FAILED=$((T_FAILED + 1))
    echo "not ok - $T_PFX$name: $why"
    local f
    for f in "$@"; do
        [ -s "$f" ] || continue
        echo "    --- tail of $(basename "$f")"
        tail -n 15 "$f" | sed "s/\x1b\[[0-9;]*m//g" | awk "{print \"    | \" \$0}"
    done
}

# ---- process helpers ---------------------------------------------------------------

# run_rc OUTPREFIX [timeout_s] -- ARGS...: runs rcluster with stdin from /dev/null,
# stdout to OUTPREFIX.out, stderr to OUTPREFIX.err; sets RC (exit code) and RC_MS.
run_rc() {
    local pfx=$1 limit=60; shift
    if [ "$1" != "--" ]; then limit=$1; shift; fi
    shift
    local t0=$(date +%s%N)
    timeout -k 5 "$limit" "$RCLUSTER" "$@" </dev/null >"$pfx.out" 2>"$pfx.err"
    RC=$?
    RC_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
    # Under the sanitizer build any report is a failure, whatever the test expected.
    if grep -q "Sanitizer\|runtime error:" "$pfx.err" 2>/dev/null; then
        not_ok "sanitizer report from: rcluster $*" "exit $RC" "$pfx.err"
    fi
}

# contains FILE SUBSTRING...: case-insensitive; true when FILE contains every substring.
contains() {
    local f=$1; shift
    local s
    for s in "$@"; do grep -qiF -- "$s" "$f" || return 1; done
    return 0
}

# crashed: true when the last exit code looks like a signal death or a sanitizer report.
crashed() { # ERRFILE
    [ "$RC" -ge 124 ] && [ "$RC" -ne 130 ] && return 0
    grep -q "Sanitizer\|runtime error:" "$1" 2>/dev/null && return 0
    return 1
}

# stop_pid PID: kill -9 and reap a helper started with `... & T_PIDS+=($!)`.
stop_pid() {
    kill -9 "$1" 2>/dev/null; wait "$1" 2>/dev/null
    local keep=() p
    for p in "${T_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    T_PIDS=("${keep[@]}")
}

# ---- redis-server nodes --------------------------------------------------------------

# start_node PORT [redis-server args...]: a cluster-enabled node (unless the args say
# --cluster-enabled no) in $T_TMP/node-PORT; waits until it answers.
start_node() {
    local port=$1; shift
    local dir=$T_TMP/node-$port
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "start_node $port: something already listens on 127.0.0.1:$port" >&2
        return 1
    fi
    rm -rf "$dir"; mkdir -p "$dir"
    redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
        --cluster-config-file "$dir/nodes.conf" --cluster-node-timeout 5000 \
        --dir "$dir" --appendonly no --save '' --daemonize no \
        --logfile "$dir/redis.log" "$@" >/dev/null 2>&1 &
    NODE_PID[$port]=$!
    local i
    for i in $(seq 1 100); do
        if redis-cli -p "$port" ${NODE_AUTH[$port]:-} ping 2>/dev/null | grep -q 'PONG\|NOAUTH\|WRONGPASS'; then return 0; fi
        kill -0 "${NODE_PID[$port]}" 2>/dev/null || break
        sleep 0.05
    done
    echo "start_node $port: redis-server did not come up" >&2
    tail -n 5 "$dir/redis.log" >&2
    return 1
}

# start_nodes FIRST COUNT [args...]
start_nodes() {
    local first=$1 n=$2; shift 2
    local p
    for ((p = first; p < first + n; p++)); do start_node "$p" "$@" || return 1; done
}

kill_node() { # PORT
    local pid=${NODE_PID[$1]:-}
    [ -n "$pid" ] || return 0
    kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    unset "NODE_PID[$1]"
}

kill_all_nodes() {
    local p
    for p in "${!NODE_PID[@]}"; do kill_node "$p"; done
    NODE_AUTH=()
}

addrs() { # FIRST COUNT -> "127.0.0.1:FIRST 127.0.0.1:FIRST+1 ..."
    local p out=""
    for ((p = $1; p < $1 + $2; p++)); do out+="127.0.0.1:$p "; done
    echo "$out"
}

# rcli PORT ARGS...: redis-cli with the auth registered for that port.
rcli() { local p=$1; shift; redis-cli -p "$p" ${NODE_AUTH[$p]:-} "$@" 2>/dev/null; }

# snapshot FIRST COUNT: one line per node "PORT known=N slots=M keys=K" — used to prove
# a refused create changed nothing.
snapshot() {
    local p
    for ((p = $1; p < $1 + $2; p++)); do
        if ! rcli "$p" ping >/dev/null 2>&1 || [ -z "${NODE_PID[$p]:-}" ]; then echo "$p down"; continue; fi
        local known slots keys epoch
        known=$(rcli "$p" cluster nodes | grep -c .)
        slots=$(rcli "$p" cluster info | tr -d '\r' | sed -n 's/^cluster_slots_assigned://p')
        epoch=$(rcli "$p" cluster info | tr -d '\r' | sed -n 's/^cluster_current_epoch://p')
        keys=$(rcli "$p" dbsize)
        echo "$p known=$known slots=$slots epoch=$epoch keys=$keys"
    done
}

# cluster_ok_all FIRST COUNT: every node says cluster_state:ok and every replica's link is up.
# Prints the first problem on stdout when not.
cluster_ok_all() {
    local p
    for ((p = $1; p < $1 + $2; p++)); do
        local info repl
        info=$(rcli "$p" cluster info | tr -d '\r')
        echo "$info" | grep -q '^cluster_state:ok' || { echo "127.0.0.1:$p cluster_state is not ok"; return 1; }
        repl=$(rcli "$p" info replication | tr -d '\r')
        if echo "$repl" | grep -q '^role:slave'; then
            echo "$repl" | grep -q '^master_link_status:up' || { echo "replica 127.0.0.1:$p: master_link_status is not up"; return 1; }
        fi
    done
    return 0
}

# roles FIRST COUNT -> "M R" counts of masters and replicas as the nodes say themselves
roles() {
    local p m=0 r=0
    for ((p = $1; p < $1 + $2; p++)); do
        case $(rcli "$p" role | head -1) in master) m=$((m + 1)) ;; slave) r=$((r + 1)) ;; esac
    done
    echo "$m $r"
}

# keys_roundtrip PORT N [redis-cli auth args...]: writes N keys with `redis-cli -c` and
# reads them back (redis-cli follows MOVED per command, also when fed from stdin).
keys_roundtrip() {
    local port=$1 n=$2; shift 2
    local i
    for ((i = 0; i < n; i++)); do printf 'SET key:%d val:%d\n' "$i" "$i"; done |
        redis-cli -c -p "$port" "$@" 2>&1 | grep -v '^-> Redirected' >"$T_TMP/kr.set"
    local nok; nok=$(grep -cx OK "$T_TMP/kr.set")
    [ "$nok" -eq "$n" ] || { echo "only $nok of $n SETs answered OK: $(grep -vx OK "$T_TMP/kr.set" | head -1)"; return 1; }
    for ((i = 0; i < n; i++)); do printf 'GET key:%d\n' "$i"; done |
        redis-cli -c -p "$port" "$@" 2>&1 | grep -v '^-> Redirected' >"$T_TMP/kr.get"
    for ((i = 0; i < n; i++)); do echo "val:$i"; done >"$T_TMP/kr.want"
    cmp -s "$T_TMP/kr.get" "$T_TMP/kr.want" || { echo "GETs differ: $(diff "$T_TMP/kr.want" "$T_TMP/kr.get" | sed -n 2p)"; return 1; }
}

# wait_for SECONDS CMD...: polls CMD every 0.1 s until it succeeds.
wait_for() {
    local limit=$1; shift
    local end=$(( $(date +%s%N) / 1000000 + limit * 1000 ))
    while :; do
        "$@" >/dev/null 2>&1 && return 0
        [ $(( $(date +%s%N) / 1000000 )) -ge $end ] && return 1
        sleep 0.1
    done
}

# ---- verdicts shared by the test scripts --------------------------------------------

# verdict NAME WHY [FILE...]: "ok - NAME" when WHY is empty, else not_ok NAME WHY FILE...
verdict() {
    local name=$1 why=$2; shift 2
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$@"; fi
}

# refusal_why PFX CODES BEFORE AFTER [SUBSTRING...]: what is wrong with a refused run
# (run_rc PFX), on stdout, "" when nothing: the exit status is one of CODES ("1 2", or
# "nonzero"), it did not crash, PFX.err holds every SUBSTRING (case-insensitive), and
# the state the caller took before and after (BEFORE, AFTER) is the same.
refusal_why() {
    local pfx=$1 codes=$2 before=$3 after=$4; shift 4
    local why="" s
    case " $codes " in
        *" $RC "*) ;;
        " nonzero ") [ "$RC" -ne 0 ] || why+="exit 0; " ;;
        *) why+="exit $RC (want ${codes// / or }); " ;;
    esac
    crashed "$pfx.err" && why+="crashed (exit $RC); "
    for s in "$@"; do contains "$pfx.err" "$s" || why+="stderr lacks '$s'; "; done
    [ "$before" = "$after" ] ||
        why+="state changed: $(diff <(echo "$before") <(echo "$after") | grep '^[<>]' | head -2 | tr '\n' ' '); "
    echo "$why"
}

# cli_check TAG ADDR LEVEL [CLI [ARGS...]]: `CLI --cluster check ADDR ARGS...` (CLI:
# redis-cli) into $L/TAG.check without colours. Prints the first problem and fails
# when the check fails, not every slot is covered, or (LEVEL "err") it reports [ERR],
# (LEVEL "warn") [ERR] or [WARNING]; LEVEL "" asks neither.
cli_check() {
    local tag=$1 addr=$2 level=$3 cli=${4:-redis-cli}
    shift 3; [ $# -gt 0 ] && shift
    "$cli" --cluster check "$addr" "$@" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >"$L/$tag.check"
    [ "${PIPESTATUS[0]}" = 0 ] || { echo "$(basename "$cli") --cluster check failed"; return 1; }
    local bad='$^'
    case $level in err) bad='\[ERR\]' ;; warn) bad='\[ERR\]\|\[WARNING\]' ;; esac
    if grep -q "$bad" "$L/$tag.check"; then echo "$(basename "$cli") --cluster check: $(grep -m1 "$bad" "$L/$tag.check")"; return 1; fi
    grep -q 'All 16384 slots covered' "$L/$tag.check" || { echo "not all slots covered"; return 1; }
}

# check_roles TAG MASTERS REPLICAS: $L/TAG.check (cli_check) lists that many masters
# (M:) and replicas (S:); prints the difference and fails otherwise.
check_roles() {
    local m r
    m=$(grep -c '^M: ' "$L/$1.check"); r=$(grep -c '^S: ' "$L/$1.check")
    [ "$m $r" = "$2 $3" ] || { echo "masters/replicas $m/$r, want $2/$3"; return 1; }
}

# id_of PORT: the node's CLUSTER MYID (asked with $CLI, default redis-cli). A node busy
# loading a full sync (a master that gave away its last slot became a replica) answers
# LOADING: ask again until it says its id, for at most 10 s.
id_of() {
    local id i
    for i in $(seq 50); do
        id=$("${CLI:-redis-cli}" -p "$1" ${NODE_AUTH[$1]:-} cluster myid 2>/dev/null)
        [[ "$id" =~ ^[0-9a-f]{40}$ ]] && break
        sleep 0.2
    done
    echo "$id"
}

# ---- Docker objects a test made (the label rcluster puts on everything it makes) ----
LABEL=io.rcluster.cluster

# owned NAME: "CONTAINERS NETWORKS", how many of each carry cluster NAME's label.
# DOCKER_CLI names the client (a command or a function; default docker).
owned() {
    local d=${DOCKER_CLI:-docker}
    echo "$("$d" ps -aq --filter "label=$LABEL=$1" | grep -c .) $("$d" network ls -q --filter "label=$LABEL=$1" | grep -c .)"
}

# ids_of NAME: the ids of cluster NAME's containers, sorted, on one line.
ids_of() { "${DOCKER_CLI:-docker}" ps -aq --no-trunc --filter "label=$LABEL=$1" | sort | tr '\n' ' '; }

# docker_remove_cluster NAME...: remove the containers, then the networks, labelled as
# cluster NAME (exactly that name).
docker_remove_cluster() {
    local n ids
    for n in "$@"; do
        ids=$(docker ps -aq --filter "label=$LABEL=$n"); [ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1
        ids=$(docker network ls -q --filter "label=$LABEL=$n"); [ -n "$ids" ] && docker network rm $ids >/dev/null 2>&1
    done
    return 0
}

# docker_remove_labelled PREFIX: remove the containers, then the networks, of every
# cluster whose name starts with PREFIX (a test's own clusters only).
docker_remove_labelled() {
    local what ids
    for what in "ps -a" "network ls"; do
        ids=$(docker $what --filter "label=$LABEL" --format '{{.ID}} {{.Label "io.rcluster.cluster"}}' 2>/dev/null |
              awk -v p="$1" 'index($2, p) == 1 {print $1}')
        [ -z "$ids" ] && continue
        if [ "$what" = "ps -a" ]; then docker rm -f $ids >/dev/null 2>&1; else docker network rm $ids >/dev/null 2>&1; fi
    done
    return 0
}

finish() {
    [ "$T_FAILED" -eq 0 ]
    exit $?
}
