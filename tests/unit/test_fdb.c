// SPDX-License-Identifier: MIT
/* test_fdb.c: unit and differential tests of the MAC table (fdb.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fdb.h"

#define AGE 1000 /* ageing time of the plain tests, in ns */

static void mac_of(uint8_t *mac, uint32_t n)
{
	mac[0] = 0x52;
	mac[1] = 0x54;
	mac[2] = (uint8_t) (n >> 24);
	mac[3] = (uint8_t) (n >> 16);
	mac[4] = (uint8_t) (n >> 8);
	mac[5] = (uint8_t) n;
}

static uint32_t nslots(const struct fdb *f)
{
	return f->mask + 1;
}

static uint32_t used_slots(const struct fdb *f)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < nslots(f); i++)
		n += f->slot[i].used != 0;
	return n;
}

/* ---- plain tests ------------------------------------------------------ */

static void test_init(void **state)
{
	static const uint32_t maxes[] = {1, 7, 8, 9, 100, 1024, 1025};
	struct fdb f;

	(void) state;
	assert_int_equal(fdb_init(&f, 0, AGE), -EINVAL);
	fdb_fini(&f);
	assert_int_equal(fdb_init(&f, (1u << 24) + 1, AGE), -EINVAL);
	fdb_fini(&f);
	assert_int_equal(fdb_init(&f, UINT32_MAX, AGE), -EINVAL);
	fdb_fini(&f);

	for (size_t i = 0; i < sizeof(maxes) / sizeof(maxes[0]); i++) {
		assert_int_equal(fdb_init(&f, maxes[i], AGE), 0);
		/* A power of two, at least twice the cap: short probes and
		 * always a free slot to end a search. */
		assert_int_equal(nslots(&f) & f.mask, 0);
		assert_true(nslots(&f) >= 2 * (uint64_t) maxes[i]);
		assert_true(nslots(&f) >= 16);
		assert_int_equal(f.max, maxes[i]);
		assert_int_equal(f.count, 0);
		assert_int_equal(used_slots(&f), 0);
		fdb_fini(&f);
		assert_null(f.slot);
		fdb_fini(&f); /* twice is harmless */
	}
}

static void test_learn_lookup(void **state)
{
	struct fdb f;
	uint8_t a[6], b[6], c[6];
	uint32_t gen = 0;

	(void) state;
	mac_of(a, 1);
	mac_of(b, 2);
	mac_of(c, 3);
	assert_int_equal(fdb_init(&f, 16, AGE), 0);
	assert_int_equal(fdb_lookup(&f, a, 0, &gen), -1);

	assert_int_equal(fdb_learn(&f, a, 3, 7, 100), 0);
	assert_int_equal(fdb_learn(&f, b, 4, 9, 100), 0);
	assert_int_equal(fdb_lookup(&f, a, 100, &gen), 3);
	assert_int_equal(gen, 7);
	assert_int_equal(fdb_lookup(&f, b, 150, &gen), 4);
	assert_int_equal(gen, 9);
	assert_int_equal(fdb_lookup(&f, b, 150, NULL), 4);
	assert_int_equal(fdb_lookup(&f, c, 150, &gen), -1);
	assert_int_equal(gen, 9); /* not written on a miss */

	/* Refresh: same port and generation. */
	assert_int_equal(fdb_learn(&f, a, 3, 7, 200), 0);
	assert_int_equal(f.count, 2);
	assert_int_equal(f.learned, 2);
	assert_int_equal(f.moved, 0);
	assert_int_equal(f.full, 0);
	assert_int_equal(used_slots(&f), 2);

	/* Port numbers use the whole uint32_t range, distinct from -1. */
	assert_int_equal(fdb_learn(&f, c, UINT32_MAX, UINT32_MAX, 200), 0);
	assert_true(fdb_lookup(&f, c, 200, &gen) == (int64_t) UINT32_MAX);
	assert_int_equal(gen, UINT32_MAX);
	fdb_fini(&f);
}

