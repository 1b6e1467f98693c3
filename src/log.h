/* SPDX-License-Identifier: MIT */
/* log.h: levelled, rate-limited logging through the embedder's callback. */
#ifndef PB_LOG_H
#define PB_LOG_H

#include <stdint.h>

#include "patchbay.h"

struct pb_log {
	enum pb_log_level level;
	pb_log_fn fn;		/* NULL: stderr */
	void *opaque;
};

/*
 * A rate limiter lives in the object whose events it limits (a port, a
 * segment), never in a static: instances must not share state.  At most
 * RL_BURST messages per RL_WINDOW_NS; the next message after a quiet window
 * says how many were suppressed.
 */
#define RL_BURST 5
#define RL_WINDOW_NS (5ULL * 1000000000ULL)

struct ratelimit {
	uint64_t window_start;
	uint32_t count;
	uint32_t suppressed;
};

void log_msg(const struct pb_log *log, enum pb_log_level level,
	     const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Log unless rl says too many recently; now is the caller's clock (ns). */
void log_rl(const struct pb_log *log, struct ratelimit *rl, uint64_t now,
	    enum pb_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

#define log_err(l, ...) log_msg((l), PB_LOG_ERR, __VA_ARGS__)
#define log_warn(l, ...) log_msg((l), PB_LOG_WARN, __VA_ARGS__)
#define log_info(l, ...) log_msg((l), PB_LOG_INFO, __VA_ARGS__)
#define log_debug(l, ...) log_msg((l), PB_LOG_DEBUG, __VA_ARGS__)

#endif
