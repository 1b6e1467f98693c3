/* SPDX-License-Identifier: MIT */
/* patchbay.h: the public API of libpatchbay, a user-space virtual Ethernet. */
#ifndef PATCHBAY_H
#define PATCHBAY_H

/*
 * An instance (pb_t) holds segments (hubs, learning switches) and the ports
 * that join them.  Ports are created from QEMU -netdev option strings
 * ("stream,id=s0,server=on,addr.type=unix,addr.path=/run/x.sock") or, for an
 * embedder that is itself a NIC, as a callback port.
 *
 * The library never blocks and never owns the process.  It exposes one
 * pollable file descriptor (pb_fd()); when it is readable, call pb_dispatch().
 * pb_next_timeout() says how long the embedder may sleep at most (the fd also
 * becomes readable when a timer is due, so honouring it is optional).
 *
 * Every function returns 0 (or a non-negative value) on success and a negative
 * errno-style code on failure; pb_strerror() names the code and pb_errmsg()
 * gives the detailed message of the instance's last failed call (for option
 * errors it names the key and what is accepted).  No global state: several
 * instances may live in one process (each used by one thread at a time).
 */

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PB_VERSION_STRING "0.1.0"

/* Bumped when struct pb_config grows; older callers keep working. */
#define PB_CONFIG_VERSION 1

enum pb_log_level {
	PB_LOG_ERR = 0,
	PB_LOG_WARN = 1,
	PB_LOG_INFO = 2,
	PB_LOG_DEBUG = 3,
};

typedef void (*pb_log_fn)(void *opaque, enum pb_log_level level,
			  const char *msg);

struct pb_config {
	unsigned version;	/* PB_CONFIG_VERSION */
	enum pb_log_level log_level;
	pb_log_fn log_fn;	/* NULL: log to stderr */
	void *log_opaque;
	unsigned max_ports;	/* 0: default (1024) */
	unsigned max_segments;	/* 0: default (64) */
};

typedef struct pb pb_t;

int pb_new(const struct pb_config *cfg, pb_t **out);
void pb_free(pb_t *pb);

const char *pb_strerror(int err);
/* Detailed message of the last failed call on this instance ("" if none). */
const char *pb_errmsg(const pb_t *pb);

/* The pollable fd (an epoll fd); wait for readability. */
int pb_fd(const pb_t *pb);
/* Handle everything that is ready, without blocking.  Returns 0 or <0. */
int pb_dispatch(pb_t *pb);
/* Milliseconds until the next timer is due, or -1 if none. */
int pb_next_timeout(pb_t *pb);
/* pb_dispatch() that first waits up to timeout_ms (-1: no limit) for
 * something to be ready: one system call where poll() on pb_fd() and
 * pb_dispatch() make two, for an embedder whose own descriptors are
 * watched through pb_watch_fd().  Timers wake it too.  0 or <0. */
int pb_wait(pb_t *pb, int timeout_ms);

/* An embedder's descriptor in the instance's loop: fn(opaque, fd, events)
 * runs from pb_dispatch()/pb_wait() when fd is ready for events (EPOLLIN,
 * EPOLLOUT); it should only take note (it runs in the middle of a round).
 * Watching a watched fd again changes its events.  At most 8.  0 or <0. */
typedef void (*pb_fd_fn)(void *opaque, int fd, uint32_t events);
int pb_watch_fd(pb_t *pb, int fd, uint32_t events, pb_fd_fn fn, void *opaque);
/* Stop watching fd (before closing it). */
void pb_unwatch_fd(pb_t *pb, int fd);

/*
 * Segments.  spec: "switch,id=NAME[,fdb-size=N][,ageing=SECONDS]" or
 * "hub,id=NAME".
 */
int pb_segment_add(pb_t *pb, const char *spec);

/*
 * Ports from QEMU -netdev syntax: "TYPE,id=ID,key=value,...", with ",," for a
 * literal comma inside a value.  Types: stream, socket, dgram, tap.  The
 * patchbay key segment=NAME chooses the segment (default: the first one).
 */
int pb_netdev_add(pb_t *pb, const char *spec);
int pb_netdev_del(pb_t *pb, const char *id);

/*
 * Packet capture (QEMU's filter-dump):
 * "id=ID,netdev=NETDEV|segment=SEGMENT,file=PATH[,maxlen=BYTES]".
 * A netdev capture records frames in and out of every port of that netdev;
 * a segment capture records every frame that enters the segment.
 */
