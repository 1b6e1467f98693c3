// SPDX-License-Identifier: MIT
/* flow.c: fixed-capacity flow table with index handles. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "flow.h"
#include "util.h"

void flow_limits_default(struct flow_limits *lim)
{
	if (!lim->per_guest)
		lim->per_guest = MAX(lim->max / 4, 1u);
	if (!lim->udp)
		lim->udp = MAX(lim->max / 2, 1u);
	if (!lim->half_open)
		lim->half_open = MAX(lim->max / 2, 1u);
	if (!lim->half_open_per_guest)
		lim->half_open_per_guest = MAX(lim->half_open / 4, 1u);
}

int flow_table_init(struct flow_table *t, const struct flow_limits *lim)
{
	uint32_t nb = 16, cap = lim->max;
	int rc;

	memset(t, 0, sizeof(*t));
	t->lim = *lim;
	flow_limits_default(&t->lim);
	if (cap == 0 || cap > (1u << 22) || t->lim.per_guest > cap ||
	    t->lim.udp > cap || t->lim.half_open > cap)
		return -EINVAL;
	while (nb < cap)
		nb <<= 1;
	t->f = calloc(cap, sizeof(*t->f));
	t->bucket = malloc(nb * sizeof(*t->bucket));
	t->lq = malloc(cap * sizeof(*t->lq));
	rc = quota_init(&t->guests, cap, t->lim.per_guest);
	if (!rc)
		rc = quota_init(&t->half_guests, cap, t->lim.half_open_per_guest);
	if (!t->f || !t->bucket || !t->lq || rc) {
		flow_table_fini(t);
		return -ENOMEM;
	}
	memset(t->bucket, 0xff, nb * sizeof(*t->bucket));
	t->mask = nb - 1;
	t->cap = cap;
	/* free list in ascending order, so low slots are used first */
	for (uint32_t i = 0; i < cap; i++) {
		t->f[i].hnext = i + 1 < cap ? i + 1 : FLOW_NONE;
		t->f[i].fd = -1;
	}
	t->free_head = 0;
	return 0;
}

void flow_table_fini(struct flow_table *t)
{
	free(t->f);
	free(t->bucket);
	free(t->lq);
	quota_fini(&t->guests);
	quota_fini(&t->half_guests);
	t->f = NULL;
	t->bucket = NULL;
	t->lq = NULL;
}

static uint32_t flow_hash(const struct flow_key *k)
{
	/* Mix the fields with odd multipliers; the guest controls them, but
	 * chains only cost time, and the table size caps them. */
	uint64_t h = (uint64_t)k->gip * 0x9e3779b97f4a7c15ull;

	h ^= (uint64_t)k->rip * 0xc2b2ae3d27d4eb4full;
	h ^= ((uint64_t)k->gport << 24 | (uint64_t)k->rport << 8 | k->proto) *
	     0x165667b19e3779f9ull;
	if (k->v6) {
		uint64_t a, b;

		memcpy(&a, k->gip6.s6_addr + 8, 8);
		memcpy(&b, k->rip6.s6_addr + 8, 8);
		h ^= (a * 0x9e3779b97f4a7c15ull) ^ (b * 0xc2b2ae3d27d4eb4full);
	}
	return (uint32_t)(h ^ (h >> 29) ^ (h >> 47));
}

static bool key_eq(const struct flow_key *a, const struct flow_key *b)
{
	return a->gip == b->gip && a->rip == b->rip && a->gport == b->gport &&
	       a->rport == b->rport && a->proto == b->proto && a->v6 == b->v6 &&
	       (!a->v6 || (!memcmp(&a->gip6, &b->gip6, 16) &&
			   !memcmp(&a->rip6, &b->rip6, 16)));
}

struct flow *flow_lookup(const struct flow_table *t, const struct flow_key *k)
{
	for (uint32_t i = t->bucket[flow_hash(k) & t->mask]; i != FLOW_NONE;
	     i = t->f[i].hnext)
		if (key_eq(&t->f[i].k, k))
			return &t->f[i];
	return NULL;
}

