#!/bin/sh
# Measures the choices of `make bench`'s technique table that need a server
# setting changed: parallel.inline_max_bytes (bodies of 1-64 KiB counted on
# the event loop or in the pool) and event_loops (1 or 2, with the server
# pinned to one CPU or free on all). Loopback only; about 3 minutes.
# Usage: bench/http/sweep.sh BUILD_DIR [SECONDS]
set -eu
cd "$(dirname "$0")/../.."
bin=$1/wordcount-server
secs=${2:-3}
port=18391
tmp=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
pid=""
serve() { # CPUS CONFIG-JSON
  printf '%s' "$2" >"$tmp/c.json"
  taskset -c "$1" "$bin" --config "$tmp/c.json" >/dev/null 2>&1 &
  pid=$!
  sleep 0.5
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; }
rps() { # CPUS WRK-ARGS...
  c=$1
  shift
  taskset -c "$c" wrk -t1 -c64 -d"$secs" "$@" 2>/dev/null |
    awk '/Requests\/sec/ {printf "%.0f", $2}'
}
base="\"listen\":{\"port\":$port},\"workers\":2,\"log\":{\"access\":false,\"level\":\"warn\"}"
url="http://127.0.0.1:$port/count"
echo "inline_max_bytes: requests/s for raw bodies of SIZE bytes counted in the pool (0) or on the loop"
echo "(64 connections; pinned: server on CPU 0 with 1 event loop, wrk on CPU 1; free: all on every CPU, 1 loop per CPU)"
printf '%-8s %10s %10s %7s %10s %10s %7s\n' SIZE "pinned:0" "inline" ratio "free:0" "inline" ratio
for size in 64 1024 4096 16384 65536 262144; do
  line=$(printf '%-8s' "$size")
  for pin in "0:1:1" "0,1:0,1:0"; do
    s=${pin%%:*}
    rest=${pin#*:}
    w=${rest%%:*}
    loops=${rest#*:}
    for inl in 0 1048576; do
      serve "$s" "{$base,\"event_loops\":$loops,\"parallel\":{\"inline_max_bytes\":$inl}}"
      r=$(rps "$w" -s bench/http/sized.lua "$url?needle=is" -- "$size")
      stop
      eval "r_$inl=$r"
    done
    # shellcheck disable=SC2154
    line="$line$(awk -v a="$r_0" -v b="$r_1048576" 'BEGIN { printf " %10s %10s %6.2fx", a, b, b / a }')"
  done
  echo "$line"
done
echo
echo "event_loops: requests/s, small JSON and 16-deep pipelining (64 connections)"
printf '%-28s %12s %12s\n' "" "1 loop" "2 loops"
for pin in "0:1" "0,1:0,1"; do
  s=${pin%%:*}
  w=${pin##*:}
  for sc in "small.lua $url -- json" "pipeline.lua $url -- json 16"; do
    set -- $sc
    out=""
    for n in 1 2; do
      serve "$s" "{$base,\"event_loops\":$n}"
      out="$out $(rps "$w" -s "bench/http/$1" "$2" "$3" "$4" ${5:-})"
      stop
    done
    printf '%-28s %12s %12s\n' "server CPU $s, ${1%.lua}" $out
  done
done
