/* SPDX-License-Identifier: MIT */
/* list.h: live objects (segments, ports, flows, leases, forwards, captures)
 * as JSON, for pb_list_json() and pb_stats_json(). */
#ifndef PB_LIST_H
#define PB_LIST_H

#include <stdbool.h>
#include <stdio.h>

#include "pb.h"

/* The segments' objects, comma-separated (the inside of an array). */
void list_segments(FILE *f, const struct pb *pb);
/* The ports' objects, comma-separated; router: with the routers' counters
 * (the stats object). */
void list_ports(FILE *f, struct pb *pb, bool router);

#endif
