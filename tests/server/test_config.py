"""Configuration (issue 3, "Configuration"): --config with unknown keys or bad
values exits 2 naming the key; precedence defaults < file < environment <
flags; --help and --version; --port 0 prints the address."""

import json
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wctest as w  # noqa: E402
from wctest import (ZEN, Conn, build_request, check_counts, count_target,  # noqa: E402
                    request, run_cli)


def expect_exit2(config, key, what=None):
    rc, out, err = run_cli(["--port", "0", "--host", w.HOST], config=config)
    what = what or repr(config)
    assert rc is not None, "%s: the server started (did not exit) instead of rejecting the config" % what
    assert rc == 2, "%s: exit status %r, expected 2; stderr=%r" % (what, rc, err[-500:])
    assert key in (out + err), "%s: the message does not name %r: stderr=%r" % (what, key, err[-500:])
    assert "listening on" not in out, out


def test_unknown_keys_exit_2():
    expect_exit2({"bogus_top": 1}, "bogus_top")
    expect_exit2({"limits": {"max_body_byte": 5}}, "max_body_byte")
    expect_exit2({"timeouts_ms": {"header": 100, "hedaer": 100}}, "hedaer")
    expect_exit2({"listen": {"host": "127.0.0.1", "prot": 1}}, "prot")
    expect_exit2({"log": {"acess": True}}, "acess")
    expect_exit2({"parallel": {"min_byte": 5}}, "min_byte")
    expect_exit2({"Workers": 2}, "Workers")
    expect_exit2({"log": {"fromat": "json"}}, "fromat")
    expect_exit2({"auth": {"tokens": "x"}}, "tokens")


def test_bad_values_exit_2():
    expect_exit2({"listen": {"port": "eighty"}}, "port")
    expect_exit2({"listen": {"port": 70000}}, "port")
    expect_exit2({"listen": {"port": -1}}, "port")
    expect_exit2({"listen": {"host": 5}}, "host")
    expect_exit2({"workers": -1}, "workers")
    expect_exit2({"workers": "four"}, "workers")
    expect_exit2({"workers": 1.5}, "workers")
    expect_exit2({"limits": {"max_body_bytes": -5}}, "max_body_bytes")
    expect_exit2({"limits": {"max_body_bytes": "1G"}}, "max_body_bytes")
    expect_exit2({"limits": {"max_connections": -3}}, "max_connections")
    expect_exit2({"limits": {"max_needles": "many"}}, "max_needles")
    expect_exit2({"limits": {"max_header_bytes": True}}, "max_header_bytes")
    expect_exit2({"timeouts_ms": {"header": -1}}, "header")
    expect_exit2({"timeouts_ms": {"keepalive": "5s"}}, "keepalive")
    expect_exit2({"log": {"level": "loud"}}, "level")
    expect_exit2({"log": {"access": "yes"}}, "access")
    expect_exit2({"limits": 5}, "limits")
    expect_exit2({"listen": []}, "listen")
    expect_exit2({"log": {"format": "xml"}}, "format")
    expect_exit2({"log": {"format": 1}}, "format")
    expect_exit2({"log": {"file": ""}}, "file")
    expect_exit2({"log": {"file": "/nonexistent-dir/x/access.log"}}, "log.file")
    expect_exit2({"auth": {"token": 5}}, "token")
    expect_exit2({"auth": {"token": "has space"}}, "token")
    expect_exit2({"auth": "secret"}, "auth")
    expect_exit2({"event_loops": -1}, "event_loops")
    expect_exit2({"event_loops": 65}, "event_loops")
    expect_exit2({"event_loops": "all"}, "event_loops")
    expect_exit2({"balance_connections": 1}, "balance_connections")
    expect_exit2({"balance_connections": "yes"}, "balance_connections")
    expect_exit2({"worker_nice": -1}, "worker_nice")
    expect_exit2({"worker_nice": 20}, "worker_nice")
    expect_exit2({"worker_nice": "low"}, "worker_nice")
    expect_exit2({"parallel": {"inline_max_bytes": -1}}, "inline_max_bytes")
    expect_exit2({"parallel": {"inline_max_bytes": "16k"}}, "inline_max_bytes")
    # not JSON at all, or not an object
    rc, out, err = run_cli(["--port", "0"], config="{ not json")
    assert rc == 2, (rc, err)
    rc, out, err = run_cli(["--port", "0"], config="[1, 2]")
    assert rc == 2, (rc, err)
    # cJSON would cut a string at \u0000: a token "s3cret\u0000..." would
    # accept "Bearer s3cret" (found by an ops audit), a log.file or level
    # would silently lose its tail
    for text in ('{"auth": {"token": "s3cret\\u0000-rest"}}', '{"log": {"file": "/tmp/x\\u0000y"}}',
                 '{"log": {"level": "info\\u0000x"}}', '{"auth": {"token": "s3cret\\u00"}}',
                 '{"auth": {"token": "s3cret\x00-rest"}}'):
        rc, out, err = run_cli(["--port", "0"], config=text)
        assert rc == 2 and ("u0000" in err or "NUL" in err), (text, rc, err)
    # an escaped backslash before u0000 is just text, not a NUL
    rc, out, err = run_cli(["--port", "0"], config='{"auth": {"token": "a\\\\u0000"}}', timeout=3 * w.SLOW)
    assert rc in (None, 0) or "u0000" not in err, (rc, err)
    # duplicate keys in the config are as suspicious as in requests: reject or accept, never crash
    rc, out, err = run_cli(["--port", "0"], config='{"workers": 1, "workers": 2}', timeout=3 * w.SLOW)
    assert rc in (None, 2), (rc, err)


