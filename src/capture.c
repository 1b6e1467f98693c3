// SPDX-License-Identifier: MIT
/* capture.c: pcap files of netdevs or segments, written while traffic runs. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "capture.h"
#include "netdev.h"
#include "seg.h"

#define CAP_BUF (256 * 1024)
#define CAP_FLUSH_NS (100 * NS_PER_MS)
#define PCAP_MAGIC 0xa1b2c3d4u
#define PCAP_LINKTYPE_ETHERNET 1
#define PCAP_DEFAULT_MAXLEN 65536	/* QEMU filter-dump's default */
#define PCAP_REC_HDR 16

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void capture_write(struct pb *pb, struct capture *c)
{
	size_t off = 0;

	while (off < c->len && c->fd >= 0) {
		ssize_t n = write(c->fd, c->buf + off, c->len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			c->write_errors++;
			log_err(&pb->log, "capture %s: writing %s failed (%s); capture stopped",
				c->id, c->file, n < 0 ? strerror(errno) : "short write");
			close(c->fd);
			c->fd = -1;
			break;
		}
		off += (size_t)n;
		c->bytes_written += (uint64_t)n;
	}
	c->len = 0;
}

static void capture_timer(struct pb *pb, uint32_t arg)
{
	(void)arg;
	for (int i = 0; i < MAX_CAPTURES; i++)
		if (pb->caps[i].used && pb->caps[i].len)
			capture_write(pb, &pb->caps[i]);
}

void capture_frame(struct pb *pb, int ci, const uint8_t *frame, size_t len)
{
	struct capture *c;
	struct timespec ts;
	uint32_t incl;

	if (ci < 0)
		return;
	c = &pb->caps[ci];
	if (c->fd < 0)
		return;
	incl = (uint32_t)MIN(len, c->maxlen);
	if (c->len + PCAP_REC_HDR + incl > CAP_BUF)
		capture_write(pb, c);
	if (c->fd < 0)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint8_t *r = c->buf + c->len;

	put_le32(r, (uint32_t)ts.tv_sec);
	put_le32(r + 4, (uint32_t)(ts.tv_nsec / 1000));
	put_le32(r + 8, incl);
	put_le32(r + 12, (uint32_t)len);
	memcpy(r + PCAP_REC_HDR, frame, incl);
	c->len += PCAP_REC_HDR + incl;
	c->frames++;
	if (!timer_armed(&pb->loop, pb->cap_timer))
		timer_arm(&pb->loop, pb->cap_timer, CAP_FLUSH_NS);
}

static int capture_find(const struct pb *pb, const char *id)
{
	for (int i = 0; i < MAX_CAPTURES; i++)
		if (pb->caps[i].used && !strcmp(pb->caps[i].id, id))
			return i;
	return -1;
}

