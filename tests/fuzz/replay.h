/* SPDX-License-Identifier: MIT */
/* replay.h: main() of a harness built as a plain program (-D*_FUZZ_MAIN,
 * no -fsanitize=fuzzer): "HARNESS --seeds DIR" writes its seed corpus,
 * "HARNESS FILE..." runs each input once, as libFuzzer would. */
#ifndef PB_FUZZ_REPLAY_H
#define PB_FUZZ_REPLAY_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fuzz_replay(const char *path)
{
	static uint8_t buf[1 << 20];
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f) {
		perror(path);
		return 1;
	}
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	fprintf(stderr, "%s:\n", path);
	LLVMFuzzerTestOneInput(buf, n);
	return 0;
}

/* write_seeds may be NULL (a harness without a seed writer). */
static int fuzz_main(int argc, char **argv, void (*write_seeds)(const char *))
{
	int rc = 0;

	if (write_seeds && argc == 3 && !strcmp(argv[1], "--seeds")) {
		write_seeds(argv[2]);
		return 0;
	}
	for (int i = 1; i < argc; i++)
		rc |= fuzz_replay(argv[i]);
	return rc;
}

#endif
