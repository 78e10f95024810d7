"""Timeouts and limits (issue 3, "Timeouts", "Limits"): slow headers and
stalled bodies get 408 or a close, idle keep-alive connections close, slow
clients never delay others, max_connections, bounded memory for streaming
uploads and for unread pipelined output. No assertion is on timing: every
wait is a generous upper bound."""

import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wctest as w  # noqa: E402
from wctest import (ZEN, Closed, Conn, build_request, check_counts, check_error,  # noqa: E402
                    check_response, count_target, request)

SMALL = {"timeouts_ms": {"header": 500, "body": 500, "keepalive": 300},
         "limits": {"max_body_bytes": 1 << 20, "max_connections": 8}}
SHORT = w.Shared(SMALL)


def port():
    return SHORT.port


def expect_408_or_close(c, what, timeout=None):
    """The server must answer 408 (then close) or just close."""
    timeout = timeout or 15 * w.SLOW
    try:
        r = c.read_response(timeout=timeout)
    except Closed:
        return "closed"
    except TimeoutError:
        raise AssertionError("%s: neither 408 nor a close within %.0fs (timeouts of 500 ms)"
                             % (what, timeout))
    check_response(r, what=what)
    check_error(r, 408)
    how, data = c.wait_closed(timeout)
    assert data == b"", "%s: bytes after the 408: %r" % (what, data[:200])
    return "408"


def test_slow_header_gets_408_or_close():
    with Conn(port()) as c:
        c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        expect_408_or_close(c, "incomplete header section")
    with Conn(port()) as c:
        c.send(b"POS")
        expect_408_or_close(c, "incomplete request line")


def test_trickled_header_is_cut():
    # one byte every 50 ms, never finishing: the header timeout counts from
    # the first byte, so progress does not keep the connection alive
    with Conn(port()) as c:
        line = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 10000
        deadline = time.monotonic() + 20 * w.SLOW
        i = 0
        closed = False
        while time.monotonic() < deadline and i < len(line):
            try:
                c.sock.sendall(line[i:i + 1])
            except OSError:
                closed = True
                break
            i += 1
            try:
                c.sock.settimeout(0.05)
                b = c.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                closed = True
                break
            if b:
                c.buf += b
            closed = True
            break
        assert closed, "a header trickled for %d bytes (%.0fs) was not cut by the 500 ms header timeout" % (
            i, 20 * w.SLOW)
        if c.buf:
            expect_408_or_close(c, "trickled header")


def test_stalled_body_gets_408_or_close():
    with Conn(port()) as c:
        c.send(build_request("POST", count_target(["is"]), None, [("Content-Length", "100")]) + b"is is")
        expect_408_or_close(c, "stalled Content-Length body")
    with Conn(port()) as c:
        c.send(build_request("POST", count_target(["is"]), None, [("Transfer-Encoding", "chunked")])
               + b"5\r\nis is\r\n")
        expect_408_or_close(c, "stalled chunked body")


def test_progressing_body_is_not_cut():
    # the body timeout is about no progress: a slow but steady body (a byte
    # every 100 ms, 2.5 s in all) passes a 2 s body timeout
    cfg = {"timeouts_ms": {"header": 10000, "body": 2000, "keepalive": 5000}}
    with w.Server(cfg) as s:
        body = b"is " * 8 + b"i"
        with Conn(s.port, timeout=30 * w.SLOW) as c:
            c.send(build_request("POST", count_target(["is"]), None, [("Content-Length", str(len(body)))]))
            for i in range(len(body)):
                time.sleep(0.1)
                c.send(body[i:i + 1])
            r = c.read_response()
            check_response(r)
            check_counts(r, {"is": 8}, len(body), "a body progressing a byte every 100 ms")


def test_timers_during_a_slow_body():
    # headers done: the header timer (500 ms) stops; a body arriving a byte
    # every 50 ms (never 300 ms without progress) runs 2 s in all and must
    # not be cut by the header, keep-alive or body timers
    with Conn(port(), timeout=30 * w.SLOW) as c:
        c.send(build_request("GET", "/healthz"))
        assert c.read_response().status == 200
        body = b"is " * 13 + b"i"
        c.send(build_request("POST", count_target(["is"]), None, [("Content-Length", str(len(body)))]))
        for i in range(len(body)):
            time.sleep(0.05)
            c.send(body[i:i + 1])
        r = c.read_response()
        check_response(r)
        check_counts(r, {"is": 13}, len(body), "slow steady body on a keep-alive connection")
        # a second request on the same connection whose header stalls: 408 or close
        c.send(b"GET /healthz HTTP/1.1\r\nHo")
        expect_408_or_close(c, "stalled header of a second request")


