// SPDX-License-Identifier: MIT
/* ctl_client.c: `patchbay ctl`, the control socket's command-line client:
 * one request per run, replies as tables (or raw JSON with --json). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "json.h"
#include "sbuf.h"
#include "sockaddr.h"

#define REPLY_MAX (64u << 20)
#define REPLY_TIMEOUT_MS 30000

static const char usage_text[] =
	"Usage: patchbay ctl [--ctl PATH] [--json] COMMAND [ARGS]\n"
	"\n"
	"Talk to a running patchbay daemon through its control socket\n"
	"(default: $PATCHBAY_CTL, else " CTL_SOCK_NAME " in the runtime directory:\n"
	"$XDG_RUNTIME_DIR/patchbay, /run/patchbay as root, /tmp/patchbay-UID).\n"
	"\n"
	"Commands:\n"
	"  version | segments | ports | flows | leases | forwards | captures\n"
	"  stats                          all counters (JSON)\n"
	"  hostfwd-add [NETDEV] RULE      RULE: [tcp|udp]:[HADDR]:HPORT-[GADDR]:GPORT\n"
	"  hostfwd-del [NETDEV] RULE      RULE may stop after HPORT\n"
	"  port-add SPEC [--pass-fd N]    SPEC in -netdev syntax; with --pass-fd,\n"
	"                                 descriptor N goes along (SPEC says fd=passed)\n"
	"  port-del NETDEV\n"
	"  capture-start ID (--netdev NETDEV | --segment SEGMENT) FILE [--maxlen N]\n"
	"  capture-stop ID\n"
	"  link PORT up|down\n"
	"  request JSON                   send one raw request object\n"
	"\n"
	"Options:\n"
	"  --ctl PATH   the control socket\n"
	"  --json       print the reply line as it came\n"
	"Exit status: 0 on success, 1 when the daemon reports an error, 2 on\n"
	"usage errors or when the daemon cannot be reached.\n";

/* ---- the request ---------------------------------------------------------- */

static int wait_io(int fd, short ev, char *err, size_t errlen)
{
	struct pollfd p = { .fd = fd, .events = ev };
	int n;

	do
		n = poll(&p, 1, REPLY_TIMEOUT_MS);
	while (n < 0 && errno == EINTR);
	if (n == 0) {
		snprintf(err, errlen, "no reply within %d s", REPLY_TIMEOUT_MS / 1000);
		return -ETIMEDOUT;
	}
	return n < 0 ? -errno : 0;
}

/* Send all of buf; fd >= 0 goes along with the first byte. */
static int send_line(int s, const char *buf, size_t len, int fd, char *err,
		     size_t errlen)
{
	size_t off = 0;

	while (off < len) {
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} cbuf;
		struct iovec iov = { (char *)buf + off, len - off };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t n;
		int rc;

		if (off == 0 && fd >= 0)
			msg_put_cmsg(&mh, cbuf.buf, sizeof(cbuf.buf), SOL_SOCKET,
				     SCM_RIGHTS, &fd, sizeof(int));
		n = sendmsg(s, &mh, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			if ((rc = wait_io(s, POLLOUT, err, errlen)))
				return rc;
			continue;
		}
		if (n < 0) {
			rc = -errno;
			snprintf(err, errlen, "sending the request: %s", strerror(-rc));
			return rc;
		}
		off += (size_t)n;
	}
	return 0;
}

