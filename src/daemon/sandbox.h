/* SPDX-License-Identifier: MIT */
/* sandbox.h: how the daemon narrows itself after set-up (see sandbox.c). */
#ifndef PB_SANDBOX_H
#define PB_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>

#define SANDBOX_KEEP_MAX 32

struct sandbox {
	bool off;		/* --no-sandbox */
	const char *runas;	/* --runas USER|UID[:GID]; NULL: default */
	const char *exec_why;	/* a configured feature that runs programs */
	bool relative;		/* a kept path is relative to the cwd */
	bool keep_kill;		/* keep CAP_KILL: signals for a root child */
	bool mount_ns;		/* sandbox_early() made a private mount ns */
	unsigned nkeep;
	char *keep[SANDBOX_KEEP_MAX];	/* directories still used by path */
	char summary[512];	/* what sandbox_apply() did, one line */
};

/* Note what spec (a -netdev/--capture/--net text) needs after set-up:
 * directories it names by path, programs it runs. */
void sandbox_scan_spec(struct sandbox *sb, const char *spec);
/* Keep the directory of path visible (a file written or removed later). */
void sandbox_keep_file(struct sandbox *sb, const char *path);
/* Before set-up: as root, move into a private mount namespace, so that
 * everything set-up opens belongs to mounts the sandbox detaches later.
 * Returns 0 or -errno with err filled. */
int sandbox_early(struct sandbox *sb, char *err, size_t errlen);
/* After set-up: empty root, other user, fewer capabilities, seccomp.
 * Returns 0 or -errno with err filled; sb->summary says what was done. */
int sandbox_apply(struct sandbox *sb, char *err, size_t errlen);
/* Release what the scan functions allocated. */
void sandbox_free(struct sandbox *sb);
/* For the test suite: make one system call the filter forbids. */
void sandbox_test_trap(void);

#endif