def test_missing_config_file_and_bad_flags():
    rc, out, err = run_cli(["--port", "0", "--config", "/nonexistent/wc.json"])
    assert rc is not None and rc != 0, (rc, err)
    assert "/nonexistent/wc.json" in err, err
    for args in (["--port", "abc"], ["--port", "70000"], ["--workers", "-2"], ["--bogus-flag"],
                 ["--port"]):
        rc, out, err = run_cli(args)
        assert rc == 2, "%r: exit status %r, expected 2 (stderr %r)" % (args, rc, err[-300:])
        assert "listening on" not in out


def test_help_and_version():
    rc, out, err = run_cli(["--help"])
    assert rc == 0, (rc, err)
    assert "--config" in out and "--port" in out, out
    rc, out, err = run_cli(["--version"])
    assert rc == 0, (rc, err)
    assert out.strip(), "--version printed nothing"


def test_example_config_is_valid():
    path = os.path.join(w.REPO, "config.example.json")
    assert os.path.exists(path), "config.example.json missing at the top level"
    with open(path) as f:
        cfg = json.load(f)
    want = {"listen": {"host", "port"}, "workers": None,
            "limits": {"max_body_bytes", "max_json_body_bytes", "max_header_bytes", "max_connections",
                       "max_needles", "max_needle_bytes"},
            "timeouts_ms": {"header", "body", "keepalive", "shutdown"},
            "parallel": {"min_bytes", "inline_max_bytes"}, "log": {"access", "level", "format", "file"},
            "auth": {"token"}}
    for k, sub in want.items():
        assert k in cfg, "config.example.json lacks %r" % k
        if sub:
            assert set(cfg[k]) == sub, "config.example.json %r keys %r, expected %r" % (k, set(cfg[k]), sub)
    # it starts (with the port overridden)
    with w.Server(open(path).read()) as s:
        r = request(s.port, "POST", count_target(["is"]), ZEN)
        check_counts(r, {"is": 10}, 858)


