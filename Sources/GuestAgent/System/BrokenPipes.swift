import Glibc

/// Makes a write to a pipe, FIFO or socket whose reader is gone fail with
/// EPIPE instead of killing the process with SIGPIPE. The agent writes to
/// clients, guest files and children that may all go away at any moment, so
/// whatever hosts the library (the daemon, the tests, the fuzzer) holds this
/// from the first GAState or child on. Children get the default back
/// (`cglib_exec_child_setup`).
func ignoreBrokenPipes() {
    signal(SIGPIPE, SIG_IGN)
}
