// SPDX-License-Identifier: MIT
/* test_limits.c: unit tests of the shares of bounded tables: quota.c, and
 * the flow table's per-guest, UDP and half-open limits (flow.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "flow.h"
#include "quota.h"

static const uint8_t mac_a[6] = { 0x52, 0x54, 0, 0, 0, 0xa };
static const uint8_t mac_b[6] = { 0x52, 0x54, 0, 0, 0, 0xb };

/* A quota: each key up to its limit; keys come and go with their count;
 * no more than cap keys, and handles come back on put. */
static void test_quota(void **state)
{
	struct quota q;
	uint32_t ha[3], hb, hc;
	uint32_t ka = 1, kb = 2, kc = 3, kd = 4;

	(void)state;
	assert_int_equal(quota_init(&q, 0, 1), -EINVAL);
	assert_int_equal(quota_init(&q, 4, 0), -EINVAL);
	assert_int_equal(quota_init(&q, 3, 2), 0);
	ha[0] = quota_take(&q, &ka, sizeof(ka));
	ha[1] = quota_take(&q, &ka, sizeof(ka));
	assert_int_not_equal(ha[0], QUOTA_NONE);
	assert_int_equal(ha[0], ha[1]);
	assert_int_equal(quota_take(&q, &ka, sizeof(ka)), QUOTA_NONE);
	assert_int_equal(quota_count(&q, &ka, sizeof(ka)), 2);
	hb = quota_take(&q, &kb, sizeof(kb));
	hc = quota_take(&q, &kc, sizeof(kc));
	assert_int_not_equal(hb, QUOTA_NONE);
	assert_int_not_equal(hc, QUOTA_NONE);
	assert_int_equal(q.keys, 3);
	/* a fourth key finds no counter (misuse: more keys than cap) */
	assert_int_equal(quota_take(&q, &kd, sizeof(kd)), QUOTA_NONE);
	quota_put(&q, hb);
	assert_int_equal(q.keys, 2);
	assert_int_equal(quota_count(&q, &kb, sizeof(kb)), 0);
	assert_int_not_equal(quota_take(&q, &kd, sizeof(kd)), QUOTA_NONE);
	/* a again below its limit */
	quota_put(&q, ha[0]);
	assert_int_equal(quota_count(&q, &ka, sizeof(ka)), 1);
	ha[2] = quota_take(&q, &ka, sizeof(ka));
	assert_int_equal(ha[2], ha[0]);
	quota_put(&q, QUOTA_NONE);	/* ignored */
	quota_fini(&q);
}

/* A differential check against a naive count: many keys (short keys
 * padded, 16-byte keys) taken and put in a fixed pseudo-random order. */
static void test_quota_model(void **state)
{
	enum { CAP = 64, KEYS = 80, LIMIT = 3, STEPS = 20000 };
	struct quota q;
	unsigned model[KEYS] = { 0 }, keys = 0;
	uint32_t handle[KEYS], x = 12345;

	(void)state;
	assert_int_equal(quota_init(&q, CAP, LIMIT), 0);
	for (unsigned step = 0; step < STEPS; step++) {
		uint8_t key[16] = { 0 };
		unsigned k;
		size_t klen;

		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		k = x % KEYS;
		key[0] = (uint8_t)k;
		key[15] = (uint8_t)(k * 7);
		klen = k % 2 ? 16 : 6;	/* 6: key[15] is padding, ignored */
		if (klen == 6)
			key[15] = 0;
		if ((x >> 8) % 3) {
			uint32_t h = quota_take(&q, key, klen);
			bool ok = model[k] < LIMIT &&
				  (model[k] || keys < CAP);

			assert_int_equal(h != QUOTA_NONE, ok);
			if (ok) {
				keys += !model[k];
				model[k]++;
				handle[k] = h;
			}
		} else if (model[k]) {
			quota_put(&q, handle[k]);
			model[k]--;
			keys -= !model[k];
		}
		assert_int_equal(quota_count(&q, key, klen), model[k]);
		assert_int_equal(q.keys, keys);
	}
	quota_fini(&q);
}

static struct flow_key key_of(uint8_t proto, uint16_t gport)
{
	struct flow_key k = { .gip = 0x0f02000a, .rip = 0x0202000a,
			      .gport = gport, .rport = 80, .proto = proto };

	return k;
}

/* Defaults: a quarter of the table per guest, half for UDP and for
 * half-open connections; explicit limits above max are refused. */
static void test_flow_defaults(void **state)
{
	struct flow_limits lim = { .max = 64 };
	struct flow_table t;

	(void)state;
	flow_limits_default(&lim);
	assert_int_equal(lim.per_guest, 16);
	assert_int_equal(lim.udp, 32);
	assert_int_equal(lim.half_open, 32);
	lim = (struct flow_limits){ .max = 16, .per_guest = 17 };
	assert_int_equal(flow_table_init(&t, &lim), -EINVAL);
	lim = (struct flow_limits){ .max = 0 };
	assert_int_equal(flow_table_init(&t, &lim), -EINVAL);
}