static void test_move(void **state)
{
	struct fdb f;
	uint8_t a[6];
	uint32_t gen;

	(void) state;
	mac_of(a, 1);
	assert_int_equal(fdb_init(&f, 16, AGE), 0);
	assert_int_equal(fdb_learn(&f, a, 1, 0, 10), 0);

	/* Another port: moved. */
	assert_int_equal(fdb_learn(&f, a, 2, 0, 20), 1);
	assert_int_equal(fdb_lookup(&f, a, 20, &gen), 2);
	assert_int_equal(f.moved, 1);
	assert_int_equal(f.count, 1);
	assert_int_equal(f.learned, 1);

	/* Back again, then refreshed where it is. */
	assert_int_equal(fdb_learn(&f, a, 1, 0, 30), 1);
	assert_int_equal(fdb_learn(&f, a, 1, 0, 40), 0);
	assert_int_equal(f.moved, 2);
	assert_int_equal(fdb_lookup(&f, a, 40, &gen), 1);
	fdb_fini(&f);
}

/*
 * A port slot closed and reused has a new generation: the MAC seen on it
 * counts as moved, and lookups tell the caller which generation they name.
 */
static void test_generation(void **state)
{
	struct fdb f;
	uint8_t a[6];
	uint32_t gen;

	(void) state;
	mac_of(a, 1);
	assert_int_equal(fdb_init(&f, 16, AGE), 0);
	assert_int_equal(fdb_learn(&f, a, 5, 1, 10), 0);
	assert_int_equal(fdb_lookup(&f, a, 10, &gen), 5);
	assert_int_equal(gen, 1);
	assert_int_equal(fdb_learn(&f, a, 5, 2, 20), 1);
	assert_int_equal(fdb_lookup(&f, a, 20, &gen), 5);
	assert_int_equal(gen, 2);
	assert_int_equal(f.moved, 1);
	fdb_fini(&f);
}

static void test_ageing(void **state)
{
	struct fdb f;
	uint8_t a[6], b[6];

	(void) state;
	mac_of(a, 1);
	mac_of(b, 2);
	assert_int_equal(fdb_init(&f, 16, AGE), 0);
	assert_int_equal(fdb_learn(&f, a, 1, 0, 1000), 0);
	assert_int_equal(fdb_learn(&f, b, 2, 0, 1500), 0);

	/* Valid for exactly the ageing time, gone one ns later. */
	assert_int_equal(fdb_lookup(&f, a, 1000 + AGE, NULL), 1);
	assert_int_equal(fdb_lookup(&f, a, 1000 + AGE + 1, NULL), -1);
	assert_int_equal(fdb_lookup(&f, b, 1000 + AGE + 1, NULL), 2);

	/* fdb_age removes exactly the expired ones. */
	fdb_age(&f, 1000 + AGE);
	assert_int_equal(f.count, 2);
	assert_int_equal(f.aged, 0);
	fdb_age(&f, 1000 + AGE + 1);
	assert_int_equal(f.count, 1);
	assert_int_equal(f.aged, 1);
	assert_int_equal(used_slots(&f), 1);
	assert_int_equal(fdb_lookup(&f, a, 1000, NULL), -1);
	assert_int_equal(fdb_lookup(&f, b, 1000 + AGE + 1, NULL), 2);

	/* Seeing a MAC again restarts its clock. */
	assert_int_equal(fdb_learn(&f, b, 2, 0, 2400), 0);
	assert_int_equal(fdb_lookup(&f, b, 2400 + AGE, NULL), 2);
	fdb_age(&f, 2400 + AGE);
	assert_int_equal(f.count, 1);
	fdb_age(&f, 2400 + AGE + 1);
	assert_int_equal(f.count, 0);
	assert_int_equal(f.aged, 2);
	assert_int_equal(used_slots(&f), 0);

	/* Relearnt after ageing out: new again. */
	assert_int_equal(fdb_learn(&f, a, 3, 0, 5000), 0);
	assert_int_equal(f.learned, 3);
	assert_int_equal(fdb_lookup(&f, a, 5000, NULL), 3);

	/* A clock that reads earlier than the last sighting is not age. */
	assert_int_equal(fdb_lookup(&f, a, 0, NULL), 3);
	fdb_age(&f, 0);
	assert_int_equal(f.count, 1);
	fdb_fini(&f);
}

static void test_ageing_disabled(void **state)
{
	struct fdb f;
	uint8_t a[6];

	(void) state;
	mac_of(a, 1);
	assert_int_equal(fdb_init(&f, 16, 0), 0);
	assert_int_equal(fdb_learn(&f, a, 1, 0, 1), 0);
	assert_int_equal(fdb_lookup(&f, a, UINT64_MAX, NULL), 1);
	fdb_age(&f, UINT64_MAX);
	assert_int_equal(f.count, 1);
	assert_int_equal(f.aged, 0);
	fdb_fini(&f);
}

