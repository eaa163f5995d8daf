#!/bin/bash
# tests/test_newuser.sh — rcluster as a new user finds it (issue 21): redis-cli command
# lines as they are, any address that reaches a node names it, del-node then add-node of
# the same node, advice that costs no data, output that stays readable, README's captured
# blocks against a real run. Local redis-server nodes on 127.0.0.1 ports 9500-9599 (bus
# +10000); nothing of Docker.
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

id_of() { rcli "$1" cluster myid; }

# ---- 1. any address that reaches a node names it -----------------------------------
t_address_names_node() {
    local n="an address that reaches a node names it (--from/--to/--weight/del-node)"
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

start_all() {
    if ! nu_cluster 9500 3; then not_ok "newuser: cluster on 9500-9502" "could not form"; return 1; fi
}

start_all || finish
t_address_names_node
finish
