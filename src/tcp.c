// SPDX-License-Identifier: MIT
/* tcp.c: TCP connections of guests translated onto host TCP sockets. */

/*
 * Theory of operation (DESIGN.md, "translation, not a TCP/IP stack").
 *
 * The guest runs a real TCP; the host kernel runs another on the host
 * socket.  We keep only what is needed to join them: sequence numbers on
 * the guest side, and no data buffers at all.
 *
 * Opening: a guest SYN starts a non-blocking connect(); the SYN-ACK goes to
 * the guest only when the host connection is up (refused: RST; unreachable:
 * ICMP).  A forwarded connection (hostfwd) is the mirror image: accept(),
 * then a SYN to the guest, retried until it answers.
 *
 * Guest -> host: in-order payload is written to the socket with send(); the
 * guest is ACKed only for bytes the socket accepted, and our advertised
 * window is the free space of the socket's send buffer, so a well-behaved
 * guest never sends what we cannot take.  Out-of-order segments are dropped
 * with a duplicate ACK: the guest's own retransmission repairs the gap.
 *
 * Host -> guest: data stays in the socket's receive queue until the guest
 * ACKs it.  We read it with MSG_PEEK straight into output frames, using the
 * socket's peek offset (SO_PEEK_OFF) to skip what is already in flight; an
 * ACK discards the acknowledged bytes from the queue; a retransmission
 * timeout (or three duplicate ACKs) rewinds the offset and sends again from
 * the first unacknowledged byte (go-back-N; losses on a virtual segment are
 * rare).  The guest's window, scaled, limits what is in flight.  As the
 * peeked bytes stay in the queue, the socket's EPOLLIN is edge-triggered:
 * an edge means new data, and t->readable remembers that some may be left
 * (window or output slots ran out) until a peek comes up short.
 *
 * The window offered to the guest is measured with SO_MEMINFO at most once
 * a millisecond while the estimate (less what we wrote since) stays above
 * half the measurement: request/response traffic does not pay a system
 * call per segment for it.
 *
 * Closing: a guest FIN becomes shutdown(SHUT_WR) once all its data was
 * written; end of file on the host socket becomes our FIN after the data
 * before it.  When both directions are closed and our FIN is acknowledged,
 * the socket is closed and the flow lingers briefly to answer a
 * retransmitted FIN.  A guest RST aborts the host connection (SO_LINGER 0,
 * so the host peer sees a reset too); a host error becomes an RST to the
 * guest.
 *
 * ACKs are batched: segments of one batch of guest frames only mark the
 * flow, and one ACK per flow goes out at the end of the batch.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "csum.h"
#include "flow.h"
#include "router.h"
#include "siphash.h"

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_PSH 0x08
#define TH_ACK 0x10

#define OPT_EOL 0
#define OPT_NOP 1
#define OPT_MSS 2
#define OPT_WS 3

#define RTO_MIN_MS 200
#define RTO_MAX_MS 10000
#define SYN_RTO_MS 1000
#define MAX_RETRIES 12
#define SYN_RETRIES 6
#define LINGER_NS (2 * NS_PER_SEC)
#define OUR_WSCALE 7
#define PUSH_SEGS 32		/* segments per peek */
#define PUSH_MAX_SEGS 128	/* per push: the socket's EPOLLIN brings us
				 * back for the rest, after the guest's ACKs
				 * (and everyone else) had their turn */
#define DELACK_NS (500 * 1000)	/* how long a request's ACK waits for the
				 * answer to carry it */
#define PUSH_SUPER 4		/* super-segments per peek */
#define PUSH_MAX_SUPER 16	/* and per push (1 MiB) */
#define NOPEEK_MAX 65536	/* in flight without SO_PEEK_OFF */
#define DEFAULT_MSS 536		/* RFC 9293 3.7.1 when no option */
#define WND_TTL_NS (1000 * 1000) /* a send-buffer measurement is good
				 * this long (the peer drains it meanwhile:
				 * the estimate errs on the small side) */
#define SEND_OVERHEAD 1024	/* buffer head and slack per send() */

/* RFC 6528: a clock ticking every 4 us plus a keyed hash of the
 * connection's addresses and ports, so that nobody predicts another
 * connection's numbers, at the price of no system call. */
static uint32_t tcp_iss(const struct router *r, const struct flow_key *k)
{
	uint8_t t[36];

	memcpy(t, k->v6 ? (const void *)&k->gip6 : (const void *)&k->gip,
	       k->v6 ? 16 : 4);
	memcpy(t + 16, k->v6 ? (const void *)&k->rip6 : (const void *)&k->rip,
	       k->v6 ? 16 : 4);
	memcpy(t + 32, &k->gport, 2);
	memcpy(t + 34, &k->rport, 2);
	if (!k->v6) {
		memset(t + 4, 0, 12);
		memset(t + 20, 0, 12);
	}
	return (uint32_t)siphash24(r->iss_key, t, sizeof(t)) +
	       (uint32_t)(pb_now(r->pb) / 4000);
}

static bool seq_lt(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
}

/* The largest segment that fits the MTU for this flow's family. */
static uint16_t tcp_mss_max(const struct router *r, const struct flow_key *k)
{
	return (uint16_t)(r->mtu - (k->v6 ? 40 : IP4_HDR) - TCP_HDR);
}

struct tcp_seg {
	uint16_t sport, dport, wnd;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t mss;		/* 0: no option */
	int ws;			/* -1: no option */
	struct cursor payload;
};

/* ---- output ----------------------------------------------------------------------- */

/* Free room in the host socket's send buffer, in payload bytes: measured
 * (a system call), or estimated from the last measurement less what was
 * written since, while that is fresh and far from full. */
static int64_t tcp_sndbuf_room(struct router *r, struct flow *f)
{
	struct tcp_conn *t = &f->tcp;
	uint32_t mi[SK_MEMINFO_VARS];
	socklen_t len = sizeof(mi);
	uint64_t now = pb_now(r->pb);
	int64_t w;

	if (t->wnd_at && now - t->wnd_at < WND_TTL_NS &&
	    t->wnd_est >= t->wnd_meas / 2 && t->wnd_est >= 4u * t->mss)
		return t->wnd_est;
	if (getsockopt(f->fd, SOL_SOCKET, SO_MEMINFO, mi, &len) < 0)
		return 65535;
	/* What the kernel charges against the send buffer: TCP's queued
	 * buffers (wmem_queued), a unix socket's allocated ones
	 * (wmem_alloc) -- both with their overhead, which payload bytes
	 * (SIOCOUTQ) do not show.  The free room is offered less a third:
	 * our own writes carry overhead too. */
	w = ((int64_t)mi[SK_MEMINFO_SNDBUF] -
	     MAX(mi[SK_MEMINFO_WMEM_QUEUED], mi[SK_MEMINFO_WMEM_ALLOC])) * 2 / 3;
	if (!t->is_tcp_sock)
		w /= 2;	/* a buffer of its own per segment */
	w = MAX(w, 0);
	t->wnd_est = t->wnd_meas = (uint32_t)MIN(w, (int64_t)UINT32_MAX);
	t->wnd_at = now ? now : 1;
	return w;
}

