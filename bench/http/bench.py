#!/usr/bin/env python3
"""The HTTP benchmark behind `make bench` (run by bench/http/run.sh).

Usage: bench.py --build BUILD_DIR [--quick] [--pids-file FILE]
                [--json FILE] [--png FILE] [--no-pin]

Starts BUILD_DIR/wordcount-server (workers 2, generous limits, no access
log) and, when installed, the anchors: nginx (bench/nginx/nginx.conf.in)
and the Node.js word-count server (bench/node/server.js), each on a free
loopback port. Then, loopback only:

 1. the seed's table over HTTP on the seed corpus (The Zen of Python x 1000,
    858,000 bytes, needle "is" counts 10,000) and x 100 (85.8 MB):
    mode=sequential, mode=parallel and two mode=sequential requests at once
    from two clients, as raw body and as JSON, beside nginx's upload ceiling,
    the Node.js server and the seed's pure-Python search_py timed in this
    process; rows are timed round-robin, and every response's count is
    checked;
 2. small requests with wrk (keep-alive, 64 connections): small JSON, small
    raw, 1-deep and 16-deep pipelining, on our server, nginx's fixed body and
    Node.js, interleaved; requests/s, p50, p99, errors. The servers run on
    the first half of the CPUs, wrk on the rest; our server is a second
    instance started there (one event loop per CPU it may run on, as nginx
    has one worker);
 3. head of line: p99 of small requests (16 connections) while 85.8 MB raw
    bodies are posted in a loop beside them, and alone: 3 interleaved runs
    each (1 with QUICK=1), medians;
 4. memory: peak RSS of a fresh server while one 1 GiB raw body streams in,
    and RSS before and after the small-request runs of section 2.

Prints tables in the style of bench_core (pytest-benchmark's), the issue's
target checks as ratios (reported, never asserted), and writes every number
to bench/results/latest.json and a gnuplot chart to bench/results/latest.png.
A wrong count or a server that does not start fails the run (exit 1); an
anchor that is missing or fails only loses its rows.

Processes: every child starts in its own session (process group = its pid),
its pid is appended to --pids-file (run.sh kills what is left on exit), and
it is stopped in a finally block, also on SIGINT, SIGTERM and SIGHUP.
"""

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from search_py import search_py  # noqa: E402  (the seed's pure-Python version)

# The seed's text: The Zen of Python (PEP 20) between two newlines, as in the
# PyO3 word-count test fixture (and bench/bench_core.c).
ZEN = (
    "\n"
    "The Zen of Python, by Tim Peters\n"
    "\n"
    "Beautiful is better than ugly.\n"
    "Explicit is better than implicit.\n"
    "Simple is better than complex.\n"
    "Complex is better than complicated.\n"
    "Flat is better than nested.\n"
    "Sparse is better than dense.\n"
    "Readability counts.\n"
    "Special cases aren't special enough to break the rules.\n"
    "Although practicality beats purity.\n"
    "Errors should never pass silently.\n"
    "Unless explicitly silenced.\n"
    "In the face of ambiguity, refuse the temptation to guess.\n"
    "There should be one-- and preferably only one --obvious way to do it.\n"
    "Although that way may not be obvious at first unless you're Dutch.\n"
    "Now is better than never.\n"
    "Although never is often better than *right* now.\n"
    "If the implementation is hard to explain, it's a bad idea.\n"
    "If the implementation is easy to explain, it may be a good idea.\n"
    "Namespaces are one honking great idea -- let's do more of those!\n"
)
ZEN_B = ZEN.encode("ascii")
NEEDLE = "is"
NEEDLE_PER_COPY = 10
assert len(ZEN_B) == 858, len(ZEN_B)
assert search_py(ZEN, NEEDLE) == NEEDLE_PER_COPY

SMALL_JSON = b'{"text":"is this is it","needle":"is"}'  # as bench/http/report.lua
SMALL_RAW = b"is this is it"
GIB = 1 << 30


def log(msg=""):
    print(msg, flush=True)


class BenchError(Exception):
    """A wrong count, a bad answer or a server that does not start."""


# ---------------------------------------------------------------- settings


class Settings:
    def __init__(self, quick):
        self.quick = quick
        # Section 1: per corpus, rows timed round-robin until at least
        # min_rounds sweeps and budget_s seconds (at most hard_s once 3
        # sweeps exist), not counting the time of the Node.js rows, which
        # join only the first slow_rounds sweeps (a call of theirs takes
        # seconds on the large corpus, where the two-client Node.js row is
        # left out: it would take 5-10 s a call).
        if quick:
            self.corpus_plan = {
                "zen-x1000": dict(min_rounds=5, max_rounds=200, budget_s=1.5, hard_s=3, slow_rounds=5, warm=True, warm_slow=True),
                "zen-x100000": dict(min_rounds=1, max_rounds=1, budget_s=0, hard_s=0, slow_rounds=1, warm=True, warm_slow=False),
            }
            self.py_rounds = {"zen-x1000": (5, 1), "zen-x100000": (1, 0)}
            self.wrk_s, self.wrk_reps, self.wrk_warm_s = 2, 1, 0
            self.hol_s, self.hol_base_s, self.hol_node_s, self.hol_reps = 2, 1, 0, 1
            self.deadline_s = 50
        else:
            self.corpus_plan = {
                "zen-x1000": dict(min_rounds=30, max_rounds=2000, budget_s=4, hard_s=8, slow_rounds=2000, warm=True, warm_slow=True),
                "zen-x100000": dict(min_rounds=5, max_rounds=40, budget_s=10, hard_s=20, slow_rounds=2, warm=True, warm_slow=False),
            }
            self.py_rounds = {"zen-x1000": (30, 2), "zen-x100000": (3, 0)}
            self.wrk_s, self.wrk_reps, self.wrk_warm_s = 5, 3, 1
            self.hol_s, self.hol_base_s, self.hol_node_s, self.hol_reps = 5, 2, 3, 3
            self.deadline_s = 270
        self.wrk_conns = 64
        self.hol_conns = 16


# ---------------------------------------------------------------- host


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except OSError:
        return -1.0


def cpu_ticks():
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
        return sum(v), v[7]
    except (OSError, ValueError, IndexError):
        return 0, 0


def steal_pct(a, b):
    if b[0] <= a[0]:
        return 0.0
    return 100.0 * (b[1] - a[1]) / (b[0] - a[0])


