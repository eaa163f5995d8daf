#!/bin/bash
# tests/test_create.sh — `rcluster create` and `rcluster check` against real local
# redis-server nodes (127.0.0.1:7000-7099, 7200-7235), judged with redis-cli.
. "$(dirname "$0")/lib.sh"
cd "$T_TMP" || exit 1
L=$T_TMP/log
mkdir -p "$L"

if [ ! -x "$RCLUSTER" ]; then
    not_ok "create: binary" "$RCLUSTER not built"
    finish
fi

# ---- CLI basics --------------------------------------------------------------------

t_cli() {
    local why=""
    run_rc "$L/ver" -- --version
    [ $RC -eq 0 ] || why+="--version exit $RC; "
    grep -qx 'rcluster 0.1.0' "$L/ver.out" || why+="--version does not print 'rcluster 0.1.0'; "
    run_rc "$L/help" -- --help
    [ $RC -eq 0 ] && [ -s "$L/help.out" ] || why+="--help exit $RC or empty stdout; "
    local c
    for c in create check up down status image; do
        run_rc "$L/help-$c" -- "$c" --help
        [ $RC -eq 0 ] && [ -s "$L/help-$c.out" ] || why+="'$c --help' exit $RC or empty stdout; "
    done
    run_rc "$L/nocmd" -- no-such-command
    [ $RC -eq 2 ] || why+="unknown command exit $RC (want 2); "
    run_rc "$L/badopt" -- create --no-such-option 127.0.0.1:7000
    [ $RC -eq 2 ] || why+="unknown option exit $RC (want 2); "
    run_rc "$L/noaddr" -- create --yes
    [ $RC -eq 2 ] || why+="create without addresses exit $RC (want 2); "
    run_rc "$L/badrep" -- create --yes --replicas x 127.0.0.1:7000
    [ $RC -eq 2 ] || why+="--replicas x exit $RC (want 2); "
    if [ -z "$why" ]; then ok "cli: --version, --help, usage errors exit 2"
    else not_ok "cli: --version, --help, usage errors exit 2" "$why" "$L/badrep.err"; fi
}

# ---- successful creates --------------------------------------------------------------

# judge_cluster NAME FIRST COUNT MASTERS REPLICAS [redis-cli auth args...]
judge_cluster() {
    local name=$1 first=$2 n=$3 wm=$4 wr=$5; shift 5
    local why
    # right after create returned: every replica linked, every node ok
    why=$(cluster_ok_all "$first" "$n") || { echo "right after create: $why"; return 1; }
    local r; r=$(roles "$first" "$n")
    [ "$r" = "$wm $wr" ] || { echo "roles masters/replicas = $r, want $wm $wr"; return 1; }
    redis-cli --cluster check "127.0.0.1:$first" "$@" >"$L/$name.check" 2>&1 ||
        { echo "redis-cli --cluster check failed (see tail)"; return 1; }
    grep -q '\[OK\] All 16384 slots covered' "$L/$name.check" ||
        { echo "redis-cli --cluster check: no '[OK] All 16384 slots covered'"; return 1; }
    keys_roundtrip "$first" 100 "$@" >"$L/$name.keys" || { echo "keys: $(head -1 "$L/$name.keys")"; return 1; }
    return 0
}

