"""HTTP/1.1 behaviour (issue 3, "HTTP behaviour users rely on"): keep-alive,
HTTP/1.0, pipelining, byte-by-byte requests, chunked uploads, Expect:
100-continue, strict parsing and the smuggling vectors, 413/431/505, and the
lingering close after an early error. Raw sockets throughout."""

import email.utils
import json
import os
import random
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wctest as w  # noqa: E402
from wctest import (CORPUS, ZEN, Closed, Conn, build_request, check_counts, check_error,  # noqa: E402
                    check_response, count_target, ref_count, request)

SHARED = w.Shared()
LIMITS = {"max_body_bytes": 65536, "max_json_body_bytes": 4096, "max_header_bytes": 4096}
LIMITED = w.Shared({"limits": LIMITS})
SEED = int(os.environ.get("WC_SEED", random.randrange(1 << 30)))


def port():
    return SHARED.port


def expect_close(c, what, timeout=None):
    """After a response that ends the connection: EOF (or reset) and no
    further response bytes."""
    how, data = c.wait_closed(timeout or 10 * w.SLOW)
    assert data == b"", "%s: bytes after the final response: %r" % (what, data[:300])


# ---------------------------------------------------------------- keep-alive

def test_keepalive_many_requests():
    with Conn(port()) as c:
        for i in range(30):
            k = i % 6
            if k == 0:
                c.send(build_request("POST", count_target(["is"]), ZEN * (i + 1)))
                r = c.read_response()
                check_counts(r, {"is": 10 * (i + 1)}, 858 * (i + 1))
            elif k == 1:
                c.send(build_request("GET", "/healthz"))
                r = c.read_response()
                assert r.status == 200
            elif k == 2:
                body = json.dumps({"text": "is " * i, "needle": "is"})
                c.send(build_request("POST", "/count", body, [("Content-Type", "application/json")]))
                r = c.read_response()
                check_counts(r, {"is": i}, 3 * i)
            elif k == 3:
                c.send(build_request("GET", "/nope"))
                r = c.read_response()
                assert r.status == 404
            elif k == 4:
                c.send(build_request("OPTIONS", "/count"))
                r = c.read_response()
                assert r.status == 204
            else:
                c.send(build_request("GET", "/count"))
                r = c.read_response()
                assert r.status == 405
            check_response(r, what="request %d" % i)
            assert not r.has_token("Connection", "close"), "request %d: %r" % (i, r)


def test_http10_closes_unless_keepalive():
    with Conn(port()) as c:
        c.send(build_request("POST", count_target(["is"]), ZEN, version="1.0", host=False))
        r = c.read_response()
        check_response(r)
        check_counts(r, {"is": 10}, 858)
        expect_close(c, "HTTP/1.0 without keep-alive")
    with Conn(port()) as c:
        c.send(build_request("GET", "/healthz", version="1.0"))
        r = c.read_response()
        check_response(r)
        assert r.status == 200
        expect_close(c, "HTTP/1.0 GET")
    with Conn(port()) as c:
        for i in range(3):
            c.send(build_request("POST", count_target(["is"]), ZEN, version="1.0",
                                 headers=[("Connection", "keep-alive")]))
            r = c.read_response()
            check_response(r)
            check_counts(r, {"is": 10}, 858, "HTTP/1.0 keep-alive request %d" % i)
            assert not r.has_token("Connection", "close"), r
        c.send(build_request("GET", "/healthz", version="1.0"))
        r = c.read_response()
        assert r.status == 200
        expect_close(c, "HTTP/1.0 without keep-alive after keep-alive ones")


