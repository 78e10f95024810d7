"""Operations (issue 5): GET /metrics in the Prometheus text format, the
access log (common and JSON lines, stdout/stderr/file), X-Request-Id, and
the optional bearer-token auth."""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wctest as w  # noqa: E402
from wctest import (ZEN, Conn, build_request, check_counts, check_error,  # noqa: E402
                    check_response, count_target, request)

SHARED = w.Shared()
METRIC_RX = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')
LABEL_RX = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape(port, headers=None):
    r = request(port, "GET", "/metrics", headers=headers)
    assert r.status == 200, r
    ct = r.header("Content-Type")
    assert ct.startswith("text/plain") and "version=0.0.4" in ct, ct
    return parse_metrics(r.body.decode())


def parse_metrics(text):
    """{(name, frozenset(labels)): value}; checks HELP/TYPE come first."""
    out = {}
    typed = {}
    for ln in text.splitlines():
        if not ln:
            continue
        if ln.startswith("# HELP ") or ln.startswith("# TYPE "):
            parts = ln.split(" ", 3)
            if parts[1] == "TYPE":
                assert parts[3] in ("counter", "gauge", "histogram"), ln
                typed[parts[2]] = parts[3]
            continue
        m = METRIC_RX.match(ln)
        assert m, "bad metric line %r" % ln
        name = m.group(1)
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in typed or base in typed, "no # TYPE before %r" % ln
        labels = frozenset(LABEL_RX.findall(m.group(2) or ""))
        out[(name, labels)] = float(m.group(3))
    return out


def val(ms, name, **labels):
    return ms.get((name, frozenset(labels.items())), 0.0)


def test_metrics_format_and_counters():
    p = SHARED.port
    before = scrape(p)
    r = request(p, "POST", count_target(["is"]), ZEN)
    check_counts(r, {"is": 10}, 858)
    r = w.post_json(p, {"text": "a b a", "needles": ["a", "b"]})
    assert r.status == 200, r
    r = request(p, "POST", "/count?needle=a%20b", b"x")
    check_error(r, 400)
    assert request(p, "GET", "/nowhere").status == 404
    assert request(p, "HEAD", "/metrics").status == 200
    after = scrape(p)
    d = lambda n, **l: val(after, n, **l) - val(before, n, **l)  # noqa: E731
    assert d("wordcount_http_requests_total", endpoint="/count", status="200") == 2, after
    assert d("wordcount_http_requests_total", endpoint="/count", status="400") == 1
    assert d("wordcount_http_requests_total", endpoint="other", status="404") == 1
    assert d("wordcount_http_requests_total", endpoint="/metrics", status="200") >= 2
    assert d("wordcount_errors_total", code="not_found") == 1
    assert d("wordcount_errors_total", code="invalid_needle") == 1
    assert d("wordcount_text_bytes_counted_total") == 858 + 5
    assert d("wordcount_words_matched_total") == 10 + 3
    assert d("wordcount_body_bytes_received_total") >= 858 + 5
    # histogram: cumulative buckets, +Inf == _count, _sum > 0
    le = sorted(((dict(k[1])["le"], v) for k, v in after.items()
                 if k[0] == "wordcount_http_request_duration_seconds_bucket"
                 and dict(k[1])["endpoint"] == "/count"),
                key=lambda x: float("inf") if x[0] == "+Inf" else float(x[0]))
    assert len(le) >= 10 and le[-1][0] == "+Inf", le
    vals = [v for _, v in le]
    assert vals == sorted(vals), "buckets not cumulative: %r" % le
    assert vals[-1] == val(after, "wordcount_http_request_duration_seconds_count", endpoint="/count")
    assert val(after, "wordcount_http_request_duration_seconds_sum", endpoint="/count") > 0
    # gauges: this scrape is the only request in flight; no job runs
    assert val(after, "wordcount_requests_in_flight") == 1, after
    assert val(after, "wordcount_jobs_in_flight") == 0
    assert val(after, "wordcount_pool_queue_depth") == 0
    assert val(after, "wordcount_open_connections") >= 1
    bi = [dict(k[1]) for k in after if k[0] == "wordcount_build_info"]
    assert len(bi) == 1 and set(bi[0]) == {"version", "libuv", "llhttp", "kernel"}, bi


