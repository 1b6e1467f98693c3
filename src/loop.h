/* SPDX-License-Identifier: MIT */
/* loop.h: epoll with typed references, a clock, and a small timer table. */
#ifndef PB_LOOP_H
#define PB_LOOP_H

/*
 * The epoll data word of every registered fd is a typed reference (kind of
 * object + table index + generation), never a pointer: a stale event for a
 * slot that was freed and reused is recognised by its generation and ignored.
 *
 * Timers are a fixed table of (deadline, callback, argument).  One timerfd in
 * the epoll set is armed to the earliest deadline, so an embedder that only
 * polls pb_fd() still wakes for timers.  The table is small (one timer per
 * segment, netdev or capture), so a linear scan is cheaper than a wheel; the
 * router's per-flow timeouts will use their own wheel.
 *
 * now is cached once per dispatch round (loop_update_now()); unit tests may
 * install a fake clock.
 */

#include <stdbool.h>
#include <stdint.h>

struct pb;

enum ref_kind {
	REF_NONE = 0,
	REF_TIMERFD,
	REF_PORT,	/* idx: port slot */
	REF_NETDEV,	/* idx: netdev slot (listeners, connecting sockets) */
	REF_FLOW,	/* idx: flow slot; gen: router netdev << 16 | flow gen */
	REF_HOSTFWD,	/* idx: forward slot; gen: router netdev */
	REF_WATCH,	/* idx: pb->watch slot (an embedder's fd) */
	REF_DNSTCP,	/* idx: DNS-over-TCP session slot, | 0x100 for its
			 * upstream socket; gen: router netdev << 16 | gen */
	REF_KIND_MAX,
};

union ref {
	struct {
		uint32_t kind : 8;
		uint32_t idx : 24;
		uint32_t gen;
	};
	uint64_t u64;
};

typedef void (*timer_fn)(struct pb *pb, uint32_t arg);

struct timer {
	uint64_t deadline;	/* 0: disarmed */
	timer_fn fn;		/* NULL: free slot */
	uint32_t arg;
};

struct loop {
	int epfd;
	int tfd;
	uint64_t now;			/* ns, CLOCK_MONOTONIC */
	uint64_t (*clock)(void *);	/* NULL: CLOCK_MONOTONIC */
	void *clock_opaque;
	uint64_t tfd_armed;		/* deadline the timerfd is set to */
	bool defer_sync;		/* inside a dispatch round: the timerfd
					 * is set once, at its end */
	struct timer *timers;
	unsigned ntimers;
	unsigned timers_hi;		/* slots [0, timers_hi) may be in use */
};

int loop_init(struct loop *l, unsigned max_timers);
void loop_fini(struct loop *l);

/* Register, change or remove fd; events are EPOLL* flags. */
int loop_add(struct loop *l, int fd, uint32_t events, union ref r);
int loop_mod(struct loop *l, int fd, uint32_t events, union ref r);
void loop_del(struct loop *l, int fd);

uint64_t loop_update_now(struct loop *l);

/* Allocate a timer slot (disarmed); returns its index or -ENOSPC. */
int timer_new(struct loop *l, timer_fn fn, uint32_t arg);
void timer_free(struct loop *l, int t);
/* Fire once at now + delay_ns (re-arming replaces the old deadline). */
void timer_arm(struct loop *l, int t, uint64_t delay_ns);
void timer_disarm(struct loop *l, int t);
bool timer_armed(const struct loop *l, int t);

/* Earliest deadline, 0 if none armed. */
uint64_t timer_next(const struct loop *l);
/* Run every due timer. */
void timer_run(struct loop *l, struct pb *pb);
/* Point the timerfd at the earliest deadline (call after changes). */
void timer_sync(struct loop *l);

static inline union ref ref_make(enum ref_kind kind, uint32_t idx,
				 uint32_t gen)
{
	union ref r = { .u64 = 0 };

	r.kind = kind;
	r.idx = idx;
	r.gen = gen;
	return r;
}

#endif
