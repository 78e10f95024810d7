#!/usr/bin/env python3
"""The seed's pure-Python word count, timed in-process for bench-core.

search_py() is the PyO3 word-count example's Python version, unchanged in
behaviour: lines from str.splitlines(), words from line.split(" "), exact
comparison with the needle.

Usage: search_py.py CORPUS NEEDLE ROUNDS [WARMUP]

Reads CORPUS as UTF-8 text once (outside the timing), runs WARMUP untimed
calls (default 1), then ROUNDS timed calls with time.perf_counter, and prints
one line that bench_core parses:

    search_py bytes=<n> count=<c> rounds=<r> min_ms=<f> median_ms=<f> max_ms=<f>

bytes is the size of the file, count the result of the last call (every call
must agree, else the script fails).
"""

import statistics
import sys
import time


def search_py(contents: str, needle: str) -> int:
    total = 0
    for line in contents.splitlines():
        for word in line.split(" "):
            if word == needle:
                total += 1
    return total


def main(argv):
    if len(argv) not in (4, 5):
        sys.stderr.write(__doc__)
        return 2
    path, needle, rounds = argv[1], argv[2], int(argv[3])
    warmup = int(argv[4]) if len(argv) == 5 else 1
    if rounds < 1 or warmup < 0:
        sys.stderr.write("search_py.py: ROUNDS must be >= 1, WARMUP >= 0\n")
        return 2
    with open(path, "rb") as f:
        raw = f.read()
    contents = raw.decode("utf-8")

    count = None
    for _ in range(warmup):
        count = search_py(contents, needle)

    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        c = search_py(contents, needle)
        t1 = time.perf_counter()
        times.append((t1 - t0) * 1e3)
        if count is not None and c != count:
            sys.stderr.write(f"search_py.py: count changed: {count} -> {c}\n")
            return 1
        count = c

    print(
        f"search_py bytes={len(raw)} count={count} rounds={rounds} "
        f"min_ms={min(times):.6f} median_ms={statistics.median(times):.6f} "
        f"max_ms={max(times):.6f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
