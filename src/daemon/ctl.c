// SPDX-License-Identifier: MIT
/* ctl.c: the daemon's control socket: JSON lines over a private unix
 * socket, served from the daemon's poll loop. */

/*
 * Theory of operation.
 *
 * One listening unix stream socket, mode 0600 in a directory of mode 0700,
 * so only the daemon's user reaches it; guests have no path to it (it is
 * not on any segment).  Each client sends request lines (one JSON object
 * each, docs/control.md) and gets one reply line per request, in order.
 *
 * Nothing here may block or starve the data path:
 *  - every socket is non-blocking; at most max_clients clients
 *    (--max-ctl-clients, CTL_CLIENTS_DEFAULT), and connections beyond that
 *    get an EBUSY error line and are closed at once (counted, and logged
 *    at the 1st, 2nd, 4th, 8th... refusal);
 *  - a client has one input buffer of CTL_LINE_MAX + 1 bytes.  A line that
 *    does not fit gets an E2BIG error and is skipped up to its newline (the
 *    connection stays usable);
 *  - at most CTL_BURST requests of one client are served per loop
 *    iteration; while more are waiting the client is not read and the loop
 *    polls without sleeping (ctl_busy()), so the library's fds get their
 *    turn between bursts;
 *  - replies queue in a per-client output buffer bounded by CTL_OUT_MAX.
 *    A client that does not read its replies is disconnected when the
 *    next one would not fit; a single reply larger than CTL_REPLY_MAX is
 *    replaced by an EMSGSIZE error.
 *
 * Descriptor passing (port-add with "fd=passed"): a descriptor arriving
 * with SCM_RIGHTS belongs to the first request line completed by or after
 * the read that delivered it.  A client that sends the line in one
 * sendmsg() with the descriptor attached, and has no earlier request still
 * unanswered, gets exactly the intended pairing.  A line that gets a
 * descriptor it does not use, or more than one, is refused and the
 * descriptors are closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl.h"
#include "json.h"
#include "sbuf.h"

#define CTL_IN_CAP (CTL_LINE_MAX + 1)
#define CTL_BURST 16
#define CTL_ACCEPT_BURST 16
#define CTL_REPLY_MAX (CTL_OUT_MAX - 4096)
#define CTL_KEEP 65536		/* buffer memory kept between replies */
#define CTL_FDS_MAX 4		/* descriptors one read can carry */
#define CTL_MSG_MAX 600
#define STR_(x) #x
#define STR(x) STR_(x)

struct ctl_client {
	int fd;			/* -1: free slot */
	char *in;		/* CTL_IN_CAP bytes */
	size_t in_len;
	bool discarding;	/* skipping the rest of an over-long line */
	bool pending;		/* complete lines wait in in */
	bool eof;		/* the client shut down its sending side */
	int passed_fd;		/* for the next complete line, or -1 */
	bool fd_error;		/* more than one descriptor came */
	struct sbuf out;
	size_t out_off;		/* sent part of out */
};

struct ctl {
	pb_t *pb;
	int lfd;
	int memfd;		/* scratch file for the library's JSON */
	int reserve;		/* a spare descriptor, given up to refuse a
				 * client when the process has no other */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int max_clients;
	unsigned long long refused;	/* connections over max_clients */
	struct ctl_client cl[CTL_MAX_CLIENTS];
	int map[CTL_POLLFDS];	/* pollfd slot -> client, -1: listener */
	struct sbuf reply;	/* the reply being built */
	struct json_doc doc;
	char msg[CTL_MSG_MAX];	/* error message of the current request */
};

static const struct json_limits req_limits = {
	.max_depth = 2,
	.max_nodes = 64,
	.arrays = false,
};

/* ---- set-up --------------------------------------------------------------- */

