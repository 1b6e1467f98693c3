/* SPDX-License-Identifier: MIT */
/* router_api.h: what the rest of the library calls in the router. */
#ifndef PB_ROUTER_API_H
#define PB_ROUTER_API_H

#include <stdint.h>

struct pb;
struct backend;

extern const struct backend backend_user;

/* A round's frames are all out: router output buffers may be reused. */
void router_round_end(struct pb *pb);
/* epoll events for REF_FLOW / REF_HOSTFWD references. */
void router_flow_event(struct pb *pb, uint32_t idx, uint32_t gen,
		       uint32_t events);
void router_dnstcp_event(struct pb *pb, uint32_t idx, uint32_t gen,
			 uint32_t events);
void router_hostfwd_event(struct pb *pb, uint32_t idx, uint32_t gen,
			  uint32_t events);
/* Router counters as JSON members (",\"router\":{...}") for netdev nd. */
void router_stats_json(struct pb *pb, uint32_t nd, void *file);

#endif
