#!/bin/bash
# bench/http/instructions.sh BIN... - user-space instructions per request.
#
# Runs each server binary under callgrind (valgrind) on 127.0.0.1:18090 and
# drives it with wrk for 4 s: 16-deep pipelined small JSON, then one small
# JSON per round trip. Prints the instructions the server executed per
# request, less those of starting and stopping it (measured first). Unlike
# requests/s, the count does not move with the machine's load, so A/B
# comparisons of small changes are exact; it leaves out the kernel and
# cache misses, which requests/s (make bench) shows.
set -eu
cd "$(dirname "$0")/../.."
[ $# -gt 0 ] || { echo "usage: $0 BIN..." >&2; exit 2; }
command -v valgrind >/dev/null && command -v wrk >/dev/null ||
  { echo "$0: needs valgrind and wrk (make deps-test; bench/http/deps.sh)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '{"listen":{"host":"127.0.0.1","port":18090},"workers":2,"event_loops":1,"log":{"access":false,"level":"warn"}}\n' >"$tmp/cfg.json"

# run BIN SCRIPT_ARGS... -> "requests instructions"
run() {
  local bin=$1; shift
  valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" "$bin" --config "$tmp/cfg.json" >"$tmp/log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do
    curl -fs http://127.0.0.1:18090/healthz >/dev/null 2>&1 && break
    sleep 0.1
  done
  local n=0
  if [ $# -gt 0 ]; then
    n=$(wrk -t1 -c16 -d4 -s "bench/http/$1" http://127.0.0.1:18090/count -- "${@:2}" | awk '/requests in/{print $1}')
  fi
  kill -INT $pid
  wait $pid || true
  echo "$n $(awk '/^summary:/{print $2}' "$tmp/cg.out")"
}

for b in "$@"; do
  read -r _ base < <(run "$b")
  for sc in "pipeline.lua json 16" "small.lua json"; do
    read -r n ir < <(run "$b" $sc)
    awk -v b="$(basename "$b")" -v s="${sc%% *}" -v n="$n" -v ir="$ir" -v base="$base" \
      'BEGIN { printf "%-24s %-13s %7d requests  %6.0f instructions/request\n", b, s, n, (ir - base) / n }'
  done
done
