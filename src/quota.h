/* SPDX-License-Identifier: MIT */
/* quota.h: per-key shares of a bounded table (one guest's part of it). */
#ifndef PB_QUOTA_H
#define PB_QUOTA_H

/*
 * A table of fixed capacity (flows, reassembly slots...) counts, next to
 * its own entries, how many each key holds: a guest's MAC or source
 * address.  quota_take() charges one entry to a key and refuses when the
 * key already holds limit; quota_put() gives it back.  A key's counter
 * exists only while it holds something, so at most cap keys ever exist
 * when cap is the capacity of the table being shared: the counters cannot
 * be exhausted by a guest inventing keys before the table itself is.
 * Chained hashing over index links, a random seed per table (keys are
 * chosen by guests; chains are bounded by cap in any case), memory
 * allocated once in quota_init().
 */

#include <stddef.h>
#include <stdint.h>

#define QUOTA_KEY_MAX 16	/* an IPv6 address */
#define QUOTA_NONE UINT32_MAX

struct quota_ent {
	uint8_t key[QUOTA_KEY_MAX];	/* zero-padded */
	uint32_t count;			/* 0: free */
	uint32_t next;			/* hash chain, or free list */
};

struct quota {
	struct quota_ent *e;
	uint32_t *bucket;
	uint32_t mask;
	uint32_t cap;		/* keys that can exist at once */
	uint32_t limit;		/* entries one key may hold */
	uint32_t keys;		/* keys holding something */
	uint32_t free_head;
	uint64_t seed;
};

/* cap: the shared table's capacity; limit: each key's share (>= 1).
 * Returns 0, -EINVAL or -ENOMEM. */
int quota_init(struct quota *q, uint32_t cap, uint32_t limit);
void quota_fini(struct quota *q);
/* Charge one entry to key (len <= QUOTA_KEY_MAX bytes): the handle to
 * give back with quota_put(), or QUOTA_NONE if key is at its limit (or,
 * misused, more than cap keys hold something). */
uint32_t quota_take(struct quota *q, const void *key, size_t len);
/* Return one entry charged by quota_take(); QUOTA_NONE is ignored. */
void quota_put(struct quota *q, uint32_t handle);
/* Entries key holds now. */
uint32_t quota_count(const struct quota *q, const void *key, size_t len);

#endif
