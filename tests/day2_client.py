#!/usr/bin/python3
"""tests/day2_client.py — data for the day-2 tests (tests/test_day2.sh).

  load PORT N [BIG]    N keys of mixed types (string, hash, list, set, zset) spread over
                       all slots, plus BIG string values of 3 MB; written node by node
                       in pipelines (keys grouped by the slot owner from CLUSTER SLOTS)
  verify PORT N [BIG]  every key reads back with its type and value (one typed read per
                       key: a wrong type answers WRONGTYPE); prints the first problem
  spread PORT N        N string keys k:0..k:N-1 (16-byte values) spread over all slots,
                       each sent to the master that owns its slot (benchmarks of slot
                       moves: redis-benchmark --cluster puts a master's keys in one slot)
  writer PORT STATE    a concurrent client: INCRs keys w:0..w:499 in a loop (through the
                       cluster client, following MOVED/ASK), checks each GET never goes
                       below an acknowledged count, and dumps {key: [acked, attempted]}
                       to STATE every 0.2 s and on SIGTERM
  writer-check PORT STATE [running]  every counter is within [acked, attempted]: no acknowledged
                       write was lost
RC_TEST_PASSWORD_FILE=F: authenticate with the password in F, read again whenever a
connection is refused (a password rotated under a running writer). RC_TEST_HOST=IP: the
writer's (and writer-check's) seed address instead of 127.0.0.1 (a Swarm node).
"""
import json, os, random, signal, sys, time
import logging
import redis
from redis.cluster import RedisCluster

BIG_SIZE = 3 * 1024 * 1024


HOST = os.environ.get("RC_TEST_HOST", "127.0.0.1")   # writer, writer-check: where the cluster answers


def pw():
    """The password in $RC_TEST_PASSWORD_FILE (read each time), or None."""
    f = os.environ.get("RC_TEST_PASSWORD_FILE")
    return open(f).read().strip() if f else None


def owners(port):
    """slot -> (host, port) from CLUSTER SLOTS."""
    r = redis.Redis(host="127.0.0.1", port=port, password=pw())
    table = [None] * 16384
    for ent in r.execute_command("CLUSTER SLOTS"):
        lo, hi, master = ent[0], ent[1], ent[2]
        host = master[0].decode() if isinstance(master[0], bytes) else master[0]
        for s in range(lo, hi + 1):
            table[s] = (host, master[1])
    return table


def key_of(i):
    return ["s:%d", "h:%d", "l:%d", "S:%d", "z:%d"][i % 5] % i


def write(p, i):
    k = key_of(i)
    t = i % 5
    if t == 0: p.set(k, "v%d" % i)
    elif t == 1: p.hset(k, mapping={"a": str(i), "b": "x%d" % i})
    elif t == 2: p.rpush(k, str(i), str(i + 1), str(i + 2))
    elif t == 3: p.sadd(k, "a%d" % i, "b%d" % i)
    else: p.zadd(k, {"m%d" % i: i, "n%d" % i: i + 1})


def read(p, i):
    k = key_of(i)
    t = i % 5
    if t == 0: p.get(k)
    elif t == 1: p.hgetall(k)
    elif t == 2: p.lrange(k, 0, -1)
    elif t == 3: p.smembers(k)
    else: p.zrange(k, 0, -1, withscores=True)


def expected(i):
    t = i % 5
    if t == 0: return b"v%d" % i
    if t == 1: return {b"a": b"%d" % i, b"b": b"x%d" % i}
    if t == 2: return [b"%d" % i, b"%d" % (i + 1), b"%d" % (i + 2)]
    if t == 3: return {b"a%d" % i, b"b%d" % i}
    return [(b"m%d" % i, float(i)), (b"n%d" % i, float(i + 1))]


def big_key(n):
    return "big:%d" % n