# json_check FILE MASTERS REPLICAS [SLOTS-OF-MASTERS]: validates --json output of create.
json_check() {
    python3 - "$@" <<'EOF'
import json, sys
f, wm, wr = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
want_slots = sys.argv[4].split() if len(sys.argv) > 4 else None
txt = open(f).read()
try:
    d = json.loads(txt)
except Exception as e:
    sys.exit("stdout is not one JSON object: %s: %r" % (e, txt[:200]))
if d.get("ok") is not True: sys.exit("ok is not true")
if not isinstance(d.get("elapsed_ms"), (int, float)): sys.exit("elapsed_ms missing")
nodes = d.get("nodes")
if not isinstance(nodes, list): sys.exit("nodes is not a list")
ms = [n for n in nodes if n.get("role") == "master"]
rs = [n for n in nodes if n.get("role") == "replica"]
if len(ms) != wm or len(rs) != wr: sys.exit("masters/replicas %d/%d, want %d/%d" % (len(ms), len(rs), wm, wr))
ids = {n.get("id") for n in ms}
for n in nodes:
    if not isinstance(n.get("id"), str) or len(n["id"]) != 40: sys.exit("bad id in %r" % n)
    if not isinstance(n.get("addr"), str) or not n["addr"].startswith("127.0.0.1:"): sys.exit("bad addr in %r" % n)
for n in ms:
    if n.get("master", None) is not None: sys.exit("master has non-null master: %r" % n)
    if not isinstance(n.get("slots"), str) or not n["slots"]: sys.exit("master without slots string: %r" % n)
for n in rs:
    if n.get("master") not in ids: sys.exit("replica's master is not one of the masters: %r" % n)
covered = set()
for n in ms:
    for part in n["slots"].split(","):
        a, _, b = part.strip().partition("-")
        b = b or a
        covered.update(range(int(a), int(b) + 1))
if covered != set(range(16384)): sys.exit("slots in JSON do not cover 0-16383 exactly")
if want_slots and sorted(n["slots"] for n in ms) != sorted(want_slots):
    sys.exit("slots %r, want %r" % (sorted(n["slots"] for n in ms), want_slots))
EOF
}

t_create_3() {
    local name="create: 3 masters, --replicas 0, --json, redis-cli slot split"
    start_nodes 7000 3 || { not_ok "$name" "could not start nodes"; return; }
    run_rc "$L/c3" 60 -- create --replicas 0 --yes --json $(addrs 7000 3)
    local why
    if [ $RC -ne 0 ]; then not_ok "$name" "exit $RC" "$L/c3.err" "$L/c3.out"
    elif ! why=$(json_check "$L/c3.out" 3 0 "0-5460 5461-10922 10923-16383" 2>&1); then not_ok "$name" "json: $why" "$L/c3.out"
    elif ! why=$(judge_cluster c3 7000 3 3 0); then not_ok "$name" "$why" "$L/c3.err" "$L/c3.check"
    else ok "$name"; fi
    kill_all_nodes
}

t_create_6() {
    local name="create: 6 nodes --replicas 1 judged by redis-cli"
    start_nodes 7000 6 || { not_ok "$name" "could not start nodes"; return; }
    run_rc "$L/c6" 60 -- create --replicas 1 --yes $(addrs 7000 6)
    local why
    if [ $RC -ne 0 ]; then not_ok "$name" "exit $RC" "$L/c6.err" "$L/c6.out"
    elif ! why=$(judge_cluster c6 7000 6 3 3); then not_ok "$name" "$why" "$L/c6.err" "$L/c6.check"
    elif ! grep -q '127.0.0.1:7000' "$L/c6.out"; then not_ok "$name" "stdout has no node table" "$L/c6.out"
    else ok "$name"; fi
    # the same cluster is used for the check tests
    t_check_healthy
    t_check_open_slot
    t_check_dead_master
    kill_all_nodes
}