def tool_version(cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        out = (p.stdout + p.stderr).strip().splitlines()
        return out[0].strip() if out else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def commas(n):
    return f"{n:,}"


# ---------------------------------------------------------------- corpora


def make_corpora(build):
    """Writes (when missing or wrong) and loads the seed's corpora, the same
    files as bench_core's: BUILD/bench/corpus/zen-x1000.txt and
    zen-x100000.txt."""
    d = os.path.join(build, "bench", "corpus")
    os.makedirs(d, exist_ok=True)
    out = []
    for name, copies in (("zen-x1000", 1000), ("zen-x100000", 100000)):
        path = os.path.join(d, name + ".txt")
        want = ZEN_B * copies
        data = None
        if os.path.exists(path) and os.path.getsize(path) == len(want):
            with open(path, "rb") as f:
                data = f.read()
        if data != want:
            with open(path + ".tmp", "wb") as f:
                f.write(want)
            os.replace(path + ".tmp", path)
            state = "written"
        else:
            state = "up to date"
        data = want
        count = NEEDLE_PER_COPY * copies
        assert len(data) == 858 * copies
        log(f"corpus {path}: {state} ({commas(len(data))} bytes, needle \"{NEEDLE}\" counts {commas(count)})")
        out.append(dict(name=name, path=path, copies=copies, data=data, count=count))
    # The seed's check on the seed corpus, with the seed's own function.
    small = out[0]
    assert len(small["data"]) == 858000
    got = search_py(small["data"].decode("ascii"), NEEDLE)
    assert got == 10000, f"search_py counted {got} on the seed corpus, want 10000"
    return out


# ---------------------------------------------------------------- processes


class Procs:
    """The children this run started: each in its own session, so that its
    process group id is its pid; stop() ends exactly those groups."""

    def __init__(self, pids_file):
        self.pids_file = pids_file
        self.live = []

    def start(self, name, cmd, logdir, env=None):
        out = open(os.path.join(logdir, name + ".out"), "wb")
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env=env, start_new_session=True, cwd=ROOT)
        out.close()
        p.bench_name = name
        p.bench_log = os.path.join(logdir, name + ".out")
        self.live.append(p)
        if self.pids_file:
            with open(self.pids_file, "a") as f:
                f.write(f"{p.pid}\n")
        return p

    def stop(self, p, sig=signal.SIGTERM):
        if p not in self.live:
            return
        self.live.remove(p)
        try:
            self._stop(p, sig)
        finally:
            # Stopped: run.sh's trap must not signal this pid any more.
            if self.pids_file:
                with open(self.pids_file, "w") as f:
                    f.writelines(f"{q.pid}\n" for q in self.live)

    def _stop(self, p, sig):
        if p.poll() is None:
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(timeout=5)
        else:
            # The leader is gone; end whatever it left in its group.
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def stop_all(self):
        for p in list(reversed(self.live)):
            self.stop(p)


