// SPDX-License-Identifier: MIT
/* fuzz_tftp.c: libFuzzer harness for the TFTP request parser and the path
 * cleaner (tftp.c). */

/*
 * Each input is used two ways:
 *
 *  1. a request datagram for tftp_parse_request(), in a heap buffer of
 *     exactly its size (ASan sees any read past the end).  A naive model
 *     below (split the bytes at NULs, then apply RFC 1350/2347/2348/2349/
 *     7440 and our limits) must agree on the return code and on every field
 *     of an accepted request: the name is the bytes as sent, terminated,
 *     non-empty; blksize 0 or 8-65464; windowsize 0 or 1-64; timeout 0 or
 *     1-255;
 *  2. a name (the input up to its first NUL) for tftp_clean_path(), into an
 *     output buffer of exactly the size the first byte chooses (0-255):
 *     the model splits at '/', drops empty and "." components, refuses
 *     "..", and joins; code and output must agree, and an accepted path
 *     has no "", "." or ".." component and does not start with '/'.
 *
 * Build: `make fuzz` (tests/fuzz/fuzz_tftp.c against the library built
 * with coverage), or by hand:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
 *     -Iinclude -Isrc tests/fuzz/fuzz_tftp.c src/tftp.c ... -o ft
 * Plain program (-DTFTP_FUZZ_MAIN, any compiler, no -fsanitize=fuzzer):
 * "fuzz_tftp --seeds DIR" writes the seed corpus, "fuzz_tftp FILE..."
 * replays inputs.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "check.h"
#include "tftp.h"

/* ---- the model of the request parser ------------------------------------- */

struct tok {
	const uint8_t *p;
	size_t n;
	bool terminated;
};

/* The next NUL-separated string from *pos on; false at the end. */
static bool next_token(const uint8_t *p, size_t len, size_t *pos,
		       struct tok *t)
{
	const uint8_t *nul;

	if (*pos >= len)
		return false;
	nul = memchr(p + *pos, 0, len - *pos);
	t->p = p + *pos;
	t->n = nul ? (size_t)(nul - t->p) : len - *pos;
	t->terminated = nul != NULL;
	*pos += t->n + 1;
	return true;
}

static bool tok_is(const struct tok *t, const char *s)
{
	return t->n == strlen(s) && !strncasecmp((const char *)t->p, s, t->n);
}

/* Decimal digits only; false if not a number or above max. */
static bool tok_num(const struct tok *t, uint64_t max, uint64_t *v)
{
	uint64_t x = 0;

	if (!t->n || t->n > 20)
		return false;
	for (size_t i = 0; i < t->n; i++) {
		unsigned d = (unsigned)(t->p[i] - '0');

		if (d > 9 || x > (UINT64_MAX - d) / 10)
			return false;
		x = x * 10 + d;
	}
	if (x > max)
		return false;
	*v = x;
	return true;
}