t_check_open_slot() {
    local name="check: an open slot is an [ERR] naming the slot, its node and its target (exit 3); closed, healthy again"
    local ms=() p why=""
    for p in 7000 7001 7002 7003 7004 7005; do [ "$(rcli $p role | head -1)" = master ] && ms+=("$p"); done
    [ ${#ms[@]} -ge 2 ] || { not_ok "$name" "fewer than 2 masters"; return; }
    local slot id1
    slot=$(rcli "${ms[0]}" cluster nodes | grep myself | awk '{print $9}' | cut -d- -f1)
    id1=$(rcli "${ms[1]}" cluster myid)
    rcli "${ms[0]}" cluster setslot "$slot" migrating "$id1" >/dev/null
    run_rc "$L/chko" 30 -- check 127.0.0.1:7000
    [ $RC -eq 3 ] || why+="exit $RC with an open slot (want 3); "
    grep -q "^\[ERR\] slot $slot is open on 127.0.0.1:${ms[0]}: migrating to 127.0.0.1:${ms[1]}" "$L/chko.out" ||
        why+="no [ERR] line for slot $slot migrating from ${ms[0]} to ${ms[1]}; "
    rcli "${ms[0]}" cluster setslot "$slot" stable >/dev/null
    run_rc "$L/chkc" 30 -- check 127.0.0.1:7000
    [ $RC -eq 0 ] || why+="exit $RC once the slot is closed (want 0); "
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/chko.out" "$L/chko.err" "$L/chkc.err"; fi
}

t_check_healthy() {
    local name="check: healthy cluster exit 0, --json healthy:true"
    local why=""
    run_rc "$L/chk" 30 -- check 127.0.0.1:7003
    [ $RC -eq 0 ] || why+="exit $RC; "
    grep -qi '\[OK\]\|healthy' "$L/chk.out" || why+="no [OK]/healthy on stdout; "
    run_rc "$L/chkj" 30 -- check --json 127.0.0.1:7000
    [ $RC -eq 0 ] || why+="--json exit $RC; "
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d.get("healthy") is True else 1)' "$L/chkj.out" 2>/dev/null ||
        why+="--json has no \"healthy\":true; "
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/chk.err" "$L/chk.out" "$L/chkj.out"; fi
    # redis-cli's command line as it is, rcluster for redis-cli: options before --cluster COMMAND
    run_rc "$L/chkrc" 30 -- --json --cluster check 127.0.0.1 7003 --cluster-search-multiple-owners
    if [ $RC -eq 0 ] && python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1])).get("healthy") is True else 1)' "$L/chkrc.out" 2>/dev/null
    then ok "check: a redis-cli command line as it is (--json --cluster check HOST PORT)"
    else not_ok "check: a redis-cli command line as it is (--json --cluster check HOST PORT)" "exit $RC" "$L/chkrc.err" "$L/chkrc.out"; fi
    # formation settings left on a node (a restore that failed) are warned about
    name="check: warns about a node that still carries the formation settings, and about differing timeouts"
    why=""
    local tmo nf dd
    tmo=$(rcli 7004 config get cluster-node-timeout | tail -1); nf=$(rcli 7004 config get cluster-replica-no-failover | tail -1)
    dd=$(rcli 7004 config get repl-diskless-sync-delay | tail -1)
    rcli 7004 config set cluster-node-timeout 15000 >/dev/null; rcli 7004 config set cluster-replica-no-failover yes >/dev/null
    run_rc "$L/chkf0" 30 -- check 127.0.0.1:7000   # a user's own choice: no formation warning
    rcli 7004 config set repl-diskless-sync-delay 0 >/dev/null
    run_rc "$L/chkf" 30 -- check 127.0.0.1:7000
    rcli 7004 config set cluster-node-timeout "$tmo" >/dev/null; rcli 7004 config set cluster-replica-no-failover "$nf" >/dev/null
    rcli 7004 config set repl-diskless-sync-delay "$dd" >/dev/null
    contains "$L/chkf.err" "127.0.0.1:7004 still carries rcluster's formation settings (cluster-node-timeout 15000" || why+="no formation-settings warning; "
    ! grep -q "formation settings" "$L/chkf0.err" || why+="warned about a node with the user's own repl-diskless-sync-delay; "
    contains "$L/chkf.err" "disagree on cluster-node-timeout" || why+="no node-timeout warning; "
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/chkf.err"; fi
}

t_check_dead_master() {
    local name="check: master killed (before failover) exit 3; dead node itself exit 1"
    local mport
    mport=$(for p in 7000 7001 7002 7003 7004 7005; do [ "$(rcli $p role | head -1)" = master ] && { echo $p; break; }; done)
    [ -n "$mport" ] || { not_ok "$name" "no master found"; return; }
    kill_node "$mport"
    local other=7000; [ "$mport" = 7000 ] && other=7001
    local why=""
    run_rc "$L/chkd" 30 -- check 127.0.0.1:$other
    [ $RC -eq 3 ] || why+="check via live node exit $RC (want 3); "
    run_rc "$L/chkdj" 30 -- check --json 127.0.0.1:$other
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d.get("healthy") is False else 1)' "$L/chkdj.out" 2>/dev/null ||
        why+="--json has no \"healthy\":false; "
    run_rc "$L/chku" 30 -- check 127.0.0.1:$mport
    [ $RC -eq 1 ] || why+="check of the dead node exit $RC (want 1); "
    contains "$L/chku.err" "127.0.0.1:$mport" || why+="unreachable message does not name 127.0.0.1:$mport; "
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/chkd.err" "$L/chkd.out" "$L/chku.err"; fi
}

