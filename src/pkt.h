/* SPDX-License-Identifier: MIT */
/* pkt.h: the bounds-checked cursor, the only way code reads frame bytes. */
#ifndef PB_PKT_H
#define PB_PKT_H

/*
 * A cursor is a window (p, rem) over untrusted bytes.  Every read goes
 * through cur_pull()/cur_peek() or the typed getters, which fail (NULL or
 * false) instead of reading past the end; a failed read leaves the cursor
 * unchanged.  Parsers walk a cursor and bail out with "goto too_short".
 * Order of checks for a header with a length field: the fixed header fits ->
 * the claimed length fits what remains -> cur_trim() to the claimed length.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cursor {
	const uint8_t *p;
	size_t rem;
};

static inline struct cursor cur_init(const void *p, size_t len)
{
	struct cursor c = { .p = (const uint8_t *)p, .rem = len };

	return c;
}

static inline const void *cur_peek(const struct cursor *c, size_t n)
{
	return n <= c->rem ? c->p : NULL;
}

static inline const void *cur_pull(struct cursor *c, size_t n)
{
	const uint8_t *r = (const uint8_t *)cur_peek(c, n);

	if (r) {
		c->p += n;
		c->rem -= n;
	}
	return r;
}

/* Shrink the window to its first len bytes; false if fewer remain. */
static inline bool cur_trim(struct cursor *c, size_t len)
{
	if (len > c->rem)
		return false;
	c->rem = len;
	return true;
}

static inline bool cur_u8(struct cursor *c, uint8_t *v)
{
	const uint8_t *p = (const uint8_t *)cur_pull(c, 1);

	if (!p)
		return false;
	*v = p[0];
	return true;
}

static inline bool cur_be16(struct cursor *c, uint16_t *v)
{
	const uint8_t *p = (const uint8_t *)cur_pull(c, 2);

	if (!p)
		return false;
	*v = (uint16_t)(p[0] << 8 | p[1]);
	return true;
}

static inline bool cur_be32(struct cursor *c, uint32_t *v)
{
	const uint8_t *p = (const uint8_t *)cur_pull(c, 4);

	if (!p)
		return false;
	*v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	     (uint32_t)p[2] << 8 | p[3];
	return true;
}

/* Ethernet: the 14-byte header of a frame. */
#define ETH_ALEN 6

struct eth_view {
	const uint8_t *dst;
	const uint8_t *src;
	uint16_t type;
};

static inline bool eth_parse(struct cursor *c, struct eth_view *e)
{
	struct cursor t = *c;

	e->dst = (const uint8_t *)cur_pull(&t, ETH_ALEN);
	e->src = (const uint8_t *)cur_pull(&t, ETH_ALEN);
	if (!e->dst || !e->src || !cur_be16(&t, &e->type))
		return false;
	*c = t;
	return true;
}

static inline bool mac_is_multicast(const uint8_t *mac)
{
	return mac[0] & 1;
}

#endif
