#!/bin/sh
# SPDX-License-Identifier: MIT
# Set-up time of slirp4netns, for bench/run.py: make a network namespace,
# start slirp4netns on it, wait until it says the network is configured,
# run `true` in the namespace, tear everything down.  The counterpart of
# `patchbay run -- true` and `pasta ... -- true`.
set -eu
dir=$(mktemp -d)
trap 'kill "$sp" "$ns" 2>/dev/null || true; wait; rm -rf "$dir"' EXIT
unshare -n sleep 30 &
ns=$!
mkfifo "$dir/ready"
slirp4netns --configure --disable-dns --mtu=1500 --ready-fd=3 "$ns" tap0 \
	3>"$dir/ready" >/dev/null 2>&1 &
sp=$!
head -c1 "$dir/ready" >/dev/null
nsenter -t "$ns" -n true