int pb_capture_add(pb_t *pb, const char *spec);
int pb_capture_del(pb_t *pb, const char *id);

/*
 * Callback port: the embedder is the NIC.  Frames for it arrive through rx();
 * it sends frames with pb_port_send().  Returns the netdev id's port handle
 * (>= 0) or <0.
 */
typedef void (*pb_rx_fn)(void *opaque, const void *frame, size_t len);
int pb_callback_port_add(pb_t *pb, const char *id, const char *segment,
			 pb_rx_fn rx, void *opaque);
int pb_port_send(pb_t *pb, int port, const void *frame, size_t len);

/* Addressing of a router (-netdev user), network byte order. */
struct pb_router_info {
	uint32_t net, mask, gateway, dns, dhcp_start;
	unsigned mtu;
	char domain[256];	/* domainname=, "" if none */
};

/* Fill *out for the router netdev id.  Returns 0 or -ENOENT. */
int pb_router_info(pb_t *pb, const char *id, struct pb_router_info *out);

/* Counters of one port. */
struct pb_port_stats {
	char name[64];		/* netdev id, ".N" appended for accepted conns */
	char netdev[32];
	char segment[32];
	char type[16];
	char peer[128];		/* remote address, interface name, ... */
	uint64_t rx_frames, rx_bytes;	/* received from the backend */
	uint64_t tx_frames, tx_bytes;	/* delivered to the backend */
	uint64_t drops_total;
};

/*
 * Enumerate live ports: fills up to max entries, returns how many ports
 * exist (which may exceed max).
 */
int pb_port_stats(pb_t *pb, struct pb_port_stats *out, int max);

/* Write all counters (segments, ports, drops by reason, pools) as one JSON
 * object to fd.  Returns 0 or <0. */
int pb_stats_json(pb_t *pb, int fd);

/* Human-readable list of drop reasons and other counters, for logs. */
void pb_log_stats(pb_t *pb);

/* ---- runtime control (what the daemon's control socket offers) ---------- */

/*
 * Like pb_netdev_add(), for a descriptor the caller received from someone
 * else (a TAP opened in another namespace, a connected socket): the
 * spec's descriptor key says "passed" instead of a number -- tap and
 * socket: fd=passed; stream: addr.type=fd,addr.str=passed; dgram:
 * local.type=fd,local.str=passed -- and means fd.  Numeric descriptors are
 * refused here, so a spec from a remote requester cannot name the caller's
 * own descriptors; fd may be -1 when the spec uses none.  The library
 * keeps a duplicate of fd: the caller closes its own in every case.
 */
int pb_netdev_add_fd(pb_t *pb, const char *spec, int fd);

/*
 * Set a port's link down (up = 0) or up again.  Frames to and from a port
 * whose link is down are dropped and counted as link_down.  name is a
 * port name as pb_port_stats() gives it ("t1", "vm.2").
 */
int pb_port_set_link(pb_t *pb, const char *name, int up);

/*
 * Add or remove a forward of a user-mode router at run time.  netdev: the
 * router's netdev id (NULL: the only router of the instance).  rule:
 * hostfwd= syntax, "[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT".
 * Adding listens at once (-EEXIST if that host port is forwarded already,
 * -EADDRINUSE if something else has it).  Removing closes the listener at
 * once: TCP connections made through it go on until they end, UDP clients
 * of it are forgotten.  For removal the rule may stop after HOSTPORT
 * (QEMU's hostfwd_remove); a full rule must match the guest side too.
 */
int pb_hostfwd_add(pb_t *pb, const char *netdev, const char *rule);
int pb_hostfwd_del(pb_t *pb, const char *netdev, const char *rule);

/* What pb_list_json() lists. */
enum pb_list {
	PB_LIST_SEGMENTS,
	PB_LIST_PORTS,		/* with counters and drops by reason */
	PB_LIST_FLOWS,		/* the routers' translated connections */
	PB_LIST_LEASES,		/* the routers' DHCP leases */
	PB_LIST_FORWARDS,	/* hostfwd and guestfwd rules */
	PB_LIST_CAPTURES,
};

/*
 * Write the live objects of one kind as a JSON array and a newline to fd
 * (object formats: docs/control.md).  Returns 0 or <0.
 */
int pb_list_json(pb_t *pb, enum pb_list what, int fd);

#ifdef __cplusplus
}
#endif
#endif
