"""Soak test (issue 6): normal load and abusive clients together, for a
duration (WC_SOAK_SECONDS, or the first argument; default 60).

Against one server (build/wordcount-server, 2 workers, short header/body
timeouts so that slow clients are cut off within seconds), all at once:
- wrk: keep-alive POST /count load; a Lua hook checks every response body
  (status 200 and the right count) and reports the wrong ones;
- verified Python clients (tests/stress/loadgen.py): small, large, chunked,
  JSON and form bodies, each answer checked against the reference counter,
  and clients that leave in the middle of a body;
- slowhttptest (Debian): slowloris (slow headers) and slow bodies;
- Python abusers: connections reset (RST) after a random prefix of a
  request; clients that send a whole large request and leave without
  reading the answer (their jobs finish for nobody); pipelining floods that
  send requests and never read, until the socket blocks, then hold and go;
- a /healthz probe every 0.5 s and an RSS and open-fd sampler every 1 s.

Passes when: RSS plateaus (the highest RSS in the last quarter of the run
is less than 10% above the highest in the first half; in runs under 5
minutes, or less than 8 MiB above it),
the server's open fds return to their baseline after the clients leave,
every completed response had the right count (wrk and Python), every
/healthz probe was answered with 200 within 5 s, and SIGTERM ends the
server with status 0. Everything runs on loopback and is cleaned up.
"""

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "stress"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "server"))
import loadgen  # noqa: E402
import wctest as w  # noqa: E402
from wctest import CORPUS, ZEN, build_request, count_target  # noqa: E402

DURATION = float(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("WC_SOAK_SECONDS", "60"))
CONFIG = {
    "workers": 2,
    "limits": {"max_connections": 2048},
    "timeouts_ms": {"header": 3000, "body": 3000, "keepalive": 3000, "shutdown": 15000},
    "log": {"access": False},
}

WRK_LUA = r"""
wrk.method = "POST"
wrk.body = [[%s]]
wrk.headers["Content-Type"] = "application/octet-stream"
local threads = {}
bad = 0
function setup(thread) table.insert(threads, thread) end
function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"count":%d,', 1, true) then
    bad = bad + 1
  end
end
function done(summary, latency, requests)
  local b = 0
  for _, t in ipairs(threads) do b = b + t:get("bad") end
  io.write(string.format("WRK_BAD %%d\n", b))
end
"""


def log(*a):
    print(*a, flush=True)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    return 0


def nfds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class Abusers:
    def __init__(self, port, stop, seed):
        self.port = port
        self.stop = stop
        self.rng = random.Random(seed)
        self.counts = {"reset": 0, "left": 0, "flood": 0}
        self.lock = threading.Lock()

    def _bump(self, k):
        with self.lock:
            self.counts[k] += 1

    def resets(self):
        rng = random.Random(self.rng.random())
        req = build_request("POST", count_target(["is"]), ZEN * 50)
        while not self.stop.is_set():
            try:
                s = socket.create_connection((w.HOST, self.port), timeout=5)
                s.sendall(req[: rng.randint(1, len(req))])
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                s.close()
                self._bump("reset")
            except OSError:
                pass
            time.sleep(0.02)

    def leavers(self):
        req = build_request("POST", count_target(["is"]), CORPUS * 3)
        while not self.stop.is_set():
            try:
                s = socket.create_connection((w.HOST, self.port), timeout=10)
                s.sendall(req)
                s.close()  # the answer is computed for nobody
                self._bump("left")
            except OSError:
                pass
            time.sleep(0.2)

    def floods(self):
        req = build_request("GET", "/healthz") * 200
        while not self.stop.is_set():
            try:
                s = socket.create_connection((w.HOST, self.port), timeout=5)
                s.setblocking(False)
                sent = 0
                t_end = time.monotonic() + 3
                while time.monotonic() < t_end and not self.stop.is_set():
                    try:
                        sent += s.send(req)
                    except BlockingIOError:
                        time.sleep(0.1)  # the server stopped reading: hold
                s.close()
                self._bump("flood")
            except OSError:
                pass


