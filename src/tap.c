// SPDX-License-Identifier: MIT
/* tap.c: the TAP backend (-netdev tap): a kernel network interface whose
 * frames we read and write through /dev/net/tun. */

/*
 * Theory of operation.  One read() is one frame and one write() is one
 * frame; a round reads up to RX_BATCH frames into the instance's receive
 * slots.  A full TAP queue (EAGAIN) drops the frame (tx_full), as the kernel
 * itself does.  When the interface is deleted the fd reports an error
 * (EBADFD/EIO) and the port goes away without disturbing the others.
 *
 * vnet_hdr=on (the default for interfaces patchbay creates; an fd= TAP
 * keeps what it was opened with): every frame carries a struct
 * virtio_net_hdr_v1 (12 bytes) in front, which is how offloads travel.
 * With offload=on (the default with vnet_hdr) we tell the kernel we take
 * unfinished checksums and TCP super-segments (TUNSETOFFLOAD CSUM, TSO4,
 * TSO6, TSO_ECN), so the interface on the far side sends up to 64 KiB per
 * frame at any MTU, and one read() moves what would be 45 frames.  The
 * header becomes the frame's struct frame_meta; what another port cannot
 * take is finished for it by port_enqueue().  Where the kernel has it
 * (Linux 6.2), UDP segmentation offload too (TUN_F_USO4/6): an application
 * behind the TAP that sends with UDP_SEGMENT hands over up to 64 KiB of
 * datagrams in one frame (and one read()), which the router gets cut back
 * into datagrams and sends on with UDP_SEGMENT again.  Writing, the kernel takes
 * such frames from us whatever we asked for, so the port's offloads are on
 * whenever vnet_hdr is.
 *
 * netns=NAME|PATH (patchbay's own): the interface is created inside that
 * network namespace (a name from `ip netns`, or a path such as
 * /proc/PID/ns/net); the fd keeps working from ours.
 *
 * script=/downscript= run like QEMU's qemu-ifup: the program with the
 * interface name as its only argument, waited for at set-up and tear-down.
 * Unlike QEMU the default is "no": patchbay does not run /etc/qemu-ifup
 * unasked.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "netdev.h"
#include "port.h"
#include "seg.h"
#include "sockaddr.h"

#define VNET_HDR_LEN ((int)sizeof(struct virtio_net_hdr_v1))
#define TAP_BATCHES 8
#define TAP_OFFLOADS (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN)
#define TAP_PORT_OFFLOADS \
	(PORT_OFF_CSUM | PORT_OFF_TSO4 | PORT_OFF_TSO6 | PORT_OFF_ECN)
/* (linux/if_tun.h and virtio_net.h of Linux 6.2; older headers lack them) */
#define TAP_F_USO4 0x20
#define TAP_F_USO6 0x40
#define TAP_GSO_UDP_L4 5

struct tap_port {
	char ifname[IFNAMSIZ];
	char downscript[256];
	bool vnet_hdr;
	bool offload;		/* the kernel may send us offloaded frames */
	bool uso;		/* ... UDP super-datagrams too */
};

/* The virtio-net header of a frame read from the TAP as frame_meta; false
 * if we did not ask for what it says (or it makes no sense). */
static bool tap_meta(const struct tap_port *tp,
		     const struct virtio_net_hdr_v1 *h, struct frame_meta *m)
{
	uint8_t t = h->gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;

	m->flags = h->flags & (FM_NEEDS_CSUM | FM_DATA_VALID);
	m->gso_type = h->gso_type;
	m->hdr_len = le16toh(h->hdr_len);
	m->gso_size = le16toh(h->gso_size);
	m->csum_start = le16toh(h->csum_start);
	m->csum_offset = le16toh(h->csum_offset);
	if (!tp->offload)
		return t == VIRTIO_NET_HDR_GSO_NONE && !(m->flags & FM_NEEDS_CSUM);
	if (t == TAP_GSO_UDP_L4)
		return tp->uso && !(h->gso_type & VIRTIO_NET_HDR_GSO_ECN);
	return t == VIRTIO_NET_HDR_GSO_NONE || t == VIRTIO_NET_HDR_GSO_TCPV4 ||
	       t == VIRTIO_NET_HDR_GSO_TCPV6;
}

