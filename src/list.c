// SPDX-License-Identifier: MIT
/* list.c: pb_list_json(): segments, ports, router flows, DHCP leases,
 * forwards and captures as JSON arrays (the control socket's listings). */

/*
 * Every listing is one JSON array of flat-ish objects followed by a
 * newline, written through a stdio stream on a duplicate of the caller's
 * fd.  The object formats are part of the control schema (docs/control.md):
 * members are only ever added, never renamed or removed, without bumping
 * the schema version.  Walking the tables is O(table size) and happens on
 * the control path only; nothing here touches the data path's buffers.
 */
#include <arpa/inet.h>
#include <errno.h>

#include "dhcp.h"
#include "flow.h"
#include "jsonw.h"
#include "list.h"
#include "router.h"
#include "router_api.h"

static void list_segment_members(FILE *f, const struct segment *s)
{
	fputs("\"id\":", f);
	jsonw_str(f, s->id);
	fprintf(f, ",\"type\":\"%s\",\"ports\":%u,\"frames\":%llu,\"bytes\":%llu,"
		   "\"flooded\":%llu,\"forwarded\":%llu,\"filtered\":%llu",
		s->type == SEG_SWITCH ? "switch" : "hub", s->nmembers,
		(unsigned long long)s->frames, (unsigned long long)s->bytes,
		(unsigned long long)s->flooded,
		(unsigned long long)s->forwarded,
		(unsigned long long)s->filtered);
	if (s->type == SEG_SWITCH)
		fprintf(f, ",\"fdb_entries\":%u,\"fdb_max\":%u,\"fdb_learned\":%llu,"
			   "\"fdb_moved\":%llu,\"fdb_full\":%llu,\"fdb_aged\":%llu,"
			   "\"fdb_per_port\":%u,\"fdb_port_full\":%llu",
			s->fdb.count, s->fdb.max,
			(unsigned long long)s->fdb.learned,
			(unsigned long long)s->fdb.moved,
			(unsigned long long)s->fdb.full,
			(unsigned long long)s->fdb.aged, s->fdb.port_max,
			(unsigned long long)s->fdb.port_full);
}

static void list_port_members(FILE *f, const struct pb *pb,
			      const struct port *p)
{
	fputs("\"name\":", f);
	jsonw_str(f, p->name);
	fputs(",\"netdev\":", f);
	jsonw_str(f, pb->netdevs[p->netdev].id);
	fprintf(f, ",\"type\":\"%s\",\"segment\":", p->ops->type);
	jsonw_str(f, pb->segs[p->seg].id);
	fputs(",\"peer\":", f);
	jsonw_str(f, p->peer);
	fprintf(f, ",\"link\":\"%s\",\"rx_frames\":%llu,\"rx_bytes\":%llu,"
		   "\"tx_frames\":%llu,\"tx_bytes\":%llu,\"offloads\":\"%s%s%s%s\","
		   "\"tx_offloaded\":%llu,\"tx_soft\":%llu,\"drops\":{",
		p->link_down ? "down" : "up", (unsigned long long)p->rx_frames,
		(unsigned long long)p->rx_bytes,
		(unsigned long long)p->tx_frames,
		(unsigned long long)p->tx_bytes,
		p->offloads & PORT_OFF_CSUM ? "csum" : "",
		p->offloads & PORT_OFF_TSO4 ? ",tso4" : "",
		p->offloads & PORT_OFF_TSO6 ? ",tso6" : "",
		p->offloads & PORT_OFF_USO ? ",uso" : "",
		(unsigned long long)p->tx_offloaded,
		(unsigned long long)p->tx_soft);
	for (int d = 0; d < DROP_REASON_MAX; d++)
		fprintf(f, "%s\"%s\":%llu", d ? "," : "", drop_reason_names[d],
			(unsigned long long)p->drops[d]);
	fputc('}', f);
}

void list_segments(FILE *f, const struct pb *pb)
{
	const char *sep = "";

	for (uint32_t i = 0; i < pb->max_segs; i++) {
		if (!pb->segs[i].used)
			continue;
		fprintf(f, "%s{", sep);
		list_segment_members(f, &pb->segs[i]);
		fputc('}', f);
		sep = ",";
	}
}

void list_ports(FILE *f, struct pb *pb, bool router)
{
	const char *sep = "";

	for (uint32_t i = 0; i < pb->max_ports; i++) {
		const struct port *p = &pb->ports[i];

		if (!p->used || p->dead)
			continue;
		fprintf(f, "%s{", sep);
		list_port_members(f, pb, p);
		if (router)
			router_stats_json(pb, (uint32_t)p->netdev, f);
		fputc('}', f);
		sep = ",";
	}
}

