// SPDX-License-Identifier: MIT
/* tftp.c: the router's read-only TFTP server at the gateway address. */

/*
 * Theory of operation.
 *
 * A guest sends a read request (RRQ) to the gateway's port 69.  The request
 * is parsed by the pure tftp_parse_request(); its name is cleaned (leading
 * '/'s dropped, ".." refused) and opened with openat2(RESOLVE_IN_ROOT |
 * RESOLVE_NO_MAGICLINKS) relative to a descriptor of the tftp= root taken
 * at start-up, so neither "..", absolute symlinks nor relative ones can
 * leave the root: the kernel resolves every one of them as if the root were
 * "/".  Only regular files are served (checked on an O_PATH descriptor
 * before the file is opened for reading, and again after).  WRQ is refused
 * (ERROR 2): the server is read-only.
 *
 * Each accepted RRQ gets a session in a fixed table (max-tftp-sessions,
 * TFTP_SESSIONS by default; one guest address may hold at most
 * max-tftp-per-guest of them, a quarter by default, so that one guest
 * cannot keep the others from booting), keyed by the guest's (address,
 * port), and a transfer ID of its own: a
 * random port of the gateway from which it sends and to which the guest
 * answers (RFC 1350 section 4).  udp_input() hands us every datagram to the
 * gateway's port 69 or to a live session's port; a datagram to a session's
 * port from anyone but its guest gets ERROR 5 and leaves the transfer
 * alone.
 *
 * A transfer is a sliding window of blocks (RFC 7440; a window of 1 is
 * RFC 1350's lock-step).  Block k (from 1) is read with pread() at its
 * offset when it is sent, and read again if it has to be resent: no file
 * data is buffered.  In netascii mode (LF -> CR LF, CR -> CR NUL) block
 * offsets do not follow from k, so the file offset where each block of the
 * window starts is remembered (a ring of TFTP_WINDOW_MAX + 1 positions).  A
 * block shorter than blksize ends the transfer; the session ends when the
 * guest acknowledges it.
 *
 * An ACK for a block inside the window moves its left edge; if blocks sent
 * after it were not acknowledged with it, they are sent again from there
 * (RFC 7440 section 4).  A duplicate ACK changes nothing (RFC 1123
 * 4.2.3.1: resending on duplicate ACKs is the Sorcerer's Apprentice bug);
 * only the retransmission timer resends, from the router's housekeeping
 * tick, at most TFTP_RETRIES times, after which the session is dropped.
 *
 * Options (RFC 2347): blksize 8..65464 (larger requests get 65464), tsize
 * (octet mode only: the netascii size is not known without reading the
 * file; not for an empty file, see below), timeout 1..255 s, windowsize (at most TFTP_WINDOW_MAX).  A bad
 * value of a known option is answered with ERROR 8; unknown options are
 * ignored.  With an accepted option the first answer is an OACK, which the
 * guest acknowledges as block 0.
 *
 * Output: a big block is fragmented to the segment's MTU, one output slot
 * per fragment.  A window is only sent while enough slots are free; inside
 * a round (answering a guest's ACK) the rest waits for the timer tick,
 * which runs outside rounds and may flush.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "opts.h"
#include "router.h"
#include "tftp.h"

#define TFTP_RTO_DEFAULT_NS (1 * NS_PER_SEC)
#define TFTP_RETRIES 5
#define TFTP_TID_MIN 49152
#define TFTP_ARENA_RESERVE 32	/* output slots left for everyone else */
#define TFTP_RING (TFTP_WINDOW_MAX + 1)

/* netascii: the byte still owed from an expansion cut by a block end */
enum { NA_NONE, NA_LF, NA_NUL };

struct tftp_pos {
	uint64_t off;		/* file offset */
	uint8_t pend;		/* NA_* */
};