int ctl_request(const char *path, const char *line, int fd, char **reply,
		char *err, size_t errlen)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct sbuf in = { .max = REPLY_MAX };
	struct sbuf req = { 0 };
	char *nl = NULL;
	int s, rc;

	*reply = NULL;
	if (strlen(path) >= sizeof(a.sun_path)) {
		snprintf(err, errlen, "%s: path too long for a unix socket", path);
		return -ENAMETOOLONG;
	}
	if (strchr(line, '\n')) {
		snprintf(err, errlen, "a request must be one line");
		return -EINVAL;
	}
	memcpy(a.sun_path, path, strlen(path) + 1);
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0) {
		rc = -errno;
		snprintf(err, errlen, "socket: %s", strerror(-rc));
		return rc;
	}
	if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot connect to %s: %s", path, strerror(-rc));
		goto out;
	}
	sb_puts(&req, line);
	sb_puts(&req, "\n");
	rc = req.overflow ? -ENOMEM
			  : send_line(s, req.p, req.len, fd, err, errlen);
	while (!rc && !nl) {
		ssize_t n;

		if (!sb_reserve(&in, 65536)) {
			snprintf(err, errlen, "reply longer than %u bytes", REPLY_MAX);
			rc = -EMSGSIZE;
			break;
		}
		n = recv(s, in.p + in.len, 65536, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			rc = wait_io(s, POLLIN, err, errlen);
			continue;
		}
		if (n <= 0) {
			rc = n < 0 ? -errno : -ECONNRESET;
			snprintf(err, errlen, "the daemon closed the connection%s%s",
				 n < 0 ? ": " : " without a reply",
				 n < 0 ? strerror(errno) : "");
			break;
		}
		nl = memchr(in.p + in.len, '\n', (size_t)n);
		in.len += (size_t)n;
	}
	if (!rc) {
		*nl = '\0';	/* NOLINT(clang-analyzer-core.NullDereference): rc is 0 only once a newline came */
		*reply = in.p;
		in.p = NULL;
	}
out:
	close(s);
	sb_free(&in);
	sb_free(&req);
	return rc;
}

/* ---- tables ------------------------------------------------------------------ */

#define COLS_MAX 12
#define CELL_MAX 160

struct table {
	int ncols;
	const char *head[COLS_MAX];
	char (*cell)[COLS_MAX][CELL_MAX];
	size_t nrows, cap;
};

static char *table_row(struct table *t)
{
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 32;
		void *p = realloc(t->cell, cap * sizeof(*t->cell));

		if (!p) {
			fputs("patchbay ctl: out of memory\n", stderr);
			exit(2);
		}
		t->cell = p;
		t->cap = cap;
	}
	memset(t->cell[t->nrows], 0, sizeof(*t->cell));
	return t->cell[t->nrows++][0];
}

static void table_print(struct table *t)
{
	size_t w[COLS_MAX];

	for (int c = 0; c < t->ncols; c++) {
		w[c] = strlen(t->head[c]);
		for (size_t r = 0; r < t->nrows; r++)
			if (strlen(t->cell[r][c]) > w[c])
				w[c] = strlen(t->cell[r][c]);
	}
	for (size_t r = 0; r <= t->nrows; r++) {
		for (int c = 0; c < t->ncols; c++) {
			const char *s = r ? t->cell[r - 1][c] : t->head[c];

			if (c == t->ncols - 1)
				printf("%s\n", s);
			else
				printf("%-*s  ", (int)w[c], s);
		}
	}
	free(t->cell);
}

/* Member key of object obj as text ("-" if absent). */
static void field(const struct json_doc *d, uint32_t obj, const char *key,
		  char *out)
{
	uint32_t i = json_get(d, obj, key);
	const struct json_node *n;

	if (i == JSON_NONE) {
		snprintf(out, CELL_MAX, "-");
		return;
	}
	n = &d->node[i];
	switch (n->type) {
	case JSON_STRING:
		snprintf(out, CELL_MAX, "%s", *n->str ? n->str : "-");
		break;
	case JSON_NUMBER:
		if (n->is_int)
			snprintf(out, CELL_MAX, "%lld", (long long)n->i);
		else
			snprintf(out, CELL_MAX, "%g", n->d);
		break;
	case JSON_BOOL:
		snprintf(out, CELL_MAX, "%s", n->b ? "yes" : "no");
		break;
	default:
		snprintf(out, CELL_MAX, "-");
		break;
	}
}