def test_early_errors_count_under_their_path():
    """Errors found before the router ran (no Host, HTTP/1.2, CL with TE, a
    header timeout) count under the request's path, as the access log
    names it (they used to count as "other")."""
    with w.Server({"timeouts_ms": {"header": 300}}) as s:
        p = s.port
        before = scrape(p)
        for raw in (b"GET /healthz HTTP/1.1\r\n\r\n", b"GET /healthz HTTP/1.2\r\nHost: x\r\n\r\n",
                    b"POST /count?needle=a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n", b"GET /readyz HTTP/1.1\r\nHost: x\r\nX-A: b"):
            with Conn(p) as c:
                c.send(raw)
                assert c.read_response(timeout=10 * w.SLOW).status in (400, 408, 505), raw
        after = scrape(p)
        d = lambda n, **l: val(after, n, **l) - val(before, n, **l)  # noqa: E731
        assert d("wordcount_http_requests_total", endpoint="/healthz", status="400") == 1, after
        assert d("wordcount_http_requests_total", endpoint="/healthz", status="505") == 1, after
        assert d("wordcount_http_requests_total", endpoint="/count", status="400") == 1, after
        assert d("wordcount_http_requests_total", endpoint="/readyz", status="408") == 1, after
        assert sum(v for k, v in after.items() if k[0] == "wordcount_http_requests_total"
                   and dict(k[1])["endpoint"] == "other") == \
            sum(v for k, v in before.items() if k[0] == "wordcount_http_requests_total"
                and dict(k[1])["endpoint"] == "other"), after


def test_metrics_gauges_while_busy():
    p = SHARED.port
    c = Conn(p)
    c.send(build_request("POST", count_target(["is"]), None, [("Content-Length", "100000")]) + b"is is")
    time.sleep(0.2 * w.SLOW)
    ms = scrape(p)
    assert val(ms, "wordcount_requests_in_flight") == 2, ms
    assert val(ms, "wordcount_open_connections") >= 2
    c.close()  # the client leaves mid-upload: the gauge must come back down
    deadline = time.monotonic() + 5 * w.SLOW
    while time.monotonic() < deadline:
        ms = scrape(p)
        if val(ms, "wordcount_requests_in_flight") == 1:
            break
        time.sleep(0.05)
    assert val(ms, "wordcount_requests_in_flight") == 1, ms
    assert val(ms, "wordcount_jobs_in_flight") == 0, ms
    assert val(ms, "wordcount_pool_queue_depth") == 0, ms


def test_metrics_methods():
    p = SHARED.port
    r = request(p, "POST", "/metrics", b"x")
    check_error(r, 405)
    assert "GET" in r.header("Allow"), r
    r = request(p, "OPTIONS", "/metrics")
    assert r.status == 204 and "GET" in r.header("Allow"), r


def test_request_id():
    p = SHARED.port
    r = request(p, "GET", "/healthz", headers=[("X-Request-Id", "abc.DEF_123-x")])
    assert r.all("X-Request-Id") == ["abc.DEF_123-x"], r
    ids = set()
    for bad in ["", "has space", "x" * 129, "ünï", "a/b"]:
        r = request(p, "GET", "/healthz", headers=[("X-Request-Id", bad)])
        rid = r.header("X-Request-Id")
        assert rid and rid != bad and re.fullmatch(r"[0-9a-f]{16}", rid), (bad, r)
        ids.add(rid)
    r = request(p, "GET", "/healthz", headers=[("X-Request-Id", "a"), ("X-Request-Id", "b")])
    assert r.header("X-Request-Id") not in ("a", "b"), r
    r = request(p, "GET", "/healthz", headers=[("X-Request-Id", "y" * 128)])
    assert r.header("X-Request-Id") == "y" * 128
    # every response carries one: errors, 204, early errors, pipelined
    for m, t, body in [("OPTIONS", "/count", None), ("GET", "/count", None), ("POST", "/nope", b"x")]:
        r = request(p, m, t, body)
        assert re.fullmatch(r"[0-9a-f]{16}", r.header("X-Request-Id") or ""), r
        ids.add(r.header("X-Request-Id"))
    with Conn(p) as c:
        c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: one\r\n\r\n"
               b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        r1, r2 = c.read_response(), c.read_response()
        assert r1.header("X-Request-Id") == "one", r1
        assert r2.header("X-Request-Id") not in (None, "one"), r2
        ids.add(r2.header("X-Request-Id"))
        c.send(b"GET /x HTTP/1.1\r\nHost: x\r\nBad\x01Header: y\r\n\r\n")
        r = c.read_response()
        assert r.status == 400 and r.header("X-Request-Id"), r
    assert len(ids) == 9, ids


