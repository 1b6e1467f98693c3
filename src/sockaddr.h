/* SPDX-License-Identifier: MIT */
/* sockaddr.h: parse and print the socket addresses options name; attach a
 * control message to a message header. */
#ifndef PB_SOCKADDR_H
#define PB_SOCKADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct saddr {
	struct sockaddr_storage ss;
	socklen_t len;
};

/* host (NULL or "": any address when passive, else an error) and port
 * (decimal) -> address; IPv4 and IPv6 literals, or names. */
int saddr_inet(struct saddr *a, const char *host, const char *port,
	       bool passive, char *err, size_t errlen);
/* "HOST:PORT", "[V6]:PORT" or ":PORT" (QEMU socket syntax). */
int saddr_hostport(struct saddr *a, const char *s, bool passive, char *err,
		   size_t errlen);
/* Unix socket path; abstract: Linux abstract namespace. */
int saddr_unix(struct saddr *a, const char *path, bool abstract, char *err,
	       size_t errlen);
/* Printable form: "1.2.3.4:5", "[::1]:5", "unix:/path", "unix:@name". */
void saddr_str(const struct sockaddr *sa, socklen_t len, char *out,
	       size_t size);
/* Parse a decimal fd number (QEMU fd= / addr.str=) that must be open. */
int saddr_fd(const char *s, char *err, size_t errlen);

/* Attach one control message (level, type, len bytes of data) to mh, in
 * buf (buflen >= CMSG_SPACE(len), aligned for struct cmsghdr). */
void msg_put_cmsg(struct msghdr *mh, void *buf, size_t buflen, int level,
		  int type, const void *data, size_t len);

#endif