/* One batch: read up to RX_BATCH frames, feed them, flush.  Returns how
 * many were read (less than RX_BATCH: the queue is empty or the port died). */
static int tap_batch(struct pb *pb, struct port *p)
{
	struct tap_port *tp = p->priv;
	size_t hl = tp->vnet_hdr ? VNET_HDR_LEN : 0;
	size_t len[RX_BATCH];
	int n = 0;

	for (; n < RX_BATCH; n++) {
		ssize_t r = read(p->fd, pb_rx_slot(pb, (unsigned)n),
				 FRAME_MAX_ALIGNED);

		if (r < 0) {
			if (errno == EINTR) {
				n--;
				continue;
			}
			if (errno != EAGAIN)
				port_kill(pb, p, errno == EBADFD || errno == EIO
							 ? "interface removed"
							 : strerror(errno));
			break;
		}
		len[n] = (size_t)r;
	}
	for (int i = 0; i < n; i++) {
		const uint8_t *f = pb_rx_slot(pb, (unsigned)i);
		struct frame_meta m;

		if (!hl) {
			seg_input(pb, p, f, len[i]);
			continue;
		}
		if (len[i] < hl ||
		    !tap_meta(tp, (const struct virtio_net_hdr_v1 *)f, &m)) {
			port_drop(pb, p, DROP_BAD_VNET_HDR);
			continue;
		}
		seg_input_m(pb, p, f + hl, len[i] - hl, &m);
	}
	seg_flush(pb);
	return n;
}

/* Drain the TAP's queue (a few batches): the guest's ACKs must not wait
 * behind our own output, or its queue overflows while we write. */
static void tap_event(struct pb *pb, struct port *p, uint32_t events)
{
	(void)events;
	for (int k = 0; k < TAP_BATCHES && !p->dead; k++)
		if (tap_batch(pb, p) < RX_BATCH)
			break;
}

static void tap_flush(struct pb *pb, struct port *p)
{
	struct tap_port *tp = p->priv;

	for (uint32_t i = 0; i < p->txn; i++) {
		const struct frame_meta *m = &p->txq[i].m;
		struct virtio_net_hdr_v1 vh = {
			.flags = m->flags,
			.gso_type = m->gso_type,
			.hdr_len = htole16(m->hdr_len),
			.gso_size = htole16(m->gso_size),
			.csum_start = htole16(m->csum_start),
			.csum_offset = htole16(m->csum_offset),
		};
		struct iovec iov[2] = {
			{ .iov_base = &vh, .iov_len = VNET_HDR_LEN },
			{ .iov_base = (void *)p->txq[i].p,
			  .iov_len = p->txq[i].len },
		};
		ssize_t r;

		do
			r = tp->vnet_hdr ? writev(p->fd, iov, 2)
					 : write(p->fd, p->txq[i].p,
						 p->txq[i].len);
		while (r < 0 && errno == EINTR);
		if (r >= 0) {
			port_count_tx(p, i, 1);
			continue;
		}
		if (errno == EBADFD) {
			port_kill(pb, p, "interface removed");
			break;
		}
		port_drop(pb, p, errno == EAGAIN ? DROP_TX_FULL
			  : errno == EINVAL ? DROP_BAD_OFFLOAD : DROP_TX_ERROR);
	}
	p->txn = 0;
}

/* Run a qemu-ifup style script with the interface name; 0 if it exited 0. */
static int tap_run_script(struct pb *pb, const char *script, const char *ifname)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		char *argv[] = { (char *)script, (char *)ifname, NULL };

		execv(script, argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		log_err(&pb->log, "script %s %s failed (status %d)", script,
			ifname, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		return -ECHILD;
	}
	return 0;
}

static void tap_close(struct pb *pb, struct port *p)
{
	struct tap_port *tp = p->priv;

	if (tp->downscript[0])
		tap_run_script(pb, tp->downscript, tp->ifname);
}

/* The interface's carrier follows the port's link (TUNSETCARRIER, Linux
 * 4.19+): a guest behind the TAP sees its cable unplugged. */
static void tap_set_link(struct pb *pb, struct port *p, bool up)
{
	int on = up;

	if (ioctl(p->fd, TUNSETCARRIER, &on) < 0)
		log_info(&pb->log, "port %s: carrier not changed: %s", p->name,
			 strerror(errno));
}

