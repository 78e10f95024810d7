"""The server under a sanitizer or valgrind, with concurrent load, then a
graceful shutdown (issue 6, "Sanitizers in CI").

WC_SAN_MODE=tsan      $WC_BUILD/wordcount-server (build/tsan) with 2 workers,
                      20 client threads of mixed small and large bodies for
                      WC_SAN_SECONDS (default 20), SIGTERM; fails on any
                      "WARNING: ThreadSanitizer", a wrong count, or an exit
                      status other than 0.
WC_SAN_MODE=valgrind  $WC_BUILD/wordcount-server (build) under valgrind
                      memcheck (--leak-check=full, definite and indirect
                      leaks are errors, --error-exitcode=3), a lighter load
                      for WC_SAN_SECONDS (default 12), SIGTERM; exit status 0
                      means no memory error and no leak.

TSan may lose a SIGTERM sent before its signal handling is ready, so the
signal is sent only after the "listening on" line and a first successful
request; if the server has not exited by a deadline it is killed with
SIGKILL and the run fails with a clear message.
"""

import os
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "server"))
import loadgen  # noqa: E402
import wctest as w  # noqa: E402

MODE = os.environ.get("WC_SAN_MODE", "tsan")
SECONDS = float(os.environ.get("WC_SAN_SECONDS", "20" if MODE == "tsan" else "12"))


def log(*a):
    print(*a, flush=True)


def main():
    binp = os.path.join(w.BUILD_DIR, "wordcount-server")
    args = [binp, "--host", w.HOST, "--port", "0", "--workers", "2"]
    env = dict(os.environ)
    if MODE == "tsan":
        env["TSAN_OPTIONS"] = "halt_on_error=0 second_deadlock_stack=1 history_size=4 " + w.TSAN_OPTIONS
        cmd = args
        threads, big, start_to, stop_to = 20, True, 60, 90
    elif MODE == "valgrind":
        cmd = ["valgrind", "--quiet", "--leak-check=full", "--show-leak-kinds=definite,indirect",
               "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=3",
               "--trace-children=no"] + args
        threads, big, start_to, stop_to = 4, False, 60, 120
    else:
        log("unknown WC_SAN_MODE %r" % MODE)
        return 2
    log("%s: %s" % (MODE, " ".join(cmd)))
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, start_new_session=True)
    out_lines, err_buf = [], bytearray()
    lock = threading.Lock()

    def drain_out():
        for line in p.stdout:
            with lock:
                if len(out_lines) < 100:
                    out_lines.append(line.decode("utf-8", "replace"))

    def drain_err():
        while True:
            b = p.stderr.read1(65536)
            if not b:
                break
            with lock:
                err_buf.extend(b)

    ts = [threading.Thread(target=drain_out, daemon=True), threading.Thread(target=drain_err, daemon=True)]
    for t in ts:
        t.start()

    def stderr_text():
        with lock:
            return bytes(err_buf).decode("utf-8", "replace")

    def kill():
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        p.wait(10)

    try:
        port = None
        deadline = time.monotonic() + start_to
        rx = re.compile(r"listening on http://[^\s:]+:(\d+)")
        while port is None:
            with lock:
                for ln in out_lines:
                    m = rx.search(ln)
                    if m:
                        port = int(m.group(1))
            if port is None:
                if p.poll() is not None or time.monotonic() > deadline:
                    log("FAIL: the server did not start (status %r)\n%s" % (p.poll(), stderr_text()[-4000:]))
                    return 1
                time.sleep(0.05)
        # A first successful request: the loop and its signal handling run.
        first_deadline = time.monotonic() + start_to
        while True:
            try:
                r = w.request(port, "GET", "/healthz", timeout=10)
                if r.status == 200:
                    break
            except Exception as ex:  # noqa: BLE001 - retried until the deadline
                if time.monotonic() > first_deadline:
                    log("FAIL: no answer to /healthz: %s" % ex)
                    return 1
                time.sleep(0.2)
        t0 = time.monotonic()
        st = loadgen.run_load(port, SECONDS, threads=threads, big=big)
        log("load: %.0fs, %d threads, %d requests verified, %d clients left mid-body, "
            "%d errors (seed %d)" % (time.monotonic() - t0, threads, st.ok, st.aborted,
                                     len(st.errors), st.seed))
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(stop_to)
        except subprocess.TimeoutExpired:
            kill()
            log("FAIL: the server did not exit within %ds of SIGTERM (killed with SIGKILL)\n%s"
                % (stop_to, stderr_text()[-4000:]))
            return 1
        for t in ts:
            t.join(10)
        err = stderr_text()
        bad = []
        if st.errors:
            bad.append("wrong or failed responses:\n  " + "\n  ".join(st.errors[:20]))
        if st.ok == 0:
            bad.append("no request completed")
        for pat in w.SANITIZER_PATTERNS:
            if pat in err:
                i = err.find(pat)
                bad.append("sanitizer report %r:\n%s" % (pat, err[max(0, i - 500): i + 8000]))
                break
        if MODE == "valgrind" and rc == 3:
            bad.append("valgrind found memory errors or leaks:\n" + err[-8000:])
        elif rc != 0:
            bad.append("exit status %r, expected 0\n%s" % (rc, err[-4000:]))
        if bad:
            log("FAIL: " + "\n".join(bad))
            return 1
        log("%s: clean (exit 0, no reports)" % MODE)
        return 0
    finally:
        if p.poll() is None:
            kill()


if __name__ == "__main__":
    sys.exit(main())
