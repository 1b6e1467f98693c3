// SPDX-License-Identifier: MIT
/* seg.c: segment table, hub and switch forwarding, end-of-batch flush. */
#include <errno.h>
#include <stdlib.h>

#include "capture.h"
#include "pkt.h"
#include "port.h"
#include "router_api.h"
#include "seg.h"

#define FDB_DEFAULT_SIZE 4096
#define FDB_DEFAULT_AGEING 300	/* seconds, as IEEE 802.1D recommends */
#define AGEING_SWEEP_NS (1 * NS_PER_SEC)

static void seg_ageing_timer(struct pb *pb, uint32_t idx)
{
	struct segment *s = &pb->segs[idx];

	fdb_age(&s->fdb, pb_now(pb));
	timer_arm(&pb->loop, s->ageing_timer,
		  MIN(s->fdb.ageing_ns / 4 + 1, AGEING_SWEEP_NS * 60));
}

int seg_find(const struct pb *pb, const char *id)
{
	for (uint32_t i = 0; i < pb->max_segs; i++)
		if (pb->segs[i].used && !strcmp(pb->segs[i].id, id))
			return (int)i;
	return -1;
}

int seg_add(struct pb *pb, const char *spec)
{
	static const char *const types[] = { "switch", "hub", NULL };
	static const char *const keys_switch[] = { "type", "id", "fdb-size",
						   "fdb-per-port", "ageing",
						   NULL };
	static const char *const keys_hub[] = { "type", "id", NULL };
	struct opts o;
	const char *type, *id;
	uint64_t fdb_size, ageing, per_port;
	struct segment *s = NULL;
	uint32_t i;
	int err;

	err = opts_parse(&o, spec, "type", pb->errmsg, sizeof(pb->errmsg));
	if (err)
		return err;
	err = opts_get_enum(&o, "type", types, NULL, &type, pb->errmsg,
			    sizeof(pb->errmsg));
	if (!err && !type)
		return pb__err(pb, -EINVAL, "segment: the type must come first (switch or hub)");
	if (err)
		return pb__err(pb, err, "segment: type must be switch or hub, not '%s'",
			       opts_get(&o, "type"));
	err = opts_check(&o, type[0] == 's' ? "segment switch" : "segment hub",
			 type[0] == 's' ? keys_switch : keys_hub, NULL,
			 pb->errmsg, sizeof(pb->errmsg));
	if (err)
		return err;
	id = opts_get(&o, "id");
	if (!id)
		return pb__err(pb, -EINVAL, "%s: 'id' is required", o.what);
	if (strlen(id) >= PB_ID_MAX)
		return pb__err(pb, -EINVAL, "%s: id '%s' is too long (at most %d characters)",
			       o.what, id, PB_ID_MAX - 1);
	if (seg_find(pb, id) >= 0)
		return pb__err(pb, -EEXIST, "%s: duplicate segment id '%s'",
			       o.what, id);
	err = opts_get_uint(&o, "fdb-size", 1, 1u << 20, FDB_DEFAULT_SIZE,
			    &fdb_size, pb->errmsg, sizeof(pb->errmsg));
	if (!err)
		err = opts_get_uint(&o, "ageing", 0, 1000000,
				    FDB_DEFAULT_AGEING, &ageing, pb->errmsg,
				    sizeof(pb->errmsg));
	/* a quarter of the table per port, by default */
	if (!err)
		err = opts_get_uint(&o, "fdb-per-port", 1, fdb_size,
				    (fdb_size + 3) / 4, &per_port, pb->errmsg,
				    sizeof(pb->errmsg));
	if (err)
		return err;
	for (i = 0; i < pb->max_segs; i++) {
		if (!pb->segs[i].used) {
			s = &pb->segs[i];
			break;
		}
	}
	if (!s)
		return pb__err(pb, -ENOSPC, "segment %s: too many segments (at most %u)",
			       id, pb->max_segs);
	memset(s, 0, sizeof(*s));
	s->type = type[0] == 's' ? SEG_SWITCH : SEG_HUB;
	str_copy(s->id, sizeof(s->id), id);
	s->capture = -1;
	s->ageing_timer = -1;
	s->members = calloc(pb->max_ports, sizeof(*s->members));
	if (!s->members)
		return pb__err(pb, -ENOMEM, "segment %s: out of memory", id);
	if (s->type == SEG_SWITCH) {
		err = fdb_init(&s->fdb, (uint32_t)fdb_size,
			       ageing * NS_PER_SEC);
		if (err)
			goto fail_members;
		err = fdb_set_port_limit(&s->fdb, pb->max_ports,
					 (uint32_t)per_port);
		if (err)
			goto fail_fdb;
		if (ageing) {
			err = timer_new(&pb->loop, seg_ageing_timer, i);
			if (err < 0)
				goto fail_fdb;
			s->ageing_timer = err;
			seg_ageing_timer(pb, i);
		}
	}
	s->used = true;
	log_debug(&pb->log, "segment %s: %s", id, type);
	return 0;
fail_fdb:
	fdb_fini(&s->fdb);
fail_members:
	free(s->members);
	return pb__err(pb, err, "segment %s: %s", id, strerror(-err));
}