def test_idle_keepalive_closes():
    with Conn(port()) as c:
        c.send(build_request("GET", "/healthz"))
        r = c.read_response()
        assert r.status == 200
        try:
            how, data = c.wait_closed(15 * w.SLOW)
        except TimeoutError:
            raise AssertionError("an idle keep-alive connection stayed open for %.0fs (keepalive 300 ms)"
                                 % (15 * w.SLOW))
        assert data == b"", data


def test_slow_clients_do_not_delay_others():
    cfg = {"timeouts_ms": {"header": 120000, "body": 120000, "keepalive": 120000}}
    with w.Server(cfg) as s:
        slow = []
        try:
            for i in range(10):
                c = Conn(s.port)
                c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                slow.append(c)
            for i in range(10):
                c = Conn(s.port)
                c.send(build_request("POST", count_target(["is"]), None, [("Content-Length", "100000")])
                       + b"is " * 100)
                slow.append(c)
            for i in range(5):
                c = Conn(s.port)
                c.send(build_request("POST", "/count", None, [("Content-Length", "100000"),
                                                               ("Content-Type", "application/json")])
                       + b'{"text": "is')
                slow.append(c)
            # fast clients are served while all the slow ones are open
            for i in range(10):
                r = request(s.port, "POST", count_target(["is"]), ZEN * 100, timeout=20 * w.SLOW)
                check_counts(r, {"is": 1000}, 85800)
            big = ZEN * 3000
            r = request(s.port, "POST", count_target(["is"], mode="parallel"), big, timeout=30 * w.SLOW)
            check_counts(r, {"is": 30000}, len(big))
            still = sum(1 for c in slow if not c.closed_now(0.01))
            assert still == len(slow), "%d of %d slow connections were closed early" % (
                len(slow) - still, len(slow))
        finally:
            for c in slow:
                c.close()


def test_max_connections():
    # One loop, and four loops that share the limit (SO_REUSEPORT spreads the
    # connections over them, so a waiting client may sit on a loop other
    # than the one where a slot frees up).
    for loops in (1, 4):
        cfg = {"timeouts_ms": {"header": 60000, "body": 60000, "keepalive": 60000},
               "limits": {"max_connections": 8}, "event_loops": loops}
        with w.Server(cfg) as s:
            _max_connections(s, loops)


def _max_connections(s, loops):
    conns, extras = [], []
    try:
        for i in range(8):
            c = Conn(s.port)
            c.send(build_request("GET", "/healthz"))
            r = c.read_response()
            assert r.status == 200, r
            conns.append(c)
        # more clients: they wait (not accepted), or are refused; none is
        # served while 8 are open
        served_now = 0
        for k in range(4):
            try:
                extra = Conn(s.port, timeout=5)
                extra.send(build_request("GET", "/healthz"))
                extras.append(extra)
            except OSError as e:
                w.log("  (an extra connection was refused at connect: %s)" % e)
        for extra in list(extras):
            try:
                r = extra.read_response(timeout=1.5 if extra is extras[0] else 0.2)
                if r.status == 200:
                    served_now += 1
                else:
                    check_response(r)
                    assert r.status == 503, r
                    extras.remove(extra)
                    extra.close()
            except TimeoutError:
                pass
            except Closed:
                w.log("  (an extra connection was closed: refused)")
                extras.remove(extra)
                extra.close()
        w.log("  event_loops %d: %d extra connection(s) wait" % (loops, len(extras)))
        assert served_now == 0, "%d connection(s) served while max_connections=8 were open" % served_now
        # below the limit again: every waiting one is served (with several
        # loops in no particular order: each loop has its own backlog)
        for extra in extras:
            conns.pop().close()
        for extra in extras:
            r = extra.read_response(timeout=20 * w.SLOW)
            assert r.status == 200, r
            extra.close()
        extras = []
        for c in conns:
            c.close()
        conns = []
        # fully recovered: many sequential requests work
        for i in range(20):
            r = request(s.port, "GET", "/healthz", timeout=20 * w.SLOW)
            assert r.status == 200
    finally:
        for c in conns + extras:
            c.close()