def tree_pids(pid):
    """pid and its descendants (nginx's workers)."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
            ppid = int(st[st.rindex(")") + 2:].split()[1])
        except (OSError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        q = todo.pop()
        out.append(q)
        todo.extend(children.get(q, []))
    return out


def pin(p, cpus):
    """Sets the CPU affinity of every thread of p and its descendants;
    threads they create later inherit it."""
    if p is None or cpus is None:
        return
    for pid in tree_pids(p.pid):
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                os.sched_setaffinity(int(tid), cpus)
            except OSError:
                pass


def rss_kib(pid, field="VmRSS"):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def proc_usage(p):
    """(CPU seconds, context switches) of p and its descendants, all threads
    (from /proc/PID/stat and /proc/PID/task/*/status)."""
    tck = os.sysconf("SC_CLK_TCK")
    cpu_s, switches = 0.0, 0
    for pid in tree_pids(p.pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                st = f.read()
            fields = st[st.rindex(")") + 2:].split()
            cpu_s += (int(fields[11]) + int(fields[12])) / tck
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/status") as f:
                    for line in f:
                        if "ctxt_switches:" in line:  # voluntary and nonvoluntary
                            switches += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return cpu_s, switches


def wait_ready(p, port, path, timeout=15):
    t_end = time.monotonic() + timeout
    last = None
    while time.monotonic() < t_end:
        if p.poll() is not None:
            break
        try:
            c = Conn(port, timeout=2)
            st, _ = c.request(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            c.close()
            if st == 200:
                return
            last = f"status {st}"
        except OSError as e:
            last = str(e)
        time.sleep(0.05)
    with open(p.bench_log, errors="replace") as f:
        tail = f.read()[-2000:]
    raise BenchError(f"{p.bench_name} did not become ready on port {port} ({last}); its output:\n{tail}")


# ---------------------------------------------------------------- HTTP client


class Closed(Exception):
    pass


class Conn:
    """One keep-alive HTTP/1.1 client connection (blocking socket). A request
    on a connection the server has closed in between is retried once on a new
    connection."""

    def __init__(self, port, timeout=180):
        self.port = port
        self.timeout = timeout
        self.sock = None
        self.buf = bytearray()

    def _connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = s
        self.buf = bytearray()

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def request(self, head, body=None, parts=None):
        """Sends head, then body (bytes) or each of parts; returns (status,
        response body)."""
        for attempt in (0, 1):
            fresh = self.sock is None
            if fresh:
                self._connect()
            try:
                self.sock.sendall(head)
                if body is not None:
                    self.sock.sendall(body)
                for part in parts or ():
                    self.sock.sendall(part)
                return self._response()
            except (ConnectionResetError, BrokenPipeError, Closed):
                self.close()
                if fresh or attempt:
                    raise
        raise AssertionError("unreachable")

    def read_responses(self, n):
        return [self._response() for _ in range(n)]

    def _recv(self):
        d = self.sock.recv(262144)
        if not d:
            raise Closed("connection closed by the server")
        self.buf += d

    def _response(self):
        while True:
            buf = self.buf
            while True:
                i = buf.find(b"\r\n\r\n")
                if i >= 0:
                    break
                self._recv()
                buf = self.buf
            lines = bytes(buf[:i]).decode("latin-1").split("\r\n")
            del buf[:i + 4]
            status = int(lines[0].split()[1])
            clen, close = 0, False
            for line in lines[1:]:
                k, _, v = line.partition(":")
                k = k.strip().lower()
                if k == "content-length":
                    clen = int(v.strip())
                elif k == "connection" and v.strip().lower() == "close":
                    close = True
            if status == 100:
                continue
            while len(self.buf) < clen:
                self._recv()
            body = bytes(self.buf[:clen])
            del self.buf[:clen]
            if close:
                self.close()
            return status, body


def raw_head(path, n, ctype="text/plain"):
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {n}\r\n\r\n").encode()


def check_count(who, status, body, want_count, want_bytes):
    if status != 200:
        raise BenchError(f"{who}: status {status}: {body[:300]!r}")
    try:
        doc = json.loads(body)
    except ValueError:
        raise BenchError(f"{who}: not JSON: {body[:300]!r}")
    if doc.get("count") != want_count or doc.get("bytes") != want_bytes:
        raise BenchError(f"{who}: answered {body[:300]!r}, want count {want_count} and bytes {want_bytes}")


# ---------------------------------------------------------------- section 1


class Twin:
    """Two persistent client threads that each run one call per round, so
    that a round costs two barrier hand-offs rather than two thread starts
    (the seed's ThreadPoolExecutor reuses its threads too)."""

    def __init__(self):
        self.start_b = threading.Barrier(3)
        self.done_b = threading.Barrier(3)
        self.jobs = [None, None]
        self.errors = [None, None]
        self.quit = False
        self.threads = [threading.Thread(target=self._main, args=(i,), daemon=True) for i in (0, 1)]
        for t in self.threads:
            t.start()

    def _main(self, i):
        while True:
            self.start_b.wait()
            if self.quit:
                return
            try:
                self.errors[i] = None
                self.jobs[i]()
            except BaseException as e:  # handed to the main thread
                self.errors[i] = e
            self.done_b.wait()

    def run(self, job0, job1):
        self.jobs = [job0, job1]
        t0 = time.perf_counter()
        self.start_b.wait()
        self.done_b.wait()
        t1 = time.perf_counter()
        for e in self.errors:
            if e is not None:
                raise e
        return t1 - t0

    def stop(self):
        self.quit = True
        try:
            self.start_b.wait(timeout=5)
        except threading.BrokenBarrierError:
            pass


class Row:
    """One row of the seed's table: a callable that makes one checked call
    (or two at once) and returns its time in seconds."""

    def __init__(self, name, server, kind, mode, factor, call, slow=False):
        self.name, self.server, self.kind, self.mode = name, server, kind, mode
        self.factor = factor  # bytes counted per call / corpus size
        self.call = call
        self.slow = slow
        self.ms = []


def build_rows(corpus, servers, twin):
    data, want = corpus["data"], corpus["count"]
    n = len(data)
    text = data.decode("ascii")
    rows = []
    heads, bodies = {}, {}
    for mode in ("sequential", "parallel"):
        heads[("raw", mode)] = raw_head(f"/count?needle={NEEDLE}&mode={mode}", n)
        jb = json.dumps({"text": text, "needle": NEEDLE, "mode": mode}).encode()
        bodies[("json", mode)] = jb
        heads[("json", mode)] = raw_head("/count", len(jb), "application/json")
    bodies_raw = memoryview(data)

    def single(name, server, kind, mode, head, body, check, slow=False):
        conn = Conn(server["port"])

        def call():
            t0 = time.perf_counter()
            st, rb = conn.request(head, body)
            t1 = time.perf_counter()
            check(name, st, rb)
            return t1 - t0

        rows.append(Row(name, server["name"], kind, mode, 1, call, slow))

    def double(name, server, kind, mode, head, body, check, slow=False):
        conns = [Conn(server["port"]), Conn(server["port"])]
        answers = [None, None]

        def job(i):
            def run():
                answers[i] = conns[i].request(head, body)
            return run

        def call():
            dt = twin.run(job(0), job(1))
            for i in (0, 1):
                check(f"{name} (client {i + 1})", *answers[i])
            return dt

        rows.append(Row(name, server["name"], kind, mode, 2, call, slow))

    def counted(name, st, rb):
        check_count(name, st, rb, want, n)

    def status200(name, st, rb):
        if st != 200:
            raise BenchError(f"{name}: status {st}: {rb[:200]!r}")

    ours = servers.get("ours")
    for kind in ("raw", "json"):
        for mode in ("sequential", "parallel"):
            body = bodies_raw if kind == "raw" else bodies[(kind, mode)]
            single(f"http_{kind}_{mode}", ours, kind, mode, heads[(kind, mode)], body, counted)
        body = bodies_raw if kind == "raw" else bodies[(kind, "sequential")]
        double(f"http_{kind}_sequential_twice_two_clients", ours, kind, "sequential",
               heads[(kind, "sequential")], body, counted)
    ngx = servers.get("nginx")
    if ngx:
        single("nginx_upload_read_whole_body", ngx, "raw", "-", raw_head("/upload", n, "application/octet-stream"),
               bodies_raw, status200)
        single("nginx_upload_discard", ngx, "raw", "-", raw_head("/discard", n, "application/octet-stream"),
               bodies_raw, status200)
    node = servers.get("node")
    if node:
        single("node_raw", node, "raw", "-", heads[("raw", "sequential")], bodies_raw, counted, slow=True)
        single("node_json", node, "json", "-", heads[("json", "sequential")], bodies[("json", "sequential")],
               counted, slow=True)
        if corpus["copies"] <= 1000:  # 5-10 s a call on 85.8 MB
            double("node_raw_twice_two_clients", node, "raw", "-", heads[("raw", "sequential")], bodies_raw,
                   counted, slow=True)
    return rows


def time_python(corpus, rounds, warmup):
    text = corpus["data"].decode("ascii")
    for _ in range(warmup):
        search_py(text, NEEDLE)
    ms = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        c = search_py(text, NEEDLE)
        t1 = time.perf_counter()
        if c != corpus["count"]:
            raise BenchError(f"search_py counted {c} on {corpus['name']}, want {corpus['count']}")
        ms.append((t1 - t0) * 1e3)
    return ms


def measure_rows(rows, plan):
    """Warms every row up, then times them round-robin, one call of each
    row per sweep, starting each sweep at a different row: a noisy moment on
    a shared host slows all rows alike."""
    if plan["warm"]:
        for r in rows:
            if r.slow and not plan["warm_slow"]:
                continue  # Node.js: warmed up on the small corpus already
            t_end = time.monotonic() + 0.05
            r.call()
            while not r.slow and time.monotonic() < t_end:
                r.call()
    spent = 0.0  # time of the rows that are not slow
    n = 0
    while True:
        active = [r for r in rows if not (r.slow and len(r.ms) >= plan["slow_rounds"])]
        for j in range(len(active)):
            r = active[(j + n) % len(active)]
            t0 = time.monotonic()
            r.ms.append(r.call() * 1e3)
            if not r.slow:
                spent += time.monotonic() - t0
        n += 1
        if n >= plan["max_rounds"]:
            break
        if n >= plan["min_rounds"] and spent >= plan["budget_s"]:
            break
        if n >= 3 and spent >= plan["hard_s"]:
            break


def summarize(ms, nbytes):
    ms = sorted(ms)
    med = statistics.median(ms)
    return dict(min_ms=ms[0], median_ms=med, max_ms=ms[-1], mb_per_s=nbytes / 1e6 / (med / 1e3), rounds=len(ms))


# ---------------------------------------------------------------- tables


GAP = 4


def ratio(v, best):
    r = v / best if best > 0 else 0
    return "(1.0)" if 0.9995 < r < 1.0005 else f"({r:.2f})"


def print_table(title, head, rows):
    """rows: lists of cells; a cell is a string, or (value, ratio) for the
    columns that carry a ratio (pytest-benchmark's "7.3348 (4.24)")."""
    nc = len(head)
    vw = [len(h) for h in head]
    rw = [0] * nc
    for row in rows:
        for j, c in enumerate(row):
            v, r = (c if isinstance(c, tuple) else (c, ""))
            vw[j] = max(vw[j], len(v))
            if r:
                rw[j] = max(rw[j], len(r) + 1)
    w = [vw[j] + rw[j] for j in range(nc)]
    total = sum(w) + GAP * (nc - 1)
    title = f" {title} "
    pad = max(4, total - len(title))
    out = ["-" * (pad // 2) + title + "-" * (pad - pad // 2)]
    line = head[0].ljust(w[0])
    for j in range(1, nc):
        line += " " * GAP + head[j].rjust(vw[j]) + " " * rw[j]
    out.append(line.rstrip())
    out.append("-" * total)
    for row in rows:
        line = row[0].ljust(w[0])
        for j in range(1, nc):
            v, r = (row[j] if isinstance(row[j], tuple) else (row[j], ""))
            if rw[j]:
                line += " " * GAP + v.rjust(vw[j]) + " " + r.ljust(rw[j] - 1)
            else:
                line += " " * GAP + v.rjust(vw[j])
        out.append(line.rstrip())
    out.append("-" * total)
    log("\n".join(out))


def print_seed_table(corpus, results):
    rows = sorted(results, key=lambda r: r["min_ms"])
    bmin = min(r["min_ms"] for r in rows)
    bmed = min(r["median_ms"] for r in rows)
    bmax = min(r["max_ms"] for r in rows)
    bmbs = max(r["mb_per_s"] for r in rows)
    cells = []
    for r in rows:
        cells.append([r["name"],
                      (f"{r['min_ms']:.4f}", ratio(r["min_ms"], bmin)),
                      (f"{r['median_ms']:.4f}", ratio(r["median_ms"], bmed)),
                      (f"{r['max_ms']:.4f}", ratio(r["max_ms"], bmax)),
                      (f"{r['mb_per_s']:.1f}", ratio(r["mb_per_s"], bmbs)),
                      str(r["rounds"])])
    title = (f"benchmark 'http {corpus['name']}': {commas(len(corpus['data']))} bytes, "
             f"needle \"{NEEDLE}\" counts {commas(corpus['count'])}, {len(rows)} tests")
    print_table(title, ["Name (time in ms)", "Min", "Median", "Max", "MB/s (median)", "Rounds"], cells)


# ---------------------------------------------------------------- wrk


SCENARIOS = [
    # name, script, args, what
    ("small_json", "small.lua", ["json"], 'POST /count {"text":"is this is it","needle":"is"}'),
    ("small_raw", "small.lua", ["raw"], "POST /count?needle=is, body \"is this is it\""),
    ("pipeline_1", "pipeline.lua", ["json", "1"], "the small JSON POST through the pipelining script, 1 deep"),
    ("pipeline_16", "pipeline.lua", ["json", "16"], "16 small JSON POSTs written at once per connection"),
]

WRK_RE = re.compile(r"WRK_RESULT (.*)")


def run_wrk(port, scenario, seconds, conns, client_cpus, proc=None):
    name, script, args, _ = next(s for s in SCENARIOS if s[0] == scenario)
    cmd = []
    if client_cpus is not None:
        cmd += ["taskset", "-c", ",".join(str(c) for c in sorted(client_cpus))]
    cmd += ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--timeout", "5s",
            "-s", os.path.join(ROOT, "bench", "http", script), f"http://127.0.0.1:{port}/count", "--"] + args
    u0 = proc_usage(proc) if proc else None
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30, cwd=ROOT)
    u1 = proc_usage(proc) if proc else None
    m = WRK_RE.search(p.stdout)
    if not m:
        raise BenchError(f"wrk {scenario}: no WRK_RESULT line (exit {p.returncode}):\n{p.stdout}\n{p.stderr}")
    kv = dict(x.split("=") for x in m.group(1).split())
    r = {k: float(v) for k, v in kv.items()}
    for k in ("p50_us", "p90_us", "p99_us"):
        if r[k] < 0:  # wrk lost this percentile (see bench/http/report.lua)
            r[k] = float("nan")
    errors = int(r["connect"] + r["read"] + r["write"] + r["timeout"])
    nreq = max(1, r["requests"])
    usage = dict(server_cpu_us_per_request=(u1[0] - u0[0]) * 1e6 / nreq,
                 server_switches_per_request=(u1[1] - u0[1]) / nreq) if proc else {}
    return dict(**usage, requests=int(r["requests"]), seconds=r["duration_us"] / 1e6,
                rps=r["requests"] / (r["duration_us"] / 1e6),
                p50_ms=r["p50_us"] / 1e3, p90_ms=r["p90_us"] / 1e3, p99_ms=r["p99_us"] / 1e3,
                max_ms=r["max_us"] / 1e3, mean_ms=r["mean_us"] / 1e3,
                socket_errors=errors, non_2xx=int(r["status"]), bytes=int(r["bytes"]))


def known(vals):
    return [v for v in vals if v == v]  # without NaN


def median_known(vals):
    k = known(vals)
    return statistics.median(k) if k else float("nan")


def ms_cell(v, best):
    return ("n/a", "") if v != v else (f"{v:.3f}", ratio(v, best))


def wrk_summary(runs):
    rps = [r["rps"] for r in runs]
    return dict(runs=runs, median_rps=statistics.median(rps), min_rps=min(rps), max_rps=max(rps),
                median_p50_ms=median_known(r["p50_ms"] for r in runs),
                median_p99_ms=median_known(r["p99_ms"] for r in runs),
                max_p99_ms=max(known(r["p99_ms"] for r in runs), default=float("nan")),
                requests=sum(r["requests"] for r in runs),
                median_cpu_us_per_request=statistics.median(r["server_cpu_us_per_request"] for r in runs),
                median_switches_per_request=statistics.median(r["server_switches_per_request"] for r in runs),
                socket_errors=sum(r["socket_errors"] for r in runs),
                non_2xx=sum(r["non_2xx"] for r in runs))


def sanity_small(servers):
    """Every server answers the small bodies (one by one and 16 pipelined)
    correctly before wrk, which does not look at the answers, runs."""
    for key, s in servers.items():
        c = Conn(s["port"], timeout=10)
        jh = raw_head("/count", len(SMALL_JSON), "application/json")
        rh = raw_head("/count?needle=is", len(SMALL_RAW))
        for head, body in ((jh, SMALL_JSON), (rh, SMALL_RAW)):
            st, rb = c.request(head, body)
            if key == "nginx":
                if st != 200 or rb != b'{"count":1}':
                    raise BenchError(f"nginx fixed body: status {st}, {rb!r}")
            else:
                check_count(f"{s['name']} small request", st, rb, 2, len(SMALL_RAW))
        c.sock.sendall((jh + SMALL_JSON) * 16)
        for st, rb in c.read_responses(16):
            if key != "nginx":
                check_count(f"{s['name']} 16 pipelined", st, rb, 2, len(SMALL_RAW))
            elif st != 200:
                raise BenchError(f"nginx pipelined: status {st}")
        c.close()


def print_wrk_table(scenario, what, conns, seconds, reps, results):
    rows = sorted(results, key=lambda r: -r["median_rps"])
    best_rps = max(r["median_rps"] for r in rows)
    best_p50 = min(known(r["median_p50_ms"] for r in rows), default=0)
    best_p99 = min(known(r["median_p99_ms"] for r in rows), default=0)
    cells = []
    for r in rows:
        cells.append([r["name"],
                      (f"{r['median_rps']:.0f}", ratio(r["median_rps"], best_rps)),
                      f"{r['min_rps']:.0f}..{r['max_rps']:.0f}",
                      ms_cell(r["median_p50_ms"], best_p50),
                      ms_cell(r["median_p99_ms"], best_p99),
                      f"{r['median_cpu_us_per_request']:.1f}",
                      f"{r['median_switches_per_request']:.2f}",
                      f"{r['socket_errors']}/{r['non_2xx']}",
                      str(len(r["runs"]))])
    title = f"benchmark '{scenario}': {what}; wrk -t1 -c{conns}, {seconds} s x {reps}"
    print_table(title, ["Name (requests)", "Requests/s (median)", "Min..Max", "p50 ms", "p99 ms",
                        "Server CPU us/req", "Ctx sw/req", "Errors/non-2xx", "Runs"], cells)


# ---------------------------------------------------------------- section 3


class BigPoster:
    """Posts the 85.8 MB corpus as a raw body in a loop (mode auto), checking
    every count, until stopped."""

    def __init__(self, port, corpus):
        self.conn = Conn(port)
        self.corpus = corpus
        self.head = raw_head(f"/count?needle={NEEDLE}", len(corpus["data"]))
        self.body = memoryview(corpus["data"])
        self.stop_ev = threading.Event()
        self.done = 0
        self.error = None
        self.seconds = 0.0
        self.thread = threading.Thread(target=self._main, daemon=True)

    def _main(self):
        t0 = time.perf_counter()
        try:
            while not self.stop_ev.is_set():
                st, rb = self.conn.request(self.head, self.body)
                check_count("head-of-line big body", st, rb, self.corpus["count"], len(self.corpus["data"]))
                self.done += 1
        except BaseException as e:
            self.error = e
        self.seconds = time.perf_counter() - t0
        self.conn.close()

    def __enter__(self):
        self.thread.start()
        time.sleep(0.05)  # the first body is on its way before wrk starts
        return self

    def __exit__(self, *exc):
        self.stop_ev.set()
        self.thread.join(timeout=60)
        if self.error is not None and exc[0] is None:
            raise self.error


# ---------------------------------------------------------------- memory


def server_config(port):
    """wordcount-server's configuration in this benchmark (also hol.py's):
    2 workers, generous limits and timeouts, no access log."""
    return {
        "listen": {"host": "127.0.0.1", "port": port},
        "workers": 2,
        "limits": {"max_body_bytes": 4 * GIB, "max_json_body_bytes": 256 << 20,
                   "max_connections": 65536},
        "timeouts_ms": {"header": 60000, "body": 60000, "keepalive": 300000},
        "log": {"access": False, "level": "warn"},
    }


def memory_test(build, procs, workdir, corpus, cfg):
    """A fresh server; one raw body of exactly 1 GiB (the 85.8 MB corpus 12
    times and a part of it) streamed on one connection; VmRSS sampled every
    5 ms and VmHWM read at the end."""
    port = free_port()
    path = os.path.join(workdir, "mem-config.json")
    c = dict(cfg)
    c["listen"] = {"host": "127.0.0.1", "port": port}
    with open(path, "w") as f:
        json.dump(c, f)
    p = procs.start("wordcount-server-mem", [os.path.join(build, "wordcount-server"), "--config", path],
                    workdir, env=server_env())
    try:
        wait_ready(p, port, "/healthz")
        data = corpus["data"]
        full, rest = divmod(GIB, len(data))
        tail = data[:rest]
        copies, part = divmod(rest, len(ZEN_B))
        want = (full * corpus["copies"] + copies) * NEEDLE_PER_COPY + search_py(ZEN[:part], NEEDLE)
        parts = [memoryview(data)] * full + [memoryview(tail)]
        base = rss_kib(p.pid)
        samples = []
        stop = threading.Event()

        def sampler():
            while not stop.is_set():
                v = rss_kib(p.pid)
                if v is not None:
                    samples.append(v)
                time.sleep(0.005)

        th = threading.Thread(target=sampler, daemon=True)
        th.start()
        conn = Conn(port)
        t0 = time.perf_counter()
        st, rb = conn.request(raw_head(f"/count?needle={NEEDLE}", GIB), parts=parts)
        t1 = time.perf_counter()
        stop.set()
        th.join()
        conn.close()
        check_count("1 GiB raw body", st, rb, want, GIB)
        hwm = rss_kib(p.pid, "VmHWM")
        return dict(body_bytes=GIB, count=want, seconds=t1 - t0, mb_per_s=GIB / 1e6 / (t1 - t0),
                    rss_before_kib=base, rss_peak_sampled_kib=max(samples) if samples else None,
                    vm_hwm_kib=hwm, samples=len(samples))
    finally:
        procs.stop(p)


def server_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORDCOUNT_")}
    return env


# ---------------------------------------------------------------- checks


def add_check(checks, name, value, target, unit, note="", value_alt=None, lower_is_better=False):
    if value is None or value != value:
        return
    ok = value <= target if lower_is_better else value >= target
    checks.append(dict(name=name, value=value, value_alt=value_alt, target=target, unit=unit,
                       lower_is_better=lower_is_better, ok=ok, note=note))


def fmt_val(v, unit):
    if unit == "x":
        return f"{v:.2f}x"
    if unit == "%":
        return f"{v * 100:.1f}%"
    if unit == "ms":
        return f"{v:.2f} ms"
    if unit == "MiB":
        return f"{v:.1f} MiB"
    if unit == "+-%":
        return f"{v * 100:+.1f}%"
    return f"{v:.3g}"


def print_checks(checks):
    log("\nTarget checks (from this run; ratios of medians, with the same ratio from the best run or Min\n"
        "times in brackets where there is one; reported, not asserted; ok/below is by the median):")
    for c in checks:
        alt = f"({fmt_val(c['value_alt'], c['unit'])})" if c["value_alt"] is not None else ""
        cmp_ = "<=" if c["lower_is_better"] else ">="
        tgt = f"{cmp_} {fmt_val(c['target'], c['unit'])}"
        if c["unit"] == "+-%":
            tgt = f"within +-{c['target'] * 100:.0f}%"
        log(f"  {c['name']:<52} {fmt_val(c['value'], c['unit']):>10} {alt:<12} target {tgt:<14} "
            f"{'ok' if c['ok'] else 'below'}{('  ' + c['note']) if c['note'] else ''}")


# ---------------------------------------------------------------- chart


def write_chart(workdir, png, small, big_rows, header):
    """small: {scenario: {server: summary}}; big_rows: results of the
    85.8 MB table."""
    if shutil.which("gnuplot") is None:
        log("bench: gnuplot not found: no chart")
        return False
    sdat = os.path.join(workdir, "small.dat")
    servers = ["ours", "nginx", "node"]
    with open(sdat, "w") as f:
        f.write("# scenario " + " ".join(f"{s} {s}_lo {s}_hi" for s in servers) + "\n")
        for sc, _, _, _ in SCENARIOS:
            vals = []
            for s in servers:
                r = small.get(sc, {}).get(s)
                vals += ([f"{r['median_rps']:.1f}", f"{r['min_rps']:.1f}", f"{r['max_rps']:.1f}"]
                         if r else ["NaN", "NaN", "NaN"])
            f.write(f"\"{sc.replace('_', ' ')}\" " + " ".join(vals) + "\n")
    bdat = os.path.join(workdir, "big.dat")
    colour = {"ours": 1, "nginx": 2, "node": 3, "python": 4}
    with open(bdat, "w") as f:
        f.write("# label mb_per_s colour\n")
        for r in sorted(big_rows, key=lambda r: -r["mb_per_s"]):
            label = r["name"].replace("_", " ").replace("sequential", "seq").replace("parallel", "par") \
                .replace("twice two clients", "x2 clients").replace("search py python seq", "search_py (Python)")
            f.write(f"\"{label}\" {r['mb_per_s']:.2f} {colour.get(r['server'], 4)}\n")
    top = max([r["max_rps"] for sc in small.values() for r in sc.values()] + [1000])
    cmd = ["gnuplot", "-c", os.path.join(ROOT, "bench", "http", "chart.gp"), sdat, bdat, png, header,
           f"{top * 1.25:.0f}"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if p.returncode != 0 or not os.path.exists(png):
        log(f"bench: gnuplot failed (exit {p.returncode}): {p.stderr.strip()[:1000]}")
        return False
    return True


# ---------------------------------------------------------------- main


def no_nan(x):
    """JSON has no NaN: unknown numbers become null."""
    if isinstance(x, float) and x != x:
        return None
    if isinstance(x, dict):
        return {k: no_nan(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [no_nan(v) for v in x]
    return x


def on_signal(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main():
    ap = argparse.ArgumentParser(description="The HTTP benchmark behind `make bench`.")
    ap.add_argument("--build", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--pids-file")
    ap.add_argument("--json", default=os.path.join(ROOT, "bench", "results", "latest.json"))
    ap.add_argument("--png", default=os.path.join(ROOT, "bench", "results", "latest.png"))
    ap.add_argument("--no-pin", action="store_true", help="never set CPU affinity")
    a = ap.parse_args()
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)

    S = Settings(a.quick)
    build = a.build if os.path.isabs(a.build) else os.path.join(ROOT, a.build)
    server_bin = os.path.join(build, "wordcount-server")
    if not os.access(server_bin, os.X_OK):
        log(f"bench: {server_bin} is missing (run make)")
        return 1
    t_begin = time.monotonic()
    cores = os.cpu_count() or 1
    cpu = cpu_model()
    load0, ticks0 = loadavg(), cpu_ticks()
    # Small requests: the servers on the first half of the CPUs, wrk on the
    # rest, so that client and server never take turns on one core. Large
    # bodies and the head-of-line check: the servers on every CPU (the
    # counting runs in worker threads).
    avail = sorted(os.sched_getaffinity(0))
    if a.no_pin or len(avail) < 2:
        server_cpus = client_cpus = None
    else:
        half = len(avail) // 2
        server_cpus, client_cpus = set(avail[:half]), set(avail[half:])
    all_cpus = set(avail)
    versions = dict(
        server=tool_version([server_bin, "--version"]),
        nginx=tool_version(["nginx", "-v"]) if shutil.which("nginx") else None,
        node=tool_version(["node", "--version"]) if shutil.which("node") else None,
        wrk=tool_version(["wrk", "-v"]) if shutil.which("wrk") else None,
        python=platform.python_version(),
    )
    log(f"bench: {versions['server']}, CPU {cpu}, {cores} cores online, load average {load0:.2f}"
        f"{', quick run' if a.quick else ''}")
    log(f"bench: anchors: {versions['nginx'] or 'nginx missing'}; node {versions['node'] or 'missing'}; "
        f"{(versions['wrk'] or 'wrk missing').split(' [')[0]}; python {versions['python']}")
    if server_cpus:
        log(f"bench: small requests: servers on CPU {sorted(server_cpus)}, wrk on CPU {sorted(client_cpus)}; "
            f"large bodies: servers on CPUs {sorted(all_cpus)}")

    corpora = make_corpora(build)
    small_c, big_c = corpora
    procs = Procs(a.pids_file)
    workdir = tempfile.mkdtemp(prefix="wc-bench-")
    os.chmod(workdir, 0o755)  # nginx's worker (user nobody) opens the sink socket in it
    result = dict(benchmark="bench-http", time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  quick=a.quick, cpu=cpu, cores=cores, versions=versions,
                  pinning=dict(server_cpus_small=sorted(server_cpus) if server_cpus else None,
                               client_cpus=sorted(client_cpus) if client_cpus else None,
                               server_cpus_large=sorted(all_cpus)))
    twin = Twin()
    try:
        # ---- servers
        cfg = server_config(0)
        servers = {}
        port = free_port()
        cfg_ours = dict(cfg, listen={"host": "127.0.0.1", "port": port})
        cpath = os.path.join(workdir, "config.json")
        with open(cpath, "w") as f:
            json.dump(cfg_ours, f)
        p = procs.start("wordcount-server", [server_bin, "--config", cpath], workdir, env=server_env())
        wait_ready(p, port, "/healthz")
        servers["ours"] = dict(name="wordcount-server", port=port, proc=p)
        result["server_config"] = cfg_ours

        if versions["nginx"]:
            nport = free_port()
            prefix = os.path.join(workdir, "nginx")
            os.makedirs(prefix)
            os.chmod(prefix, 0o755)
            with open(os.path.join(ROOT, "bench", "nginx", "nginx.conf.in")) as f:
                conf = f.read().replace("@PREFIX@", prefix).replace("@PORT@", str(nport))
            with open(os.path.join(prefix, "nginx.conf"), "w") as f:
                f.write(conf)
            p = procs.start("nginx", ["nginx", "-p", prefix, "-c", os.path.join(prefix, "nginx.conf"),
                                      "-e", os.path.join(prefix, "error.log")], workdir)
            try:
                wait_ready(p, nport, "/")
                servers["nginx"] = dict(name="nginx", port=nport, proc=p, prefix=prefix)
            except BenchError as e:
                log(f"bench: nginx anchor skipped: {e}")
                procs.stop(p)
        if versions["node"]:
            np_ = free_port()
            p = procs.start("node", ["node", os.path.join(ROOT, "bench", "node", "server.js"), str(np_)], workdir)
            try:
                wait_ready(p, np_, "/healthz")
                servers["node"] = dict(name="node", port=np_, proc=p)
            except BenchError as e:
                log(f"bench: Node.js anchor skipped: {e}")
                procs.stop(p)
        names = {"ours": "wordcount-server", "nginx": "nginx", "node": "node"}

        def pin_servers(cpus):
            for s in servers.values():
                pin(s["proc"], cpus)

        # ---- section 1: the seed's table over HTTP
        log("\n== 1. The seed's table over HTTP (each response's count checked; "
            "MB/s of the twice rows counts both bodies) ==")
        pin_servers(all_cpus)
        seed = []
        for corpus in corpora:
            rounds, warm = S.py_rounds[corpus["name"]]
            log(f"\nbench: {corpus['name']}: timing the seed's search_py in process ({rounds} rounds), "
                f"then the HTTP rows round-robin")
            py_ms = time_python(corpus, rounds, warm)
            rows = build_rows(corpus, servers, twin)
            measure_rows(rows, S.corpus_plan[corpus["name"]])
            n = len(corpus["data"])
            results = []
            for r in rows:
                results.append(dict(name=r.name, server=r.server, kind=r.kind, mode=r.mode,
                                    **summarize(r.ms, n * r.factor)))
            results.append(dict(name="search_py_python_sequential", server="python", kind="in-process",
                                mode="sequential", **summarize(py_ms, n)))
            for r in results:
                r["server"] = {"wordcount-server": "ours"}.get(r["server"], r["server"])
            print_seed_table(corpus, results)
            seed.append(dict(corpus=corpus["name"], bytes=n, count=corpus["count"], rows=results))
        result["seed_table"] = seed

        # nginx's upload ceiling really read every byte: $request_length of
        # /upload is the whole request (line, headers and body), and the
        # time nginx spent on /discard is the whole client-side time.
        if "nginx" in servers:
            ver = []
            with open(os.path.join(servers["nginx"]["prefix"], "upload.log")) as f:
                for line in f:
                    uri, status, length, rtime = line.split()
                    ver.append((uri, int(status), int(length), float(rtime)))
            big_up = [v for v in ver if v[0] == "/upload" and v[2] >= len(big_c["data"])]
            big_all = [v for v in ver if v[0] == "/upload" and v[2] > len(small_c["data"]) * 2]
            disc = [v[3] for v in ver if v[0] == "/discard" and v[3] > 0.005]
            big_rows = {r["name"]: r for r in seed[1]["rows"]}
            d_med = big_rows.get("nginx_upload_discard", {}).get("median_ms")
            info = dict(upload_requests_logged=len([v for v in ver if v[0] == "/upload"]),
                        upload_big_with_whole_body=len(big_up), upload_big_logged=len(big_all),
                        discard_nginx_time_median_ms=statistics.median(disc) * 1e3 if disc else None,
                        discard_client_time_median_ms=d_med)
            result["nginx_upload_verification"] = info
            log(f"\nbench: nginx upload ceiling verified: {info['upload_big_with_whole_body']} of "
                f"{info['upload_big_logged']} large /upload requests logged $request_length >= "
                f"{commas(len(big_c['data']))} (the whole body read before the answer)"
                + (f"; /discard: nginx's own $request_time median {info['discard_nginx_time_median_ms']:.1f} ms "
                   f"vs {d_med:.1f} ms at the client" if disc and d_med else ""))

        # ---- section 2: small requests
        log(f"\n== 2. Small requests: wrk, keep-alive, {S.wrk_conns} connections, {S.wrk_s} s per run, "
            f"{S.wrk_reps} interleaved run(s) per row ==\n"
            "(p50/p99 as wrk reports them: coordinated-omission corrected; per batch when pipelining, where wrk "
            "may lose them: n/a)")
        pin_servers(server_cpus)
        # Our server here is a second instance started on the small-request
        # CPUs, as nginx's one worker is sized for them: event_loops 0 gives
        # one loop per CPU it may run on. The first instance, started on
        # every CPU, has a loop per CPU; squeezed onto one CPU its two busy
        # loops take turns in scheduler slices (p99 about 5 ms instead of
        # 1.3-1.5 ms at 64 connections, and fewer requests/s).
        small_srv = dict(servers)
        if server_cpus:
            sport = free_port()
            spath = os.path.join(workdir, "config-small.json")
            with open(spath, "w") as f:
                json.dump(dict(cfg, listen={"host": "127.0.0.1", "port": sport}), f)
            sp = procs.start("wordcount-server-small",
                             ["taskset", "-c", ",".join(str(c) for c in sorted(server_cpus)),
                              server_bin, "--config", spath], workdir, env=server_env())
            wait_ready(sp, sport, "/healthz")
            small_srv["ours"] = dict(name="wordcount-server", port=sport, proc=sp)
            result["server_config_small"] = dict(cfg, listen={"host": "127.0.0.1", "port": sport},
                                                 started_on_cpus=sorted(server_cpus))
            log(f"bench: wordcount-server for this section: a second instance started on CPU "
                f"{sorted(server_cpus)} (event_loops 0: one loop per CPU it may run on)")
        sanity_small(small_srv)
        fresh = small_srv["ours"] is not servers["ours"]
        for key, s in small_srv.items():
            # warm-up (quick: section 1 has warmed the servers, but not a
            # fresh instance)
            warm_s = S.wrk_warm_s or (1 if key == "ours" and fresh else 0)
            if warm_s:
                for sc in ("small_json", "pipeline_16") if key == "ours" else ("small_json",):
                    run_wrk(s["port"], sc, warm_s, S.wrk_conns, client_cpus)
        rss0 = rss_kib(small_srv["ours"]["proc"].pid)
        runs = {(sc[0], k): [] for sc in SCENARIOS for k in small_srv}
        order = list(small_srv)
        reps_done = 0
        for rep in range(S.wrk_reps):
            if rep > 0 and time.monotonic() - t_begin > S.deadline_s - len(SCENARIOS) * len(servers) * (S.wrk_s + 1):
                log(f"bench: time budget: stopping after {rep} run(s) per row")
                break
            for sc in SCENARIOS:
                for k in order[rep % len(order):] + order[:rep % len(order)]:
                    runs[(sc[0], k)].append(run_wrk(small_srv[k]["port"], sc[0], S.wrk_s, S.wrk_conns, client_cpus,
                                                    small_srv[k]["proc"]))
            reps_done += 1
        rss1 = rss_kib(small_srv["ours"]["proc"].pid)
        small = {}
        for sc in SCENARIOS:
            res = []
            for k in small_srv:
                summ = wrk_summary(runs[(sc[0], k)])
                summ["name"] = f"{names[k]}{'_fixed_body' if k == 'nginx' else ''}_{sc[0]}"
                summ["server"] = k
                small.setdefault(sc[0], {})[k] = summ
                res.append(summ)
            print_wrk_table(sc[0], sc[3], S.wrk_conns, S.wrk_s, reps_done, res)
        ours_reqs = sum(small[sc[0]]["ours"]["requests"] for sc in SCENARIOS)
        result["small_requests"] = dict(connections=S.wrk_conns, seconds=S.wrk_s, runs=reps_done,
                                        scenarios={sc[0]: sc[3] for sc in SCENARIOS}, results=small)
        result["rss_small_requests"] = dict(rss_before_kib=rss0, rss_after_kib=rss1, requests=ours_reqs)
        log(f"bench: wordcount-server RSS {rss0 / 1024:.1f} MiB before and {rss1 / 1024:.1f} MiB after "
            f"{commas(ours_reqs)} small requests")
        if fresh:
            procs.stop(small_srv["ours"]["proc"])

        # ---- section 3: head of line
        log(f"\n== 3. Head of line: small JSON requests (wrk, {S.hol_conns} connections) while 85.8 MB raw "
            f"bodies are posted in a loop on another connection, and alone; {S.hol_reps} interleaved run(s) "
            f"each ==")
        pin_servers(all_cpus)
        hol = []
        ours = servers["ours"]
        # Alone and beside, interleaved, hol_reps times: a row is the median
        # of its runs (p99 of a single run moved 3.3-7.9 ms between runs).
        alone, beside = [], []
        for _ in range(S.hol_reps):
            r = run_wrk(ours["port"], "small_json", S.hol_base_s, S.hol_conns, client_cpus)
            alone.append(dict(big_bodies=0, big_mb_per_s=None, **r))
            with BigPoster(ours["port"], big_c) as bp:
                r = run_wrk(ours["port"], "small_json", S.hol_s, S.hol_conns, client_cpus)
            beside.append(dict(big_bodies=bp.done,
                               big_mb_per_s=bp.done * len(big_c["data"]) / 1e6 / bp.seconds if bp.seconds else None,
                               **r))
        for name, runs in (("wordcount-server_small_json_alone", alone),
                           ("wordcount-server_small_json_beside_85.8MB", beside)):
            row = dict(runs[0], name=name, server="ours", runs=runs)
            for k in ("rps", "p50_ms", "p99_ms", "big_bodies"):
                row[k] = median_known([x[k] for x in runs])
            if runs[0]["big_mb_per_s"] is not None:
                row["big_mb_per_s"] = median_known([x["big_mb_per_s"] for x in runs])
            row["max_ms"] = max(x["max_ms"] for x in runs)
            row["socket_errors"] = sum(x["socket_errors"] for x in runs)
            row["non_2xx"] = sum(x["non_2xx"] for x in runs)
            hol.append(row)
            if len(runs) > 1:
                log(f"bench: {name}: p99 of {len(runs)} runs " +
                    ", ".join(f"{x['p99_ms']:.2f}" for x in runs) + " ms (the row shows medians)")
        if "node" in servers and S.hol_node_s:
            with BigPoster(servers["node"]["port"], big_c) as bp:
                r = run_wrk(servers["node"]["port"], "small_json", S.hol_node_s, S.hol_conns, client_cpus)
            hol.append(dict(name="node_small_json_beside_85.8MB", server="node", big_bodies=bp.done,
                            big_mb_per_s=bp.done * len(big_c["data"]) / 1e6 / bp.seconds if bp.seconds else None,
                            **r))
        best_p99 = min(known(h["p99_ms"] for h in hol), default=0)
        best_p50 = min(known(h["p50_ms"] for h in hol), default=0)
        best_rps = max(h["rps"] for h in hol)
        cells = [[h["name"], (f"{h['rps']:.0f}", ratio(h["rps"], best_rps)),
                  ms_cell(h["p50_ms"], best_p50), ms_cell(h["p99_ms"], best_p99), f"{h['max_ms']:.1f}",
                  f"{h['socket_errors']}/{h['non_2xx']}",
                  f"{h['big_bodies']:g}" + (f" ({h['big_mb_per_s']:.0f} MB/s)" if h["big_mb_per_s"] else "")]
                 for h in hol]
        print_table(f"benchmark 'head of line': small JSON POSTs, wrk -t1 -c{S.hol_conns}",
                    ["Name (requests)", "Requests/s", "p50 ms", "p99 ms", "Max ms", "Errors/non-2xx",
                     "85.8 MB bodies done"], cells)
        result["head_of_line"] = hol

        # ---- memory: a fresh server, one 1 GiB raw body
        log("\n== 4. Memory: one 1 GiB raw body streamed to a fresh server (VmHWM is its peak RSS) ==")
        mem = memory_test(build, procs, workdir, big_c, cfg)
        log(f"bench: 1 GiB raw body counted ({commas(mem['count'])}) in {mem['seconds']:.2f} s "
            f"({mem['mb_per_s']:.0f} MB/s); RSS {mem['rss_before_kib'] / 1024:.1f} MiB before, peak "
            f"{mem['vm_hwm_kib'] / 1024:.1f} MiB (VmHWM; sampled max {(mem['rss_peak_sampled_kib'] or 0) / 1024:.1f} MiB)")
        result["memory_1gib"] = mem

        # ---- checks
        checks = []
        sj = small["small_json"]
        if "nginx" in servers:
            add_check(checks, "small JSON, 64 conns: ours / nginx fixed body",
                      sj["ours"]["median_rps"] / sj["nginx"]["median_rps"], 1.0, "x",
                      value_alt=sj["ours"]["max_rps"] / sj["nginx"]["max_rps"])
        if "node" in servers:
            add_check(checks, "small JSON, 64 conns: ours / Node.js",
                      sj["ours"]["median_rps"] / sj["node"]["median_rps"], 4.0, "x",
                      value_alt=sj["ours"]["max_rps"] / sj["node"]["max_rps"])
        p16 = small["pipeline_16"]
        if "nginx" in servers:
            add_check(checks, "16-deep pipelining: ours / nginx fixed body",
                      p16["ours"]["median_rps"] / p16["nginx"]["median_rps"], 5.0, "x",
                      value_alt=p16["ours"]["max_rps"] / p16["nginx"]["max_rps"])
        big = {r["name"]: r for r in seed[1]["rows"]}

        def thr(name):
            return big[name]["mb_per_s"], (big[name]["mb_per_s"] * big[name]["median_ms"] / big[name]["min_ms"])

        if "nginx" in servers:
            ceil_name = max(("nginx_upload_read_whole_body", "nginx_upload_discard"), key=lambda x: big[x]["mb_per_s"])
            cm, cmin = thr(ceil_name)
            for mode in ("parallel", "sequential"):
                vm, vmin = thr(f"http_raw_{mode}")
                add_check(checks, f"85.8 MB raw {mode} / nginx upload ceiling", vm / cm, 0.85, "%",
                          value_alt=vmin / cmin, note=f"(ceiling: {ceil_name})")
        vp, vpmin = thr("http_json_parallel")
        vs, vsmin = thr("http_json_sequential")
        vt, vtmin = thr("http_json_sequential_twice_two_clients")
        add_check(checks, "85.8 MB JSON: parallel / sequential", vp / vs, 1.3, "x", value_alt=vpmin / vsmin)
        add_check(checks, "85.8 MB JSON: two sequential at once / one", vt / vs, 1.6, "x", value_alt=vtmin / vsmin)
        add_check(checks, "p99 of small requests beside 85.8 MB bodies", hol[1]["p99_ms"], 5.0, "ms",
                  lower_is_better=True)
        add_check(checks, "peak RSS while a 1 GiB raw body streams in", mem["vm_hwm_kib"] / 1024, 64, "MiB",
                  lower_is_better=True)
        if rss0 and rss1:
            drift = (rss1 - rss0) / rss0
            checks.append(dict(name=f"RSS drift across {ours_reqs / 1e6:.1f}M small requests", value=drift,
                               value_alt=None, target=0.05, unit="+-%", lower_is_better=False,
                               ok=abs(drift) <= 0.05,
                               note="" if ours_reqs >= 1_000_000 else "(fewer than 1M requests in this run)"))
        print_checks(checks)
        result["checks"] = checks

        load1, ticks1 = loadavg(), cpu_ticks()
        steal = steal_pct(ticks0, ticks1)
        result["loadavg_1min"] = [load0, load1]
        result["cpu_steal_pct"] = steal
        elapsed = time.monotonic() - t_begin
        result["elapsed_s"] = elapsed
        log(f"\nbench: load average {load0:.2f} before, {load1:.2f} after; CPU steal {steal:.1f}% during the run; "
            f"{elapsed:.0f} s")

        os.makedirs(os.path.dirname(a.json), exist_ok=True)
        with open(a.json + ".tmp", "w") as f:
            json.dump(no_nan(result), f, indent=1)
            f.write("\n")
        os.replace(a.json + ".tmp", a.json)
        log(f"bench: results written to {os.path.relpath(a.json, ROOT)}")
        header = (f"wordcount-server, {cpu}, {cores} cores, {result['time']}"
                  f"{' (quick)' if a.quick else ''}")
        if write_chart(workdir, a.png, small, seed[1]["rows"], header):
            log(f"bench: chart written to {os.path.relpath(a.png, ROOT)}")
        return 0
    except BenchError as e:
        log(f"bench: FAIL: {e}")
        return 1
    except KeyboardInterrupt as e:
        log(f"bench: interrupted ({e})")
        return 130
    finally:
        twin.stop()
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
