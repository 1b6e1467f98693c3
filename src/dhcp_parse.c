// SPDX-License-Identifier: MIT
/* dhcp_parse.c: the pure DHCP/BOOTP message parser (fuzzed). */
#include <errno.h>
#include <string.h>

#include "dhcp.h"
#include "pkt.h"
#include "util.h"

void dhcp_sanitize_name(const uint8_t *in, size_t len, char *out, size_t size)
{
	size_t o = 0;

	for (size_t i = 0; i < len && o + 1 < size && o < 63; i++) {
		uint8_t c = in[i];

		if (c == '.' || c == 0)
			break;	/* first label only */
		if (c >= 'A' && c <= 'Z')
			c = (uint8_t)(c - 'A' + 'a');
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    (c == '-' && o > 0))
			out[o++] = (char)c;
	}
	while (o > 0 && out[o - 1] == '-')
		o--;
	if (size)
		out[o < size ? o : size - 1] = '\0';
}

/* Walk one option area; returns the overload value (option 52) seen. */
static int dhcp_options(struct cursor c, struct dhcp_msg *m, bool *bad)
{
	int overload = 0;

	while (c.rem) {
		uint8_t code, len;
		const uint8_t *v;

		if (!cur_u8(&c, &code) || code == DHCP_OPT_END)
			break;
		if (code == DHCP_OPT_PAD)
			continue;
		if (!cur_u8(&c, &len) || !(v = cur_pull(&c, len)))
			break;	/* truncated: keep what we have */
		switch (code) {
		case DHCP_OPT_MSG_TYPE:
			if (len != 1 || v[0] < DHCPDISCOVER || v[0] > DHCPINFORM)
				*bad = true;
			else
				m->type = v[0];
			break;
		case DHCP_OPT_REQUESTED_IP:
			if (len == 4)
				memcpy(&m->requested_ip, v, 4);
			break;
		case DHCP_OPT_SERVER_ID:
			if (len == 4)
				memcpy(&m->server_id, v, 4);
			break;
		case DHCP_OPT_CLIENT_ID:
			if (len >= 2 && len <= DHCP_CLIENT_ID_MAX) {
				memcpy(m->client_id, v, len);
				m->client_id_len = len;
			}
			break;
		case DHCP_OPT_HOSTNAME:
			dhcp_sanitize_name(v, len, m->hostname,
					   sizeof(m->hostname));
			break;
		case DHCP_OPT_FQDN:
			/* flags, rcode1, rcode2, then the name: ASCII, or
			 * wire format when the E flag is set (RFC 4702) */
			if (len > 3 && !m->hostname[0]) {
				if (v[0] & 0x04) {
					uint8_t l = v[3];

					if (l && (size_t)l + 4 <= len)
						dhcp_sanitize_name(v + 4, l,
								   m->hostname,
								   sizeof(m->hostname));
				} else {
					dhcp_sanitize_name(v + 3, len - 3u,
							   m->hostname,
							   sizeof(m->hostname));
				}
			}
			break;
		case DHCP_OPT_MAX_SIZE:
			if (len == 2)
				m->max_size = (uint16_t)(v[0] << 8 | v[1]);
			break;
		case DHCP_OPT_OVERLOAD:
			if (len == 1 && v[0] >= 1 && v[0] <= 3)
				overload = v[0];
			break;
		default:
			break;
		}
	}
	return overload;
}

int dhcp_parse(const uint8_t *p, size_t len, struct dhcp_msg *m)
{
	struct cursor c = cur_init(p, len);
	const uint8_t *fix = cur_pull(&c, DHCP_FIXED);
	bool bad = false;
	uint32_t magic;
	int overload;

	memset(m, 0, sizeof(*m));
	if (!fix)
		return -EBADMSG;
	m->op = fix[0];
	m->htype = fix[1];
	m->hlen = fix[2];
	if (m->op != BOOTREQUEST || m->htype != 1 || m->hlen != 6)
		return -EBADMSG;
	memcpy(&m->xid, fix + 4, 4);
	m->flags = (uint16_t)(fix[10] << 8 | fix[11]);
	memcpy(&m->ciaddr, fix + 12, 4);
	memcpy(&m->yiaddr, fix + 16, 4);
	memcpy(&m->siaddr, fix + 20, 4);
	memcpy(&m->giaddr, fix + 24, 4);
	memcpy(m->chaddr, fix + 28, 16);
	if (!cur_be32(&c, &magic) || magic != DHCP_MAGIC)
		return 0;	/* plain BOOTP without vendor options */
	m->has_magic = true;
	overload = dhcp_options(c, m, &bad);
	/* RFC 2131 4.1: file first, then sname */
	if (overload & 1)
		dhcp_options(cur_init(fix + 108, 128), m, &bad);
	if (overload & 2)
		dhcp_options(cur_init(fix + 44, 64), m, &bad);
	return bad ? -EBADMSG : 0;
}
