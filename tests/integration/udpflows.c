// SPDX-License-Identifier: MIT
// udpflows: many distinct UDP flows, each one request and one answer, for
// the churn test (test_churn.py builds and runs it).
//
//   udpflows server ADDR PORT0 NPORTS LIFETIME_S
//       echo every datagram on ports PORT0 .. PORT0+NPORTS-1; exits after
//       LIFETIME_S.
//   udpflows client ADDR PORT0 NPORTS NSRC COUNT WINDOW RATE SECONDS
//       NSRC unconnected sockets (one source port each) send to the
//       NPORTS ports: flow i is (source socket i / NPORTS, destination
//       port i % NPORTS), so COUNT <= NSRC * NPORTS flows have distinct
//       5-tuples.  Up to WINDOW flows wait for their answer at once; a
//       flow unanswered for 300 ms is sent again (same 5-tuple, so still
//       one flow), five times at most.  New flows start at RATE per
//       second at most (the router's host sockets each hold a local port
//       until the flow times out).  Stops after COUNT flows or
//       SECONDS and prints one JSON line: {"flows": answered,
//       "lost": given up, "resent": N, "seconds": S}.
//
// Every mode is bounded in time and exits by itself.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PORTS 256
#define MAX_SRC 8192
#define RESEND_S 0.3
#define TRIES 5

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

static struct sockaddr_in addr_of(const char *host, int port)
{
	struct sockaddr_in sa;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)port);
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		fprintf(stderr, "udpflows: bad IPv4 address %s\n", host);
		exit(2);
	}
	return sa;
}

static int udp_socket(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int big = 1 << 20;

	if (fd < 0)
		die("socket");
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	return fd;
}

static int server(const char *host, int port0, int nports, double lifetime)
{
	struct pollfd p[MAX_PORTS];
	double end = now_s() + lifetime;

	for (int i = 0; i < nports; i++) {
		struct sockaddr_in sa = addr_of(host, port0 + i);

		p[i].fd = udp_socket();
		p[i].events = POLLIN;
		if (bind(p[i].fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			die("bind");
	}
	printf("ready\n");
	fflush(stdout);
	while (now_s() < end) {
		if (poll(p, (nfds_t)nports, 200) <= 0)
			continue;
		for (int i = 0; i < nports; i++) {
			if (!(p[i].revents & POLLIN))
				continue;
			for (int k = 0; k < 64; k++) {
				struct sockaddr_in from;
				socklen_t fl = sizeof(from);
				char b[64];
				ssize_t n = recvfrom(p[i].fd, b, sizeof(b), 0,
						     (struct sockaddr *)&from,
						     &fl);

				if (n < 0)
					break;
				sendto(p[i].fd, b, (size_t)n, 0,
				       (struct sockaddr *)&from, fl);
			}
		}
	}
	return 0;
}

struct pending {
	long flow;		/* -1: slot free */
	double sent;
	int tries;
};

static int client(const char *host, int port0, int nports, int nsrc,
		  long count, int window, double rate, double seconds)
{
	static int src[MAX_SRC];
	static struct pollfd p[MAX_SRC];
	struct pending *w = calloc((size_t)window, sizeof(*w));
	/* answered[] by flow number: a late duplicate answer counts once */
	unsigned char *answered = calloc((size_t)count, 1);
	long next = 0, done = 0, lost = 0, resent = 0, inflight = 0;
	double t0 = now_s(), end = t0 + seconds;

	if (!w || !answered)
		die("calloc");
	for (int s = 0; s < nsrc; s++) {
		struct sockaddr_in any = addr_of("0.0.0.0", 0);

		src[s] = udp_socket();
		if (bind(src[s], (struct sockaddr *)&any, sizeof(any)) < 0)
			die("bind");
		p[s].fd = src[s];
		p[s].events = POLLIN;
	}
	for (int i = 0; i < window; i++)
		w[i].flow = -1;
	while ((next < count || inflight) && now_s() < end) {
		double t = now_s();

		for (int i = 0; i < window; i++) {
			struct sockaddr_in sa;
			long f = w[i].flow;

			if (f < 0 && next < count &&
			    (double)next < rate * (t - t0) + 1) {
				f = w[i].flow = next++;
				w[i].tries = 0;
				inflight++;
			} else if (f < 0 || t - w[i].sent < RESEND_S) {
				continue;
			} else if (w[i].tries >= TRIES) {
				w[i].flow = -1;
				inflight--;
				lost++;
				continue;
			} else {
				resent++;
			}
			sa = addr_of(host, port0 + (int)(f % nports));
			if (sendto(src[f / nports], &f, sizeof(f), 0,
				   (struct sockaddr *)&sa, sizeof(sa)) < 0 &&
			    errno != EAGAIN && errno != ENOBUFS &&
			    errno != ECONNREFUSED)
				die("sendto");
			w[i].sent = t;
			w[i].tries++;
		}
		if (poll(p, (nfds_t)nsrc, 20) <= 0)
			continue;
		for (int s = 0; s < nsrc; s++) {
			if (!(p[s].revents & POLLIN))
				continue;
			for (;;) {
				long f;
				ssize_t n = recv(src[s], &f, sizeof(f), 0);

				if (n < 0 && errno == ECONNREFUSED)
					continue;
				if (n < 0)
					break;
				if (n != sizeof(f) || f < 0 || f >= count ||
				    answered[f])
					continue;
				answered[f] = 1;
				done++;
				for (int i = 0; i < window; i++)
					if (w[i].flow == f) {
						w[i].flow = -1;
						inflight--;
						break;
					}
			}
		}
	}
	printf("{\"flows\": %ld, \"lost\": %ld, \"resent\": %ld, "
	       "\"unfinished\": %ld, \"seconds\": %.3f}\n",
	       done, lost, resent, count - done - lost, now_s() - t0);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 6 && !strcmp(argv[1], "server")) {
		int nports = atoi(argv[4]);

		if (nports < 1 || nports > MAX_PORTS) {
			fprintf(stderr, "udpflows: 1 to %d ports\n", MAX_PORTS);
			return 2;
		}
		return server(argv[2], atoi(argv[3]), nports, atof(argv[5]));
	}
	if (argc == 10 && !strcmp(argv[1], "client")) {
		int nports = atoi(argv[4]), nsrc = atoi(argv[5]);
		long count = atol(argv[6]);
		int window = atoi(argv[7]);

		if (nports < 1 || nports > MAX_PORTS || nsrc < 1 ||
		    nsrc > MAX_SRC || count < 1 ||
		    count > (long)nsrc * nports || window < 1 ||
		    atof(argv[8]) <= 0) {
			fprintf(stderr, "udpflows: bad client arguments\n");
			return 2;
		}
		return client(argv[2], atoi(argv[3]), nports, nsrc, count,
			      window, atof(argv[8]), atof(argv[9]));
	}
	fprintf(stderr,
		"usage: udpflows server ADDR PORT0 NPORTS LIFETIME_S\n"
		"       udpflows client ADDR PORT0 NPORTS NSRC COUNT WINDOW "
		"RATE SECONDS\n");
	return 2;
}