int ctl_runtime_dir(char *out, size_t size, bool create, char *err,
		    size_t errlen)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	struct stat st;
	int n;

	if (xdg && *xdg)
		n = snprintf(out, size, "%s/patchbay", xdg);
	else if (geteuid() == 0)
		n = snprintf(out, size, "/run/patchbay");
	else
		n = snprintf(out, size, "/tmp/patchbay-%u", (unsigned)geteuid());
	if (n < 0 || (size_t)n >= size) {
		snprintf(err, errlen, "runtime directory name too long");
		return -ENAMETOOLONG;
	}
	if (create && mkdir(out, 0700) < 0 && errno != EEXIST) {
		n = -errno;
		snprintf(err, errlen, "cannot create %s: %s", out, strerror(-n));
		return n;
	}
	if (!create)
		return 0;
	if (lstat(out, &st) < 0) {
		n = -errno;
		snprintf(err, errlen, "%s: %s", out, strerror(-n));
		return n;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 022)) {
		snprintf(err, errlen, "%s must be a directory of ours that others cannot write to",
			 out);
		return -EPERM;
	}
	return 0;
}

/* Is something accepting connections at path? */
static bool ctl_path_live(const struct sockaddr_un *a)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool live;

	if (fd < 0)
		return false;
	live = connect(fd, (const struct sockaddr *)a, sizeof(*a)) == 0;
	close(fd);
	return live;
}

struct ctl *ctl_open(pb_t *pb, const char *path, int max_clients, char *err,
		     size_t errlen)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct stat st;
	struct ctl *c;
	mode_t old;
	int rc;

	if (strlen(path) >= sizeof(a.sun_path)) {
		snprintf(err, errlen, "%s: path too long for a unix socket", path);
		return NULL;
	}
	memcpy(a.sun_path, path, strlen(path) + 1);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "%s exists and is not a socket", path);
			return NULL;
		}
		if (ctl_path_live(&a)) {
			snprintf(err, errlen, "%s: another daemon is listening there",
				 path);
			return NULL;
		}
		unlink(path);
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->pb = pb;
	c->max_clients = max_clients;
	c->reply.max = CTL_OUT_MAX;
	for (int i = 0; i < CTL_MAX_CLIENTS; i++)
		c->cl[i].fd = c->cl[i].passed_fd = -1;
	memcpy(c->path, path, strlen(path) + 1);
	c->memfd = memfd_create("patchbay-ctl", MFD_CLOEXEC);
	c->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->memfd < 0 || c->lfd < 0)
		goto fail;
	/* No moment at which others could connect: the file is born 0600. */
	old = umask(077);
	rc = bind(c->lfd, (struct sockaddr *)&a, sizeof(a));
	umask(old);
	if (rc < 0)
		goto fail;
	if (chmod(path, 0600) < 0 || listen(c->lfd, 64) < 0) {
		rc = errno;
		unlink(path);
		errno = rc;
		goto fail;
	}
	c->reserve = fcntl(c->lfd, F_DUPFD_CLOEXEC, 0);
	return c;
fail:
	snprintf(err, errlen, "control socket %s: %s", path, strerror(errno));
	if (c->lfd >= 0)
		close(c->lfd);
	if (c->memfd >= 0)
		close(c->memfd);
	free(c);
	return NULL;
}

static void client_close(struct ctl_client *cl)
{
	if (cl->fd < 0)
		return;
	close(cl->fd);
	if (cl->passed_fd >= 0)
		close(cl->passed_fd);
	free(cl->in);
	sb_free(&cl->out);
	memset(cl, 0, sizeof(*cl));
	cl->fd = cl->passed_fd = -1;
}

void ctl_close(struct ctl *c)
{
	if (!c)
		return;
	for (int i = 0; i < CTL_MAX_CLIENTS; i++)
		client_close(&c->cl[i]);
	close(c->lfd);
	close(c->memfd);
	if (c->reserve >= 0)
		close(c->reserve);
	unlink(c->path);
	sb_free(&c->reply);
	json_free(&c->doc);
	free(c);
}

/* ---- output ----------------------------------------------------------------- */

