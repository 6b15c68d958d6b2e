/* Linked into the release binary only (Makefile), which is linked against
   Debian 11's glibc 2.31 so that it runs on glibc 2.28 and later. */

/* libstdc++ (GCC 12, linked in statically) reads glibc 2.32's
   __libc_single_threaded to skip atomics in a process with one thread.
   This private copy says "not known to be single-threaded": always the
   thread-safe path, which is right on every glibc. */
__attribute__((visibility("hidden"))) char __libc_single_threaded = 0;

/* glibc 2.29 gave exp, exp2, log and log2 new versions (the same functions
   without the old error-handling wrapper); a binary that names the new ones
   does not start on glibc 2.28. The Swift runtime's references are
   redirected here (--wrap=NAME) and call the original versions, which
   every glibc keeps. */
#define COMPAT_2_2_5(name)                                                      \
    __asm__(".symver " #name "_2_2_5, " #name "@GLIBC_2.2.5");                  \
    double name##_2_2_5(double);                                                \
    __attribute__((visibility("hidden"))) double __wrap_##name(double x) {     \
        return name##_2_2_5(x);                                                 \
    }

COMPAT_2_2_5(exp)
COMPAT_2_2_5(exp2)
COMPAT_2_2_5(log)
COMPAT_2_2_5(log2)
