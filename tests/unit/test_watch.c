// SPDX-License-Identifier: MIT
/* test_watch.c: an embedder's descriptors in the library's loop
 * (pb_watch_fd, pb_unwatch_fd, pb_wait). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "patchbay.h"

struct seen {
	int calls, fd;
	uint32_t events;
};

static void note(void *opaque, int fd, uint32_t events)
{
	struct seen *s = opaque;

	s->calls++;
	s->fd = fd;
	s->events = events;
}

static pb_t *new_pb(void)
{
	struct pb_config cfg = { .version = PB_CONFIG_VERSION,
				 .log_level = PB_LOG_ERR, .max_ports = 4,
				 .max_segments = 1 };
	pb_t *pb;

	assert_int_equal(pb_new(&cfg, &pb), 0);
	return pb;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* A readable pipe wakes pb_wait() and reaches the callback with its fd
 * and events; nothing ready: pb_wait() sleeps its timeout and calls
 * nothing; after pb_unwatch_fd() the fd is not reported again. */
static void test_watch_pipe(void **state)
{
	pb_t *pb = new_pb();
	struct seen s = { 0 };
	int p[2];
	double t0;

	(void)state;
	assert_int_equal(pipe(p), 0);
	assert_int_equal(pb_watch_fd(pb, p[0], EPOLLIN, note, &s), 0);
	t0 = now_ms();
	assert_int_equal(pb_wait(pb, 30), 0);
	assert_true(now_ms() - t0 >= 25);
	assert_int_equal(s.calls, 0);
	assert_int_equal(write(p[1], "x", 1), 1);
	assert_int_equal(pb_wait(pb, 1000), 0);
	assert_int_equal(s.calls, 1);
	assert_int_equal(s.fd, p[0]);
	assert_true(s.events & EPOLLIN);
	/* watching again changes the events: EPOLLOUT on the read end never
	 * comes, so the still-readable pipe is quiet now */
	assert_int_equal(pb_watch_fd(pb, p[0], EPOLLOUT, note, &s), 0);
	assert_int_equal(pb_dispatch(pb), 0);
	assert_int_equal(s.calls, 1);
	pb_unwatch_fd(pb, p[0]);
	assert_int_equal(pb_wait(pb, 0), 0);
	assert_int_equal(s.calls, 1);
	close(p[0]);
	close(p[1]);
	pb_free(pb);
}

/* At most 8 descriptors; bad arguments are refused. */
static void test_watch_limits(void **state)
{
	pb_t *pb = new_pb();
	struct seen s = { 0 };
	int p[9][2];

	(void)state;
	assert_int_equal(pb_watch_fd(pb, -1, EPOLLIN, note, &s), -EINVAL);
	for (int i = 0; i < 9; i++)
		assert_int_equal(pipe(p[i]), 0);
	for (int i = 0; i < 8; i++)
		assert_int_equal(pb_watch_fd(pb, p[i][0], EPOLLIN, note, &s), 0);
	assert_int_equal(pb_watch_fd(pb, p[8][0], EPOLLIN, note, &s), -ENOSPC);
	assert_int_equal(pb_watch_fd(pb, p[8][0], EPOLLIN, NULL, &s), -EINVAL);
	pb_unwatch_fd(pb, p[3][0]);
	assert_int_equal(pb_watch_fd(pb, p[8][0], EPOLLIN, note, &s), 0);
	assert_int_equal(write(p[8][1], "y", 1), 1);
	assert_int_equal(pb_wait(pb, 1000), 0);
	assert_int_equal(s.calls, 1);
	assert_int_equal(s.fd, p[8][0]);
	for (int i = 0; i < 9; i++) {
		close(p[i][0]);
		close(p[i][1]);
	}
	pb_free(pb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_watch_pipe),
		cmocka_unit_test(test_watch_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