/* Non-zero members of object obj.key as "name=N,..." ("-" if none). */
static void nonzero(const struct json_doc *d, uint32_t obj, const char *key,
		    char *out)
{
	uint32_t o = json_get(d, obj, key);
	size_t len = 0;

	out[0] = '\0';
	for (uint32_t m = o == JSON_NONE ? JSON_NONE : d->node[o].child;
	     m != JSON_NONE; m = d->node[m].next) {
		const struct json_node *n = &d->node[m];

		if (n->type == JSON_NUMBER && n->is_int && n->i && len < CELL_MAX)
			len += (size_t)snprintf(out + len, CELL_MAX - len, "%s%s=%lld",
						len ? "," : "", n->key,
						(long long)n->i);
	}
	if (!len)
		snprintf(out, CELL_MAX, "-");
}

/* Column layouts: a key per column; "!name" marks a computed one. */
static const struct layout {
	const char *list;
	const char *head[COLS_MAX];
	const char *key[COLS_MAX];
} layouts[] = {
	{ "segments",
	  { "ID", "TYPE", "PORTS", "FRAMES", "BYTES", "FLOODED", "FDB" },
	  { "id", "type", "ports", "frames", "bytes", "flooded", "!fdb" } },
	{ "ports",
	  { "NAME", "NETDEV", "TYPE", "SEGMENT", "LINK", "RX-FRAMES", "RX-BYTES",
	    "TX-FRAMES", "TX-BYTES", "DROPS", "PEER" },
	  { "name", "netdev", "type", "segment", "link", "rx_frames", "rx_bytes",
	    "tx_frames", "tx_bytes", "!drops", "peer" } },
	{ "flows",
	  { "NETDEV", "PROTO", "DIR", "GUEST", "REMOTE", "STATE", "IDLE-MS" },
	  { "netdev", "proto", "direction", "guest", "remote", "state",
	    "idle_ms" } },
	{ "leases",
	  { "NETDEV", "IP", "MAC", "NAME", "STATE", "EXPIRES-IN" },
	  { "netdev", "ip", "mac", "name", "state", "expires_in" } },
	{ "forwards",
	  { "NETDEV", "TYPE", "RULE", "CONNS" },
	  { "netdev", "type", "rule", "conns" } },
	{ "captures",
	  { "ID", "NETDEV", "SEGMENT", "FILE", "ACTIVE", "FRAMES", "ERRORS" },
	  { "id", "netdev", "segment", "file", "active", "frames",
	    "write_errors" } },
};

static void print_list(const struct json_doc *d, const struct layout *l)
{
	uint32_t arr = json_get(d, 0, l->list);
	struct table t = { 0 };

	while (t.ncols < COLS_MAX && l->head[t.ncols]) {
		t.head[t.ncols] = l->head[t.ncols];
		t.ncols++;
	}
	for (uint32_t o = arr == JSON_NONE ? JSON_NONE : d->node[arr].child;
	     o != JSON_NONE; o = d->node[o].next) {
		char(*row)[CELL_MAX] = (char(*)[CELL_MAX])table_row(&t);

		for (int c = 0; c < t.ncols; c++) {
			const char *k = l->key[c];

			if (!strcmp(k, "!drops")) {
				nonzero(d, o, "drops", row[c]);
			} else if (!strcmp(k, "!fdb")) {
				char n[CELL_MAX], m[CELL_MAX];

				field(d, o, "fdb_entries", n);
				field(d, o, "fdb_max", m);
				snprintf(row[c], CELL_MAX, "%.70s/%.70s", n, m);
				if (!strcmp(n, "-"))
					snprintf(row[c], CELL_MAX, "-");
			} else {
				field(d, o, k, row[c]);
			}
		}
	}
	table_print(&t);
}

/* ---- the command line ----------------------------------------------------------- */

struct args {
	const char *pos[3];
	int npos;
	const char *netdev, *segment, *maxlen, *pass_fd;
};

static int usage_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("patchbay ctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see patchbay ctl --help)\n", stderr);
	return 2;
}

/* Number of positional arguments each command takes (min, max). */
static const struct {
	const char *name;
	int min, max;
} arities[] = {
	{ "version", 0, 0 },	   { "stats", 0, 0 },	    { "segments", 0, 0 },
	{ "ports", 0, 0 },	   { "flows", 0, 0 },	    { "leases", 0, 0 },
	{ "forwards", 0, 0 },	   { "captures", 0, 0 },    { "hostfwd-add", 1, 2 },
	{ "hostfwd-del", 1, 2 },   { "port-add", 1, 1 },    { "port-del", 1, 1 },
	{ "capture-start", 2, 2 }, { "capture-stop", 1, 1 }, { "link", 2, 2 },
	{ "request", 1, 1 },
};