static const struct port_ops tap_port_ops = {
	.type = "tap",
	.event = tap_event,
	.flush = tap_flush,
	.close = tap_close,
	.set_link = tap_set_link,
};

static const struct netdev_ops tap_nd_ops = {
	.type = "tap",
};

/* Header size and offloads of a vnet_hdr TAP fd; 0 or -errno.  *uso:
 * whether UDP super-datagrams are on too (an older kernel refuses the
 * unknown bits, and gets the rest alone). */
static int tap_vnet_setup(int fd, bool offload, bool *uso)
{
	int hl = VNET_HDR_LEN;

	*uso = false;
	if (ioctl(fd, TUNSETVNETHDRSZ, &hl) < 0)
		return -errno;
	if (offload && ioctl(fd, TUNSETOFFLOAD, TAP_OFFLOADS | TAP_F_USO4 |
							TAP_F_USO6) == 0) {
		*uso = true;
		return 0;
	}
	if (ioctl(fd, TUNSETOFFLOAD, offload ? TAP_OFFLOADS : 0) < 0)
		return -errno;
	return 0;
}

/* Open /dev/net/tun and attach it to ifname (created if needed). */
static int tap_open(struct pb *pb, struct netdev *nd, char *ifname,
		    bool vnet_hdr, bool offload, bool *uso)
{
	struct ifreq ifr = { 0 };
	int fd, rc;

	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return pb__err(pb, -errno, "netdev %s: cannot open /dev/net/tun: %s",
			       nd->id, strerror(errno));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (vnet_hdr ? IFF_VNET_HDR : 0);
	str_copy(ifr.ifr_name, sizeof(ifr.ifr_name), ifname);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int err = -errno;

		close(fd);
		return pb__err(pb, err, "netdev %s: cannot create TAP '%s': %s%s",
			       nd->id, ifname, strerror(-err),
			       err == -EPERM ? " (needs CAP_NET_ADMIN)" : "");
	}
	str_copy(ifname, IFNAMSIZ, ifr.ifr_name);
	if (vnet_hdr && (rc = tap_vnet_setup(fd, offload, uso)) < 0) {
		close(fd);
		return pb__err(pb, rc, "netdev %s: vnet_hdr: %s", nd->id,
			       strerror(-rc));
	}
	return fd;
}

/* tap_open() inside the network namespace at path, then back. */
static int tap_open_in(struct pb *pb, struct netdev *nd, const char *netns,
		       char *ifname, bool vnet_hdr, bool offload, bool *uso)
{
	char path[256];
	int self, target, fd;

	if (strchr(netns, '/'))
		str_copy(path, sizeof(path), netns);
	else
		snprintf(path, sizeof(path), "/run/netns/%s", netns);
	target = open(path, O_RDONLY | O_CLOEXEC);
	if (target < 0)
		return pb__err(pb, -errno, "netdev %s: netns %s: %s", nd->id,
			       path, strerror(errno));
	self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0) {
		close(target);
		return pb__err(pb, -errno, "netdev %s: cannot open our own netns: %s",
			       nd->id, strerror(errno));
	}
	if (setns(target, CLONE_NEWNET) < 0) {
		fd = pb__err(pb, -errno, "netdev %s: cannot enter netns %s: %s",
			     nd->id, path, strerror(errno));
	} else {
		fd = tap_open(pb, nd, ifname, vnet_hdr, offload, uso);
		if (setns(self, CLONE_NEWNET) < 0) {
			/* We cannot stay in the wrong namespace. */
			log_err(&pb->log, "cannot return to our network namespace: %s",
				strerror(errno));
			abort();
		}
	}
	close(self);
	close(target);
	return fd;
}

static const char *const tap_keys[] = {
	"type", "id", "segment", "ifname", "fd", "script", "downscript",
	"vnet_hdr", "netns", "offload", NULL,
};