t_create_9() {
    local name="create: 9 nodes --replicas 2 judged by redis-cli"
    start_nodes 7010 9 || { not_ok "$name" "could not start nodes"; return; }
    run_rc "$L/c9" 90 -- create --replicas 2 --yes --json $(addrs 7010 9)
    local why
    if [ $RC -ne 0 ]; then not_ok "$name" "exit $RC" "$L/c9.err" "$L/c9.out"
    elif ! why=$(json_check "$L/c9.out" 3 6 2>&1); then not_ok "$name" "json: $why" "$L/c9.out"
    elif ! why=$(judge_cluster c9 7010 9 3 6); then not_ok "$name" "$why" "$L/c9.err" "$L/c9.check"
    else ok "$name"; fi
    kill_all_nodes
}

t_create_password() {
    local name="create: --password and --password-file on requirepass nodes"
    local p
    for p in 7020 7021 7022 7023 7024 7025; do NODE_AUTH[$p]="--no-auth-warning -a pw"; done
    start_nodes 7020 6 --requirepass pw --masterauth pw || { not_ok "$name" "could not start nodes"; return; }
    run_rc "$L/cpw" 60 -- create --replicas 1 --yes --password pw $(addrs 7020 6)
    local why=""
    if [ $RC -ne 0 ]; then not_ok "$name" "--password: exit $RC" "$L/cpw.err" "$L/cpw.out"; kill_all_nodes; return; fi
    if ! why=$(judge_cluster cpw 7020 6 3 3 --no-auth-warning -a pw); then not_ok "$name" "--password: $why" "$L/cpw.err" "$L/cpw.check"; kill_all_nodes; return; fi
    run_rc "$L/cpwchk" 30 -- check --password pw 127.0.0.1:7020
    if [ $RC -ne 0 ]; then not_ok "$name" "check --password exit $RC" "$L/cpwchk.err"; kill_all_nodes; return; fi
    # redis-cli's spelling -a, after the address, and `--` ending the options
    run_rc "$L/cpwa" 30 -- check 127.0.0.1:7020 -a pw
    if [ $RC -ne 0 ]; then not_ok "$name" "check ADDR -a pw exit $RC" "$L/cpwa.err"; kill_all_nodes; return; fi
    run_rc "$L/cpwdd" 30 -- check -a pw -- 127.0.0.1:7020
    if [ $RC -ne 0 ]; then not_ok "$name" "check -a pw -- ADDR exit $RC" "$L/cpwdd.err"; kill_all_nodes; return; fi
    # a day-2 command with -a after its positional arguments (its value is not an argument)
    run_rc "$L/cpwi" 30 -- info 127.0.0.1:7020 -a pw
    if [ $RC -ne 0 ]; then not_ok "$name" "info ADDR -a pw exit $RC" "$L/cpwi.err"; kill_all_nodes; return; fi
    kill_all_nodes
    for p in 7020 7021 7022 7023 7024 7025; do NODE_AUTH[$p]="--no-auth-warning -a s3cret"; done
    start_nodes 7020 6 --requirepass s3cret --masterauth s3cret || { not_ok "$name" "could not start nodes"; return; }
    printf 's3cret\n' >"$T_TMP/pwfile"; chmod 600 "$T_TMP/pwfile"
    run_rc "$L/cpwf" 60 -- create --replicas 1 --yes --password-file "$T_TMP/pwfile" $(addrs 7020 6)
    if [ $RC -ne 0 ]; then not_ok "$name" "--password-file: exit $RC" "$L/cpwf.err" "$L/cpwf.out"
    elif ! why=$(judge_cluster cpwf 7020 6 3 3 --no-auth-warning -a s3cret); then not_ok "$name" "--password-file: $why" "$L/cpwf.err" "$L/cpwf.check"
    elif grep -q s3cret "$L/cpwf.out" "$L/cpwf.err"; then not_ok "$name" "the password appears in create's output" "$L/cpwf.err"
    else ok "$name"; fi
    kill_all_nodes
}