/* n bytes went into the socket: less room until the next measurement
 * (each write also costs a buffer head, hence the surcharge). */
static void tcp_sndbuf_used(struct tcp_conn *t, size_t n)
{
	uint64_t cost = (uint64_t)n + SEND_OVERHEAD;

	t->wnd_est = t->wnd_est > cost ? t->wnd_est - (uint32_t)cost : 0;
}

/* The window we offer the guest: free room in the host socket's send
 * buffer, never moving the right edge back (RFC 9293 3.8.6). */
static uint32_t tcp_window(struct router *r, struct flow *f)
{
	struct tcp_conn *t = &f->tcp;
	uint32_t max = t->wscale_ok ? (65535u << t->rcv_shift) : 65535u;
	int64_t w = 65535;

	if (t->wnd_valid)
		return t->rcv_adv - t->rcv_nxt;
	if (f->fd >= 0 && !t->guest_fin)
		w = tcp_sndbuf_room(r, f);
	if (w > max)
		w = max;
	/* a nearly closed window opens when the socket drains: be told */
	if (f->fd >= 0 && !t->guest_fin && w < 4 * (int64_t)t->mss)
		t->want_out = true;
	/* what the guest will see: the scaled field drops the low bits */
	if (t->wscale_ok)
		w &= ~(int64_t)((1u << t->rcv_shift) - 1);
	if (seq_lt(t->rcv_nxt + (uint32_t)w, t->rcv_adv))
		w = (int64_t)(t->rcv_adv - t->rcv_nxt);
	t->rcv_adv = t->rcv_nxt + (uint32_t)w;
	t->wnd_valid = t->wnd_hold;
	return (uint32_t)w;
}

/* Fill the TCP header of frame (options, if any, are already in place
 * after the 20 fixed bytes) and send it.  off: what the guest's port takes
 * (PORT_OFF_*): its checksum is then left to finish, and a payload of more
 * than one MSS goes as one super-segment. */
static void tcp_out_off(struct router *r, struct flow *f, uint8_t *frame,
			uint8_t flags, uint32_t seq, size_t optlen,
			size_t plen, uint8_t off)
{
	struct tcp_conn *t = &f->tcp;
	uint8_t *h = frame + flow_l4off(&f->k);
	size_t hlen = TCP_HDR + optlen;
	uint32_t wnd = tcp_window(r, f);

	if (flags & TH_SYN) {
		/* not scaled in a SYN: what we offer is what fits 16 bits */
		if (wnd > 65535) {
			wnd = 65535;
			t->rcv_adv = t->rcv_nxt + wnd;
		}
	} else {
		wnd >>= t->wscale_ok ? t->rcv_shift : 0;
	}
	uint32_t ack = flags & TH_ACK ? t->rcv_nxt : 0;
	uint16_t ck;

	if (flags & TH_ACK)
		t->delack = false;	/* this one carries it */

	if (wnd > 65535)
		wnd = 65535;
	h[0] = (uint8_t)(f->k.rport >> 8);
	h[1] = (uint8_t)f->k.rport;
	h[2] = (uint8_t)(f->k.gport >> 8);
	h[3] = (uint8_t)f->k.gport;
	put_be32(h + 4, seq);
	put_be32(h + 8, ack);
	h[12] = (uint8_t)((hlen / 4) << 4);
	h[13] = flags;
	h[14] = (uint8_t)(wnd >> 8);
	h[15] = (uint8_t)wnd;
	h[16] = h[17] = h[18] = h[19] = 0;
	if (plen && (off & PORT_OFF_CSUM)) {
		size_t l4 = flow_l4off(&f->k);
		struct frame_meta m = {
			.flags = FM_NEEDS_CSUM,
			.hdr_len = (uint16_t)(l4 + hlen),
			.gso_size = t->mss,
			.csum_start = (uint16_t)l4,
			.csum_offset = 16,
		};

		if (plen > t->mss)
			m.gso_type = f->k.v6 ? FM_GSO_TCPV6 : FM_GSO_TCPV4;
		/* the field holds the pseudo-header sum, not inverted */
		ck = (uint16_t)~csum_fold(flow_pseudo(&f->k, IPPROTO_TCP,
						      hlen + plen));
		memcpy(h + 16, &ck, 2);
		r->tx_meta = &m;
		flow_send(r, &f->k, frame, IPPROTO_TCP, hlen + plen);
		r->tx_meta = NULL;
		return;
	}
	ck = csum_fold(csum_add(flow_pseudo(&f->k, IPPROTO_TCP, hlen + plen),
				h, hlen + plen));
	memcpy(h + 16, &ck, 2);
	flow_send(r, &f->k, frame, IPPROTO_TCP, hlen + plen);
}

static void tcp_out(struct router *r, struct flow *f, uint8_t *frame,
		    uint8_t flags, uint32_t seq, size_t optlen, size_t plen)
{
	tcp_out_off(r, f, frame, flags, seq, optlen, plen, 0);
}

/* A segment without payload (ACK, FIN, RST, SYN with options). */
static void tcp_ctl(struct router *r, struct flow *f, uint8_t flags,
		    uint32_t seq)
{
	uint8_t *frame = router_alloc(r);
	size_t optlen = 0;

	if (!frame)
		return;
	if (flags & TH_SYN) {
		uint8_t *o = frame + flow_l4off(&f->k) + TCP_HDR;
		uint16_t mss = tcp_mss_max(r, &f->k);

		o[0] = OPT_MSS;
		o[1] = 4;
		o[2] = (uint8_t)(mss >> 8);
		o[3] = (uint8_t)mss;
		optlen = 4;
		/* In a SYN-ACK, offer scaling only if the guest did. */
		if (f->tcp.wscale_ok || !(flags & TH_ACK)) {
			o[4] = OPT_NOP;
			o[5] = OPT_WS;
			o[6] = 3;
			o[7] = OUR_WSCALE;
			optlen = 8;
		}
	}
	f->tcp.ack_pending = false;
	tcp_out(r, f, frame, flags, seq, optlen, 0);
}