struct tftp_session {
	bool used;
	bool oack;		/* OACK sent, waiting for ACK 0 */
	bool pending;		/* window not fully sent: no output slots */
	bool opt_blksize, opt_tsize, opt_timeout, opt_window; /* in OACK */
	enum tftp_mode mode;
	uint32_t gip;		/* network order */
	uint16_t gport;		/* host order */
	uint16_t tid;		/* our port for this transfer */
	int fd;
	uint32_t blksize;
	uint16_t window;
	uint8_t timeout_s;
	uint8_t retries;
	uint32_t reqhash;	/* of the RRQ, to spot its retransmissions */
	uint64_t size;		/* file size when opened */
	uint64_t acked;		/* highest block acknowledged (0: none) */
	uint64_t sent;		/* highest block sent */
	uint64_t last;		/* the final (short) block, 0: not yet built */
	uint64_t deadline;	/* retransmission, ns */
	struct tftp_pos pos[TFTP_RING];	/* netascii: where block k starts */
};

struct tftp_server {
	int rootfd;
	uint8_t *scratch;	/* netascii: raw file bytes of one block */
	unsigned active;
	unsigned nsess;		/* max-tftp-sessions */
	unsigned per_guest;	/* max-tftp-per-guest */
	struct tftp_session *s;	/* nsess */
	struct tftp_stats st;
};

/* ---- parsing (pure) ------------------------------------------------------------ */

/* A NUL-terminated string at the cursor; NULL if the NUL is missing. */
static const char *cur_str(struct cursor *c, size_t *n)
{
	const uint8_t *nul = c->rem ? memchr(c->p, 0, c->rem) : NULL;
	const char *s;

	if (!nul)
		return NULL;
	*n = (size_t)(nul - c->p);
	s = (const char *)cur_pull(c, *n + 1);
	return s;
}

/* A decimal option value: digits only, at most max. */
static int opt_number(const char *v, size_t n, uint64_t max, uint64_t *out)
{
	uint64_t x = 0;

	if (n == 0 || n > 20)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned)(v[i] - '0');

		if (d > 9 || x > (UINT64_MAX - d) / 10)
			return -EINVAL;
		x = x * 10 + d;
	}
	if (x > max)
		return -EINVAL;
	*out = x;
	return 0;
}

int tftp_parse_request(const uint8_t *p, size_t len, struct tftp_req *req)
{
	struct cursor c = cur_init(p, len);
	const char *name, *mode;
	size_t nlen, mlen;
	bool seen_blk = false, seen_ts = false, seen_to = false,
	     seen_win = false;

	memset(req, 0, sizeof(*req));
	if (!cur_be16(&c, &req->opcode))
		return -EBADMSG;
	if (req->opcode != TFTP_RRQ && req->opcode != TFTP_WRQ)
		return -EOPNOTSUPP;
	name = cur_str(&c, &nlen);
	if (!name || nlen == 0)
		return -EBADMSG;
	mode = cur_str(&c, &mlen);
	if (!mode)
		return -EBADMSG;
	if (nlen >= sizeof(req->filename))
		return -ENAMETOOLONG;
	memcpy(req->filename, name, nlen);
	req->filename[nlen] = '\0';
	if (mlen == 5 && !strncasecmp(mode, "octet", 5))
		req->mode = TFTP_MODE_OCTET;
	else if (mlen == 8 && !strncasecmp(mode, "netascii", 8))
		req->mode = TFTP_MODE_NETASCII;
	else
		return -EPROTONOSUPPORT;	/* "mail" too: obsolete */

	/* options: name NUL value NUL, until the end */
	while (c.rem) {
		const char *on, *ov;
		size_t onl, ovl;
		uint64_t v;

		on = cur_str(&c, &onl);
		if (!on)
			return -EBADMSG;
		if (onl == 0)
			break;	/* NUL padding after the last option: ignored */
		ov = cur_str(&c, &ovl);
		if (!ov)
			return -EBADMSG;
		if (onl == 7 && !strncasecmp(on, "blksize", 7)) {
			if (seen_blk)
				continue;
			seen_blk = true;
			if (opt_number(ov, ovl, UINT64_MAX, &v) ||
			    v < TFTP_BLKSIZE_MIN)
				return -EINVAL;
			req->blksize = (uint32_t)MIN(v, TFTP_BLKSIZE_MAX);
		} else if (onl == 5 && !strncasecmp(on, "tsize", 5)) {
			if (seen_ts)
				continue;
			seen_ts = true;
			if (opt_number(ov, ovl, UINT64_MAX, &v))
				return -EINVAL;
			req->tsize = true;
		} else if (onl == 7 && !strncasecmp(on, "timeout", 7)) {
			if (seen_to)
				continue;
			seen_to = true;
			if (opt_number(ov, ovl, TFTP_TIMEOUT_MAX, &v) ||
			    v < TFTP_TIMEOUT_MIN)
				return -EINVAL;
			req->timeout = (uint8_t)v;
		} else if (onl == 10 && !strncasecmp(on, "windowsize", 10)) {
			if (seen_win)
				continue;
			seen_win = true;
			if (opt_number(ov, ovl, 65535, &v) || v < 1)
				return -EINVAL;
			req->windowsize = (uint16_t)MIN(v, TFTP_WINDOW_MAX);
		} else {
			req->unknown_opts++;
		}
	}
	return 0;
}