def test_port_precedence():
    p_file, p_env, p_flag = w.free_port(), w.free_port(), w.free_port()
    # the file
    with w.Server({"listen": {"host": w.HOST, "port": p_file}}, port_args=False) as s:
        assert s.port == p_file, (s.port, p_file)
        assert request(s.port, "GET", "/healthz").status == 200
    # the environment over the file
    with w.Server({"listen": {"host": w.HOST, "port": p_file}}, port_args=False,
                  env={"WORDCOUNT_PORT": str(p_env)}) as s:
        assert s.port == p_env, "WORDCOUNT_PORT=%d ignored: listening on %d" % (p_env, s.port)
        assert request(s.port, "GET", "/healthz").status == 200
    # the environment alone
    with w.Server(None, port_args=False, args=["--host", w.HOST],
                  env={"WORDCOUNT_PORT": str(p_env)}) as s:
        assert s.port == p_env, "WORDCOUNT_PORT=%d ignored: listening on %d" % (p_env, s.port)
    # flags over the environment and the file
    with w.Server({"listen": {"host": w.HOST, "port": p_file}}, port_args=False,
                  args=["--port", str(p_flag)], env={"WORDCOUNT_PORT": str(p_env)}) as s:
        assert s.port == p_flag, "--port %d did not override WORDCOUNT_PORT=%d: listening on %d" % (
            p_flag, p_env, s.port)
        assert request(s.port, "GET", "/healthz").status == 200
    # --port 0 over the environment: an ephemeral port, not the env one
    with w.Server(None, env={"WORDCOUNT_PORT": str(p_env)}) as s:
        assert request(s.port, "GET", "/healthz").status == 200


def test_host_and_workers_env():
    with w.Server(None, port_args=False, args=["--port", "0"],
                  env={"WORDCOUNT_HOST": "127.0.0.1", "WORDCOUNT_WORKERS": "2"}) as s:
        assert s.listen_host == "127.0.0.1", s.listen_host
        r = request(s.port, "POST", count_target(["is"], mode="parallel"), ZEN * 2000)
        check_counts(r, {"is": 20000}, 858 * 2000)
    with w.Server(None, args=["--workers", "1"]) as s:
        r = request(s.port, "POST", count_target(["is"], mode="parallel"), ZEN * 2000)
        check_counts(r, {"is": 20000}, 858 * 2000)
    rc, out, err = run_cli(["--host", w.HOST], env={"WORDCOUNT_PORT": "notaport"}, timeout=5 * w.SLOW)
    assert rc is not None and rc != 0, "a bad WORDCOUNT_PORT was accepted (rc %r)" % rc


def test_limits_beyond_the_core():
    # the core takes at most 4096-byte needles and 1024 needles: a config
    # above that is refused (exit 2), or the server really serves it
    for cfg, needles in [({"limits": {"max_needle_bytes": 10000, "max_header_bytes": 65536}}, ["b" * 5000]),
                         ({"limits": {"max_needles": 5000}}, ["n%d" % i for i in range(2000)])]:
        rc, out, err = run_cli(["--port", "0", "--host", w.HOST], config=cfg, timeout=2 * w.SLOW)
        if rc == 2:
            assert any(k in err for k in cfg["limits"]), err
            continue
        assert rc is None, "config %r: exit status %r (stderr %r)" % (cfg, rc, err[-300:])
        with w.Server(cfg) as s:
            r = w.post_json(s.port, {"text": "a " + " ".join(needles), "needles": needles})
            assert r.status == 200, "config %r accepted, but the request fails: %r" % (cfg, r)


def test_port_in_use_fails():
    s = socket.socket()
    s.bind((w.HOST, 0))
    s.listen(1)
    p = s.getsockname()[1]
    try:
        rc, out, err = run_cli(["--port", str(p), "--host", w.HOST])
        assert rc is not None and rc != 0, "binding a busy port must fail, rc %r" % rc
        assert "listening on" not in out
    finally:
        s.close()
    # a second server on the port of a running one (both would use
    # SO_REUSEPORT with several event loops) fails instead of sharing it
    with w.Server({"event_loops": 2}) as first:
        for loops in ("1", "2"):
            rc, out, err = run_cli(["--port", str(first.port), "--host", w.HOST, "--event-loops", loops])
            assert rc is not None and rc != 0, "a second server on a busy port must fail, rc %r" % rc
            assert "listening on" not in out
        r = request(first.port, "POST", count_target(["is"]), ZEN)
        check_counts(r, {"is": 10}, 858)


