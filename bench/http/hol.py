#!/usr/bin/env python3
"""bench/http/hol.py BIN... - head of line, A/B: small requests beside uploads.

Starts each server binary (one instance each, every CPU, the config of
`make bench`) and, per round and binary (the binaries' order alternating
from round to round), posts the seed's 85.8 MB corpus as a raw body in a
loop on one connection (every count checked) while wrk sends small JSON
POSTs on 16 connections from CPU 1 for SECS seconds: the same as section 3
of `make bench`. Prints each run and then the medians per binary: the small
requests' p99 and p50 (ms), their rate, and the uploads done.

    bench/http/hol.py /tmp/old/wordcount-server build/wordcount-server
    ROUNDS=10 SECS=5 bench/http/hol.py build/wordcount-server

Loopback only; needs wrk (bench/http/deps.sh). The corpus is written to
build/bench/corpus/ as `make bench` does.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))


def main():
    bins = sys.argv[1:]
    if not bins:
        raise SystemExit(__doc__)
    rounds = int(os.environ.get("ROUNDS", "8"))
    secs = int(os.environ.get("SECS", "5"))
    corpus = bench.make_corpora(os.path.join(ROOT, "build"))[1]
    work = tempfile.mkdtemp(prefix="wc-hol-")
    servers = []
    try:
        for i, b in enumerate(bins):
            port = bench.free_port()
            path = os.path.join(work, "config-%d.json" % i)
            with open(path, "w") as f:
                json.dump(bench.server_config(port), f)
            p = subprocess.Popen([b, "--config", path], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            servers.append((b, port, p))
            bench.wait_ready(p, port, "/healthz")
        res = {b: [] for b in bins}
        for r in range(rounds):
            for b, port, p in (servers if r % 2 == 0 else servers[::-1]):
                with bench.BigPoster(port, corpus) as bp:
                    w = bench.run_wrk(port, "small_json", secs, 16, {1})
                res[b].append((w["p99_ms"], w["p50_ms"], w["rps"], bp.done))
                print("%-40s p99 %6.2f ms  p50 %6.3f ms  %7.0f req/s  uploads %d"
                      % (b, w["p99_ms"], w["p50_ms"], w["rps"], bp.done), flush=True)
        print("\nmedians of %d rounds of %d s:" % (rounds, secs))
        for b in bins:
            v = res[b]
            med = [statistics.median(x[i] for x in v) for i in range(4)]
            print("%-40s p99 %6.2f ms  p50 %6.3f ms  %7.0f req/s  uploads %.1f" % (b, *med))
    finally:
        for _, _, p in servers:
            p.kill()
            p.wait()


if __name__ == "__main__":
    main()
