#!/usr/bin/env python3
"""bench/http/phases.py BIN... - where the time of an 85.8 MB JSON request goes.

Starts each server binary (one instance each, every CPU, the config of
`make bench`'s section 1) and sends the seed's 85.8 MB corpus as JSON,
{"text": ..., "needle": "is", "mode": M}, on a fresh connection per request,
A/B interleaved: per round one request per mode per binary, and two
sequential ones at once from two clients, the binaries' order alternating
from round to round. For each request it times the sending (until the
client's last byte is written) and the wait for the answer after it, and
prints the medians per binary and mode (for the two at once: the time until
both are answered, and two bodies' time / that time as "x one"). The wait after
the last byte is the server's own time; the sending also depends on how
much CPU the server leaves to the client on the same machine.

    bench/http/phases.py /tmp/old/wordcount-server build/wordcount-server
    ROUNDS=25 bench/http/phases.py build/wordcount-server

Loopback only; every answer's count is checked (1,000,000).
"""

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import ZEN  # noqa: E402  (the seed's text)

COPIES = 100000  # 85.8 MB
MODES = ("sequential", "parallel")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(binary, workdir, i):
    port = free_port()
    cfg = {"listen": {"host": "127.0.0.1", "port": port}, "log": {"access": False, "level": "warn"},
           "limits": {"max_body_bytes": 4 << 30, "max_json_body_bytes": 256 << 20}}
    path = os.path.join(workdir, "config-%d.json" % i)
    with open(path, "w") as f:
        json.dump(cfg, f)
    p = subprocess.Popen([binary, "--config", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return p, port
        except OSError:
            time.sleep(0.05)
    p.kill()
    raise SystemExit("%s: not listening on port %d" % (binary, port))


def one(port, head, body):
    """(ms sending, ms after the last byte) of one request."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t0 = time.perf_counter()
        s.sendall(head)
        s.sendall(body)
        t1 = time.perf_counter()
        buf = b""
        while b"}" not in buf:
            d = s.recv(65536)
            if not d:
                raise SystemExit("connection closed before the answer: %r" % buf[:200])
            buf += d
        t2 = time.perf_counter()
    if b'"count":1000000' not in buf:
        raise SystemExit("wrong answer: %r" % buf[:300])
    return (t1 - t0) * 1e3, (t2 - t1) * 1e3


def twice(port, head, body):
    """ms until two requests sent at once from two clients are answered."""
    out = [None, None]

    def run(i):
        out[i] = one(port, head, body)

    ts = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if None in out:
        raise SystemExit("a request of two at once failed")
    return (time.perf_counter() - t0) * 1e3


def main():
    bins = sys.argv[1:]
    if not bins:
        sys.exit(__doc__)
    rounds = int(os.environ.get("ROUNDS", "9"))
    text = ZEN * COPIES
    reqs = {}
    for m in MODES:
        body = json.dumps({"text": text, "needle": "is", "mode": m}).encode()
        head = ("POST /count HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                "Content-Length: %d\r\n\r\n" % len(body)).encode()
        reqs[m] = (head, body)
    res = {(b, m): [] for b in range(len(bins)) for m in MODES}
    two = {b: [] for b in range(len(bins))}
    procs = []
    with tempfile.TemporaryDirectory() as wd:
        try:
            for i, b in enumerate(bins):
                procs.append(start(b, wd, i))
            for _, port in procs:  # warm-up: buffers kept, pages faulted
                for m in MODES:
                    one(port, *reqs[m])
            for r in range(rounds):
                order = list(range(len(bins)))
                if r % 2:
                    order.reverse()
                for m in MODES:
                    for i in order:
                        res[(i, m)].append(one(procs[i][1], *reqs[m]))
                for i in order:
                    two[i].append(twice(procs[i][1], *reqs["sequential"]))
        finally:
            for p, _ in procs:
                p.terminate()
                p.wait()
    print("85.8 MB JSON, %d rounds, medians (ms):" % rounds)
    print("%-10s  %-40s %8s %8s %8s" % ("mode", "binary", "sending", "after", "total"))
    for m in MODES:
        for i, b in enumerate(bins):
            v = res[(i, m)]
            send = statistics.median(x[0] for x in v)
            after = statistics.median(x[1] for x in v)
            total = statistics.median(x[0] + x[1] for x in v)
            print("%-10s  %-40s %8.1f %8.1f %8.1f" % (m, b[-40:], send, after, total))
    for i, b in enumerate(bins):
        t = statistics.median(two[i])
        one_ms = statistics.median(x[0] + x[1] for x in res[(i, "sequential")])
        print("%-10s  %-40s %26.1f   %.2fx one" % ("two at once", b[-40:], t, 2 * one_ms / t))


if __name__ == "__main__":
    main()
