/* SPDX-License-Identifier: MIT */
/* netdev.h: -netdev option strings -> backends, and the netdev table. */
#ifndef PB_NETDEV_H
#define PB_NETDEV_H

/*
 * A netdev is what one -netdev option made, named by its id.  It owns zero
 * or more ports: a TAP or a datagram socket is one port for its whole life;
 * a stream client is one port while connected; a stream server is a
 * listening socket whose accepted connections are ports ID.1, ID.2, ...
 *
 * netdev_add() parses the option string (QEMU syntax), checks the keys
 * against the backend's list, resolves segment= and hands over to the
 * backend's create(); every failure leaves nothing behind.
 */

#include "pb.h"

struct backend {
	const char *type;
	const char *const *keys;	/* accepted keys, NULL-terminated */
	const char *const *repeatable;	/* keys that may repeat, or NULL */
	int (*create)(struct pb *pb, struct netdev *nd, const struct opts *o);
};

extern const struct backend backend_stream;
extern const struct backend backend_socket;
extern const struct backend backend_dgram;
extern const struct backend backend_tap;

int netdev_add(struct pb *pb, const char *spec);
int netdev_del(struct pb *pb, const char *id);
void netdev_del_all(struct pb *pb);
/* Slot of the netdev with this id, or -1. */
int netdev_find(const struct pb *pb, const char *id);
/* Allocate a netdev slot for a backend that is not created from options
 * (the embedder's callback port). */
struct netdev *netdev_alloc(struct pb *pb, const char *id, int seg,
			    const struct netdev_ops *ops);
/* Resolve a segment name (NULL or "": the first segment). */
int netdev_segment(struct pb *pb, const char *name);

static inline uint32_t netdev_index(const struct pb *pb,
				    const struct netdev *nd)
{
	return (uint32_t)(nd - pb->netdevs);
}

/* Register the netdev's own fd (listener, connecting socket). */
int netdev_watch(struct pb *pb, struct netdev *nd, int fd, uint32_t events);

#endif