/*
 * Per guest: guest A gets its share and no more (FLOW_LIMIT_GUEST), guest B
 * still gets flows, host-side flows (no MAC) are charged to nobody; the
 * table's capacity refuses last (FLOW_LIMIT_TOTAL).  Freeing one of A's
 * flows gives A room again.
 */
static void test_flow_per_guest(void **state)
{
	struct flow_limits lim = { .max = 8, .per_guest = 3 };
	struct flow *fa[3], *f;
	struct flow_table t;
	enum flow_limit why;
	struct flow_key k;
	uint16_t port = 1000;

	(void)state;
	assert_int_equal(flow_table_init(&t, &lim), 0);
	for (int i = 0; i < 3; i++) {
		k = key_of(IPPROTO_TCP, port++);
		fa[i] = flow_alloc(&t, &k, mac_a, &why);
		assert_non_null(fa[i]);
	}
	k = key_of(IPPROTO_TCP, port++);
	assert_null(flow_alloc(&t, &k, mac_a, &why));
	assert_int_equal(why, FLOW_LIMIT_GUEST);
	assert_null(flow_lookup(&t, &k));
	assert_int_equal(t.count, 3);
	/* B is not held back */
	for (int i = 0; i < 3; i++) {
		k = key_of(IPPROTO_TCP, port++);
		assert_non_null(flow_alloc(&t, &k, mac_b, &why));
	}
	assert_int_equal(t.guests.keys, 2);
	/* the host side fills the rest */
	k = key_of(IPPROTO_TCP, port++);
	assert_non_null(flow_alloc(&t, &k, NULL, &why));
	k = key_of(IPPROTO_TCP, port++);
	assert_non_null(f = flow_alloc(&t, &k, NULL, &why));
	k = key_of(IPPROTO_TCP, port++);
	assert_null(flow_alloc(&t, &k, NULL, &why));
	assert_int_equal(why, FLOW_LIMIT_TOTAL);
	/* A frees one: A may open one again (once the table has room) */
	flow_free(&t, f);
	flow_free(&t, fa[1]);
	k = key_of(IPPROTO_TCP, port++);
	assert_non_null(flow_alloc(&t, &k, mac_a, &why));
	k = key_of(IPPROTO_TCP, port++);
	assert_null(flow_alloc(&t, &k, mac_a, &why));
	assert_int_equal(why, FLOW_LIMIT_GUEST);
	/* everything freed: no guest counter left behind */
	for (uint32_t i = 0; i < t.high; i++)
		if (t.f[i].used)
			flow_free(&t, &t.f[i]);
	assert_int_equal(t.count, 0);
	assert_int_equal(t.guests.keys, 0);
	assert_int_equal(t.udp, 0);
	flow_table_fini(&t);
}

/* UDP flows together stay below their limit; TCP still fits. */
/* Lingering flows give way oldest first, to their own guest only when the
 * guest's share is what is full; freed or reused entries are skipped. */
static void test_flow_linger_take(void **state)
{
	struct flow_limits lim = { .max = 8, .per_guest = 4 };
	struct flow *a[4], *b[4];
	struct flow_table t;
	enum flow_limit why;
	struct flow_key k;
	uint16_t port = 2000;

	(void)state;
	assert_int_equal(flow_table_init(&t, &lim), 0);
	for (int i = 0; i < 4; i++) {
		k = key_of(IPPROTO_TCP, port++);
		assert_non_null(a[i] = flow_alloc(&t, &k, mac_a, &why));
		k = key_of(IPPROTO_TCP, port++);
		assert_non_null(b[i] = flow_alloc(&t, &k, mac_b, &why));
	}
	assert_null(flow_linger_take(&t, NULL));
	flow_linger_add(&t, b[0]);
	flow_linger_add(&t, a[1]);
	flow_linger_add(&t, a[0]);
	flow_linger_add(&t, a[2]);
	/* any guest: the oldest */
	assert_ptr_equal(flow_linger_take(&t, NULL), b[0]);
	flow_free(&t, b[0]);
	/* A's share: A's oldest, then the next (a[1] freed meanwhile) */
	assert_ptr_equal(flow_linger_take(&t, mac_a), a[1]);
	flow_free(&t, a[0]);
	assert_ptr_equal(flow_linger_take(&t, mac_a), a[2]);
	/* B has none lingering */
	assert_null(flow_linger_take(&t, mac_b));
	flow_free(&t, a[2]);
	assert_null(flow_linger_take(&t, NULL));
	assert_int_equal(t.lq_len, 0);
	flow_table_fini(&t);
}

/* One guest holds at most its share of half-open connections; another
 * guest (and the host side) is not held back by it. */