def main():
    if shutil.which("wrk") is None or shutil.which("slowhttptest") is None:
        log("FAIL: wrk and slowhttptest are needed (scripts/deps.sh test installs them)")
        return 1
    log("soak: %.0f s" % DURATION)
    srv = w.Server(CONFIG)
    tmp = tempfile.mkdtemp(prefix="wc-soak-")
    procs = []
    stop = threading.Event()
    threads = []
    try:
        pid = srv.proc.pid
        port = srv.port
        # Warm up, then take the baselines.
        for _ in range(20):
            r = w.post_raw(port, ZEN)
            assert r.status == 200
        time.sleep(0.5)
        base_fds = nfds(pid)
        base_rss = rss_kb(pid)
        log("baseline: %d fds, RSS %d KiB" % (base_fds, base_rss))

        lua = os.path.join(tmp, "post.lua")
        with open(lua, "w") as f:
            f.write(WRK_LUA % (ZEN.decode(), w.ZEN_IS))
        secs = int(DURATION)
        url = "http://%s:%d" % (w.HOST, port)
        wrk = subprocess.Popen(["wrk", "-t1", "-c16", "-d%ds" % secs, "--timeout", "10s", "-s", lua,
                                url + count_target(["is"])],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(wrk)
        for mode in (["-H"], ["-B", "-s", "100000"]):
            procs.append(subprocess.Popen(
                ["slowhttptest"] + mode + ["-c", "150", "-r", "50", "-i", "1", "-x", "16", "-p", "5",
                                           "-l", str(secs), "-u", url + "/count"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True, cwd=tmp))

        ab = Abusers(port, stop, 12345)
        for fn in (ab.resets, ab.leavers, ab.floods):
            t = threading.Thread(target=fn, daemon=True)
            t.start()
            threads.append(t)

        samples = []  # (t, rss, fds)
        probes = {"ok": 0, "fail": []}

        def sampler():
            t0 = time.monotonic()
            while not stop.is_set():
                try:
                    samples.append((time.monotonic() - t0, rss_kb(pid), nfds(pid)))
                except OSError:
                    pass
                stop.wait(1.0)

        def prober():
            while not stop.is_set():
                t1 = time.monotonic()
                try:
                    r = w.request(port, "GET", "/healthz", timeout=5)
                    if r.status == 200:
                        probes["ok"] += 1
                    else:
                        probes["fail"].append("status %d" % r.status)
                except Exception as ex:  # noqa: BLE001 - every failure is recorded
                    probes["fail"].append("%.1fs: %s" % (time.monotonic() - t1, ex))
                stop.wait(0.5)

        for fn in (sampler, prober):
            t = threading.Thread(target=fn, daemon=True)
            t.start()
            threads.append(t)

        st = loadgen.run_load(port, DURATION, threads=4, big=True)
        stop.set()
        for t in threads:
            t.join(15)
        wrk_out, _ = wrk.communicate(timeout=60)
        wrk_out = wrk_out.decode("utf-8", "replace")
        for p in procs[1:]:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)

        # The slow clients are gone: the fds must come back to the baseline.
        fd_deadline = time.monotonic() + 20
        while nfds(pid) > base_fds and time.monotonic() < fd_deadline:
            time.sleep(0.2)
        end_fds = nfds(pid)
        end_rss = rss_kb(pid)

        bad = []
        req_s = [ln for ln in wrk_out.splitlines() if "Requests/sec" in ln or "requests in" in ln]
        wrk_bad = [int(ln.split()[1]) for ln in wrk_out.splitlines() if ln.startswith("WRK_BAD")]
        log("wrk: %s; wrong responses %s" % ("; ".join(x.strip() for x in req_s),
                                            wrk_bad[0] if wrk_bad else "?"))
        if not wrk_bad or wrk_bad[0] != 0 or wrk.returncode != 0:
            bad.append("wrk: wrong responses or failure:\n" + wrk_out[-2000:])
        log("python clients: %d verified, %d left mid-body, %d errors (seed %d)"
            % (st.ok, st.aborted, len(st.errors), st.seed))
        if st.errors:
            bad.append("python clients:\n  " + "\n  ".join(st.errors[:20]))
        log("abusers: %d resets, %d left before the answer, %d pipelining floods"
            % (ab.counts["reset"], ab.counts["left"], ab.counts["flood"]))
        log("healthz: %d answered, %d failed" % (probes["ok"], len(probes["fail"])))
        if probes["fail"] or probes["ok"] == 0:
            bad.append("/healthz failures: %r" % probes["fail"][:10])
        # RSS plateau.
        # The peak of the first half against the peak of the last quarter:
        # RSS at a sample depends on how many 1 MiB body blocks are in
        # flight and on what glibc kept of earlier ones, so the reference is
        # the highest mark of the whole first half, not of one quarter (a
        # 60 s run once saw 12.2 MiB in the second quarter, 13.4 MiB at the
        # end: one more block, not a leak).
        mid = [s[1] for s in samples if s[0] <= DURATION / 2]
        end = [s[1] for s in samples if s[0] >= DURATION * 3 / 4]
        peak_fds = max(s[2] for s in samples) if samples else 0
        if not mid or not end:
            bad.append("too few RSS samples (%d)" % len(samples))
        else:
            growth = (max(end) - max(mid)) / max(mid) * 100
            log("RSS: baseline %d KiB, before the second half %d KiB, at the end %d KiB "
                "(%+.1f%%), after %d KiB; peak open fds %d"
                % (base_rss, max(mid), max(end), growth, end_rss, peak_fds))
            # A leak grows with the requests (1.4M of them in 60 s: 16 bytes
            # each would be 22 MiB); the allocator's warm-up does not. A
            # short run is still warming up (glibc's per-thread arenas, body
            # buffers in flight at a sample): the same code at the session's
            # start gave +3.3 MiB (+12.0%) and +2.3 MiB (+7.5%) in 60 s, and
            # +4.2 MiB once after this stop's changes, with a lower RSS. So
            # runs under 5 minutes also need 8 MiB of growth to fail; the
            # 10-minute run keeps the plain 10% (it caught the block-pool
            # regression: +4.8 MiB, +27.7%).
            slack = 8192 if DURATION < 300 else 0
            if growth >= 10 and max(end) - max(mid) >= slack:
                bad.append("RSS grew %.1f%% over the second half" % growth)
        log("fds: baseline %d, after the clients left %d" % (base_fds, end_fds))
        if end_fds > base_fds:
            bad.append("open fds %d > baseline %d: %s" % (
                end_fds, base_fds, sorted(os.readlink("/proc/%d/fd/%s" % (pid, f))
                                          for f in os.listdir("/proc/%d/fd" % pid))[-20:]))
        if not srv.alive():
            bad.append("the server died")
        srv.stop()
        if bad:
            log("FAIL:\n" + "\n".join(bad))
            return 1
        log("soak: passed")
        return 0
    finally:
        stop.set()
        for p in procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    pass
                p.wait(10)
        if not srv.stopped:
            log("server stderr tail:\n" + w.tail(srv.stderr, 3000))
            srv.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
