"""A concurrent load generator for the stress tests (sanitizer runs, soak).

Each worker thread loops until a deadline over a mix of requests, verifying
every completed response against the reference counter of wctest:
small and large raw bodies (the large ones span several 1 MiB blocks, so
several jobs run per request), chunked uploads, JSON bodies (large ones
are split into slices; 5.1 MB ones, sent whole or in pieces, are looked at
by scan jobs while they arrive), form bodies, /healthz, and clients that
leave in the middle of a body (their jobs are cancelled or dropped). Only
Python's standard library; loopback only.
"""

import json
import os
import random
import socket
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "server"))
import wctest as w  # noqa: E402
from wctest import CORPUS, ZEN, Closed, Conn, build_request, chunk_body, count_target  # noqa: E402


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = 0
        self.aborted = 0
        self.errors = []  # wrong answers and unexpected failures

    def add(self, what, n=1):
        with self.lock:
            setattr(self, what, getattr(self, what) + n)

    def fail(self, msg):
        with self.lock:
            if len(self.errors) < 50:
                self.errors.append(msg)


def _expect_count(r, needle, text, what):
    want = w.ref_count(text, [needle])[needle]
    if r.status != 200:
        return "%s: status %d %r" % (what, r.status, r.body[:200])
    j = r.json()
    if j.get("count") != want or j.get("bytes") != len(text):
        return "%s: count %r bytes %r, expected %d and %d" % (
            what, j.get("count"), j.get("bytes"), want, len(text))
    return None


def one_request(port, rng, big=True, timeout=60):
    """Sends one random request on a fresh connection and checks the answer.
    Returns "ok", "aborted" or an error message."""
    kind = rng.choice(["small", "small", "small", "health", "json", "form", "chunked",
                       "abort"] + (["large", "large_json"] if big else []))
    needle = rng.choice(["is", "better", "the", "Python"])
    with Conn(port, timeout=timeout) as c:
        if kind == "health":
            c.send(build_request("GET", "/healthz"))
            r = c.read_response()
            return "ok" if r.status == 200 else "healthz: %r" % r
        if kind == "small":
            text = ZEN * rng.randint(1, 20)
            c.send(build_request("POST", count_target([needle]), text))
        elif kind == "large":
            text = CORPUS * rng.randint(2, 4)  # 1.7-3.4 MB: several blocks
            c.send(build_request("POST", count_target([needle]), text))
        elif kind == "chunked":
            text = ZEN * rng.randint(1, 50)
            c.send(build_request("POST", count_target([needle]), text, chunked=[rng.randint(1, 4096)]))
        elif kind == "json":
            text = ZEN * rng.randint(1, 20)
            body = json.dumps({"text": text.decode(), "needle": needle})
            c.send(build_request("POST", "/count", body, [("Content-Type", "application/json")]))
        elif kind == "large_json":
            # over parallel.min_bytes: counted in slices; 5.1 MB: its text
            # is looked for in the pool while it arrives (scan jobs)
            text = ZEN * rng.choice([1300, 1300, 6000])
            body = json.dumps({"text": text.decode(), "needle": needle})
            req = build_request("POST", "/count", body, [("Content-Type", "application/json")])
            if len(req) > 4 << 20 and rng.random() < 0.5:
                c.send_pieces(req, rng, maxpiece=400000, sleep_every=2)
            else:
                c.send(req)
        elif kind == "form":
            text = ZEN * rng.randint(1, 10)
            body = urllib.parse.urlencode({"text": text.decode(), "needle": needle})
            c.send(build_request("POST", "/count", body,
                                 [("Content-Type", "application/x-www-form-urlencoded")]))
        else:  # abort: announce a big body, send part of it, leave
            text = CORPUS * 3
            req = build_request("POST", count_target([needle]), text)
            if big and rng.random() < 0.3:  # a 5.1 MB JSON body, scan jobs running
                req = build_request("POST", "/count", json.dumps({"text": (ZEN * 6000).decode()}),
                                    [("Content-Type", "application/json")])
            c.send(req[: rng.randint(100, len(req) - 1)])
            if rng.random() < 0.5:  # a reset instead of a FIN
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            return "aborted"
        r = c.read_response()
        err = _expect_count(r, needle, text, kind)
        return err or "ok"


def run_load(port, seconds, threads=20, big=True, seed=None, stop=None):
    """Runs `threads` workers for `seconds`; returns Stats."""
    stats = Stats()
    deadline = time.monotonic() + seconds
    seed = seed if seed is not None else random.randrange(1 << 30)

    def worker(i):
        rng = random.Random(seed + i)
        while time.monotonic() < deadline and not (stop and stop.is_set()):
            try:
                res = one_request(port, rng, big=big)
            except (Closed, TimeoutError, OSError, AssertionError) as ex:
                stats.fail("%s: %s" % (type(ex).__name__, ex))
                continue
            if res == "ok":
                stats.add("ok")
            elif res == "aborted":
                stats.add("aborted")
            else:
                stats.fail(res)

    ts = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(seconds + 120)
    stats.seed = seed
    return stats
