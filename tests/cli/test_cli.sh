#!/bin/sh
# test_cli.sh - the contract of the `wordcount` command:
#   wordcount [-i] [-w] [-e NEEDLE]... [-j THREADS] [--sequential]
#             [NEEDLE] [FILE...]
# grep conventions: -e may repeat; standard input when there is no FILE or
# FILE is '-'; one needle prints its count, several print NEEDLE<TAB>COUNT
# lines in the order given; counts are summed over all files; exit 0 on
# success, 2 on a usage or I/O error with one line on stderr.
# Run from the repository root: WC_BUILD=build sh tests/cli/test_cli.sh
set -eu

: "${WC_BUILD:=build}"
WC=$WC_BUILD/wordcount
[ -x "$WC" ] || { echo "test_cli: $WC not built" >&2; exit 1; }
export LC_ALL=C.UTF-8

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT INT TERM
TAB=$(printf '\t')

failures=0
fail() {
  # One line per failure: newlines (a needle with '\n', a message on
  # several lines) are shown as '\n'.
  printf 'test_cli: FAIL: %s\n' "$*" |
    awk 'NR > 1 { printf "\\n" } { printf "%s", $0 } END { print "" }' >&2
  failures=$((failures + 1))
}

# run [<INPUT] CMD...: runs CMD with stdin from INPUT (or /dev/null),
# leaving its status in $rc, stdout in $out and stderr in $T/err.
run() {
  input=/dev/null
  case "$1" in "<"*) input=${1#<}; shift ;; esac
  set +e
  "$@" <"$input" >"$T/out" 2>"$T/err"
  rc=$?
  set -e
  out=$(cat "$T/out")
}

# expect WANT [<INPUT] CMD...: exit 0, stdout WANT, stderr empty.
expect() {
  want=$1; shift
  run "$@"
  if [ "$rc" -ne 0 ]; then
    fail "$*: exit $rc, expected 0 (stderr: $(cat "$T/err"))"
  elif [ "$out" != "$want" ]; then
    fail "$*: printed '$out', expected '$want'"
  elif [ -s "$T/err" ]; then
    fail "$*: wrote to stderr: $(cat "$T/err")"
  fi
}

# expect_error [<INPUT] CMD...: exit 2 and exactly one line on stderr.
expect_error() {
  run "$@"
  if [ "$rc" -ne 2 ]; then
    fail "$*: exit $rc, expected 2"
  elif [ "$(wc -l <"$T/err")" -ne 1 ]; then
    fail "$*: expected one line on stderr, got: $(cat "$T/err")"
  fi
}

printf 'Is is is,\r\nis\r' >"$T/ex"
printf 'to be or not to be\nTO BE\n' >"$T/tb"
: >"$T/empty"

# --help and --version.
run "$WC" --help
[ "$rc" -eq 0 ] || fail "--help: exit $rc"
grep -qi 'usage' "$T/out" || fail "--help: no usage on stdout"
[ -s "$T/err" ] && fail "--help wrote to stderr"
version=$(sed -n 's/^#define WC_VERSION "\(.*\)"$/\1/p' core/wordcount.h)
run "$WC" --version
[ "$rc" -eq 0 ] || fail "--version: exit $rc"
case "$out" in
  "wordcount $version"*) ;;
  *) fail "--version printed '$out', expected 'wordcount $version'" ;;
esac

# The example of the header, in every mode.
expect 1 "$WC" is "$T/ex"
expect 2 "$WC" -i is "$T/ex"
expect 3 "$WC" -w is "$T/ex"
expect 4 "$WC" -i -w is "$T/ex"
expect 4 "$WC" -iw is "$T/ex"
expect 4 "$WC" -w -e is -i "$T/ex"
expect 1 "$WC" --sequential is "$T/ex"
expect 4 "$WC" -j 1 -iw is "$T/ex"
expect 4 "$WC" -j 3 -iw is "$T/ex"
expect 0 "$WC" nothing "$T/ex"
expect 0 "$WC" is "$T/empty"

# Standard input: no FILE, and FILE '-'.
expect 1 "<$T/ex" "$WC" is
expect 1 "<$T/ex" "$WC" is -
expect 3 "<$T/ex" "$WC" -w -e is
expect 2 "<$T/ex" "$WC" is - "$T/ex"
expect 0 "<$T/empty" "$WC" is
# shellcheck disable=SC2002 # a pipe, not a file, on purpose
got=$(cat "$T/ex" | "$WC" -i is) || fail "pipe: exit $?"
[ "$got" = 2 ] || fail "pipe into wordcount -i is: printed '$got', expected 2"