/* Send what we can; false if the client is gone. */
static bool client_flush(struct ctl_client *cl)
{
	while (cl->out_off < cl->out.len) {
		ssize_t n = send(cl->fd, cl->out.p + cl->out_off,
				 cl->out.len - cl->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (n <= 0) {
			client_close(cl);
			return false;
		}
		cl->out_off += (size_t)n;
	}
	cl->out_off = 0;
	sb_reset(&cl->out, CTL_KEEP);
	if (cl->eof && !cl->pending && !cl->in_len) {
		client_close(cl);
		return false;
	}
	return true;
}

/* Queue the finished reply line; false if the client had to go. */
static bool client_send(struct ctl *c, struct ctl_client *cl)
{
	size_t queued = cl->out.len - cl->out_off;

	if (queued + c->reply.len > CTL_OUT_MAX) {
		fprintf(stderr, "patchbay: warning: control client not reading its replies (%zu bytes queued): disconnected\n",
			queued);
		client_close(cl);
		return false;
	}
	if (cl->out_off && cl->out.len + c->reply.len > CTL_OUT_MAX) {
		memmove(cl->out.p, cl->out.p + cl->out_off, queued);
		cl->out.len = queued;
		cl->out_off = 0;
	}
	cl->out.max = CTL_OUT_MAX;
	sb_put(&cl->out, c->reply.p, c->reply.len);
	if (cl->out.overflow) {
		client_close(cl);
		return false;
	}
	return client_flush(cl);
}

/* ---- requests ---------------------------------------------------------------- */

struct req {
	struct ctl *c;
	uint32_t id;		/* node of "id" or JSON_NONE */
	int fd;			/* passed descriptor or -1 */
};

/* The error of the current request: -err returned, message kept. */
static int req_fail(struct ctl *c, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int req_fail(struct ctl *c, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
	va_end(ap);
	return err;
}

/* The library's error: its message, or the code's text. */
static int lib_fail(struct ctl *c, int rc)
{
	const char *m = pb_errmsg(c->pb);

	return req_fail(c, rc, "%s", *m ? m : pb_strerror(rc));
}

/* String member key: NULL if absent; *rc set if present but no string. */
static const char *arg_str(struct ctl *c, const char *key, bool required,
			   int *rc)
{
	uint32_t i = json_get(&c->doc, 0, key);

	if (i == JSON_NONE) {
		if (required && !*rc)
			*rc = req_fail(c, -EINVAL, "'%s' (a string) is required",
				       key);
		return NULL;
	}
	if (c->doc.node[i].type != JSON_STRING) {
		if (!*rc)
			*rc = req_fail(c, -EINVAL, "'%s' must be a string", key);
		return NULL;
	}
	return c->doc.node[i].str;
}

/* The library's JSON (stats or a list) as member name of the reply. */
static int put_lib_json(struct ctl *c, const char *name, int list)
{
	off_t size;
	ssize_t n;
	int rc;

	if (ftruncate(c->memfd, 0) < 0 || lseek(c->memfd, 0, SEEK_SET) < 0)
		return req_fail(c, -errno, "scratch file: %s", strerror(errno));
	rc = list < 0 ? pb_stats_json(c->pb, c->memfd)
		      : pb_list_json(c->pb, (enum pb_list)list, c->memfd);
	if (rc)
		return lib_fail(c, rc);
	size = lseek(c->memfd, 0, SEEK_CUR);
	if (size < 0)
		return req_fail(c, -errno, "scratch file: %s", strerror(errno));
	if ((size_t)size > CTL_REPLY_MAX) {
		rc = req_fail(c, -EMSGSIZE, "the %s reply would be %lld bytes (at most %u)",
			      name, (long long)size, (unsigned)CTL_REPLY_MAX);
		goto out;
	}
	sb_printf(&c->reply, ",\"%s\":", name);
	if (!sb_reserve(&c->reply, (size_t)size)) {
		rc = req_fail(c, -ENOMEM, "out of memory");
		goto out;
	}
	n = pread(c->memfd, c->reply.p + c->reply.len, (size_t)size, 0);
	if (n != size) {
		rc = req_fail(c, -EIO, "scratch file: short read");
		goto out;
	}
	/* drop the library's trailing newline */
	while (n > 0 && c->reply.p[c->reply.len + (size_t)n - 1] == '\n')
		n--;
	c->reply.len += (size_t)n;
	c->reply.p[c->reply.len] = '\0';
out:
	if (ftruncate(c->memfd, 0) < 0)
		rc = rc ? rc : req_fail(c, -errno, "scratch file: %s", strerror(errno));
	return rc;
}

static int cmd_version(struct req *r)
{
	sb_printf(&r->c->reply, ",\"version\":%d,\"patchbay\":",
		  CTL_SCHEMA_VERSION);
	sb_json_str(&r->c->reply, PB_VERSION_STRING);
	return 0;
}

static int cmd_stats(struct req *r)
{
	return put_lib_json(r->c, "stats", -1);
}

/* The listing commands share one handler; the name picks the list. */
static const struct {
	const char *name;
	enum pb_list list;
} lists[] = {
	{ "segments", PB_LIST_SEGMENTS }, { "ports", PB_LIST_PORTS },
	{ "flows", PB_LIST_FLOWS },	  { "leases", PB_LIST_LEASES },
	{ "forwards", PB_LIST_FORWARDS }, { "captures", PB_LIST_CAPTURES },
};

static int cmd_list(struct req *r)
{
	const char *cmd = arg_str(r->c, "cmd", true, &(int){ 0 });

	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		if (!strcmp(cmd, lists[i].name))
			return put_lib_json(r->c, lists[i].name,
					    (int)lists[i].list);
	return req_fail(r->c, -EINVAL, "no list '%s'", cmd);
}

static int cmd_hostfwd(struct req *r)
{
	struct ctl *c = r->c;
	int rc = 0;
	const char *cmd = arg_str(c, "cmd", true, &rc);
	const char *nd = arg_str(c, "netdev", false, &rc);
	const char *rule = arg_str(c, "rule", true, &rc);

	if (rc)
		return rc;
	rc = !strcmp(cmd, "hostfwd-add") ? pb_hostfwd_add(c->pb, nd, rule)
					 : pb_hostfwd_del(c->pb, nd, rule);
	return rc ? lib_fail(c, rc) : 0;
}

static int cmd_port_add(struct req *r)
{
	int rc = 0;
	const char *spec = arg_str(r->c, "spec", true, &rc);

	if (rc)
		return rc;
	rc = pb_netdev_add_fd(r->c->pb, spec, r->fd);
	return rc ? lib_fail(r->c, rc) : 0;
}

static int cmd_port_del(struct req *r)
{
	int rc = 0;
	const char *id = arg_str(r->c, "netdev", true, &rc);

	if (rc)
		return rc;
	rc = pb_netdev_del(r->c->pb, id);
	return rc ? lib_fail(r->c, rc) : 0;
}

/* Append ",key=value" to a QEMU-style spec, doubling commas in value. */
static void spec_put(struct sbuf *b, const char *key, const char *value)
{
	sb_printf(b, "%s%s=", b->len ? "," : "", key);
	for (const char *s = value; *s; s++) {
		sb_put(b, s, 1);
		if (*s == ',')
			sb_put(b, ",", 1);
	}
}

static int cmd_capture_start(struct req *r)
{
	struct ctl *c = r->c;
	struct sbuf spec = { .max = 8192 };
	int rc = 0;
	const char *id = arg_str(c, "capture", true, &rc);
	const char *nd = arg_str(c, "netdev", false, &rc);
	const char *seg = arg_str(c, "segment", false, &rc);
	const char *file = arg_str(c, "file", true, &rc);
	uint32_t ml = json_get(&c->doc, 0, "maxlen");

	if (rc)
		return rc;
	if (!nd == !seg)
		return req_fail(c, -EINVAL, "give exactly one of 'netdev' and 'segment'");
	if (ml != JSON_NONE &&
	    (c->doc.node[ml].type != JSON_NUMBER || !c->doc.node[ml].is_int ||
	     c->doc.node[ml].i < 0 || c->doc.node[ml].i > UINT32_MAX))
		return req_fail(c, -EINVAL, "'maxlen' must be a non-negative integer");
	spec_put(&spec, "id", id);
	spec_put(&spec, nd ? "netdev" : "segment", nd ? nd : seg);
	spec_put(&spec, "file", file);
	if (ml != JSON_NONE)
		sb_printf(&spec, ",maxlen=%lld", (long long)c->doc.node[ml].i);
	if (spec.overflow)
		rc = req_fail(c, -EINVAL, "capture arguments too long");
	else if ((rc = pb_capture_add(c->pb, spec.p)))
		rc = lib_fail(c, rc);
	sb_free(&spec);
	return rc;
}

static int cmd_capture_stop(struct req *r)
{
	int rc = 0;
	const char *id = arg_str(r->c, "capture", true, &rc);

	if (rc)
		return rc;
	rc = pb_capture_del(r->c->pb, id);
	return rc ? lib_fail(r->c, rc) : 0;
}

static int cmd_link(struct req *r)
{
	struct ctl *c = r->c;
	int rc = 0;
	const char *port = arg_str(c, "port", true, &rc);
	uint32_t up = json_get(&c->doc, 0, "up");

	if (rc)
		return rc;
	if (up == JSON_NONE || c->doc.node[up].type != JSON_BOOL)
		return req_fail(c, -EINVAL, "'up' (true or false) is required");
	rc = pb_port_set_link(c->pb, port, c->doc.node[up].b);
	return rc ? lib_fail(c, rc) : 0;
}

/* Every request may carry "id" and "cmd"; a command lists its own keys. */
static const struct command {
	const char *name;
	int (*fn)(struct req *r);
	const char *const keys[6];
	bool takes_fd;
} commands[] = {
	{ "version", cmd_version, { NULL }, false },
	{ "stats", cmd_stats, { NULL }, false },
	{ "segments", cmd_list, { NULL }, false },
	{ "ports", cmd_list, { NULL }, false },
	{ "flows", cmd_list, { NULL }, false },
	{ "leases", cmd_list, { NULL }, false },
	{ "forwards", cmd_list, { NULL }, false },
	{ "captures", cmd_list, { NULL }, false },
	{ "hostfwd-add", cmd_hostfwd, { "netdev", "rule", NULL }, false },
	{ "hostfwd-del", cmd_hostfwd, { "netdev", "rule", NULL }, false },
	{ "port-add", cmd_port_add, { "spec", NULL }, true },
	{ "port-del", cmd_port_del, { "netdev", NULL }, false },
	{ "capture-start", cmd_capture_start,
	  { "capture", "netdev", "segment", "file", "maxlen", NULL }, false },
	{ "capture-stop", cmd_capture_stop, { "capture", NULL }, false },
	{ "link", cmd_link, { "port", "up", NULL }, false },
};

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

/* Every member of the request is one cmd accepts. */
static int check_keys(struct ctl *c, const struct command *cmd)
{
	for (uint32_t m = c->doc.node[0].child; m != JSON_NONE;
	     m = c->doc.node[m].next) {
		const char *k = c->doc.node[m].key;
		bool ok = !strcmp(k, "id") || !strcmp(k, "cmd");

		for (int i = 0; !ok && cmd->keys[i]; i++)
			ok = !strcmp(k, cmd->keys[i]);
		if (!ok) {
			struct sbuf acc = { .max = 200 };

			sb_puts(&acc, "id, cmd");
			for (int i = 0; cmd->keys[i]; i++)
				sb_printf(&acc, ", %s", cmd->keys[i]);
			req_fail(c, -EINVAL, "%s: unknown member '%.64s' (accepted: %s)",
				 cmd->name, k, acc.p ? acc.p : "");
			sb_free(&acc);
			return -EINVAL;
		}
	}
	return 0;
}

/* The request's "id" if it is one we echo (an integer, a short string). */
static uint32_t request_id(const struct json_doc *d)
{
	uint32_t n = json_get(d, 0, "id");
	const struct json_node *id = n == JSON_NONE ? NULL : &d->node[n];

	if (id && ((id->type == JSON_NUMBER && id->is_int) ||
		   (id->type == JSON_STRING && id->len <= 256)))
		return n;
	return JSON_NONE;
}

static int run_request(struct req *r, bool cl_fd_error)
{
	struct ctl *c = r->c;
	const struct command *cmd;
	const char *name;
	uint32_t n;
	int rc = 0;

	n = json_get(&c->doc, 0, "id");
	if (n != JSON_NONE && r->id == JSON_NONE)
		return req_fail(c, -EINVAL, "'id' must be an integer or a string of at most 256 bytes");
	if (cl_fd_error)
		return req_fail(c, -EINVAL, "more than one file descriptor came with the request");
	name = arg_str(c, "cmd", true, &rc);
	if (rc)
		return rc;
	cmd = find_command(name);
	if (!cmd) {
		struct sbuf acc = { .max = 400 };

		for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
			sb_printf(&acc, "%s%s", i ? ", " : "", commands[i].name);
		rc = req_fail(c, -ENOSYS, "unknown command '%.64s' (accepted: %s)",
			      name, acc.p ? acc.p : "");
		sb_free(&acc);
		return rc;
	}
	if ((rc = check_keys(c, cmd)))
		return rc;
	if (r->fd >= 0 && !cmd->takes_fd)
		return req_fail(c, -EINVAL, "%s takes no file descriptor", name);
	return cmd->fn(r);
}

/* Reply head: {"id":...  (null when the request had none) */
static void reply_head(struct ctl *c, uint32_t id)
{
	const struct json_node *n = id == JSON_NONE ? NULL : &c->doc.node[id];

	sb_reset(&c->reply, CTL_KEEP);
	if (!n)
		sb_puts(&c->reply, "{\"id\":null");
	else if (n->type == JSON_STRING)
		sb_puts(&c->reply, "{\"id\":"), sb_json_str(&c->reply, n->str);
	else
		sb_printf(&c->reply, "{\"id\":%lld", (long long)n->i);
}

static const char *err_name(int err)
{
	const char *s = strerrorname_np(err < 0 ? -err : err);

	return s ? s : "EIO";
}

/* Replace the reply with an error (keeps the head). */
static void reply_error(struct ctl *c, uint32_t id, int err)
{
	reply_head(c, id);
	sb_printf(&c->reply, ",\"ok\":false,\"error\":{\"code\":\"%s\",\"message\":",
		  err_name(err));
	sb_json_str(&c->reply, c->msg);
	sb_puts(&c->reply, "}}\n");
}

/* One request line (without its newline); fd came with it or is -1.
 * Returns false if the client was disconnected. */
static bool serve_line(struct ctl *c, struct ctl_client *cl, char *line,
		       size_t len, int fd)
{
	struct req r = { .c = c, .id = JSON_NONE, .fd = fd };
	int rc;

	c->msg[0] = '\0';
	rc = json_parse(&c->doc, line, len, &req_limits, c->msg,
			sizeof(c->msg));
	if (rc) {
		rc = rc == -EINVAL ? -EBADMSG : rc;
	} else {
		r.id = request_id(&c->doc);
		reply_head(c, r.id);
		sb_puts(&c->reply, ",\"ok\":true");
		rc = run_request(&r, cl->fd_error);
	}
	cl->fd_error = false;
	if (fd >= 0)
		close(fd);	/* the library keeps its own duplicate */
	if (!rc) {
		sb_puts(&c->reply, "}\n");
		if (c->reply.overflow)
			rc = req_fail(c, -EMSGSIZE, "reply too large");
	}
	if (rc)
		reply_error(c, r.id, rc);
	return client_send(c, cl);
}

/* Only white space? (blank lines are skipped, no reply) */
static bool blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return false;
	return true;
}

/* Error reply to no particular request (id null). */
static bool send_error(struct ctl *c, struct ctl_client *cl, int err,
		       const char *msg)
{
	snprintf(c->msg, sizeof(c->msg), "%s", msg);
	reply_error(c, JSON_NONE, err);
	return client_send(c, cl);
}

/* Serve up to CTL_BURST complete lines.  false: client gone. */
static bool client_serve(struct ctl *c, struct ctl_client *cl)
{
	size_t start = 0;
	unsigned served = 0;
	char *nl = NULL;

	cl->pending = false;
	while (start < cl->in_len &&
	       (nl = memchr(cl->in + start, '\n', cl->in_len - start))) {
		char *line = cl->in + start;
		size_t len = (size_t)(nl - line);
		int fd = cl->passed_fd;

		if (served == CTL_BURST) {
			cl->pending = true;
			break;
		}
		cl->passed_fd = -1;
		start += len + 1;
		if (blank(line, len)) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		served++;
		if (!serve_line(c, cl, line, len, fd))
			return false;
	}
	memmove(cl->in, cl->in + start, cl->in_len - start);
	cl->in_len -= start;
	if (cl->pending)
		return true;
	if (cl->in_len == CTL_IN_CAP) {
		/* no newline in a full buffer: skip to the next one */
		cl->in_len = 0;
		cl->discarding = true;
		if (cl->passed_fd >= 0)
			close(cl->passed_fd);
		cl->passed_fd = -1;
		return send_error(c, cl, -E2BIG,
				  "request line longer than " STR(CTL_LINE_MAX)
				  " bytes: skipped up to the next newline");
	}
	if (cl->eof && cl->in_len) {
		/* a last line without its newline */
		size_t len = cl->in_len;
		int fd = cl->passed_fd;

		cl->in_len = 0;
		cl->passed_fd = -1;
		if (!blank(cl->in, len))
			return serve_line(c, cl, cl->in, len, fd);
		if (fd >= 0)
			close(fd);
	}
	return true;
}

/* Take descriptors from a read's control data. */
static void take_fds(struct ctl_client *cl, struct msghdr *mh)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm;
	     cm = CMSG_NXTHDR(mh, cm)) {
		size_t n;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(fd));
			if (cl->passed_fd < 0 && !cl->discarding) {
				cl->passed_fd = fd;
			} else {
				close(fd);
				if (!cl->discarding)
					cl->fd_error = true;
			}
		}
	}
	if (mh->msg_flags & MSG_CTRUNC)
		cl->fd_error = true;
}

