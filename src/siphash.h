/* SPDX-License-Identifier: MIT */
/* siphash.h: SipHash-2-4 (Aumasson and Bernstein, 2012), a keyed hash for
 * values a guest must not predict. */
#ifndef PB_SIPHASH_H
#define PB_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* The 64-bit SipHash-2-4 of len bytes at p under the 128-bit key k. */
uint64_t siphash24(const uint64_t k[2], const void *p, size_t len);

#endif