static void test_capacity(void **state)
{
	struct fdb f;
	uint8_t mac[6];

	(void) state;
	assert_int_equal(fdb_init(&f, 4, AGE), 0);
	for (uint32_t i = 0; i < 4; i++) {
		mac_of(mac, i);
		assert_int_equal(fdb_learn(&f, mac, i, 0, 100 * i), 0);
	}
	assert_int_equal(f.count, 4);

	/* Full: a new MAC is refused and counted each time. */
	mac_of(mac, 100);
	assert_int_equal(fdb_learn(&f, mac, 9, 0, 400), -ENOSPC);
	assert_int_equal(f.full, 1);
	assert_int_equal(fdb_learn(&f, mac, 9, 0, 400), -ENOSPC);
	assert_int_equal(f.full, 2);
	assert_int_equal(fdb_lookup(&f, mac, 400, NULL), -1);
	assert_int_equal(f.count, 4);
	assert_int_equal(f.learned, 4);
	assert_int_equal(used_slots(&f), 4);

	/* Known MACs still refresh and move when full. */
	mac_of(mac, 0);
	assert_int_equal(fdb_learn(&f, mac, 0, 0, 500), 0);
	mac_of(mac, 1);
	assert_int_equal(fdb_learn(&f, mac, 7, 0, 500), 1);
	assert_int_equal(f.full, 2);

	/* Ageing frees room: MACs 2 (seen at 200) and 3 (300) expire. */
	fdb_age(&f, 300 + AGE + 1);
	assert_int_equal(f.count, 2);
	assert_int_equal(f.aged, 2);
	mac_of(mac, 100);
	assert_int_equal(fdb_learn(&f, mac, 9, 0, 1400), 0);
	mac_of(mac, 101);
	assert_int_equal(fdb_learn(&f, mac, 9, 0, 1400), 0);
	mac_of(mac, 102);
	assert_int_equal(fdb_learn(&f, mac, 9, 0, 1400), -ENOSPC);
	assert_int_equal(f.full, 3);

	/* So does flushing a port. */
	fdb_flush_port(&f, 9);
	assert_int_equal(f.count, 2);
	assert_int_equal(fdb_learn(&f, mac, 9, 0, 1400), 0);
	assert_int_equal(f.count, 3);
	assert_int_equal(used_slots(&f), 3);
	fdb_fini(&f);
}

static void test_flush_port(void **state)
{
	struct fdb f;
	uint8_t mac[6];

	(void) state;
	assert_int_equal(fdb_init(&f, 64, AGE), 0);
	for (uint32_t i = 0; i < 60; i++) {
		mac_of(mac, i);
		assert_int_equal(fdb_learn(&f, mac, i % 3, i, 10), 0);
	}
	fdb_flush_port(&f, 7); /* no entries: nothing happens */
	assert_int_equal(f.count, 60);

	fdb_flush_port(&f, 1);
	assert_int_equal(f.count, 40);
	assert_int_equal(used_slots(&f), 40);
	for (uint32_t i = 0; i < 60; i++) {
		int64_t want = i % 3 == 1 ? -1 : (int64_t) (i % 3);
		uint32_t gen = UINT32_MAX;

		mac_of(mac, i);
		assert_int_equal(fdb_lookup(&f, mac, 10, &gen), want);
		if (want >= 0)
			assert_int_equal(gen, i);
	}
	/* Flushing is not ageing. */
	assert_int_equal(f.aged, 0);

	fdb_flush_port(&f, 0);
	fdb_flush_port(&f, 2);
	assert_int_equal(f.count, 0);
	assert_int_equal(used_slots(&f), 0);
	fdb_fini(&f);
}

/* Fill to the cap and empty again, many MACs over the same table. */
static void test_fill_drain(void **state)
{
	struct fdb f;
	uint8_t mac[6];

	(void) state;
	assert_int_equal(fdb_init(&f, 1000, AGE), 0);
	for (uint32_t round = 0; round < 5; round++) {
		uint64_t t = round * 10 * AGE;

		for (uint32_t i = 0; i < 1000; i++) {
			mac_of(mac, round * 100000 + i * 7919);
			assert_int_equal(fdb_learn(&f, mac, i, round, t), 0);
		}
		mac_of(mac, 0xfffffff);
		assert_int_equal(fdb_learn(&f, mac, 0, 0, t), -ENOSPC);
		for (uint32_t i = 0; i < 1000; i++) {
			mac_of(mac, round * 100000 + i * 7919);
			assert_int_equal(fdb_lookup(&f, mac, t, NULL), i);
		}
		fdb_age(&f, t + AGE + 1);
		assert_int_equal(f.count, 0);
		assert_int_equal(used_slots(&f), 0);
	}
	assert_int_equal(f.aged, 5000);
	assert_int_equal(f.full, 5);
	fdb_fini(&f);
}

