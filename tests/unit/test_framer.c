// SPDX-License-Identifier: MIT
/* test_framer.c: unit tests for QEMU stream record framing (framer.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "framer.h"
#include "util.h"

/* Append one record (header + len bytes of a pattern seeded by tag). */
static size_t put_record(uint8_t *buf, uint32_t len, uint8_t tag)
{
	put_be32(buf, len);
	for (uint32_t i = 0; i < len; i++)
		buf[FRAMER_HDR + i] = (uint8_t) (tag + i * 7);
	return FRAMER_HDR + len;
}

static void assert_pattern(const uint8_t *frame, uint32_t len, uint8_t tag)
{
	for (uint32_t i = 0; i < len; i++)
		if (frame[i] != (uint8_t) (tag + i * 7))
			fail_msg("byte %u of frame %u is %u", i, (unsigned) tag,
				 (unsigned) frame[i]);
}

static void test_need_header(void **state)
{
	static const uint8_t buf[4] = {0, 0, 0, 60};
	static const uint8_t zero[4] = {0};
	const uint8_t *frame;
	uint32_t flen;
	size_t consumed;

	(void) state;
	for (size_t len = 0; len < FRAMER_HDR; len++)
		assert_int_equal(
		    framer_next(buf, len, &frame, &flen, &consumed), 0);
	/* Also for a header that will turn out invalid. */
	for (size_t len = 0; len < FRAMER_HDR; len++)
		assert_int_equal(
		    framer_next(zero, len, &frame, &flen, &consumed), 0);
	assert_int_equal(framer_next(NULL, 0, &frame, &flen, &consumed), 0);
}

static void test_partial_frame(void **state)
{
	uint8_t buf[FRAMER_HDR + 60 + 8];
	const uint8_t *frame;
	uint32_t flen;
	size_t consumed, len = put_record(buf, 60, 1);

	(void) state;
	for (size_t l = FRAMER_HDR; l < len; l++)
		assert_int_equal(framer_next(buf, l, &frame, &flen, &consumed),
				 0);
	assert_int_equal(framer_next(buf, len, &frame, &flen, &consumed), 1);
	assert_ptr_equal(frame, buf + FRAMER_HDR);
	assert_int_equal(flen, 60);
	assert_int_equal(consumed, FRAMER_HDR + 60);
	assert_pattern(frame, flen, 1);

	/* Bytes of the next record do not change the answer. */
	memset(buf + len, 0xee, sizeof(buf) - len);
	assert_int_equal(
	    framer_next(buf, sizeof(buf), &frame, &flen, &consumed), 1);
	assert_int_equal(flen, 60);
	assert_int_equal(consumed, FRAMER_HDR + 60);
}

static void test_big_endian(void **state)
{
	uint8_t buf[FRAMER_HDR + 0x102] = {0x00, 0x00, 0x01, 0x02};
	const uint8_t *frame;
	uint32_t flen;
	size_t consumed;

	(void) state;
	assert_int_equal(
	    framer_next(buf, sizeof(buf), &frame, &flen, &consumed), 1);
	assert_int_equal(flen, 0x102);
	assert_int_equal(consumed, sizeof(buf));

	/* Read as little-endian this would be 0x02010000: invalid. */
	buf[0] = 0x02;
	buf[1] = 0x01;
	buf[2] = 0x00;
	buf[3] = 0x00;
	assert_int_equal(
	    framer_next(buf, sizeof(buf), &frame, &flen, &consumed), -EPROTO);
	assert_int_equal(flen, 0x02010000);
}

static const uint32_t walk_lens[] = {1, 14, 60, 1514, 3, 9000, 64, 2};
#define NWALK (sizeof(walk_lens) / sizeof(walk_lens[0]))

static size_t build_stream(uint8_t *buf)
{
	size_t off = 0;

	for (size_t i = 0; i < NWALK; i++)
		off += put_record(buf + off, walk_lens[i], (uint8_t) (i * 31));
	return off;
}

