#ifndef SWIFT_QEMU_GA_CARGUMENTS_H
#define SWIFT_QEMU_GA_CARGUMENTS_H

/* The process's own argc and argv, as glibc handed them to the program's
   initializers. (Swift's CommandLine reads /proc/self/cmdline on Linux, which
   is empty where /proc is not mounted: the agent would ignore its options.) */
int qga_argc(void);
char **qga_argv(void);

#endif