void seg_free_all(struct pb *pb)
{
	for (uint32_t i = 0; i < pb->max_segs; i++) {
		struct segment *s = &pb->segs[i];

		if (!s->used)
			continue;
		capture_detach(pb, s->capture);
		timer_free(&pb->loop, s->ageing_timer);
		if (s->type == SEG_SWITCH)
			fdb_fini(&s->fdb);
		free(s->members);
		s->used = false;
	}
}

void seg_join(struct pb *pb, struct port *p)
{
	struct segment *s = &pb->segs[p->seg];

	s->members[s->nmembers++] = port_index(pb, p);
}

void seg_leave(struct pb *pb, struct port *p)
{
	struct segment *s = &pb->segs[p->seg];
	uint32_t idx = port_index(pb, p);

	for (uint32_t i = 0; i < s->nmembers; i++) {
		if (s->members[i] == idx) {
			s->members[i] = s->members[--s->nmembers];
			break;
		}
	}
	if (s->type == SEG_SWITCH)
		fdb_flush_port(&s->fdb, idx);
}

struct port *seg_port_of(struct pb *pb, struct segment *s, const uint8_t *mac)
{
	uint32_t gen;
	int64_t idx;

	if (s->type != SEG_SWITCH)
		return NULL;
	idx = fdb_lookup(&s->fdb, mac, pb_now(pb), &gen);
	return idx >= 0 ? port_get(pb, (uint32_t)idx, gen) : NULL;
}

static void seg_flood(struct pb *pb, struct segment *s, struct port *src,
		      const uint8_t *frame, size_t len,
		      const struct frame_meta *m)
{
	s->flooded++;
	for (uint32_t i = 0; i < s->nmembers; i++) {
		struct port *p = &pb->ports[s->members[i]];

		if (p != src)
			port_enqueue(pb, p, frame, len, m);
	}
}

void seg_input(struct pb *pb, struct port *src, const uint8_t *frame,
	       size_t len)
{
	seg_input_m(pb, src, frame, len, NULL);
}

void seg_input_m(struct pb *pb, struct port *src, const uint8_t *frame,
		 size_t len, const struct frame_meta *m)
{
	struct segment *s = &pb->segs[src->seg];
	struct cursor c = cur_init(frame, len);
	struct eth_view eth;

	if (src->dead)
		return;
	if (len > FRAME_MAX) {
		port_drop(pb, src, DROP_OVERSIZE);
		return;
	}
	if (!eth_parse(&c, &eth)) {
		port_drop(pb, src, DROP_RUNT);
		return;
	}
	if (src->link_down) {
		port_drop(pb, src, DROP_LINK_DOWN);
		return;
	}
	src->rx_frames++;
	src->rx_bytes += len;
	s->frames++;
	s->bytes += len;
	capture_frame(pb, pb->netdevs[src->netdev].capture, frame, len);
	capture_frame(pb, s->capture, frame, len);

	if (s->type == SEG_HUB) {
		seg_flood(pb, s, src, frame, len, m);
		return;
	}
	if (!mac_is_multicast(eth.src))
		fdb_learn(&s->fdb, eth.src, port_index(pb, src), src->gen,
			  pb_now(pb));
	if (!mac_is_multicast(eth.dst)) {
		struct port *dst = seg_port_of(pb, s, eth.dst);

		if (dst == src) {
			s->filtered++;
			return;
		}
		if (dst) {
			s->forwarded++;
			port_enqueue(pb, dst, frame, len, m);
			return;
		}
	}
	seg_flood(pb, s, src, frame, len, m);
}

static void seg_flush_dirty(struct pb *pb)
{
	/* A flush may invoke an embedder callback that sends frames, which
	 * are deferred (see pb_port_send), so the list does not grow under
	 * us. */
	for (uint32_t i = 0; i < pb->ndirty; i++) {
		struct port *p = &pb->ports[pb->dirty[i]];

		if (p->txn && !p->dead)
			p->ops->flush(pb, p);
		p->txn = 0;
		p->dirty = false;
	}
	pb->ndirty = 0;
}

/*
 * Frames an embedder sent from inside an rx callback wait in pb->defbuf,
 * which has two halves: while the frames of one half are fed and flushed,
 * new deferred frames fill the other.  Feeding may produce more, so the
 * number of passes is bounded.
 */
#define DEFERRED_PASSES 8

void seg_flush(struct pb *pb)
{
	bool was_in_round = pb->in_round;

	pb->in_round = true;
	pb->flush_depth++;
	seg_flush_dirty(pb);
	for (int pass = 0; pass < DEFERRED_PASSES && pb->ndef; pass++) {
		struct deferred def[DEFERRED_MAX];
		uint32_t n = pb->ndef;

		memcpy(def, pb->def, n * sizeof(def[0]));
		pb->ndef = 0;
		pb->def_half ^= 1;
		for (uint32_t i = 0; i < n; i++) {
			struct port *p = port_get(pb, def[i].port, def[i].gen);

			if (p)
				seg_input(pb, p,
					  pb->defbuf + (size_t)def[i].slot *
							       FRAME_MAX_ALIGNED,
					  def[i].len);
		}
		seg_flush_dirty(pb);
	}
	for (uint32_t i = 0; i < pb->ndef; i++) {
		struct port *p = port_get(pb, pb->def[i].port, pb->def[i].gen);

		if (p)
			port_drop(pb, p, DROP_DEFERRED_FULL);
	}
	pb->ndef = 0;
	pb->in_round = was_in_round;
	if (--pb->flush_depth == 0)
		router_round_end(pb);
}