int tftp_parse_errcode(int rc)
{
	switch (rc) {
	case -EINVAL:
		return TFTP_EOPTNEG;
	case -ENAMETOOLONG:
		return TFTP_EACCESS;
	default:
		return TFTP_EBADOP;
	}
}

int tftp_clean_path(const char *name, char *out, size_t outlen)
{
	size_t o = 0;
	const char *p = name;

	if (outlen == 0)
		return -ENAMETOOLONG;
	while (*p) {
		const char *e;
		size_t n;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		e = strchr(p, '/');
		n = e ? (size_t)(e - p) : strlen(p);
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return -EACCES;
		if (!(n == 1 && p[0] == '.')) {
			if (o + (o ? 1 : 0) + n >= outlen)
				return -ENAMETOOLONG;
			if (o)
				out[o++] = '/';
			memcpy(out + o, p, n);
			o += n;
		}
		p += n;
	}
	out[o] = '\0';
	return o ? 0 : -ENOENT;
}

/* ---- sending -------------------------------------------------------------------- */

static uint8_t *tftp_frame(struct router *r, uint8_t **payload)
{
	uint8_t *f = router_alloc(r);

	if (f)
		*payload = f + ETH_HDR + IP4_HDR + UDP_HDR;
	return f;
}

static void put16(uint8_t *b, uint16_t v)
{
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}

static void tftp_count_error(struct tftp_server *t, uint16_t code)
{
	switch (code) {
	case TFTP_ENOTFOUND:
		t->st.not_found++;
		break;
	case TFTP_EACCESS:
		t->st.access++;
		break;
	case TFTP_EBADOP:
		t->st.illegal++;
		break;
	case TFTP_EOPTNEG:
		t->st.optneg++;
		break;
	case TFTP_EBADID:
		t->st.unknown_tid++;
		break;
	default:
		break;
	}
}

static void tftp_send_error(struct router *r, uint32_t gip, uint16_t gport,
			    uint16_t sport, uint16_t code, const char *msg)
{
	size_t n = strlen(msg);
	uint8_t *f, *b;

	tftp_count_error(r->tftp, code);
	f = tftp_frame(r, &b);
	if (!f)
		return;
	put16(b, TFTP_ERROR);
	put16(b + 2, code);
	memcpy(b + 4, msg, n + 1);
	udp_send_to_guest(r, f, r->gw, sport, gip, gport, 4 + n + 1);
}

/* A fresh transfer ID: a random high port no live session uses. */
static uint16_t tftp_new_tid(const struct tftp_server *t)
{
	for (;;) {
		uint16_t tid = (uint16_t)(TFTP_TID_MIN +
					  arc4random_uniform(65536 - TFTP_TID_MIN));
		bool busy = false;

		for (unsigned i = 0; i < t->nsess && !busy; i++)
			busy = t->s[i].used && t->s[i].tid == tid;
		if (!busy)
			return tid;
	}
}

