// SPDX-License-Identifier: MIT
// connrate: the benchmark's TCP connect+close client and server, and a small
// request/response ping-pong used only when sockperf is not installed.
//
//   connrate server ADDR PORT LIFETIME_S
//       accept() and close() every connection at once (the server closes
//       first, so TIME_WAIT stays on the server side and the client's
//       ephemeral ports are not used up); exits after LIFETIME_S.
//   connrate client ADDR PORT SECONDS MAXCONN CONC
//       up to CONC connections in flight: non-blocking connect(), wait for
//       the server's FIN (read() == 0), close().  Stops after SECONDS or
//       MAXCONN completed connections and prints one JSON line.
//   connrate ppserver tcp|udp ADDR PORT LIFETIME_S
//   connrate ppclient tcp|udp ADDR PORT SECONDS
//       64-byte ping-pong, one message in flight; prints the median and mean
//       round-trip time in microseconds as one JSON line.
//
// Every mode is bounded in time and exits by itself.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONC 1024
#define MSG_LEN 64

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	perror(what);
	exit(2);
}

static struct sockaddr_in parse_addr(const char *host, const char *port)
{
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)atoi(port));
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		fprintf(stderr, "connrate: bad IPv4 address %s\n", host);
		exit(2);
	}
	return sa;
}

static int listen_on(struct sockaddr_in *sa, int type)
{
	int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0)
		die("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)sa, sizeof(*sa)) < 0)
		die("bind");
	if (type == SOCK_STREAM && listen(fd, 4096) < 0)
		die("listen");
	return fd;
}

static int server(struct sockaddr_in *sa, double lifetime)
{
	int lfd = listen_on(sa, SOCK_STREAM);
	fcntl(lfd, F_SETFL, O_NONBLOCK);
	double end = now_s() + lifetime;
	struct pollfd p = {.fd = lfd, .events = POLLIN};
	while (now_s() < end) {
		if (poll(&p, 1, 200) <= 0)
			continue;
		for (int i = 0; i < 256; i++) {
			int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
			if (c < 0)
				break;
			close(c);
		}
	}
	return 0;
}

struct conn {
	int fd;
	int connected;
};

static int start_conn(struct sockaddr_in *sa)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)sa, sizeof(*sa)) < 0 &&
	    errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

static int client(struct sockaddr_in *sa, double seconds, long maxconn,
		  int conc)
{
	struct conn c[MAX_CONC];
	struct pollfd p[MAX_CONC];
	long done = 0, errors = 0, started = 0;
	double t0 = now_s(), end = t0 + seconds;
	if (conc < 1)
		conc = 1;
	if (conc > MAX_CONC)
		conc = MAX_CONC;
	for (int i = 0; i < conc; i++)
		c[i].fd = -1;
	for (;;) {
		double t = now_s();
		int active = 0;
		for (int i = 0; i < conc; i++) {
			if (c[i].fd < 0 && t < end && started < maxconn) {
				c[i].fd = start_conn(sa);
				c[i].connected = 0;
				started++;
				if (c[i].fd < 0)
					errors++;
			}
			p[i].fd = c[i].fd;
			p[i].events = c[i].connected ? POLLIN : POLLOUT;
			p[i].revents = 0;
			if (c[i].fd >= 0)
				active++;
		}
		if (!active)
			break;
		if (poll(p, (nfds_t)conc, 1000) < 0 && errno != EINTR)
			die("poll");
		/* A connection stuck past the deadline is abandoned: bounded. */
		int late = now_s() > end + 5.0;
		for (int i = 0; i < conc; i++) {
			if (c[i].fd < 0)
				continue;
			if (late) {
				close(c[i].fd);
				c[i].fd = -1;
				errors++;
				continue;
			}
			if (!p[i].revents)
				continue;
			if (!c[i].connected) {
				int err = 0;
				socklen_t l = sizeof(err);
				getsockopt(c[i].fd, SOL_SOCKET, SO_ERROR, &err,
					   &l);
				if (err) {
					close(c[i].fd);
					c[i].fd = -1;
					errors++;
					continue;
				}
				c[i].connected = 1;
				continue;
			}
			char b[64];
			ssize_t n = read(c[i].fd, b, sizeof(b));
			if (n > 0 || (n < 0 && errno == EAGAIN))
				continue;
			if (n == 0)
				done++;
			else
				errors++;
			close(c[i].fd);
			c[i].fd = -1;
		}
	}
	double el = now_s() - t0;
	printf("{\"connections\": %ld, \"errors\": %ld, \"seconds\": %.4f, "
	       "\"rate\": %.1f}\n",
	       done, errors, el, el > 0 ? (double)done / el : 0.0);
	return 0;
}

