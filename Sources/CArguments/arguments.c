#include "CArguments.h"

static int saved_argc;
static char **saved_argv;

/* glibc calls the functions of .init_array with (argc, argv, envp). */
static void save_arguments(int argc, char **argv, char **envp) {
    (void)envp;
    saved_argc = argc;
    saved_argv = argv;
}

__attribute__((section(".init_array"), used)) static void (*const save_arguments_entry)(int, char **, char **) =
    save_arguments;

int qga_argc(void) { return saved_argc; }
char **qga_argv(void) { return saved_argv; }

/* The Swift runtime's own versions of these two (CommandLine.cpp in the
   static libswiftCore.a) find argv at start-up by scanning /proc/self/maps
   with sscanf: some 60 us of CPU on every start, for arguments glibc hands
   the initializers anyway. Defined here, the linker
   never takes that object from the archive, and CommandLine.arguments is the
   saved argv (unless a program overrides it, as the runtime allows). */
static char **override_argv;
static int override_argc;

char **_swift_stdlib_getUnsafeArgvArgc(int *count) {
    static char *empty[] = {0};
    if (override_argv) { *count = override_argc; return override_argv; }
    if (saved_argv) { *count = saved_argc; return saved_argv; }
    *count = 0;
    return empty;
}

void _swift_stdlib_overrideUnsafeArgvArgc(char **argv, int argc) {
    override_argv = argv;
    override_argc = argc;
}