static void tftp_end(struct tftp_server *t, struct tftp_session *s)
{
	if (!s->used)
		return;
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->used = false;
	t->active--;
}

/* Frames one datagram of len UDP payload bytes takes at our MTU. */
static unsigned tftp_frames(const struct router *r, size_t len)
{
	size_t l4 = UDP_HDR + len, chunk;

	if (IP4_HDR + l4 <= r->mtu)
		return 1;
	chunk = (size_t)(r->mtu - IP4_HDR) & ~(size_t)7;
	return (unsigned)((l4 + chunk - 1) / chunk);
}

/* Are there output slots for a datagram of len bytes (and some to spare
 * for everyone else)?  Outside a round the router may flush to make room;
 * inside one we must wait for the tick. */
static bool tftp_room(struct router *r, size_t len)
{
	return router_make_room(r, tftp_frames(r, len) + TFTP_ARENA_RESERVE);
}

static void tftp_send_oack(struct router *r, struct tftp_session *s)
{
	uint8_t *f, *b;
	int n = 2;

	f = tftp_frame(r, &b);
	if (!f)
		return;
	put16(b, TFTP_OACK);
	/* at most 4 options of < 32 bytes each */
	if (s->opt_blksize)
		n += snprintf((char *)b + n, 32, "blksize%c%u", 0, s->blksize) + 1;
	if (s->opt_tsize)
		n += snprintf((char *)b + n, 32, "tsize%c%llu", 0,
			      (unsigned long long)s->size) + 1;
	if (s->opt_timeout)
		n += snprintf((char *)b + n, 32, "timeout%c%u", 0, s->timeout_s) + 1;
	if (s->opt_window)
		n += snprintf((char *)b + n, 32, "windowsize%c%u", 0, s->window) + 1;
	udp_send_to_guest(r, f, r->gw, s->tid, s->gip, s->gport, (size_t)n);
}

/* Read exactly n bytes at off unless the file ends first. */
static ssize_t pread_full(int fd, uint8_t *buf, size_t n, uint64_t off)
{
	size_t got = 0;

	while (got < n) {
		ssize_t k = pread(fd, buf + got, n - got, (off_t)(off + got));

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			break;
		got += (size_t)k;
	}
	return (ssize_t)got;
}

/* Block k's data (netascii: converted) into b; its length, or -errno. */
static ssize_t tftp_block_data(struct tftp_server *t, struct tftp_session *s,
			       uint64_t k, uint8_t *b)
{
	struct tftp_pos *start = &s->pos[k % TFTP_RING];
	uint64_t off = start->off;
	uint8_t pend = start->pend;
	size_t out = 0, i = 0;
	ssize_t raw;

	if (s->mode == TFTP_MODE_OCTET)
		return pread_full(s->fd, b, s->blksize, (k - 1) * s->blksize);
	if (pend != NA_NONE)
		b[out++] = pend == NA_LF ? '\n' : '\0';
	pend = NA_NONE;
	/* every raw byte becomes at least one byte: blksize raw bytes are
	 * always enough for one block */
	raw = pread_full(s->fd, t->scratch, s->blksize - out, off);
	if (raw < 0)
		return raw;
	while (out < s->blksize && i < (size_t)raw) {
		uint8_t ch = t->scratch[i++];

		off++;
		if (ch == '\n' || ch == '\r') {
			b[out++] = '\r';
			if (out < s->blksize)
				b[out++] = ch == '\n' ? '\n' : '\0';
			else
				pend = ch == '\n' ? NA_LF : NA_NUL;
		} else {
			b[out++] = ch;
		}
	}
	s->pos[(k + 1) % TFTP_RING] = (struct tftp_pos){ off, pend };
	return (ssize_t)out;
}