def test_connection_flood_recovers():
    # 40 connections against max_connections 8 with short timeouts: some wait
    # or are refused; once they are gone the server answers again
    conns = []
    try:
        for i in range(40):
            try:
                c = Conn(port(), timeout=5)
                c.sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                conns.append(c)
            except OSError:
                pass
    finally:
        for c in conns:
            c.close()
    deadline = time.monotonic() + 30 * w.SLOW
    last = None
    while time.monotonic() < deadline:
        try:
            r = request(port(), "POST", count_target(["is"]), ZEN, timeout=10 * w.SLOW)
            check_counts(r, {"is": 10}, 858)
            return
        except (OSError, Closed, TimeoutError) as e:
            last = e
            time.sleep(0.2)
    raise AssertionError("the server did not recover after a connection flood: %r" % last)


def test_413_with_small_max_body():
    r = request(port(), "POST", count_target(["is"]), b"is " * 400000)
    check_error(r, 413, code="payload_too_large")
    r = request(port(), "POST", count_target(["is"]), ZEN)
    check_counts(r, {"is": 10}, 858)


def vm_hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def test_streaming_memory_is_bounded():
    if w.SANITIZED:
        print("  (skipped under sanitizers: their allocator and quarantine dominate RSS)")
        return
    with w.Server() as s:
        block = ZEN * 1200            # 1,029,600 bytes
        nblocks = 250                 # 257 MB per upload
        total = len(block) * nblocks
        errs = []

        def upload(mode):
            try:
                with Conn(s.port, timeout=120) as c:
                    c.send(build_request("POST", count_target(["is"], mode=mode), None,
                                         [("Content-Length", str(total))]))
                    for _ in range(nblocks):
                        c.sock.sendall(block)
                    r = c.read_response()
                    check_counts(r, {"is": 12000 * nblocks}, total, "257 MB upload mode=" + mode)
            except Exception as e:
                errs.append(e)
        ts = [threading.Thread(target=upload, args=(m,), daemon=True)
              for m in ["auto", "parallel", "sequential"]]
        for t in ts:
            t.start()
        for t in ts:
            t.join(150)
        assert not errs, errs
        hwm = vm_hwm_kib(s.proc.pid)
        print("  server VmHWM after 3 concurrent 257 MB uploads: %d KiB" % hwm)
        assert hwm < 192 * 1024, "server peak RSS %d KiB for 3 streamed uploads of %d bytes: the body is " \
                                 "not streamed with bounded memory" % (hwm, total)