static void test_flow_half_open_per_guest(void **state)
{
	struct flow_limits lim = { .max = 16, .half_open = 8,
				   .half_open_per_guest = 2 };
	struct flow_table t;
	enum flow_limit why;
	struct flow_key k;
	struct flow *a[3], *b, *h;
	uint16_t port = 3000;

	(void)state;
	assert_int_equal(flow_table_init(&t, &lim), 0);
	for (int i = 0; i < 3; i++) {
		k = key_of(IPPROTO_TCP, port++);
		assert_non_null(a[i] = flow_alloc(&t, &k, mac_a, &why));
	}
	assert_true(flow_set_half_open(&t, a[0], true));
	assert_true(flow_set_half_open(&t, a[1], true));
	assert_false(flow_set_half_open(&t, a[2], true));
	assert_false(a[2]->half_open);
	assert_int_equal(t.half_open, 2);
	k = key_of(IPPROTO_TCP, port++);
	assert_non_null(b = flow_alloc(&t, &k, mac_b, &why));
	assert_true(flow_set_half_open(&t, b, true));
	k = key_of(IPPROTO_TCP, port++);
	assert_non_null(h = flow_alloc(&t, &k, NULL, &why));
	assert_true(flow_set_half_open(&t, h, true));
	/* a handshake completes: A may start another */
	assert_true(flow_set_half_open(&t, a[0], false));
	assert_true(flow_set_half_open(&t, a[2], true));
	flow_free(&t, a[1]);	/* given up: its share comes back too */
	k = key_of(IPPROTO_TCP, port++);
	assert_non_null(a[1] = flow_alloc(&t, &k, mac_a, &why));
	assert_true(flow_set_half_open(&t, a[1], true));
	for (uint32_t i = 0; i < t.high; i++)
		if (t.f[i].used)
			flow_free(&t, &t.f[i]);
	assert_int_equal(t.half_open, 0);
	assert_int_equal(t.half_guests.keys, 0);
	flow_table_fini(&t);
}

static void test_flow_udp(void **state)
{
	struct flow_limits lim = { .max = 16, .per_guest = 16, .udp = 2 };
	struct flow_table t;
	enum flow_limit why;
	struct flow_key k;
	struct flow *f;

	(void)state;
	assert_int_equal(flow_table_init(&t, &lim), 0);
	k = key_of(IPPROTO_UDP, 1);
	assert_non_null(f = flow_alloc(&t, &k, mac_a, &why));
	k = key_of(IPPROTO_UDP, 2);
	assert_non_null(flow_alloc(&t, &k, mac_b, &why));
	k = key_of(IPPROTO_UDP, 3);
	assert_null(flow_alloc(&t, &k, NULL, &why));
	assert_int_equal(why, FLOW_LIMIT_UDP);
	k = key_of(IPPROTO_TCP, 3);
	assert_non_null(flow_alloc(&t, &k, mac_a, &why));
	flow_free(&t, f);
	k = key_of(IPPROTO_UDP, 3);
	assert_non_null(flow_alloc(&t, &k, mac_a, &why));
	assert_int_equal(t.udp, 2);
	flow_table_fini(&t);
}

/* Half-open accounting: set, cleared at the handshake's end or when the
 * flow is freed, never counted twice. */
static void test_flow_half_open(void **state)
{
	struct flow_limits lim = { .max = 16, .half_open = 2,
				   .half_open_per_guest = 2 };
	struct flow_table t;
	enum flow_limit why;
	struct flow_key k;
	struct flow *f[3];

	(void)state;
	assert_int_equal(flow_table_init(&t, &lim), 0);
	for (int i = 0; i < 2; i++) {
		assert_true(flow_half_open_room(&t));
		k = key_of(IPPROTO_TCP, (uint16_t)(10 + i));
		f[i] = flow_alloc(&t, &k, mac_a, &why);
		flow_set_half_open(&t, f[i], true);
		flow_set_half_open(&t, f[i], true);
	}
	assert_int_equal(t.half_open, 2);
	assert_false(flow_half_open_room(&t));
	flow_set_half_open(&t, f[0], false);	/* handshake done */
	assert_true(flow_half_open_room(&t));
	k = key_of(IPPROTO_TCP, 12);
	f[2] = flow_alloc(&t, &k, mac_a, &why);
	flow_set_half_open(&t, f[2], true);
	assert_false(flow_half_open_room(&t));
	flow_free(&t, f[1]);			/* given up */
	assert_int_equal(t.half_open, 1);
	flow_free(&t, f[0]);
	flow_free(&t, f[2]);
	assert_int_equal(t.half_open, 0);
	assert_int_equal(t.count, 0);
	flow_table_fini(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quota),
		cmocka_unit_test(test_quota_model),
		cmocka_unit_test(test_flow_defaults),
		cmocka_unit_test(test_flow_per_guest),
		cmocka_unit_test(test_flow_linger_take),
		cmocka_unit_test(test_flow_half_open_per_guest),
		cmocka_unit_test(test_flow_udp),
		cmocka_unit_test(test_flow_half_open),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