def read_lines(path, n, timeout):
    deadline = time.monotonic() + timeout
    while True:
        with open(path) as f:
            lines = f.read().splitlines()
        if len(lines) >= n or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


def test_access_log_json_to_file():
    fd, path = tempfile.mkstemp(prefix="wc-access-", suffix=".log")
    os.close(fd)
    try:
        with w.Server({"log": {"format": "json", "file": path}}) as s:
            request(s.port, "POST", count_target(["is"]), ZEN, headers=[("X-Request-Id", "req-1")])
            request(s.port, "POST", "/count?needle=is&bogus=1", b"x")
            request(s.port, "GET", '/nope?q=%22\\', None)
            lines = read_lines(path, 3, 5 * w.SLOW)
            assert "listening on" in s.stdout and '"status"' not in s.stdout, s.stdout
        recs = [json.loads(ln) for ln in lines]
        assert len(recs) == 3, lines
        a, b, c = recs
        for k in ("time", "peer", "method", "target", "status", "bytes_in", "bytes_out",
                  "duration_ms", "request_id"):
            assert k in a, (k, a)
        assert a["method"] == "POST" and a["target"] == "/count?needle=is" and a["status"] == 200
        assert a["request_id"] == "req-1" and a["bytes_in"] == 858 and "error" not in a, a
        assert b["status"] == 400 and b["error"] == "unknown_parameter" and "bogus" in b["message"], b
        assert c["status"] == 404 and c["error"] == "not_found" and c["target"] == "/nope?q=%22\\", c
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", a["time"]), a
    finally:
        os.unlink(path)


def test_access_log_common_and_reopen():
    fd, path = tempfile.mkstemp(prefix="wc-access-", suffix=".log")
    os.close(fd)
    try:
        with w.Server({"log": {"format": "common", "file": path}}) as s:
            request(s.port, "GET", "/healthz", headers=[("X-Request-Id", "hello-1")])
            lines = read_lines(path, 1, 5 * w.SLOW)
            assert len(lines) == 1, lines
            assert re.match(r'^127\.0\.0\.1:\d+ "GET /healthz" 200 0 \d+ [\d.]+ms id=hello-1$',
                            lines[0]), lines
            # logrotate: move the file away, SIGHUP, the next line goes to a new file
            os.rename(path, path + ".1")
            s.send_signal(signal.SIGHUP)
            time.sleep(0.3 * w.SLOW)
            request(s.port, "GET", "/nope")
            lines = read_lines(path, 1, 5 * w.SLOW) if os.path.exists(path) else []
            assert len(lines) == 1 and " 404 " in lines[0] and 'error=not_found "' in lines[0], lines
        os.unlink(path + ".1")
    finally:
        if os.path.exists(path):
            os.unlink(path)
    # stderr as the destination; stdout keeps only the listening line
    with w.Server({"log": {"file": "stderr"}}) as s:
        request(s.port, "GET", "/readyz")
        deadline = time.monotonic() + 5 * w.SLOW
        while '"GET /readyz" 200' not in s.stderr and time.monotonic() < deadline:
            time.sleep(0.1)
        assert '"GET /readyz" 200' in s.stderr, s.stderr
        assert "/readyz" not in s.stdout, s.stdout


TOKEN = "s3cr3t-Token_~+/="