/* RST to a segment that belongs to no connection (RFC 9293 3.10.7.1). */
static void tcp_rst_reply(struct router *r, const struct ip4_view *ip,
			  const struct tcp_seg *s, size_t plen)
{
	struct flow tmp;

	if (s->flags & TH_RST)
		return;
	memset(&tmp, 0, sizeof(tmp));
	tmp.fd = -1;
	ip_fill_key(ip, &tmp.k);
	tmp.k.gport = s->sport;
	tmp.k.rport = s->dport;
	if (s->flags & TH_ACK) {
		tcp_ctl(r, &tmp, TH_RST, s->ack);
	} else {
		tmp.tcp.rcv_nxt = s->seq + (uint32_t)plen +
				  !!(s->flags & TH_SYN) + !!(s->flags & TH_FIN);
		tcp_ctl(r, &tmp, TH_RST | TH_ACK, 0);
	}
}

static void tcp_update_events(struct router *r, struct flow *f);

/* A flow as the ACK queues hold it: the index (max-flows < 2^24) and the
 * low byte of the generation, which tells a slot freed and reused since. */
static uint32_t ackq_entry(const struct router *r, const struct flow *f)
{
	return flow_index(r->flows, f) | (uint32_t)(uint8_t)f->gen << 24;
}

/* The TCP flow of a queue entry, or NULL if it is gone. */
static struct flow *ackq_flow(struct router *r, uint32_t e)
{
	uint32_t idx = e & 0xffffff;
	struct flow *f;

	if (idx >= r->flows->cap)
		return NULL;
	f = &r->flows->f[idx];
	if (!f->used || f->k.proto != IPPROTO_TCP ||
	    (uint8_t)f->gen != (uint8_t)(e >> 24))
		return NULL;
	return f;
}

static void tcp_queue_ack(struct router *r, struct flow *f)
{
	if (f->tcp.ack_pending)
		return;
	if (r->nack == ACKQ_MAX) {
		tcp_ctl(r, f, TH_ACK, f->tcp.snd_nxt);
		return;
	}
	f->tcp.ack_pending = true;
	r->ackq[r->nack++] = ackq_entry(r, f);
}

/*
 * A small segment with PSH is usually a request, and the host's answer
 * usually follows within microseconds: rather than an ACK now and the
 * answer after it (two frames, two trips through the guest's stack), the
 * answer carries the ACK.  If none comes, the ACK goes at most DELACK_NS
 * later (a guest delays its own ACKs up to 40 ms or more).  A second
 * segment while one waits is ACKed at once (RFC 9293 3.8.6.3: at least
 * every second segment).
 */
static void tcp_delay_ack(struct router *r, struct flow *f)
{
	struct tcp_conn *t = &f->tcp;

	if (t->ack_pending)
		return;
	if (t->delack || (!t->dack_queued && r->ndack == ACKQ_MAX)) {
		tcp_queue_ack(r, f);
		return;
	}
	t->delack = true;
	t->dack_at = pb_now(r->pb) + DELACK_NS;
	if (!t->dack_queued) {
		t->dack_queued = true;
		r->dackq[r->ndack++] = ackq_entry(r, f);
	}
	if (!r->dack_at || t->dack_at < r->dack_at) {
		r->dack_at = t->dack_at;
		router_kick_timer(r, DELACK_NS);
	}
}

/* Delayed ACKs that are due; returns the next deadline (0: none).  A flow
 * stays queued while it makes requests (its answers carry the ACKs): the
 * queue holds each flow once, whatever it did since. */
uint64_t tcp_delayed_acks(struct router *r, uint64_t now)
{
	uint64_t next = 0;
	unsigned kept = 0;

	if (!r->ndack || now < r->dack_at)
		return r->ndack ? r->dack_at : 0;
	for (unsigned i = 0; i < r->ndack; i++) {
		struct flow *f = ackq_flow(r, r->dackq[i]);
		struct tcp_conn *t = f ? &f->tcp : NULL;

		if (!t || !t->dack_queued)
			continue;
		if (t->delack && t->dack_at > now) {
			r->dackq[kept++] = r->dackq[i];
			if (!next || t->dack_at < next)
				next = t->dack_at;
			continue;
		}
		t->dack_queued = false;
		if (t->delack)
			tcp_ctl(r, f, TH_ACK, t->snd_nxt);
	}
	r->ndack = kept;
	r->dack_at = next;
	return next;
}

void tcp_send_acks(struct router *r)
{
	for (unsigned i = 0; i < r->nack; i++) {
		struct flow *f = ackq_flow(r, r->ackq[i]);

		if (f && f->tcp.ack_pending) {
			tcp_ctl(r, f, TH_ACK, f->tcp.snd_nxt);
			tcp_update_events(r, f);
		}
	}
	r->nack = 0;
}

/* ---- flow life cycle ------------------------------------------------------------ */

static void tcp_set_deadline(struct router *r, struct flow *f, uint32_t ms)
{
	f->deadline = pb_now(r->pb) + (uint64_t)ms * NS_PER_MS;
	router_kick_timer(r, (uint64_t)ms * NS_PER_MS);
}

/* Which socket events we need now; none: leave epoll (a closed socket is
 * always "ready", and we must not spin on it).  Edge-triggered: data we
 * peeked at stays in the queue until the guest ACKs it, so a level-
 * triggered EPOLLIN would report the same bytes again and again; an edge
 * means new data (t->readable remembers it until a peek comes up short). */
static void tcp_update_events(struct router *r, struct flow *f)
{
	struct tcp_conn *t = &f->tcp;
	uint32_t want = 0;

	if (f->fd < 0)
		return;
	if (t->state == TS_CONNECTING)
		want = EPOLLOUT;
	if (t->state == TS_ESTABLISHED && !t->host_eof && !t->fin_sent)
		want |= EPOLLIN | EPOLLRDHUP;
	if (t->want_out)
		want |= EPOLLOUT;
	if (want)
		want |= EPOLLET;
	if (want == t->events)
		return;
	if (!want)
		loop_del(&r->pb->loop, f->fd);
	else if (router_flow_watch(r, f, want, t->events == 0) < 0)
		want = 0;
	t->events = want;
}