static int model_parse(const uint8_t *p, size_t len, struct tftp_req *m)
{
	struct tok name, mode, on, ov;
	bool seen[4] = { false };
	size_t pos = 2;
	uint16_t op;

	memset(m, 0, sizeof(*m));
	if (len < 2)
		return -EBADMSG;
	op = (uint16_t)(p[0] << 8 | p[1]);
	if (op != TFTP_RRQ && op != TFTP_WRQ)
		return -EOPNOTSUPP;
	m->opcode = op;
	if (!next_token(p, len, &pos, &name) || !name.terminated ||
	    name.n == 0)
		return -EBADMSG;
	if (!next_token(p, len, &pos, &mode) || !mode.terminated)
		return -EBADMSG;
	if (name.n >= TFTP_NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(m->filename, name.p, name.n);
	if (tok_is(&mode, "octet"))
		m->mode = TFTP_MODE_OCTET;
	else if (tok_is(&mode, "netascii"))
		m->mode = TFTP_MODE_NETASCII;
	else
		return -EPROTONOSUPPORT;
	while (next_token(p, len, &pos, &on)) {
		static const char *const names[4] = { "blksize", "tsize",
						      "timeout", "windowsize" };
		uint64_t v;
		int k;

		if (!on.terminated)
			return -EBADMSG;
		if (on.n == 0)
			break;
		if (!next_token(p, len, &pos, &ov) || !ov.terminated)
			return -EBADMSG;
		for (k = 0; k < 4 && !tok_is(&on, names[k]); k++)
			;
		if (k == 4) {
			m->unknown_opts++;
			continue;
		}
		if (seen[k])
			continue;
		seen[k] = true;
		switch (k) {
		case 0:
			if (!tok_num(&ov, UINT64_MAX, &v) || v < 8)
				return -EINVAL;
			m->blksize = (uint32_t)(v > 65464 ? 65464 : v);
			break;
		case 1:
			if (!tok_num(&ov, UINT64_MAX, &v))
				return -EINVAL;
			m->tsize = true;
			break;
		case 2:
			if (!tok_num(&ov, 255, &v) || v < 1)
				return -EINVAL;
			m->timeout = (uint8_t)v;
			break;
		default:
			if (!tok_num(&ov, 65535, &v) || v < 1)
				return -EINVAL;
			m->windowsize = (uint16_t)(v > TFTP_WINDOW_MAX
							   ? TFTP_WINDOW_MAX
							   : v);
			break;
		}
	}
	return 0;
}

static void check_request(const uint8_t *data, size_t size)
{
	uint8_t *buf = malloc(size ? size : 1);
	struct tftp_req got, want;
	int rc, mrc;

	CHECK(buf != NULL);
	memcpy(buf, data, size);
	rc = tftp_parse_request(buf, size, &got);
	mrc = model_parse(data, size, &want);
	if (rc != mrc) {
		fprintf(stderr, "parser %d, model %d\n", rc, mrc);
		CHECK(rc == mrc);
	}
	if (rc == 0) {
		size_t n = strnlen(got.filename, sizeof(got.filename));

		CHECK(n > 0 && n < sizeof(got.filename));
		CHECK(!strcmp(got.filename, want.filename));
		CHECK(got.opcode == want.opcode && got.mode == want.mode);
		CHECK(got.blksize == want.blksize);
		CHECK(got.windowsize == want.windowsize);
		CHECK(got.timeout == want.timeout);
		CHECK(got.tsize == want.tsize);
		CHECK(got.unknown_opts == want.unknown_opts);
		CHECK(!got.blksize || (got.blksize >= TFTP_BLKSIZE_MIN &&
				       got.blksize <= TFTP_BLKSIZE_MAX));
		CHECK(got.windowsize <= TFTP_WINDOW_MAX);
		CHECK(tftp_parse_errcode(rc) == TFTP_EBADOP);
	} else {
		int code = tftp_parse_errcode(rc);

		CHECK(code == TFTP_EBADOP || code == TFTP_EACCESS ||
		      code == TFTP_EOPTNEG);
	}
	free(buf);
}

/* ---- the model of the path cleaner ----------------------------------------- */

static int model_clean(const char *in, char *out, size_t outlen)
{
	size_t o = 0, n;

	if (outlen == 0)
		return -ENAMETOOLONG;
	for (const char *p = in; *p; p += n) {
		while (*p == '/')
			p++;
		n = strcspn(p, "/");
		if (n == 2 && !strncmp(p, "..", 2))
			return -EACCES;
		if (!n || (n == 1 && *p == '.'))
			continue;
		if (o + (o ? 1 : 0) + n >= outlen)
			return -ENAMETOOLONG;
		if (o)
			out[o++] = '/';
		memcpy(out + o, p, n);
		o += n;
	}
	out[o] = '\0';
	return o ? 0 : -ENOENT;
}

static void check_path(const uint8_t *data, size_t size)
{
	size_t outlen = size ? data[0] : 0;
	size_t n = size > 1 ? strnlen((const char *)data + 1, size - 1) : 0;
	char *name = malloc(n + 1);
	char *out = malloc(outlen ? outlen : 1);
	char want[256];
	int rc, mrc;

	CHECK(name && out);
	if (n)
		memcpy(name, data + 1, n);
	name[n] = '\0';
	rc = tftp_clean_path(name, out, outlen);
	mrc = model_clean(name, want, outlen);
	if (rc != mrc) {
		fprintf(stderr, "clean(\"%s\", %zu): %d, model %d\n", name,
			outlen, rc, mrc);
		CHECK(rc == mrc);
	}
	if (rc == 0) {
		CHECK(strlen(out) < outlen);
		CHECK(!strcmp(out, want));
		CHECK(out[0] != '/' && out[0] != '\0');
		for (const char *p = out; *p;) {
			size_t k = strcspn(p, "/");

			CHECK(k > 0);
			CHECK(!(k == 1 && p[0] == '.'));
			CHECK(!(k == 2 && p[0] == '.' && p[1] == '.'));
			p += k;
			if (*p)
				p++;
			CHECK(*p || p[-1] != '/');
		}
	}
	free(name);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_request(data, size);
	check_path(data, size);
	return 0;
}

#ifdef TFTP_FUZZ_MAIN
/* ---- seed corpus and replay ---------------------------------------------------- */

static void seed(const char *dir, const char *name, const void *p, size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	CHECK(f != NULL);
	CHECK(fwrite(p, 1, n, f) == n);
	CHECK(fclose(f) == 0);
	LLVMFuzzerTestOneInput(p, n);	/* a seed must itself pass */
}

#define SEED(dir, name, lit) seed((dir), (name), (lit), sizeof(lit) - 1)

static void write_seeds(const char *dir)
{
	SEED(dir, "rrq-octet", "\0\1pxelinux.0\0octet\0");
	SEED(dir, "rrq-netascii", "\0\1boot/menu.txt\0netascii\0");
	SEED(dir, "wrq", "\0\2upload.bin\0octet\0");
	SEED(dir, "rrq-all-options",
	     "\0\1/boot/vmlinuz\0octet\0blksize\0001468\0tsize\0000\0"
	     "timeout\0003\0windowsize\00016\0");
	SEED(dir, "rrq-ipxe", "\0\1boot.ipxe\0octet\0blksize\0001432\0"
			      "tsize\0000\0");
	SEED(dir, "rrq-case", "\0\1F\0OcTeT\0BLKSIZE\00065464\0WindowSize\0"
			      "64\0");
	SEED(dir, "rrq-unknown-options",
	     "\0\1f\0octet\0multicast\0\0rollover\0001\0utimeout\0"
	     "500000\0");
	SEED(dir, "rrq-repeated", "\0\1f\0octet\0blksize\000800\0blksize\0"
				  "9\0");
	SEED(dir, "rrq-padding", "\0\1f\0octet\0tsize\0000\0\0\0\0junk");
	SEED(dir, "bad-blksize-small", "\0\1f\0octet\0blksize\0007\0");
	SEED(dir, "bad-blksize-big", "\0\1f\0octet\0blksize\0"
				     "18446744073709551616\0");
	SEED(dir, "bad-timeout", "\0\1f\0octet\0timeout\000256\0");
	SEED(dir, "bad-window", "\0\1f\0octet\0windowsize\0000\0");
	SEED(dir, "bad-value-empty", "\0\1f\0octet\0tsize\0\0");
	SEED(dir, "no-nul-name", "\0\1pxelinux.0");
	SEED(dir, "no-nul-mode", "\0\1f\0octet");
	SEED(dir, "no-nul-option", "\0\1f\0octet\0blksize\0001024");
	SEED(dir, "option-no-value", "\0\1f\0octet\0blksize\0");
	SEED(dir, "empty-name", "\0\1\0octet\0");
	SEED(dir, "mode-mail", "\0\1f\0mail\0");
	SEED(dir, "opcode-data", "\0\3\0\1data");
	SEED(dir, "opcode-ack", "\0\4\0\1");
	SEED(dir, "opcode-error", "\0\5\0\1File not found\0");
	SEED(dir, "opcode-oack", "\0\6blksize\0001024\0");
	SEED(dir, "opcode-high", "\xff\xff\0");
	SEED(dir, "short", "\0");
	/* path-cleaner inputs: first byte is the output size */
	SEED(dir, "path-dotdot", "\x40../etc/passwd");
	SEED(dir, "path-abs-dotdot", "\x40/../x");
	SEED(dir, "path-inner-dotdot", "\x40" "a/b/../../../c");
	SEED(dir, "path-slashes-dots", "\x40///a//./b/.//c/");
	SEED(dir, "path-tight", "\x08" "123/5678");
	SEED(dir, "path-root", "\x10/./");
}

#include "replay.h"

int main(int argc, char **argv)
{
	return fuzz_main(argc, argv, write_seeds);
}
#endif