def test_auth():
    with w.Server({"auth": {"token": TOKEN}}) as s:
        p = s.port
        ok = [("Authorization", "Bearer " + TOKEN)]
        r = request(p, "POST", count_target(["is"]), ZEN, headers=ok)
        check_counts(r, {"is": 10}, 858)
        r = request(p, "POST", count_target(["is"]), ZEN, headers=[("Authorization", "bearer  " + TOKEN)])
        check_counts(r, {"is": 10}, 858)
        for hs in ([], [("Authorization", "Bearer wrong")], [("Authorization", "Bearer " + TOKEN + "x")],
                   [("Authorization", "Bearer " + TOKEN[:-1])], [("Authorization", "Basic " + TOKEN)],
                   [("Authorization", "Bearer")], ok + ok):
            for m, t, body in [("POST", count_target(["is"]), ZEN), ("GET", "/metrics", None),
                               ("POST", "/count", b'{"text":"a","needle":"a"}')]:
                r = request(p, m, t, body, headers=hs)
                e = check_error(r, 401, "unauthorized")
                assert r.header("WWW-Authenticate", "").startswith('Bearer realm="wordcount"'), r
                if hs:
                    assert 'error="invalid_token"' in r.header("WWW-Authenticate"), r
        # open endpoints
        assert request(p, "GET", "/healthz").status == 200
        assert request(p, "GET", "/readyz").status == 200
        assert request(p, "OPTIONS", "/count").status == 204
        # a JSON body is not read before the 401 (lingering close), and the
        # connection still answers
        with Conn(p) as c:
            c.send(build_request("POST", "/count", None, [("Content-Type", "application/json"),
                                                          ("Content-Length", "100000000")]))
            r = c.read_response()
            check_error(r, 401)
            assert r.has_token("Connection", "close"), r
        ms = scrape(p, headers=ok)
        assert val(ms, "wordcount_errors_total", code="unauthorized") >= 21, ms
    # from the environment, overriding the file
    with w.Server({"auth": {"token": "file-token"}}, env={"WORDCOUNT_AUTH_TOKEN": "env-token"}) as s:
        assert request(s.port, "GET", "/metrics",
                       headers=[("Authorization", "Bearer file-token")]).status == 401
        assert request(s.port, "GET", "/metrics",
                       headers=[("Authorization", "Bearer env-token")]).status == 200
    rc, out, err = w.run_cli(["--port", "0"], env={"WORDCOUNT_AUTH_TOKEN": "bad token"})
    assert rc == 2 and "WORDCOUNT_AUTH_TOKEN" in err, (rc, err)


# ------------------------------------------------------- the systemd unit

UNIT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts",
                    "wordcount-server.service")


def _syscall_groups():
    """{"@group": [members]} from systemd-analyze syscall-filter."""
    out = subprocess.run(["systemd-analyze", "syscall-filter"], capture_output=True,
                         text=True, check=True).stdout
    groups, cur = {}, None
    for ln in out.splitlines():
        if ln.startswith("@"):
            cur = groups.setdefault(ln.split()[0], [])
        elif cur is not None and ln.strip() and not ln.strip().startswith("#"):
            cur.append(ln.strip())
    return groups


def _expand(groups, name, seen=None):
    if not name.startswith("@"):
        return {name}
    seen = set() if seen is None else seen
    if name in seen:
        return set()
    seen.add(name)
    assert name in groups, "unknown syscall group %s" % name
    return set().union(*(_expand(groups, m, seen) for m in groups[name]))


def unit_syscall_filter(text, groups):
    """systemd.exec(5)'s rules for SystemCallFilter= lines, in order: the
    first line's kind (allow list, or ~ deny list) sets the default action;
    later lines add to or take from the set. Returns (allow_mode, set)."""
    mode, calls = None, set()
    for ln in text.splitlines():
        if not ln.startswith("SystemCallFilter="):
            continue
        v = ln.split("=", 1)[1].strip()
        if not v:
            mode, calls = None, set()
            continue
        deny = v.startswith("~")
        names = set().union(*(_expand(groups, x) for x in v.lstrip("~").split()))
        if mode is None:
            mode = "deny" if deny else "allow"
        if (mode == "allow") != deny:
            calls |= names
        else:
            calls -= names
    return mode, calls