static void tcp_close_fd(struct flow *f, bool rst)
{
	if (f->fd < 0)
		return;
	if (rst) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(f->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	/* (closing the only reference takes it out of epoll) */
	f->tcp.events = 0;
	close(f->fd);
	f->fd = -1;
}

static void tcp_free(struct router *r, struct flow *f)
{
	tcp_close_fd(f, false);
	f->tcp.ack_pending = false;
	r->st.tcp_closed++;
	router_flow_close(r, f);
}

/* Abort both sides: RST to the guest (if to_guest) and to the host peer. */
static void tcp_abort(struct router *r, struct flow *f, bool to_guest,
		      const char *why)
{
	log_rl(&r->pb->log, &r->rl, pb_now(r->pb), PB_LOG_DEBUG,
	       "tcp %u -> %u: reset (%s)", f->k.gport, f->k.rport, why);
	if (to_guest)
		tcp_ctl(r, f, TH_RST | TH_ACK, f->tcp.snd_nxt);
	tcp_close_fd(f, true);
	r->st.tcp_reset++;
	tcp_free(r, f);
}

static void tcp_linger(struct router *r, struct flow *f)
{
	tcp_close_fd(f, false);
	f->tcp.state = TS_LINGER;
	f->deadline = pb_now(r->pb) + LINGER_NS;
	flow_linger_add(r->flows, f);
	router_kick_timer(r, LINGER_NS);
}

void tcp_reclaim(struct router *r, struct flow *f)
{
	r->st.tcp_linger_reclaimed++;
	tcp_free(r, f);
}

/* (TCP_NODELAY comes with the guest's first data: tcp_data; the peek
 * offset with the first data in flight: tcp_peek_at) */
static void tcp_sock_setup(struct flow *f)
{
	f->tcp.is_tcp_sock = true;
	f->tcp.peek_off = true;
}

/* Peeks start `skip` bytes past the head of the socket's queue (what is
 * in flight).  False if the socket has no peek offset: then tcp_push skips
 * that by hand. */
static bool tcp_peek_at(struct flow *f, uint32_t skip)
{
	struct tcp_conn *t = &f->tcp;

	if (!t->peek_off)
		return false;
	if (!skip && !t->peek_set)
		return true;	/* (an unset offset peeks at the head) */
	if (setsockopt(f->fd, SOL_SOCKET, SO_PEEK_OFF, &(int){ (int)skip },
		       sizeof(int)) < 0) {
		t->peek_off = false;
		return false;
	}
	t->peek_set = true;
	return true;
}

/* ---- host -> guest ------------------------------------------------------------------ */

/* Drop n acknowledged bytes from the socket's receive queue (at once:
 * unread bytes would also hold the buffer of the segment they came in,
 * and a host sender facing the closed window waits for a probe). */
static int tcp_discard(struct flow *f, uint32_t n)
{
	static_assert(NOPEEK_MAX <= 65536, "scratch size");
	uint8_t scratch[4096];

	while (n) {
		ssize_t k;

		if (f->tcp.is_tcp_sock)
			k = recv(f->fd, NULL, n, MSG_TRUNC | MSG_DONTWAIT);
		else
			k = recv(f->fd, scratch, MIN(n, sizeof(scratch)),
				 MSG_DONTWAIT);
		if (k <= 0)
			return k < 0 && errno != EAGAIN ? -errno : 0;
		n -= (uint32_t)k;
	}
	return 0;
}

/* Rewind to the first unacknowledged byte (retransmission). */
static void tcp_rewind(struct flow *f)
{
	f->tcp.snd_nxt = f->tcp.snd_una;
	if (f->tcp.fin_sent && !f->tcp.fin_acked)
		f->tcp.fin_sent = false;
	tcp_peek_at(f, 0);	/* (nothing to do if it was never set) */
	f->tcp.readable = true;
}

static void tcp_push_segments(struct router *r, struct flow *f);

/* Send the guest what its window allows from the socket's queue. */
static void tcp_push(struct router *r, struct flow *f)
{
	struct tcp_conn *t = &f->tcp;

	/* one window computation (two syscalls) for all segments of a push */
	t->wnd_hold = true;
	t->wnd_valid = false;
	tcp_push_segments(r, f);
	t->wnd_hold = false;
	t->wnd_valid = false;
}

static void tcp_push_segments(struct router *r, struct flow *f)
{
	struct tcp_conn *t = &f->tcp;
	static uint8_t skip[NOPEEK_MAX];
	unsigned pushed = 0, batch = PUSH_SEGS, max_pushed = PUSH_MAX_SEGS;
	uint8_t off = flow_peer_offloads(r, &f->k);
	uint32_t seg_max = t->mss;
	/* nothing in flight: a deadline now is at most the retry below, and
	 * what we send must get a retransmission timeout of its own */
	bool idle = t->snd_nxt == t->snd_una;

	/* A guest port that takes TCP super-segments gets up to 64 KiB
	 * per frame (the IP length field's limit), whole MSS each; fewer
	 * frames per push, as each is worth dozens. */
	if (off & (f->k.v6 ? PORT_OFF_TSO6 : PORT_OFF_TSO4) &&
	    off & PORT_OFF_CSUM && t->mss) {
		uint32_t room = 65535u - TCP_HDR - (f->k.v6 ? 0 : IP4_HDR);

		seg_max = MAX(room / t->mss, 1u) * t->mss;
		batch = PUSH_SUPER;
		max_pushed = PUSH_MAX_SUPER;
	}

	while (t->state == TS_ESTABLISHED && f->fd >= 0 && !t->fin_sent &&
	       pushed < max_pushed) {
		uint32_t in_flight = t->snd_nxt - t->snd_una;
		uint32_t avail = t->snd_wnd > in_flight ? t->snd_wnd - in_flight
							 : 0;
		struct iovec iov[PUSH_SEGS + 1];
		uint8_t *fr[PUSH_SEGS];
		struct msghdr mh = { .msg_iov = iov };
		unsigned n = 0, used, base = 0;
		uint32_t got, fresh;
		ssize_t k;

		if (in_flight && !t->peek_set && !tcp_peek_at(f, in_flight)) {
			if (in_flight >= NOPEEK_MAX)
				break;
			avail = MIN(avail, NOPEEK_MAX - in_flight);
			/* skip what is in flight into a scratch area */
			iov[0].iov_base = skip;
			iov[0].iov_len = in_flight;
			base = 1;
		}
		/* room for a whole batch, flushing first if we may: the
		 * slots we give back below must be the last ones taken */
		router_make_room(r, PUSH_SEGS + 8);
		if (!avail && !t->host_eof) {
			/* zero window: probe it later (persist timer) */
			if (!in_flight && !f->deadline)
				tcp_set_deadline(r, f, t->rto_ms);
			break;
		}
		for (uint32_t left = avail; n < batch && left; n++) {
			uint32_t sz = MIN(left, seg_max);

			/* Out of output slots inside a round: stop quietly;
			 * EPOLLIN brings us back once the round is out. */
			if (r->arena_used == ARENA_SLOTS)
				break;
			fr[n] = router_alloc(r);
			if (!fr[n])
				break;
			iov[base + n].iov_base = fr[n] + flow_l4off(&f->k) + TCP_HDR;
			iov[base + n].iov_len = sz;
			left -= sz;
		}
		if (avail && !n)
			break;
		mh.msg_iovlen = base + n;
		if (!avail) {
			/* zero window: only look for end of file */
			static uint8_t one;

			iov[base].iov_base = &one;
			iov[base].iov_len = 1;
			mh.msg_iovlen = base + 1;
		}
		k = recvmsg(f->fd, &mh, MSG_PEEK | MSG_DONTWAIT);
		if (k < 0) {
			r->arena_used -= n;
			if (errno == EAGAIN)
				t->readable = false;
			if (errno == EAGAIN || errno == EINTR)
				break;
			tcp_abort(r, f, true, "host socket error");
			return;
		}
		got = (uint32_t)k - (base ? in_flight : 0);
		if (base && (uint32_t)k < in_flight)
			got = 0;
		fresh = got;
		/* give back the frames the data did not reach */
		used = 0;
		for (uint32_t g = got; used < n && g;) {
			g -= MIN(g, (uint32_t)iov[base + used].iov_len);
			used++;
		}
		r->arena_used -= n - used;
		if (!avail && k > 0 && got > 0) {
			/* data waits behind a zero window: persist; the peek
			 * moved the offset past a byte we did not send */
			tcp_peek_at(f, in_flight);
			if (!f->deadline)
				tcp_set_deadline(r, f, t->rto_ms);
			break;
		}
		/* without SO_PEEK_OFF, getting just what is in flight means
		 * nothing new -- end of file only if we saw it before */
		if (k == 0 || (base && (uint32_t)k == in_flight && t->host_eof)) {
			t->host_eof = true;
			t->readable = false;
			tcp_ctl(r, f, TH_FIN | TH_ACK, t->snd_nxt);
			t->fin_seq = t->snd_nxt;
			t->snd_nxt++;
			t->fin_sent = true;
			if (seq_lt(t->snd_max, t->snd_nxt))
				t->snd_max = t->snd_nxt;
			if (!f->deadline || idle)
				tcp_set_deadline(r, f, t->rto_ms);
			break;
		}
		for (unsigned i = 0; i < used; i++) {
			uint32_t sz = MIN(got, (uint32_t)iov[base + i].iov_len);

			t->ack_pending = false;
			tcp_out_off(r, f, fr[i],
				    TH_ACK | (i + 1 == used ? TH_PSH : 0),
				    t->snd_nxt, 0, sz, off);
			t->snd_nxt += sz;
			got -= sz;
		}
		if (seq_lt(t->snd_max, t->snd_nxt))
			t->snd_max = t->snd_nxt;
		pushed += used;
		if (!f->deadline || idle)
			tcp_set_deadline(r, f, t->rto_ms);
		/* the queue is drained; if we know end of file follows (a
		 * resend after a rewind), go round once more for the FIN */
		if (used < n && !t->host_eof) {
			/* Drained -- unless end of file is known to follow,
			 * which only the next peek reports (no new edge).
			 * Without a peek offset it shows only once nothing
			 * is in flight: a peek that brought nothing new
			 * leaves it to the guest's next ACK. */
			if (!t->host_rdhup || !fresh) {
				t->readable = t->host_rdhup;
				break;
			}
		}
	}
	/* Stopped with data left and nothing in flight, whose ACK would
	 * bring us back (out of output slots): try again shortly. */
	if (t->readable && t->snd_nxt == t->snd_una && t->snd_wnd &&
	    !f->deadline && t->state == TS_ESTABLISHED && f->fd >= 0)
		tcp_set_deadline(r, f, 1);
}

/* ---- guest input ------------------------------------------------------------------- */

static bool tcp_parse(struct router *r, const struct ip4_view *ip,
		      struct tcp_seg *s)
{
	struct cursor c = ip->l4, opt;
	const uint8_t *h = cur_peek(&c, TCP_HDR);
	size_t doff;

	if (!h)
		goto malformed;
	doff = (size_t)(h[12] >> 4) * 4;
	if (doff < TCP_HDR || doff > c.rem)
		goto malformed;
	if (ip_l4_csum_bad(ip, IPPROTO_TCP, c.p, c.rem)) {
		rdrop(r, RD_L4_CSUM);
		return false;
	}
	s->sport = (uint16_t)(h[0] << 8 | h[1]);
	s->dport = (uint16_t)(h[2] << 8 | h[3]);
	s->seq = get_be32(h + 4);
	s->ack = get_be32(h + 8);
	s->flags = h[13];
	s->wnd = (uint16_t)(h[14] << 8 | h[15]);
	s->mss = 0;
	s->ws = -1;
	opt = cur_init(h + TCP_HDR, doff - TCP_HDR);
	cur_pull(&c, doff);
	s->payload = c;
	while (s->flags & TH_SYN) {
		uint8_t kind, len;
		const uint8_t *v;

		if (!cur_u8(&opt, &kind) || kind == OPT_EOL)
			break;
		if (kind == OPT_NOP)
			continue;
		if (!cur_u8(&opt, &len) || len < 2 ||
		    !(v = cur_pull(&opt, len - 2u)))
			break;	/* bogus length: ignore the rest */
		if (kind == OPT_MSS && len == 4)
			s->mss = (uint16_t)(v[0] << 8 | v[1]);
		else if (kind == OPT_WS && len == 3)
			s->ws = MIN(v[0], 14);
	}
	return true;
malformed:
	rdrop(r, RD_L4_MALFORMED);
	return false;
}

static void tcp_take_syn_options(struct router *r, struct flow *f,
				 const struct tcp_seg *s)
{
	struct tcp_conn *t = &f->tcp;
	uint16_t mss = s->mss ? s->mss : DEFAULT_MSS;

	t->mss = MIN(mss, tcp_mss_max(r, &f->k));
	if (t->mss < 64)
		t->mss = 64;
	t->wscale_ok = s->ws >= 0;
	t->snd_shift = t->wscale_ok ? (uint8_t)s->ws : 0;
	t->rcv_shift = t->wscale_ok ? OUR_WSCALE : 0;
}

/* A guest SYN for a new connection. */
/* A non-blocking connect() to the host's own addresses has usually
 * finished by the time it returns (the handshake runs inside the call):
 * then the guest gets its SYN-ACK now, not after a trip through epoll. */
static bool tcp_established(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	/* (a server that answers at once may have closed already) */
	return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
	       (ti.tcpi_state == TCP_ESTABLISHED ||
		ti.tcpi_state == TCP_CLOSE_WAIT);
}

static void tcp_open(struct router *r, const struct ip4_view *ip,
		     const struct tcp_seg *s, const struct flow_key *k)
{
	const struct guestfwd *g = ip->v6 ? NULL
					  : fwd_guest_match(r, ip->dst, s->dport);
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *a = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	socklen_t alen = sizeof(*a);
	bool connected = false;
	struct flow *f;
	int fd, rc;
	bool ours = ip->v6 ? !memcmp(&ip->dst6, &r->ip6.dns, 16)
			   : router_owns(r, ip->dst) && ip->dst != r->gw;
	bool dns = !g && s->dport == 53 &&
		   (ip->v6 ? !memcmp(&ip->dst6, &r->ip6.dns, 16)
			   : ip->dst == r->dns);

	a->sin_family = AF_INET;
	a->sin_port = htons(s->dport);
	if (dns && r->restricted) {
		/* restrict=on: no DNS forwarding, over TCP either */
		rdrop(r, RD_RESTRICTED);
		tcp_rst_reply(r, ip, s, s->payload.rem);
		return;
	}
	if (!g && !dns && ours) {
		/* no TCP service on the router's other addresses */
		rdrop(r, RD_NO_ROUTE);
		tcp_rst_reply(r, ip, s, s->payload.rem);
		return;
	}
	if (!g && !dns) {
		if (ip->v6) {
			a6->sin6_family = AF_INET6;
			a6->sin6_port = htons(s->dport);
			alen = sizeof(*a6);
			rc = router_map_dst6(r, &ip->dst6, &a6->sin6_addr);
		} else {
			rc = router_map_dst(r, ip->dst, &a->sin_addr.s_addr);
		}
		if (rc == -EACCES) {
			rdrop(r, RD_RESTRICTED);
			tcp_rst_reply(r, ip, s, s->payload.rem);
			return;
		}
		if (rc) {
			rdrop(r, RD_NO_ROUTE);
			ip_unreach(r, ip, 0);
			return;
		}
	}
	if (!flow_half_open_room(r->flows)) {
		rdrop(r, RD_FLOW_FULL);
		router_limit_hit(r, LIMIT_HALF_OPEN);
		tcp_rst_reply(r, ip, s, s->payload.rem);
		return;
	}
	f = router_flow_new(r, k, ip->src_mac);
	if (!f) {
		tcp_rst_reply(r, ip, s, s->payload.rem);
		return;
	}
	if (!flow_set_half_open(r->flows, f, true)) {
		/* this guest has its share of handshakes in progress */
		flow_free(r->flows, f);
		rdrop(r, RD_FLOW_FULL);
		router_limit_hit(r, LIMIT_HALF_OPEN_GUEST);
		tcp_rst_reply(r, ip, s, s->payload.rem);
		return;
	}
	if (g) {
		fd = fwd_guest_connect(r, g, &connected);
	} else if (dns) {
		/* a session of dns.c at the other end of a socket pair */
		fd = dns_tcp_open(r, ip->src_mac);
		connected = fd >= 0;
	} else {
		fd = router_socket_af(r, ss.ss_family, SOCK_STREAM, 0);
		if (fd >= 0) {
			if (connect(fd, (struct sockaddr *)&ss, alen) == 0 ||
			    (errno == EINPROGRESS && tcp_established(fd))) {
				connected = true;
			} else if (errno != EINPROGRESS) {
				rc = -errno;
				close(fd);
				fd = rc;
			}
		}
	}
	if (fd < 0) {
		flow_free(r->flows, f);
		if (fd == -ECONNREFUSED) {
			r->st.tcp_refused++;
		} else {
			rdrop(r, RD_SOCKET);
			if (fd == -ENETUNREACH || fd == -EHOSTUNREACH) {
				ip_unreach(r, ip, 1);
				return;
			}
		}
		tcp_rst_reply(r, ip, s, s->payload.rem);
		return;
	}
	f->fd = fd;
	if (g || dns)
		f->tcp.peek_off = setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF,
					     &(int){ 0 }, sizeof(int)) == 0;
	else
		tcp_sock_setup(f);
	if (g && g->kind == GFWD_INET)
		tcp_sock_setup(f);
	f->tcp.rcv_nxt = s->seq + 1;
	f->tcp.rcv_adv = f->tcp.rcv_nxt;
	f->tcp.snd_wnd = s->wnd;
	f->tcp.rto_ms = RTO_MIN_MS;
	tcp_take_syn_options(r, f, s);
	f->tcp.iss = tcp_iss(r, &f->k);
	f->tcp.snd_una = f->tcp.iss;
	f->tcp.snd_nxt = f->tcp.iss + 1;
	f->tcp.snd_max = f->tcp.snd_nxt;
	f->tcp.state = TS_CONNECTING;
	r->st.tcp_opened++;
	if (connected) {
		f->tcp.state = TS_SYN_RCVD;
		tcp_ctl(r, f, TH_SYN | TH_ACK, f->tcp.iss);
		tcp_set_deadline(r, f, SYN_RTO_MS);
	}
	tcp_update_events(r, f);
}

