// SPDX-License-Identifier: MIT
/* fdb.c: MAC learning table for switch segments. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fdb.h"

int fdb_init(struct fdb *f, uint32_t max_entries, uint64_t ageing_ns)
{
	uint32_t n = 16;

	memset(f, 0, sizeof(*f));
	if (max_entries == 0 || max_entries > (1u << 24))
		return -EINVAL;
	while (n < 2 * max_entries)
		n <<= 1;
	f->slot = calloc(n, sizeof(*f->slot));
	if (!f->slot)
		return -ENOMEM;
	f->mask = n - 1;
	f->max = max_entries;
	f->ageing_ns = ageing_ns;
	return 0;
}

void fdb_fini(struct fdb *f)
{
	free(f->slot);
	f->slot = NULL;
	free(f->per_port);
	f->per_port = NULL;
}

int fdb_set_port_limit(struct fdb *f, uint32_t nports, uint32_t port_max)
{
	if (nports == 0 || port_max == 0 || port_max > f->max || f->count)
		return -EINVAL;
	free(f->per_port);
	f->per_port = calloc(nports, sizeof(*f->per_port));
	if (!f->per_port)
		return -ENOMEM;
	f->nports = nports;
	f->port_max = port_max;
	return 0;
}

/* Whether port may hold one more entry; charge it if so. */
static bool port_take(struct fdb *f, uint32_t port)
{
	if (!f->per_port || port >= f->nports)
		return true;
	if (f->per_port[port] >= f->port_max)
		return false;
	f->per_port[port]++;
	return true;
}

static void port_put(struct fdb *f, uint32_t port)
{
	if (f->per_port && port < f->nports && f->per_port[port])
		f->per_port[port]--;
}

static uint32_t fdb_hash(const uint8_t *mac)
{
	/* FNV-1a over the six bytes: cheap and mixes the low (vendor-
	 * assigned) bytes, which are the ones that differ between VMs. */
	uint32_t h = 2166136261u;

	for (int i = 0; i < 6; i++) {
		h ^= mac[i];
		h *= 16777619u;
	}
	return h ^ (h >> 16);
}

static struct fdb_entry *fdb_find(const struct fdb *f, const uint8_t *mac)
{
	for (uint32_t i = fdb_hash(mac) & f->mask;; i = (i + 1) & f->mask) {
		struct fdb_entry *e = &f->slot[i];

		if (!e->used)
			return NULL;
		if (!memcmp(e->mac, mac, 6))
			return e;
	}
}

static bool fdb_expired(const struct fdb *f, const struct fdb_entry *e,
			uint64_t now)
{
	return f->ageing_ns && now > e->seen && now - e->seen > f->ageing_ns;
}

static void fdb_remove_at(struct fdb *f, uint32_t i);

int fdb_learn(struct fdb *f, const uint8_t *mac, uint32_t port, uint32_t gen,
	      uint64_t now)
{
	struct fdb_entry *e = fdb_find(f, mac);
	uint32_t i;

	if (e) {
		int moved = e->port != port || e->gen != gen;

		if (e->port != port) {
			if (!port_take(f, port)) {
				/* no longer where it was: forget it (which
				 * gives its old port's share back) */
				fdb_remove_at(f, (uint32_t)(e - f->slot));
				f->port_full++;
				return -EDQUOT;
			}
			port_put(f, e->port);
		}
		e->port = port;
		e->gen = gen;
		e->seen = now;
		f->moved += (uint64_t)moved;
		return moved;
	}
	if (f->count >= f->max) {
		f->full++;
		return -ENOSPC;
	}
	if (!port_take(f, port)) {
		f->port_full++;
		return -EDQUOT;
	}
	for (i = fdb_hash(mac) & f->mask; f->slot[i].used; i = (i + 1) & f->mask)
		;
	e = &f->slot[i];
	memcpy(e->mac, mac, 6);
	e->used = 1;
	e->port = port;
	e->gen = gen;
	e->seen = now;
	f->count++;
	f->learned++;
	return 0;
}

int64_t fdb_lookup(const struct fdb *f, const uint8_t *mac, uint64_t now,
		   uint32_t *gen)
{
	const struct fdb_entry *e = fdb_find(f, mac);

	if (!e || fdb_expired(f, e, now))
		return -1;
	if (gen)
		*gen = e->gen;
	return e->port;
}

/* Empty slot i and shift back the entries of the probe run after it so
 * that every remaining entry stays reachable from its home slot. */
static void fdb_remove_at(struct fdb *f, uint32_t i)
{
	uint32_t j = i;

	port_put(f, f->slot[i].port);
	f->slot[i].used = 0;
	f->count--;
	for (;;) {
		j = (j + 1) & f->mask;
		if (!f->slot[j].used)
			return;
		uint32_t home = fdb_hash(f->slot[j].mac) & f->mask;

		/* j may move to the hole at i unless its home lies
		 * cyclically in (i, j]. */
		if ((j > i && (home <= i || home > j)) ||
		    (j < i && (home <= i && home > j))) {
			f->slot[i] = f->slot[j];
			f->slot[j].used = 0;
			i = j;
		}
	}
}

static void fdb_remove_if(struct fdb *f, bool (*pred)(const struct fdb *,
						       const struct fdb_entry *,
						       uint64_t),
			  uint64_t arg)
{
	/* Removal shifts entries backwards, possibly into slots already
	 * visited; rescan a slot after removing from it. */
	for (uint32_t i = 0; i <= f->mask;) {
		if (f->slot[i].used && pred(f, &f->slot[i], arg))
			fdb_remove_at(f, i);
		else
			i++;
	}
}

static bool pred_aged(const struct fdb *f, const struct fdb_entry *e,
		      uint64_t now)
{
	return fdb_expired(f, e, now);
}

static bool pred_port(const struct fdb *f, const struct fdb_entry *e,
		      uint64_t port)
{
	(void)f;
	return e->port == port;
}

void fdb_age(struct fdb *f, uint64_t now)
{
	uint32_t before = f->count;

	fdb_remove_if(f, pred_aged, now);
	f->aged += before - f->count;
}

void fdb_flush_port(struct fdb *f, uint32_t port)
{
	fdb_remove_if(f, pred_port, port);
}