def big_value(n):
    return (b"%d" % n) * (BIG_SIZE // len(b"%d" % n))


def by_node(port, keys):
    table = owners(port)
    groups = {}
    for i, k in keys:
        node = table[redis.cluster.key_slot(k.encode())]
        groups.setdefault(node, []).append(i)
    return groups


def load(port, n, big):
    groups = by_node(port, [(i, key_of(i)) for i in range(n)])
    for (host, p), idx in groups.items():
        c = redis.Redis(host=host, port=p, password=pw())
        for start in range(0, len(idx), 5000):
            pipe = c.pipeline(transaction=False)
            for i in idx[start:start + 5000]: write(pipe, i)
            pipe.execute()
    rc = RedisCluster(host="127.0.0.1", port=port, password=pw())
    for b in range(big): rc.set(big_key(b), big_value(b))


def spread(port, n):
    groups = by_node(port, [(i, "k:%d" % i) for i in range(n)])
    for (host, p), idx in groups.items():
        c = redis.Redis(host=host, port=p, password=pw())
        for start in range(0, len(idx), 10000):
            pipe = c.pipeline(transaction=False)
            for i in idx[start:start + 10000]: pipe.set("k:%d" % i, "0123456789abcdef")
            pipe.execute()


def verify(port, n, big):
    groups = by_node(port, [(i, key_of(i)) for i in range(n)])
    bad = 0
    for (host, p), idx in groups.items():
        c = redis.Redis(host=host, port=p, password=pw())
        for start in range(0, len(idx), 5000):
            chunk = idx[start:start + 5000]
            pipe = c.pipeline(transaction=False)
            for i in chunk: read(pipe, i)
            try:
                res = pipe.execute(raise_on_error=False)
            except Exception as e:
                print("node %s:%d: %s" % (host, p, e)); return 1
            for i, v in zip(chunk, res):
                if v != expected(i):
                    if bad == 0: print("key %s on %s:%d: got %r, want %r" % (key_of(i), host, p, v, expected(i)))
                    bad += 1
    rc = RedisCluster(host="127.0.0.1", port=port, password=pw())
    for b in range(big):
        v = rc.get(big_key(b))
        if v != big_value(b):
            if bad == 0: print("key %s: wrong value (%s bytes)" % (big_key(b), None if v is None else len(v)))
            bad += 1
    if bad:
        print("%d of %d keys wrong" % (bad, n + big))
        return 1
    return 0


def writer(port, state):
    logging.disable(logging.CRITICAL)
    def client():
        return RedisCluster(host=HOST, port=port, cluster_error_retry_attempts=10, password=pw())
    rc = client()
    acked, tried, errors, lost = {}, {}, 0, []
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    last_ack, longest = time.time(), 0.0   # the longest pause between two acknowledged writes

    def dump():
        tmp = state + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"counts": {k: [acked.get(k, 0), tried.get(k, 0)] for k in tried}, "errors": errors, "lost": lost[:5],
                       "longest_pause": longest}, f)
        os.replace(tmp, state)

    last = 0
    while not stop:
        k = "w:%d" % random.randrange(500)
        tried[k] = tried.get(k, 0) + 1
        try:
            v = rc.incr(k)
            acked[k] = max(acked.get(k, 0), v)
            now = time.time()
            longest, last_ack = max(longest, now - last_ack), now
            g = rc.get(k)
            if g is not None and int(g) < acked[k]:
                lost.append("%s read %s after %d was acknowledged" % (k, g, acked[k]))
        except Exception:
            errors += 1
            time.sleep(0.02)
            if errors % 5 == 0:   # a new client: new connections, the password as it is now
                try:
                    rc = client()
                except Exception:
                    pass
        if time.time() - last > 0.2:
            dump()
            last = time.time()
    dump()


def writer_check(port, state, running):
    """While the writer runs its counters only grow past the dump; once stopped, each
    must lie within [acknowledged, attempted]."""
    d = json.load(open(state))
    if d["lost"]:
        print("the writer saw a lost write: %s" % d["lost"][0]); return 1
    rc = RedisCluster(host=HOST, port=port, password=pw())
    for k, (a, t) in d["counts"].items():
        v = int(rc.get(k) or 0)
        if v < a or (not running and v > t):
            print("%s = %d, but %d INCRs were acknowledged and %d tried" % (k, v, a, t)); return 1
    return 0


def main():
    cmd, port = sys.argv[1], int(sys.argv[2])
    if cmd == "load": load(port, int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 0); return 0
    if cmd == "spread": spread(port, int(sys.argv[3])); return 0
    if cmd == "verify": return verify(port, int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 0)
    if cmd == "writer": writer(port, sys.argv[3]); return 0
    if cmd == "writer-check": return writer_check(port, sys.argv[3], len(sys.argv) > 4)
    print(__doc__); return 2


if __name__ == "__main__":
    sys.exit(main())
