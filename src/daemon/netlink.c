// SPDX-License-Identifier: MIT
/* netlink.c: bring an interface up, give it an address and a default route,
 * with rtnetlink (no dependency on ip(8)). */
#include <errno.h>
#include <linux/if.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netlink.h"

struct nlreq {
	struct nlmsghdr h;
	union {
		struct ifinfomsg ifi;
		struct ifaddrmsg ifa;
		struct rtmsg rt;
	};
	char attrs[256];
};

static void nl_attr(struct nlreq *r, unsigned short type, const void *v,
		    unsigned short len)
{
	struct rtattr *a = (struct rtattr *)((char *)r + NLMSG_ALIGN(r->h.nlmsg_len));

	a->rta_type = type;
	a->rta_len = (unsigned short)RTA_LENGTH(len);
	memcpy(RTA_DATA(a), v, len);
	r->h.nlmsg_len = NLMSG_ALIGN(r->h.nlmsg_len) + RTA_ALIGN(a->rta_len);
}

/* Send one request and wait for its acknowledgement. */
static int nl_talk(struct nlreq *r)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	char buf[4096];
	int fd, err = -EIO;
	ssize_t n;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	r->h.nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	r->h.nlmsg_seq = 1;
	if (sendto(fd, r, r->h.nlmsg_len, 0, (struct sockaddr *)&kernel,
		   sizeof(kernel)) < 0) {
		err = -errno;
		goto out;
	}
	n = recv(fd, buf, sizeof(buf), 0);
	if (n < 0) {
		err = -errno;
		goto out;
	}
	for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
	     h = NLMSG_NEXT(h, n)) {
		if (h->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *e = NLMSG_DATA(h);

			err = e->error;	/* 0 is the acknowledgement */
			break;
		}
	}
out:
	close(fd);
	return err;
}

int nl_link_up(int ifindex, unsigned mtu)
{
	struct nlreq r;

	memset(&r, 0, sizeof(r));
	r.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
	r.h.nlmsg_type = RTM_NEWLINK;
	r.ifi.ifi_family = AF_UNSPEC;
	r.ifi.ifi_index = ifindex;
	r.ifi.ifi_flags = IFF_UP;
	r.ifi.ifi_change = IFF_UP;
	if (mtu)
		nl_attr(&r, IFLA_MTU, &mtu, sizeof(mtu));
	return nl_talk(&r);
}

int nl_addr4_add(int ifindex, uint32_t addr, unsigned prefixlen)
{
	struct nlreq r;

	memset(&r, 0, sizeof(r));
	r.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
	r.h.nlmsg_type = RTM_NEWADDR;
	r.h.nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
	r.ifa.ifa_family = AF_INET;
	r.ifa.ifa_prefixlen = (unsigned char)prefixlen;
	r.ifa.ifa_index = (unsigned)ifindex;
	nl_attr(&r, IFA_LOCAL, &addr, 4);
	nl_attr(&r, IFA_ADDRESS, &addr, 4);
	return nl_talk(&r);
}

int nl_route4_default(int ifindex, uint32_t gateway)
{
	struct nlreq r;

	memset(&r, 0, sizeof(r));
	r.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
	r.h.nlmsg_type = RTM_NEWROUTE;
	r.h.nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
	r.rt.rtm_family = AF_INET;
	r.rt.rtm_table = RT_TABLE_MAIN;
	r.rt.rtm_protocol = RTPROT_BOOT;
	r.rt.rtm_scope = RT_SCOPE_UNIVERSE;
	r.rt.rtm_type = RTN_UNICAST;
	nl_attr(&r, RTA_GATEWAY, &gateway, 4);
	nl_attr(&r, RTA_OIF, &ifindex, sizeof(ifindex));
	return nl_talk(&r);
}
