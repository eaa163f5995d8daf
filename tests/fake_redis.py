#!/usr/bin/env python3
"""fake_redis.py — a misbehaving Redis node on 127.0.0.1:PORT for fault tests.

usage: fake_redis.py PORT SCENARIO [ARG]

  normal         an empty cluster-enabled node, just enough to pass create's preflight
                 (PING, AUTH, INFO, CLUSTER INFO/NODES/MYID/SLOTS, DBSIZE, CONFIG GET);
                 cluster-changing commands answer +OK but nothing ever converges
  error_on CMD   like normal, but answers "-ERR fake failure on CMD" to CMD, which is a
                 CLUSTER subcommand (MEET, ADDSLOTSRANGE, ...) or a command (INFO, ...)
  garbage        answers every command with bytes that are not RESP
  wrong_type     answers ":1" (an integer) to everything
  stall          accepts connections and reads, never answers
  drop_after N   like normal, but closes each connection after N replies
  huge_bulk      answers "$1000000000" and a few bytes, then hangs
  config_set_once  like normal, but CONFIG SET of a setting works once; setting it
                 again (restoring it) answers "-ERR fake refuses ..."

FAKE_REDIS_VERSION in the environment sets the redis_version INFO reports (default
7.0.15; below 7 rcluster assigns slots with ADDSLOTS instead of ADDSLOTSRANGE).

Prints "listening" on stdout once the port accepts connections. Stops by itself after
300 s (tests kill it long before). Only ever binds 127.0.0.1.
"""
import os
import socket
import socketserver
import sys
import threading
import time

PORT = int(sys.argv[1])
SCENARIO = sys.argv[2] if len(sys.argv) > 2 else "normal"
ARG = sys.argv[3] if len(sys.argv) > 3 else ""
NODE_ID = ("fa4e" + "%04d" % PORT + "0" * 40)[:40]


def bulk(s):
    b = s.encode() if isinstance(s, str) else s
    return b"$%d\r\n%s\r\n" % (len(b), b)


def arr(items):
    return b"*%d\r\n" % len(items) + b"".join(bulk(i) for i in items)


VERSION = os.environ.get("FAKE_REDIS_VERSION", "7.0.15")
CONFIG_SET_SEEN = set()
CONFIG_SET_LOCK = threading.Lock()


def info_text():
    return ("# Server\r\nredis_version:%s\r\nredis_mode:cluster\r\ntcp_port:%d\r\n"
            "\r\n# Replication\r\nrole:master\r\nconnected_slaves:0\r\n"
            "\r\n# Cluster\r\ncluster_enabled:1\r\n\r\n# Keyspace\r\n" % (VERSION, PORT))


def cluster_info():
    return ("cluster_state:fail\r\ncluster_slots_assigned:0\r\ncluster_slots_ok:0\r\n"
            "cluster_slots_pfail:0\r\ncluster_slots_fail:0\r\ncluster_known_nodes:1\r\n"
            "cluster_size:0\r\ncluster_current_epoch:0\r\ncluster_my_epoch:0\r\n")


def normal_reply(args):
    cmd = args[0].upper() if args else b""
    sub = args[1].upper() if len(args) > 1 else b""
    if ARG and SCENARIO == "error_on":
        want = ARG.upper().encode()
        if cmd == want or (cmd == b"CLUSTER" and sub == want):
            return b"-ERR fake failure on %s\r\n" % want
    if cmd == b"PING":
        return b"+PONG\r\n"
    if cmd in (b"AUTH", b"SELECT", b"READONLY"):
        return b"+OK\r\n"
    if cmd == b"CLIENT":
        return b"+OK\r\n"
    if cmd == b"INFO":
        return bulk(info_text())
    if cmd == b"DBSIZE":
        return b":0\r\n"
    if cmd == b"CONFIG":
        if sub == b"GET" and len(args) > 2:
            name = args[2].decode(errors="replace").lower()
            vals = {"cluster-enabled": "yes", "cluster-node-timeout": "5000",
                    "port": str(PORT), "cluster-port": "0", "requirepass": "",
                    "masterauth": "", "appendonly": "no"}
            if name in vals:
                return arr([name, vals[name]])
            return b"*0\r\n"
        if sub == b"SET" and SCENARIO == "config_set_once" and len(args) > 2:
            with CONFIG_SET_LOCK:
                again = args[2].lower() in CONFIG_SET_SEEN
                CONFIG_SET_SEEN.add(args[2].lower())
            if again:
                return b"-ERR fake refuses to set %s again\r\n" % args[2]
        return b"+OK\r\n"
    if cmd == b"CLUSTER":
        if sub == b"INFO":
            return bulk(cluster_info())
        if sub == b"NODES":
            return bulk("%s 127.0.0.1:%d@%d myself,master - 0 0 0 connected\n"
                        % (NODE_ID, PORT, PORT + 10000))
        if sub == b"MYID":
            return bulk(NODE_ID)
        if sub in (b"SLOTS", b"SHARDS"):
            return b"*0\r\n"
        if sub in (b"MEET", b"ADDSLOTS", b"ADDSLOTSRANGE", b"SET-CONFIG-EPOCH",
                   b"REPLICATE", b"RESET", b"SAVECONFIG", b"BUMPEPOCH"):
            return b"+OK\r\n"
        if sub == b"COUNTKEYSINSLOT":
            return b":0\r\n"
        return b"-ERR unknown subcommand '%s'\r\n" % sub
    if cmd == b"COMMAND":
        return b"*0\r\n"
    return b"-ERR unknown command '%s'\r\n" % cmd


class Reader:
    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def fill(self):
        d = self.sock.recv(65536)
        if not d:
            raise EOFError
        self.buf += d

    def line(self):
        while b"\r\n" not in self.buf:
            if len(self.buf) > 1 << 20:
                raise EOFError
            self.fill()
        l, self.buf = self.buf.split(b"\r\n", 1)
        return l

    def exact(self, n):
        while len(self.buf) < n + 2:
            self.fill()
        d, self.buf = self.buf[:n], self.buf[n + 2:]
        return d

    def command(self):
        l = self.line()
        if l.startswith(b"*"):
            n = int(l[1:])
            out = []
            for _ in range(max(n, 0)):
                h = self.line()
                if not h.startswith(b"$"):
                    raise EOFError
                out.append(self.exact(int(h[1:])))
            return out
        return l.split()  # inline command


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        s = self.request
        r = Reader(s)
        replies = 0
        try:
            while True:
                args = r.command()
                if not args:
                    continue
                if SCENARIO == "stall":
                    time.sleep(300)
                    return
                if SCENARIO == "garbage":
                    s.sendall(b"\x00\xffHTTP/1.1 200 OK\r\n?? not resp\r\n*-7\r\n$abc\r\n")
                    continue
                if SCENARIO == "wrong_type":
                    s.sendall(b":1\r\n")
                    continue
                if SCENARIO == "huge_bulk":
                    s.sendall(b"$1000000000\r\nabc")
                    time.sleep(300)
                    return
                if SCENARIO == "drop_after" and replies >= int(ARG or "1"):
                    s.shutdown(socket.SHUT_RDWR)
                    return
                s.sendall(normal_reply(args))
                replies += 1
        except (EOFError, OSError, ValueError):
            return


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    srv = Server(("127.0.0.1", PORT), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    print("listening", flush=True)
    time.sleep(300)
    os._exit(0)


if __name__ == "__main__":
    main()
