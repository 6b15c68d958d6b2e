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