/* Payload (and FIN) of an acceptable segment, in order. */
static void tcp_data(struct router *r, struct flow *f,
		     const struct tcp_seg *s)
{
	struct tcp_conn *t = &f->tcp;
	struct cursor p = s->payload;
	uint32_t seq = s->seq;
	bool fin = s->flags & TH_FIN;

	if (!p.rem && !fin) {
		/* a window probe or keepalive (seq below rcv_nxt): RFC 9293
		 * 3.10.7.4 wants an ACK, which carries our current window */
		if (seq != t->rcv_nxt)
			tcp_queue_ack(r, f);
		return;
	}
	t->ack_pending = false;	/* re-queued below */
	if (seq_lt(seq, t->rcv_nxt)) {
		uint32_t dup = t->rcv_nxt - seq;

		if (dup >= p.rem + fin) {
			tcp_queue_ack(r, f);	/* pure retransmission */
			return;
		}
		if (dup > p.rem) {
			dup = (uint32_t)p.rem;
		}
		cur_pull(&p, dup);
		seq += dup;
	}
	if (seq != t->rcv_nxt) {
		if (!t->gap || seq_lt(t->gap_end, seq + (uint32_t)p.rem))
			t->gap_end = seq + (uint32_t)p.rem;
		t->gap = true;
		rdrop(r, RD_TCP_OOW);	/* a gap: ask again */
		tcp_queue_ack(r, f);
		return;
	}
	if (p.rem && !t->guest_fin && f->fd >= 0) {
		if (t->is_tcp_sock && !t->nodelay) {
			/* the guest's own stack already decided when to send:
			 * its segments go on as they come */
			setsockopt(f->fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 },
				   sizeof(int));
			t->nodelay = true;
		}
		ssize_t n = send(f->fd, p.p, p.rem, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno != EAGAIN) {
			tcp_abort(r, f, true, "host send failed");
			return;
		}
		if (n < 0)
			n = 0;
		tcp_sndbuf_used(t, (size_t)n);
		t->rcv_nxt += (uint32_t)n;
		if ((size_t)n < p.rem) {
			t->want_out = true;
			t->refused = true;
			fin = false;
		}
	}
	if (fin && !t->guest_fin) {
		t->rcv_nxt++;
		t->guest_fin = true;
		/* both sides done: the close() that follows sends the FIN */
		if (f->fd >= 0 && !t->fin_acked)
			shutdown(f->fd, SHUT_WR);
	}
	/* new data only (not a retransmission, not a repair) */
	if (p.rem && p.rem < t->mss && (s->flags & TH_PSH) && !fin &&
	    seq == s->seq && !t->gap && !t->refused && !t->guest_fin &&
	    !t->host_eof && f->fd >= 0 && t->state == TS_ESTABLISHED)
		tcp_delay_ack(r, f);
	else
		tcp_queue_ack(r, f);
	if (t->gap && !seq_lt(t->rcv_nxt, t->gap_end))
		t->gap = false;	/* repaired */
}

