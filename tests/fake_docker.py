#!/usr/bin/env python3
"""fake_docker.py — a misbehaving Docker Engine daemon on a unix socket, for fault tests.

usage: fake_docker.py SOCKET_PATH SCENARIO [ARG]

Every scenario except the last three breaks every answer (so /_ping already fails):
  500json                 500 with {"message": "fake daemon: internal error"}
  500plain                500 with a text/plain body
  close_mid_header        "HTTP/1.1 200 OK\\r\\nContent-Ty" and close
  close_mid_chunk         200, chunked, half a chunk, close
  bad_chunk_size          200, chunked, chunk size "zz"
  endless_header          a status line and then header lines without end (bounded: 256 MiB)
  huge_content_length     Content-Length: 1000000000, a few bytes, then hangs 30 s and closes
  never_answer            reads the request, never answers
  api_version_out_of_range  /_ping says Api-Version: ARG (default 1.12); otherwise normal
These answer normally (a daemon with no containers and no networks) except:
  pull_error_in_stream    POST /images/create and /images/load: 200 with a JSON-lines
                          stream whose last line is {"error": ...}
  409_on_create           POST /containers/create: 409 Conflict
  airgap                  no registry: an image exists only once imported (fromSrc=-&repo=NAME[:TAG],
                          or the tag= parameter); pulls end in a stream error; containers/create
                          logs "IMAGE name" and "CMD [...]" from its body

Each request is appended to SOCKET_PATH.log as "METHOD PATH". Prints "listening" once
the socket accepts connections; exits by itself after 300 s.
"""
import json
import os
import socket
import socketserver
import sys
import threading
import time

PATH = sys.argv[1]
SCENARIO = sys.argv[2] if len(sys.argv) > 2 else "normal"
ARG = sys.argv[3] if len(sys.argv) > 3 else ""
LOG = open(PATH + ".log", "a", buffering=1)
LOCK = threading.Lock()
NETWORKS = {}   # id -> network JSON (created through this fake)
IMPORTED = {}   # airgap: "repo:tag" -> Cmd of an image imported through this fake
IMAGE_ID = "sha256:" + "ab" * 32


def response(status, body=b"", ctype="application/json", extra=""):
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    reason = {200: "OK", 201: "Created", 204: "No Content", 404: "Not Found",
              409: "Conflict", 500: "Internal Server Error"}.get(status, "X")
    version = "" if "Api-Version" in extra else "Api-Version: 1.41\r\n"
    head = ("HTTP/1.1 %d %s\r\n%sServer: fake_docker\r\n"
            "Content-Type: %s\r\nContent-Length: %d\r\n%s\r\n" % (status, reason, version, ctype, len(body), extra))
    return head.encode() + body


def chunked(status, lines):
    out = b"HTTP/1.1 %d OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" % status
    for l in lines:
        b = (json.dumps(l) + "\r\n").encode()
        out += b"%x\r\n%s\r\n" % (len(b), b)
    return out + b"0\r\n\r\n"


def strip_version(path):
    # /v1.41/containers/json -> /containers/json
    if path.startswith("/v") and "/" in path[1:]:
        first, rest = path[1:].split("/", 1)
        if first[1:].replace(".", "").isdigit():
            return "/" + rest
    return path


def airgap(method, path, body):
    """The image part of a daemon without registry access; None for everything else."""
    from urllib.parse import parse_qs, unquote
    p = strip_version(path.split("?", 1)[0])
    q = parse_qs(path.split("?", 1)[1]) if "?" in path else {}
    if p.startswith("/images/") and p.endswith("/json") and method == "GET":
        name = unquote(p[len("/images/"):-len("/json")])
        if ":" not in name.rsplit("/", 1)[-1]:
            name += ":latest"
        if name not in IMPORTED:
            return response(404, {"message": "No such image: %s" % name})
        return response(200, {"Id": IMAGE_ID, "RepoTags": [name], "Config": {"Cmd": IMPORTED[name]}})
    if p == "/images/create" and method == "POST" and "fromImage" in q:
        return chunked(200, [{"status": "Pulling"}, {"error": "fake daemon: no registry here",
                                                     "errorDetail": {"message": "fake daemon: no registry here"}}])
    if p == "/images/create" and method == "POST":
        name = q.get("repo", [""])[0]
        if ":" not in name.rsplit("/", 1)[-1]:
            name += ":" + q.get("tag", ["latest"])[0]
        cmd = ["sh"]
        for c in q.get("changes", []):
            if c.startswith("CMD "):
                cmd = json.loads(c[4:])
        IMPORTED[name] = cmd
        LOG.write("IMPORTED %s\n" % name)
        return chunked(200, [{"status": IMAGE_ID}])
    if p == "/containers/create" and method == "POST":
        req = json.loads(body or b"{}")
        LOG.write("IMAGE %s\nCMD %s\n" % (req.get("Image"), json.dumps(req.get("Cmd"))))
    return None