t_create_acl_user() {
    local name="create: --user/--password with an ACL user (default user off)"
    local p
    for p in 7030 7031 7032 7033 7034 7035; do NODE_AUTH[$p]="--no-auth-warning --user admin --pass apw"; done
    start_nodes 7030 6 --user admin on '>apw' '~*' '&*' '+@all' --user default off \
        --masteruser admin --masterauth apw || { not_ok "$name" "could not start nodes"; return; }
    run_rc "$L/cacl" 60 -- create --replicas 1 --yes --user admin --password apw $(addrs 7030 6)
    local why
    if [ $RC -ne 0 ]; then not_ok "$name" "exit $RC" "$L/cacl.err" "$L/cacl.out"
    elif ! why=$(judge_cluster cacl 7030 6 3 3 --no-auth-warning --user admin --pass apw); then not_ok "$name" "$why" "$L/cacl.err" "$L/cacl.check"
    else ok "$name"; fi
    kill_all_nodes
}

# ---- refusals: exit 1, message, and not one node changed --------------------------------

# refused NAME FIRST COUNT "SUBSTR1|SUBSTR2" -- ARGS...: runs create, demands exit 1 (WANT_RC),
# every |-separated substring in stderr (case-insensitive), and an unchanged snapshot.
refused() {
    local name=$1 first=$2 n=$3 subs=$4; shift 5
    local before after tag=ref$RANDOM
    before=$(snapshot "$first" "$n")
    run_rc "$L/$tag" 60 -- "$@"
    after=$(snapshot "$first" "$n")
    local IFS='|'; local -a want=($subs); unset IFS
    verdict "$name" "$(refusal_why "$L/$tag" "${WANT_RC:-1}" "$before" "$after" "${want[@]}")" "$L/$tag.err" "$L/$tag.out"
    if [ "$before" != "$after" ]; then reset_nodes "$first" "$n"; fi
}

# reset_nodes FIRST COUNT: after a refusal that wrongly changed nodes, make them empty
# and alone again so that the next test starts from a clean state.
reset_nodes() {
    local p round
    for round in 1 2; do
        for ((p = $1; p < $1 + $2; p++)); do
            rcli "$p" flushall >/dev/null; rcli "$p" cluster reset hard >/dev/null
        done
    done
}