static int is_tcp(const char *p)
{
	if (!strcmp(p, "tcp"))
		return 1;
	if (!strcmp(p, "udp"))
		return 0;
	fprintf(stderr, "connrate: protocol must be tcp or udp\n");
	exit(2);
}

static int read_full(int fd, char *b, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, b + got, n - got);
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

__attribute__((noreturn)) static void ppserver(int tcp, struct sockaddr_in *sa, double lifetime)
{
	int fd = listen_on(sa, tcp ? SOCK_STREAM : SOCK_DGRAM);
	alarm((unsigned)lifetime + 1);
	char b[MSG_LEN];
	if (!tcp) {
		for (;;) {
			struct sockaddr_in from;
			socklen_t fl = sizeof(from);
			ssize_t n = recvfrom(fd, b, sizeof(b), 0,
					     (struct sockaddr *)&from, &fl);
			if (n > 0)
				sendto(fd, b, (size_t)n, 0,
				       (struct sockaddr *)&from, fl);
		}
	}
	for (;;) {
		int c = accept(fd, NULL, NULL);
		int one = 1;
		if (c < 0)
			continue;
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		while (read_full(c, b, sizeof(b)) == 0)
			if (write(c, b, sizeof(b)) != (ssize_t)sizeof(b))
				break;
		close(c);
	}
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static int ppclient(int tcp, struct sockaddr_in *sa, double seconds)
{
	int fd = socket(AF_INET, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC,
			0);
	int one = 1;
	struct timeval tv = {.tv_sec = 1};
	size_t cap = 1 << 22, n = 0;
	double *rtt = malloc(cap * sizeof(*rtt));
	char b[MSG_LEN];
	long lost = 0;
	if (fd < 0 || !rtt)
		die("socket");
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (tcp)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)sa, sizeof(*sa)) < 0)
		die("connect");
	memset(b, 'x', sizeof(b));
	double end = now_s() + seconds, warm = now_s() + 0.2;
	while (now_s() < end && n < cap) {
		double t0 = now_s();
		if (write(fd, b, sizeof(b)) != (ssize_t)sizeof(b))
			die("write");
		if (tcp ? read_full(fd, b, sizeof(b)) < 0
			: read(fd, b, sizeof(b)) <= 0) {
			if (tcp)
				die("read");
			lost++;
			continue;
		}
		double t1 = now_s();
		if (t0 >= warm)
			rtt[n++] = (t1 - t0) * 1e6;
	}
	if (!n) {
		fprintf(stderr, "connrate: no round trips\n");
		return 1;
	}
	double sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += rtt[i];
	qsort(rtt, n, sizeof(*rtt), cmp_d);
	printf("{\"samples\": %zu, \"lost\": %ld, \"p50_us\": %.3f, "
	       "\"avg_us\": %.3f, \"p99_us\": %.3f}\n",
	       n, lost, rtt[n / 2], sum / (double)n, rtt[n * 99 / 100]);
	free(rtt);
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc == 5 && !strcmp(argv[1], "server")) {
		struct sockaddr_in sa = parse_addr(argv[2], argv[3]);
		return server(&sa, atof(argv[4]));
	}
	if (argc == 7 && !strcmp(argv[1], "client")) {
		struct sockaddr_in sa = parse_addr(argv[2], argv[3]);
		return client(&sa, atof(argv[4]), atol(argv[5]), atoi(argv[6]));
	}
	if (argc == 6 && !strcmp(argv[1], "ppserver")) {
		struct sockaddr_in sa = parse_addr(argv[3], argv[4]);
		ppserver(is_tcp(argv[2]), &sa, atof(argv[5]));
	}
	if (argc == 6 && !strcmp(argv[1], "ppclient")) {
		struct sockaddr_in sa = parse_addr(argv[3], argv[4]);
		return ppclient(is_tcp(argv[2]), &sa, atof(argv[5]));
	}
	fprintf(stderr,
		"usage: connrate server ADDR PORT LIFETIME_S\n"
		"       connrate client ADDR PORT SECONDS MAXCONN CONC\n"
		"       connrate ppserver tcp|udp ADDR PORT LIFETIME_S\n"
		"       connrate ppclient tcp|udp ADDR PORT SECONDS\n");
	return 2;
}
