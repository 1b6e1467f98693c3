/* SPDX-License-Identifier: MIT */
/* util.h: small helpers shared by every module (no state). */
#ifndef PB_UTIL_H
#define PB_UTIL_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define UNUSED(x) ((void)(x))

#define NS_PER_SEC 1000000000ULL
#define NS_PER_MS 1000000ULL

/* Largest Ethernet frame any backend carries: 65535-byte IP datagram plus an
 * Ethernet header and a VLAN tag, rounded as QEMU does (NET_BUFSIZE). */
#define FRAME_MAX 65550
#define ETH_HLEN_MIN 14

/* Copy a string into a fixed buffer, always NUL-terminated, truncating. */
static inline void str_copy(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);

	if (size == 0)
		return;
	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static inline uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static inline void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

#endif