def test_event_loops_flag_env_and_metrics():
    # --event-loops beats WORDCOUNT_EVENT_LOOPS beats the file; every loop
    # answers (many connections land on all of them) and /metrics adds up
    with w.Server({"event_loops": 1}, args=["--event-loops", "3"],
                  env={"WORDCOUNT_EVENT_LOOPS": "2"}) as s:
        for i in range(40):
            r = request(s.port, "POST", count_target(["is"]), ZEN)
            check_counts(r, {"is": 10}, 858)
        m = request(s.port, "GET", "/metrics").body.decode()
        n = sum(float(l.split()[-1]) for l in m.splitlines()
                if l.startswith('wordcount_http_requests_total{endpoint="/count"'))
        assert n == 40, "requests_total for /count: %r" % n
        assert "3 event loop(s)" in s.stderr, w.tail(s.stderr)
    rc, out, err = run_cli(["--port", "0", "--event-loops", "x"])
    assert rc == 2 and "event-loops" in err, (rc, err)
    rc, out, err = run_cli(["--port", "0"], env={"WORDCOUNT_EVENT_LOOPS": "99"})
    assert rc == 2 and "WORDCOUNT_EVENT_LOOPS" in err, (rc, err)


def _quota_cgroup(cpus_x100k):
    """A fresh cgroup with a CPU quota of cpus_x100k / 100000 CPUs (v1 cpu
    controller, or v2 with cpu delegated), or None when this machine does
    not let the test make one (not root, read-only, no cpu controller)."""
    name = "wc-test-%d" % os.getpid()
    v1 = "/sys/fs/cgroup/cpu"
    d = None
    try:
        if os.path.exists(os.path.join(v1, "cpu.cfs_quota_us")):
            d = os.path.join(v1, name)
            os.mkdir(d)
            with open(os.path.join(d, "cpu.cfs_period_us"), "w") as f:
                f.write("100000")
            with open(os.path.join(d, "cpu.cfs_quota_us"), "w") as f:
                f.write(str(cpus_x100k))
        else:
            with open("/sys/fs/cgroup/cgroup.subtree_control") as f:
                if "cpu" not in f.read().split():
                    return None
            d = os.path.join("/sys/fs/cgroup", name)
            os.mkdir(d)
            with open(os.path.join(d, "cpu.max"), "w") as f:
                f.write("%d 100000" % cpus_x100k)
        # may a process of ours move in? (not with a foreign delegation)
        if subprocess.call(["sh", "-c", 'echo $$ > "$1"', "sh", os.path.join(d, "cgroup.procs")],
                           stderr=subprocess.DEVNULL) != 0:
            raise OSError("cannot move a process into " + d)
        return d
    except OSError:
        if d is not None:
            _remove_cgroup(d)
        return None


def _remove_cgroup(d):
    """Removes cgroup d once its processes have left (5 s at most)."""
    for _ in range(50):
        try:
            os.rmdir(d)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)


def test_event_loops_and_workers_follow_a_cpu_quota():
    """event_loops 0 and workers 0 count the CPUs of a cgroup quota (as
    docker run --cpus sets one), rounded up, not those of the affinity."""
    d = _quota_cgroup(50000)  # half a CPU: one loop, one worker
    if d is None:
        w.log("    (skipped: cannot make a cgroup with a CPU quota here)")
        return
    # a shell moves itself into the cgroup, then becomes the server
    cmd = ["sh", "-c", 'echo $$ > "$1" && exec "$2" --port 0 --host "$3"', "sh",
           os.path.join(d, "cgroup.procs"), w.BIN, w.HOST]
    try:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env={k: v for k, v in os.environ.items() if not k.startswith("WORDCOUNT_")})
        try:
            err = b""
            deadline = time.time() + 20 * w.SLOW
            while b"event loop(s)" not in err and time.time() < deadline:
                line = p.stderr.readline()
                if not line:
                    break
                err += line
            assert b"1 event loop(s), 1 worker(s)" in err, err
        finally:
            p.terminate()
            p.wait(30)
    finally:
        _remove_cgroup(d)


