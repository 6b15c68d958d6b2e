#ifndef SWIFT_QEMU_GA_CARGUMENTS_H
#define SWIFT_QEMU_GA_CARGUMENTS_H

/* The process's own argc and argv, as glibc handed them to the program's
   initializers. (The toolchain's runtime finds argv for Swift's CommandLine
   through /proc, which may not be mounted yet when the agent starts: it
   would ignore its options. arguments.c also replaces that look-up in
   statically linked programs.) */
int qga_argc(void);
char **qga_argv(void);

#endif