t_refusals() {
    start_nodes 7040 6 || { not_ok "create refusals" "could not start nodes"; return; }
    local all; all=$(addrs 7040 6)
    refused "create: no TTY and no --yes refused" 7040 6 "--yes" -- create --replicas 1 $all
    refused "create: too few nodes (5 for 3x1) refused" 7040 6 "at least" -- create --replicas 1 --yes $(addrs 7040 5)
    refused "create: too few masters (2) refused" 7040 6 "at least" -- create --replicas 0 --yes $(addrs 7040 2)
    refused "create: duplicate address refused" 7040 6 "twice|127.0.0.1:7040" -- create --replicas 0 --yes 127.0.0.1:7040 127.0.0.1:7041 127.0.0.1:7042 127.0.0.1:7040
    WANT_RC=2 refused "create: invalid address (no port) refused (exit 2: bad input)" 7040 6 "invalid address" -- create --replicas 0 --yes 127.0.0.1:7040 127.0.0.1:7041 127.0.0.1
    WANT_RC=2 refused "create: invalid address (port 99999) refused (exit 2: bad input)" 7040 6 "invalid address" -- create --replicas 0 --yes 127.0.0.1:7040 127.0.0.1:7041 127.0.0.1:99999
    WANT_RC=2 refused "create: invalid address (junk) refused (exit 2: bad input)" 7040 6 "invalid address" -- create --replicas 0 --yes 127.0.0.1:7040 127.0.0.1:7041 foo:bar
    refused "create: unreachable node refused, names it" 7040 6 "127.0.0.1:7099|refused" -- create --replicas 1 --yes $(addrs 7040 5) 127.0.0.1:7099

    # non-empty node
    kill_node 7045
    start_node 7045 --enable-debug-command local || true
    rcli 7045 debug populate 10 >/dev/null
    refused "create: non-empty node refused" 7040 6 "not empty|127.0.0.1:7045" -- create --replicas 1 --yes $all
    kill_node 7045

    # node without cluster mode
    start_node 7045 --cluster-enabled no || true
    refused "create: node without cluster mode refused" 7040 6 "cluster mode|127.0.0.1:7045" -- create --replicas 1 --yes $all
    kill_node 7045

    # node that already knows others (7045 met 7046, 7047 outside the set)
    start_node 7045 && start_nodes 7046 2 || true
    # distinct config epochs first, so that no epoch-collision bumps happen while we look
    rcli 7045 cluster set-config-epoch 1 >/dev/null; rcli 7046 cluster set-config-epoch 2 >/dev/null
    rcli 7047 cluster set-config-epoch 3 >/dev/null
    rcli 7045 cluster meet 127.0.0.1 7046 >/dev/null; rcli 7045 cluster meet 127.0.0.1 7047 >/dev/null
    wait_for 10 bash -c 'for p in 7045 7046 7047; do [ $(redis-cli -p $p cluster nodes | grep -c connected) -eq 3 ] &&
        redis-cli -p $p cluster info | grep -q "^cluster_current_epoch:3" || exit 1; done'
    refused "create: node that already knows other nodes refused" 7040 6 "already|127.0.0.1:7045" -- create --replicas 1 --yes $all
    kill_all_nodes

    # wrong password
    local p
    for p in 7040 7041 7042; do NODE_AUTH[$p]="--no-auth-warning -a pw"; done
    start_nodes 7040 3 --requirepass pw --masterauth pw || true
    refused "create: wrong password refused with the node's AUTH error" 7040 3 "AUTH" -- create --replicas 0 --yes --password wrong $(addrs 7040 3)
    refused "create: missing password refused" 7040 3 "127.0.0.1:704|auth" -- create --replicas 0 --yes $(addrs 7040 3)
    kill_all_nodes
}

# ---- a node dies while create runs ----------------------------------------------------

t_node_dies() {
    local name="create: node killed during create -> non-zero exit within --timeout+5s"
    start_nodes 7050 6 || { not_ok "$name" "could not start nodes"; return; }
    local t0=$(date +%s%N)
    timeout -k 5 60 "$RCLUSTER" create --replicas 1 --yes --timeout 10 $(addrs 7050 6) \
        </dev/null >"$L/die.out" 2>"$L/die.err" &
    local cpid=$!
    sleep 0.3
    kill_node 7055
    wait $cpid; RC=$?
    local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    local why=""
    [ $RC -ne 0 ] || why+="create exited 0 although 127.0.0.1:7055 was killed ${ms}ms in; "
    [ $ms -le 15000 ] || why+="took ${ms}ms (limit 15000); "
    crashed "$L/die.err" && why+="crashed (exit $RC); "
    if [ $RC -ne 0 ] && ! contains "$L/die.err" "7055" && ! contains "$L/die.err" "bus port"; then
        why+="stderr names neither 127.0.0.1:7055 nor 'bus port'; "
    fi
    if [ -z "$why" ]; then ok "$name (exit $RC after ${ms}ms)"; else not_ok "$name" "$why" "$L/die.err"; fi
    kill_all_nodes
}

# ---- check on clusters built by hand --------------------------------------------------