static size_t walk_total(void)
{
	size_t total = 0;

	for (size_t i = 0; i < NWALK; i++)
		total += FRAMER_HDR + walk_lens[i];
	return total;
}

static void test_several_frames(void **state)
{
	size_t total = walk_total();
	uint8_t *buf = malloc(total + 2);
	const uint8_t *frame;
	uint32_t flen;
	size_t consumed, off = 0;

	(void) state;
	assert_non_null(buf);
	assert_int_equal(build_stream(buf), total);
	/* The start of a further record: two bytes of its header. */
	buf[total] = 0;
	buf[total + 1] = 0;

	for (size_t i = 0; i < NWALK; i++) {
		assert_int_equal(framer_next(buf + off, total + 2 - off, &frame,
					     &flen, &consumed),
				 1);
		assert_ptr_equal(frame, buf + off + FRAMER_HDR);
		assert_int_equal(flen, walk_lens[i]);
		assert_int_equal(consumed, FRAMER_HDR + walk_lens[i]);
		assert_pattern(frame, flen, (uint8_t) (i * 31));
		off += consumed;
	}
	assert_int_equal(off, total);
	assert_int_equal(framer_next(buf + off, 2, &frame, &flen, &consumed),
			 0);
	assert_int_equal(framer_next(buf + off, 0, &frame, &flen, &consumed),
			 0);
	free(buf);
}

/*
 * A stream arriving in pieces: offer the framer a growing prefix of the
 * bytes and check that each record completes exactly when its last byte
 * arrives, never earlier.
 */
static void test_split_growing(void **state)
{
	size_t total = walk_total();
	uint8_t *buf = malloc(total);
	const uint8_t *frame;
	uint32_t flen;
	size_t consumed, off = 0, done = 0;

	(void) state;
	assert_non_null(buf);
	build_stream(buf);
	for (size_t have = 0; have <= total; have++) {
		int rc;

		/* Consume every record complete in buf[off..have). */
		while ((rc = framer_next(buf + off, have - off, &frame, &flen,
					 &consumed)) == 1) {
			assert_true(done < NWALK);
			assert_int_equal(flen, walk_lens[done]);
			assert_int_equal(off + consumed, have);
			assert_pattern(frame, flen, (uint8_t) (done * 31));
			off += consumed;
			done++;
		}
		assert_int_equal(rc, 0);
		/* The next record is not complete yet. */
		if (done < NWALK)
			assert_true(have < off + FRAMER_HDR + walk_lens[done]);
	}
	assert_int_equal(done, NWALK);
	assert_int_equal(off, total);
	free(buf);
}

/*
 * The same stream through a receive buffer the way a reader would use it:
 * random-sized reads appended, complete records consumed, the remainder
 * moved to the front.  Fixed seed, several rounds.
 */
static void test_split_random_reads(void **state)
{
	size_t total = walk_total();
	uint8_t *stream = malloc(total);
	uint8_t *rx = malloc(total);
	unsigned seed = 12345;

	(void) state;
	assert_non_null(stream);
	assert_non_null(rx);
	build_stream(stream);
	for (int round = 0; round < 200; round++) {
		size_t sent = 0, fill = 0, done = 0;

		while (sent < total) {
			const uint8_t *frame;
			uint32_t flen;
			size_t consumed, used = 0, chunk;
			int rc;

			seed = seed * 1103515245u + 12345u;
			chunk = 1 + (seed >> 8) % (round % 2 ? 7 : 3000);
			chunk = MIN(chunk, total - sent);
			memcpy(rx + fill, stream + sent, chunk);
			sent += chunk;
			fill += chunk;
			while ((rc = framer_next(rx + used, fill - used, &frame,
						 &flen, &consumed)) == 1) {
				assert_true(done < NWALK);
				assert_int_equal(flen, walk_lens[done]);
				assert_pattern(frame, flen,
					       (uint8_t) (done * 31));
				used += consumed;
				done++;
			}
			assert_int_equal(rc, 0);
			memmove(rx, rx + used, fill - used);
			fill -= used;
		}
		assert_int_equal(done, NWALK);
		assert_int_equal(fill, 0);
	}
	free(rx);
	free(stream);
}

