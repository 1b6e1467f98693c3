// SPDX-License-Identifier: MIT
/* netdev.c: create and remove netdevs from QEMU -netdev option strings. */
#include <errno.h>
#include <stdlib.h>
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