def test_systemd_unit_allows_the_servers_syscalls():
    """scripts/wordcount-server.service filters system calls; a call it
    denies kills the service (SIGSYS) or fails. The server runs under
    strace through start-up, small and large requests (worker threads,
    worker_nice's setpriority, JSON scan jobs, hand-overs between two
    loops), SIGHUP (log reopen) and SIGTERM (drain), and every system call
    it made must pass the unit's filter (the filter worker_nice ran into:
    @resources holds setpriority)."""
    if w.SANITIZED:
        w.log("        (skipped: a sanitizer's runtime makes system calls of its own)")
        return
    for tool in ("strace", "systemd-analyze"):
        if subprocess.run(["sh", "-c", "command -v " + tool], capture_output=True).returncode:
            w.log("        (skipped: %s is not installed; scripts/deps.sh test installs it)" % tool)
            return
    if subprocess.run(["strace", "-qq", "-o", "/dev/null", "true"], capture_output=True).returncode:
        w.log("        (skipped: strace cannot trace here: ptrace refused)")
        return
    with open(UNIT) as f:
        unit = f.read()
    mode, calls = unit_syscall_filter(unit, _syscall_groups())
    assert mode == "allow" and "read" in calls, (mode, len(calls))
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "strace.txt")
        log = os.path.join(d, "access.log")
        cfg = {"event_loops": 2, "workers": 2, "log": {"access": True, "file": log},
               "limits": {"max_json_body_bytes": 64 << 20}}
        s = w.Server(cfg, wrap=["strace", "-f", "-qq", "-c", "-o", out])
        try:
            big = ZEN * 6000  # 5.1 MB: pool jobs, and JSON scan jobs
            for mode_ in ("sequential", "parallel"):
                r = request(s.port, "POST", count_target(["is"]) + "&mode=" + mode_, big)
                check_counts(r, {"is": 60000}, len(big))
                body = json.dumps({"text": big.decode(), "needle": "is", "mode": mode_}).encode()
                r = request(s.port, "POST", "/count", body, headers=[("Content-Type", "application/json")])
                check_counts(r, {"is": 60000}, len(big))
            conns = [Conn(s.port) for _ in range(8)]  # some are handed to the other loop
            for c in conns:
                c.send(build_request("POST", count_target(["is"]), ZEN))
            for c in conns:
                check_counts(c.read_response(), {"is": 10}, len(ZEN))
            os.rename(log, log + ".1")
            s.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10 * w.SLOW
            while not os.path.exists(log) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert request(s.port, "GET", "/healthz").status == 200
            for c in conns:
                c.close()
            s.stop()
        finally:
            s.kill()
        with open(out) as f:
            table = f.read()
    used = set()
    for ln in table.splitlines():
        f = ln.split()
        if len(f) >= 5 and f[0][0].isdigit() and f[-1] != "total":
            used.add(f[-1])
    # (setpriority is skipped by a server already at nice 19; arm64 has
    # epoll_pwait only: neither is required here)
    assert {"accept4", "read", "write"} <= used, sorted(used)
    denied = sorted(used - calls)
    assert not denied, "system calls the unit's SystemCallFilter denies: %s (used: %s)" \
        % (denied, " ".join(sorted(used)))
    w.log("        %d system calls used, all allowed by the unit (%d allowed)" % (len(used), len(calls)))


def test_a_pipe_nobody_reads_never_blocks_the_server():
    """Standard output and standard error are pipes nobody reads (a harness
    that read the first line, a stuck log shipper). Once a pipe is full,
    log lines are dropped: the server keeps answering and drains on SIGTERM.
    Three ways to fill one: warnings on stderr (each 505 is one, remotely
    triggered), the access log on stderr (log.file "stderr"), and the access
    log on stdout. Before stderr was made non-blocking, the first two froze
    the loop in write(2), SIGTERM included."""
    cases = [("505 warnings on stderr", {"log": {"access": False}}, True),
             ("access log on stderr", {"log": {"access": True, "file": "stderr"}}, False),
             ("access log on stdout", {"log": {"access": True}}, False)]
    for what, cfg, bad_version in cases:
        cfg = dict(cfg, listen={"host": w.HOST, "port": 0}, event_loops=1)
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(cfg, f)
        proc = subprocess.Popen([w.BIN, "--config", f.name], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        try:
            # the harness reads the first line only (the port), never more
            first = proc.stdout.readline().decode()
            m = re.search(r"listening on http://[^ ]*:(\d+)", first)
            assert m, "%s: first line %r" % (what, first)
            p = int(m.group(1))
            # far more than a 64 KiB pipe holds, one line per request
            for i in range(3000 if not bad_version else 1500):
                if bad_version:
                    with Conn(p, timeout=10 * w.SLOW) as c:
                        c.send(b"GET /healthz HTTP/1.2\r\nHost: x\r\n\r\n")
                        assert c.read_response().status == 505, what
                else:
                    if i % 500 == 0:
                        c = Conn(p, timeout=10 * w.SLOW)
                    c.send(build_request("GET", "/healthz"))
                    assert c.read_response().status == 200, (what, i)
                    if i % 500 == 499:
                        c.close()
            time.sleep(1.2)  # the access log's once-a-second flush
            r = request(p, "GET", "/healthz", timeout=10 * w.SLOW)
            assert r.status == 200, (what, r)
            assert val(scrape(p), "wordcount_log_lines_dropped_total") > 100, what
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(30 * w.SLOW)
            assert rc == 0, "%s: exit status %r after SIGTERM" % (what, rc)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            os.unlink(f.name)


def test_shared_server_stops_cleanly():
    SHARED.stop()


if __name__ == "__main__":
    w.run(globals(), deadline=120)
