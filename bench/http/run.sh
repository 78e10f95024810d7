#!/bin/sh
# The HTTP benchmark (`make bench`, `make bench QUICK=1`).
# Usage: bench/http/run.sh BUILD_DIR [--quick]     (run from anywhere)
#
# Installs what is missing (bench/http/deps.sh: wrk, gnuplot-nox, nginx-light,
# nodejs), then runs bench/http/bench.py, which starts BUILD_DIR/wordcount-server,
# nginx and the Node.js anchor on free loopback ports, prints the tables and
# the target checks, and writes bench/results/latest.json and latest.png.
# Bounded: under 5 minutes, under 1 minute with --quick. A wrong count fails
# the run (exit status 1); the target checks are reported, never asserted.
#
# Every process the benchmark starts is stopped when it ends, also on
# Ctrl-C or SIGTERM: bench.py stops them itself, and the trap below ends any
# process group it listed and left behind (e.g. if python3 was killed).
set -eu

usage() { echo "usage: $0 BUILD_DIR [--quick]" >&2; exit 2; }
[ $# -ge 1 ] || usage
cd "$(dirname "$0")/../.."
build=$1
shift
quick=""
for arg in "$@"; do
  case "$arg" in
    --quick) quick=--quick ;;
    *) usage ;;
  esac
done

bench/http/deps.sh
[ -x "$build/wordcount-server" ] || {
  echo "bench: $build/wordcount-server is missing (run make)" >&2
  exit 1
}

pids=$(mktemp /tmp/wc-bench-pids.XXXXXX)
child=""
cleanup() {
  if [ -n "$child" ]; then
    kill -TERM "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  # Process groups bench.py started (each child leads its own session).
  while read -r pid; do
    kill -KILL -- "-$pid" 2>/dev/null || true
  done <"$pids"
  rm -f "$pids"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# shellcheck disable=SC2086
python3 bench/http/bench.py --build "$build" --pids-file "$pids" $quick &
child=$!
status=0
wait "$child" || status=$?
child=""
exit "$status"