void tcp_input(struct router *r, const struct ip4_view *ip)
{
	struct tcp_seg s;
	struct flow_key k;
	struct flow *f;
	struct tcp_conn *t;

	if (!tcp_parse(r, ip, &s))
		return;
	memset(&k, 0, sizeof(k));
	k.proto = IPPROTO_TCP;
	ip_fill_key(ip, &k);
	k.gport = s.sport;
	k.rport = s.dport;
	f = flow_lookup(r->flows, &k);
	if (!f) {
		if ((s.flags & (TH_SYN | TH_ACK | TH_RST)) == TH_SYN) {
			tcp_open(r, ip, &s, &k);
			return;
		}
		if (!(s.flags & TH_RST))
			rdrop(r, RD_TCP_NO_FLOW);
		tcp_rst_reply(r, ip, &s, s.payload.rem);
		return;
	}
	t = &f->tcp;
	switch (t->state) {
	case TS_CONNECTING:
		if (s.flags & TH_RST)
			tcp_free(r, f);
		return;	/* a retransmitted SYN: still connecting */
	case TS_LINGER:
		if ((s.flags & (TH_SYN | TH_ACK | TH_RST)) == TH_SYN &&
		    seq_lt(t->rcv_nxt, s.seq)) {
			/* A new connection on the same ports (guests reuse
			 * them at once): the old one is over on both sides,
			 * so, as TIME-WAIT may (RFC 6191), start afresh. */
			tcp_free(r, f);
			tcp_open(r, ip, &s, &k);
			return;
		}
		if (s.flags & TH_FIN)
			tcp_ctl(r, f, TH_ACK, t->snd_nxt);
		return;
	case TS_SYN_SENT:
		if (s.flags & TH_RST) {
			if ((s.flags & TH_ACK) && s.ack == t->iss + 1) {
				r->st.tcp_refused++;
				tcp_abort(r, f, false, "guest refused");
			}
			return;
		}
		if ((s.flags & (TH_SYN | TH_ACK)) != (TH_SYN | TH_ACK) ||
		    s.ack != t->iss + 1)
			return;
		t->rcv_nxt = s.seq + 1;
		t->rcv_adv = t->rcv_nxt;
		tcp_take_syn_options(r, f, &s);
		t->snd_una = s.ack;
		t->snd_wnd = s.wnd;	/* not scaled in a SYN */
		t->state = TS_ESTABLISHED;
		t->retries = 0;
		t->rto_ms = RTO_MIN_MS;
		f->deadline = 0;
		t->readable = true;	/* the host client may have written */
		tcp_queue_ack(r, f);
		tcp_push(r, f);
		tcp_update_events(r, f);
		return;
	default:
		break;
	}
	/* SYN_RCVD or ESTABLISHED */
	if (s.flags & TH_RST) {
		uint32_t wnd = MAX(t->rcv_adv - t->rcv_nxt, 1u);

		if (s.seq - t->rcv_nxt < wnd)
			tcp_abort(r, f, false, "guest reset");
		else
			tcp_queue_ack(r, f);	/* challenge ACK, RFC 5961 */
		return;
	}
	if (s.flags & TH_SYN) {
		if (t->state == TS_SYN_RCVD && s.seq + 1 == t->rcv_nxt)
			tcp_ctl(r, f, TH_SYN | TH_ACK, t->iss);
		else
			tcp_queue_ack(r, f);
		return;
	}
	if (!(s.flags & TH_ACK))
		return;
	if (t->state == TS_SYN_RCVD) {
		if (s.ack != t->iss + 1) {
			tcp_rst_reply(r, ip, &s, s.payload.rem);
			return;
		}
		t->state = TS_ESTABLISHED;
		t->readable = true;	/* the host server may have written */
		flow_set_half_open(r->flows, f, false);
		t->snd_una = s.ack;
		t->retries = 0;
		f->deadline = 0;
	}
	if (seq_lt(t->snd_max, s.ack)) {
		/* ACK for data we never sent */
		rdrop(r, RD_TCP_OOW);
		tcp_queue_ack(r, f);
		return;
	}
	uint32_t new_wnd = (uint32_t)s.wnd << t->snd_shift;

	if (seq_lt(t->snd_una, s.ack)) {
		uint32_t acked = s.ack - t->snd_una;

		/* after a rewind the guest may ACK beyond snd_nxt, up to
		 * what we sent before (snd_max), our FIN included */
		if (t->host_eof && s.ack == t->fin_seq + 1 && !t->fin_acked) {
			t->fin_acked = true;
			t->fin_sent = true;
			acked--;
		}
		if (seq_lt(t->snd_nxt, s.ack))
			t->snd_nxt = s.ack;
		if (acked && f->fd >= 0 && tcp_discard(f, acked) < 0) {
			tcp_abort(r, f, true, "host socket error");
			return;
		}
		t->snd_una = s.ack;
		t->retries = 0;
		t->dupacks = 0;
		t->rto_ms = RTO_MIN_MS;
		f->deadline = 0;
		if (t->snd_nxt != t->snd_una)
			tcp_set_deadline(r, f, t->rto_ms);
	} else if (s.ack == t->snd_una && !new_wnd) {
		t->retries = 0;	/* a live guest with a closed window */
	} else if (s.ack == t->snd_una && !s.payload.rem &&
		   !(s.flags & TH_FIN) && t->snd_nxt != t->snd_una &&
		   new_wnd == t->snd_wnd) {
		if (++t->dupacks == 3) {
			tcp_rewind(f);	/* fast retransmit */
			t->dupacks = 0;
		}
	}
	t->snd_wnd = new_wnd;
	tcp_data(r, f, &s);
	if (!f->used)
		return;
	if (t->guest_fin && t->fin_acked) {
		tcp_linger(r, f);
		return;
	}
	/* more to send only if the socket has news (or we left some behind
	 * for the window this segment may have opened) */
	if (t->readable)
		tcp_push(r, f);
	if (f->used)
		tcp_update_events(r, f);
}

