/* SPDX-License-Identifier: MIT */
/* csum.h: the Internet checksum (RFC 1071), with IPv4 pseudo-headers. */
#ifndef PB_CSUM_H
#define PB_CSUM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Add len bytes at p to a 32-bit partial sum (big-endian 16-bit words). */
static inline uint32_t csum_add(uint32_t sum, const void *p, size_t len)
{
	const uint8_t *b = (const uint8_t *)p;
	uint64_t acc = sum;

	while (len >= 8) {
		uint32_t w[2];

		memcpy(w, b, 8);
		acc += (uint64_t)w[0] + w[1];
		b += 8;
		len -= 8;
	}
	/* acc now holds native-order 32-bit words; fold below handles the
	 * byte order by working on the final 16-bit value. */
	while (len >= 2) {
		uint16_t h;

		memcpy(&h, b, 2);
		acc += h;
		b += 2;
		len -= 2;
	}
	if (len) {
		uint16_t h = 0;

		memcpy(&h, b, 1);
		acc += h;
	}
	while (acc >> 32)
		acc = (acc & 0xffffffffu) + (acc >> 32);
	return (uint32_t)acc;
}

/* Fold to 16 bits and complement; result in network byte order as a
 * native uint16_t ready to memcpy into a header. */
static inline uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* Partial sum of the IPv4 pseudo-header (addresses in network order). */
static inline uint32_t csum_pseudo4(uint32_t saddr_be, uint32_t daddr_be,
				    uint8_t proto, uint16_t len)
{
	uint8_t ph[12];

	memcpy(ph, &saddr_be, 4);
	memcpy(ph + 4, &daddr_be, 4);
	ph[8] = 0;
	ph[9] = proto;
	ph[10] = (uint8_t)(len >> 8);
	ph[11] = (uint8_t)len;
	return csum_add(0, ph, 12);
}

/* Partial sum of the IPv6 pseudo-header (RFC 8200 8.1): addresses of 16
 * bytes each (anywhere in memory), upper-layer length and next header. */
static inline uint32_t csum_pseudo6(const void *saddr, const void *daddr,
				    uint8_t nh, uint32_t len)
{
	uint8_t tail[8] = { (uint8_t)(len >> 24), (uint8_t)(len >> 16),
			    (uint8_t)(len >> 8), (uint8_t)len, 0, 0, 0, nh };

	return csum_add(csum_add(csum_add(0, saddr, 16), daddr, 16), tail, 8);
}

/*
 * Is a received checksum good (the folded sum over the data including the
 * checksum field is 0)?  Fuzzing builds (-DPB_FUZZING) accept every
 * checksum, so that the fuzzer reaches the code behind the checks.
 */
static inline int csum_bad(uint16_t folded)
{
#ifdef PB_FUZZING
	(void)folded;
	return 0;
#else
	return folded != 0;
#endif
}

#endif