/* Build the request line for cmd; returns 0 or an exit status. */
static int build_request(struct sbuf *b, const char *cmd,
			 const struct args *a)
{
	if (!strcmp(cmd, "request")) {
		sb_puts(b, a->pos[0]);
		return 0;
	}
	sb_puts(b, "{\"id\":1,\"cmd\":");
	sb_json_str(b, cmd);
	if (!strncmp(cmd, "hostfwd-", 8)) {
		if (a->npos == 2) {
			sb_puts(b, ",\"netdev\":");
			sb_json_str(b, a->pos[0]);
		}
		sb_puts(b, ",\"rule\":");
		sb_json_str(b, a->pos[a->npos - 1]);
	} else if (!strcmp(cmd, "port-add")) {
		sb_puts(b, ",\"spec\":");
		sb_json_str(b, a->pos[0]);
	} else if (!strcmp(cmd, "port-del")) {
		sb_puts(b, ",\"netdev\":");
		sb_json_str(b, a->pos[0]);
	} else if (!strcmp(cmd, "capture-start")) {
		char *end;

		if (!a->netdev == !a->segment)
			return usage_error("%s: give exactly one of --netdev and --segment",
					   cmd);
		sb_puts(b, ",\"capture\":");
		sb_json_str(b, a->pos[0]);
		sb_puts(b, a->netdev ? ",\"netdev\":" : ",\"segment\":");
		sb_json_str(b, a->netdev ? a->netdev : a->segment);
		sb_puts(b, ",\"file\":");
		sb_json_str(b, a->pos[1]);
		if (a->maxlen) {
			unsigned long v = strtoul(a->maxlen, &end, 10);

			if (!*a->maxlen || *end || v > 0xffffffffUL)
				return usage_error("--maxlen: '%s' is not a number",
						   a->maxlen);
			sb_printf(b, ",\"maxlen\":%lu", v);
		}
	} else if (!strcmp(cmd, "capture-stop")) {
		sb_puts(b, ",\"capture\":");
		sb_json_str(b, a->pos[0]);
	} else if (!strcmp(cmd, "link")) {
		if (strcmp(a->pos[1], "up") && strcmp(a->pos[1], "down"))
			return usage_error("link: say up or down, not '%s'",
					   a->pos[1]);
		sb_puts(b, ",\"port\":");
		sb_json_str(b, a->pos[0]);
		sb_printf(b, ",\"up\":%s", strcmp(a->pos[1], "up") ? "false" : "true");
	}
	sb_puts(b, "}");
	return 0;
}

/* Print a successful reply for people. */
static void print_reply(const struct json_doc *d, const char *cmd,
			const char *raw)
{
	char a[CELL_MAX], b[CELL_MAX];

	for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++) {
		if (!strcmp(cmd, layouts[i].list)) {
			print_list(d, &layouts[i]);
			return;
		}
	}
	if (!strcmp(cmd, "version")) {
		field(d, 0, "patchbay", a);
		field(d, 0, "version", b);
		printf("patchbay %s (control schema %s)\n", a, b);
	} else if (!strcmp(cmd, "stats")) {
		/* the daemon writes {"id":1,"ok":true,"stats":{...}} */
		const char *st = strstr(raw, ",\"stats\":");

		if (st)
			printf("%.*s\n", (int)(strlen(st) - 9 - 1), st + 9);
	} else if (!strcmp(cmd, "request")) {
		puts(raw);
	}
}

