#!/bin/bash
# tests/swarm_rig.sh — a three-host Docker Swarm on one machine, for tests/test_swarm.sh.
#
#   tests/swarm_rig.sh start    three dockerd in network namespaces rcsw1..3 on bridge
#                               rcswbr0 (10.70.0.0/24: the host .1, Swarm nodes .11 .12 .13),
#                               joined into one Swarm (manager rcsw1); the image built into each
#   tests/swarm_rig.sh stop     everything removed: daemons, namespaces, bridge, the FORWARD
#                               rule, /tmp/rcsw (run it also after a failed start)
#   tests/swarm_rig.sh kill N   stop Swarm node N's daemon (a lost host)
#   tests/swarm_rig.sh revive N start it again (it rejoins the Swarm)
#
# Sockets: unix:///tmp/rcsw/rcswN.sock. Facts that shaped it (see issue 11): `ip netns exec`
# remounts /sys and dockerd then fails ("Devices cgroup isn't mounted"), so nsenter --net;
# the host's FORWARD policy drops bridged traffic until the ACCEPT rule; no IPVS here, so
# no ingress routing mesh (rcluster uses dnsrr and host-mode ports anyway). Each dockerd
# keeps --iptables on: its rules live in its own namespace, and without its masquerade a
# node's bus connection to another host's published port gets no answer (formation hangs
# in handshakes). Never touches the host's own dockerd: every call names a rig socket.
set -u
RIG=/tmp/rcsw
BR=rcswbr0
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RCLUSTER=${RCLUSTER:-$TOP/rcluster}
IMAGE=${RCSW_IMAGE:-rcsw-test/redis:local}

sock() { echo "unix://$RIG/rcsw$1.sock"; }
dk() { local n=$1; shift; DOCKER_HOST=$(sock "$n") timeout 60 docker "$@"; }

rig_stop_daemon() { # N
    local pf=$RIG/rcsw$1/pid p
    [ -f "$pf" ] || return 0
    p=$(cat "$pf")
    if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
        kill "$p" 2>/dev/null
        for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$p" 2>/dev/null
    fi
    rm -f "$pf"
}

rig_stop() {
    local n
    for n in 1 2 3; do rig_stop_daemon $n; done
    # containerd shims of the rig's daemons (their exec roots are under $RIG)
    local p
    for p in $(pgrep -f "containerd-shim.*$RIG/" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    for n in 1 2 3; do
        # rig-owned mounts (overlay layers, netns of containers) before the data dirs go
        grep " $RIG/rcsw$n" /proc/mounts | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
        ip netns del "rcsw$n" 2>/dev/null
        ip link del "rcswv$n" 2>/dev/null
    done
    ip link del "$BR" 2>/dev/null
    while iptables -D FORWARD -i "$BR" -o "$BR" -j ACCEPT 2>/dev/null; do :; done
    rm -rf "$RIG"
    return 0
}

rig_start_daemon() { # N
    local n=$1 d=$RIG/rcsw$1
    mkdir -p "$d/data" "$d/exec"
    nsenter --net=/run/netns/rcsw$n setsid dockerd -H "$(sock "$n")" --data-root "$d/data" --exec-root "$d/exec" \
        --pidfile "$d/pid" --bridge=none --storage-driver=overlay2 \
        --containerd-namespace "rcsw$n" --containerd-plugins-namespace "rcsw$n-plugins" \
        </dev/null >"$d/dockerd.log" 2>&1 &
    for _ in $(seq 1 60); do dk "$n" version >/dev/null 2>&1 && return 0; sleep 0.5; done
    echo "swarm_rig: dockerd rcsw$n did not start; tail of $d/dockerd.log:" >&2
    tail -n 20 "$d/dockerd.log" >&2
    return 1
}

rig_start() {
    rig_stop
    mkdir -p "$RIG"
    ip link add "$BR" type bridge || return 1
    ip addr add 10.70.0.1/24 dev "$BR" && ip link set "$BR" up || return 1
    iptables -I FORWARD -i "$BR" -o "$BR" -j ACCEPT || return 1
    local n
    for n in 1 2 3; do
        ip netns add "rcsw$n" || return 1
        ip link add "rcswv$n" type veth peer name eth0 netns "rcsw$n" || return 1
        ip link set "rcswv$n" master "$BR" up || return 1
        ip -n "rcsw$n" addr add "10.70.0.1$n/24" dev eth0 || return 1
        ip -n "rcsw$n" link set eth0 up && ip -n "rcsw$n" link set lo up || return 1
        ip -n "rcsw$n" route add default via 10.70.0.1 || return 1
    done
    for n in 1 2 3; do rig_start_daemon $n || return 1; done
    dk 1 swarm init --advertise-addr 10.70.0.11 --listen-addr 10.70.0.11:2377 >/dev/null || return 1
    local token
    token=$(dk 1 swarm join-token -q worker) || return 1
    for n in 2 3; do
        dk "$n" swarm join --token "$token" --advertise-addr "10.70.0.1$n" --listen-addr "10.70.0.1$n:2377" 10.70.0.11:2377 >/dev/null || return 1
    done
    for n in 1 2 3; do
        DOCKER_HOST=$(sock "$n") "$RCLUSTER" image build --quiet --tag "$IMAGE" >"$RIG/image$n.log" 2>&1 ||
            { echo "swarm_rig: image build on rcsw$n failed:" >&2; cat "$RIG/image$n.log" >&2; return 1; }
    done
    local ready
    for _ in $(seq 1 60); do
        ready=$(dk 1 node ls --format '{{.Status}}' 2>/dev/null | grep -c Ready)
        [ "$ready" = 3 ] && return 0
        sleep 0.5
    done
    echo "swarm_rig: only $ready of 3 Swarm nodes are Ready" >&2
    return 1
}

case "${1:-}" in
start) rig_start ;;
stop) rig_stop ;;
kill) rig_stop_daemon "$2" ;;
revive) rig_start_daemon "$2" ;;
*) echo "usage: $0 start|stop|kill N|revive N" >&2; exit 2 ;;
esac