/* Send block k; false if the session had to end (read error). */
static bool tftp_send_block(struct router *r, struct tftp_session *s,
			    uint64_t k)
{
	struct tftp_server *t = r->tftp;
	uint8_t *f, *b;
	ssize_t n;

	f = tftp_frame(r, &b);
	if (!f)
		return true;	/* counted; the timer resends */
	n = tftp_block_data(t, s, k, b + 4);
	if (n < 0) {
		r->arena_used--;	/* the slot we did not use: the last */
		log_rl(&r->pb->log, &r->rl, pb_now(r->pb), PB_LOG_WARN,
		       "tftp: read error: %s", strerror((int)-n));
		tftp_send_error(r, s->gip, s->gport, s->tid, TFTP_EUNDEF,
				"Read error");
		tftp_end(t, s);
		return false;
	}
	if ((size_t)n < s->blksize)
		s->last = k;
	put16(b, TFTP_DATA);
	put16(b + 2, (uint16_t)k);
	t->st.blocks++;
	t->st.bytes += (uint64_t)n;
	udp_send_to_guest(r, f, r->gw, s->tid, s->gip, s->gport, 4 + (size_t)n);
	return true;
}

/* Send what the window allows beyond what was sent. */
static void tftp_push(struct router *r, struct tftp_session *s)
{
	s->pending = false;
	while (s->sent < s->acked + s->window &&
	       (!s->last || s->sent < s->last)) {
		if (!tftp_room(r, 4 + s->blksize)) {
			s->pending = true;
			router_kick_timer(r, 0);
			return;
		}
		if (!tftp_send_block(r, s, s->sent + 1))
			return;
		s->sent++;
	}
}

static void tftp_arm(struct router *r, struct tftp_session *s)
{
	uint64_t rto = s->timeout_s ? s->timeout_s * NS_PER_SEC
				    : TFTP_RTO_DEFAULT_NS;

	s->deadline = pb_now(r->pb) + rto;
	router_kick_timer(r, rto);
}

/* (Re)send from the left edge of the window: OACK or blocks. */
static void tftp_resend(struct router *r, struct tftp_session *s)
{
	if (s->oack) {
		tftp_send_oack(r, s);
	} else {
		s->sent = s->acked;
		tftp_push(r, s);
	}
	if (s->used)
		tftp_arm(r, s);
}

/* ---- receiving ------------------------------------------------------------------ */