/* ---- host socket events and timers ------------------------------------------------- */

void tcp_flow_event(struct router *r, struct flow *f, uint32_t events)
{
	struct tcp_conn *t = &f->tcp;

	if (t->state == TS_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(f->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err == EINPROGRESS || (!err && !(events & EPOLLOUT)))
			return;
		if (err) {
			if (err == ECONNREFUSED) {
				r->st.tcp_refused++;
				tcp_ctl(r, f, TH_RST | TH_ACK, 0);
			} else {
				uint8_t l4[8];

				put_be32(l4 + 4, t->rcv_nxt - 1); /* SYN seq */
				icmp_send_error_flow(r, f, l4, 3,
						     err == ENETUNREACH ? 0 : 1);
			}
			tcp_free(r, f);
			return;
		}
		t->state = TS_SYN_RCVD;
		tcp_ctl(r, f, TH_SYN | TH_ACK, t->iss);
		tcp_set_deadline(r, f, SYN_RTO_MS);
		tcp_update_events(r, f);
		return;
	}
	if (events & EPOLLERR) {
		int err = 0;
		socklen_t len = sizeof(err);

		getsockopt(f->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			tcp_abort(r, f, true, strerror(err));
			return;
		}
	}
	if (events & EPOLLOUT && t->want_out) {
		t->want_out = false;
		if (t->refused) {
			/* we dropped in-window data: three duplicate ACKs
			 * make the guest resend it now, not after a timeout */
			t->refused = false;
			tcp_ctl(r, f, TH_ACK, t->snd_nxt);
			tcp_ctl(r, f, TH_ACK, t->snd_nxt);
		}
		tcp_queue_ack(r, f);	/* window update */
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP | EPOLLERR)) {
		t->readable = true;
		if (events & (EPOLLHUP | EPOLLRDHUP))
			t->host_rdhup = true;
		tcp_push(r, f);
	}
	if (f->used) {
		tcp_update_events(r, f);
		tcp_send_acks(r);
	}
}

