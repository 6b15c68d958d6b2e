#ifndef SWIFT_QEMU_GA_CGLIB_SHIM_H
#define SWIFT_QEMU_GA_CGLIB_SHIM_H

/* The floor: RHEL 8's GLib. Anything newer is declared unavailable, which
   Swift reports as a deprecation, and the agent's targets turn those into
   errors (Package.swift). */
#define GLIB_VERSION_MIN_REQUIRED GLIB_VERSION_2_56
#define GLIB_VERSION_MAX_ALLOWED GLIB_VERSION_2_56

#include <glib.h>
#include <glib-unix.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <syslog.h>
#include <sys/socket.h>
#include <sys/ioctl.h>
#include <linux/vm_sockets.h>
#include <linux/fs.h>
#include <linux/nvme_ioctl.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <elf.h>
#include <sys/auxv.h>
#include <sys/mman.h>

/* glibc declares these only under _GNU_SOURCE, which the Swift Glibc module
   is not built with. */
extern int accept4(int fd, struct sockaddr *address, socklen_t *length, int flags);
/* Pseudo-terminals, for the serial-port tests (_XOPEN_SOURCE). */
extern int posix_openpt(int flags);
extern int grantpt(int fd);
extern int unlockpt(int fd);
extern int ptsname_r(int fd, char *buffer, size_t length);

/* ioctl is variadic, which Swift cannot call; these are the argument shapes
   the agent and its tests use. */
static inline int cglib_ioctl_none(int fd, unsigned long request) { return ioctl(fd, request); }
static inline int cglib_ioctl_pointer(int fd, unsigned long request, void *argument) {
    return ioctl(fd, request, argument);
}

/* syslog is variadic too: one record of qemu-ga's `slog` (`info: <text>`). */
static inline void cglib_syslog_info(const char *text) { syslog(LOG_INFO, "info: %s", text); }

/* The filesystem ioctls of guest-fsfreeze-* and guest-fstrim (macros Swift
   cannot see). */
static const unsigned long cglib_fifreeze = FIFREEZE;
static const unsigned long cglib_fithaw = FITHAW;
static const unsigned long cglib_fitrim = FITRIM;
typedef struct fstrim_range cglib_fstrim_range;

/* glibc's POSIX_SPAWN_SETSID (declared for _GNU_SOURCE only): the child
   starts a new session, as qemu-ga's children do after fork. */
static const short cglib_posix_spawn_setsid = 0x80;

/* O_PATH (declared for _GNU_SOURCE only; glibc defines its value for every
   architecture as __O_PATH): open-allow pins a checked directory with it. */
static const int cglib_o_path = __O_PATH;

/* sscanf is variadic, which Swift cannot call, and building a va_list in
   Swift costs far more than the scan. Up to 24 output pointers; sscanf
   ignores the ones the format does not use. */
static inline int cglib_sscanf(const char *input, const char *format, void *const *p) {
    return sscanf(input, format, p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11],
                  p[12], p[13], p[14], p[15], p[16], p[17], p[18], p[19], p[20], p[21], p[22], p[23]);
}

/* NVME_IOCTL_ADMIN_CMD is a function-like macro Swift cannot import. */
static inline unsigned long cglib_nvme_ioctl_admin_cmd(void) { return NVME_IOCTL_ADMIN_CMD; }

/* getopt's results live in C globals, which Swift 6 treats as unsafe shared
   state; the agent reads them only on the main thread, through these. */
static inline char *cglib_optarg(void) { return optarg; }
static inline int cglib_optind(void) { return optind; }
static inline int cglib_optopt(void) { return optopt; }
/* Makes the next getopt_long call start a fresh scan of argv, printing its
   diagnostics or not. */
static inline void cglib_reset_getopt(int print_errors) { optind = 0; opterr = print_errors; }

