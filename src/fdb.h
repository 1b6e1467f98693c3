/* SPDX-License-Identifier: MIT */
/* fdb.h: the learning switch's MAC table (bounded, with ageing). */
#ifndef PB_FDB_H
#define PB_FDB_H

/*
 * Open addressing with linear probing over a power-of-two slot array at
 * least twice the entry cap, so probes stay short; deletion shifts later
 * entries back (no tombstones), keeping lookups exact after any sequence of
 * learn/age/flush.  Each entry records the port slot and its generation:
 * a port that was closed and whose slot was reused never receives frames
 * meant for its predecessor.  When max entries are in use a new MAC is not
 * learnt (its frames are flooded) and fdb->full counts it.  With a port
 * limit (fdb_set_port_limit()), one port holds at most that many entries:
 * a guest inventing source addresses cannot fill the table and make the
 * switch flood everybody's unicast to it (MAC flooding); what it invents
 * beyond its share is not learnt (port_full), and an address that moves to
 * a port at its limit is forgotten.  Memory is allocated once in
 * fdb_init() / fdb_set_port_limit().
 */

#include <stdbool.h>
#include <stdint.h>

struct fdb_entry {
	uint8_t mac[6];
	uint8_t used;
	uint8_t pad;
	uint32_t port;
	uint32_t gen;
	uint64_t seen;
};

struct fdb {
	struct fdb_entry *slot;
	uint32_t mask;		/* nslots - 1 */
	uint32_t count;
	uint32_t max;
	uint64_t ageing_ns;
	uint32_t *per_port;	/* entries of each port slot, or NULL */
	uint32_t nports;
	uint32_t port_max;	/* entries one port may hold (0: max) */
	/* statistics */
	uint64_t learned, moved, full, aged, port_full;
};

int fdb_init(struct fdb *f, uint32_t max_entries, uint64_t ageing_ns);
void fdb_fini(struct fdb *f);
/* At most port_max entries (1..max) per port slot below nports; returns 0,
 * -EINVAL or -ENOMEM. */
int fdb_set_port_limit(struct fdb *f, uint32_t nports, uint32_t port_max);

/* Record that mac was seen on (port, gen) at now.  Returns 0 (new or
 * refreshed), 1 (moved from another port), -ENOSPC (table full) or -EDQUOT
 * (the port holds its limit: not learnt, or forgotten if it moved). */
int fdb_learn(struct fdb *f, const uint8_t *mac, uint32_t port, uint32_t gen,
	      uint64_t now);
/* Port of mac, or -1 if unknown or older than the ageing time. */
int64_t fdb_lookup(const struct fdb *f, const uint8_t *mac, uint64_t now,
		   uint32_t *gen);
/* Remove every entry older than the ageing time. */
void fdb_age(struct fdb *f, uint64_t now);
/* Remove every entry that points at port. */
void fdb_flush_port(struct fdb *f, uint32_t port);

#endif