/* "A.B.C.D" or "A.B.C.D:PORT" (ip in network order). */
static void put_addr(FILE *f, const char *key, uint32_t ip, int port)
{
	char a[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &ip, a, sizeof(a));
	if (port >= 0)
		fprintf(f, ",\"%s\":\"%s:%d\"", key, a, port);
	else
		fprintf(f, ",\"%s\":\"%s\"", key, a);
}

static void put_addr6(FILE *f, const char *key, const struct in6_addr *ip,
		      int port)
{
	char a[INET6_ADDRSTRLEN];

	inet_ntop(AF_INET6, ip, a, sizeof(a));
	if (port >= 0)
		fprintf(f, ",\"%s\":\"[%s]:%d\"", key, a, port);
	else
		fprintf(f, ",\"%s\":\"%s\"", key, a);
}

static const char *tcp_state_name(const struct tcp_conn *t)
{
	switch (t->state) {
	case TS_CONNECTING:
		return "connecting";
	case TS_SYN_RCVD:
		return "syn_received";
	case TS_SYN_SENT:
		return "syn_sent";
	case TS_ESTABLISHED:
		return t->guest_fin || t->host_eof ? "closing" : "established";
	case TS_LINGER:
		return "time_wait";
	default:
		return "closed";
	}
}

static void list_flow(FILE *f, struct pb *pb, const struct router *r,
		      const struct flow *fl)
{
	const struct flow_key *k = &fl->k;
	bool icmp = k->proto == IPPROTO_ICMP || k->proto == IPPROTO_ICMPV6;

	fputs("{\"netdev\":", f);
	jsonw_str(f, pb->netdevs[r->nd].id);
	fprintf(f, ",\"proto\":\"%s\"",
		k->proto == IPPROTO_TCP	  ? "tcp"
		: k->proto == IPPROTO_UDP ? "udp"
		: k->proto == IPPROTO_ICMP ? "icmp"
					   : "icmpv6");
	if (k->v6) {
		put_addr6(f, "guest", &k->gip6, icmp ? -1 : k->gport);
		put_addr6(f, "remote", &k->rip6, icmp ? -1 : k->rport);
	} else {
		put_addr(f, "guest", k->gip, icmp ? -1 : k->gport);
		put_addr(f, "remote", k->rip, icmp ? -1 : k->rport);
	}
	if (icmp)
		fprintf(f, ",\"echo_id\":%u", k->gport);
	fprintf(f, ",\"direction\":\"%s\",\"state\":\"%s\"",
		fl->hostfwd != -1 ? "in" : "out",
		k->proto == IPPROTO_TCP ? tcp_state_name(&fl->tcp)
		: fl->is_dns		? "dns"
					: "active");
	if (fl->last_active && pb_now(pb) >= fl->last_active)
		fprintf(f, ",\"idle_ms\":%llu",
			(unsigned long long)((pb_now(pb) - fl->last_active) /
					     NS_PER_MS));
	fputc('}', f);
}

static void list_flows(FILE *f, struct pb *pb)
{
	const char *sep = "";

	for (uint32_t n = 0; n < pb->nrouters; n++) {
		const struct router *r = router_get(pb, pb->routers[n]);

		for (uint32_t i = 0; r && i < r->flows->high; i++) {
			if (!r->flows->f[i].used)
				continue;
			fputs(sep, f);
			list_flow(f, pb, r, &r->flows->f[i]);
			sep = ",";
		}
	}
}

static void list_leases(FILE *f, struct pb *pb)
{
	static const char *const states[] = { [LEASE_OFFERED] = "offered",
					      [LEASE_BOUND] = "bound" };
	const char *sep = "";

	for (uint32_t n = 0; n < pb->nrouters; n++) {
		const struct router *r = router_get(pb, pb->routers[n]);

		for (uint32_t i = 0; r && r->dhcp.lease && i < r->dhcp.npool;
		     i++) {
			const struct dhcp_lease *l = &r->dhcp.lease[i];
			uint64_t now = pb_now(pb);

			if (l->state != LEASE_BOUND && l->state != LEASE_OFFERED)
				continue;
			fprintf(f, "%s{\"netdev\":", sep);
			jsonw_str(f, pb->netdevs[r->nd].id);
			put_addr(f, "ip", htonl(r->dhcp.pool_first + i), -1);
			fprintf(f, ",\"mac\":\"%02x:%02x:%02x:%02x:%02x:%02x\",\"name\":",
				l->mac[0], l->mac[1], l->mac[2], l->mac[3],
				l->mac[4], l->mac[5]);
			jsonw_str(f, l->name);
			fprintf(f, ",\"state\":\"%s\",\"expires_in\":%llu}",
				states[l->state],
				(unsigned long long)(l->expiry > now
					? (l->expiry - now) / NS_PER_SEC : 0));
			sep = ",";
		}
	}
}