int capture_add(struct pb *pb, const char *spec)
{
	static const char *const keys[] = { "id", "netdev", "segment", "file",
					    "maxlen", "type", NULL };
	char *err = pb->errmsg;
	size_t errlen = sizeof(pb->errmsg);
	const char *id, *nd_id, *seg_id, *file, *type;
	struct capture *c = NULL;
	int nd = -1, sg = -1, *target;
	uint64_t maxlen;
	struct opts o;
	int ret, ci;

	ret = opts_parse(&o, spec, NULL, err, errlen);
	if (!ret)
		ret = opts_check(&o, "capture", keys, NULL, err, errlen);
	if (!ret)
		ret = opts_get_uint(&o, "maxlen", 14, 1u << 20,
				    PCAP_DEFAULT_MAXLEN, &maxlen, err, errlen);
	if (ret)
		return ret;
	type = opts_get(&o, "type");
	if (type && strcmp(type, "filter-dump"))
		return pb__err(pb, -EINVAL, "capture: object type must be filter-dump, not '%s'",
			       type);
	id = opts_get(&o, "id");
	nd_id = opts_get(&o, "netdev");
	seg_id = opts_get(&o, "segment");
	file = opts_get(&o, "file");
	if (!id || !file)
		return pb__err(pb, -EINVAL, "capture: 'id' and 'file' are required");
	if (strlen(id) >= PB_ID_MAX || strlen(file) >= sizeof(c->file))
		return pb__err(pb, -EINVAL, "capture %s: id or file name too long", id);
	if (!nd_id == !seg_id)
		return pb__err(pb, -EINVAL, "capture %s: give exactly one of 'netdev' and 'segment'",
			       id);
	if (capture_find(pb, id) >= 0)
		return pb__err(pb, -EEXIST, "capture: duplicate id '%s'", id);
	if (nd_id) {
		nd = netdev_find(pb, nd_id);
		if (nd < 0)
			return pb__err(pb, -ENOENT, "capture %s: no netdev '%s'",
				       id, nd_id);
		target = &pb->netdevs[nd].capture;
	} else {
		sg = seg_find(pb, seg_id);
		if (sg < 0)
			return pb__err(pb, -ENOENT, "capture %s: no segment '%s'",
				       id, seg_id);
		target = &pb->segs[sg].capture;
	}
	if (*target >= 0)
		return pb__err(pb, -EBUSY, "capture %s: %s is already captured by '%s'",
			       id, nd_id ? nd_id : seg_id, pb->caps[*target].id);
	for (ci = 0; ci < MAX_CAPTURES; ci++) {
		if (!pb->caps[ci].used) {
			c = &pb->caps[ci];
			break;
		}
	}
	if (!c)
		return pb__err(pb, -ENOSPC, "capture %s: too many captures (at most %d)",
			       id, MAX_CAPTURES);
	memset(c, 0, sizeof(*c));
	c->buf = malloc(CAP_BUF);
	if (!c->buf)
		return pb__err(pb, -ENOMEM, "capture %s: out of memory", id);
	c->fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (c->fd < 0) {
		ret = -errno;
		free(c->buf);
		return pb__err(pb, ret, "capture %s: cannot create %s: %s", id,
			       file, strerror(-ret));
	}
	str_copy(c->id, sizeof(c->id), id);
	str_copy(c->file, sizeof(c->file), file);
	c->maxlen = (uint32_t)maxlen;
	c->netdev = nd;
	c->seg = sg;
	c->used = true;
	/* Global header: version 2.4, UTC, snaplen, Ethernet. */
	put_le32(c->buf, PCAP_MAGIC);
	put_le16(c->buf + 4, 2);
	put_le16(c->buf + 6, 4);
	put_le32(c->buf + 8, 0);
	put_le32(c->buf + 12, 0);
	put_le32(c->buf + 16, c->maxlen);
	put_le32(c->buf + 20, PCAP_LINKTYPE_ETHERNET);
	c->len = 24;
	capture_write(pb, c);
	*target = ci;
	log_info(&pb->log, "capture %s: %s %s -> %s", id,
		 nd_id ? "netdev" : "segment", nd_id ? nd_id : seg_id, file);
	return 0;
}

static void capture_free(struct pb *pb, int ci)
{
	struct capture *c = &pb->caps[ci];

	if (c->len)
		capture_write(pb, c);
	if (c->fd >= 0)
		close(c->fd);
	if (c->netdev >= 0)
		pb->netdevs[c->netdev].capture = -1;
	if (c->seg >= 0)
		pb->segs[c->seg].capture = -1;
	log_info(&pb->log, "capture %s: %llu frames written to %s", c->id,
		 (unsigned long long)c->frames, c->file);
	free(c->buf);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

int capture_del(struct pb *pb, const char *id)
{
	int ci = capture_find(pb, id);

	if (ci < 0)
		return pb__err(pb, -ENOENT, "no capture '%s'", id);
	capture_free(pb, ci);
	return 0;
}

void capture_detach(struct pb *pb, int ci)
{
	if (ci >= 0 && pb->caps[ci].used)
		capture_free(pb, ci);
}

void capture_del_all(struct pb *pb)
{
	for (int i = 0; i < MAX_CAPTURES; i++)
		if (pb->caps[i].used)
			capture_free(pb, i);
}

int capture_init(struct pb *pb)
{
	int t = timer_new(&pb->loop, capture_timer, 0);

	if (t < 0)
		return t;
	pb->cap_timer = t;
	return 0;
}