t_check_broken() {
    local name="check: cluster with uncovered slots (built with redis-cli) exit 3"
    start_nodes 7060 3 || { not_ok "$name" "could not start nodes"; return; }
    rcli 7060 cluster addslotsrange 0 5460 >/dev/null
    rcli 7061 cluster addslotsrange 5461 10922 >/dev/null
    rcli 7060 cluster meet 127.0.0.1 7061 >/dev/null
    rcli 7060 cluster meet 127.0.0.1 7062 >/dev/null
    wait_for 10 bash -c 'for p in 7060 7061 7062; do [ $(redis-cli -p $p cluster nodes | grep -c connected) -eq 3 ] || exit 1; done'
    local why=""
    run_rc "$L/brk" 30 -- check 127.0.0.1:7062
    [ $RC -eq 3 ] || why+="exit $RC (want 3); "
    run_rc "$L/brkj" 30 -- check --json 127.0.0.1:7060
    [ $RC -eq 3 ] || why+="--json exit $RC (want 3); "
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d.get("healthy") is False else 1)' "$L/brkj.out" 2>/dev/null ||
        why+="--json has no \"healthy\":false; "
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/brk.err" "$L/brk.out" "$L/brkj.out"; fi
    kill_all_nodes
}

t_check_unreachable() {
    local name="check: unreachable node exit 1 with address and 'refused'"
    run_rc "$L/chkx" 30 -- check 127.0.0.1:7098
    local why=""
    [ $RC -eq 1 ] || why+="exit $RC (want 1); "
    contains "$L/chkx.err" "127.0.0.1:7098" "refused" || why+="stderr lacks address/refused; "
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/chkx.err"; fi
}

# redis-cli's own command line: options after the addresses, and its spellings.
t_cli_spellings() {
    local name args
    for args in "--replicas 1 --yes" "--cluster-replicas 1 --cluster-yes"; do
        name="create ADDRS $args (options after the addresses) forms a healthy cluster"
        start_nodes 7076 6 || { not_ok "$name" "could not start nodes"; return; }
        # shellcheck disable=SC2086
        run_rc "$L/spell" 60 -- create $(addrs 7076 6) $args
        local why=""
        [ $RC -eq 0 ] || why+="exit $RC; "
        [ -z "$why" ] && why=$(cluster_ok_all 7076 6)
        [ "$(roles 7076 6)" = "3 3" ] || why+="roles $(roles 7076 6), want 3 3; "
        if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/spell.err"; fi
        kill_all_nodes
    done
}

# CONFIG GET of the settings formation changes, one line per node.
formation_settings() { # FIRST COUNT
    local p
    for ((p = $1; p < $1 + $2; p++)); do
        echo "$p $(rcli $p config get cluster-node-timeout | tail -1) $(rcli $p config get hz | tail -1)" \
             "$(rcli $p config get repl-diskless-sync-delay | tail -1) $(rcli $p config get repl-diskless-sync | tail -1) $(rcli $p config get cluster-replica-no-failover | tail -1)"
    done
}

