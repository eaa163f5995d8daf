#!/bin/bash
# tests/test_data.sh — backup, restore and import (issue 20) on real servers on 127.0.0.1
# ports 9600-9699 (bus +10000). A Redis 7.0 cluster A (3 masters, 3 replicas, password) loaded with
# keys of every type (big values, expiries, a stream with consumer groups and pending
# entries, function libraries) is backed up; the backup goes into a 4-master cluster B
# (another password, disk-based sync) and, where ../shared/servers has it, a 4-master
# Valkey 9.1 cluster V; every key, type, value and absolute expiry is compared
# (tests/data_client.py dump). Truncated and corrupt files are refused with nothing
# written; existing keys are refused without --replace; import moves and copies a
# standalone server's keys (passwords on both sides) and refuses a cluster-enabled or
# newer source.
. "$(dirname "$0")/lib.sh"
cd "$T_TMP" || exit 1
L=$T_TMP/log
mkdir -p "$L"
PY=python3
/usr/bin/python3 -c 'import redis.cluster' 2>/dev/null && PY=/usr/bin/python3
DC="$PY $TOP/tests/data_client.py"
VALKEY9=$TOP/../shared/servers/valkey-9.1.0/valkey-server
REDIS8=$TOP/../shared/servers/redis-8.x-dev/redis-server
FN='#!lua name=datalib
redis.register_function("datafn", function(keys, args) return 42 end)'

if [ ! -x "$RCLUSTER" ]; then not_ok "data: binary" "$RCLUSTER not built"; finish; fi
if ! $PY -c 'import redis.cluster' 2>/dev/null; then skip "data" "python3 redis module (python3-redis) missing"; finish; fi

# dt_start SERVER PORT PASSWORD [args...]: a node (cluster-enabled unless the args say no).
dt_start() {
    local server=$1 port=$2 pw=$3; shift 3
    local dir=$T_TMP/node-$port
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "dt_start $port: something already listens on 127.0.0.1:$port" >&2; return 1
    fi
    rm -rf "$dir"; mkdir -p "$dir"
    NODE_AUTH[$port]="-a $pw --no-auth-warning"
    "$server" --port "$port" --bind 127.0.0.1 --cluster-enabled yes --cluster-config-file "$dir/nodes.conf" \
        --cluster-node-timeout 5000 --dir "$dir" --appendonly no --save '' --daemonize no \
        --requirepass "$pw" --masterauth "$pw" --logfile "$dir/server.log" "$@" >/dev/null 2>&1 &
    NODE_PID[$port]=$!
    local i
    for i in $(seq 1 100); do
        rcli "$port" ping | grep -q PONG && return 0
        sleep 0.05
    done
    echo "dt_start $port: $server did not come up" >&2
    return 1
}

# dt_cluster SERVER FIRST COUNT PASSWORD [args...]: COUNT nodes formed by rcluster create,
# with DT_REPLICAS (default 0) replicas per master.
dt_cluster() {
    local server=$1 first=$2 n=$3 pw=$4 p; shift 4
    for ((p = first; p < first + n; p++)); do dt_start "$server" "$p" "$pw" "$@" || return 1; done
    run_rc "$L/create-$first" 60 -- create --replicas "${DT_REPLICAS:-0}" --yes --password "$pw" $(addrs "$first" "$n")
    [ "$RC" = 0 ] || { cat "$L/create-$first.err" >&2; return 1; }
    wait_for 10 cluster_ok_all "$first" "$n"
}

# masters FIRST COUNT: the ports of the nodes that are masters.
masters() {
    local p
    for ((p = $1; p < $1 + $2; p++)); do rcli "$p" info replication | grep -q '^role:master' && echo "$p"; done
}

# keys_total FIRST COUNT: DBSIZE summed over the masters.
keys_total() {
    local p t=0 k
    for p in $(masters "$1" "$2"); do k=$(rcli "$p" dbsize); t=$((t + ${k:-0})); done
    echo "$t"
}

flush_all() { local p; for p in $(masters "$1" "$2"); do rcli "$p" flushall >/dev/null; rcli "$p" function flush >/dev/null; done; }

# same_data NAME DUMP_A DUMP_B [TOLERANCE_MS]: the same keys, types and values (and not
# none); expiries equal (RESTORE ... ABSTTL keeps them exactly) or within TOLERANCE_MS
# (import reads PTTL and RESTOREs with it: relative).
same_data() {
    if ! $DC compare "$2" "$3" "${4:-0}" >"$L/diff" 2>&1; then not_ok "$1" "keys differ" "$L/diff"; return 1; fi
    return 0
}

# ---- setup: A (Redis 7.0, 3 masters + 3 replicas) loaded; B (4 masters, disk-based sync) empty
DT_REPLICAS=1 dt_cluster redis-server 9600 6 apw || { not_ok "data: cluster A" "could not start"; finish; }
dt_cluster redis-server 9610 4 bpw --repl-diskless-sync no || { not_ok "data: cluster B" "could not start"; finish; }
if ! $DC load 127.0.0.1:9600 apw 3 cluster >"$L/load.out" 2>&1; then not_ok "data: load A" "data_client load failed" "$L/load.out"; finish; fi
for p in $(masters 9600 6); do rcli "$p" function load "$FN" >/dev/null; done
$DC dump 127.0.0.1:9600 apw cluster >"$L/A.dump" 2>"$L/A.dump.err"
A_KEYS=$(keys_total 9600 6)
wait_for 20 cluster_ok_all 9600 6   # the replicas have the keys (their link is up)