def normal(method, path, body):
    if SCENARIO == "airgap":
        r = airgap(method, path, body)
        if r is not None:
            return r
    p = strip_version(path.split("?", 1)[0])
    if p == "/_ping":
        v = (ARG or "1.12") if SCENARIO == "api_version_out_of_range" else "1.41"
        return response(200, "OK", "text/plain", "Api-Version: %s\r\n" % v)
    if p == "/version":
        return response(200, {"Version": "20.10.24", "ApiVersion": "1.41", "MinAPIVersion": "1.12"})
    if p == "/info":
        return response(200, {"ServerVersion": "20.10.24", "Containers": 0})
    if p.startswith("/images/") and p.endswith("/json") and method == "GET":
        return response(200, {"Id": IMAGE_ID, "RepoTags": ["fake:1"], "Config": {"Cmd": ["redis-server"]}})
    if p in ("/images/create", "/images/load") and method == "POST":
        if SCENARIO == "pull_error_in_stream":
            return chunked(200, [{"status": "Loading layer"},
                                 {"error": "fake daemon: stream failed half way",
                                  "errorDetail": {"message": "fake daemon: stream failed half way"}}])
        return chunked(200, [{"status": "done"}, {"stream": "Loaded image: fake:1\n"}])
    if p == "/networks" and method == "GET":
        with LOCK:
            return response(200, list(NETWORKS.values()))
    if p == "/networks/create" and method == "POST":
        try:
            req = json.loads(body or b"{}")
        except ValueError:
            return response(400, {"message": "bad json"})
        nid = "%064x" % (len(NETWORKS) + 1)
        with LOCK:
            NETWORKS[nid] = {"Name": req.get("Name", ""), "Id": nid, "Labels": req.get("Labels") or {},
                             "IPAM": req.get("IPAM") or {"Config": []}, "Containers": {}}
        return response(201, {"Id": nid, "Warning": ""})
    if p.startswith("/networks/"):
        nid = p.split("/")[2]
        with LOCK:
            net = NETWORKS.get(nid) or next((n for n in NETWORKS.values() if n["Name"] == nid), None)
            if method == "DELETE":
                if net:
                    NETWORKS.pop(net["Id"], None)
                    return response(204)
            elif net:
                return response(200, net)
        return response(404, {"message": "network %s not found" % nid})
    if p == "/containers/json":
        return response(200, [])
    if p == "/containers/create" and method == "POST":
        if SCENARIO == "409_on_create":
            return response(409, {"message": "Conflict. The container name is already in use by container "
                                             "\"0123456789ab\" (fake daemon)."})
        return response(201, {"Id": "cd" * 32, "Warnings": []})
    if p.startswith("/containers/"):
        if method == "DELETE":
            return response(204)
        return response(404, {"message": "No such container: %s" % p.split("/")[2]})
    return response(404, {"message": "page not found"})


class Handler(socketserver.BaseRequestHandler):
    def read_request(self, buf):
        while b"\r\n\r\n" not in buf:
            d = self.request.recv(65536)
            if not d:
                return None, None, None, b""
            buf += d
        head, rest = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        method, path = lines[0].split(" ")[:2]
        hdr = {}
        for l in lines[1:]:
            if ":" in l:
                k, v = l.split(":", 1)
                hdr[k.strip().lower()] = v.strip()
        body = b""
        if "content-length" in hdr:
            n = int(hdr["content-length"])
            buf = bytearray(rest)
            while len(buf) < n:
                d = self.request.recv(1 << 20)
                if not d:
                    break
                buf += d
            body, rest = bytes(buf[:n]), bytes(buf[n:])
        elif hdr.get("transfer-encoding", "").lower() == "chunked":
            # read (and discard) a chunked upload such as an image tarball, in linear time
            buf, pos = bytearray(rest), 0
            while True:
                while buf.find(b"\r\n", pos) < 0:
                    d = self.request.recv(1 << 20)
                    if not d:
                        return method, path, body, b""
                    buf += d
                eol = buf.find(b"\r\n", pos)
                size = int(bytes(buf[pos:eol]).split(b";")[0] or b"0", 16)
                pos = eol + 2
                while len(buf) < pos + size + 2:
                    d = self.request.recv(1 << 20)
                    if not d:
                        return method, path, body, b""
                    buf += d
                pos += size + 2
                if pos > 1 << 20:
                    del buf[:pos]
                    pos = 0
                if size == 0:
                    break
            rest = bytes(buf[pos:])
        return method, path, body, rest

    def handle(self):
        s = self.request
        buf = b""
        try:
            while True:
                method, path, body, buf = self.read_request(buf)
                if method is None:
                    return
                LOG.write("%s %s\n" % (method, path))
                sc = SCENARIO

                def send(data):
                    if method == "HEAD":  # HEAD answers carry no body
                        data = data.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
                    s.sendall(data)
                if sc == "500json":
                    send(response(500, {"message": "fake daemon: internal error"}))
                elif sc == "500plain":
                    send(response(500, "fake daemon: plain failure\n", "text/plain"))
                elif sc == "close_mid_header":
                    s.sendall(b"HTTP/1.1 200 OK\r\nContent-Ty")
                    return
                elif sc == "close_mid_chunk":
                    s.sendall(b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nOK-but-sh")
                    return
                elif sc == "bad_chunk_size":
                    s.sendall(b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nOK\r\n0\r\n\r\n")
                    return
                elif sc == "endless_header":
                    s.sendall(b"HTTP/1.1 200 OK\r\n")
                    line = b"X-Fake-Junk: " + b"a" * 1000 + b"\r\n"
                    sent = 0
                    while sent < 256 << 20:
                        s.sendall(line * 64)
                        sent += len(line) * 64
                    return
                elif sc == "huge_content_length":
                    s.sendall(b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\n"
                              b"Content-Length: 1000000000\r\n\r\n{\"a\":")
                    time.sleep(30)
                    return
                elif sc == "never_answer":
                    time.sleep(300)
                    return
                else:
                    send(normal(method, path, body))
        except (OSError, ValueError):
            return


class Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


def main():
    try:
        os.unlink(PATH)
    except FileNotFoundError:
        pass
    srv = Server(PATH, Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    print("listening", flush=True)
    time.sleep(300)
    try:
        os.unlink(PATH)
    except OSError:
        pass
    os._exit(0)


if __name__ == "__main__":
    main()