/* guest-exec's child setup, run in the child between fork and exec (so it
   is C, and async-signal-safe), after GLib has set up the child's stdio:
   the agent ignores SIGPIPE, and an ignored disposition would survive exec.
   A non-NULL `merge_stderr` sends stderr to the stdout pipe (capture-output
   `merged`; GLib 2.56 cannot hand one pipe to both). */
static inline void cglib_exec_child_setup(gpointer merge_stderr) {
    signal(SIGPIPE, SIG_DFL);
    if (merge_stderr) dup2(1, 2);
}

/* Gives back the program's pages that are never written: every page of its
   read-only and code segments (the binary has no text relocations), whole
   pages only, so none of the pages the loader relocated (RELRO, data) is
   touched. Mapped, they count as the agent's resident memory for as long as
   it lives although an idle agent does not use them: the dynamic loader's
   relocation table and what start-up alone ran, and later the code and
   constant data of requests long answered. They are clean page-cache pages:
   the next access maps the same page again with a minor fault.

   It runs as a GLib idle callback, the last thing the main loop does before
   it waits, and keeps the two pages its own code is on: no code of the
   program runs after it, so nothing is mapped again (with the kernel's
   fault-around, every page run would bring back 64 KiB around it). The
   program headers come from the auxiliary vector, the load address from
   PT_PHDR. Not under a debugger: the breakpoints it wrote into code pages
   would go with them. */
static inline int cglib_is_traced(void) {
    FILE *status = fopen("/proc/self/status", "re");
    char line[128];
    int traced = 0;
    if (!status) return 0;
    while (fgets(line, sizeof line, status)) {
        if (strncmp(line, "TracerPid:", 10) == 0) { traced = atoi(line + 10) != 0; break; }
    }
    fclose(status);
    return traced;
}
static inline void cglib_release_pages(uintptr_t start, uintptr_t end, uintptr_t page) {
    start = (start + page - 1) & ~(page - 1);
    end &= ~(page - 1);
    if (end > start) madvise((void *)start, end - start, MADV_DONTNEED);
}
static gboolean cglib_release_clean_pages(gpointer unused) {
    (void)unused;
    if (cglib_is_traced()) return G_SOURCE_REMOVE;
    const Elf64_Phdr *headers = (const Elf64_Phdr *)getauxval(AT_PHDR);
    unsigned long count = getauxval(AT_PHNUM);
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t base = 0, self = (uintptr_t)&cglib_release_clean_pages & ~(page - 1);
    /* The ranges are read first: the program headers lie in a page that
       goes too. */
    uintptr_t ranges[16][2];
    unsigned long used = 0;
    int found = 0;
    if (!headers || page == 0 || page > (1 << 20)) return G_SOURCE_REMOVE;
    for (unsigned long i = 0; i < count; i++) {
        if (headers[i].p_type == PT_PHDR) { base = (uintptr_t)headers - headers[i].p_vaddr; found = 1; }
    }
    if (!found) return G_SOURCE_REMOVE;
    for (unsigned long i = 0; i < count && used < 16; i++) {
        if (headers[i].p_type != PT_LOAD || (headers[i].p_flags & PF_W)) continue;
        ranges[used][0] = base + headers[i].p_vaddr;
        ranges[used][1] = ranges[used][0] + headers[i].p_memsz;
        used++;
    }
    /* Nor may the compiler go back to the headers for them. */
    __asm__ volatile("" ::: "memory");
    for (unsigned long i = 0; i < used; i++) {
        uintptr_t start = ranges[i][0], end = ranges[i][1];
        if (self + 2 * page <= start || self >= end) {
            cglib_release_pages(start, end, page);
        } else {
            cglib_release_pages(start, self, page);
            cglib_release_pages(self + 2 * page, end, page);
        }
    }
    return G_SOURCE_REMOVE;
}
static inline void cglib_release_clean_pages_when_idle(void) {
    g_idle_add_full(G_PRIORITY_LOW, cglib_release_clean_pages, NULL, NULL);
}

#endif