def test_http10_keepalive_is_confirmed_on_every_status():
    # RFC 9112 9.3: a server that keeps an HTTP/1.0 connection open says so;
    # the 204 of OPTIONS did not
    with Conn(port()) as c:
        c.send(b"OPTIONS /count HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        r = c.read_response(head=True)
        assert r.status == 204, r
        assert r.has_token("Connection", "keep-alive"), r
        c.send(b"GET /healthz HTTP/1.0\r\n\r\n")
        assert c.read_response().status == 200
        expect_close(c, "HTTP/1.0 without keep-alive after a 204")


def test_connection_close_request():
    with Conn(port()) as c:
        c.send(build_request("POST", count_target(["is"]), ZEN, [("Connection", "close")]))
        r = c.read_response()
        check_response(r)
        check_counts(r, {"is": 10}, 858)
        assert r.has_token("Connection", "close"), r
        expect_close(c, "Connection: close")


def test_date_is_current():
    # the cached Date is never stale, also after the loop was idle: causal
    # bounds only (sent-at minus rounding <= Date <= received-at plus rounding)
    with Conn(port()) as c:
        for idle in [0, 2.2, 0, 1.3]:
            time.sleep(idle)
            t0 = time.time()
            c.send(build_request("GET", "/healthz"))
            r = c.read_response()
            t1 = time.time()
            d = email.utils.parsedate_to_datetime(r.header("Date")).timestamp()
            assert t0 - 1.5 <= d <= t1 + 1.5, "Date %r is not the time of the response (sent %.1f, got %.1f, " \
                "after %.1fs idle)" % (r.header("Date"), t0, t1, idle)


# ---------------------------------------------------------------- pipelining

def _pipeline(p, reqs, timeout=None):
    """Sends all requests in one go (from a thread, so that a server that
    stops reading cannot deadlock us) and reads the responses."""
    data = b"".join(r[0] for r in reqs)
    with Conn(p, timeout=timeout) as c:
        errs = []

        def sender():
            try:
                c.sock.sendall(data)
            except OSError as e:
                errs.append(e)
        t = threading.Thread(target=sender, daemon=True)
        t.start()
        out = []
        for i, (_, head, check) in enumerate(reqs):
            r = c.read_response(head=head)
            check_response(r, head=head, what="pipelined response %d" % i)
            check(r, i)
            out.append(r)
        t.join(10)
        assert not errs, errs
        return out


def test_pipelining_in_order():
    rng = random.Random(SEED)
    reqs = []
    for i in range(60):
        k = i % 7
        if k == 0:
            reqs.append((build_request("GET", "/healthz"), False,
                         lambda r, i: (r.status == 200 and r.json() == {"status": "ok"}) or fail(r, i)))
        elif k == 1:
            n = rng.choice([0, 1, 10, 1000, 30000])
            body = ("w%d " % i).encode() * n + b"x" * rng.randint(0, 5)
            reqs.append((build_request("POST", count_target(["w%d" % i], mode=rng.choice(
                ["auto", "parallel", "sequential"])), body), False,
                (lambda n, ln: lambda r, i: check_counts(r, {"w%d" % i: n}, ln, "pipelined %d" % i))(n, len(body))))
        elif k == 2:
            body = json.dumps({"text": ("v%d " % i) * i, "needle": "v%d" % i})
            reqs.append((build_request("POST", "/count", body, [("Content-Type", "application/json")]), False,
                         lambda r, i: check_counts(r, {"v%d" % i: i}, len(("v%d " % i) * i), "json %d" % i)))
        elif k == 3:
            reqs.append((build_request("GET", "/nope%d" % i), False,
                         lambda r, i: check_error(r, 404)))
        elif k == 4:
            reqs.append((build_request("HEAD", "/healthz"), True,
                         lambda r, i: r.status == 200 or fail(r, i)))
        elif k == 5:
            body = ("u%d " % i).encode() * 3
            reqs.append((build_request("POST", count_target(["u%d" % i]), body, chunked=[1, 2, 5]), False,
                         lambda r, i: check_counts(r, {"u%d" % i: 3}, len(("u%d " % i) * 3), "chunked %d" % i)))
        else:
            reqs.append((build_request("GET", "/count"), False, lambda r, i: check_error(r, 405)))
    # an application error with a body at the very end (the server may close after it)
    reqs.append((build_request("POST", "/count?needle=is&bogus=1", b"is is"), False,
                 lambda r, i: check_error(r, 400, mentions=["bogus"])))
    _pipeline(port(), reqs, timeout=60 * w.SLOW)


def fail(r, i):
    raise AssertionError("pipelined response %d unexpected: %r" % (i, r))


def test_pipelining_big_and_small():
    big = ZEN * 3000  # 2.5 MB, above the default parallel threshold
    reqs = []
    for i in range(6):
        reqs.append((build_request("POST", count_target(["is"], mode="parallel"), big), False,
                     lambda r, i: check_counts(r, {"is": 30000}, len(big))))
        reqs.append((build_request("POST", count_target(["Zen"]), ZEN), False,
                     lambda r, i: check_counts(r, {"Zen": 1}, 858)))
    _pipeline(port(), reqs, timeout=60 * w.SLOW)


# ---------------------------------------------------------------- split requests

def test_byte_by_byte():
    rng = random.Random(SEED + 1)
    body = b"is this is\r\nis, is"
    exp = ref_count(body, ["is"])
    reqs = [build_request("POST", count_target(["is"]), body, [("Content-Type", "text/plain")]),
            build_request("POST", count_target(["is"]), body, chunked=[1, 3, 2]),
            build_request("POST", "/count", json.dumps({"text": body.decode(), "needle": "is"}),
                          [("Content-Type", "application/json")]),
            build_request("GET", "/healthz")]
    with Conn(port()) as c:
        for k, req in enumerate(reqs):
            for j in range(len(req)):
                c.sock.sendall(req[j:j + 1])
                if j % 16 == 0:
                    time.sleep(0.001)
            r = c.read_response()
            check_response(r, what="byte-by-byte request %d" % k)
            if k < 3:
                check_counts(r, exp, len(body), "byte-by-byte request %d" % k)
            else:
                assert r.status == 200
        # all four again, pipelined, in random pieces
        c.send_pieces(b"".join(reqs), rng, maxpiece=3, sleep_every=20)
        for k in range(4):
            r = c.read_response()
            check_response(r)
            if k < 3:
                check_counts(r, exp, len(body), "pieces request %d" % k)


def test_chunked_uploads():
    rng = random.Random(SEED + 2)
    text = ZEN * 50
    exp = {"is": 500}
    for sizes in [[1], [7], [858], [4096], [1 << 20], [1, 1000, 3]]:
        with Conn(port()) as c:
            c.send_pieces(build_request("POST", count_target(["is"]), text, chunked=sizes), rng,
                          maxpiece=70000)
            r = c.read_response()
            check_response(r)
            check_counts(r, exp, len(text), "chunk sizes %r" % sizes)
    # chunk extensions, upper-case hex, leading zeros, trailers
    wire = (b"POST /count?needle=is HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3;ext=1\r\nis \r\n00A\r\nis is is i\r\n1;a=b\r\ns\r\n0\r\nX-Trailer: t\r\n\r\n")
    with Conn(port()) as c:
        c.send(wire)
        r = c.read_response()
        check_response(r)
        check_counts(r, {"is": 5}, 14, "extensions, hex, trailers")
    # JSON and form bodies, chunked
    with Conn(port()) as c:
        body = json.dumps({"text": text.decode(), "needle": "is"}).encode()
        c.send(build_request("POST", "/count", body, [("Content-Type", "application/json")], chunked=[100]))
        r = c.read_response()
        check_counts(r, exp, len(text), "chunked JSON")
        body = b"text=is+is&needle=is"
        c.send(build_request("POST", "/count", body, [("Content-Type", "application/x-www-form-urlencoded")],
                             chunked=[1]))
        r = c.read_response()
        check_counts(r, {"is": 2}, 5, "chunked form")


# ---------------------------------------------------------------- Expect

def test_expect_100_continue():
    body = CORPUS
    with Conn(port()) as c:
        c.send(build_request("POST", count_target(["is"]), None,
                             [("Expect", "100-continue"), ("Content-Length", str(len(body)))]))
        r = c.read_response(timeout=10 * w.SLOW)
        assert r.status == 100, "expected 100 Continue before the body, got %r" % r
        check_response(r)
        c.send(body)
        r, interim = c.read_final()
        assert not interim, interim
        check_response(r)
        check_counts(r, {"is": 10000}, 858000)
        # chunked with Expect, on the same connection
        c.send(build_request("POST", count_target(["is"]), None,
                             [("Expect", "100-continue"), ("Transfer-Encoding", "chunked")]))
        r = c.read_response(timeout=10 * w.SLOW)
        assert r.status == 100, r
        c.send(w.chunk_body(ZEN, [100]))
        r, interim = c.read_final()
        check_response(r)
        check_counts(r, {"is": 10}, 858)
        # JSON with Expect
        body = json.dumps({"text": "is", "needle": "is"}).encode()
        c.send(build_request("POST", "/count", None,
                             [("Expect", "100-continue"), ("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))]))
        r = c.read_response(timeout=10 * w.SLOW)
        assert r.status == 100, r
        c.send(body)
        r, _ = c.read_final()
        check_counts(r, {"is": 1}, 2)


def test_expect_413_at_once():
    for p, cl, hs in [(port(), (1 << 30) + 1, []), (port(), 1 << 40, []),
                      (LIMITED.port, 65537, []),
                      (LIMITED.port, 4097, [("Content-Type", "application/json")]),
                      (LIMITED.port, 4097, [("Content-Type", "application/x-www-form-urlencoded")])]:
        target = count_target(["is"]) if not hs else "/count"
        with Conn(p) as c:
            c.send(build_request("POST", target, None,
                                 [("Expect", "100-continue"), ("Content-Length", str(cl))] + hs))
            r = c.read_response(timeout=10 * w.SLOW)
            assert r.status == 413, "Content-Length %d over the limit with Expect: expected 413 " \
                                    "without 100, got %r" % (cl, r)
            check_response(r)
            check_error(r, 413, code="payload_too_large")


def test_expect_with_known_bad_request():
    # the final error at once, or 100 and then the error: never a hang
    with Conn(port()) as c:
        c.send(build_request("POST", "/count?needle=is&bogus=1", None,
                             [("Expect", "100-continue"), ("Content-Length", "5")]))
        r = c.read_response(timeout=10 * w.SLOW)
        if r.status == 100:
            c.send(b"is is")
            r = c.read_response()
        check_response(r)
        check_error(r, 400, mentions=["bogus"])


# ---------------------------------------------------------------- strictness

FOLLOW = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
P = b"POST /count?needle=is HTTP/1.1\r\nHost: x\r\n"

VECTORS = [
    # name, bytes, expected status, must the connection close (framing)
    ("obs-fold (space)", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400, True),
    ("obs-fold (tab)", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n", 400, True),
    ("obs-fold hiding Content-Length (CVE-2024-27982)",
     P + b"X-A: a\r\n Content-Length: 5\r\n\r\nis is", 400, True),
    ("obs-fold continuing Content-Length", P + b"Content-Length: 5\r\n 0\r\n\r\nis is", 400, True),
    ("obs-fold continuing Transfer-Encoding",
     P + b"Transfer-Encoding: chunked\r\n , gzip\r\n\r\n2\r\nis\r\n0\r\n\r\n", 400, True),
    ("Content-Length + Transfer-Encoding",
     P + b"Content-Length: 7\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nis\r\n0\r\n\r\n", 400, True),
    ("Transfer-Encoding + Content-Length",
     P + b"Transfer-Encoding: chunked\r\nContent-Length: 7\r\n\r\n2\r\nis\r\n0\r\n\r\n", 400, True),
    ("duplicate Content-Length (same)", P + b"Content-Length: 2\r\nContent-Length: 2\r\n\r\nis", 400, True),
    ("duplicate Content-Length (different)", P + b"Content-Length: 2\r\nContent-Length: 5\r\n\r\nis is",
     400, True),
    ("Content-Length list", P + b"Content-Length: 2, 2\r\n\r\nis", 400, True),
    ("duplicate Content-Type", P + b"Content-Type: application/json\r\nContent-Type: text/plain\r\n"
     b"Content-Length: 2\r\n\r\nis", 400, False),
    ("Content-Length +2", P + b"Content-Length: +2\r\n\r\nis", 400, True),
    ("Content-Length -1", P + b"Content-Length: -1\r\n\r\nis", 400, True),
    ("Content-Length hex", P + b"Content-Length: 0x2\r\n\r\nis", 400, True),
    ("Content-Length with inner space", P + b"Content-Length: 1 2\r\n\r\nis is is is i", 400, True),
    ("Content-Length huge", P + b"Content-Length: 99999999999999999999999\r\n\r\nis", (400, 413), True),
    ("Transfer-Encoding gzip", P + b"Transfer-Encoding: gzip\r\n\r\nis", 400, True),
    ("Transfer-Encoding identity", P + b"Transfer-Encoding: identity\r\n\r\nis", 400, True),
    ("Transfer-Encoding gzip, chunked", P + b"Transfer-Encoding: gzip, chunked\r\n\r\n2\r\nis\r\n0\r\n\r\n",
     400, True),
    ("Transfer-Encoding chunked, gzip", P + b"Transfer-Encoding: chunked, gzip\r\n\r\n2\r\nis\r\n0\r\n\r\n",
     400, True),
    ("Transfer-Encoding twice", P + b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"2\r\nis\r\n0\r\n\r\n", 400, True),
    ("Transfer-Encoding xchunked", P + b"Transfer-Encoding: xchunked\r\n\r\n2\r\nis\r\n0\r\n\r\n", 400, True),
    ("space before colon", P + b"Transfer-Encoding : chunked\r\n\r\n2\r\nis\r\n0\r\n\r\n", 400, True),
    ("Transfer-Encoding on HTTP/1.0",
     b"POST /count?needle=is HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nis\r\n0\r\n\r\n", 400, True),
    ("Transfer-Encoding on HTTP/1.0 with Host and keep-alive",
     b"POST /count?needle=is HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n2\r\nis\r\n0\r\n\r\n", 400, True),
    ("bare CR in the request line", b"GET /healthz HTTP/1.1\rHost: x\r\n\r\n", 400, True),
    ("bare CR between headers", b"GET /healthz HTTP/1.1\r\nHost: x\rX-A: b\r\n\r\n", 400, True),
    ("bare CR only", b"GET /healthz HTTP/1.1\rHost: x\r\r", 400, True),
    ("bare CR in a header value", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 400, True),
    ("NUL in a header value", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400, True),
    ("space in a header name", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX A: b\r\n\r\n", 400, True),
    ("bad chunk size", P + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nis\r\n0\r\n\r\n", 400, True),
    ("chunk without CRLF after data", P + b"Transfer-Encoding: chunked\r\n\r\n2\r\nisXX0\r\n\r\n", 400, True),
    ("garbage request line", b"GARBAGE\r\n\r\n", (400, 501), True),
    # an empty target: llhttp calls on_url with no bytes while the URL
    # buffer is still NULL (UBSan stopped the server; found by fuzz_http)
    ("CONNECT with an empty target", b"CONNECT \r\n\r\n", (400, 505), True),
    ("CONNECT with an empty target, HTTP/1.1", b"CONNECT  HTTP/1.1\r\nHost: x\r\n\r\n", (400, 505), True),
    ("HTTP/2.0", b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n", 505, True),
    ("HTTP/3.0", b"GET /healthz HTTP/3.0\r\nHost: x\r\n\r\n", 505, True),
    ("POST HTTP/2.0", P.replace(b"HTTP/1.1", b"HTTP/2.0") + b"Content-Length: 2\r\n\r\nis", 505, True),
    # well-formed but unknown versions are 505; a malformed version is a
    # syntax error (400), not an unsupported one
    *[("version " + v, b"GET /healthz " + v.encode() + b"\r\nHost: x\r\n\r\n", st, True)
      for v, st in (("HTTP/1.2", 505), ("HTTP/0.9", 505), ("HTTP/1", 400), ("HTTP/1.", 400),
                    ("HTTP/1.x", 400), ("HTTP/x.1", 400), ("HTTP/11", 400), ("HTTP/1.10", 400),
                    ("HTTP/01.1", 400), ("HTTP/1.1 ", 400), ("http/1.1", 400))],
    ("missing Host on HTTP/1.1", b"GET /healthz HTTP/1.1\r\n\r\n", 400, False),
    ("two Host headers (RFC 9112 3.2: MUST 400)", b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
     400, False),
    ("missing Host on HTTP/1.1 POST", b"POST /count?needle=is HTTP/1.1\r\nContent-Length: 2\r\n\r\nis",
     400, False),
]


def _check_vector(name, data, status, framing):
    with Conn(port()) as c:
        c.send(data + (FOLLOW if framing else b""))
        try:
            r = c.read_response()
        except Closed as e:
            raise AssertionError("%s: expected %r, the connection closed without a response (%s)"
                                 % (name, status, e))
        check_response(r, what=name)
        ok = status if isinstance(status, tuple) else (status,)
        assert r.status in ok, "%s: expected %r, got %r\nrequest: %r" % (name, status, r, data)
        check_error(r, r.status)
        if framing:
            expect_close(c, name + " (must close: the pipelined GET after it must not be answered)")


def test_strict_parsing_vectors():
    failures = []
    lock = threading.Lock()

    def one(v):
        try:
            _check_vector(*v)
        except Exception as e:  # collect all, report together
            with lock:
                failures.append("%s: %s" % (v[0], e))
    ts = [threading.Thread(target=one, args=(v,), daemon=True) for v in VECTORS]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60 * w.SLOW)
    assert not failures, "%d of %d vectors failed:\n  " % (len(failures), len(VECTORS)) + \
        "\n  ".join(failures)


def _case_variants(name, rng):
    """name in lower, upper and random case."""
    return [name.lower(), name.upper(), "".join(ch.upper() if rng.random() < 0.5 else ch for ch in name)]


def _near_misses(name):
    """name with one byte changed at every position (the header matcher
    compares 4 or 8 bytes at a time, with overlapping loads at the end),
    and with one byte more and one less."""
    out = [name[:i] + ("q" if name[i].lower() != "q" else "z") + name[i + 1:] for i in range(len(name))]
    return out + [name + "x", name[:-1]]


def test_long_content_type_parameters():
    # the media type decides, however long the parameters (a value of 128
    # bytes and more used to be dropped: the JSON body was taken as raw)
    body = b'{"text":"is is","needle":"is"}'
    for extra in (90, 120, 400, 600, 3000):  # past the 512-byte value buffer too
        ct = "application/json; charset=utf-8; x=" + "a" * extra
        r = request(port(), "POST", "/count", body=body, headers=[("Content-Type", ct)])
        check_counts(r, {"is": 2}, 5, "Content-Type of %d bytes" % len(ct))
    # a long value split inside its media type, across reads
    ct = "application/json; x=" + "y" * 600
    raw = build_request("POST", "/count", body, [("Content-Type", ct)])
    cut = raw.index(b"/json") + 3
    with Conn(port()) as c:
        c.send(raw[:cut])
        time.sleep(0.2)
        c.send(raw[cut:])
        check_counts(c.read_response(), {"is": 2}, 5, "a long Content-Type in two reads")
    ct = "application/x-www-form-urlencoded;" + " p=" + "b" * 300
    r = request(port(), "POST", "/count", body=b"text=is+is&needle=is", headers=[("Content-Type", ct)])
    check_counts(r, {"is": 2}, 5, "a form's long Content-Type")


def test_header_names_any_case_and_near_misses():
    """The headers the server acts on are recognised in any letter case,
    and a name that differs in any one byte, or in length, is not one of
    them (it is an ordinary header, ignored)."""
    rng = random.Random(SEED)
    p = port()
    for name in _case_variants("Host", rng):
        r = request(p, "GET", "/healthz", headers=[(name, "x")], host=False)
        assert r.status == 200, "%r: %r" % (name, r)
    for name in _near_misses("Host"):
        r = request(p, "GET", "/healthz", headers=[(name, "x")], host=False)
        check_error(r, 400, mentions=["Host"])
    body = b'{"text": "is is", "needle": "is"}'
    for name in _case_variants("Content-Type", rng):
        r = request(p, "POST", "/count", body, headers=[(name, "application/json")])
        check_counts(r, {"is": 2}, 5, "JSON with %r" % name)
    for name in _near_misses("Content-Type"):  # not JSON: a raw body
        r = request(p, "POST", "/count?needle=is", body, headers=[(name, "application/json")])
        check_counts(r, {"is": 0}, len(body), "raw body with %r" % name)
    for name in _case_variants("X-Request-Id", rng):
        r = request(p, "GET", "/healthz", headers=[(name, "abc-1")])
        assert r.header("X-Request-Id") == "abc-1", "%r: %r" % (name, r)
    for name in _near_misses("X-Request-Id"):
        r = request(p, "GET", "/healthz", headers=[(name, "abc-1")])
        assert r.header("X-Request-Id") not in (None, "abc-1"), "%r: %r" % (name, r)
    for name in _case_variants("Content-Length", rng):
        with Conn(p) as c:
            c.send(build_request("POST", count_target(["is"]), b"is is", [(name, "5")], content_length=False))
            check_counts(c.read_response(), {"is": 2}, 5, "body framed by %r" % name)
    for name in _near_misses("Content-Length"):  # no framing: no body
        with Conn(p) as c:
            c.send(build_request("POST", count_target(["is"]), None, [(name, "5")]))
            check_counts(c.read_response(), {"is": 0}, 0, "no body with %r" % name)
    for name in _case_variants("Transfer-Encoding", rng):
        with Conn(p) as c:
            c.send(build_request("POST", count_target(["is"]), None, [(name, "chunked")]) +
                   b"5\r\nis is\r\n0\r\n\r\n")
            check_counts(c.read_response(), {"is": 2}, 5, "chunked by %r" % name)
    for name in _near_misses("Transfer-Encoding"):
        with Conn(p) as c:
            c.send(build_request("POST", count_target(["is"]), None, [(name, "chunked")]))
            check_counts(c.read_response(), {"is": 0}, 0, "no body with %r" % name)
    for name in _case_variants("Expect", rng):
        with Conn(p) as c:
            c.send(build_request("POST", count_target(["is"]), None, [(name, "100-continue"), ("Content-Length", "5")]))
            r = c.read_response()
            assert r.status == 100, "%r: %r" % (name, r)
    for name in _near_misses("Expect"):  # no interim answer: the body is awaited
        with Conn(p) as c:
            c.send(build_request("POST", count_target(["is"]), None, [(name, "100-continue"), ("Content-Length", "5")]))
            c.send(b"is is")
            check_counts(c.read_response(), {"is": 2}, 5, "no 100 with %r" % name)


def test_http10_without_host_is_fine():
    r = request(port(), "GET", "/healthz", version="1.0", host=False)
    assert r.status == 200, r
    r = request(port(), "POST", count_target(["is"]), ZEN, version="1.0", host=False)
    check_counts(r, {"is": 10}, 858)


def test_bodies_on_get_and_head_are_consumed():
    # a body on a GET is framed and skipped: the next pipelined request is
    # parsed after it, never from its bytes
    inner = b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
    for body_part in [b"Content-Length: %d\r\n\r\n" % len(inner) + inner,
                      b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % len(inner) + inner + b"\r\n0\r\n\r\n"]:
        with Conn(port()) as c:
            c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + body_part + FOLLOW)
            r1 = c.read_response()
            check_response(r1)
            assert r1.status in (200, 400), r1
            if r1.status == 200:
                r2 = c.read_response()
                check_response(r2)
                assert r2.status == 200 and r2.json() == {"status": "ok"}, \
                    "the body of a GET was parsed as a request: %r" % r2
            else:
                expect_close(c, "GET with a body rejected")
    with Conn(port()) as c:
        c.send(b"HEAD /nope HTTP/1.1\r\nHost: x\r\n\r\n" + FOLLOW)
        r = c.read_response(head=True)
        check_response(r, head=True)
        assert r.status == 404 and r.body == b"", r
        r = c.read_response()
        assert r.status == 200 and r.json() == {"status": "ok"}, "after HEAD 404: %r" % r


def test_half_close_and_expect_on_http10():
    # the client half-closes after its request (as nc does): still answered
    for req, exp, n in [(build_request("POST", count_target(["is"]), ZEN), {"is": 10}, 858),
                        (build_request("POST", count_target(["is"], mode="parallel"), ZEN * 3000),
                         {"is": 30000}, 858 * 3000)]:
        with Conn(port()) as c:
            c.send(req)
            c.sock.shutdown(socket.SHUT_WR)
            r = c.read_response()
            check_response(r)
            check_counts(r, exp, n, "request followed by a half-close")
    # HTTP/1.0 with Expect: the expectation is ignored (RFC 9110 10.1.1), no 100
    with Conn(port()) as c:
        c.send(b"POST /count?needle=is HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        time.sleep(0.3)
        c.send(b"is is")
        r = c.read_response()
        assert r.status != 100, "100 Continue sent to an HTTP/1.0 client"
        check_counts(r, {"is": 2}, 5)


MUTATION_BASE = [
    build_request("POST", count_target(["is", "a"], mode="parallel"), ZEN * 3),
    build_request("POST", count_target(["is"]), ZEN * 2, chunked=[100, 7]),
    build_request("POST", "/count", json.dumps({"text": ZEN.decode(), "needles": ["is", "a"], "ignore_case": True}),
                  [("Content-Type", "application/json")]),
    build_request("POST", "/count", b"text=is+a+is&needle=is&boundary=word",
                  [("Content-Type", "application/x-www-form-urlencoded")]),
    build_request("GET", "/healthz") + build_request("GET", "/readyz"),
]


def _mutate(rng, data):
    b = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(6)
        i = rng.randrange(len(b) + 1)
        if op == 0 and b:                                   # flip a byte
            b[min(i, len(b) - 1)] = rng.randrange(256)
        elif op == 1:                                       # insert special bytes
            b[i:i] = rng.choice([b"\r", b"\n", b"\r\n", b" ", b"\t", b"\x00", b":", b";", b"%", b"\\u0000",
                                 b"\"", b"{", b"ffffffff", b"\xff\xfe", b"0\r\n\r\n"])
        elif op == 2 and b:                                 # delete a range
            del b[i:i + rng.randint(1, 20)]
        elif op == 3:                                       # duplicate a range
            j = rng.randrange(len(b) + 1)
            b[i:i] = b[j:j + rng.randint(1, 40)]
        elif op == 4:                                       # truncate
            del b[i:]
        else:                                               # a header line
            k = data.find(b"\r\n") + 2
            b[k:k] = rng.choice([b"Content-Length: 3\r\n", b"Transfer-Encoding: chunked\r\n",
                                 b"Expect: 100-continue\r\n", b"Connection: close\r\n",
                                 b"Content-Type: application/json\r\n", b"Host: y\r\n", b" x\r\n"])
    return bytes(b)


def test_mutated_requests_do_not_crash():
    # mutated valid requests: every answer well-formed, or a close; the
    # server survives (under ASan: no memory error) and still counts right
    rng = random.Random(SEED + 7)
    errs = []
    lock = threading.Lock()

    def worker(k):
        r2 = random.Random(rng.random())
        for _ in range(100):
            data = _mutate(r2, r2.choice(MUTATION_BASE))
            try:
                with Conn(port(), timeout=10 * w.SLOW) as c:
                    c.send(data)
                    # a truncated request may wait for more: end it with a half-close
                    c.sock.shutdown(socket.SHUT_WR)
                    for _ in range(3):
                        try:
                            r = c.read_response()
                        except Closed:
                            break
                        check_response(r, what="mutated %r" % data[:200])
                        if 100 <= r.status < 200:
                            continue
            except (TimeoutError, OSError) as e:
                with lock:
                    errs.append("%r: %r" % (data[:300], e))
            except AssertionError as e:
                with lock:
                    errs.append(str(e)[:600])
    ts = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120 * w.SLOW)
    SHARED.assert_alive()
    r = request(port(), "POST", count_target(["is"]), ZEN)
    check_counts(r, {"is": 10}, 858)
    assert not errs, "%d problems, e.g.:\n  " % len(errs) + "\n  ".join(errs[:5])


def _header_section(rng, limit):
    """A random header section: a request line, header lines and the empty
    line, now and then with a bare CR or LF, a CR CR LF, a line folded with
    a space or tab, empty lines before the request, or a size near limit."""
    lines = [b"GET /healthz HTTP/1.1", b"Host: x"]
    for _ in range(rng.randrange(6)):
        lines.append(b"X-%d: %s" % (rng.randrange(100), b"v" * rng.choice([0, 1, 7, 15, 16, 17, 40])))
    if rng.random() < 0.2:
        lines.append(b"X-Big: " + b"b" * (limit - 60 - sum(len(ln) + 2 for ln in lines) + rng.randrange(-8, 9)))
    data = b"".join(ln + b"\r\n" for ln in lines) + b"\r\n"
    # anomalies anywhere, the request line too: in pieces llhttp can judge a
    # byte before the scanner sees the next one (a version "HTTP/1\r" is
    # llhttp's "Expected dot", whole it is the scanner's CR without LF),
    # and both must be the same status (400)
    head = len(lines[0]) + 2
    if rng.random() < 0.6:
        at = rng.randrange(4 if rng.random() < 0.3 else head, len(data) - 2)
        kind = rng.randrange(6)
        if kind == 0:
            data = data[:at] + b"\r" + data[at:]  # a CR, maybe bare
        elif kind == 1:
            data = data[:at] + b"\n" + data[at:]  # an LF, maybe bare
        elif kind == 2:
            data = data[:head] + data[head:].replace(b"\r\n", b"\n", 1 + rng.randrange(3))
        elif kind == 3:
            data = data.replace(b"\r\nX-", b"\r\n%sX-" % rng.choice([b" ", b"\t"]), 1)
        elif kind == 4:
            data = data[:head] + data[head:].replace(b"\r\n", b"\r\r\n", 1)
        else:
            data = rng.choice([b"\r\n", b"\n", b"\r\n\r\n"]) + data
    return data


def test_header_scan_whole_and_in_pieces_agree():
    """The header scanner checks a section that is all in one read 16 bytes
    at a time and walks it byte by byte otherwise (and wherever the fast
    check finds something wrong, for the exact error). Random sections
    (bare CR and LF, CR CR LF, folded lines, empty lines before the
    request, sizes around max_header_bytes) get the same status whole, in
    one send, as in pieces of 1-3 bytes (1-64 for large sections; the message may differ: in pieces
    llhttp can meet a bad byte before the scanner sees what follows it)."""
    rng = random.Random(SEED + 21)

    def answer(data, pieces):
        with Conn(LIMITED.port, timeout=10 * w.SLOW) as c:
            if pieces:
                c.send_pieces(data, rng, maxpiece=3 if len(data) < 1000 else 64, sleep_every=4)
            else:
                c.send(data)
            c.sock.shutdown(socket.SHUT_WR)
            try:
                r = c.read_response()
            except Closed:
                return "closed"
            return r.status, r.body if r.status == 200 else None

    def split_after(data, at):  # two reads: llhttp judges data[:at] first
        with Conn(LIMITED.port, timeout=10 * w.SLOW) as c:
            c.send(data[:at])
            time.sleep(0.05)
            try:
                c.send(data[at:])
                c.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # already answered and closed
            return c.read_response().status

    # a CR inside the version: in pieces llhttp meets "HTTP/1\r" (its
    # "Expected dot") before the scanner sees the CR's next byte (was 505)
    for data in (b"GET /healthz HTTP/1\r.1\r\nHost: x\r\n\r\n", b"GET /healthz HTTP/1.\r1\r\nHost: x\r\n\r\n",
                 b"GET /healthz HTTP/\r1.1\r\nHost: x\r\n\r\n"):
        at = data.index(b"\r") + 1
        assert answer(data, False)[0] == 400 and split_after(data, at) == 400, data

    bad = 0
    for _ in range(150):
        data = _header_section(rng, LIMITS["max_header_bytes"])
        whole, pieces = answer(data, False), answer(data, True)
        assert whole == pieces, "whole %r, in pieces %r: %r" % (whole, pieces, data)
        bad += whole[0] != 200
    assert 20 < bad < 130, bad


def test_header_section_too_large_431():
    with Conn(port()) as c:
        c.send(build_request("GET", "/healthz", headers=[("X-Big", "a" * 20000)]))
        r = c.read_response()
        check_response(r)
        check_error(r, 431)
    with Conn(port()) as c:
        c.send(build_request("GET", "/healthz", headers=[("X-H%d" % i, "b" * 90) for i in range(200)]))
        r = c.read_response()
        check_response(r)
        check_error(r, 431)
    # the limit from the config: 4096
    with Conn(LIMITED.port) as c:
        c.send(build_request("GET", "/healthz", headers=[("X-Big", "a" * 5000)]))
        r = c.read_response()
        check_error(r, 431)
    r = request(LIMITED.port, "GET", "/healthz", headers=[("X-Big", "a" * 3000)])
    assert r.status == 200, "a 3 KB header section is under max_header_bytes 4096: %r" % r
    # a huge request target
    with Conn(port()) as c:
        c.send(build_request("GET", "/healthz?" + "a" * 20000))
        r = c.read_response()
        check_response(r)
        assert r.status in (414, 431), "20 KB request target: %r" % r


def test_early_errors_know_the_method():
    """A request rejected before its headers are complete (bad Host, CL+TE,
    431, a header timeout) still has its method: HEAD gets no body, and the
    access log names the method sent (the method used to be set only at
    the end of the headers: HEAD got a body, GET was logged as DELETE)."""
    bad = [b"Host: a b\r\n\r\n",
           b"Host: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
           b"Host: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n"]
    with w.Server({"log": {"access": True, "file": "stdout"}}) as s:
        for method in (b"HEAD", b"GET", b"POST"):
            for tail in bad:
                with Conn(s.port) as c:
                    c.send(method + b" /healthz HTTP/1.1\r\n" + tail)
                    r = c.read_response(head=(method == b"HEAD"))
                    assert r.status in (400, 431), r
                    expect_close(c, "%s answered early" % method.decode())
        # the 431 is the scanner's, before llhttp parsed anything: "-"
        deadline = time.monotonic() + 5 * w.SLOW
        while s.stdout.count('" 431 ') < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        log = s.stdout
        for method in ("HEAD", "GET", "POST"):
            assert log.count('"%s /healthz" 400 ' % method) == 2, log
        assert log.count('"- " 431 ') == 3 and "DELETE" not in log, log


def test_every_expect_must_be_100_continue():
    """Two Expect headers: 417 unless both are 100-continue, in either
    order (the last one used to decide)."""
    for exp, want in (([b"100-continue", b"foo"], 417), ([b"foo", b"100-continue"], 417),
                      ([b"100-continue", b"100-continue"], 200)):
        with Conn(port()) as c:
            c.send(b"POST /count?needle=is HTTP/1.1\r\nHost: x\r\n"
                   + b"".join(b"Expect: %s\r\n" % e for e in exp)
                   + b"Content-Length: 2\r\n\r\nis")
            r, interim = c.read_final()
            assert r.status == want, (exp, r)
            assert [i.status for i in interim] == ([100] if want == 200 else []), (exp, interim)


def test_expect_on_a_bodiless_request_keeps_the_connection():
    """An error on a request without a body is answered at its end and the
    connection stays open, with an Expect header or not (with one it used
    to close, as if a body could follow)."""
    for exp in (b"100-continue", b"foo"):
        for target, want in ((b"/nope", 404), (b"/healthz", 417 if exp == b"foo" else 200),
                             (b"/count?needle=is", 405)):
            with Conn(port()) as c:
                c.send(b"GET %s HTTP/1.1\r\nHost: x\r\nExpect: %s\r\n\r\n" % (target, exp) + FOLLOW)
                r, interim = c.read_final()
                assert r.status == want and not interim, (exp, target, r, interim)
                assert not r.has_token("Connection", "close"), (exp, target, r)
                r2 = c.read_response()
                assert r2.status == 200, (exp, target, r2)


def test_http10_close_wins_over_keepalive():
    """RFC 9112 9.3: Connection "keep-alive, close" on HTTP/1.0 closes."""
    with Conn(port()) as c:
        c.send(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"
               b"GET /healthz HTTP/1.0\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.has_token("Connection", "close"), r
        expect_close(c, "HTTP/1.0 keep-alive, close")


def test_early_error_on_a_head_split_before_its_method_ends():
    # "HEA" in one read, the rest in the next: the 431 found by the scanner
    # (before llhttp has the method) still has no body for HEAD
    for first in (b"H", b"HEA", b"HEAD"):
        with Conn(port()) as c:
            c.send(first)
            time.sleep(0.2)  # its own read
            c.send(b"HEAD /healthz HTTP/1.1\r\nHost: a\r\nX: "[len(first):] + b"a" * 20000 + b"\r\n\r\n")
            r = c.read_response(head=True)
            assert r.status == 431, r
            how, data = c.wait_closed(15 * w.SLOW)
            assert data == b"", "%r then the rest: a body after the HEAD's 431: %r" % (first, data[:200])
    with Conn(port()) as c:  # and a GET so split keeps its body
        c.send(b"GE")
        time.sleep(0.2)
        c.send(b"T /healthz HTTP/1.1\r\nHost: a\r\nX: " + b"a" * 20000 + b"\r\n\r\n")
        r = c.read_response()
        check_error(r, 431)


def test_trailers_and_chunk_extensions():
    """Chunk extensions and trailer fields are discarded: a trailer sets no
    request id and no Host; together they count against
    limits.max_header_bytes (4096 here): 431 past it."""
    head = b"POST /count?needle=is HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    with Conn(LIMITED.port) as c:
        c.send(head + b"2;a=b\r\nis\r\n1;c\r\n \r\n0\r\nX-Request-Id: fromtrailer\r\nHost: a b\r\n\r\n")
        r = c.read_response()
        check_counts(r, {"is": 1}, 3)
        assert r.header("X-Request-Id") != "fromtrailer", r
        c.send(head + b"2\r\nis\r\n0\r\nX-A: " + b"a" * 3000 + b"\r\n\r\n")  # under the limit
        check_counts(c.read_response(), {"is": 1}, 2)
    for body in (b"2\r\nis\r\n0\r\nX-Big: " + b"b" * 5000 + b"\r\n\r\n",
                 # bytes llhttp passes to no callback count too: whitespace
                 # before a value, colons and line ends (these were 200)
                 b"2\r\nis\r\n0\r\nX: " + b" " * 5000 + b"v\r\n\r\n",
                 b"2\r\nis\r\n0\r\nX:" + b"\t" * 5000 + b"\r\n\r\n",
                 b"2\r\nis\r\n0\r\n" + b"a:\r\n" * 1100 + b"\r\n",
                 b"2;e=" + b"e" * 5000 + b"\r\nis\r\n0\r\n\r\n",
                 b"".join(b"1;e=%s\r\ni\r\n" % (b"e" * 100) for _ in range(50)) + b"0\r\n\r\n"):
        with Conn(LIMITED.port) as c:
            c.send(head + body)
            r = c.read_response()
            check_error(r, 431)
            assert "chunk extensions and trailer fields" in r.json()["error"]["message"], r
    # the same whitespace in pieces (the section spans reads), and a
    # trailer just under the limit in pieces
    big = head + b"2\r\nis\r\n0\r\nX: " + b" " * 5000 + b"v\r\n\r\n"
    with Conn(LIMITED.port) as c:
        c.send_pieces(big, random.Random(5), maxpiece=700)
        check_error(c.read_response(), 431)
    ok = head + b"2\r\nis\r\n0\r\nX: " + b" " * 2000 + b"v\r\nY:\t" + b"w" * 1500 + b"\r\n\r\n"
    with Conn(LIMITED.port) as c:
        c.send_pieces(ok, random.Random(6), maxpiece=300)
        check_counts(c.read_response(), {"is": 1}, 2)


def test_absolute_form_and_fragments():
    """http://a (the shortest authority) is absolute-form with the path /;
    a fragment (#...) in a request target is refused (RFC 9112 3.2)."""
    with Conn(port()) as c:
        c.send(b"GET http://a HTTP/1.1\r\nHost: a\r\n\r\n")
        assert c.read_response().status == 404  # "/" is no endpoint
        c.send(b"GET http://a/healthz HTTP/1.1\r\nHost: a\r\n\r\n")
        assert c.read_response().status == 200
    for target in (b"/count?needle=is#frag", b"/healthz#x", b"http://a/healthz#x"):
        with Conn(port()) as c:
            c.send(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nis" % target)
            r = c.read_response()
            check_error(r, 400)
            assert "fragment" in r.json()["error"]["message"], r


# ---------------------------------------------------------------- 413

def test_413_from_content_length_before_body():
    cases = [(count_target(["is"]), [], 65537),
             ("/count", [("Content-Type", "application/json")], 4097),
             ("/count", [("Content-Type", "application/x-www-form-urlencoded")], 4097)]
    for target, hs, cl in cases:
        with Conn(LIMITED.port) as c:
            # headers only: the 413 must come without the body
            c.send(build_request("POST", target, None, hs + [("Content-Length", str(cl))]))
            r = c.read_response(timeout=10 * w.SLOW)
            check_response(r)
            check_error(r, 413, code="payload_too_large")
    # at the limit: fine
    r = request(LIMITED.port, "POST", count_target(["is"]), b"is " * 21845 + b"i")
    check_counts(r, {"is": 21845}, 65536)
    # the query needle makes a JSON-typed body raw: the raw limit applies
    body = b"is " * 2000
    r = request(LIMITED.port, "POST", count_target(["is"]), body, [("Content-Type", "application/json")])
    check_counts(r, {"is": 2000}, len(body), "raw body with a JSON Content-Type over the JSON limit")
    r = request(LIMITED.port, "POST", "/count", json.dumps({"text": "is " * 1400, "needle": "is"}),
                [("Content-Type", "application/json")])
    check_error(r, 413, code="payload_too_large")


def test_413_chunked_as_soon_as_limit_passes():
    for target, hs, limit in [(count_target(["is"]), [], 65536),
                              ("/count", [("Content-Type", "application/json")], 4096)]:
        with Conn(LIMITED.port) as c:
            c.send(build_request("POST", target, None, hs + [("Transfer-Encoding", "chunked")]))
            chunk = b"is " * 341 + b"i"  # 1024 bytes
            sent = 0
            while sent <= limit + 4096:
                c.send(b"400\r\n" + chunk + b"\r\n")
                sent += 1024
            # no terminating chunk: the 413 must come anyway
            r = c.read_response(timeout=10 * w.SLOW)
            check_response(r)
            check_error(r, 413, code="payload_too_large")


def _send_all_then_read(p, head, body, what):
    """What curl does without Expect: send everything, then read."""
    with Conn(p, timeout=30 * w.SLOW) as c:
        c.send(head)
        try:
            c.sock.sendall(body)
        except OSError as e:
            raise AssertionError("%s: sending the body failed with %r: the server closed (or reset) "
                                 "before the client could read the error (no lingering close)" % (what, e))
        try:
            r = c.read_response()
        except Closed as e:
            raise AssertionError("%s: connection reset/closed before the error could be read: %s" % (what, e))
        check_response(r)
        check_error(r, 413, code="payload_too_large")


def test_early_error_then_client_keeps_sending():
    big = b"is " * (3 << 20)  # 9 MB
    head = build_request("POST", count_target(["is"]), None, [("Content-Length", str(len(big)))])
    _send_all_then_read(LIMITED.port, head, big, "Content-Length over the limit")
    head = build_request("POST", count_target(["is"]), None, [("Transfer-Encoding", "chunked")])
    _send_all_then_read(LIMITED.port, head, w.chunk_body(big, [65536]), "chunked over the limit")
    jb = json.dumps({"text": "is " * 300000, "needle": "is"}).encode()
    head = build_request("POST", "/count", None, [("Content-Type", "application/json"),
                                                  ("Content-Length", str(len(jb)))])
    _send_all_then_read(LIMITED.port, head, jb, "JSON over the limit")
    # the server is fine afterwards
    r = request(LIMITED.port, "POST", count_target(["is"]), ZEN)
    check_counts(r, {"is": 10}, 858)


def test_zz_shutdown_clean():
    LIMITED.stop()
    SHARED.stop()


if __name__ == "__main__":
    w.run(globals(), deadline=170)
