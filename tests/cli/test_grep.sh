#!/bin/sh
# test_grep.sh - `wordcount -w [-i]` against `grep -owF [-i] NEEDLE | wc -l`
# (GNU grep, LC_ALL=C.UTF-8) on random UTF-8 text from an alphabet where
# glibc's word characters and case mapping agree with ours: ASCII letters,
# digits and punctuation, space, tab, é/É, ü/Ü, Greek letters, CJK, '—',
# '€'. Left out on purpose: combining marks (glibc counts some as alnum),
# ſ, the Kelvin sign and dotted I (grep -i maps them differently), and '\r'
# (grep keeps it in the line, we drop it before '\n').
# Run from the repository root: WC_BUILD=build sh tests/cli/test_grep.sh
# WC_TEST_SEED=<n> repeats a run.
set -eu

: "${WC_BUILD:=build}"
WC=$WC_BUILD/wordcount
[ -x "$WC" ] || { echo "test_grep: $WC not built" >&2; exit 1; }
command -v grep >/dev/null || { echo "test_grep: grep missing" >&2; exit 1; }
export LC_ALL=C.UTF-8

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT INT TERM

seed=${WC_TEST_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
echo "test_grep: seed $seed (WC_TEST_SEED=$seed to repeat)"

failures=0
checks=0
fail() {
  echo "test_grep: FAIL: $*" >&2
  failures=$((failures + 1))
}

# Random text files: NFILES files of up to 300 lines each.
NFILES=12
awk -v seed="$seed" -v nfiles="$NFILES" -v dir="$T" 'BEGIN {
  srand(seed);
  n = split("a b c ab is Is IS iS x1 _ 0 9 - . , ; ( ) a-b a_b " \
            "é É ü Ü α Α β ω Ω 中 文 — € ab-é ÉCOLE école", A, " ");
  for (f = 1; f <= nfiles; f++) {
    file = dir "/t" f ".txt";
    lines = 1 + int(rand() * 300);
    for (l = 0; l < lines; l++) {
      w = int(rand() * 14);
      s = "";
      for (k = 0; k < w; k++) {
        r = rand();
        if (r < 0.30) s = s " ";
        else if (r < 0.33) s = s "\t";
        else if (r < 0.36) s = s "  ";
        else s = s A[1 + int(rand() * n)];
      }
      print s > file;
    }
    close(file);
  }
}'

needles='a b ab is IS x1 _ 0 - . , a-b a_b é É ü α Ω 中 文 — € école ÉCOLE ab-é'

f=1
while [ "$f" -le "$NFILES" ]; do
  file=$T/t$f.txt
  for nd in $needles; do
    for opt in "" "-i"; do
      # shellcheck disable=SC2086
      want=$(grep -owF $opt -e "$nd" "$file" | wc -l | tr -d ' ')
      # shellcheck disable=SC2086
      if ! got=$("$WC" -w $opt -e "$nd" "$file" 2>"$T/err"); then
        fail "wordcount -w $opt -e '$nd' t$f.txt exited non-zero: $(cat "$T/err")"
        continue
      fi
      checks=$((checks + 1))
      if [ "$got" != "$want" ]; then
        fail "wordcount -w $opt -e '$nd' (seed $seed, file $f): got $got, grep -ow$opt says $want"
        # The first differing line makes the report.
        grep -n '' "$file" | while IFS= read -r line; do
          text=${line#*:}
          # shellcheck disable=SC2086
          g=$(printf '%s\n' "$text" | grep -owF $opt -e "$nd" | wc -l | tr -d ' ')
          # shellcheck disable=SC2086
          w=$(printf '%s\n' "$text" | "$WC" -w $opt -e "$nd")
          if [ "$g" != "$w" ]; then
            echo "  first differing line: '$text' needle '$nd': wordcount $w, grep $g" >&2
            break
          fi
        done
      fi
    done
  done
  f=$((f + 1))
done

if [ "$failures" -ne 0 ]; then
  echo "test_grep: $failures of $checks checks failed" >&2
  exit 1
fi
echo "test_grep: $checks checks agree with grep -ow"