static uint32_t hash_bytes(const uint8_t *p, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

/* Open path below the root: a regular file, or -errno. */
static int tftp_open(const struct tftp_server *t, const char *path,
		     uint64_t *size)
{
	struct open_how how = { .resolve = RESOLVE_IN_ROOT |
					   RESOLVE_NO_MAGICLINKS };
	struct stat a, b;
	long pfd, fd;
	int err;

	how.flags = O_PATH | O_CLOEXEC;
	pfd = syscall(SYS_openat2, t->rootfd, path, &how, sizeof(how));
	if (pfd < 0)
		return -errno;
	if (fstat((int)pfd, &a) < 0 || !S_ISREG(a.st_mode)) {
		close((int)pfd);
		return -EACCES;
	}
	/* O_NONBLOCK: should a FIFO be swapped in meanwhile, the open must
	 * not hang the router (the type is checked again below). */
	how.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
	fd = syscall(SYS_openat2, t->rootfd, path, &how, sizeof(how));
	err = -errno;
	close((int)pfd);
	if (fd < 0)
		return err;
	if (fstat((int)fd, &b) < 0 || !S_ISREG(b.st_mode) ||
	    a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
		close((int)fd);
		return -EACCES;
	}
	*size = (uint64_t)b.st_size;
	return (int)fd;
}

/* A rate-limited debug line about a guest's request. */
static void tftp_log(struct router *r, uint32_t gip, uint16_t gport,
		     const char *what, const char *why)
{
	char a[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &gip, a, sizeof(a));
	log_rl(&r->pb->log, &r->rl, pb_now(r->pb), PB_LOG_DEBUG,
	       "tftp: %s:%u: %s: %s", a, gport, what, why);
}

static struct tftp_session *tftp_find_guest(struct tftp_server *t,
					    uint32_t gip, uint16_t gport)
{
	for (unsigned i = 0; i < t->nsess; i++)
		if (t->s[i].used && t->s[i].gip == gip &&
		    t->s[i].gport == gport)
			return &t->s[i];
	return NULL;
}

static void tftp_request(struct router *r, const struct ip4_view *ip,
			 uint16_t sport, const uint8_t *p, size_t len)
{
	struct tftp_server *t = r->tftp;
	struct tftp_session *s = NULL;
	struct tftp_req req;
	char path[TFTP_NAME_MAX];
	uint32_t h = hash_bytes(p, len);
	uint64_t size = 0;
	unsigned mine = 0;	/* sessions of this guest */
	int rc, fd;

	rc = tftp_parse_request(p, len, &req);
	if (rc) {
		int code = tftp_parse_errcode(rc);

		tftp_log(r, ip->src, sport, "bad request", strerror(-rc));
		tftp_send_error(r, ip->src, sport, tftp_new_tid(t),
				(uint16_t)code,
				code == TFTP_EOPTNEG ? "Option negotiation failed"
				: code == TFTP_EACCESS ? "File name too long"
						       : "Illegal TFTP operation");
		return;
	}
	if (req.opcode == TFTP_WRQ) {
		t->st.wrq++;
		tftp_send_error(r, ip->src, sport, tftp_new_tid(t),
				TFTP_EACCESS, "Read-only server");
		return;
	}
	t->st.rrq++;
	s = tftp_find_guest(t, ip->src, sport);
	if (s && s->reqhash == h && s->acked == 0) {
		/* the guest did not hear our answer: repeat it */
		t->st.retransmits++;
		tftp_resend(r, s);
		return;
	}
	if (s)
		tftp_end(t, s);	/* a new request from the same port */
	rc = tftp_clean_path(req.filename, path, sizeof(path));
	if (rc) {
		tftp_send_error(r, ip->src, sport, tftp_new_tid(t),
				rc == -ENOENT ? TFTP_ENOTFOUND : TFTP_EACCESS,
				rc == -ENOENT ? "File not found"
					      : "Access violation");
		return;
	}
	s = NULL;
	for (unsigned i = 0; i < t->nsess; i++) {
		if (!t->s[i].used && !s)
			s = &t->s[i];
		else if (t->s[i].used && t->s[i].gip == ip->src)
			mine++;
	}
	if (!s || mine >= t->per_guest) {
		t->st.busy++;
		router_limit_hit(r, s ? LIMIT_TFTP_GUEST : LIMIT_TFTP);
		tftp_send_error(r, ip->src, sport, tftp_new_tid(t), TFTP_EUNDEF,
				"Server busy");
		return;
	}
	fd = tftp_open(t, path, &size);
	if (fd < 0) {
		bool nf = fd == -ENOENT || fd == -ENOTDIR;

		tftp_log(r, ip->src, sport, path, strerror(-fd));
		tftp_send_error(r, ip->src, sport, tftp_new_tid(t),
				nf ? TFTP_ENOTFOUND : TFTP_EACCESS,
				nf ? "File not found" : "Access violation");
		return;
	}
	memset(s, 0, sizeof(*s));
	s->used = true;
	t->active++;
	s->fd = fd;
	s->gip = ip->src;
	s->gport = sport;
	s->tid = tftp_new_tid(t);
	s->mode = req.mode;
	s->reqhash = h;
	s->size = size;
	s->blksize = req.blksize ? req.blksize : TFTP_BLKSIZE_DEFAULT;
	s->window = req.windowsize ? req.windowsize : 1;
	s->timeout_s = req.timeout;
	s->opt_blksize = req.blksize != 0;
	/* tsize 0 is left out: curl (7.88) takes it for an invalid size and
	 * gives up, and a client learns nothing from it anyway */
	s->opt_tsize = req.tsize && req.mode == TFTP_MODE_OCTET && size;
	s->opt_timeout = req.timeout != 0;
	s->opt_window = req.windowsize != 0;
	s->pos[1 % TFTP_RING] = (struct tftp_pos){ 0, NA_NONE };
	s->oack = s->opt_blksize || s->opt_tsize || s->opt_timeout ||
		  s->opt_window;
	tftp_resend(r, s);
}

/* A datagram from the session's guest to its transfer ID. */
static void tftp_session_input(struct router *r, struct tftp_session *s,
			       const uint8_t *p, size_t len)
{
	struct tftp_server *t = r->tftp;
	struct cursor c = cur_init(p, len);
	uint16_t op, n, delta;

	if (!cur_be16(&c, &op)) {
		t->st.illegal++;
		return;		/* too short to mean anything: ignore */
	}
	if (op == TFTP_ERROR) {
		t->st.client_errors++;
		tftp_end(t, s);
		return;
	}
	if (op != TFTP_ACK || !cur_be16(&c, &n)) {
		tftp_send_error(r, s->gip, s->gport, s->tid, TFTP_EBADOP,
				"Illegal TFTP operation");
		tftp_end(t, s);
		return;
	}
	if (s->oack) {
		if (n != 0)
			return;
		s->oack = false;
		s->retries = 0;
		tftp_push(r, s);
		if (s->used)
			tftp_arm(r, s);
		return;
	}
	delta = (uint16_t)(n - (uint16_t)s->acked);
	if (delta == 0 || delta > s->sent - s->acked)
		return;		/* duplicate or stale: only the timer resends */
	s->acked += delta;
	s->retries = 0;
	if (s->last && s->acked >= s->last) {
		t->st.completed++;
		tftp_end(t, s);
		return;
	}
	if (s->acked < s->sent)
		s->sent = s->acked;	/* the rest of the window was lost */
	tftp_push(r, s);
	if (s->used)
		tftp_arm(r, s);
}

bool tftp_udp_input(struct router *r, const struct ip4_view *ip,
		    uint16_t sport, uint16_t dport, const uint8_t *p,
		    size_t len)
{
	struct tftp_server *t = r->tftp;

	if (!t || ip->dst != r->gw)
		return false;
	if (dport == TFTP_PORT) {
		tftp_request(r, ip, sport, p, len);
		return true;
	}
	for (unsigned i = 0; i < t->nsess; i++) {
		struct tftp_session *s = &t->s[i];

		if (!s->used || s->tid != dport)
			continue;
		if (s->gip == ip->src && s->gport == sport)
			tftp_session_input(r, s, p, len);
		else
			/* NOLINTNEXTLINE(readability-suspicious-call-argument): the reply goes back to the sender's port */
			tftp_send_error(r, ip->src, sport, dport, TFTP_EBADID,
					"Unknown transfer ID");
		return true;
	}
	return false;
}

void tftp_timer(struct router *r, uint64_t now)
{
	struct tftp_server *t = r->tftp;
	uint64_t next = 0;

	if (!t || !t->active)
		return;
	for (unsigned i = 0; i < t->nsess; i++) {
		struct tftp_session *s = &t->s[i];

		if (!s->used)
			continue;
		if (now >= s->deadline) {
			if (s->retries >= TFTP_RETRIES) {
				t->st.timeouts++;
				tftp_end(t, s);
				continue;
			}
			s->retries++;
			t->st.retransmits++;
			tftp_resend(r, s);
		} else if (s->pending) {
			tftp_push(r, s);
		}
		if (s->used && (!next || s->deadline < next))
			next = s->deadline;
	}
	if (next)
		router_kick_timer(r, next > now ? next - now : 0);
}

/* ---- configuration -------------------------------------------------------------- */

int tftp_configure(struct router *r, const struct opts *o, char *err,
		   size_t errlen)
{
	const char *dir = opts_get(o, "tftp");
	struct open_how how = { .flags = O_PATH | O_CLOEXEC,
				.resolve = RESOLVE_IN_ROOT |
					   RESOLVE_NO_MAGICLINKS };
	struct tftp_server *t;
	uint64_t nsess, per_guest;
	long probe;
	int rc;

	if ((rc = opts_get_uint(o, "max-tftp-sessions", 1, TFTP_SESSIONS_MAX,
				TFTP_SESSIONS, &nsess, err, errlen)) ||
	    (rc = opts_get_uint(o, "max-tftp-per-guest", 1, nsess,
				MAX(nsess / 4, 1), &per_guest, err, errlen)))
		return rc;
	if (!dir)
		return 0;
	if (!*dir) {
		snprintf(err, errlen, "tftp: want a directory");
		return -EINVAL;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		snprintf(err, errlen, "tftp: out of memory");
		return -ENOMEM;
	}
	t->rootfd = -1;
	r->tftp = t;
	t->scratch = malloc(TFTP_BLKSIZE_MAX);
	t->s = calloc(nsess, sizeof(*t->s));
	if (!t->scratch || !t->s) {
		snprintf(err, errlen, "tftp: out of memory");
		return -ENOMEM;
	}
	t->rootfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (t->rootfd < 0) {
		int e = errno;

		snprintf(err, errlen, "tftp: cannot open directory '%s': %s",
			 dir, strerror(e));
		return -e;
	}
	probe = syscall(SYS_openat2, t->rootfd, ".", &how, sizeof(how));
	if (probe < 0) {
		int e = errno;

		snprintf(err, errlen, "tftp: openat2() failed (%s): "
			 "TFTP needs Linux 5.6 or later", strerror(e));
		return -e;
	}
	close((int)probe);
	t->nsess = (unsigned)nsess;
	t->per_guest = (unsigned)per_guest;
	for (unsigned i = 0; i < t->nsess; i++)
		t->s[i].fd = -1;
	{
		char gw[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &r->gw, gw, sizeof(gw));
		log_info(&r->pb->log, "tftp: serving %s (read-only) at %s:%d",
			 dir, gw, TFTP_PORT);
	}
	return 0;
}

void tftp_free(struct router *r)
{
	struct tftp_server *t = r->tftp;

	if (!t)
		return;
	for (unsigned i = 0; i < t->nsess; i++)
		tftp_end(t, &t->s[i]);
	if (t->rootfd >= 0)
		close(t->rootfd);
	free(t->scratch);
	free(t->s);
	free(t);
	r->tftp = NULL;
}

unsigned tftp_limit(const struct router *r, bool per_guest)
{
	const struct tftp_server *t = r->tftp;

	if (!t)
		return 0;
	return per_guest ? t->per_guest : t->nsess;
}

void tftp_stats_json(struct router *r, FILE *f)
{
	const struct tftp_server *t = r->tftp;
	const struct tftp_stats *s;

	if (!t)
		return;
	s = &t->st;
	fprintf(f, ",\"tftp\":{\"sessions\":%u,\"sessions_max\":%u,"
		   "\"rrq\":%llu,\"wrq_refused\":%llu,\"completed\":%llu,"
		   "\"bytes\":%llu,\"blocks\":%llu,\"retransmits\":%llu,"
		   "\"timeouts\":%llu,\"not_found\":%llu,\"access_violation\":%llu,"
		   "\"illegal_op\":%llu,\"option_negotiation\":%llu,"
		   "\"busy\":%llu,\"unknown_tid\":%llu,\"client_errors\":%llu}",
		t->active, t->nsess, (unsigned long long)s->rrq,
		(unsigned long long)s->wrq, (unsigned long long)s->completed,
		(unsigned long long)s->bytes, (unsigned long long)s->blocks,
		(unsigned long long)s->retransmits,
		(unsigned long long)s->timeouts,
		(unsigned long long)s->not_found,
		(unsigned long long)s->access,
		(unsigned long long)s->illegal,
		(unsigned long long)s->optneg, (unsigned long long)s->busy,
		(unsigned long long)s->unknown_tid,
		(unsigned long long)s->client_errors);
}