def thread_nices(pid):
    """{tid: nice value} of the process's threads (/proc/PID/task)."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                stat = f.read()
        except FileNotFoundError:
            continue
        # after "(comm)": state is field 3, nice field 19
        out[int(tid)] = int(stat.rsplit(")", 1)[1].split()[16])
    return out


def test_worker_nice():
    """Worker threads run worker_nice (default 5) above the nice value the
    server was started with, capped at 19; the main thread, the loops and
    every thread there before the first pool job keep the server's own,
    also after requests counted on the loops. Counting is unchanged."""
    body = ZEN * 4000  # 3.4 MB: in the pool, split in two
    text = body.decode()
    want = sum(ln.split(" ").count("is") for ln in text.split("\n"))
    for cfg, start, expect in (({}, 0, 5), ({"worker_nice": 12}, 0, 12),
                               ({"worker_nice": 0}, 0, 0), ({}, 3, 8), ({"worker_nice": 9}, 17, 19)):
        cfg = dict(cfg, workers=2, event_loops=2)
        with w.Server(cfg, nice=start or None) as s:
            line = "at nice +%d," % (expect - start)  # the increment in effect
            deadline = time.time() + 10 * w.SLOW  # the start-up line follows "listening on"
            while line not in s.stderr + s.stdout and time.time() < deadline:
                time.sleep(0.02)
            assert line in s.stderr + s.stdout, (s.stderr, s.stdout)
            # the pool starts its threads on its first job: these are the
            # main thread, the loops and libuv's own
            boot = thread_nices(s.proc.pid)
            assert set(boot.values()) == {start}, boot
            # counted on the loops (inline): no thread changes
            for _ in range(4):
                r = w.post_json(s.port, {"text": "is this is it", "needle": "is"})
                assert r.status == 200 and json.loads(r.body)["count"] == 2, (r.status, r.body)
                r = w.post_raw(s.port, b"is this is it")
                assert r.status == 200 and json.loads(r.body)["count"] == 2, (r.status, r.body)
            assert request(s.port, "GET", "/healthz").status == 200
            assert thread_nices(s.proc.pid) == boot, (boot, thread_nices(s.proc.pid))
            for mode in ("parallel", "sequential", "parallel"):
                r = w.post_json(s.port, {"text": text, "needle": "is", "mode": mode})
                assert r.status == 200 and json.loads(r.body)["count"] == want, (r.status, r.body)
            r = w.post_raw(s.port, body)
            assert r.status == 200 and json.loads(r.body)["count"] == want, (r.status, r.body)
            nices = thread_nices(s.proc.pid)
            for tid, n in boot.items():  # the loops keep theirs
                assert nices.get(tid) == start, (cfg, start, boot, nices)
            pool = {tid: n for tid, n in nices.items() if tid not in boot}
            # the two workers: each at its nice once it ran a job (at least
            # one did)
            assert 1 <= len(pool) <= 2 and set(pool.values()) <= {start, expect}, (cfg, start, boot, nices)
            assert expect in pool.values(), (cfg, start, boot, nices)
            w.log("    worker_nice %s from nice %d: loops %s, workers %s"
                  % (cfg.get("worker_nice", "(default)"), start, sorted(boot.values()),
                     sorted(pool.values())))


def parse_loop_metrics(r, uploads=None):
    """({loop: open connections}, connections handed over, body bytes
    received) from the /metrics response r; uploads (a dict) gets {loop:
    uploads weighed}."""
    per, handed, body = {}, None, None
    for ln in r.body.decode().splitlines():
        if ln.startswith("wordcount_event_loop_connections{"):
            per[int(ln.split('"')[1])] = int(float(ln.split()[-1]))
        elif ln.startswith("wordcount_event_loop_uploads{") and uploads is not None:
            uploads[int(ln.split('"')[1])] = int(float(ln.split()[-1]))
        elif ln.startswith("wordcount_connections_handed_over_total "):
            handed = int(float(ln.split()[-1]))
        elif ln.startswith("wordcount_body_bytes_received_total "):
            body = int(float(ln.split()[-1]))
    return per, handed, body


def loop_metrics(port):
    """({loop: open connections}, connections handed over) from /metrics
    (its own connection is one of the open ones)."""
    per, handed, _ = parse_loop_metrics(request(port, "GET", "/metrics"))
    return per, handed


def wait_loops_idle(port):
    """Waits (10 s at most) until the only open connection is the one of
    /metrics itself (closed connections are freed a moment later); returns
    the last per-loop counts."""
    deadline = time.time() + 10
    while True:
        per, _ = loop_metrics(port)
        if sum(per.values()) <= 1 or time.time() > deadline:
            return per
        time.sleep(0.05)


def test_balance_connections():
    # A loop that accepts a connection while another loop has fewer hands it
    # over: connections opened one after another end up spread evenly over
    # the loops whatever SO_REUSEPORT's hash chose, and every one of them is
    # served. Off, nothing is handed over.
    for loops, on in ((3, True), (2, True), (2, False)):
        with w.Server({"event_loops": loops, "balance_connections": on}) as s:
            conns = []
            try:
                # bursts first: a loop may find another's inbox of hand-overs
                # full and serve the connection itself; the loops' counts
                # must stay right (an uncounted one once wrapped a count
                # and sent every later connection to one loop)
                for burst in range(2):
                    socks = [socket.create_connection((w.HOST, s.port)) for _ in range(500)]
                    for k in socks:
                        k.close()
                wait_loops_idle(s.port)
                for i in range(24):
                    c = Conn(s.port)
                    c.send(build_request("GET", "/healthz"))  # accepted and served
                    assert c.read_response().status == 200
                    conns.append(c)
                per, handed = loop_metrics(s.port)
                w.log("  %d loops, balance %s: %r, %r handed over" % (loops, on, per, handed))
                assert sorted(per) == list(range(loops)), per
                assert sum(per.values()) == 25, per  # and /metrics' own
                if on:
                    assert max(per.values()) - min(per.values()) <= 1, per
                else:
                    assert handed == 0, handed
                # each connection: pipelined requests and a body over several reads
                big = ZEN * 200
                for c in conns:
                    c.send(build_request("POST", count_target(["is"]), ZEN) * 2 +
                           build_request("POST", count_target(["is"]), big))
                for c in conns:
                    for want, n in ((10, 858), (10, 858), (2000, len(big))):
                        check_counts(c.read_response(), {"is": want}, n)
            finally:
                for c in conns:
                    c.close()
            per = wait_loops_idle(s.port)
            assert sum(per.values()) == 1, per


def metrics_on(c, uploads=None):
    """({loop: open connections}, body bytes received) through the open
    connection c; uploads (a dict) gets {loop: uploads weighed}."""
    c.send(build_request("GET", "/metrics"))
    r = c.read_response()
    assert r.status == 200, r.status
    per, _, body = parse_loop_metrics(r, uploads)
    return per, body


def test_balance_away_from_uploads():
    # A connection receiving a large body fast (4 MiB or more past its first
    # MiB between two ticks of the loop's 1 s date timer) weighs 16
    # connections in its loop's load:
    # new connections go to the loop that is not busy copying the upload.
    # A stalled upload loses the weight at a tick, as does one whose body
    # is in; new connections then even the loops out again.
    with w.Server({"event_loops": 2, "balance_connections": True}) as s:
        conns = []
        m = Conn(s.port)  # loop A
        up = Conn(s.port)  # loop B (A has one, B none)
        copies = 160000  # 137 MB of the seed's text, "is" 10 times a copy
        total = len(ZEN) * copies
        sent = [0]
        stop = threading.Event()

        def stream():  # about 25 MiB/s until stopped
            piece = ZEN * 300
            while not stop.is_set() and sent[0] + len(piece) < total // 2:
                up.send(piece)
                sent[0] += len(piece)
                time.sleep(0.01)

        def open_ten():
            for i in range(10):
                c = Conn(s.port)
                c.send(build_request("GET", "/healthz"))
                assert c.read_response().status == 200
                conns.append(c)

        try:
            deadline = time.time() + 10 * w.SLOW
            per, _ = metrics_on(m)
            while sum(per.values()) < 2:  # up may still be on its way over
                assert time.time() < deadline, per
                time.sleep(0.02)
                per, _ = metrics_on(m)
            assert sorted(per.values()) == [1, 1], per
            up.send(build_request("POST", count_target(["is"]), None,
                                  {"Content-Length": str(total),
                                   "Content-Type": "text/plain"}))
            t = threading.Thread(target=stream)
            t.start()
            # the weight comes once 4 MiB past the first MiB arrive between
            # two ticks: within about a second at this rate (waiting for a
            # fixed number of bytes raced a tick that had just restarted
            # the count)
            deadline = time.time() + 10 * w.SLOW
            while True:
                ups = {}
                metrics_on(m, ups)
                if sum(ups.values()) == 1:
                    break
                assert time.time() < deadline, "no upload weighed after 10 s: %r" % ups
                time.sleep(0.02)
            open_ten()
            ups = {}
            per, _ = metrics_on(m, ups)
            stop.set()
            t.join()
            w.log("  while uploading: %r, uploads %r" % (per, ups))
            assert sorted(per.values()) == [1, 11], per  # the upload alone
            assert [ups[k] for k in sorted(per, key=per.get)] == [1, 0], (per, ups)
            time.sleep(2.5)  # two ticks without bytes: the weight is gone
            open_ten()
            ups = {}
            per, _ = metrics_on(m, ups)
            w.log("  upload stalled: %r, uploads %r" % (per, ups))
            assert sorted(per.values()) == [11, 11], per
            assert sorted(ups.values()) == [0, 0], ups
            rest = total - sent[0]
            up.send(ZEN * (rest // len(ZEN)))
            check_counts(up.read_response(), {"is": 10 * copies}, total)
        finally:
            stop.set()
            for c in conns + [m, up]:
                c.close()
    # An upload answered early (413 over limits.max_json_body_bytes, mid
    # chunked body) lingers, discarding what still comes: no weight then.
    with w.Server({"event_loops": 2, "limits": {"max_json_body_bytes": 12 << 20}}) as s:
        conns = []
        m = Conn(s.port)
        up = Conn(s.port)
        stop = threading.Event()

        def stream_chunks():
            chunk = b"%x\r\n%s\r\n" % (len(ZEN) * 300, ZEN * 300)
            try:
                while not stop.is_set():
                    up.send(chunk)
                    time.sleep(0.01)
            except OSError:
                pass  # the linger ended

        try:
            deadline = time.time() + 10 * w.SLOW
            per, _ = metrics_on(m)
            while sum(per.values()) < 2:
                assert time.time() < deadline, per
                time.sleep(0.02)
                per, _ = metrics_on(m)
            up.send(b"POST /count HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n9\r\n{\"text\":\"\r\n")
            t = threading.Thread(target=stream_chunks)
            t.start()
            w.check_error(up.read_response(), 413)
            open_ten()
            per, _ = metrics_on(m)
            w.log("  upload lingering after a 413: %r" % per)
            assert sorted(per.values()) == [6, 6], per
        finally:
            stop.set()
            t.join()
            for c in conns + [m, up]:
                c.close()


def test_partial_config_and_sigint():
    with w.Server({"limits": {"max_needles": 2}}) as s:
        r = request(s.port, "POST", "/count?needle=a&needle=b&needle=c", b"a b c")
        w.check_error(r, 400)
        r = request(s.port, "POST", "/count?needle=a&needle=b", b"a b c")
        check_counts(r, {"a": 1, "b": 1}, 5)
        s.stop(sig=w.signal.SIGINT)


if __name__ == "__main__":
    w.run(globals(), deadline=170)