def test_buffered_json_bodies_are_bounded():
    """JSON bodies are buffered whole: above the global cap (256 MiB at
    least) only one of them may go on at a time, so many big uploads at
    once neither exhaust memory nor wait on each other forever."""
    n, size = 12, 40 << 20                       # 480 MiB in all
    unit = b"is " * 1000
    text = unit * (size // len(unit))
    body = b'{"needle":"is","text":"' + text + b'"}'
    want = text.count(b"is")
    with w.Server({"workers": 2, "log": {"access": False}}) as s:
        errs, done = [], []

        def upload():
            try:
                with Conn(s.port, timeout=180) as c:
                    c.send(build_request("POST", "/count", None,
                                         [("Content-Type", "application/json"),
                                          ("Content-Length", str(len(body)))]))
                    c.sock.sendall(body)
                    r = c.read_response(timeout=180)
                    check_counts(r, {"is": want}, len(text), "40 MiB JSON")
                    done.append(1)
            except Exception as e:
                errs.append(e)
        ts = [threading.Thread(target=upload, daemon=True) for _ in range(n)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(200)
        assert not errs, errs[:3]
        assert len(done) == n, "%d of %d JSON uploads answered" % (len(done), n)
        hwm = vm_hwm_kib(s.proc.pid)
        print("  server VmHWM after %d concurrent %d MiB JSON uploads: %d KiB" % (n, size >> 20, hwm))
        if not w.SANITIZED:
            # cap 256 MiB + one privileged body (40 MiB) + the parse of one
            # body at a time per worker and read buffers; 480 MiB unbounded
            assert hwm < 420 * 1024, "peak RSS %d KiB: buffered bodies are not bounded" % hwm


def test_announced_length_holds_no_budget():
    """A JSON body is counted in the budget as it arrives, not for the
    Content-Length it announces: clients that announce 64 MiB each and stop
    after 700 KB (six of them would hold 384 MiB, over the 256 MiB cap)
    leave room for everyone else, whose uploads are answered at once
    instead of after the stalled clients' body timeout."""
    cfg = {"event_loops": 1, "timeouts_ms": {"body": 120000}, "log": {"access": False}}
    with w.Server(cfg) as s:
        stalled = []
        try:
            for i in range(6):
                c = Conn(s.port, timeout=30)
                c.send(build_request("POST", "/count", None,
                                     [("Content-Type", "application/json"),
                                      ("Content-Length", str((64 << 20) - 64))]))
                c.sock.sendall(b'{"needle":"is","text":"' + b"is " * 240000)
                stalled.append(c)
            time.sleep(0.3)  # all of it read and buffered
            text = ZEN * 4000
            body = json.dumps({"needle": "is", "text": text.decode()}).encode()
            for i in range(3):
                # liveness, not speed: the old behaviour answered after 120 s
                r = request(s.port, "POST", "/count", body, [("Content-Type", "application/json")],
                            timeout=60 * w.SLOW)
                check_counts(r, {"is": 40000}, len(text), "3.4 MB JSON beside announced 64 MiB bodies")
        finally:
            for c in stalled:
                c.close()


def test_unread_pipelined_output_is_bounded():
    # 20000 pipelined requests while the client reads nothing for a while:
    # the server must stop reading (back-pressure), then answer them all in order
    n = 20000
    req = build_request("GET", "/healthz")
    data = req * n
    with w.Server() as s, Conn(s.port, timeout=60 * w.SLOW) as c:
        errs = []

        def sender():
            try:
                c.sock.sendall(data)
            except OSError as e:
                errs.append(e)
        t = threading.Thread(target=sender, daemon=True)
        t.start()
        time.sleep(1.0)
        for i in range(n):
            r = c.read_response()
            if r.status != 200:
                raise AssertionError("pipelined response %d: %r" % (i, r))
        t.join(30)
        assert not errs, errs


def test_a_slow_reader_is_not_idle():
    # Answers the client has not read yet, and pipelined requests behind
    # them, keep a connection from being idle: a pause longer than the
    # keep-alive timeout (but shorter than timeouts_ms.body, which then
    # applies from the last bytes the client took) loses nothing. (The old
    # server closed it at the keep-alive timeout, mid-answer.)
    n = 600
    cfg = {"timeouts_ms": {"header": 60000, "body": 60000, "keepalive": 300}}
    with w.Server(cfg) as s:
        with Conn(s.port, rcvbuf=4096, timeout=30 * w.SLOW) as c:
            c.send(build_request("GET", "/metrics") * n)
            time.sleep(1.5)  # five keep-alive timeouts without reading
            for i in range(n):
                try:
                    r = c.read_response()
                except Closed:
                    raise AssertionError("closed after %d of %d pipelined answers: "
                                         "a client reading slowly was taken for idle" % (i, n))
                assert r.status == 200, (i, r.status)
            # read up, it is idle again: the keep-alive timeout closes it
            how, data = c.wait_closed(15 * w.SLOW)
            assert data == b"", data


def test_a_reader_that_stops_is_closed():
    # A client that stops taking the answers is closed timeouts_ms.body
    # after the last bytes it took, not kept forever.
    cfg = {"timeouts_ms": {"header": 60000, "body": 500, "keepalive": 300}}
    with w.Server(cfg) as s, Conn(s.port, rcvbuf=4096) as c:
        c.send(build_request("GET", "/metrics") * 600)
        deadline = time.monotonic() + 30 * w.SLOW
        while time.monotonic() < deadline:
            time.sleep(0.2)
            r = request(s.port, "GET", "/metrics")
            if "wordcount_open_connections 1\n" in r.body.decode():
                break  # only the /metrics request's own connection is left
        else:
            raise AssertionError("a connection whose client stopped reading was not closed")


def test_zz_shutdown_clean():
    SHORT.stop()


if __name__ == "__main__":
    w.run(globals(), deadline=170)
