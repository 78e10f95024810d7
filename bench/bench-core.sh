#!/bin/sh
# The counting-core benchmark (`make bench-core`).
# Usage: bench/bench-core.sh BUILD_DIR     (e.g. build; run from anywhere)
#
# 1. bench_core writes the seed's corpora into BUILD_DIR/bench/corpus/
#    (The Zen of Python x 1000 = 858,000 bytes and x 100,000 = 85.8 MB) and
#    checks them byte for byte;
# 2. bench/search_py.py times the seed's pure-Python search_py on both, in
#    process (skipped when python3 is missing);
# 3. bench_core times the C rows, prints the tables and the target checks,
#    and writes bench/results/core-latest.json.
# Any wrong count or corpus size fails the run (exit status 1).
set -eu

[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
cd "$(dirname "$0")/.."
b=$1
bin=$b/bench/bench_core
corpus=$b/bench/corpus
pyout=$b/bench/search_py.out
json=bench/results/core-latest.json

[ -x "$bin" ] || { echo "bench-core: $bin is missing (run make bench-core)" >&2; exit 1; }
mkdir -p "$corpus" bench/results
"$bin" corpus "$corpus"

rm -f "$pyout"
if command -v python3 >/dev/null 2>&1; then
  echo "bench-core: timing the pure-Python search_py (python3 $(python3 -c 'import platform; print(platform.python_version())'))"
  # ROUNDS WARMUP: the 85.8 MB corpus takes seconds per call in Python.
  python3 bench/search_py.py "$corpus/zen-x1000.txt" is 30 2 >>"$pyout"
  python3 bench/search_py.py "$corpus/zen-x100000.txt" is 3 1 >>"$pyout"
  set -- --python "$pyout"
else
  echo "bench-core: python3 not found: the pure-Python row is skipped"
  set --
fi

"$bin" run "$corpus" "$@" --json "$json"