struct flow *flow_alloc(struct flow_table *t, const struct flow_key *k,
			const uint8_t *mac, enum flow_limit *why)
{
	uint32_t i = t->free_head, b, guest = QUOTA_NONE;
	bool udp = k->proto == IPPROTO_UDP;
	struct flow *f;
	uint16_t gen;

	*why = FLOW_LIMIT_TOTAL;
	if (i == FLOW_NONE)
		return NULL;
	*why = FLOW_LIMIT_UDP;
	if (udp && t->udp >= t->lim.udp)
		return NULL;
	*why = FLOW_LIMIT_GUEST;
	if (mac && (guest = quota_take(&t->guests, mac, 6)) == QUOTA_NONE)
		return NULL;
	f = &t->f[i];
	t->free_head = f->hnext;
	gen = (uint16_t)(f->gen + 1);
	memset(f, 0, sizeof(*f));
	f->gen = gen;
	f->used = true;
	f->k = *k;
	f->fd = -1;
	f->hostfwd = -1;
	f->guest = guest;
	t->udp += udp;
	b = flow_hash(k) & t->mask;
	f->hnext = t->bucket[b];
	t->bucket[b] = i;
	t->count++;
	if (i + 1 > t->high)
		t->high = i + 1;
	return f;
}

void flow_free(struct flow_table *t, struct flow *f)
{
	uint32_t i = flow_index(t, f);
	uint32_t *pp = &t->bucket[flow_hash(&f->k) & t->mask];

	while (*pp != FLOW_NONE && *pp != i)
		pp = &t->f[*pp].hnext;
	if (*pp == i)
		*pp = f->hnext;
	quota_put(&t->guests, f->guest);
	f->guest = QUOTA_NONE;
	t->udp -= f->k.proto == IPPROTO_UDP;
	flow_set_half_open(t, f, false);
	f->used = false;
	f->fd = -1;
	f->hnext = t->free_head;
	t->free_head = i;
	t->count--;
	while (t->high && !t->f[t->high - 1].used)
		t->high--;
}

#define LINGER_SCAN 256	/* entries one flow_linger_take() looks at */

void flow_linger_add(struct flow_table *t, struct flow *f)
{
	if (t->lq_len == t->cap) {	/* stale entries filled it */
		t->lq_head = (t->lq_head + 1) % t->cap;
		t->lq_len--;
	}
	t->lq[(t->lq_head + t->lq_len) % t->cap].idx = flow_index(t, f);
	t->lq[(t->lq_head + t->lq_len) % t->cap].gen = f->gen;
	t->lq_len++;
	f->lingering = true;
}

struct flow *flow_linger_take(struct flow_table *t, const uint8_t *mac)
{
	for (uint32_t k = 0; k < t->lq_len && k < LINGER_SCAN; k++) {
		uint32_t at = (t->lq_head + k) % t->cap;
		struct flow *f = &t->f[t->lq[at].idx];
		bool live = f->used && f->gen == t->lq[at].gen && f->lingering;

		if (!live || !mac ||
		    (f->guest != QUOTA_NONE &&
		     !memcmp(t->guests.e[f->guest].key, mac, 6))) {
			/* the head is done with either way; one further in
			 * stays behind as a stale entry */
			if (k == 0) {
				t->lq_head = (t->lq_head + 1) % t->cap;
				t->lq_len--;
				k--;
			}
			if (live)
				return f;
		}
	}
	return NULL;
}

bool flow_set_half_open(struct flow_table *t, struct flow *f, bool on)
{
	if (f->half_open == on)
		return true;
	if (on) {
		f->half_guest = QUOTA_NONE;
		if (f->guest != QUOTA_NONE) {
			f->half_guest = quota_take(&t->half_guests,
						   t->guests.e[f->guest].key, 6);
			if (f->half_guest == QUOTA_NONE)
				return false;
		}
		t->half_open++;
	} else {
		quota_put(&t->half_guests, f->half_guest);
		f->half_guest = QUOTA_NONE;
		t->half_open--;
	}
	f->half_open = on;
	return true;
}
