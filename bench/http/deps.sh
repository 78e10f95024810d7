#!/bin/sh
# Installs what the HTTP benchmark (`make bench`) needs from Debian, and only
# what is missing: wrk (load generator), gnuplot-nox (the PNG chart),
# nginx-light (the HTTP and upload ceilings), nodejs (the Node.js anchor),
# python3 (the driver), util-linux (taskset).
# As root it runs apt-get; otherwise it prints the apt-get line and fails.
# A missing anchor is not fatal for the run (bench.py skips its rows), but
# this script tries to install every one.
set -eu

want="wrk gnuplot-nox nginx-light nodejs python3 util-linux"
missing=""
for p in $want; do
  st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  case "$st" in *"ok installed"*) continue ;; esac
  # nodejs may come from elsewhere than Debian (e.g. a newer build): any node
  # binary will do; the same for an nginx that is not nginx-light.
  case "$p" in
    nodejs) command -v node >/dev/null 2>&1 && continue ;;
    nginx-light) command -v nginx >/dev/null 2>&1 && continue ;;
  esac
  missing="$missing $p"
done
[ -z "$missing" ] && exit 0

line="apt-get update && apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" != 0 ]; then
  echo "bench: missing Debian packages:$missing" >&2
  echo "bench: run as root:  $line" >&2
  exit 1
fi
echo "bench: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# nginx's package starts the system service on port 80 unless told not to;
# the benchmark runs its own nginx, so keep the service down while installing.
guard=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  guard=/usr/sbin/policy-rc.d
  trap 'rm -f "$guard"' EXIT INT TERM
fi
apt-get update -qq >&2
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >&2
