"""Allocation failure on the request path (issue 6).

Runs build/fault/wordcount-server: the normal server objects linked with
tests/faults/failmalloc.c (-Wl,--wrap=malloc,calloc,realloc), where SIGUSR2
toggles the failure of one allocation in WC_FAIL_EVERY made by our code
(which ones: a seeded hash, see failmalloc.c). Rare failures (1 in 29)
must leave most requests right; frequent ones (1 in 6) only must not harm
the server. A connection that cannot be set up waits in the listener and
is retried once a second, so frequent failures make the run slower.
While failures are on, every request must get either its right answer, a
503 out_of_memory JSON error, or (when the connection itself could not be
set up) a closed connection; the server must not crash. Once failures are
off again, every request must be answered right, and SIGTERM must still
give a clean exit 0.
"""

import json
import os
import random
import signal
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "server"))
import wctest as w  # noqa: E402
from wctest import ZEN, Conn, build_request, count_target  # noqa: E402


ZEN_IS = w.ref_count(ZEN, ["is"])["is"]


def one(port, rng, stats):
    kind = rng.choice(["raw", "big", "json", "form", "pipe"])
    copies = rng.choice([1, 3]) if kind != "big" else 4000  # up to 3.4 MB
    text = ZEN * copies
    want = ZEN_IS * copies
    if kind in ("raw", "big"):
        reqs = [build_request("POST", count_target(["is"]), text)]
    elif kind == "json":
        body = json.dumps({"text": text.decode(), "needle": "is"}).encode()
        reqs = [build_request("POST", "/count", body, [("Content-Type", "application/json")])]
    elif kind == "form":
        body = urllib.parse.urlencode({"text": text.decode(), "needle": "is"}).encode()
        reqs = [build_request("POST", "/count", body,
                              [("Content-Type", "application/x-www-form-urlencoded")])]
    else:
        reqs = [build_request("POST", count_target(["is"]), text) for _ in range(4)]
    try:
        with Conn(port, timeout=20) as c:
            c.send(b"".join(reqs))
            for _ in reqs:
                r = c.read_response(timeout=20)
                if r.status == 200:
                    assert r.json()["counts"]["is"] == want, (kind, r)
                    stats["ok"] += 1
                else:
                    assert r.status == 503, (kind, r)
                    assert r.json()["error"]["code"] == "out_of_memory", r
                    stats["503"] += 1
                if r.header("Connection", "").lower() == "close":
                    break
    except TimeoutError:  # an OSError too, but a hang is a failure
        raise AssertionError("no answer and no close within 20 s (%s request)" % kind)
    except (w.Closed, ConnectionError, OSError):
        stats["closed"] += 1


def run_with_failures(every, requests, some_succeed):
    seed = int(os.environ.get("WC_TEST_SEED", "0")) or random.randrange(1 << 30)
    print("  1 allocation in %d fails; WC_TEST_SEED=%d" % (every, seed))
    rng = random.Random(seed)
    with w.Server({"workers": 2, "log": {"access": False}},
                  env={"WC_FAIL_EVERY": str(every), "WC_FAIL_SEED": str(seed)}) as s:
        stats = {"ok": 0, "503": 0, "closed": 0}
        one(s.port, rng, stats)
        assert stats["ok"] >= 1 and stats["503"] == stats["closed"] == 0, stats
        before = stats["ok"]
        s.proc.send_signal(signal.SIGUSR2)  # failures on
        time.sleep(0.1)
        for _ in range(requests):
            one(s.port, rng, stats)
            assert s.alive(), "the server died with allocation failures on"
        s.proc.send_signal(signal.SIGUSR2)  # failures off
        time.sleep(0.1)
        print("  with failures: %d right, %d x 503, %d closed" % (stats["ok"] - before, stats["503"],
                                                                stats["closed"]))
        assert stats["503"] > 0, "no 503 seen: is the injection build in use? %r" % stats
        assert not some_succeed or stats["ok"] > before, "no request succeeded while failures were rare: %r" % stats
        after = {"ok": 0, "503": 0, "closed": 0}
        for _ in range(40):
            one(s.port, rng, after)
        assert after == {"ok": after["ok"], "503": 0, "closed": 0} and after["ok"] >= 40, after
        s.stop()


def test_rare_allocation_failures_give_503_and_the_server_goes_on():
    run_with_failures(29, 250, True)


def test_frequent_allocation_failures_give_503_and_the_server_goes_on():
    run_with_failures(6, 100, False)


if __name__ == "__main__":
    w.run(globals(), deadline=150)
