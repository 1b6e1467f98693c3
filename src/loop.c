// SPDX-License-Identifier: MIT
/* loop.c: epoll registration, the clock and the timer table. */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"
#include "util.h"

int loop_init(struct loop *l, unsigned max_timers)
{
	memset(l, 0, sizeof(*l));
	l->epfd = -1;
	l->tfd = -1;
	l->timers = calloc(max_timers, sizeof(*l->timers));
	if (!l->timers)
		return -ENOMEM;
	l->ntimers = max_timers;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0)
		goto fail;
	l->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (l->tfd < 0)
		goto fail;
	if (loop_add(l, l->tfd, EPOLLIN, ref_make(REF_TIMERFD, 0, 0)) < 0)
		goto fail;
	loop_update_now(l);
	return 0;
fail:
	{
		int err = -errno;

		loop_fini(l);
		return err;
	}
}

void loop_fini(struct loop *l)
{
	if (l->tfd >= 0)
		close(l->tfd);
	if (l->epfd >= 0)
		close(l->epfd);
	free(l->timers);
	l->timers = NULL;
	l->tfd = l->epfd = -1;
}

static int loop_ctl(struct loop *l, int op, int fd, uint32_t events,
		    union ref r)
{
	struct epoll_event ev = { .events = events, .data.u64 = r.u64 };

	return epoll_ctl(l->epfd, op, fd, &ev) < 0 ? -errno : 0;
}

int loop_add(struct loop *l, int fd, uint32_t events, union ref r)
{
	return loop_ctl(l, EPOLL_CTL_ADD, fd, events, r);
}

int loop_mod(struct loop *l, int fd, uint32_t events, union ref r)
{
	return loop_ctl(l, EPOLL_CTL_MOD, fd, events, r);
}

void loop_del(struct loop *l, int fd)
{
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
}

uint64_t loop_update_now(struct loop *l)
{
	struct timespec ts;

	if (l->clock) {
		l->now = l->clock(l->clock_opaque);
		return l->now;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	l->now = (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
	return l->now;
}

int timer_new(struct loop *l, timer_fn fn, uint32_t arg)
{
	for (unsigned i = 0; i < l->ntimers; i++) {
		if (!l->timers[i].fn) {
			l->timers[i] = (struct timer){ .fn = fn, .arg = arg };
			if (i + 1 > l->timers_hi)
				l->timers_hi = i + 1;
			return (int)i;
		}
	}
	return -ENOSPC;
}

void timer_free(struct loop *l, int t)
{
	if (t >= 0 && (unsigned)t < l->ntimers)
		l->timers[t] = (struct timer){ 0 };
	while (l->timers_hi && !l->timers[l->timers_hi - 1].fn)
		l->timers_hi--;
}

void timer_arm(struct loop *l, int t, uint64_t delay_ns)
{
	if (t < 0 || (unsigned)t >= l->ntimers)
		return;
	l->timers[t].deadline = l->now + (delay_ns ? delay_ns : 1);
	timer_sync(l);
}

void timer_disarm(struct loop *l, int t)
{
	if (t >= 0 && (unsigned)t < l->ntimers)
		l->timers[t].deadline = 0;
}

bool timer_armed(const struct loop *l, int t)
{
	return t >= 0 && (unsigned)t < l->ntimers && l->timers[t].deadline;
}

uint64_t timer_next(const struct loop *l)
{
	uint64_t best = 0;

	for (unsigned i = 0; i < l->timers_hi; i++) {
		uint64_t d = l->timers[i].deadline;

		if (d && (!best || d < best))
			best = d;
	}
	return best;
}

void timer_run(struct loop *l, struct pb *pb)
{
	uint64_t exp;

	/* Drain the timerfd; the deadlines themselves are the truth. */
	if (read(l->tfd, &exp, sizeof(exp)) < 0 && errno != EAGAIN)
		exp = 0;
	l->tfd_armed = 0;
	for (unsigned i = 0; i < l->timers_hi; i++) {
		struct timer *t = &l->timers[i];

		if (t->fn && t->deadline && t->deadline <= l->now) {
			t->deadline = 0;
			t->fn(pb, t->arg);
		}
	}
	timer_sync(l);
}

void timer_sync(struct loop *l)
{
	uint64_t next = timer_next(l);
	struct itimerspec its = { 0 };

	if (l->defer_sync || next == l->tfd_armed)
		return;
	/* Armed earlier than needed (a deadline went away or moved later):
	 * leave it, the early expiry re-arms it for the real one.  Timers
	 * that are pushed back all the time (a delayed ACK per request) thus
	 * cost a system call per expiry, not one per change. */
	if (!l->clock && l->tfd_armed && (!next || l->tfd_armed < next))
		return;
	if (next) {
		/* A fake clock has no relation to the kernel's: fire at once
		 * and let timer_run() compare deadlines with the fake now. */
		uint64_t at = l->clock ? 1 : next;

		its.it_value.tv_sec = (time_t)(at / NS_PER_SEC);
		its.it_value.tv_nsec = (long)(at % NS_PER_SEC);
	}
	timerfd_settime(l->tfd, TFD_TIMER_ABSTIME, &its, NULL);
	l->tfd_armed = next;
}