/* ---- differential test against a naive model --------------------------- */

/* Deterministic across libcs: xorshift64*. */
static uint64_t rng_state;

static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

static uint32_t rng_below(uint32_t n)
{
	return (uint32_t) ((rng() >> 32) % n);
}

/*
 * A copy of fdb.c's hash, used only to pick MACs that share home slots
 * (including the last slots, so probe runs wrap to slot 0) and to measure
 * that the run really displaced entries.  If fdb.c's hash changes, the
 * differential test stays correct but weaker; hash_copy_matches() notices.
 */
static uint32_t hash_copy(const uint8_t *mac)
{
	uint32_t h = 2166136261u;

	for (int i = 0; i < 6; i++) {
		h ^= mac[i];
		h *= 16777619u;
	}
	return h ^ (h >> 16);
}

static bool hash_copy_matches(void)
{
	struct fdb f;
	uint8_t mac[6];
	bool ok = true;

	assert_int_equal(fdb_init(&f, 8, 0), 0);
	for (uint32_t n = 0; n < 64 && ok; n++) {
		mac_of(mac, n * 2654435761u);
		assert_int_equal(fdb_learn(&f, mac, 1, 0, 0), 0);
		ok = f.slot[hash_copy(mac) & f.mask].used;
		fdb_flush_port(&f, 1);
	}
	fdb_fini(&f);
	return ok;
}

#define POOL_MAX (3 * 64)

/* The model: a plain array indexed by position in the MAC pool. */
struct model {
	uint8_t mac[POOL_MAX][6];
	bool present[POOL_MAX];
	uint32_t port[POOL_MAX];
	uint32_t gen[POOL_MAX];
	uint64_t seen[POOL_MAX];
	uint32_t npool, count, max;
	uint64_t ageing, learned, moved, full, aged;
};

static struct model m;

static bool model_expired(uint32_t k, uint64_t now)
{
	return m.ageing && now > m.seen[k] && now - m.seen[k] > m.ageing;
}

static int model_learn(uint32_t k, uint32_t port, uint32_t gen, uint64_t now)
{
	int moved;

	if (m.present[k]) {
		moved = m.port[k] != port || m.gen[k] != gen;
		m.moved += (uint64_t) moved;
	} else if (m.count == m.max) {
		m.full++;
		return -ENOSPC;
	} else {
		moved = 0;
		m.present[k] = true;
		m.count++;
		m.learned++;
	}
	m.port[k] = port;
	m.gen[k] = gen;
	m.seen[k] = now;
	return moved;
}

static int64_t model_lookup(uint32_t k, uint64_t now, uint32_t *gen)
{
	if (!m.present[k] || model_expired(k, now))
		return -1;
	*gen = m.gen[k];
	return m.port[k];
}

static void model_remove(uint32_t k)
{
	m.present[k] = false;
	m.count--;
}

static void model_age(uint64_t now)
{
	for (uint32_t k = 0; k < m.npool; k++)
		if (m.present[k] && model_expired(k, now)) {
			model_remove(k);
			m.aged++;
		}
}

static void model_flush_port(uint32_t port)
{
	for (uint32_t k = 0; k < m.npool; k++)
		if (m.present[k] && m.port[k] == port)
			model_remove(k);
}

static bool pool_has(const uint8_t *mac, uint32_t n)
{
	for (uint32_t k = 0; k < n; k++)
		if (!memcmp(m.mac[k], mac, 6))
			return true;
	return false;
}

/* Half random MACs, half MACs whose home slot is one of the two last or
 * two first slots of the table. */
