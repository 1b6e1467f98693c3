/* SPDX-License-Identifier: MIT */
/* netlink.h: the few rtnetlink requests that configure an interface. */
#ifndef PB_NETLINK_H
#define PB_NETLINK_H

#include <stdint.h>

/* All act on the network namespace of the calling thread; addresses in
 * network byte order; 0 or a negative errno code. */
int nl_link_up(int ifindex, unsigned mtu);
int nl_addr4_add(int ifindex, uint32_t addr, unsigned prefixlen);
int nl_route4_default(int ifindex, uint32_t gateway);

#endif
