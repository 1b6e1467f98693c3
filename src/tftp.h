/* SPDX-License-Identifier: MIT */
/* tftp.h: the router's read-only TFTP server (RFC 1350; options RFC 2347,
 * 2348, 2349; windowsize RFC 7440). */
#ifndef PB_TFTP_H
#define PB_TFTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define TFTP_PORT 69

/* opcodes (RFC 1350 section 5, RFC 2347) */
#define TFTP_RRQ 1
#define TFTP_WRQ 2
#define TFTP_DATA 3
#define TFTP_ACK 4
#define TFTP_ERROR 5
#define TFTP_OACK 6

/* error codes (RFC 1350 appendix, RFC 2347) */
#define TFTP_EUNDEF 0
#define TFTP_ENOTFOUND 1
#define TFTP_EACCESS 2
#define TFTP_ENOSPACE 3
#define TFTP_EBADOP 4
#define TFTP_EBADID 5
#define TFTP_EEXISTS 6
#define TFTP_ENOUSER 7
#define TFTP_EOPTNEG 8

#define TFTP_NAME_MAX 512	/* file name bytes, NUL included */
#define TFTP_BLKSIZE_DEFAULT 512
#define TFTP_BLKSIZE_MIN 8	/* RFC 2348 */
#define TFTP_BLKSIZE_MAX 65464
#define TFTP_TIMEOUT_MIN 1	/* RFC 2349, seconds */
#define TFTP_TIMEOUT_MAX 255
#define TFTP_WINDOW_MAX 64	/* we answer at most this (RFC 7440 allows less) */
#define TFTP_SESSIONS 64		/* default of max-tftp-sessions */
#define TFTP_SESSIONS_MAX 4096

enum tftp_mode { TFTP_MODE_OCTET, TFTP_MODE_NETASCII };

/* A parsed RRQ or WRQ.  An option the client did not send is 0/false. */
struct tftp_req {
	uint16_t opcode;		/* TFTP_RRQ or TFTP_WRQ */
	enum tftp_mode mode;
	char filename[TFTP_NAME_MAX];	/* as sent, NUL-terminated */
	uint32_t blksize;		/* capped at TFTP_BLKSIZE_MAX */
	uint16_t windowsize;		/* capped at TFTP_WINDOW_MAX */
	uint8_t timeout;		/* seconds */
	bool tsize;			/* the client asked for the size */
	unsigned unknown_opts;		/* options we ignore (RFC 2347) */
};

/*
 * Parse a request datagram (the UDP payload).  Returns 0, or:
 *   -EOPNOTSUPP   opcode is not RRQ/WRQ                  (answer ERROR 4)
 *   -EBADMSG      a string lacks its NUL, empty name,
 *                 an option without a value              (ERROR 4)
 *   -EPROTONOSUPPORT  mode is not octet/netascii          (ERROR 4)
 *   -ENAMETOOLONG file name longer than TFTP_NAME_MAX-1   (ERROR 2)
 *   -EINVAL       a known option with a bad value        (ERROR 8)
 * Option and mode names are case-insensitive; unknown options are counted
 * and ignored; a repeated option keeps its first value.
 */
int tftp_parse_request(const uint8_t *p, size_t len, struct tftp_req *req);

/* The TFTP error code to answer a tftp_parse_request() failure with. */
int tftp_parse_errcode(int rc);

/*
 * The path to open below the root for a requested name: leading '/'s are
 * dropped (an absolute name is taken relative to the root), repeated '/'s
 * collapse.  Returns 0, or -EACCES for a ".." component, -ENOENT for a
 * name that is empty or names the root itself, -ENAMETOOLONG if out is too
 * small.  Pure; the opening itself (openat2 RESOLVE_IN_ROOT) keeps
 * symlinks inside the root.
 */
int tftp_clean_path(const char *name, char *out, size_t outlen);

struct tftp_stats {
	uint64_t rrq, wrq, completed, bytes, blocks, retransmits, timeouts,
		not_found, access, illegal, optneg, busy, unknown_tid,
		client_errors;
};

struct router;
struct ip4_view;
struct opts;

/* tftp=DIR: open the root; NULL r->tftp when absent.  Errors name the key. */
int tftp_configure(struct router *r, const struct opts *o, char *err,
		   size_t errlen);
void tftp_free(struct router *r);
/*
 * A UDP datagram (payload p, len) from the guest's sport to the gateway's
 * dport.  Returns true if it was TFTP's (port 69, or a live session's
 * transfer ID) and has been handled; false to let the UDP translation have
 * it.
 */
bool tftp_udp_input(struct router *r, const struct ip4_view *ip,
		    uint16_t sport, uint16_t dport, const uint8_t *p,
		    size_t len);
/* Retransmissions, expiry, and windows waiting for output buffers. */
void tftp_timer(struct router *r, uint64_t now);
/* max-tftp-sessions (per_guest: max-tftp-per-guest); 0 without tftp=. */
unsigned tftp_limit(const struct router *r, bool per_guest);
/* ",\"tftp\":{...}" when TFTP is configured. */
void tftp_stats_json(struct router *r, FILE *f);

#endif
