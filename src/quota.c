// SPDX-License-Identifier: MIT
/* quota.c: per-key counters with a cap, for tables guests share. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "quota.h"

int quota_init(struct quota *q, uint32_t cap, uint32_t limit)
{
	uint32_t nb = 16;

	memset(q, 0, sizeof(*q));
	if (cap == 0 || limit == 0 || cap > (1u << 24))
		return -EINVAL;
	while (nb < cap)
		nb <<= 1;
	q->e = calloc(cap, sizeof(*q->e));
	q->bucket = malloc(nb * sizeof(*q->bucket));
	if (!q->e || !q->bucket) {
		quota_fini(q);
		return -ENOMEM;
	}
	memset(q->bucket, 0xff, nb * sizeof(*q->bucket));
	q->mask = nb - 1;
	q->cap = cap;
	q->limit = limit;
	for (uint32_t i = 0; i < cap; i++)
		q->e[i].next = i + 1 < cap ? i + 1 : QUOTA_NONE;
	q->seed = (uint64_t)arc4random() << 32 | arc4random();
	return 0;
}

void quota_fini(struct quota *q)
{
	free(q->e);
	free(q->bucket);
	q->e = NULL;
	q->bucket = NULL;
}

static void quota_key(uint8_t *out, const void *key, size_t len)
{
	memset(out, 0, QUOTA_KEY_MAX);
	memcpy(out, key, len < QUOTA_KEY_MAX ? len : QUOTA_KEY_MAX);
}

static uint32_t quota_hash(const struct quota *q, const uint8_t *k)
{
	uint64_t a, b, h;

	memcpy(&a, k, 8);
	memcpy(&b, k + 8, 8);
	h = (a ^ q->seed) * 0x9e3779b97f4a7c15ull;
	h ^= (b + (q->seed >> 7)) * 0xc2b2ae3d27d4eb4full;
	return (uint32_t)(h ^ (h >> 31) ^ (h >> 47)) & q->mask;
}

static uint32_t quota_find(const struct quota *q, const uint8_t *k)
{
	uint32_t i;

	for (i = q->bucket[quota_hash(q, k)]; i != QUOTA_NONE; i = q->e[i].next)
		if (!memcmp(q->e[i].key, k, QUOTA_KEY_MAX))
			break;
	return i;
}

uint32_t quota_take(struct quota *q, const void *key, size_t len)
{
	uint8_t k[QUOTA_KEY_MAX];
	uint32_t i, b;

	quota_key(k, key, len);
	i = quota_find(q, k);
	if (i != QUOTA_NONE) {
		if (q->e[i].count >= q->limit)
			return QUOTA_NONE;
		q->e[i].count++;
		return i;
	}
	i = q->free_head;
	if (i == QUOTA_NONE)
		return QUOTA_NONE;
	q->free_head = q->e[i].next;
	memcpy(q->e[i].key, k, QUOTA_KEY_MAX);
	q->e[i].count = 1;
	b = quota_hash(q, k);
	q->e[i].next = q->bucket[b];
	q->bucket[b] = i;
	q->keys++;
	return i;
}

void quota_put(struct quota *q, uint32_t handle)
{
	struct quota_ent *e;
	uint32_t *pp;

	if (handle >= q->cap || !q->e[handle].count)
		return;
	e = &q->e[handle];
	if (--e->count)
		return;
	pp = &q->bucket[quota_hash(q, e->key)];
	while (*pp != QUOTA_NONE && *pp != handle)
		pp = &q->e[*pp].next;
	if (*pp == handle)
		*pp = e->next;
	e->next = q->free_head;
	q->free_head = handle;
	q->keys--;
}

uint32_t quota_count(const struct quota *q, const void *key, size_t len)
{
	uint8_t k[QUOTA_KEY_MAX];
	uint32_t i;

	quota_key(k, key, len);
	i = quota_find(q, k);
	return i == QUOTA_NONE ? 0 : q->e[i].count;
}