static void pool_fill(uint32_t npool, uint32_t mask)
{
	uint8_t mac[6];
	uint32_t k = 0;

	while (k < npool) {
		uint64_t r = rng();

		memcpy(mac, &r, 6);
		mac[0] = (uint8_t) ((mac[0] & 0xfe) | 0x02); /* local unicast */
		if (k % 2) {
			uint32_t home = hash_copy(mac) & mask;

			if (home < mask - 1 && home > 1)
				continue;
		}
		if (pool_has(mac, k))
			continue;
		memcpy(m.mac[k++], mac, 6);
	}
	m.npool = npool;
}

struct diff_stats {
	uint64_t displaced, wrapped;
};

/* Compare the whole table with the model; count displaced entries. */
static void diff_check(const struct fdb *f, uint64_t now, bool hash_ok,
		       struct diff_stats *st)
{
	uint32_t used = 0;

	assert_int_equal(f->count, m.count);
	assert_int_equal(f->learned, m.learned);
	assert_int_equal(f->moved, m.moved);
	assert_int_equal(f->full, m.full);
	assert_int_equal(f->aged, m.aged);

	for (uint32_t k = 0; k < m.npool; k++) {
		uint32_t g1 = 0, g2 = 0;

		/* As a caller sees it now... */
		assert_int_equal(fdb_lookup(f, m.mac[k], now, &g1),
				 model_lookup(k, now, &g2));
		assert_int_equal(g1, g2);
		/* ...and present-or-not regardless of age: at the time it
		 * was last seen an entry is never expired; at time 0 every
		 * entry is fresh (the clock never reads earlier). */
		if (m.present[k]) {
			assert_int_equal(
			    fdb_lookup(f, m.mac[k], m.seen[k], &g1), m.port[k]);
			assert_int_equal(g1, m.gen[k]);
		} else {
			assert_int_equal(fdb_lookup(f, m.mac[k], 0, NULL), -1);
		}
	}
	/* Every model entry was found at its own slot, and the table holds
	 * exactly as many: no duplicates, no strays. */
	for (uint32_t i = 0; i <= f->mask; i++) {
		if (!f->slot[i].used)
			continue;
		used++;
		if (hash_ok) {
			uint32_t home = hash_copy(f->slot[i].mac) & f->mask;

			st->displaced += home != i;
			st->wrapped += home > i;
		}
	}
	assert_int_equal(used, m.count);
}

static void diff_run(uint32_t max, uint64_t ageing, uint64_t seed, int ops,
		     bool hash_ok, struct diff_stats *st)
{
	struct fdb f;
	uint64_t now = 1;

	assert_int_equal(fdb_init(&f, max, ageing), 0);
	memset(&m, 0, sizeof(m));
	m.max = max;
	m.ageing = ageing;
	rng_state = seed;
	pool_fill(3 * max, f.mask);

	for (int op = 0; op < ops; op++) {
		uint32_t r = rng_below(100);
		uint32_t k = rng_below(m.npool);

		/* Time: mostly small steps, sometimes past the ageing. */
		if (rng_below(50) == 0)
			now += ageing + rng_below(3);
		else
			now += rng_below(4);

		if (r < 55) {
			uint32_t port = rng_below(5), gen = rng_below(2);

			assert_int_equal(
			    fdb_learn(&f, m.mac[k], port, gen, now),
			    model_learn(k, port, gen, now));
		} else if (r < 85) {
			uint32_t g1 = 0, g2 = 0;

			assert_int_equal(fdb_lookup(&f, m.mac[k], now, &g1),
					 model_lookup(k, now, &g2));
			assert_int_equal(g1, g2);
		} else if (r < 93) {
			fdb_age(&f, now);
			model_age(now);
		} else if (r < 97) {
			uint32_t port = rng_below(6);

			fdb_flush_port(&f, port);
			model_flush_port(port);
		} else {
			/* A MAC outside the pool is never known. */
			uint8_t mac[6];
			uint64_t x = rng();

			memcpy(mac, &x, 6);
			mac[0] = 0x03; /* multicast: never in the pool */
			assert_int_equal(fdb_lookup(&f, mac, now, NULL), -1);
		}
		diff_check(&f, now, hash_ok, st);
	}
	fdb_fini(&f);
}

