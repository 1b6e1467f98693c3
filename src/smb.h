/* SPDX-License-Identifier: MIT */
/* smb.h: smb=DIR: the system's smbd serving a host directory to guests. */
#ifndef PB_SMB_H
#define PB_SMB_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SMB_CONN_MAX 64		/* smbd processes at once */
#define SMB_SHARE "qemu"	/* QEMU's share name */

struct smb_stats {
	uint64_t connections, busy, spawn_failed;
};

struct router;
struct opts;

/*
 * smb=DIR[,smbserver=ADDR]: find smbd, write a private configuration in a
 * fresh temporary directory and register ADDR:445 and ADDR:139 as
 * forwards that start smbd.  Nothing to do (0) without smb=.  Errors name
 * the key; a missing smbd is an error.
 */
int smb_configure(struct router *r, const struct opts *o, char *err,
		  size_t errlen);
/* A guest connected to the SMB address: start an smbd for it.  Returns our
 * end of its connection (non-blocking), or a negative code. */
int smb_connect(struct router *r);
/* Stop the smbd processes we started and remove the temporary directory. */
void smb_free(struct router *r);
/* ",\"smb\":{...}" when SMB is configured. */
void smb_stats_json(struct router *r, FILE *f);

#endif
