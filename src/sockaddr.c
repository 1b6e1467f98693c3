// SPDX-License-Identifier: MIT
/* sockaddr.c: socket address parsing and printing for backend options. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "sockaddr.h"
#include "util.h"

int saddr_inet(struct saddr *a, const char *host, const char *port,
	       bool passive, char *err, size_t errlen)
{
	struct addrinfo hints = { 0 }, *res = NULL;
	char *end;
	long pn;
	int rc;

	memset(a, 0, sizeof(*a));
	if (!port || !*port) {
		snprintf(err, errlen, "missing port");
		return -EINVAL;
	}
	pn = strtol(port, &end, 10);
	if (*end || pn < 0 || pn > 65535) {
		snprintf(err, errlen, "bad port '%s' (0-65535)", port);
		return -EINVAL;
	}
	if (!host || !*host) {
		if (!passive) {
			snprintf(err, errlen, "missing host");
			return -EINVAL;
		}
		host = NULL;
	}
	hints.ai_family = AF_UNSPEC;
	hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc || !res) {
		snprintf(err, errlen, "cannot resolve '%s': %s", host ? host : "",
			 gai_strerror(rc));
		return -EINVAL;
	}
	memcpy(&a->ss, res->ai_addr, res->ai_addrlen);
	a->len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

int saddr_hostport(struct saddr *a, const char *s, bool passive, char *err,
		   size_t errlen)
{
	char host[256];
	const char *colon;
	size_t hl;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':') {
			snprintf(err, errlen, "bad address '%s' (want [IPV6]:PORT)", s);
			return -EINVAL;
		}
		hl = (size_t)(close - s - 1);
		colon = close + 1;
		s++;
	} else {
		colon = strrchr(s, ':');
		if (!colon) {
			snprintf(err, errlen, "bad address '%s' (want HOST:PORT)", s);
			return -EINVAL;
		}
		hl = (size_t)(colon - s);
	}
	if (hl >= sizeof(host)) {
		snprintf(err, errlen, "host name too long");
		return -EINVAL;
	}
	memcpy(host, s, hl);
	host[hl] = '\0';
	return saddr_inet(a, host, colon + 1, passive, err, errlen);
}

int saddr_unix(struct saddr *a, const char *path, bool abstract, char *err,
	       size_t errlen)
{
	struct sockaddr_un *un = (struct sockaddr_un *)&a->ss;
	size_t n = strlen(path);
	size_t off = abstract ? 1 : 0;

	memset(a, 0, sizeof(*a));
	if (n == 0 || n + off >= sizeof(un->sun_path)) {
		snprintf(err, errlen, "unix socket path must be 1-%zu bytes",
			 sizeof(un->sun_path) - 1 - off);
		return -EINVAL;
	}
	un->sun_family = AF_UNIX;
	memcpy(un->sun_path + off, path, n);
	a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + off + n +
			     (abstract ? 0 : 1));
	return 0;
}

void saddr_str(const struct sockaddr *sa, socklen_t len, char *out,
	       size_t size)
{
	char ip[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		snprintf(out, size, "%s:%u", ip, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		snprintf(out, size, "[%s]:%u", ip, ntohs(in6->sin6_port));
	} else if (sa->sa_family == AF_UNIX) {
		const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
		size_t off = offsetof(struct sockaddr_un, sun_path);
		size_t n = len > off ? len - off : 0;

		if (n == 0)
			snprintf(out, size, "unix:");
		else if (un->sun_path[0] == '\0')
			snprintf(out, size, "unix:@%.*s", (int)(n - 1),
				 un->sun_path + 1);
		else
			snprintf(out, size, "unix:%.*s",
				 (int)strnlen(un->sun_path, n), un->sun_path);
	} else {
		snprintf(out, size, "family %d", sa->sa_family);
	}
}

int saddr_fd(const char *s, char *err, size_t errlen)
{
	char *end;
	long fd = strtol(s, &end, 10);

	if (!*s || *end || fd < 0 || fd > 1 << 20) {
		snprintf(err, errlen, "'%s' is not a file descriptor number", s);
		return -EINVAL;
	}
	if (fcntl((int)fd, F_GETFD) < 0) {
		snprintf(err, errlen, "file descriptor %ld is not open", fd);
		return -EBADF;
	}
	return (int)fd;
}

void msg_put_cmsg(struct msghdr *mh, void *buf, size_t buflen, int level,
		  int type, const void *data, size_t len)
{
	struct cmsghdr *cm;

	memset(buf, 0, buflen);
	mh->msg_control = buf;
	mh->msg_controllen = buflen;
	cm = CMSG_FIRSTHDR(mh);
	cm->cmsg_level = level;
	cm->cmsg_type = type;
	cm->cmsg_len = CMSG_LEN(len);
	memcpy(CMSG_DATA(cm), data, len);
}
