// SPDX-License-Identifier: MIT
/* test_siphash.c: SipHash-2-4 against the paper's test vector. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "siphash.h"

/* Appendix A of the SipHash paper: key 00..0f, message 00..0e. */
static void test_paper_vector(void **state)
{
	uint64_t k[2] = { 0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull };
	uint8_t m[15];

	(void)state;
	for (int i = 0; i < 15; i++)
		m[i] = (uint8_t)i;
	assert_true(siphash24(k, m, 15) == 0xa129ca6149be45e5ull);
}

/* Every length from 0 to 63 hashes, and a one-bit change changes it. */
static void test_lengths(void **state)
{
	uint64_t k[2] = { 1, 2 };
	uint8_t m[64] = { 0 };

	(void)state;
	for (size_t n = 1; n < sizeof(m); n++) {
		uint64_t a = siphash24(k, m, n);

		m[n - 1] ^= 1;
		assert_true(siphash24(k, m, n) != a);
		m[n - 1] ^= 1;
		assert_true(siphash24(k, m, n) != siphash24(k, m, n - 1));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_paper_vector),
		cmocka_unit_test(test_lengths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
