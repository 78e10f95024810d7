"""Lifetimes and shutdown (issue 3, "Lifetimes", "Shutdown"): many clients
leaving mid-upload and mid-count (run under ASan this is the use-after-free
and double-free check), concurrent correctness, SIGTERM with requests in
flight (they complete with Connection: close, /readyz turns 503, exit 0),
the shutdown timeout and the second signal."""

import json
import os
import random
import signal
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wctest as w  # noqa: E402
from wctest import (ZEN, Closed, Conn, build_request, check_counts, check_response,  # noqa: E402
                    count_target, ref_count, request)

SEED = int(os.environ.get("WC_SEED", random.randrange(1 << 30)))
BIG = ZEN * 4000  # 3.4 MB


def rst_close(sock):
    """Close with a reset (SO_LINGER 0), the rudest way to leave."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def leave(p, rng, kind):
    """One client that leaves early in one of several ways."""
    try:
        s = socket.create_connection((w.HOST, p), timeout=10 * w.SLOW)
    except OSError:
        return
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        mode = rng.choice(["auto", "parallel", "sequential"])
        if kind == "mid-upload":
            total = 20 * 10**6
            s.sendall(build_request("POST", count_target(["is"], mode=mode), None,
                                    [("Content-Length", str(total))]))
            s.sendall(BIG[: rng.randint(1, len(BIG))])
        elif kind == "mid-count":
            s.sendall(build_request("POST", count_target(["is", "better"], mode=mode), BIG))
        elif kind == "mid-chunk":
            s.sendall(build_request("POST", count_target(["is"], mode=mode), None,
                                    [("Transfer-Encoding", "chunked")]))
            s.sendall(b"100000\r\n" + BIG[: rng.randint(1, 0x100000 - 1)])
        elif kind == "json-mid-count":
            body = json.dumps({"text": BIG.decode(), "needle": "is", "mode": mode}).encode()
            s.sendall(build_request("POST", "/count", body, [("Content-Type", "application/json")]))
        elif kind == "pipelined":
            s.sendall(build_request("POST", count_target(["is"], mode=mode), BIG) * 3)
        elif kind == "expect":
            s.sendall(build_request("POST", count_target(["is"]), None,
                                    [("Content-Length", str(len(BIG))), ("Expect", "100-continue")]))
        elif kind == "half-read":
            s.sendall(build_request("POST", count_target(["is"], mode=mode), BIG))
            s.settimeout(10 * w.SLOW)
            try:
                s.recv(10)
            except OSError:
                pass
        if rng.random() < 0.3:
            time.sleep(rng.random() * 0.05)
    except OSError:
        pass
    finally:
        if rng.random() < 0.5:
            rst_close(s)
        else:
            s.close()


KINDS = ["mid-upload", "mid-count", "mid-chunk", "json-mid-count", "pipelined", "expect", "half-read"]


def test_clients_leave_mid_upload_and_mid_count():
    rng = random.Random(SEED)
    w.log("  seed %d" % SEED)
    with w.Server({"parallel": {"min_bytes": 65536}}) as s:
        for rnd in range(2):
            ts = []
            for i in range(50):
                t = threading.Thread(target=leave, args=(s.port, random.Random(rng.random()),
                                                          KINDS[i % len(KINDS)]), daemon=True)
                ts.append(t)
            for t in ts:
                t.start()
            # correct answers while the others leave
            for mode in ["auto", "parallel", "sequential"]:
                r = request(s.port, "POST", count_target(["is"], mode=mode), BIG, timeout=60 * w.SLOW)
                check_counts(r, {"is": 40000}, len(BIG), "during round %d mode=%s" % (rnd, mode))
            for t in ts:
                t.join(60 * w.SLOW)
                assert not t.is_alive(), "a leaving client hung"
            assert s.alive(), "the server died; stderr:\n" + w.tail(s.stderr)
        # afterwards: still right, in every mode and way
        for mode in ["auto", "parallel", "sequential"]:
            r = request(s.port, "POST", count_target(["is", "Zen"], mode=mode), BIG, timeout=60 * w.SLOW)
            check_counts(r, {"is": 40000, "Zen": 4000}, len(BIG), "after the leavers mode=" + mode)
        r = request(s.port, "POST", count_target(["is"]), BIG, chunked=[65536], timeout=60 * w.SLOW)
        check_counts(r, {"is": 40000}, len(BIG))
        # the server stops with exit 0 and (under ASan) no report: checked by the with-block


def test_concurrent_requests_are_correct():
    rng = random.Random(SEED + 1)
    jobs = []
    for i in range(40):
        text = w.random_text(rng, rng.choice([10, 1000, 20000])).encode()
        needles = w.random_needles(rng)
        mode = rng.choice(["auto", "parallel", "sequential"])
        jobs.append((text, needles, mode, ref_count(text, needles)))
    errs = []
    with w.Server({"parallel": {"min_bytes": 65536}}) as s:
        def worker(k):
            try:
                with Conn(s.port, timeout=60 * w.SLOW) as c:
                    for j in range(k, len(jobs), 8):
                        text, needles, mode, exp = jobs[j]
                        c.send(build_request("POST", count_target(needles, mode=mode), text))
                        r = c.read_response()
                        check_response(r)
                        check_counts(r, exp, len(text), "job %d" % j)
            except Exception as e:
                errs.append(e)
        ts = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(90 * w.SLOW)
        assert not errs, errs[:3]


def test_many_concurrent_uploads_no_deadlock():
    # 64 uploads of 3.4 MB interleaved in 64 KiB pieces: every connection
    # holds a partly filled block at once; back-pressure must not deadlock
    errs = []
    done = [0]
    lock = threading.Lock()
    with w.Server() as s:
        def up(k):
            try:
                with Conn(s.port, timeout=120 * w.SLOW) as c:
                    mode = ["auto", "parallel", "sequential"][k % 3]
                    c.send(build_request("POST", count_target(["is"], mode=mode), None,
                                         [("Content-Length", str(len(BIG)))]))
                    for i in range(0, len(BIG), 65536):
                        c.send(BIG[i:i + 65536])
                        time.sleep(0)
                    r = c.read_response()
                    check_counts(r, {"is": 40000}, len(BIG), "upload %d" % k)
                    with lock:
                        done[0] += 1
            except Exception as e:
                errs.append(e)
        ts = [threading.Thread(target=up, args=(k,), daemon=True) for k in range(64)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120 * w.SLOW)
        assert not errs, "%d uploads failed: %r" % (len(errs), errs[:3])
        assert done[0] == 64, "only %d of 64 concurrent uploads completed (deadlock?)" % done[0]


def test_sigterm_right_after_listening_line():
    # a supervisor may signal as soon as the server says it listens: the
    # handlers must be in place by then (exit 0, not death by SIGTERM)
    bad = []
    for i in range(15):
        s = w.Server()
        s.send_signal(signal.SIGTERM)
        rc = s.wait(30 * w.SLOW)
        s.kill()
        if rc != 0:
            bad.append(rc)
    assert not bad, "exit statuses %r in 15 starts stopped by SIGTERM right after 'listening on' " \
                    "(-15: killed by the signal, no handler yet)" % bad


def wait_refused(p, timeout):
    """Polls until new connections are refused (the listener is closed);
    returns True when observed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            s = socket.create_connection((w.HOST, p), timeout=1)
            s.close()
        except OSError:
            return True
        time.sleep(0.05)
    return False


