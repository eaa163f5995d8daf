#!/bin/bash
# tests/test_safety.sh — bad input of any kind gets a clear error and changes nothing:
# names, --config directives and data dirs that could escape their place, and secrets
# that must never reach output. Needs no daemon: every case must be refused before rcluster
# talks to one (DOCKER_HOST points at a socket that does not exist, and nothing may be
# created on disk).
source "$(dirname "$0")/lib.sh"
export DOCKER_HOST=unix://$T_TMP/no-daemon.sock
D=$T_TMP/data

refused() { # NAME EXPECTED-SUBSTRING ARGS...
    local name=$1 want=$2; shift 2
    run_rc "$T_TMP/r" 20 -- "$@"
    local after=absent; [ -e "$D" ] && after="created $D"
    verdict "safety: $name" "$(refusal_why "$T_TMP/r" "1 2" absent "$after" "$want")" "$T_TMP/r.err"
    rm -rf "$D"
}

refused "--name with a path"          "--name"   up --name ../evil --data-dir "$D" --yes
refused "--name with a slash"         "--name"   up --name a/b --data-dir "$D" --yes
refused "--name starting with a dot"  "--name"   up --name .hidden --data-dir "$D" --yes
refused "--config include"            "include"  up --config 'include /etc/passwd' --data-dir "$D" --yes
refused "--config port (owned)"       "port"     up --config 'port 7000' --data-dir "$D" --yes
refused "--config dir (owned)"        "dir"      up --config 'dir /' --data-dir "$D" --yes
refused "--config cluster-enabled"    "cluster-enabled" up --config 'cluster-enabled no' --data-dir "$D" --yes
refused "--config with a newline"     "single line" up --config "$(printf 'maxmemory 1mb\nport 1')" --data-dir "$D" --yes
refused "--config without a value"    "--config" up --config 'maxmemory' --data-dir "$D" --yes
refused "--data-dir relative"         "absolute" up --data-dir relative/dir --yes
refused "--subnet /33"                "subnet"   up --subnet 10.1.2.0/33 --data-dir "$D" --yes
refused "--subnet garbage"            "subnet"   up --subnet foo --data-dir "$D" --yes
refused "--port too high for bus"     "port"     up --port 60000 --data-dir "$D" --yes
refused "--nodes too few"             "nodes"    up --nodes 2 --data-dir "$D" --yes
refused "--replicas not a number"     "replicas" create --replicas x 127.0.0.1:1
refused "unknown option"              "unknown"  create --frobnicate 127.0.0.1:1
DOCKER_HOST=ssh://x refused "DOCKER_HOST ssh" "not supported" up --data-dir "$D" --yes

# A password given on the command line never shows in output or errors, also when the
# nodes really ask for one: AUTH is sent and refused (the nodes want another password),
# so the error path that quotes the node's answer is the one exercised.
pw='Sekr1t-rc-77'
start_nodes 7094 3 --requirepass other-pw || not_ok "safety: start password nodes" "redis-server did not start"
run_rc "$T_TMP/pw" 20 -- create --yes --replicas 0 --password "$pw" $(addrs 7094 3)
why=""
[ $RC -eq 1 ] || why+="exit $RC (want 1); "
contains "$T_TMP/pw.err" "AUTH" || why+="error does not show that AUTH was refused; "
grep -q "$pw" "$T_TMP/pw.out" "$T_TMP/pw.err" && why+="password printed; "
if [ -z "$why" ]; then ok "safety: password not in create errors after a refused AUTH"; else not_ok "safety: password not in create errors after a refused AUTH" "$why" "$T_TMP/pw.err"; fi
echo "$pw" >"$T_TMP/pwfile"
run_rc "$T_TMP/pwf" 20 -- create --yes --replicas 0 --password-file "$T_TMP/pwfile" $(addrs 7094 3)
why=""
[ $RC -eq 1 ] || why+="exit $RC (want 1); "
contains "$T_TMP/pwf.err" "AUTH" || why+="error does not show that AUTH was refused; "
grep -q "$pw" "$T_TMP/pwf.out" "$T_TMP/pwf.err" && why+="password printed; "
if [ -z "$why" ]; then ok "safety: --password-file not echoed after a refused AUTH"; else not_ok "safety: --password-file not echoed after a refused AUTH" "$why" "$T_TMP/pwf.err"; fi
kill_all_nodes
finish
