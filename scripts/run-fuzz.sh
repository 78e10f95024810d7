#!/bin/sh
# Runs each libFuzzer binary for SECONDS on its corpus fuzz/corpus/<name>/
# (seed files checked in; new inputs are written to a scratch copy, so the
# checked-in corpus only changes by hand) and prints the summary line CI
# reads: "fuzz: N passed, N failed". A crash input is kept in
# build/fuzz/artifacts/<name>/.
# Usage: scripts/run-fuzz.sh SECONDS BIN...
set -eu
if [ "$#" -lt 2 ]; then
  echo "usage: $0 SECONDS BIN..." >&2
  exit 2
fi
secs=$1; shift
pass=0; fail=0
for bin in "$@"; do
  name=$(basename "$bin")
  seeds=fuzz/corpus/$name
  work=$(mktemp -d)
  art=build/fuzz/artifacts/$name
  mkdir -p "$art"
  if [ -d "$seeds" ]; then cp -R "$seeds/." "$work/"; fi
  # The HTTP dictionary helps the targets that read HTTP or its bodies.
  extra=""
  case "$name" in
    fuzz_http) extra="-dict=fuzz/http.dict -max_len=8192" ;;
    fuzz_reqparse) extra="-dict=fuzz/http.dict -max_len=4096" ;;
  esac
  log=$(mktemp)
  # shellcheck disable=SC2086
  if "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$art/" $extra "$work" >"$log" 2>&1; then
    pass=$((pass + 1))
    echo "  PASS    $name ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?') runs)"
  else
    fail=$((fail + 1))
    echo "  FAIL    $name"
    sed 's/^/    | /' "$log" | tail -n 40
  fi
  rm -rf "$work" "$log"
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