def test_sigterm_with_requests_in_flight():
    with w.Server({"timeouts_ms": {"shutdown": 60000}}) as s:
        # an idle keep-alive connection
        idle = Conn(s.port)
        idle.send(build_request("GET", "/healthz"))
        assert idle.read_response().status == 200
        # a request whose header section is incomplete: /readyz
        ready = Conn(s.port)
        ready.send(b"GET /readyz HTTP/1.1\r\nHost: x\r\n")
        # an upload half sent
        up = Conn(s.port, timeout=60 * w.SLOW)
        up.send(build_request("POST", count_target(["is"]), None, [("Content-Length", str(len(BIG)))]))
        half = len(BIG) // 2
        up.send(BIG[:half])
        # a request being counted (sent completely, response not read yet)
        busy = Conn(s.port, timeout=60 * w.SLOW)
        busy.send(build_request("POST", count_target(["is"], mode="parallel"), BIG * 3))
        time.sleep(0.2)
        s.send_signal(signal.SIGTERM)
        refused = wait_refused(s.port, 10 * w.SLOW)
        if not refused:
            w.log("  note: new connections were still accepted (or queued) 10 s after SIGTERM")
        # the idle connection is closed
        how, data = idle.wait_closed(20 * w.SLOW)
        assert data == b"", data
        # /readyz says 503 while draining (best effort: a close is tolerated)
        try:
            ready.send(b"\r\n")
            r = ready.read_response(timeout=10 * w.SLOW)
            check_response(r, error_body=False)
            assert r.status == 503, "/readyz while draining: %r" % r
        except (Closed, OSError) as e:
            w.log("  note: /readyz connection closed during the drain (%s)" % e)
        # the in-flight requests complete, with Connection: close
        up.send(BIG[half:])
        r = up.read_response()
        check_response(r)
        check_counts(r, {"is": 40000}, len(BIG), "upload in flight at SIGTERM")
        assert r.has_token("Connection", "close"), "in-flight response without Connection: close: %r" % r
        r = busy.read_response()
        check_response(r)
        check_counts(r, {"is": 120000}, 3 * len(BIG), "count in flight at SIGTERM")
        rc = s.wait(30 * w.SLOW)
        assert rc is not None, "the server did not exit after its in-flight requests finished"
        s.stop()  # asserts status 0 and no sanitizer report
        for c in (idle, ready, up, busy):
            c.close()


