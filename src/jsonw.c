// SPDX-License-Identifier: MIT
/* jsonw.c: writing JSON text for stats and listings. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <unistd.h>

#include "jsonw.h"

void jsonw_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

FILE *jsonw_open(int fd)
{
	int dupfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	FILE *f;

	if (dupfd < 0)
		return NULL;
	f = fdopen(dupfd, "w");
	if (!f) {
		int err = errno;

		close(dupfd);
		errno = err;
	}
	return f;
}

int jsonw_close(FILE *f)
{
	bool bad = ferror(f);

	return fclose(f) == 0 && !bad ? 0 : -EIO;
}
