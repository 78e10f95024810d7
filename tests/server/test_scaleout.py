"""Scale-out (issue 5): three replicas behind nginx, configured by
docker/nginx.conf itself (only the lines marked "# test:" are rewritten to
loopback ports and temporary paths). Every replica serves, every count is
right, and stopping replicas in the middle of a run (SIGTERM: drain; SIGKILL:
gone) loses no request: nginx retries /count on another replica.

nginx comes from Debian (nginx-light, in scripts/deps.sh test); when it is
not installed and cannot be, the test says so and is skipped (exit 0)."""

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wctest as w  # noqa: E402
from wctest import Conn, build_request, count_target, ref_count  # noqa: E402

SEED = int(os.environ.get("WC_SEED", random.randrange(1 << 30)))
CONF = os.path.join(w.REPO, "docker", "nginx.conf")


def find_nginx():
    for p in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if p and os.path.exists(p):
            return p
    if os.geteuid() == 0:
        subprocess.run([os.path.join(w.REPO, "scripts", "deps.sh"), "test"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
        if os.path.exists("/usr/sbin/nginx"):
            return "/usr/sbin/nginx"
    return None


def nginx_conf(tmp, lb_port, ports):
    """docker/nginx.conf with loopback ports and temporary paths."""
    out = []
    n_up = 0
    for ln in open(CONF).read().splitlines():
        m = re.search(r"#\s*test:\s*(\w+)", ln)
        if not m:
            out.append(ln)
            continue
        what = m.group(1)
        code = ln[: m.start()].rstrip()
        if what == "upstream":
            params = re.match(r"\s*server\s+\S+\s*(.*);", code).group(1)
            out += ["    server 127.0.0.1:%d %s;" % (p, params) for p in ports]
            n_up += 1
        elif what == "listen":
            out.append("    listen 127.0.0.1:%d;" % lb_port)
        elif what == "pid":
            out.append("pid %s/nginx.pid;" % tmp)
        elif what == "error_log":
            out.append("error_log %s/error.log warn;" % tmp)
        elif what == "access_log":
            out.append("  access_log %s/access.log;" % tmp)
        elif what == "temp":
            out.append(code.replace("/tmp/", tmp + "/"))
        else:
            raise AssertionError("unknown # test: marker %r" % what)
    assert n_up == 1, "docker/nginx.conf must have one '# test: upstream' server line"
    out.insert(0, "daemon off;")
    return "\n".join(out) + "\n"


class Nginx:
    def __init__(self, binary, ports):
        self.tmp = tempfile.mkdtemp(prefix="wc-nginx-")
        self.port = w.free_port()
        path = os.path.join(self.tmp, "nginx.conf")
        with open(path, "w") as f:
            f.write(nginx_conf(self.tmp, self.port, ports))
        self.proc = subprocess.Popen([binary, "-p", self.tmp, "-c", path, "-e", self.tmp + "/error.log"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 10
        while True:
            try:
                w.request(self.port, "GET", "/healthz", timeout=2)
                return
            except Exception:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    err = self.proc.stderr.read().decode() if self.proc.poll() is not None else ""
                    self.stop()
                    raise AssertionError("nginx did not start: %s %s" % (err, self.error_log()))
                time.sleep(0.05)

    def error_log(self):
        try:
            return open(os.path.join(self.tmp, "error.log")).read()[-3000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        shutil.rmtree(self.tmp, ignore_errors=True)


def make_jobs(rng, n):
    jobs = []
    for i in range(n):
        text = w.random_text(rng, rng.choice([5, 200, 3000])).encode()
        needles = [rng.choice(["is", "a", "k", "42", "x_y", "\u00e9"]) for _ in range(rng.choice([1, 1, 2]))]
        kind = rng.choice(["raw", "json", "json", "put"])
        jobs.append((kind, text, needles, ref_count(text, needles)))
    return jobs


def send(port, c, job, rid):
    kind, text, needles, exp = job
    hs = [("X-Request-Id", rid)]
    if kind == "json":
        body = json.dumps({"text": text.decode(), "needles": needles}).encode()
        c.send(build_request("POST", "/count", body, hs + [("Content-Type", "application/json")]))
    else:
        c.send(build_request("PUT" if kind == "put" else "POST", count_target(needles), text, hs))
    r = c.read_response()
    w.check_response(r)
    assert r.status == 200, "request %s: %r" % (rid, r)
    got = r.json()
    assert got["counts"] == exp and got["bytes"] == len(text), "request %s: %r != %r" % (rid, got, exp)
    assert r.header("X-Request-Id") == rid, r


def run_clients(port, jobs, nthreads, errors, done, pace=0.0):
    def worker(k):
        c = None
        for i in range(k, len(jobs), nthreads):
            try:
                if c is None:
                    c = Conn(port, timeout=30 * w.SLOW)
                send(port, c, jobs[i], "job-%d" % i)
                done.append(i)
            except Exception as e:  # noqa: BLE001
                errors.append("job %d: %s" % (i, e))
                if c is not None:
                    c.close()
                c = None
            if pace:
                time.sleep(pace)
        if c is not None:
            c.close()
    ts = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(nthreads)]
    for t in ts:
        t.start()
    return ts


def served(s):
    return sum(1 for ln in s.stdout.splitlines() if '"POST /count' in ln or '"PUT /count' in ln)


def test_three_replicas_behind_nginx():
    binary = find_nginx()
    if binary is None:
        w.log("  SKIP: nginx is not installed (apt-get install nginx-light, or scripts/deps.sh test)")
        return
    rng = random.Random(SEED)
    w.log("  seed %d" % SEED)
    cfg = {"timeouts_ms": {"shutdown": 10000}}
    reps = [w.Server(cfg) for _ in range(3)]
    lb = None
    try:
        lb = Nginx(binary, [s.port for s in reps])
        # 1. 300 requests, 8 clients: all right, every replica serves
        jobs = make_jobs(rng, 300)
        errors, done = [], []
        for t in run_clients(lb.port, jobs, 8, errors, done):
            t.join(60 * w.SLOW)
        assert not errors, "%d failed: %s\nnginx: %s" % (len(errors), errors[:3], lb.error_log())
        assert len(done) == 300, len(done)
        time.sleep(1.2)  # access logs are flushed every second
        per = [served(s) for s in reps]
        w.log("  requests per replica: %r" % per)
        assert all(n > 0 for n in per), "a replica served nothing: %r" % per
        assert sum(per) >= 300, per

        # 2. a run during which one replica drains (SIGTERM) and another is
        # killed (SIGKILL): no request fails, every count is right
        jobs = make_jobs(rng, 400)
        errors, done = [], []
        ts = run_clients(lb.port, jobs, 8, errors, done, pace=0.002)
        deadline = time.monotonic() + 30 * w.SLOW
        while len(done) < 100 and time.monotonic() < deadline and not errors:
            time.sleep(0.01)
        reps[0].send_signal(signal.SIGTERM)
        while len(done) < 200 and time.monotonic() < deadline and not errors:
            time.sleep(0.01)
        os.killpg(reps[1].proc.pid, signal.SIGKILL)
        for t in ts:
            t.join(60 * w.SLOW)
        assert not errors, "%d of 400 failed while replicas stopped: %s\nnginx: %s" % (
            len(errors), errors[:3], lb.error_log())
        assert len(done) == 400, len(done)
        rc = reps[0].wait(20 * w.SLOW)
        assert rc == 0, "the drained replica exited with %r: %s" % (rc, w.tail(reps[0].stderr))
        reps[0].stop()  # status 0, no sanitizer report
        reps[1].kill()
        assert reps[2].alive()
        # the survivor still answers through nginx
        r = w.request(lb.port, "POST", count_target(["is"]), w.ZEN)
        w.check_counts(r, {"is": 10}, 858)
        reps[2].stop()
    finally:
        if lb is not None:
            lb.stop()
        for s in reps:
            if not s.stopped:
                s.kill()


if __name__ == "__main__":
    w.run(globals(), deadline=100)
