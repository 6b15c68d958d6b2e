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

/* The program's pages that start-up alone needed (the dynamic loader's
   relocation table, code and tables run or read once) stay mapped, and
   counted as resident, for the agent's whole life although it never touches
   them again. This unmaps them: every page of the program's segments that
   are never written (read-only and code; the binary has no text
   relocations), whole pages only, so none of the pages the loader relocated
   (RELRO, data) is touched. They are clean page-cache pages: a later access
   maps the same page again with a minor fault. The program headers come
   from the auxiliary vector, the load address from PT_PHDR. Not under a
   debugger: the breakpoints it wrote into code pages would go with them. */
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
static inline void cglib_release_start_up_pages(void) {
    if (cglib_is_traced()) return;
    const Elf64_Phdr *headers = (const Elf64_Phdr *)getauxval(AT_PHDR);
    unsigned long count = getauxval(AT_PHNUM);
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t base = 0;
    int found = 0;
    if (!headers || page <= 0) return;
    for (unsigned long i = 0; i < count; i++) {
        if (headers[i].p_type == PT_PHDR) { base = (uintptr_t)headers - headers[i].p_vaddr; found = 1; }
    }
    if (!found) return;
    for (unsigned long i = 0; i < count; i++) {
        const Elf64_Phdr *segment = &headers[i];
        if (segment->p_type != PT_LOAD || (segment->p_flags & PF_W)) continue;
        uintptr_t start = base + segment->p_vaddr;
        uintptr_t end = start + segment->p_memsz;
        start = (start + page - 1) & ~(uintptr_t)(page - 1);
        end &= ~(uintptr_t)(page - 1);
        if (end > start) madvise((void *)start, end - start, MADV_DONTNEED);
    }
}

#endif
