/* SPDX-License-Identifier: MIT */
/* ctl.h: the daemon's control socket (server: ctl.c) and its client
 * (`patchbay ctl`: ctl_client.c).  Protocol: docs/control.md. */
#ifndef PB_DAEMON_CTL_H
#define PB_DAEMON_CTL_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>

#include "patchbay.h"

#define CTL_SCHEMA_VERSION 1
#define CTL_MAX_CLIENTS 256		/* highest --max-ctl-clients */
#define CTL_CLIENTS_DEFAULT 32
#define CTL_LINE_MAX 65536		/* bytes of a request, newline excluded */
#define CTL_OUT_MAX (4u << 20)		/* unsent reply bytes per client */
#define CTL_POLLFDS (1 + CTL_MAX_CLIENTS)
#define CTL_SOCK_NAME "ctl.sock"

struct ctl;

/*
 * Listen on a unix socket at path, owner-only (mode 0600, created under
 * umask 077).  A stale socket file there (nobody accepts) is replaced; a
 * live one is an error.  At most max_clients (1..CTL_MAX_CLIENTS) are
 * served at once.  Returns NULL with a message in err.
 */
struct ctl *ctl_open(pb_t *pb, const char *path, int max_clients, char *err,
		     size_t errlen);
/* Disconnect every client, close the socket and remove its file. */
void ctl_close(struct ctl *c);

/* Fill pfd (room for CTL_POLLFDS) with what to poll; returns how many. */
int ctl_pollfds(struct ctl *c, struct pollfd *pfd);
/* After poll(): serve the clients (pfd, n as ctl_pollfds() made them). */
void ctl_handle(struct ctl *c, const struct pollfd *pfd, int n);
/* Requests are already waiting: poll without sleeping. */
bool ctl_busy(const struct ctl *c);

/*
 * The private runtime directory: $XDG_RUNTIME_DIR/patchbay, /run/patchbay
 * as root, /tmp/patchbay-UID otherwise.  create: make it (mode 0700) if
 * missing; an existing one must belong to us and not be writable by
 * others.  Returns 0, or -errno with a message in err.
 */
int ctl_runtime_dir(char *out, size_t size, bool create, char *err,
		    size_t errlen);

/* `patchbay ctl ...` (argv[0] is "ctl"); returns the exit status. */
int ctl_client_main(int argc, char **argv);

/*
 * One request to the control socket at path: send line (a JSON object,
 * no newline) and, if fd >= 0, that descriptor along with its first byte;
 * read one reply line.  Returns 0 with *reply (malloc'd, NUL-terminated,
 * no newline), or -errno with a message in err.  For `patchbay run --join`
 * and the like.
 */
int ctl_request(const char *path, const char *line, int fd, char **reply,
		char *err, size_t errlen);

#endif
