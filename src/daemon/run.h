/* SPDX-License-Identifier: MIT */
/* run.h: the run and attach subcommands. */
#ifndef PB_RUN_H
#define PB_RUN_H

/* argv[0] is the subcommand name; returns the exit status. */
int run_main(int argc, char **argv);
int attach_main(int argc, char **argv);
/* Raise the soft limit of open files to the hard limit. */
void raise_nofile(void);

#endif
