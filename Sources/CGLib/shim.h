#ifndef SWIFT_QEMU_GA_CGLIB_SHIM_H
#define SWIFT_QEMU_GA_CGLIB_SHIM_H

#include <glib.h>
#include <glib-unix.h>
#include <getopt.h>
#include <syslog.h>
#include <sys/socket.h>

/* glibc declares these only under _GNU_SOURCE, which the Swift Glibc module
   is not built with. */
extern int accept4(int fd, struct sockaddr *address, socklen_t *length, int flags);

/* getopt's results live in C globals, which Swift 6 treats as unsafe shared
   state; the agent reads them only on the main thread, through these. */
static inline char *cglib_optarg(void) { return optarg; }
static inline int cglib_optind(void) { return optind; }
static inline int cglib_optopt(void) { return optopt; }
/* Makes the next getopt_long call start a fresh scan of argv, printing its
   diagnostics or not. */
static inline void cglib_reset_getopt(int print_errors) { optind = 0; opterr = print_errors; }

#endif