/* Read what the client sent and serve it.  false: client gone. */
static bool client_read(struct ctl *c, struct ctl_client *cl)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * CTL_FDS_MAX)];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = { cl->in + cl->in_len, CTL_IN_CAP - cl->in_len };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cbuf.buf,
			     .msg_controllen = sizeof(cbuf.buf) };
	ssize_t n = recvmsg(cl->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return true;
	if (n < 0) {
		client_close(cl);
		return false;
	}
	take_fds(cl, &mh);
	if (n == 0) {
		cl->eof = true;
	} else if (cl->discarding) {
		char *nl = memchr(iov.iov_base, '\n', (size_t)n);

		if (!nl)
			return true;
		/* the rest after the newline starts a new line */
		cl->discarding = false;
		n -= nl + 1 - (char *)iov.iov_base;
		memmove(cl->in, nl + 1, (size_t)n);
		cl->in_len = (size_t)n;
	} else {
		cl->in_len += (size_t)n;
	}
	return client_serve(c, cl);
}

/* ---- connections --------------------------------------------------------------- */

/* Tell a client we cannot serve why (one error line), and let it go. */
static void ctl_refuse(struct ctl *c, int fd, const char *line, size_t len)
{
	if (send(fd, line, len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		(void)0;	/* it goes away regardless */
	close(fd);
	c->refused++;
}

static void ctl_accept(struct ctl *c)
{
	char busy[160];
	int n = snprintf(busy, sizeof(busy),
			 "{\"id\":null,\"ok\":false,\"error\":{\"code\":"
			 "\"EBUSY\",\"message\":\"too many control clients "
			 "(at most %d)\"}}\n", c->max_clients);

	for (int k = 0; k < CTL_ACCEPT_BURST; k++) {
		int fd = accept4(c->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct ctl_client *cl = NULL;

		if (fd < 0 && (errno == EMFILE || errno == ENFILE) &&
		    c->reserve >= 0) {
			/* Out of descriptors: the pending client would keep
			 * the listener readable (and us spinning).  Take it
			 * with the spare one, tell it, let it go. */
			close(c->reserve);
			fd = accept4(c->lfd, NULL, NULL,
				     SOCK_NONBLOCK | SOCK_CLOEXEC);
			if (fd >= 0) {
				static const char nofd[] =
					"{\"id\":null,\"ok\":false,\"error\":"
					"{\"code\":\"EMFILE\",\"message\":\"the "
					"daemon is out of file descriptors\"}}\n";

				ctl_refuse(c, fd, nofd, sizeof(nofd) - 1);
			}
			c->reserve = fcntl(c->lfd, F_DUPFD_CLOEXEC, 0);
			continue;
		}
		if (fd < 0)
			return;
		for (int i = 0; i < c->max_clients && !cl; i++)
			if (c->cl[i].fd < 0)
				cl = &c->cl[i];
		if (cl)
			cl->in = malloc(CTL_IN_CAP);
		if (!cl || !cl->in) {
			ctl_refuse(c, fd, busy, (size_t)n);
			if (!(c->refused & (c->refused - 1)))
				fprintf(stderr, "patchbay: warning: control "
					"socket: %llu connections refused "
					"(--max-ctl-clients %d)\n",
					c->refused, c->max_clients);
			continue;
		}
		cl->fd = fd;
	}
}

int ctl_pollfds(struct ctl *c, struct pollfd *pfd)
{
	int n = 0;

	pfd[n] = (struct pollfd){ .fd = c->lfd, .events = POLLIN };
	c->map[n++] = -1;
	for (int i = 0; i < CTL_MAX_CLIENTS; i++) {
		struct ctl_client *cl = &c->cl[i];
		short ev = 0;

		if (cl->fd < 0)
			continue;
		if (!cl->pending && !cl->eof)
			ev |= POLLIN;
		if (cl->out.len > cl->out_off)
			ev |= POLLOUT;
		pfd[n] = (struct pollfd){ .fd = cl->fd, .events = ev };
		c->map[n++] = i;
	}
	return n;
}

bool ctl_busy(const struct ctl *c)
{
	for (int i = 0; i < CTL_MAX_CLIENTS; i++)
		if (c->cl[i].fd >= 0 && c->cl[i].pending)
			return true;
	return false;
}

void ctl_handle(struct ctl *c, const struct pollfd *pfd, int n)
{
	bool accept_now = false;

	for (int k = 0; k < n; k++) {
		struct ctl_client *cl;

		if (c->map[k] < 0) {
			accept_now = pfd[k].revents & POLLIN;
			continue;
		}
		cl = &c->cl[c->map[k]];
		if (cl->fd != pfd[k].fd)
			continue;
		if ((pfd[k].revents & POLLOUT) && !client_flush(cl))
			continue;
		if (cl->pending) {
			if (!client_serve(c, cl))
				continue;
		} else if (pfd[k].revents & (POLLIN | POLLHUP | POLLERR)) {
			if (!client_read(c, cl))
				continue;
		}
		/* a client that stopped sending goes once all is answered */
		if (cl->eof)
			client_flush(cl);
	}
	if (c->reply.cap > CTL_KEEP)
		sb_reset(&c->reply, CTL_KEEP);
	if (accept_now)
		ctl_accept(c);
}
