#!/bin/sh
# Installs the Debian packages the project needs, and only those missing.
# Usage: scripts/deps.sh [build|test|bench]   (each set includes the previous)
# As root it runs apt-get; otherwise it prints the exact apt-get line and
# fails, so that `make` stops with a clear message.
set -eu

build="gcc make pkg-config libuv1-dev libcjson-dev node-llhttp libutf8proc-dev"
test="$build libcmocka-dev curl python3 clang libclang-rt-14-dev llvm unicode-data grep
  nginx-light wrk valgrind slowhttptest util-linux procps strace systemd"
bench="$test wrk gnuplot-nox nginx-light nodejs hyperfine"

case "${1:-build}" in
  build) want=$build ;;
  test) want=$test ;;
  bench) want=$bench ;;
  *) echo "usage: $0 [build|test|bench]" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
  case " $missing " in *" $p "*) continue ;; esac
  st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  case "$st" in *"ok installed"*) ;; *) missing="$missing $p" ;; esac
done
[ -z "$missing" ] && exit 0

line="apt-get update && apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" != 0 ]; then
  echo "wordcount: missing Debian packages:$missing" >&2
  echo "wordcount: run as root:  $line" >&2
  exit 1
fi
echo "wordcount: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >&2