void tcp_timer(struct router *r, struct flow *f, uint64_t now)
{
	struct tcp_conn *t = &f->tcp;

	if (!f->deadline || now < f->deadline)
		return;
	f->deadline = 0;
	switch (t->state) {
	case TS_LINGER:
		tcp_free(r, f);
		return;
	case TS_SYN_RCVD:
	case TS_SYN_SENT:
		if (++t->retries > SYN_RETRIES) {
			tcp_abort(r, f, t->state == TS_SYN_RCVD,
				  "no answer to SYN");
			return;
		}
		tcp_ctl(r, f, t->state == TS_SYN_SENT ? TH_SYN
						       : TH_SYN | TH_ACK,
			t->iss);
		tcp_set_deadline(r, f, SYN_RTO_MS << MIN(t->retries, 4));
		return;
	case TS_ESTABLISHED:
		break;
	default:
		return;
	}
	if (t->snd_nxt == t->snd_una) {
		if (t->snd_wnd) {
			if (t->readable) {
				/* left behind for want of output slots */
				tcp_push(r, f);
				if (f->used)
					tcp_update_events(r, f);
			}
			return;
		}
		/* persist: one byte past the closed window; a guest that
		 * answers keeps the connection alive (see tcp_input) */
		t->rto_ms = MIN(t->rto_ms * 2, (uint32_t)RTO_MAX_MS);
		t->snd_wnd = 1;
		tcp_push(r, f);
		t->snd_wnd = 0;
	} else {
		if (++t->retries > MAX_RETRIES) {
			tcp_abort(r, f, true, "retransmission limit");
			return;
		}
		/* back off first: the push arms the next timeout */
		t->rto_ms = MIN(t->rto_ms * 2, (uint32_t)RTO_MAX_MS);
		tcp_rewind(f);
		tcp_push(r, f);
	}
	if (f->used && !f->deadline)
		tcp_set_deadline(r, f, t->rto_ms);
	if (f->used)
		tcp_update_events(r, f);
}

void tcp_inbound(struct router *r, int fd,
		 const struct sockaddr_storage *client, int hidx)
{
	struct hostfwd *h = &r->hostfwd[hidx];
	struct flow_key k = { .proto = IPPROTO_TCP };
	struct flow *f;

	fwd_client_key(r, h, client, &k);
	if (flow_lookup(r->flows, &k)) {
		rdrop(r, RD_FLOW_FULL);
		close(fd);
		return;
	}
	if (!(f = router_flow_new(r, &k, NULL))) {
		close(fd);
		return;
	}
	f->fd = fd;
	f->hostfwd = hidx;
	h->conns++;
	tcp_sock_setup(f);
	f->tcp.iss = tcp_iss(r, &f->k);
	f->tcp.snd_una = f->tcp.iss;
	f->tcp.snd_nxt = f->tcp.iss + 1;
	f->tcp.snd_max = f->tcp.snd_nxt;
	f->tcp.rto_ms = RTO_MIN_MS;
	f->tcp.mss = tcp_mss_max(r, &f->k);
	f->tcp.wscale_ok = true;	/* offered; confirmed by the SYN-ACK */
	f->tcp.state = TS_SYN_SENT;
	r->st.tcp_opened++;
	tcp_ctl(r, f, TH_SYN, f->tcp.iss);
	tcp_set_deadline(r, f, SYN_RTO_MS);
}