def test_sigterm_drops_work_of_gone_clients():
    with w.Server({"parallel": {"min_bytes": 65536}}) as s:
        ts = [threading.Thread(target=leave, args=(s.port, random.Random(i), KINDS[i % 3]), daemon=True)
              for i in range(30)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30 * w.SLOW)
        s.stop()  # SIGTERM right away with queued work: exit 0, no report
    # and SIGTERM while clients are still arriving and leaving
    rng = random.Random(SEED + 3)
    with w.Server({"parallel": {"min_bytes": 65536}}) as s:
        ts = [threading.Thread(target=leave, args=(s.port, random.Random(rng.random()), rng.choice(KINDS)),
                               daemon=True) for i in range(60)]
        for t in ts:
            t.start()
        time.sleep(0.3)
        s.stop()  # exit 0, no sanitizer report
        for t in ts:
            t.join(30 * w.SLOW)


def test_shutdown_timeout_exits_nonzero():
    cfg = {"timeouts_ms": {"shutdown": 500, "body": 120000, "header": 120000}}
    with w.Server(cfg) as s:
        c = Conn(s.port)
        c.send(build_request("POST", count_target(["is"]), None, [("Content-Length", "1000000")]) + b"is is")
        time.sleep(0.2)
        s.send_signal(signal.SIGTERM)
        rc = s.wait(20 * w.SLOW)
        assert rc is not None, "still running 20 s after SIGTERM with shutdown timeout 500 ms"
        assert rc != 0, "exit status 0 although a request was cut by the shutdown timeout"
        s.stopped = True
        s.check_sanitizer()
        c.close()


def test_second_signal_exits_at_once():
    """A second SIGTERM or SIGINT while draining exits at once with 128 +
    the signal's number (143, 130), as a shell reports a death by it."""
    cfg = {"timeouts_ms": {"shutdown": 120000, "body": 120000, "header": 120000}}
    for sig, want in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        s = w.Server(cfg)
        try:
            c = Conn(s.port)
            c.send(build_request("POST", count_target(["is"]), None, [("Content-Length", "1000000")]) + b"is is")
            time.sleep(0.2)
            s.send_signal(sig)
            time.sleep(0.5)
            assert s.alive(), "exited after one %s although a request is in flight (status %r)" \
                % (sig.name, s.proc.returncode)
            s.send_signal(sig)
            rc = s.wait(15 * w.SLOW)
            assert rc == want, "a second %s: exit status %r, expected %d" % (sig.name, rc, want)
            s._t_err.join(5)  # the last line may still be in the drain thread
            err = s.stderr
            assert "second signal, exiting now" in err, err[-2000:]
            for pat in ("ERROR: AddressSanitizer", "runtime error:"):
                assert pat not in err, err[-4000:]
            c.close()
        finally:
            s.kill()


if __name__ == "__main__":
    w.run(globals(), deadline=170)
