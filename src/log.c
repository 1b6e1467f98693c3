// SPDX-License-Identifier: MIT
/* log.c: formatting and rate limiting of log messages. */
#include <stdarg.h>
#include <stdio.h>

#include "log.h"

static const char *const level_names[] = {
	[PB_LOG_ERR] = "error",
	[PB_LOG_WARN] = "warning",
	[PB_LOG_INFO] = "info",
	[PB_LOG_DEBUG] = "debug",
};

static void log_emit(const struct pb_log *log, enum pb_log_level level,
		     const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

static void log_emit(const struct pb_log *log, enum pb_log_level level,
		     const char *fmt, va_list ap)
{
	char buf[1024];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (log->fn) {
		log->fn(log->opaque, level, buf);
		return;
	}
	fprintf(stderr, "patchbay: %s: %s\n", level_names[level], buf);
}

void log_msg(const struct pb_log *log, enum pb_log_level level,
	     const char *fmt, ...)
{
	va_list ap;

	if (level > log->level)
		return;
	va_start(ap, fmt);
	log_emit(log, level, fmt, ap);
	va_end(ap);
}

void log_rl(const struct pb_log *log, struct ratelimit *rl, uint64_t now,
	    enum pb_log_level level, const char *fmt, ...)
{
	va_list ap;

	if (level > log->level)
		return;
	if (now - rl->window_start >= RL_WINDOW_NS) {
		if (rl->suppressed)
			log_msg(log, level, "(%u similar messages suppressed)",
				rl->suppressed);
		rl->window_start = now;
		rl->count = 0;
		rl->suppressed = 0;
	}
	if (rl->count >= RL_BURST) {
		rl->suppressed++;
		return;
	}
	rl->count++;
	va_start(ap, fmt);
	log_emit(log, level, fmt, ap);
	va_end(ap);
}
