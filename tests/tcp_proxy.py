#!/usr/bin/env python3
"""tests/tcp_proxy.py LISTEN_PORT UNIX_PATH [--pause-after N]: forwards 127.0.0.1:LISTEN_PORT
to a unix socket, so DOCKER_HOST=tcp://127.0.0.1:PORT reaches the real daemon in tests.
With --drop-after N it closes every connection after the first N connections have been
served (a daemon that goes away in the middle of a run)."""
import socket, sys, threading

port, path = int(sys.argv[1]), sys.argv[2]
drop_after = int(sys.argv[sys.argv.index("--drop-after") + 1]) if "--drop-after" in sys.argv else None
served = 0
lock = threading.Lock()

def pipe(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(64)
while True:
    c, _ = srv.accept()
    with lock:
        served += 1
        n = served
    if drop_after is not None and n > drop_after:
        c.close()
        continue
    u = socket.socket(socket.AF_UNIX)
    u.connect(path)
    threading.Thread(target=pipe, args=(c, u), daemon=True).start()
    threading.Thread(target=pipe, args=(u, c), daemon=True).start()
