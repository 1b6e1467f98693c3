#!/bin/sh
# SPDX-License-Identifier: MIT
# Install what bench/run.py uses (idempotent: apt-get runs only when a package
# is missing).  Needs root (or sudo).  The harness itself installs nothing; it
# only checks and says what is missing.
#   required: passt (pasta), slirp4netns, iperf3, vde2 (vde_switch,
#             vde_plug2tap), iproute2, util-linux (unshare, taskset), procps,
#             gcc (the connect-rate and ping-pong helpers are C, built by
#             run.py in its work folder)
#   optional: sockperf (latency; the C ping-pong helper is the fallback),
#             hyperfine (set-up time; a timing loop is the fallback),
#             linux-perf (profiles), bridge-utils (brctl; `ip link` suffices)
set -eu

REQUIRED="passt slirp4netns iperf3 vde2 iproute2 util-linux procps gcc libc6-dev python3"
OPTIONAL="sockperf hyperfine linux-perf bridge-utils"

is_installed() {
	st=$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)
	[ "$st" = installed ]
}

missing=""
for p in $REQUIRED $OPTIONAL; do
	is_installed "$p" || missing="$missing $p"
done

if [ -z "$missing" ]; then
	echo "bench/install-deps: all packages present"
	exit 0
fi

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
echo "bench/install-deps: installing:$missing"
$SUDO apt-get update
# Install what the archive has; an optional package that the archive lacks
# (sockperf and hyperfine are not in every release) is reported, not fatal.
avail=""
for p in $missing; do
	if apt-cache show "$p" >/dev/null 2>&1; then
		avail="$avail $p"
	else
		case " $REQUIRED " in
		*" $p "*) echo "bench/install-deps: required package $p is not in the archive" >&2; exit 1 ;;
		*) echo "bench/install-deps: optional package $p is not in the archive; run.py uses its fallback" ;;
		esac
	fi
done
# shellcheck disable=SC2086
[ -z "$avail" ] || $SUDO apt-get install -y --no-install-recommends $avail
