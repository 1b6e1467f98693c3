#!/bin/sh
# SPDX-License-Identifier: MIT
# Install the Debian packages patchbay needs to build and test (idempotent:
# apt-get runs only when something is missing).  Needs root (or sudo).
set -eu

PKGS="build-essential clang make libcmocka-dev python3 python3-pytest \
iproute2 iputils-ping tshark socat iperf3 curl qemu-system-x86 \
linux-image-amd64 busybox-static cpio kmod gzip util-linux procps psmisc \
libclang-rt-14-dev isc-dhcp-client dnsmasq-base bind9-dnsutils \
tftp-hpa samba smbclient ipxe-qemu cppcheck clang-tidy python3-scapy"

missing=""
for p in $PKGS; do
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$st" = installed ] || missing="$missing $p"
done

if [ -z "$missing" ]; then
	echo "install-deps: all packages present"
	exit 0
fi

echo "install-deps: installing:$missing"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture: answer no, don't prompt.
echo "wireshark-common wireshark-common/install-setuid boolean false" |
	$SUDO debconf-set-selections 2>/dev/null || true
$SUDO apt-get update
# shellcheck disable=SC2086
$SUDO apt-get install -y --no-install-recommends $missing
