#!/bin/sh
# Runs test programs one process each and prints a summary line that CI
# reads: "N passed, N failed", each program's line with its wall time (to
# see where CI's minutes go). Usage: run-tests.sh SUITE BUILD_DIR PROG...
# Shell (.sh) and Python (.py) tests get BUILD_DIR in $WC_BUILD.
set -u
suite=$1; export WC_BUILD=$2; shift 2
pass=0; fail=0; failed=""
for t in "$@"; do
  [ -e "$t" ] || continue
  case "$t" in
    *.sh) cmd="sh $t" ;;
    *.py) cmd="python3 $t" ;;
    *) cmd="$t" ;;
  esac
  log=$(mktemp)
  t0=$(date +%s)
  if $cmd >"$log" 2>&1; then
    pass=$((pass + 1)); echo "  PASS    $t ($(( $(date +%s) - t0 )) s)"
  else
    fail=$((fail + 1)); failed="$failed $t"
    echo "  FAIL    $t ($(( $(date +%s) - t0 )) s)"; sed 's/^/    | /' "$log" | tail -n 60
  fi
  rm -f "$log"
done
echo "$suite: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