static void list_forwards(FILE *f, struct pb *pb)
{
	const char *sep = "";
	char rule[512];

	for (uint32_t n = 0; n < pb->nrouters; n++) {
		const struct router *r = router_get(pb, pb->routers[n]);

		for (unsigned i = 0; r && i < r->nhostfwd; i++) {
			const struct hostfwd *h = &r->hostfwd[i];

			fprintf(f, "%s{\"netdev\":", sep);
			jsonw_str(f, pb->netdevs[r->nd].id);
			fwd_hostfwd_rule(h, rule, sizeof(rule));
			fprintf(f, ",\"type\":\"hostfwd\",\"proto\":\"%s\"",
				h->proto == FWD_TCP ? "tcp" : "udp");
			if (h->host.ss_family == AF_INET6) {
				const struct sockaddr_in6 *a6 =
					(const struct sockaddr_in6 *)&h->host;

				put_addr6(f, "host", &a6->sin6_addr,
					  ntohs(a6->sin6_port));
			} else {
				const struct sockaddr_in *a4 =
					(const struct sockaddr_in *)&h->host;

				put_addr(f, "host", a4->sin_addr.s_addr,
					 ntohs(a4->sin_port));
			}
			if (h->guest_v6)
				put_addr6(f, "guest", &h->guest_ip6, h->guest_port);
			else
				put_addr(f, "guest", h->guest_ip, h->guest_port);
			fputs(",\"rule\":", f);
			jsonw_str(f, rule);
			fprintf(f, ",\"conns\":%u}", h->conns);
			sep = ",";
		}
		for (unsigned i = 0; r && i < r->nguestfwd; i++) {
			const struct guestfwd *g = &r->guestfwd[i];

			fprintf(f, "%s{\"netdev\":", sep);
			jsonw_str(f, pb->netdevs[r->nd].id);
			fwd_guestfwd_rule(g, rule, sizeof(rule));
			fputs(",\"type\":\"guestfwd\",\"proto\":\"tcp\"", f);
			put_addr(f, "guest", g->ip, g->port);
			fputs(",\"rule\":", f);
			jsonw_str(f, rule);
			fputc('}', f);
			sep = ",";
		}
	}
}

static void list_captures(FILE *f, struct pb *pb)
{
	const char *sep = "";

	for (int i = 0; i < MAX_CAPTURES; i++) {
		const struct capture *c = &pb->caps[i];

		if (!c->used)
			continue;
		fprintf(f, "%s{\"id\":", sep);
		jsonw_str(f, c->id);
		if (c->netdev >= 0) {
			fputs(",\"netdev\":", f);
			jsonw_str(f, pb->netdevs[c->netdev].id);
		} else {
			fputs(",\"segment\":", f);
			jsonw_str(f, pb->segs[c->seg].id);
		}
		fputs(",\"file\":", f);
		jsonw_str(f, c->file);
		fprintf(f, ",\"maxlen\":%u,\"active\":%s,\"frames\":%llu,"
			   "\"bytes_written\":%llu,\"write_errors\":%llu}",
			c->maxlen, c->fd >= 0 ? "true" : "false",
			(unsigned long long)c->frames,
			(unsigned long long)c->bytes_written,
			(unsigned long long)c->write_errors);
		sep = ",";
	}
}

int pb_list_json(pb_t *pb, enum pb_list what, int fd)
{
	FILE *f;

	pb->errmsg[0] = '\0';
	if ((unsigned)what > PB_LIST_CAPTURES)
		return pb__err(pb, -EINVAL, "pb_list_json: unknown list %d",
			       (int)what);
	f = jsonw_open(fd);
	if (!f)
		return pb__err(pb, -errno, "pb_list_json: %s", strerror(errno));
	loop_update_now(&pb->loop);
	fputc('[', f);
	switch (what) {
	case PB_LIST_SEGMENTS:
		list_segments(f, pb);
		break;
	case PB_LIST_PORTS:
		list_ports(f, pb, false);
		break;
	case PB_LIST_FLOWS:
		list_flows(f, pb);
		break;
	case PB_LIST_LEASES:
		list_leases(f, pb);
		break;
	case PB_LIST_FORWARDS:
		list_forwards(f, pb);
		break;
	case PB_LIST_CAPTURES:
		list_captures(f, pb);
		break;
	}
	fputs("]\n", f);
	return jsonw_close(f);
}
