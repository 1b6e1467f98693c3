#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The patchbay demo: build patchbay, start its default topology (a switch
# with the user-mode router and a VM socket), boot two small QEMU guests
# on it and show what they do: DHCP leases, ping the gateway and each
# other, fetch a page from a web server on this host's 127.0.0.1 through
# the gateway address 10.0.2.2.  Everything runs inside a private network
# namespace (only loopback), so nothing reaches the machine's network.
# Installs what it needs (Debian 12; root or sudo).  Takes ~30 s after the
# first run.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

if [ "$(id -u)" != 0 ]; then
	exec sudo "$0" "$@"
fi

# ---- dependencies ------------------------------------------------------------
PKGS="build-essential qemu-system-x86 linux-image-amd64 busybox-static cpio kmod python3 iproute2 util-linux"
missing=""
for p in $PKGS; do
	[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" = installed ] ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "demo: installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing
fi

# ---- build -------------------------------------------------------------------
make -s
export HARNESS_BUILD=$REPO/build/qemu-guest
if [ ! -f "$HARNESS_BUILD/guest.cpio.gz" ]; then
	OUT=$HARNESS_BUILD tests/qemu/build-guest.sh
fi

# ---- the demo, inside a private network namespace ----------------------------
if [ -z "${PATCHBAY_DEMO_INNER:-}" ]; then
	export PATCHBAY_DEMO_INNER=1
	exec unshare -n -- "$0" "$@"
fi
ip link set lo up

WORK=$(mktemp -d /tmp/patchbay-demo.XXXXXX)
pids=()
keep=0
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	[ $keep = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

# a web server on this host's loopback, as "the internet" of the demo
mkdir "$WORK/www"
echo "hello from the host, via patchbay" > "$WORK/www/index.html"
python3 -m http.server 8080 --bind 127.0.0.1 --directory "$WORK/www" \
	>/dev/null 2>&1 &
pids+=($!)

mkdir -m 700 "$WORK/run"
XDG_RUNTIME_DIR=$WORK/run build/patchbay --stats-file "$WORK/stats.json" \
	>"$WORK/patchbay.out" 2>"$WORK/patchbay.log" &
PB=$!
pids+=($PB)
SOCK=$WORK/run/patchbay/patchbay.sock
for _ in $(seq 100); do
	grep -q "info: ready" "$WORK/patchbay.log" 2>/dev/null && break
	kill -0 $PB 2>/dev/null || { cat "$WORK/patchbay.log"; exit 1; }
	sleep 0.05
done
echo "================================================================"
cat "$WORK/patchbay.out"
echo "================================================================"

NET="stream,server=off,addr.type=unix,addr.path=$SOCK"
# guest A: takes the first lease (10.0.2.15), then serves HTTP until
# guest B has fetched from it
tests/qemu/run-guest.sh -q -n "$NET" --mac 52:54:00:00:0a:01 --name demo-a \
	--log "$WORK/a.log" -a "h_name=guest-a h_listen=80 h_hold=60" &
A=$!
pids+=($A)
for _ in $(seq 300); do
	grep -q "HARNESS-LEASE" "$WORK/a.log" 2>/dev/null && break
	kill -0 $A 2>/dev/null || break
	sleep 0.1
done
# guest B: 10.0.2.16; pings the gateway and guest A, fetches A's page and
# the host's page through the gateway
tests/qemu/run-guest.sh -q -n "$NET" -m rtl8139 --mac 52:54:00:00:0b:02 \
	--name demo-b --log "$WORK/b.log" \
	-a "h_name=guest-b h_ping=gw,10.0.2.15 h_url=http://10.0.2.2:8080/,http://10.0.2.15/cgi-bin/done" &
B=$!
pids+=($B)
rc=0
wait $B || rc=1
wait $A || rc=1
for g in a b; do
	echo "---- guest $g"
	grep -E "HARNESS-(LEASE|PASS|FAIL|RESULT)" "$WORK/$g.log" | sed 's/\r$//'
done
kill -USR1 $PB
sleep 0.3
echo "---- patchbay: DHCP leases and router counters"
python3 - "$WORK/stats.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for p in d["ports"]:
    r = p.get("router")
    if r:
        for l in r["dhcp"]["leases"]:
            print("  lease %-12s %s %s" % (l["ip"], l["mac"], l["name"]))
        print("  tcp connections %d, icmp echo answered %d" %
              (r["tcp_opened"], r["icmp_echo_local"]))
    else:
        print("  port %-8s %-8s frames in %d out %d" %
              (p["name"], p["type"], p["rx_frames"], p["tx_frames"]))
PY
if [ $rc = 0 ]; then
	echo "demo: PASS"
else
	keep=1
	echo "demo: FAIL (logs kept in $WORK)"
fi
exit $rc