static void test_differential(void **state)
{
	static const struct {
		uint32_t max;
		uint64_t ageing;
	} cfg[] = {
	    {8, 40},   {8, 0},	  {13, 60},  {16, 100}, {16, 0},
	    {32, 150}, {33, 200}, {64, 300}, {64, 0},
	};
	struct diff_stats st = {0};
	bool hash_ok = hash_copy_matches();

	(void) state;
	if (!hash_ok)
		print_message("note: fdb.c's hash differs from the test's "
			      "copy; colliding MACs are not chosen\n");
	for (size_t i = 0; i < sizeof(cfg) / sizeof(cfg[0]); i++)
		for (uint64_t seed = 1; seed <= 3; seed++)
			diff_run(cfg[i].max, cfg[i].ageing,
				 seed * 0x9e3779b97f4a7c15ull + i, 4000,
				 hash_ok, &st);
	/* The run exercised what it is for: entries away from their home
	 * slot, and probe runs wrapping past the end of the array. */
	if (hash_ok) {
		assert_true(st.displaced > 1000);
		assert_true(st.wrapped > 100);
	}
}

/* Learn addresses first..first+n-1 on port (gen) at now: each new. */
static void learn_new(struct fdb *f, uint32_t first, uint32_t n,
		      uint32_t port, uint32_t gen, uint64_t now)
{
	uint8_t mac[6];

	for (uint32_t k = first; k < first + n; k++) {
		mac_of(mac, k);
		assert_int_equal(fdb_learn(f, mac, port, gen, now), 0);
	}
}

/* A port holds at most its share: more new addresses are not learnt, an
 * address moving to a full port is forgotten, removal gives shares back. */
static void test_port_limit(void **state)
{
	uint8_t mac[6];
	struct fdb f;

	(void) state;
	assert_int_equal(fdb_init(&f, 16, AGE), 0);
	assert_int_equal(fdb_set_port_limit(&f, 4, 0), -EINVAL);
	assert_int_equal(fdb_set_port_limit(&f, 4, 17), -EINVAL);
	assert_int_equal(fdb_set_port_limit(&f, 0, 3), -EINVAL);
	assert_int_equal(fdb_set_port_limit(&f, 4, 3), 0);
	learn_new(&f, 0, 3, 0, 1, 10);
	mac_of(mac, 3);
	assert_int_equal(fdb_learn(&f, mac, 0, 1, 10), -EDQUOT);
	assert_int_equal(fdb_lookup(&f, mac, 10, NULL), -1);
	assert_int_equal(f.port_full, 1);
	/* refreshing what it has is fine; other ports are not held back */
	mac_of(mac, 2);
	assert_int_equal(fdb_learn(&f, mac, 0, 1, 11), 0);
	learn_new(&f, 10, 3, 1, 1, 10);
	/* an address of port 1 shows up on full port 0: forgotten */
	mac_of(mac, 10);
	assert_int_equal(fdb_learn(&f, mac, 0, 1, 12), -EDQUOT);
	assert_int_equal(fdb_lookup(&f, mac, 12, NULL), -1);
	assert_int_equal(f.count, 5);
	assert_int_equal(f.port_full, 2);
	/* port 1 has room again (2 of 3): one of port 0's moves there */
	mac_of(mac, 0);
	assert_int_equal(fdb_learn(&f, mac, 1, 1, 13), 1);
	assert_int_equal(fdb_lookup(&f, mac, 13, NULL), 1);
	mac_of(mac, 3);
	assert_int_equal(fdb_learn(&f, mac, 0, 1, 13), 0); /* 0 had room */
	/* flushing and ageing give the shares back */
	fdb_flush_port(&f, 0);
	learn_new(&f, 20, 3, 0, 2, 14);
	fdb_age(&f, 14 + AGE + 1);
	assert_int_equal(f.count, 0);
	for (uint32_t n = 30; n < 33; n++) {
		mac_of(mac, n);
		assert_int_equal(fdb_learn(&f, mac, 0, 2, 2 * AGE), 0);
		assert_int_equal(fdb_learn(&f, mac, 2, 2, 2 * AGE), 1);
	}
	assert_int_equal(f.per_port[0], 0);
	assert_int_equal(f.per_port[2], 3);
	assert_int_equal(used_slots(&f), f.count);
	fdb_fini(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_init),
	    cmocka_unit_test(test_learn_lookup),
	    cmocka_unit_test(test_move),
	    cmocka_unit_test(test_generation),
	    cmocka_unit_test(test_ageing),
	    cmocka_unit_test(test_ageing_disabled),
	    cmocka_unit_test(test_capacity),
	    cmocka_unit_test(test_flush_port),
	    cmocka_unit_test(test_fill_drain),
	    cmocka_unit_test(test_differential),
	    cmocka_unit_test(test_port_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