static void test_length_zero(void **state)
{
	uint8_t buf[FRAMER_HDR + 16] = {0};
	const uint8_t *frame;
	uint32_t flen = 12345;
	size_t consumed;

	(void) state;
	/* Rejected at once, without waiting for more bytes. */
	assert_int_equal(framer_next(buf, FRAMER_HDR, &frame, &flen, &consumed),
			 -EPROTO);
	assert_int_equal(flen, 0);
	assert_int_equal(
	    framer_next(buf, sizeof(buf), &frame, &flen, &consumed), -EPROTO);
	assert_int_equal(flen, 0);
}

static void test_length_max(void **state)
{
	uint8_t *buf = malloc(FRAMER_HDR + FRAME_MAX);
	const uint8_t *frame;
	uint32_t flen;
	size_t consumed;

	(void) state;
	assert_non_null(buf);
	put_record(buf, FRAME_MAX, 5);
	assert_int_equal(framer_next(buf, FRAMER_HDR, &frame, &flen, &consumed),
			 0);
	assert_int_equal(framer_next(buf, FRAMER_HDR + FRAME_MAX - 1, &frame,
				     &flen, &consumed),
			 0);
	assert_int_equal(
	    framer_next(buf, FRAMER_HDR + FRAME_MAX, &frame, &flen, &consumed),
	    1);
	assert_ptr_equal(frame, buf + FRAMER_HDR);
	assert_int_equal(flen, FRAME_MAX);
	assert_int_equal(consumed, FRAMER_HDR + FRAME_MAX);
	assert_pattern(frame, flen, 5);
	free(buf);
}

static void test_length_too_big(void **state)
{
	static const uint32_t bad[] = {FRAME_MAX + 1, 0x10000000u, 0x7fffffffu,
				       0x80000000u, 0xffffffffu};
	uint8_t buf[FRAMER_HDR + 64];
	const uint8_t *frame;
	uint32_t flen;
	size_t consumed;

	(void) state;
	memset(buf, 0xab, sizeof(buf));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		put_be32(buf, bad[i]);
		flen = 0;
		/* Rejected from the header alone. */
		assert_int_equal(
		    framer_next(buf, FRAMER_HDR, &frame, &flen, &consumed),
		    -EPROTO);
		assert_int_equal(flen, bad[i]);
		flen = 0;
		assert_int_equal(
		    framer_next(buf, sizeof(buf), &frame, &flen, &consumed),
		    -EPROTO);
		assert_int_equal(flen, bad[i]);
	}
}

/* A bad record after good ones is found once the walk reaches it. */
static void test_bad_after_good(void **state)
{
	uint8_t buf[2 * (FRAMER_HDR + 60) + FRAMER_HDR];
	const uint8_t *frame;
	uint32_t flen;
	size_t consumed, off = 0;

	(void) state;
	off += put_record(buf, 60, 1);
	off += put_record(buf + off, 60, 2);
	put_be32(buf + off, 0);
	off = 0;
	for (int i = 0; i < 2; i++) {
		assert_int_equal(framer_next(buf + off, sizeof(buf) - off,
					     &frame, &flen, &consumed),
				 1);
		off += consumed;
	}
	assert_int_equal(
	    framer_next(buf + off, sizeof(buf) - off, &frame, &flen, &consumed),
	    -EPROTO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_need_header),
	    cmocka_unit_test(test_partial_frame),
	    cmocka_unit_test(test_big_endian),
	    cmocka_unit_test(test_several_frames),
	    cmocka_unit_test(test_split_growing),
	    cmocka_unit_test(test_split_random_reads),
	    cmocka_unit_test(test_length_zero),
	    cmocka_unit_test(test_length_max),
	    cmocka_unit_test(test_length_too_big),
	    cmocka_unit_test(test_bad_after_good),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