static int tap_create(struct pb *pb, struct netdev *nd, const struct opts *o)
{
	const char *ifname_o = opts_get(o, "ifname");
	const char *fd_s = opts_get(o, "fd");
	const char *script = opts_get(o, "script");
	const char *downscript = opts_get(o, "downscript");
	const char *netns = opts_get(o, "netns");
	char ifname[IFNAMSIZ] = "";
	struct tap_port *tp;
	struct port *p;
	bool vnet_hdr, offload, uso = false;
	int fd, rc;

	rc = opts_get_bool(o, "vnet_hdr", true, &vnet_hdr, pb->errmsg,
			   sizeof(pb->errmsg));
	if (!rc)
		rc = opts_get_bool(o, "offload", true, &offload, pb->errmsg,
				   sizeof(pb->errmsg));
	if (rc)
		return rc;
	if (script && !strcmp(script, "no"))
		script = NULL;
	if (downscript && !strcmp(downscript, "no"))
		downscript = NULL;
	if ((script && strlen(script) >= 256) ||
	    (downscript && strlen(downscript) >= 256))
		return pb__err(pb, -EINVAL, "%s: script path too long", o->what);
	if (ifname_o && (strlen(ifname_o) >= IFNAMSIZ || !*ifname_o))
		return pb__err(pb, -EINVAL, "%s: 'ifname' must be 1-%d characters",
			       o->what, IFNAMSIZ - 1);
	if (fd_s && (ifname_o || netns || script))
		return pb__err(pb, -EINVAL, "%s: 'fd' excludes ifname, netns and script",
			       o->what);
	if (fd_s) {
		struct ifreq ifr = { 0 };

		fd = saddr_fd(fd_s, pb->errmsg, sizeof(pb->errmsg));
		if (fd < 0)
			return pb__err(pb, fd, "%s: fd: %s", o->what, pb->errmsg);
		if (ioctl(fd, TUNGETIFF, &ifr) < 0 || !(ifr.ifr_flags & IFF_TAP))
			return pb__err(pb, -EINVAL, "%s: fd %d is not a TAP device",
				       o->what, fd);
		/* unless told, take the fd as it is */
		if (!opts_get(o, "vnet_hdr"))
			vnet_hdr = ifr.ifr_flags & IFF_VNET_HDR;
		if (!!(ifr.ifr_flags & IFF_VNET_HDR) != vnet_hdr)
			return pb__err(pb, -EINVAL, "%s: fd %d has vnet_hdr %s, but vnet_hdr=%s was given",
				       o->what, fd,
				       ifr.ifr_flags & IFF_VNET_HDR ? "on" : "off",
				       vnet_hdr ? "on" : "off");
		str_copy(ifname, sizeof(ifname), ifr.ifr_name);
		if (vnet_hdr && (rc = tap_vnet_setup(fd, offload, &uso)) < 0)
			return pb__err(pb, rc, "%s: fd %d: vnet_hdr: %s", o->what,
				       fd, strerror(-rc));
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		fcntl(fd, F_SETFD, FD_CLOEXEC);
	} else {
		str_copy(ifname, sizeof(ifname), ifname_o ? ifname_o : "pb%d");
		fd = netns ? tap_open_in(pb, nd, netns, ifname, vnet_hdr,
					 offload, &uso)
			   : tap_open(pb, nd, ifname, vnet_hdr, offload, &uso);
		if (fd < 0)
			return fd;
	}
	if (script && (rc = tap_run_script(pb, script, ifname)) < 0) {
		close(fd);
		return pb__err(pb, rc, "%s: script %s failed", o->what, script);
	}
	tp = calloc(1, sizeof(*tp));
	if (!tp) {
		close(fd);
		return pb__err(pb, -ENOMEM, "out of memory");
	}
	str_copy(tp->ifname, sizeof(tp->ifname), ifname);
	if (downscript)
		str_copy(tp->downscript, sizeof(tp->downscript), downscript);
	tp->vnet_hdr = vnet_hdr;
	tp->offload = vnet_hdr && offload;
	tp->uso = uso;
	nd->ops = &tap_nd_ops;
	p = port_new(pb, (int)netdev_index(pb, nd), nd->seg, &tap_port_ops, fd,
		     tp);
	if (!p) {
		free(tp);
		close(fd);
		return pb__err(pb, -ENOSPC, "netdev %s: too many ports", nd->id);
	}
	if (vnet_hdr)
		p->offloads = TAP_PORT_OFFLOADS | (tp->uso ? PORT_OFF_USO : 0);
	snprintf(p->peer, sizeof(p->peer), "%s%s%s", ifname,
		 netns ? " in netns " : "", netns ? netns : "");
	return 0;
}

const struct backend backend_tap = {
	.type = "tap",
	.keys = tap_keys,
	.create = tap_create,
};
