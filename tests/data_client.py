#!/usr/bin/env python3
"""tests/data_client.py — load keys of every type, and print a canonical dump, for
tests/test_data.sh (backup, restore, import).

  data_client.py load HOST:PORT PASSWORD N cluster|single   keys of every type, N of each
  data_client.py dump HOST:PORT PASSWORD cluster|single     one line per key, sorted:
                                                           key, type, value, PEXPIRETIME
  data_client.py compare DUMP_A DUMP_B TOLERANCE_MS          same keys, types and values;
                                                           expiries within TOLERANCE_MS
  data_client.py rdb OUT expired|db1|module                 a small hand-made RDB file
PASSWORD '-' for none."""
import sys
import redis
import redis.cluster


def connect(addr, pw, mode):
    host, port = addr.rsplit(':', 1)
    pw = None if pw == '-' else pw
    if mode == 'cluster':
        return redis.cluster.RedisCluster(host=host, port=int(port), password=pw)
    return redis.Redis(host=host, port=int(port), password=pw)


def load(r, n):
    for i in range(n):
        p = f't{i}:'
        r.set(p + 'str', 'hello')
        r.set(p + 'int', 123456)
        r.set(p + 'neg', -7)
        r.set(p + 'lzf', 'abcdefgh' * 40)
        r.set(p + 'ttl', 'x', px=3600000)
        r.set(p + 'bin', bytes(range(256)))
        r.set(p + 'big', 'B' * 300000)
        r.rpush(p + 'list', *[f'e{j}' for j in range(10)])
        r.rpush(p + 'biglist', *[('v' * 50) + str(j) for j in range(300)])
        r.sadd(p + 'intset', 1, 2, 3, 99999)
        r.sadd(p + 'set', *[f'm{j}' for j in range(10)])
        r.sadd(p + 'bigset', *[f'member{j}' for j in range(200)])
        r.zadd(p + 'zset', {'a': 1.5, 'b': -2, 'c': 1e300})
        r.zadd(p + 'bigzset', {f'z{j}': j / 3 for j in range(200)})
        r.hset(p + 'hash', mapping={'f1': 'v1', 'f2': '2'})
        r.hset(p + 'bighash', mapping={f'field{j}': 'x' * 70 for j in range(200)})
        r.expire(p + 'bighash', 7200)
        s = p + 'stream'
        for j in range(5):
            r.xadd(s, {'a': j, 'b': 'x'})
        r.xgroup_create(s, 'g1', id='0')
        r.xreadgroup('g1', 'c1', {s: '>'}, count=3)
        r.xgroup_create(s, 'g2', id='$')
        r.set(p + '{tag}one', '1')
        r.set(p + '{tag}two', '2')
    for j in range(2000):
        r.set(f'small:{j}', j)


def value(r, k, t):
    if t == 'string':
        return repr(r.get(k))
    if t == 'list':
        return repr(r.lrange(k, 0, -1))
    if t == 'set':
        return repr(sorted(r.smembers(k)))
    if t == 'zset':
        return repr(r.zrange(k, 0, -1, withscores=True))
    if t == 'hash':
        return repr(sorted(r.hgetall(k).items()))
    if t == 'stream':
        groups = []
        for g in r.xinfo_groups(k):
            cons = sorted((c['name'], c['pending']) for c in r.xinfo_consumers(k, g['name']))
            pend = r.xpending(k, g['name'])
            groups.append((g['name'], g['last-delivered-id'], g['pending'], cons, pend['pending']))
        return repr((r.xrange(k), sorted(groups)))
    return '?'


def dump(r):
    lines = []
    for k in r.scan_iter(count=1000):
        t = r.type(k).decode()
        lines.append(f'{k!r}\t{t}\t{value(r, k, t)}\t{r.execute_command("PEXPIRETIME", k)}')
    for line in sorted(lines):
        print(line)


def compare(a, b, tol):
    la, lb = open(a).read().splitlines(), open(b).read().splitlines()
    if not la:
        sys.exit(f'{a} is empty')
    if len(la) != len(lb):
        sys.exit(f'{len(la)} keys vs {len(lb)}')
    for x, y in zip(la, lb):
        kx, ex = x.rsplit('\t', 1)
        ky, ey = y.rsplit('\t', 1)
        if kx != ky:
            sys.exit(f'differ:\n< {x[:200]}\n> {y[:200]}')
        if (int(ex) < 0) != (int(ey) < 0) or abs(int(ex) - int(ey)) > tol:
            sys.exit(f'expiry differs ({ex} vs {ey}): {kx[:100]}')


def crc64(data):
    crc = 0
    for x in data:
        crc ^= x
        for _ in range(8):
            crc = (crc >> 1) ^ 0x95ac9329ac4bc9b5 if crc & 1 else crc >> 1
    return crc


def rdb(out, kind):
    def s(b):
        return bytes([len(b)]) + b
    body = b'REDIS0010' + b'\xfa' + s(b'redis-ver') + s(b'7.0.15')
    if kind == 'db1':
        body += b'\xfe\x01'
    body += b'\x00' + s(b'live') + s(b'1')
    body += b'\xfc' + (1000).to_bytes(8, 'little') + b'\x00' + s(b'dead') + s(b'x')
    body += b'\xfd' + (4000000000).to_bytes(4, 'little') + b'\x00' + s(b'secs') + s(b's')
    if kind == 'module':
        body += b'\x07' + s(b'modkey') + b'\x81' + bytes(8) + b'\x00'
    body += b'\xff'
    open(out, 'wb').write(body + crc64(body).to_bytes(8, 'little'))


def main():
    if sys.argv[1] == 'rdb':
        return rdb(sys.argv[2], sys.argv[3])
    cmd, addr, pw = sys.argv[1], sys.argv[2], sys.argv[3]
    if cmd == 'compare':
        return compare(addr, pw, int(sys.argv[4]))
    if cmd == 'load':
        load(connect(addr, pw, sys.argv[5]), int(sys.argv[4]))
    elif cmd == 'dump':
        dump(connect(addr, pw, sys.argv[4]))
    else:
        sys.exit('unknown command ' + cmd)


if __name__ == '__main__':
    main()
