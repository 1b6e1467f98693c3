// SPDX-License-Identifier: MIT
/* netdev.c: create and remove netdevs from QEMU -netdev option strings. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capture.h"
#include "netdev.h"
#include "port.h"
#include "router_api.h"
#include "seg.h"

static const struct backend *const backends[] = {
	&backend_stream,
	&backend_socket,
	&backend_dgram,
	&backend_tap,
	&backend_user,
};

int netdev_find(const struct pb *pb, const char *id)
{
	for (uint32_t i = 0; i < pb->max_netdevs; i++)
		if (pb->netdevs[i].used && !strcmp(pb->netdevs[i].id, id))
			return (int)i;
	return -1;
}

int netdev_segment(struct pb *pb, const char *name)
{
	int s;

	if (name && *name) {
		s = seg_find(pb, name);
		if (s < 0)
			return pb__err(pb, -ENOENT, "no segment '%s'", name);
		return s;
	}
	for (uint32_t i = 0; i < pb->max_segs; i++)
		if (pb->segs[i].used)
			return (int)i;
	return pb__err(pb, -ENOENT, "no segment exists yet");
}

struct netdev *netdev_alloc(struct pb *pb, const char *id, int seg,
			    const struct netdev_ops *ops)
{
	for (uint32_t i = 0; i < pb->max_netdevs; i++) {
		struct netdev *nd = &pb->netdevs[i];

		if (nd->used)
			continue;
		uint32_t gen = nd->gen + 1;

		memset(nd, 0, sizeof(*nd));
		nd->used = true;
		nd->gen = gen;
		str_copy(nd->id, sizeof(nd->id), id);
		nd->seg = seg;
		nd->fd = -1;
		nd->timer = -1;
		nd->capture = -1;
		nd->ops = ops;
		return nd;
	}
	return NULL;
}

int netdev_watch(struct pb *pb, struct netdev *nd, int fd, uint32_t events)
{
	return loop_add(&pb->loop, fd, events,
			ref_make(REF_NETDEV, netdev_index(pb, nd), nd->gen));
}

static bool valid_id(const char *id)
{
	/* QEMU ids: a letter, then letters, digits, '-', '.', '_'.  We
	 * reserve '.' for the names of accepted connections. */
	if (!((*id >= 'a' && *id <= 'z') || (*id >= 'A' && *id <= 'Z')))
		return false;
	for (; *id; id++)
		if (!((*id >= 'a' && *id <= 'z') || (*id >= 'A' && *id <= 'Z') ||
		      (*id >= '0' && *id <= '9') || *id == '-' || *id == '_'))
			return false;
	return true;
}

int netdev_add(struct pb *pb, const char *spec)
{
	char *err = pb->errmsg;
	size_t errlen = sizeof(pb->errmsg);
	const struct backend *be = NULL;
	char what[64];
	const char *type, *id;
	struct netdev *nd;
	struct opts *o;
	int seg, ret;

	o = malloc(sizeof(*o));
	if (!o)
		return pb__err(pb, -ENOMEM, "out of memory");
	ret = opts_parse(o, spec, "type", err, errlen);
	if (ret)
		goto out;
	type = opts_get(o, "type");
	if (!type) {
		ret = pb__err(pb, -EINVAL,
			      "netdev: the type must come first (stream, socket, dgram, tap, user)");
		goto out;
	}
	for (size_t i = 0; i < ARRAY_SIZE(backends); i++)
		if (!strcmp(backends[i]->type, type))
			be = backends[i];
	if (!be) {
		ret = pb__err(pb, -EINVAL,
			      "netdev: unknown type '%s' (accepted: stream, socket, dgram, tap, user)",
			      type);
		goto out;
	}
	snprintf(what, sizeof(what), "netdev %s", be->type);
	ret = opts_check(o, what, be->keys, be->repeatable, err, errlen);
	if (ret)
		goto out;
	id = opts_get(o, "id");
	if (!id) {
		ret = pb__err(pb, -EINVAL, "%s: 'id' is required", what);
		goto out;
	}
	if (strlen(id) >= PB_ID_MAX || !valid_id(id)) {
		ret = pb__err(pb, -EINVAL,
			      "%s: bad id '%s' (a letter, then letters, digits, '-' or '_'; at most %d)",
			      what, id, PB_ID_MAX - 1);
		goto out;
	}
	if (netdev_find(pb, id) >= 0) {
		ret = pb__err(pb, -EEXIST, "%s: duplicate id '%s'", what, id);
		goto out;
	}
	seg = netdev_segment(pb, opts_get(o, "segment"));
	if (seg < 0) {
		ret = pb__err(pb, seg, "netdev %s: %s", id, pb->errmsg);
		goto out;
	}
	nd = netdev_alloc(pb, id, seg, NULL);
	if (!nd) {
		ret = pb__err(pb, -ENOSPC, "netdev %s: too many netdevs (at most %u)",
			      id, pb->max_netdevs);
		goto out;
	}
	ret = be->create(pb, nd, o);
	if (ret) {
		/* the backend released what it made */
		nd->used = false;
		goto out;
	}
	log_info(&pb->log, "netdev %s: %s on segment %s", id, be->type,
		 pb->segs[seg].id);
out:
	free(o);
	return ret;
}

/* ---- a descriptor passed by the embedder (pb_netdev_add_fd) -------------- */

/* Keys whose value is a descriptor number, and the key that must say
 * "fd" for it to be used. */
static const struct {
	const char *key, *type_key;
} fd_keys[] = {
	{ "fd", NULL },
	{ "addr.str", "addr.type" },
	{ "local.str", "local.type" },
};

