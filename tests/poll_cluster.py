#!/usr/bin/env python3
"""poll_cluster.py — wait until a Redis Cluster is fully healthy, polling fast.

usage: poll_cluster.py [--host H] [--interval-ms 20] [--timeout S] [--password P]
                       MASTERS REPLICAS PORT... [-- COMMAND ARGS...]

Healthy means: every node answers, says cluster_state:ok, cluster_slots_ok:16384 and
cluster_known_nodes:len(PORTS); exactly MASTERS masters and REPLICAS replicas by INFO
replication role; every replica has master_link_status:up. Keeps one connection per
node. Prints the milliseconds it waited and the number of polls, and exits 0, or prints what is missing and
exits 1 at the timeout. With "-- COMMAND", runs COMMAND first (stdout/stderr to
the files named by $POLL_OUT / $POLL_ERR, default /dev/null) and prints
"COMMAND_MS TOTAL_MS POLLS", both times measured from just before COMMAND starts, so that the
interpreter's start-up is not counted. Only talks to the given host (default 127.0.0.1).
"""
import os
import socket
import subprocess
import sys
import time


def parse_args(argv):
    opts = {"host": "127.0.0.1", "interval": 20, "timeout": 300.0, "password": None}
    rest = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--host":
            opts["host"] = argv[i + 1]; i += 2
        elif a == "--interval-ms":
            opts["interval"] = int(argv[i + 1]); i += 2
        elif a == "--timeout":
            opts["timeout"] = float(argv[i + 1]); i += 2
        elif a == "--password":
            opts["password"] = argv[i + 1]; i += 2
        else:
            rest.append(a); i += 1
    return opts, int(rest[0]), int(rest[1]), [int(p) for p in rest[2:]]


class Conn:
    def __init__(self, host, port, password):
        self.addr, self.password, self.sock, self.buf = (host, port), password, None, b""

    def _connect(self):
        self.sock = socket.create_connection(self.addr, timeout=2)
        self.buf = b""
        if self.password:
            self._call_raw("AUTH", self.password)

    def _readline(self):
        while b"\r\n" not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                raise OSError("closed")
            self.buf += d
        l, self.buf = self.buf.split(b"\r\n", 1)
        return l

    def _reply(self):
        l = self._readline()
        t, v = l[:1], l[1:]
        if t == b"$":
            n = int(v)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                d = self.sock.recv(65536)
                if not d:
                    raise OSError("closed")
                self.buf += d
            s, self.buf = self.buf[:n], self.buf[n + 2:]
            return s.decode()
        if t == b"-":
            return "ERR:" + v.decode()
        return v.decode()

    def _call_raw(self, *args):
        msg = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in args)
        self.sock.sendall(msg)
        return self._reply()

    def call(self, *args):
        try:
            if self.sock is None:
                self._connect()
            return self._call_raw(*args)
        except (OSError, ValueError):
            if self.sock:
                self.sock.close()
            self.sock = None
            return None


def fields(text):
    out = {}
    for line in (text or "").splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out[k.strip()] = v.strip()
    return out


def state(conns, masters, replicas):
    """Returns None when healthy, else the first problem."""
    roles = {"master": 0, "slave": 0}
    for c in conns:
        ci = fields(c.call("CLUSTER", "INFO"))
        where = "%s:%d" % c.addr
        if ci.get("cluster_state") != "ok":
            return where + " cluster_state=" + str(ci.get("cluster_state"))
        if ci.get("cluster_slots_ok") != "16384":
            return where + " cluster_slots_ok=" + str(ci.get("cluster_slots_ok"))
        if ci.get("cluster_known_nodes") != str(len(conns)):
            return where + " cluster_known_nodes=" + str(ci.get("cluster_known_nodes"))
        ri = fields(c.call("INFO", "replication"))
        role = ri.get("role")
        if role not in roles:
            return where + " role=" + str(role)
        roles[role] += 1
        if role == "slave" and ri.get("master_link_status") != "up":
            return where + " master_link_status=" + str(ri.get("master_link_status"))
    if roles["master"] != masters or roles["slave"] != replicas:
        return "masters/replicas %d/%d" % (roles["master"], roles["slave"])
    return None


def main():
    argv, cmd = sys.argv[1:], None
    if "--" in argv:
        k = argv.index("--")
        argv, cmd = argv[:k], argv[k + 1:]
    opts, masters, replicas, ports = parse_args(argv)
    conns = [Conn(opts["host"], p, opts["password"]) for p in ports]
    t0 = time.monotonic()
    cmd_ms = None
    if cmd:
        with open(os.environ.get("POLL_OUT", os.devnull), "w") as out, \
             open(os.environ.get("POLL_ERR", os.devnull), "w") as err:
            rc = subprocess.call(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        cmd_ms = (time.monotonic() - t0) * 1000
        if rc != 0:
            print("command exited %d after %.0f ms" % (rc, cmd_ms))
            return 1
    polls = 0
    while True:
        why = state(conns, masters, replicas)
        polls += 1
        waited = (time.monotonic() - t0) * 1000
        if why is None:
            print("%d %d %d" % (cmd_ms, waited, polls) if cmd else "%d %d" % (waited, polls))
            return 0
        if waited > opts["timeout"] * 1000:
            print("not healthy after %.0f ms: %s" % (waited, why))
            return 1
        time.sleep(opts["interval"] / 1000.0)


if __name__ == "__main__":
    sys.exit(main())
