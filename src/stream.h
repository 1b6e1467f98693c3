/* SPDX-License-Identifier: MIT */
/* stream.h: QEMU stream/socket peers (4-byte length + frame over a byte
 * stream): servers with any number of clients, clients that reconnect. */
#ifndef PB_STREAM_H
#define PB_STREAM_H

#include "pb.h"
#include "sockaddr.h"

/* Listen on a; every accepted connection becomes a port.  A unix path that
 * exists is replaced only if nothing listens on it; the file is removed
 * when the netdev goes away. */
int stream_listen(struct pb *pb, struct netdev *nd, const struct saddr *a);
/* Connect to a; reconnect_ms > 0: retry that often while not connected. */
int stream_connect(struct pb *pb, struct netdev *nd, const struct saddr *a,
		   uint64_t reconnect_ms);
/* Adopt a stream socket fd (connected, or listening). */
int stream_adopt(struct pb *pb, struct netdev *nd, int fd);

#endif
