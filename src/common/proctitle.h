/* SPDX-License-Identifier: ISC */
/* proctitle.h - what ps shows for a process: "preforkd: master (generation 3)", "preforkd: worker echo#1 (generation 3)". */
#ifndef PREFORKD_PROCTITLE_H
#define PREFORKD_PROCTITLE_H

/* Once, first thing in main(): takes the memory of argv and the
 * environment for the title (the environment is copied elsewhere first,
 * so getenv and children see it unchanged). argv must not be used after. */
void proctitle_init(int argc, char **argv);
/* The title, cut to the room there is; nothing before proctitle_init(). */
void proctitle_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