# SIGINT/SIGTERM at several points of a formation that cannot finish (the nodes refuse
# PSYNC/SYNC, so no replica ever links): exit 130, every node back to its original settings
# (CONFIG GET), every node standalone and empty again.
t_interrupt() {
    local d sig
    for d in 0.05 0.3 1.5; do
        for sig in INT TERM; do
            [ $sig = TERM ] && [ $d != 1.5 ] && continue
            local name="create: SIG$sig ${d}s into the run restores every node's settings and rolls back"
            start_nodes 7086 6 --rename-command PSYNC '' --rename-command SYNC '' || { not_ok "$name" "could not start nodes"; return; }
            local before after why=""
            before=$(formation_settings 7086 6)
            "$RCLUSTER" create --replicas 1 --yes --timeout 30 $(addrs 7086 6) </dev/null >"$L/int.out" 2>"$L/int.err" &
            local pid=$!
            # from its first progress line: before it, the handler may not be installed
            # yet (a background job starts with SIGINT ignored), which no user sees
            wait_for 10 grep -q Checking "$L/int.err"
            sleep $d
            kill -$sig $pid
            timeout 20 tail --pid=$pid -f /dev/null; wait $pid; RC=$?
            after=$(formation_settings 7086 6)
            [ $RC -eq 130 ] || why+="exit $RC (want 130); "
            [ "$before" = "$after" ] || why+="settings differ: $(diff <(echo "$before") <(echo "$after") | grep '^>' | head -1); "
            local p; for ((p = 7086; p < 7092; p++)); do
                [ "$(rcli $p cluster info | tr -d '\r' | sed -n 's/^cluster_known_nodes://p')" = 1 ] || { why+="127.0.0.1:$p still knows other nodes; "; break; }
            done
            grep -q 'Sanitizer\|runtime error:' "$L/int.err" && why+="sanitizer report; "
            if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/int.err"; fi
            kill_all_nodes
        done
    done
    # The second press must land while cleanup still runs: node 1 is frozen (SIGSTOP),
    # so restoring its settings waits for it.
    local name="create: a second Ctrl-C during cleanup quits at once and says what is left as it is"
    start_nodes 7086 6 --rename-command PSYNC '' --rename-command SYNC '' || { not_ok "$name" "could not start nodes"; return; }
    "$RCLUSTER" create --replicas 1 --yes --timeout 30 $(addrs 7086 6) </dev/null >"$L/int2.out" 2>"$L/int2.err" &
    local pid=$! t0
    sleep 1.5
    kill -STOP "${NODE_PID[7086]}"
    t0=$(date +%s%N)
    kill -INT $pid; sleep 0.5; kill -INT $pid
    timeout 20 tail --pid=$pid -f /dev/null; wait $pid; RC=$?
    local why="" ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    kill -CONT "${NODE_PID[7086]}"
    [ $RC -eq 130 ] || why+="exit $RC (want 130); "
    contains "$L/int2.err" "interrupted again" "left as it is" "formation settings" || why+="stderr does not say what is left; "
    [ $ms -lt 2500 ] || why+="took ${ms} ms; "
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/int2.err"; fi
    kill_all_nodes
}

# ---- a host with too few cores for its nodes -----------------------------------------
# Pinned to one core, rcluster sees 36 local nodes as too many for the fastest settings
# (over 32 a core): it starts at the quiet level (cluster-node-timeout 15000, hz left
# alone), has the nodes MEET those with stale news of them, forms the planned layout
# without a failover, and gives the nodes their own settings back.
t_create_few_cores() {
    local name="create: 36 nodes on one core: quiet formation level, planned layout, settings restored"
    command -v taskset >/dev/null || { skip "$name" "no taskset"; return; }
    start_nodes 7200 36 || { not_ok "$name" "could not start nodes"; kill_all_nodes; return; }
    timeout -k 5 200 taskset -c 0 "$RCLUSTER" create --replicas 1 --yes --timeout 180 $(addrs 7200 36) \
        </dev/null >"$L/fc.out" 2>"$L/fc.err"
    local rc=$? why="" p
    if [ $rc -ne 0 ]; then why="exit $rc"
    elif ! grep -q 'formation level 3 of 3, as 36 nodes on this host.s 1 core' "$L/fc.err"; then why="stderr does not say it started at the quiet level for 36 nodes on 1 core"
    elif ! why=$(judge_cluster fc 7200 36 18 18); then :
    else
        for ((p = 7200; p < 7236; p++)); do
            [ $p -lt 7218 ] && [ "$(rcli $p role | head -1)" != master ] && { why="planned master $p is not a master: a failover while forming"; break; }
            [ "$(rcli $p config get cluster-node-timeout | tail -1)" = 5000 ] || { why="$p: cluster-node-timeout not restored to 5000"; break; }
            [ "$(rcli $p config get cluster-replica-no-failover | tail -1)" = no ] || { why="$p: cluster-replica-no-failover not restored"; break; }
        done
    fi
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$L/fc.err"; fi
    kill_all_nodes
}

t_cli
t_cli_spellings
t_interrupt
t_create_3
t_create_6
t_create_9
t_create_password
t_create_acl_user
t_refusals
t_node_dies
t_check_broken
t_create_few_cores
t_check_unreachable
finish