# Standard input that is a regular file is counted from where it stands
# (a shell may have read part of it) and left at its end, as a pipe would
# be read: a second '-' then counts nothing.
printf 'is is\nis\n' >"$T/three"
got=$({ read -r _; "$WC" is; } <"$T/three") || fail "stdin file after read: exit $?"
[ "$got" = 1 ] || fail "stdin file after a shell's read: printed '$got', expected 1"
got=$({ "$WC" is; cat; } <"$T/three") || fail "stdin file, then cat: exit $?"
[ "$got" = 3 ] || fail "stdin file, then cat: printed '$got', expected 3 and nothing left for cat"
expect 3 "<$T/three" "$WC" is - -
# shellcheck disable=SC2002 # a pipe, not a file, on purpose
got=$(cat "$T/three" | "$WC" is - -) || fail "pipe, '-' twice: exit $?"
[ "$got" = 3 ] || fail "pipe, '-' twice: printed '$got', expected 3"
# past a whole page too (the file is mapped from a page boundary)
awk 'BEGIN { for (i = 0; i < 1000; i++) print "is a line of text with is"; }' >"$T/pages"
got=$({ head -c 5000 >/dev/null; "$WC" is; } <"$T/pages") || fail "stdin file after head: exit $?"
want=$(tail -c +5001 "$T/pages" | "$WC" is)
[ "$got" = "$want" ] || fail "stdin file after 5000 bytes: printed '$got', expected '$want'"

# A /proc file says its size is 0 and has a text: it is read, not skipped.
if [ -r /proc/version ]; then
  want=$(tr ' ' '\n' </proc/version | grep -cx version || true)
  expect "$want" "$WC" version /proc/version
  expect "$want" "</proc/version" "$WC" version
fi

# Counts are summed over files.
expect 2 "$WC" is "$T/ex" "$T/ex"
expect 3 "$WC" is "$T/ex" "$T/empty" "$T/ex" "$T/ex"
expect 4 "$WC" -e be "$T/tb" "$T/tb"

# Several needles: NEEDLE<TAB>COUNT in the order given, duplicates too.
expect "to${TAB}2
TO${TAB}1
be${TAB}2
to${TAB}2" "$WC" -e to -e TO -e be -e to "$T/tb"
expect "to${TAB}3
be${TAB}3" "$WC" -i -e to -e be "$T/tb"
expect "is${TAB}3
Is${TAB}1" "<$T/ex" "$WC" -w -e is -e Is -
# A needle that looks like an option, given with -e.
printf 'a - b --\n' >"$T/dash"
expect 1 "$WC" -e - "$T/dash"
expect 1 "$WC" -e -- "$T/dash"
# Non-ASCII needles, case folding.
printf '\303\211cole \303\251cole ecole\n' >"$T/fr"
expect 1 "$WC" "$(printf '\303\251cole')" "$T/fr"
expect 2 "$WC" -i "$(printf '\303\251cole')" "$T/fr"

# Errors: exit 2, one line on stderr.
expect_error "$WC" is "$T/does-not-exist"
expect_error "$WC" is "$T/ex" "$T/does-not-exist"
expect_error "$WC" -e is "$T/does-not-exist" "$T/ex"
expect_error "$WC" --no-such-option is "$T/ex"
expect_error "$WC" -x is "$T/ex"
expect_error "$WC" "" "$T/ex"
expect_error "$WC" -e "" "$T/ex"
expect_error "$WC" "a b" "$T/ex"
expect_error "$WC" -e is -e "a b" "$T/ex"
expect_error "$WC" "$(printf 'a\nb')" "$T/ex"
expect_error "$WC" -j nope is "$T/ex"
expect_error "$WC" -j " 3" is "$T/ex"
expect_error "$WC" -j +3 is "$T/ex"
expect_error "$WC" -j -0 is "$T/ex"
expect_error "$WC" -j 1025 is "$T/ex"
expect 1 "$WC" -j 1024 is "$T/ex"
expect_error "$WC" -e
expect_error "$WC"
expect_error "$WC" is "$T"
run "$WC" is "$T/does-not-exist"
grep -q 'does-not-exist' "$T/err" || fail "missing file: the message does not name it: $(cat "$T/err")"
# The messages name the option at fault.
for case in "--ignore-case -xi is|'-x'" "-xi is|'-x'" "-e is -xw|'-x'" "-i -xw is|'-x'" "--nope=2 is|'--nope'" \
            "--help=x|'--help' takes no argument" \
            "--ignore-case=1 is|'--ignore-case' takes no argument" \
            "-ie|'-e' needs an argument" "--regexp|'--regexp' needs an argument" \
            "is --threads|'--threads' needs an argument"; do
  args=${case%%|*}
  want=${case#*|}
  # the last option takes the file as its argument where it needs one
  case "$want" in *needs*) file= ;; *) file=$T/ex ;; esac
  # shellcheck disable=SC2086 # the arguments are split on purpose
  expect_error "$WC" $args $file
  grep -qF -- "$want" "$T/err" || fail "wordcount $args: message $(cat "$T/err"), expected it to say $want"