int ctl_client_main(int argc, char **argv)
{
	static const struct json_limits lim = { .max_depth = 32,
						.max_nodes = 1u << 24,
						.arrays = true };
	const char *path = getenv("PATCHBAY_CTL"), *cmd = NULL;
	char def[4096], err[512], *reply = NULL, *raw;
	struct json_doc d = { 0 };
	struct sbuf req = { 0 };
	struct args a = { 0 };
	bool json = false;
	int fd = -1, rc, min = -1, max = 0;
	uint32_t ok;

	for (int i = 1; i < argc; i++) {
		const char *s = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		const char **opt = NULL;

		if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
			fputs(usage_text, stdout);
			return 0;
		} else if (!strcmp(s, "--json")) {
			json = true;
			continue;
		} else if (!strcmp(s, "--ctl")) {
			opt = &path;
		} else if (!strcmp(s, "--netdev")) {
			opt = &a.netdev;
		} else if (!strcmp(s, "--segment")) {
			opt = &a.segment;
		} else if (!strcmp(s, "--maxlen")) {
			opt = &a.maxlen;
		} else if (!strcmp(s, "--pass-fd")) {
			opt = &a.pass_fd;
		} else if (s[0] == '-' && s[1] == '-' && s[2]) {
			return usage_error("unknown option '%s'", s);
		} else if (!cmd) {
			cmd = s;
			continue;
		} else if (a.npos == 3) {
			return usage_error("%s: too many arguments", cmd);
		} else {
			a.pos[a.npos++] = s;
			continue;
		}
		if (!val)
			return usage_error("%s needs an argument", s);
		*opt = val;
		i++;
	}
	if (!cmd)
		return usage_error("%s", "a command is required");
	for (size_t i = 0; i < sizeof(arities) / sizeof(arities[0]); i++)
		if (!strcmp(arities[i].name, cmd)) {
			min = arities[i].min;
			max = arities[i].max;
		}
	if (min < 0)
		return usage_error("unknown command '%s'", cmd);
	if (a.npos < min || a.npos > max)
		return usage_error("%s: wrong number of arguments", cmd);
	if (a.pass_fd) {
		char *end;
		long v = strtol(a.pass_fd, &end, 10);

		if (!*a.pass_fd || *end || v < 0 || v > 1 << 20 ||
		    fcntl((int)v, F_GETFD) < 0)
			return usage_error("--pass-fd: '%s' is not an open descriptor",
					   a.pass_fd);
		fd = (int)v;
	}
	if (!path || !*path) {
		if (ctl_runtime_dir(def, sizeof(def) - sizeof(CTL_SOCK_NAME) - 1,
				    false, err, sizeof(err)))
			return usage_error("%s", err);
		strcat(def, "/" CTL_SOCK_NAME);
		path = def;
	}
	rc = build_request(&req, cmd, &a);
	if (rc) {
		sb_free(&req);
		return rc;
	}
	rc = ctl_request(path, req.p, fd, &reply, err, sizeof(err));
	sb_free(&req);
	if (rc) {
		fprintf(stderr, "patchbay ctl: %s\n", err);
		return 2;
	}
	/* json_parse() decodes in place: keep the text for printing */
	raw = strdup(reply);
	rc = raw ? json_parse(&d, reply, strlen(reply), &lim, err, sizeof(err))
		 : -ENOMEM;
	if (rc) {
		fprintf(stderr, "patchbay ctl: malformed reply (%s)\n",
			raw ? err : "out of memory");
		free(raw);
		free(reply);
		return 2;
	}
	if (json)
		puts(raw);
	ok = json_get(&d, 0, "ok");
	if (ok == JSON_NONE || d.node[ok].type != JSON_BOOL || !d.node[ok].b) {
		uint32_t e = json_get(&d, 0, "error");
		char code[CELL_MAX], msg[CELL_MAX * 4];
		uint32_t m = json_get(&d, e, "message");

		field(&d, e, "code", code);
		snprintf(msg, sizeof(msg), "%s",
			 m != JSON_NONE && d.node[m].type == JSON_STRING
				 ? d.node[m].str : "(no message)");
		fprintf(stderr, "patchbay ctl: %s: %s\n", code, msg);
		rc = 1;
	} else if (!json) {
		print_reply(&d, cmd, raw);
	}
	json_free(&d);
	free(raw);
	free(reply);
	return rc;
}
