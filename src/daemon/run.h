/* SPDX-License-Identifier: MIT */
/* run.h: the run and attach subcommands. */
#ifndef PB_RUN_H
#define PB_RUN_H

#include <stdint.h>

/* argv[0] is the subcommand name; returns the exit status. */
int run_main(int argc, char **argv);
int attach_main(int argc, char **argv);
/* Raise the soft limit of open files to the hard limit. */
void raise_nofile(void);

/* pb_watch_fd() callback that sets the bool at opaque: one of the
 * daemon's own descriptors is ready. */
void note_ready(void *opaque, int fd, uint32_t events);

#endif