done
# Control bytes in a file name or needle are shown escaped: still one line.
expect_error "$WC" is "$T/no
such"
grep -qF 'no\x0asuch' "$T/err" || fail "a file name with a newline: $(cat "$T/err")"
expect_error "$WC" "$(printf 'a\001b c')" "$T/ex"
grep -qF 'a\x01b c' "$T/err" || fail "a needle with a control byte: $(cat "$T/err")"

# A mapped file that shrinks while it is counted: exit 2 and one line, not
# SIGBUS. The file is truncated once the process has it mapped; if the
# count was over by then (a 512 MiB sparse file takes about a second), the
# check has nothing to see and is skipped.
truncate -s 512M "$T/shrink"
"$WC" -j 1 is "$T/shrink" >"$T/out" 2>"$T/err" &
pid=$!
i=0
while [ $i -lt 500 ] && ! grep -q "$T/shrink" "/proc/$pid/maps" 2>/dev/null; do
  sleep 0.01
  i=$((i + 1))
done
: >"$T/shrink"
set +e
wait $pid
rc=$?
set -e
if [ "$rc" -eq 0 ]; then
  echo "test_cli: note: the shrinking file was counted before it shrank; not checked"
elif [ "$rc" -ne 2 ] || [ "$(wc -l <"$T/err")" -ne 1 ] || ! grep -q 'shrank' "$T/err"; then
  fail "a file that shrinks while mapped: exit $rc, stderr: $(cat "$T/err")"
fi
rm -f "$T/shrink"

# A file of a few MB: -j 1, -j 4, --sequential and a pipe agree, and the
# plain count equals an independent count with tr + grep.
awk 'BEGIN {
  srand(7);
  n = split("is Is IS it the a an is, to be or not be: ab é É", W, " ");
  for (l = 0; l < 120000; l++) {
    k = int(rand() * 12); s = "";
    for (i = 0; i < k; i++) {
      s = s W[1 + int(rand() * n)];
      r = rand();
      if (r < 0.85) s = s " "; else if (r < 0.9) s = s "  "; else s = s "\t";
    }
    if (rand() < 0.2) printf "%s\r\n", s; else printf "%s\n", s;
  }
}' >"$T/big"
size=$(wc -c <"$T/big")
[ "$size" -gt 2000000 ] || fail "big file is only $size bytes"
for opts in "" "-i" "-w" "-i -w"; do
  # shellcheck disable=SC2086
  a=$("$WC" $opts -e is -e be "$T/big") || fail "big -j default: exit $?"
  # shellcheck disable=SC2086
  b=$("$WC" $opts -j 1 -e is -e be "$T/big") || fail "big -j 1: exit $?"
  # shellcheck disable=SC2086
  c=$("$WC" $opts -j 4 -e is -e be "$T/big") || fail "big -j 4: exit $?"
  # shellcheck disable=SC2086
  d=$("$WC" $opts --sequential -e is -e be "$T/big") || fail "big --sequential: exit $?"
  # shellcheck disable=SC2086
  # shellcheck disable=SC2002 # a pipe, not a file, on purpose
  e=$(cat "$T/big" | "$WC" $opts -e is -e be) || fail "big via a pipe: exit $?"
  if [ "$a" != "$b" ] || [ "$a" != "$c" ] || [ "$a" != "$d" ] || [ "$a" != "$e" ]; then
    fail "big file, options '$opts': default '$a', -j 1 '$b', -j 4 '$c', --sequential '$d', pipe '$e'"
  fi
done
for nd in is be IS a; do
  want=$(sed 's/\r$//' "$T/big" | tr ' ' '\n' | grep -cxF -e "$nd" || true)
  got=$("$WC" -j 4 "$nd" "$T/big") || fail "big: exit $?"
  [ "$got" = "$want" ] || fail "big file, needle '$nd': wordcount $got, tr+grep $want"
done

# No thread to be had (address space for no stack): counted on one thread.
# (Not under a sanitizer, which needs the address space itself.)
case "$WC_BUILD" in
  *asan* | *tsan*) ;;
  *)
    want=$("$WC" -j 1 is "$T/big")
    got=$( (ulimit -v 200000 && "$WC" -j 64 is "$T/big") 2>"$T/err") ||
      fail "-j 64 without address space for its threads: exit $? ($(cat "$T/err"))"
    [ "$got" = "$want" ] || fail "-j 64 without address space for its threads: printed '$got', expected '$want'"
    ;;
esac

if [ "$failures" -ne 0 ]; then
  echo "test_cli: $failures failures" >&2
  exit 1
fi
echo "test_cli: all checks passed"