/* Does spec have the element "key=val" (whole, outside escapes)? */
static bool spec_has(const char *spec, const char *key, const char *val)
{
	size_t kl = strlen(key), vl = strlen(val);
	const char *p = spec;

	for (;;) {
		if (!strncmp(p, key, kl) && p[kl] == '=' &&
		    !strncmp(p + kl + 1, val, vl) &&
		    (p[kl + 1 + vl] == '\0' ||
		     (p[kl + 1 + vl] == ',' && p[kl + 2 + vl] != ',')))
			return true;
		/* to the start of the next element */
		while (*p && !(*p == ',' && p[1] != ','))
			p += *p == ',' ? 2 : 1;
		if (!*p)
			return false;
		p++;
	}
}

/*
 * Copy spec into out (at least strlen(spec) + 16 bytes) with the value
 * "passed" of a descriptor key replaced by fd.  A numeric descriptor is
 * refused: whoever sends a spec through a control channel must not name
 * the daemon's own descriptors.  "passed" must appear exactly when fd >= 0,
 * once, under a key the spec really uses (addr.str with addr.type=fd...).
 */
static int passed_fd_spec(struct pb *pb, const char *spec, int fd, char *out)
{
	const char *p = spec;
	size_t o = 0;
	int uses = 0;

	while (*p) {
		const char *e = p, *eq;
		size_t klen;
		int k = -1;

		while (*e && !(*e == ',' && e[1] != ','))
			e += *e == ',' ? 2 : 1;
		eq = memchr(p, '=', (size_t)(e - p));
		klen = eq ? (size_t)(eq - p) : 0;
		for (size_t i = 0; eq && i < ARRAY_SIZE(fd_keys); i++)
			if (strlen(fd_keys[i].key) == klen &&
			    !memcmp(p, fd_keys[i].key, klen))
				k = (int)i;
		if (k < 0) {
			memcpy(out + o, p, (size_t)(e - p));
			o += (size_t)(e - p);
		} else if ((size_t)(e - eq - 1) != 6 || memcmp(eq + 1, "passed", 6)) {
			return pb__err(pb, -EINVAL, "netdev: '%.*s': only '%s=passed' is accepted here (send the descriptor along)",
				       (int)(e - p), p, fd_keys[k].key);
		} else if (fd < 0) {
			return pb__err(pb, -EINVAL, "netdev: '%s=passed' but no descriptor came along",
				       fd_keys[k].key);
		} else if (uses++) {
			return pb__err(pb, -EINVAL, "netdev: only one key may say 'passed'");
		} else if (fd_keys[k].type_key &&
			   !spec_has(spec, fd_keys[k].type_key, "fd")) {
			return pb__err(pb, -EINVAL, "netdev: '%s=passed' needs %s=fd",
				       fd_keys[k].key, fd_keys[k].type_key);
		} else {
			o += (size_t)sprintf(out + o, "%s=%d", fd_keys[k].key, fd);
		}
		if (*e)
			out[o++] = *e++;
		p = e;
	}
	out[o] = '\0';
	if (fd >= 0 && !uses)
		return pb__err(pb, -EINVAL, "netdev: a descriptor came along but the spec does not use it (write fd=passed, addr.str=passed or local.str=passed)");
	return 0;
}

/* Are a and b the same open file (so that b is still our duplicate)? */
static bool same_file(int a, int b)
{
	struct stat sa, sb;

	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 &&
	       sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int pb_netdev_add_fd(pb_t *pb, const char *spec, int fd)
{
	int dupfd = -1, rc;
	char *buf;

	pb->errmsg[0] = '\0';
	if (!spec || strlen(spec) > OPTS_MAX_LEN)
		return pb__err(pb, -EINVAL, "netdev: no spec, or longer than %d bytes",
			       OPTS_MAX_LEN);
	buf = malloc(strlen(spec) + 16);
	if (!buf)
		return pb__err(pb, -ENOMEM, "out of memory");
	if (fd >= 0) {
		dupfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		if (dupfd < 0) {
			rc = pb__err(pb, -errno, "netdev: passed descriptor: %s",
				     strerror(errno));
			goto out;
		}
	}
	rc = passed_fd_spec(pb, spec, dupfd, buf);
	if (!rc) {
		loop_update_now(&pb->loop);
		rc = netdev_add(pb, buf);
	}
	/* A backend that failed may or may not have closed the duplicate. */
	if (rc && dupfd >= 0 && same_file(dupfd, fd))
		close(dupfd);
out:
	free(buf);
	return rc;
}

static void netdev_free(struct pb *pb, struct netdev *nd)
{
	for (uint32_t i = 0; i < pb->max_ports; i++) {
		struct port *p = &pb->ports[i];

		if (p->used && p->netdev == (int)netdev_index(pb, nd))
			port_release(pb, p);
	}
	capture_detach(pb, nd->capture);
	if (nd->fd >= 0) {
		loop_del(&pb->loop, nd->fd);
		close(nd->fd);
		nd->fd = -1;
	}
	timer_free(&pb->loop, nd->timer);
	if (nd->ops && nd->ops->close)
		nd->ops->close(pb, nd);
	free(nd->priv);
	nd->priv = NULL;
	nd->used = false;
}

int netdev_del(struct pb *pb, const char *id)
{
	int i = netdev_find(pb, id);

	if (i < 0)
		return pb__err(pb, -ENOENT, "no netdev '%s'", id);
	if (pb->in_round)
		return pb__err(pb, -EBUSY, "netdev %s: cannot remove from inside a callback",
			       id);
	netdev_free(pb, &pb->netdevs[i]);
	log_info(&pb->log, "netdev %s: removed", id);
	return 0;
}

void netdev_del_all(struct pb *pb)
{
	for (uint32_t i = 0; i < pb->max_netdevs; i++)
		if (pb->netdevs[i].used)
			netdev_free(pb, &pb->netdevs[i]);
}