# ---- 1. backup ------------------------------------------------------------------------
t_backup() {
    local n="backup --diskless: 3 RDB files at once, manifest with topology, magic, sizes and CRC-64"
    # --diskless: the masters wait their repl-diskless-sync-delay (5 s), sending "\n" keepalives
    run_rc "$L/bk" 120 -- backup 127.0.0.1:9600 "$T_TMP/bkA" --password apw --diskless
    [ "$RC" = 0 ] || { not_ok "$n" "exit $RC" "$L/bk.err"; return; }
    contains "$L/bk.err" "repl-diskless-sync-delay (5 s)" || { not_ok "$n" "the delay is not said" "$L/bk.err"; return; }
    local files; files=$(ls "$T_TMP/bkA"/*.rdb 2>/dev/null | wc -l)
    [ "$files" = 3 ] || { not_ok "$n" "$files .rdb files in DIR"; return; }
    ls "$T_TMP/bkA" | grep -q '\.part$' && { not_ok "$n" ".part files left"; return; }
    if ! $PY - "$T_TMP/bkA" >"$L/bk.check" 2>&1 <<'PYEOF'
import json, os, sys, struct
d = sys.argv[1]
m = json.load(open(os.path.join(d, 'manifest.json')))
masters = [x for x in m['nodes'] if x['role'] == 'master']
assert len(masters) == 3 and sum(r[1] - r[0] + 1 for x in masters for r in x['ranges']) == 16384, 'topology'
assert 'Redis 7.0' in m['server'], m['server']
assert len(m['files']) == 3
for f in m['files']:
    b = open(os.path.join(d, f['file']), 'rb').read()
    assert f['file'] == f['master'] + '.rdb', f['file']
    assert any(x['id'] == f['master'] for x in masters), 'file of no master'
    assert len(b) == f['bytes'], ('size', f['file'], len(b), f['bytes'])
    assert b[:9] == b'REDIS0010' and f['magic'] == 'REDIS0010' and f['rdb_version'] == 10, f['magic']
    assert int(f['crc64'], 16) == struct.unpack('<Q', b[-8:])[0], 'crc64 is not the trailer'
    assert f['rdb_checksum'] == 'verified' and f['snapshot_time'].endswith('Z')
print('ok')
PYEOF
    then not_ok "$n" "manifest check" "$L/bk.check"; return; fi
    contains "$L/bk.err" "received" || { not_ok "$n" "no progress in bytes on stderr" "$L/bk.err"; return; }
    ok "$n"
}

t_backup_refusals() {
    local n="backup: refuses a DIR holding a backup and a non-cluster node, leaves nothing"
    run_rc "$L/bk2" 60 -- backup 127.0.0.1:9600 "$T_TMP/bkA" --password apw
    { [ "$RC" = 2 ] && contains "$L/bk2.err" "already holds a backup"; } || { not_ok "$n" "second backup into DIR: exit $RC" "$L/bk2.err"; return; }
    run_rc "$L/bk3" 60 -- backup 127.0.0.1:9620 "$T_TMP/bkS" --password spw
    { [ "$RC" = 1 ] && contains "$L/bk3.err" "cluster mode is disabled"; } || { not_ok "$n" "standalone node: exit $RC" "$L/bk3.err"; return; }
    [ -z "$(ls "$T_TMP/bkS" 2>/dev/null)" ] || { not_ok "$n" "files left in DIR of a refused backup"; return; }
    ok "$n"
}

t_backup_replicas() {
    local n="backup --from-replicas: each master's RDB from its replica, diskless at once (the delay held at 0, then back), restores the same keys"
    run_rc "$L/bkr" 120 -- backup 127.0.0.1:9600 "$T_TMP/bkR" --password apw --from-replicas
    [ "$RC" = 0 ] || { not_ok "$n" "exit $RC" "$L/bkr.err"; return; }
    [ "$(grep -o '"source_role":"replica"' "$T_TMP/bkR/manifest.json" | wc -l)" = 3 ] || { not_ok "$n" "not 3 files from replicas" "$T_TMP/bkR/manifest.json"; return; }
    # repl-diskless-sync-delay (5) held at 0 for the moment each source forked: a diskless
    # transfer at once, and the setting back afterwards
    local p
    for p in $(seq 9600 9605); do
        [ "$(rcli "$p" config get repl-diskless-sync-delay | tail -1)" = 5 ] || { not_ok "$n" "127.0.0.1:$p: repl-diskless-sync-delay not back at 5"; return; }
        rcli "$p" info replication | grep -q '^role:slave' || continue
        grep -q 'target: replicas sockets' "$T_TMP/node-$p/server.log" || { not_ok "$n" "replica $p did not send its RDB diskless" "$T_TMP/node-$p/server.log"; return; }
    done
    flush_all 9610 4
    run_rc "$L/bkrr" 120 -- restore 127.0.0.1:9610 "$T_TMP/bkR" --password bpw
    [ "$RC" = 0 ] || { not_ok "$n" "restore: exit $RC" "$L/bkrr.err"; return; }
    $DC dump 127.0.0.1:9610 bpw cluster >"$L/BR.dump" 2>&1
    same_data "$n" "$L/A.dump" "$L/BR.dump" || return
    ok "$n"
}

# ---- 2. restore -------------------------------------------------------------------------
t_restore() {
    local n="restore: A's backup into 4-master B: every key, type, value and expiry"
    run_rc "$L/rs-dry" 60 -- restore 127.0.0.1:9610 "$T_TMP/bkA" --password bpw --dry-run
    { [ "$RC" = 0 ] && contains "$L/rs-dry.out" "nothing written" && [ "$(keys_total 9610 4)" = 0 ]; } ||
        { not_ok "$n" "--dry-run: exit $RC, $(keys_total 9610 4) keys" "$L/rs-dry.err"; return; }
    run_rc "$L/rs" 120 -- restore 127.0.0.1:9610 "$T_TMP/bkA" --password bpw --json
    [ "$RC" = 0 ] || { not_ok "$n" "exit $RC" "$L/rs.err"; return; }
    contains "$L/rs.out" "\"restored\":$A_KEYS" || { not_ok "$n" "--json does not say $A_KEYS restored" "$L/rs.out"; return; }
    $DC dump 127.0.0.1:9610 bpw cluster >"$L/B.dump" 2>"$L/B.dump.err"
    same_data "$n" "$L/A.dump" "$L/B.dump" || return
    local fn; fn=$(rcli 9613 fcall datafn 0)
    [ "$fn" = 42 ] || { not_ok "$n" "function library not restored on 127.0.0.1:9613 (FCALL: $fn)"; return; }
    ok "$n"
}

t_restore_existing() {
    local n="restore: an existing key or function library is refused without --replace (nothing written), replaced with it"
    flush_all 9610 4
    rcli 9610 -c set t0:str other >/dev/null
    run_rc "$L/rs-ex" 60 -- restore 127.0.0.1:9610 "$T_TMP/bkA" --password bpw
    { [ "$RC" = 1 ] && contains "$L/rs-ex.err" "already exist" "t0:str"; } || { not_ok "$n" "exit $RC" "$L/rs-ex.err"; return; }
    [ "$(keys_total 9610 4)" = 1 ] || { not_ok "$n" "keys written although refused: $(keys_total 9610 4)"; return; }
    run_rc "$L/rs-rep" 120 -- restore 127.0.0.1:9610 "$T_TMP/bkA" --password bpw --replace
    [ "$RC" = 0 ] || { not_ok "$n" "--replace: exit $RC" "$L/rs-rep.err"; return; }
    [ "$(rcli 9610 -c get t0:str)" = hello ] || { not_ok "$n" "t0:str not replaced"; return; }
    # the keys go, the function library stays: it is refused like a key
    local p; for p in $(masters 9610 4); do rcli "$p" flushall >/dev/null; done
    run_rc "$L/rs-fn" 60 -- restore 127.0.0.1:9610 "$T_TMP/bkA" --password bpw
    { [ "$RC" = 1 ] && contains "$L/rs-fn.err" "function library 'datalib' already exists" "nothing written"; } || { not_ok "$n" "existing library: exit $RC" "$L/rs-fn.err"; return; }
    [ "$(keys_total 9610 4)" = 0 ] || { not_ok "$n" "keys written although the library was refused"; return; }
    ok "$n"
}

# flip_byte FILE OFFSET: the byte there XOR 0xff (a change, whatever it was)
flip_byte() {
    local b; b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
    printf "\\$(printf %o $((b ^ 255)))" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}

# restore_refused NAME FILE WANT: restoring FILE into empty B fails saying WANT, nothing written.
restore_refused() {
    local name=$1 file=$2 want=$3
    run_rc "$L/rf" 60 -- restore 127.0.0.1:9610 "$file" --password bpw
    { [ "$RC" = 1 ] && contains "$L/rf.err" "$want" "nothing written"; } || { not_ok "$name" "exit $RC, expected '$want'" "$L/rf.err"; return 1; }
    [ "$(keys_total 9610 4)" = 0 ] || { not_ok "$name" "$(keys_total 9610 4) keys written"; return 1; }
    return 0
}

t_restore_corrupt() {
    local n="restore: truncated and corrupt files refused before any write"
    flush_all 9610 4
    local f; f=$(ls "$T_TMP/bkA"/*.rdb | head -1)
    mkdir -p "$T_TMP/bad1" "$T_TMP/bad2" "$T_TMP/bad3"
    cp "$T_TMP/bkA"/* "$T_TMP/bad1/"
    local g="$T_TMP/bad1/$(basename "$f")" size
    size=$(stat -c %s "$g")
    truncate -s $((size - 100)) "$g"
    restore_refused "$n" "$T_TMP/bad1" "truncated or changed" || return
    restore_refused "$n" "$g" "truncated" || return
    cp "$f" "$T_TMP/bad2/x.rdb"
    # a flipped byte in the middle of a value
    flip_byte "$T_TMP/bad2/x.rdb" $((size / 2))
    restore_refused "$n" "$T_TMP/bad2/x.rdb" "at byte" || return
    cp "$T_TMP/bkA"/*.rdb "$T_TMP/bad3/"
    printf 'REDIX' | dd of="$T_TMP/bad3/$(basename "$f")" bs=1 seek=0 conv=notrunc 2>/dev/null
    restore_refused "$n" "$T_TMP/bad3" "not an RDB file" || return
    ok "$n"
}

t_restore_handmade() {
    local n="restore: expired keys skipped, seconds expiry kept; database 1 and module types refused"
    flush_all 9610 4
    $DC rdb "$T_TMP/exp.rdb" expired && $DC rdb "$T_TMP/db1.rdb" db1 && $DC rdb "$T_TMP/mod.rdb" module || { not_ok "$n" "writing the files"; return; }
    run_rc "$L/hm" 60 -- restore 127.0.0.1:9610 "$T_TMP/exp.rdb" --password bpw --json
    { [ "$RC" = 0 ] && contains "$L/hm.out" '"restored":2' '"expired_skipped":1'; } || { not_ok "$n" "exit $RC" "$L/hm.out" "$L/hm.err"; return; }
    [ "$(rcli 9610 -c exists dead)" = 0 ] && [ "$(rcli 9610 -c get live)" = 1 ] || { not_ok "$n" "expired key restored or live key missing"; return; }
    [ "$(rcli 9610 -c pexpiretime secs)" = 4000000000000 ] || { not_ok "$n" "EXPIRETIME in seconds not kept: $(rcli 9610 -c pexpiretime secs)"; return; }
    flush_all 9610 4
    restore_refused "$n" "$T_TMP/db1.rdb" "database 1" || return
    restore_refused "$n" "$T_TMP/mod.rdb" "key 'modkey'" || return
    contains "$L/rf.err" "module" || { not_ok "$n" "module type not said" "$L/rf.err"; return; }
    run_rc "$L/hm2" 60 -- import 127.0.0.1:9610 --from "$T_TMP/exp.rdb" --password bpw
    { [ "$RC" = 0 ] && [ "$(rcli 9610 -c get live)" = 1 ]; } || { not_ok "$n" "import --from FILE.rdb: exit $RC" "$L/hm2.err"; return; }
    ok "$n"
}

# ---- 3. import --------------------------------------------------------------------------
t_import() {
    local n="import: --copy then move from a standalone server, passwords on both sides"
    flush_all 9610 4
    $DC load 127.0.0.1:9620 spw 2 single >"$L/loadS.out" 2>&1 || { not_ok "$n" "load S" "$L/loadS.out"; return; }
    $DC dump 127.0.0.1:9620 spw single >"$L/S.dump" 2>&1
    echo spw >"$T_TMP/spw"
    run_rc "$L/im1" 120 -- import 127.0.0.1:9610 --from 127.0.0.1:9620 --from-password-file "$T_TMP/spw" --copy --password bpw --pipeline 100
    [ "$RC" = 0 ] || { not_ok "$n" "--copy: exit $RC" "$L/im1.err"; return; }
    $DC dump 127.0.0.1:9610 bpw cluster >"$L/B2.dump" 2>&1
    same_data "$n: copy" "$L/S.dump" "$L/B2.dump" 5000 || return
    [ "$(rcli 9620 dbsize)" = "$(wc -l <"$L/S.dump")" ] || { not_ok "$n" "--copy removed keys from the source"; return; }
    # without --replace the keys that are there are refused, named, and stay on the source
    run_rc "$L/im2" 120 -- import 127.0.0.1:9610 --cluster-from 127.0.0.1:9620 --cluster-from-pass spw --password bpw
    { [ "$RC" = 1 ] && contains "$L/im2.err" "already exist" "BUSYKEY" "--replace"; } || { not_ok "$n" "existing keys: exit $RC" "$L/im2.err"; return; }
    [ "$(rcli 9620 dbsize)" = "$(wc -l <"$L/S.dump")" ] || { not_ok "$n" "refused keys left the source"; return; }
    flush_all 9610 4
    run_rc "$L/im3" 120 -- import 127.0.0.1:9610 --from 127.0.0.1:9620 --from-password-file "$T_TMP/spw" --password bpw --json
    [ "$RC" = 0 ] || { not_ok "$n" "move: exit $RC" "$L/im3.err"; return; }
    [ "$(rcli 9620 dbsize)" = 0 ] || { not_ok "$n" "move left $(rcli 9620 dbsize) keys on the source"; return; }
    $DC dump 127.0.0.1:9610 bpw cluster >"$L/B3.dump" 2>&1
    same_data "$n: move" "$L/S.dump" "$L/B3.dump" 5000 || return
    ok "$n"
}

t_import_refusals() {
    local n="import: refuses a cluster-enabled source, a wrong or missing source password, a missing --from and (to move) a source user without EVAL"
    run_rc "$L/ir1" 60 -- import 127.0.0.1:9610 --from 127.0.0.1:9600 --cluster-from-pass apw --password bpw
    { [ "$RC" = 1 ] && contains "$L/ir1.err" "cluster-enabled"; } || { not_ok "$n" "cluster source: exit $RC" "$L/ir1.err"; return; }
    run_rc "$L/ir2" 60 -- import 127.0.0.1:9610 --from 127.0.0.1:9620 --cluster-from-pass wrong --password bpw
    { [ "$RC" = 1 ] && contains "$L/ir2.err" "source" "WRONGPASS"; } || { not_ok "$n" "wrong password: exit $RC" "$L/ir2.err"; return; }
    run_rc "$L/ir4" 60 -- import 127.0.0.1:9610 --from 127.0.0.1:9620 --password bpw
    { [ "$RC" = 1 ] && contains "$L/ir4.err" "NOAUTH" "--from-password-file"; } || { not_ok "$n" "no source password: exit $RC" "$L/ir4.err"; return; }
    run_rc "$L/ir3" 60 -- import 127.0.0.1:9610 --password bpw
    { [ "$RC" = 2 ] && contains "$L/ir3.err" "--from"; } || { not_ok "$n" "no --from: exit $RC" "$L/ir3.err"; return; }
    # a move deletes with a script: a source user that may not EVAL is refused before anything moves
    rcli 9620 acl setuser noeval on '>nepw' '~*' '+@all' '-eval' >/dev/null
    rcli 9620 set ne:k v >/dev/null
    run_rc "$L/ir5" 60 -- import 127.0.0.1:9610 --from 127.0.0.1:9620 --from-user noeval --cluster-from-pass nepw --password bpw
    rcli 9620 acl deluser noeval >/dev/null
    { [ "$RC" = 1 ] && contains "$L/ir5.err" "EVAL" "NOPERM" "nothing moved" "--copy"; } || { not_ok "$n" "a source user without EVAL: exit $RC" "$L/ir5.err"; return; }
    [ "$(rcli 9620 get ne:k)" = v ] && [ -z "$(rcli 9610 -c get ne:k)" ] || { not_ok "$n" "a key moved from a source user without EVAL"; return; }
    rcli 9620 del ne:k >/dev/null
    ok "$n"
}

# exactly the keys the masters acknowledged leave the source: a key the cluster holds is
# refused (named) and stays; --replace then moves it too
t_import_partial() {
    local n="import: keys the cluster holds are refused, named and stay on the source, the others move; --replace moves those too"
    flush_all 9610 4
    rcli 9620 flushall >/dev/null
    $DC load 127.0.0.1:9620 spw 2 single >"$L/loadP.out" 2>&1 || { not_ok "$n" "load S" "$L/loadP.out"; return; }
    rcli 9620 set imp:a mine >/dev/null; rcli 9620 set imp:b mine >/dev/null
    rcli 9610 -c set imp:a theirs >/dev/null; rcli 9610 -c set imp:b theirs >/dev/null
    $DC dump 127.0.0.1:9620 spw single >"$L/P.dump" 2>&1
    local total; total=$(rcli 9620 dbsize)
    run_rc "$L/ip1" 120 -- import 127.0.0.1:9610 --from 127.0.0.1:9620 --from-password-file "$T_TMP/spw" --password bpw
    { [ "$RC" = 1 ] && contains "$L/ip1.err" "2 key(s) already exist" "'imp:a'" "'imp:b'" "BUSYKEY"; } || { not_ok "$n" "exit $RC" "$L/ip1.err"; return; }
    [ "$(rcli 9620 dbsize)" = 2 ] && [ "$(rcli 9620 get imp:a)" = mine ] || { not_ok "$n" "the source holds $(rcli 9620 dbsize) keys, not the 2 refused"; return; }
    [ "$(keys_total 9610 4)" = "$total" ] && [ "$(rcli 9610 -c get imp:b)" = theirs ] || { not_ok "$n" "the cluster holds $(keys_total 9610 4) keys (want $total), imp:b '$(rcli 9610 -c get imp:b)'"; return; }
    run_rc "$L/ip2" 120 -- import 127.0.0.1:9610 --from 127.0.0.1:9620 --from-password-file "$T_TMP/spw" --password bpw --replace
    [ "$RC" = 0 ] && [ "$(rcli 9620 dbsize)" = 0 ] || { not_ok "$n" "--replace: exit $RC, $(rcli 9620 dbsize) keys left" "$L/ip2.err"; return; }
    $DC dump 127.0.0.1:9610 bpw cluster >"$L/P2.dump" 2>&1
    same_data "$n" "$L/P.dump" "$L/P2.dump" 5000 || return
    ok "$n"
}

b_has_keys() { [ "$(keys_total 9610 4)" -gt 0 ]; }

# source_fill N LOG: empty the cluster and the source, then N keys ik:0..ik:N-1 on the
# source (redis-cli --pipe); 0 when the source holds exactly N.
source_fill() {
    flush_all 9610 4
    rcli 9620 flushall >/dev/null
    awk -v n="$1" 'BEGIN { for (i = 0; i < n; i++) { k = "ik:" i; printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1\r\nv\r\n", length(k), k } }' |
        redis-cli -p 9620 -a spw --no-auth-warning --pipe >"$2" 2>&1
    [ "$(rcli 9620 dbsize)" = "$1" ]
}

# Ctrl-C while keys move: the scan stops, what is in flight finishes (RESTOREs read, their
# DEL sent), so that every key is in exactly one place
t_import_interrupt() {
    local n="import: Ctrl-C mid-way: every key is either on the source or in the cluster, none lost, none in both"
    source_fill 300000 "$L/ii-load.out" || { not_ok "$n" "the source holds $(rcli 9620 dbsize) keys, not 300000" "$L/ii-load.out"; return; }
    "$RCLUSTER" import 127.0.0.1:9610 --from 127.0.0.1:9620 --from-password-file "$T_TMP/spw" --password bpw </dev/null >"$L/ii.out" 2>"$L/ii.err" &
    local pid=$!
    wait_for 30 b_has_keys
    kill -INT "$pid" 2>/dev/null; wait "$pid"; RC=$?
    { [ "$RC" = 130 ] && contains "$L/ii.err" "interrupted" "stay on the source"; } || { not_ok "$n" "exit $RC" "$L/ii.err"; return; }
    local p all uniq src
    { rcli 9620 --scan; for p in $(masters 9610 4); do rcli "$p" --scan; done; } | sort >"$L/ii.keys"
    all=$(wc -l <"$L/ii.keys"); uniq=$(sort -u "$L/ii.keys" | wc -l); src=$(rcli 9620 dbsize)
    { [ "$all" = 300000 ] && [ "$uniq" = 300000 ]; } || { not_ok "$n" "$uniq distinct keys of 300000 ($all found, $src on the source)"; return; }
    { [ "$src" -gt 0 ] && [ "$src" -lt 300000 ]; } || { not_ok "$n" "not interrupted mid-way: $src keys on the source"; return; }
    rcli 9620 flushall >/dev/null
    flush_all 9610 4
    ok "$n"
}

# a client writing to the source while its keys move: no write is lost (a key changed
# between its DUMP and its DEL stays on the source with the new value, named)
t_import_writer() {
    local n="import: a client rewriting 20000 keys of the source meanwhile loses no write: each key's last value is on the source or in the cluster"
    source_fill 200000 "$L/iw-load.out" || { not_ok "$n" "the source holds $(rcli 9620 dbsize) keys, not 200000" "$L/iw-load.out"; return; }
    seq 0 19999 | sed 's/^/ik:/' >"$L/iw.keys"
    rm -f "$T_TMP/iw.stop" "$T_TMP/iw.pass"
    ( i=0; while [ ! -e "$T_TMP/iw.stop" ]; do
        i=$((i + 1)); awk -v i=$i '{ printf "SET %s w%d\n", $1, i }' "$L/iw.keys" | rcli 9620 >/dev/null; echo $i >"$T_TMP/iw.pass"
      done ) &
    local wpid=$!
    wait_for 10 test -e "$T_TMP/iw.pass"
    run_rc "$L/iw" 120 -- import 127.0.0.1:9610 --from 127.0.0.1:9620 --from-password-file "$T_TMP/spw" --password bpw
    touch "$T_TMP/iw.stop"; wait "$wpid"
    { [ "$RC" = 0 ] || { [ "$RC" = 1 ] && contains "$L/iw.err" "changed on the source" "--replace"; }; } || { not_ok "$n" "exit $RC" "$L/iw.err"; return; }
    local want; want=w$(cat "$T_TMP/iw.pass")
    awk '{ print "GET " $1 }' "$L/iw.keys" | rcli 9620 >"$L/iw.src"
    awk '{ print "GET " $1 }' "$L/iw.keys" | rcli 9610 -c | grep -v "^-> Redirected" >"$L/iw.cl"
    paste "$L/iw.keys" "$L/iw.src" "$L/iw.cl" | awk -F'\t' -v w="$want" '!($2 == w || ($2 == "" && $3 == w))' >"$L/iw.lost"
    [ -s "$L/iw.lost" ] && { not_ok "$n" "$(wc -l <"$L/iw.lost") key(s) without their last value $want (key, source, cluster)" "$L/iw.lost"; return; }
    rcli 9620 flushall >/dev/null
    flush_all 9610 4
    ok "$n"
}

# ---- 4. Valkey 9.1 ----------------------------------------------------------------------
t_valkey() {
    local n="Valkey 9.1: Redis 7.0 backup into it; its VALKEY080 backup back into it (hash field expiries too) and re-encoded into Redis 7.0"
    [ -x "$VALKEY9" ] || { skip "$n" "$VALKEY9 not there"; return; }
    dt_cluster "$VALKEY9" 9630 4 vpw --repl-diskless-sync-delay 0 || { not_ok "$n" "could not start cluster V"; return; }
    run_rc "$L/vr" 120 -- restore 127.0.0.1:9630 "$T_TMP/bkA" --password vpw
    [ "$RC" = 0 ] || { not_ok "$n" "exit $RC" "$L/vr.err"; return; }
    $DC dump 127.0.0.1:9630 vpw cluster >"$L/V.dump" 2>&1
    same_data "$n" "$L/A.dump" "$L/V.dump" || return
    # V's own backup (listpack sets, STREAM3) into Redis 7.0: re-encoded
    run_rc "$L/vb0" 120 -- backup 127.0.0.1:9630 "$T_TMP/bkV0" --password vpw
    [ "$RC" = 0 ] || { not_ok "$n" "backup of V: exit $RC" "$L/vb0.err"; return; }
    flush_all 9610 4
    run_rc "$L/vr0" 120 -- restore 127.0.0.1:9610 "$T_TMP/bkV0" --password bpw --json
    { [ "$RC" = 0 ] && contains "$L/vr0.out" '"reencoded":'; } || { not_ok "$n" "VALKEY080 into Redis 7.0: exit $RC" "$L/vr0.err"; return; }
    grep -q '"reencoded":0,' "$L/vr0.out" && { not_ok "$n" "nothing re-encoded" "$L/vr0.out"; return; }
    $DC dump 127.0.0.1:9610 bpw cluster >"$L/B5.dump" 2>&1
    same_data "$n: VALKEY080 re-encoded into Redis 7.0" "$L/A.dump" "$L/B5.dump" || return
    # a hash with field expiries: Valkey's own HASH_2 type in its VALKEY080 format
    rcli 9630 -c hset hfe f1 v1 f2 v2 f3 v3 >/dev/null
    rcli 9630 -c hpexpireat hfe 4000000000000 FIELDS 2 f1 f3 >/dev/null
    local hfe; hfe=$(rcli 9630 -c hpexpiretime hfe FIELDS 3 f1 f2 f3 | tr '\n' ' ')
    $DC dump 127.0.0.1:9630 vpw cluster >"$L/V1.dump" 2>&1
    run_rc "$L/vb" 120 -- backup 127.0.0.1:9630 "$T_TMP/bkV" --password vpw
    [ "$RC" = 0 ] || { not_ok "$n" "backup of V: exit $RC" "$L/vb.err"; return; }
    grep -q '"magic":"VALKEY080"' "$T_TMP/bkV/manifest.json" || { not_ok "$n" "V's backup is not VALKEY080" "$T_TMP/bkV/manifest.json"; return; }
    flush_all 9630 4
    run_rc "$L/vr2" 120 -- restore 127.0.0.1:9630 "$T_TMP/bkV" --password vpw
    [ "$RC" = 0 ] || { not_ok "$n" "restore of V's backup: exit $RC" "$L/vr2.err"; return; }
    $DC dump 127.0.0.1:9630 vpw cluster >"$L/V2.dump" 2>&1
    same_data "$n: VALKEY080 round trip" "$L/V1.dump" "$L/V2.dump" || return
    [ "$hfe" = "4000000000000 -1 4000000000000 " ] && [ "$(rcli 9630 -c hpexpiretime hfe FIELDS 3 f1 f2 f3 | tr '\n' ' ')" = "$hfe" ] ||
        { not_ok "$n" "field expiries: '$hfe' before, '$(rcli 9630 -c hpexpiretime hfe FIELDS 3 f1 f2 f3 | tr '\n' ' ')' after"; return; }
    # a hash with field expiries cannot go into Redis 7.0: refused naming the key, nothing written
    flush_all 9610 4
    restore_refused "$n" "$T_TMP/bkV" "key 'hfe': a hash with field expiries" || return
    ok "$n"
}

t_import_newer() {
    local n="import: a source newer than the cluster (Valkey 9.1 into Redis 7.0) is refused, naming both, with and without --copy"
    [ -x "$VALKEY9" ] || { skip "$n" "$VALKEY9 not there"; return; }
    dt_start "$VALKEY9" 9640 spw --cluster-enabled no || { not_ok "$n" "could not start"; return; }
    rcli 9640 set k v >/dev/null
    run_rc "$L/in" 60 -- import 127.0.0.1:9610 --from 127.0.0.1:9640 --cluster-from-pass spw --password bpw
    { [ "$RC" = 1 ] && contains "$L/in.err" "Valkey 9.1.0" "Redis 7.0" "nothing moved"; } || { not_ok "$n" "exit $RC" "$L/in.err"; return; }
    run_rc "$L/in2" 60 -- import 127.0.0.1:9610 --from 127.0.0.1:9640 --cluster-from-pass spw --password bpw --copy
    { [ "$RC" = 1 ] && contains "$L/in2.err" "Valkey 9.1.0" "Redis 7.0" "nothing moved"; } || { not_ok "$n" "--copy: exit $RC" "$L/in2.err"; return; }
    [ "$(rcli 9640 dbsize)" = 1 ] || { not_ok "$n" "the key left the source"; return; }
    ok "$n"
}

# ---- 5. backup of B (disk-based "$<len>" transfer) and its restore ------------------------
t_backup_disk() {
    local n="backup of B over disk-based sync (\$<len> stream) restores into B again"
    run_rc "$L/bb" 120 -- backup 127.0.0.1:9610 "$T_TMP/bkB" --password bpw --json
    { [ "$RC" = 0 ] && contains "$L/bb.out" '"command":"backup"'; } || { not_ok "$n" "exit $RC" "$L/bb.err"; return; }
    [ "$(ls "$T_TMP/bkB"/*.rdb | wc -l)" = 4 ] || { not_ok "$n" "not 4 files"; return; }
    flush_all 9610 4
    run_rc "$L/bbr" 120 -- restore 127.0.0.1:9610 "$T_TMP/bkB" --password bpw
    [ "$RC" = 0 ] || { not_ok "$n" "restore: exit $RC" "$L/bbr.err"; return; }
    $DC dump 127.0.0.1:9610 bpw cluster >"$L/B4.dump" 2>&1
    same_data "$n" "$L/B3.dump" "$L/B4.dump" || return
    ok "$n"
}

t_backup_cleanup() {
    local n="backup: a failure mid-way (a source silent past --timeout) leaves no file"
    # --diskless: the masters wait 5 s, with a "\n" a second; 0.5 s of silence is a failure
    run_rc "$L/bkc" 60 -- backup 127.0.0.1:9600 "$T_TMP/bkC" --password apw --diskless --timeout 0.5
    { [ "$RC" = 1 ] && contains "$L/bkc.err" "nothing received"; } || { not_ok "$n" "exit $RC" "$L/bkc.err"; return; }
    [ -d "$T_TMP/bkC" ] || { not_ok "$n" "DIR was not created"; return; }
    [ -z "$(ls -A "$T_TMP/bkC")" ] || { not_ok "$n" "left: $(ls "$T_TMP/bkC" | head -3 | tr '\n' ' ')"; return; }
    ok "$n"
}

# ---- 6. Redis 8 (types 24-27) and other databases ---------------------------------------
# hfe_of PORT KEY FIELDS...: the fields' PEXPIRETIMEs, on one line
hfe_of() { local p=$1 k=$2; shift 2; rcli "$p" -c hpexpiretime "$k" FIELDS $# "$@" | tr '\n' ' '; }

t_redis8() {
    local n="Redis 8 (RDB 14): hashes with field expiries (types 24, 25) and streams (27) back into Redis 8, re-encoded into Valkey 9.1; Valkey's HASH_2 into Redis 8; into Redis 7.0 refused naming the key, then re-encoded without it"
    [ -x "$REDIS8" ] || { skip "$n" "$REDIS8 not there"; return; }
    dt_cluster "$REDIS8" 9650 3 rpw --repl-diskless-sync-delay 0 || { not_ok "$n" "could not start cluster R8"; return; }
    $DC load 127.0.0.1:9650 rpw 1 cluster >"$L/load8.out" 2>&1 || { not_ok "$n" "load R8" "$L/load8.out"; return; }
    rcli 9650 -c hset h8 a 1 b 2 c 3 >/dev/null
    rcli 9650 -c hpexpireat h8 4000000000000 FIELDS 2 a c >/dev/null
    local i; for i in $(seq 1 700); do echo "HSET h8big{x} f$i v$i"; done | rcli 9650 -c >/dev/null
    rcli 9650 -c hpexpireat 'h8big{x}' 4100000000000 FIELDS 2 f1 f700 >/dev/null
    local t25 t24; t25=$(rcli 9650 -c dump h8 | head -c 1 | od -An -tu1 | tr -d ' '); t24=$(rcli 9650 -c dump 'h8big{x}' | head -c 1 | od -An -tu1 | tr -d ' ')
    { [ "$t25" = 25 ] && [ "$t24" = 24 ]; } || { not_ok "$n" "Redis 8 dumps types $t25 and $t24, not 25 and 24"; return; }
    local want8 wantbig; want8=$(hfe_of 9650 h8 a b c); wantbig=$(hfe_of 9650 'h8big{x}' f1 f2 f700)
    $DC dump 127.0.0.1:9650 rpw cluster >"$L/R8.dump" 2>&1
    run_rc "$L/r8b" 120 -- backup 127.0.0.1:9650 "$T_TMP/bkR8" --password rpw
    { [ "$RC" = 0 ] && grep -q '"magic":"REDIS0014"' "$T_TMP/bkR8/manifest.json"; } || { not_ok "$n" "backup of R8: exit $RC" "$L/r8b.err"; return; }
    flush_all 9650 3
    run_rc "$L/r8r" 120 -- restore 127.0.0.1:9650 "$T_TMP/bkR8" --password rpw --json
    { [ "$RC" = 0 ] && contains "$L/r8r.out" '"reencoded":0,'; } || { not_ok "$n" "into Redis 8: exit $RC" "$L/r8r.err" "$L/r8r.out"; return; }
    $DC dump 127.0.0.1:9650 rpw cluster >"$L/R8b.dump" 2>&1
    same_data "$n: into Redis 8" "$L/R8.dump" "$L/R8b.dump" || return
    [ "$(hfe_of 9650 h8 a b c)" = "$want8" ] && [ "$(hfe_of 9650 'h8big{x}' f1 f2 f700)" = "$wantbig" ] ||
        { not_ok "$n" "field expiries into Redis 8: '$(hfe_of 9650 h8 a b c)' for '$want8'"; return; }
    if [ -x "$VALKEY9" ] && rcli 9630 ping >/dev/null 2>&1; then
        flush_all 9630 4
        run_rc "$L/r8v" 120 -- restore 127.0.0.1:9630 "$T_TMP/bkR8" --password vpw --json
        { [ "$RC" = 0 ] && ! contains "$L/r8v.out" '"reencoded":0,'; } || { not_ok "$n" "into Valkey 9.1: exit $RC" "$L/r8v.err" "$L/r8v.out"; return; }
        $DC dump 127.0.0.1:9630 vpw cluster >"$L/R8v.dump" 2>&1
        same_data "$n: into Valkey 9.1" "$L/R8.dump" "$L/R8v.dump" || return
        [ "$(hfe_of 9630 h8 a b c)" = "$want8" ] && [ "$(hfe_of 9630 'h8big{x}' f1 f2 f700)" = "$wantbig" ] ||
            { not_ok "$n" "field expiries into Valkey 9.1: '$(hfe_of 9630 h8 a b c)' for '$want8'"; return; }
    fi
    if [ -d "$T_TMP/bkV" ]; then   # Valkey's HASH_2 (field expiries) re-encoded as Redis' own type 24
        flush_all 9650 3
        run_rc "$L/v8" 120 -- restore 127.0.0.1:9650 "$T_TMP/bkV" --password rpw
        [ "$RC" = 0 ] || { not_ok "$n" "Valkey 9.1's backup into Redis 8: exit $RC" "$L/v8.err"; return; }
        $DC dump 127.0.0.1:9650 rpw cluster >"$L/V8.dump" 2>&1
        same_data "$n: Valkey 9.1's backup into Redis 8" "$L/V1.dump" "$L/V8.dump" || return
        [ "$(hfe_of 9650 hfe f1 f2 f3)" = "4000000000000 -1 4000000000000 " ] ||
            { not_ok "$n" "Valkey's field expiries in Redis 8: '$(hfe_of 9650 hfe f1 f2 f3)'"; return; }
    fi
    flush_all 9610 4
    restore_refused "$n" "$T_TMP/bkR8" "a hash with field expiries" || return
    contains "$L/rf.err" "key 'h8" || { not_ok "$n" "the key is not named" "$L/rf.err"; return; }
    flush_all 9650 3
    run_rc "$L/r8r2" 120 -- restore 127.0.0.1:9650 "$T_TMP/bkR8" --password rpw
    [ "$RC" = 0 ] || { not_ok "$n" "into Redis 8 again: exit $RC" "$L/r8r2.err"; return; }
    rcli 9650 -c del h8 >/dev/null; rcli 9650 -c del 'h8big{x}' >/dev/null
    run_rc "$L/r8b2" 120 -- backup 127.0.0.1:9650 "$T_TMP/bkR8b" --password rpw
    [ "$RC" = 0 ] || { not_ok "$n" "second backup of R8: exit $RC" "$L/r8b2.err"; return; }
    run_rc "$L/r8r7" 120 -- restore 127.0.0.1:9610 "$T_TMP/bkR8b" --password bpw --json
    { [ "$RC" = 0 ] && ! contains "$L/r8r7.out" '"reencoded":0,'; } || { not_ok "$n" "into Redis 7.0: exit $RC" "$L/r8r7.err"; return; }
    $DC dump 127.0.0.1:9610 bpw cluster >"$L/R87.dump" 2>&1
    grep -v "^b'h8" "$L/R8.dump" >"$L/R8-no-hfe.dump"
    same_data "$n: into Redis 7.0" "$L/R8-no-hfe.dump" "$L/R87.dump" || return
    ok "$n"
}

t_databases() {
    local n="databases: a standalone Valkey 9.1's keys of databases 0, 1 and 3 into the same databases of a cluster with cluster-databases 4, and that cluster's own backup back; refused naming the database where the cluster has only 0"
    [ -x "$VALKEY9" ] || { skip "$n" "$VALKEY9 not there"; return; }
    rcli 9640 ping >/dev/null 2>&1 || dt_start "$VALKEY9" 9640 spw --cluster-enabled no || { not_ok "$n" "could not start the source"; return; }
    rcli 9640 flushall >/dev/null
    rcli 9640 -n 0 set d0 zero >/dev/null; rcli 9640 -n 1 set d1 one >/dev/null; rcli 9640 -n 1 rpush d1list a b >/dev/null
    rcli 9640 -n 3 set d3 three >/dev/null; rcli 9640 -n 3 set d1 three-too >/dev/null
    rcli 9640 save >/dev/null
    cp "$T_TMP/node-9640/dump.rdb" "$T_TMP/dbs.rdb" || { not_ok "$n" "no dump.rdb"; return; }
    dt_cluster "$VALKEY9" 9660 3 dpw --cluster-databases 4 || { not_ok "$n" "could not start cluster D"; return; }
    run_rc "$L/db" 60 -- restore 127.0.0.1:9660 "$T_TMP/dbs.rdb" --password dpw --json
    { [ "$RC" = 0 ] && contains "$L/db.out" '"restored":5'; } || { not_ok "$n" "exit $RC" "$L/db.err" "$L/db.out"; return; }
    local got; got="$(rcli 9660 -c -n 0 get d0) $(rcli 9660 -c -n 1 get d1) $(rcli 9660 -c -n 1 lrange d1list 0 -1 | tr '\n' ,) $(rcli 9660 -c -n 3 get d3) $(rcli 9660 -c -n 3 get d1) $(rcli 9660 -c -n 0 exists d1)$(rcli 9660 -c -n 0 exists d3)"
    [ "$got" = "zero one a,b, three three-too 00" ] || { not_ok "$n" "keys in the databases: '$got'"; return; }
    # that cluster's own backup (SELECTDB in each master's RDB) back into it
    run_rc "$L/dbb" 60 -- backup 127.0.0.1:9660 "$T_TMP/bkD" --password dpw
    [ "$RC" = 0 ] || { not_ok "$n" "backup of D: exit $RC" "$L/dbb.err"; return; }
    flush_all 9660 3
    run_rc "$L/dbr" 60 -- restore 127.0.0.1:9660 "$T_TMP/bkD" --password dpw --json
    { [ "$RC" = 0 ] && contains "$L/dbr.out" '"restored":5'; } || { not_ok "$n" "D's backup into D: exit $RC" "$L/dbr.err" "$L/dbr.out"; return; }
    local again; again="$(rcli 9660 -c -n 0 get d0) $(rcli 9660 -c -n 1 get d1) $(rcli 9660 -c -n 1 lrange d1list 0 -1 | tr '\n' ,) $(rcli 9660 -c -n 3 get d3) $(rcli 9660 -c -n 3 get d1) $(rcli 9660 -c -n 0 exists d1)$(rcli 9660 -c -n 0 exists d3)"
    [ "$again" = "$got" ] || { not_ok "$n" "D's backup restored: '$again'"; return; }
    if rcli 9630 ping >/dev/null 2>&1; then
        flush_all 9630 4
        run_rc "$L/db1" 60 -- restore 127.0.0.1:9630 "$T_TMP/dbs.rdb" --password vpw
        { [ "$RC" = 1 ] && contains "$L/db1.err" "2 key(s) in database 1" "nothing written"; } || { not_ok "$n" "into 1 database: exit $RC" "$L/db1.err"; return; }
        [ "$(keys_total 9630 4)" = 0 ] || { not_ok "$n" "keys written although refused"; return; }
    fi
    ok "$n"
}

# ---- 7. up --restore (Docker) --------------------------------------------------------------
# Only touches what it makes: image rcdt/redis:local, clusters rcdt* (label), subnet
# 10.75.0.0/24, ports 9670-9672 (+10000).
dk_clean() {
    local ids
    ids=$(docker ps -aq --filter label=io.rcluster.cluster=rcdt 2>/dev/null); [ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1
    ids=$(docker network ls -q --filter label=io.rcluster.cluster=rcdt 2>/dev/null); [ -n "$ids" ] && docker network rm $ids >/dev/null 2>&1
    return 0
}
dk_owned() { echo "$(docker ps -aq --filter label=io.rcluster.cluster=rcdt | grep -c .) $(docker network ls -q --filter label=io.rcluster.cluster=rcdt | grep -c .)"; }
UPR=(up --name rcdt --subnet 10.75.0.0/24 --port 9670 --nodes 3 --replicas 0 --image rcdt/redis:local --data-dir "$T_TMP/dk" --yes --timeout 120)

t_up_restore() {
    local n="up --restore: a corrupt backup and a value the image's server cannot hold are refused with nothing created; a good one fills the new cluster"
    timeout 10 docker version >/dev/null 2>&1 || { skip "$n" "no Docker daemon"; return; }
    dk_clean
    T_CLEANUPS+=(dk_clean)
    run_rc "$L/dki" 300 -- image build --tag rcdt/redis:local
    [ "$RC" = 0 ] || { not_ok "$n" "image build: exit $RC" "$L/dki.err"; return; }
    run_rc "$L/dk1" 120 -- "${UPR[@]}" --restore "$T_TMP/bad2/x.rdb"
    { [ "$RC" = 1 ] && contains "$L/dk1.err" "nothing created" "at byte"; } || { not_ok "$n" "corrupt file: exit $RC" "$L/dk1.err"; return; }
    [ "$(dk_owned)" = "0 0" ] || { not_ok "$n" "a refused up left containers/networks: $(dk_owned)"; return; }
    if [ -d "$T_TMP/bkV" ]; then   # Valkey's HASH_2 with field expiries: Redis 7.0 (told by a --version run) cannot hold it
        run_rc "$L/dk2" 120 -- "${UPR[@]}" --restore "$T_TMP/bkV"
        { [ "$RC" = 1 ] && contains "$L/dk2.err" "Redis 7.0" "key 'hfe'" "field expiries" "nothing created"; } || { not_ok "$n" "HASH_2 into Redis 7.0: exit $RC" "$L/dk2.err"; return; }
        [ "$(dk_owned)" = "0 0" ] || { not_ok "$n" "a refused up left containers/networks: $(dk_owned)"; return; }
    fi
    run_rc "$L/dk3" 300 -- "${UPR[@]}" --restore "$T_TMP/bkA"
    { [ "$RC" = 0 ] && contains "$L/dk3.err" "restored"; } || { not_ok "$n" "exit $RC" "$L/dk3.err"; return; }
    $DC dump 127.0.0.1:9670 - cluster >"$L/DK.dump" 2>&1
    same_data "$n" "$L/A.dump" "$L/DK.dump" || return
    run_rc "$L/dk4" 60 -- "${UPR[@]}" --restore "$T_TMP/bkA"
    { [ "$RC" = 2 ] && contains "$L/dk4.err" "already exists" "rcluster restore"; } || { not_ok "$n" "--restore into an existing cluster: exit $RC" "$L/dk4.err"; return; }
    run_rc "$L/dk5" 120 -- down --name rcdt --purge --data-dir "$T_TMP/dk" --yes
    ok "$n"
}

dt_start redis-server 9620 spw --cluster-enabled no || { not_ok "data: source S" "could not start"; finish; }
t_backup
t_backup_refusals
t_restore
t_restore_existing
t_backup_replicas
t_restore_corrupt
t_restore_handmade
t_import
t_import_refusals
t_backup_disk
t_import_partial
t_import_interrupt
t_import_writer
t_valkey
t_import_newer
t_redis8
t_databases
t_up_restore
t_backup_cleanup
finish
