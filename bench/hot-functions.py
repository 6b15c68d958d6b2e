#!/usr/bin/env python3
"""Writes Sources/qemu-ga/link/hot-functions.txt, the release link's symbol
ordering file: the functions of the binary that a typical host session runs
(start-up, guest-sync-delimited, guest-ping, guest-info, guest-get-osinfo,
guest-get-time, guest-network-get-interfaces, guest-get-fsinfo, a file
written and read back, guest-exec of /bin/true, an unknown command).

lld puts them first in .text, together, so that the pages an agent touches
are few: the kernel maps code in blocks of 64 KiB around each page faulted
in, and functions strewn over 5 MiB of code would keep most of it resident.
They come in three groups, in this order: what the requests a host polls with
run (guest-sync-delimited, guest-ping, guest-info, guest-get-osinfo,
guest-get-time, guest-sync), then what the rest of the session runs, then
what only start-up ran. The agent unmaps its code once started (see
Agent.swift), so an idle agent that answers polls keeps the first group
resident and little else. Functions of the Swift standard library's big .text
sections (the Swift code of libswiftCore.a, 1.6 MB, and of the other Swift
libraries is not built with function sections) are left out: listing one
would drag all of its section into the middle of the hot code.

Names the binary no longer has are ignored by lld (with a warning each), so
an out-of-date list quietly scatters the hot code again: `--check` counts
them (`make check-hot-functions`, run by CI) and fails above MAX_STALE.

Usage: bench/hot-functions.py [BINARY]           (default .build/release/qemu-ga)
       bench/hot-functions.py --check [BINARY]
Needs valgrind (not for --check). Run it after changes that move a lot of
code around, then `make build` again.
"""
import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTPUT = os.path.join(ROOT, "Sources", "qemu-ga", "link", "hot-functions.txt")
REGENERATE = "make build && bench/hot-functions.py && make build"
# Stale names tolerated by --check. A few come and go with unrelated changes
# (the compiler numbers and merges its local helpers, `objectdestroy.14Tm`,
# `...Tm`), and each costs one function out of place; more means that code
# moved and the hot pages are scattered again.
MAX_STALE = 5


def dump(pid, name):
    """Callgrind writes the counts so far to a file of their own."""
    subprocess.run(["callgrind_control", "-d", name, str(pid)], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def session(socket_path, directory, pid):
    client = socket.socket(socket.AF_UNIX)
    client.connect(socket_path)
    replies = client.makefile("rb")

    def call(execute, **arguments):
        request = {"execute": execute}
        if arguments:
            request["arguments"] = arguments
        client.sendall(json.dumps(request).encode())
        line = replies.readline().lstrip(b"\xff")
        return json.loads(line).get("return")

    call("guest-sync-delimited", id=1)
    for command in ["guest-ping", "guest-info", "guest-get-osinfo", "guest-get-time"]:
        call(command)
    call("guest-sync", id=2)
    dump(pid, "polling")
    for command in ["guest-network-get-interfaces", "guest-get-fsinfo", "guest-no-such-command"]:
        call(command)
    handle = call("guest-file-open", path=os.path.join(directory, "file"), mode="w+")
    call("guest-file-write", handle=handle, **{"buf-b64": base64.b64encode(os.urandom(100_000)).decode()})
    call("guest-file-seek", handle=handle, offset=0, whence="set")
    call("guest-file-read", handle=handle, count=100_000)
    call("guest-file-close", handle=handle)
    pid = call("guest-exec", path="/bin/true", **{"capture-output": True})["pid"]
    for _ in range(50):
        if call("guest-exec-status", pid=pid)["exited"]:
            break
        time.sleep(0.1)
    client.close()


def main():
    arguments = sys.argv[1:]
    checking = arguments[:1] == ["--check"]
    if checking:
        arguments = arguments[1:]
    binary = os.path.abspath(arguments[0] if arguments else os.path.join(ROOT, ".build", "release", "qemu-ga"))
    if checking:
        check(binary)
    else:
        write(binary)


def check(binary):
    """Fails when more than MAX_STALE listed names are not symbols of the
    linked (unstripped) binary: the names lld reports as `symbol ordering
    file: no such symbol`."""
    with open(OUTPUT) as f:
        listed = [line.strip() for line in f if line.strip()]
    output = subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True, check=True).stdout
    defined = {line.split()[-1] for line in output.splitlines() if line.strip()}
    stale = [name for name in listed if name not in defined]
    for name in stale:
        print("  stale: " + name)
    print("%d of %d names in %s are not in %s (at most %d allowed)"
          % (len(stale), len(listed), os.path.relpath(OUTPUT, ROOT), os.path.relpath(binary, ROOT), MAX_STALE))
    if len(stale) > MAX_STALE:
        print("the hot-function list is stale; regenerate it: " + REGENERATE)
        sys.exit(1)


def write(binary):
    with tempfile.TemporaryDirectory(prefix="qga-hot.") as directory:
        profile = os.path.join(directory, "callgrind.out")
        socket_path = os.path.join(directory, "sock")
        agent = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + profile, "--compress-strings=no",
             "--demangle=no", binary, "-m", "unix-listen", "-p", socket_path, "-t", directory,
             "-f", os.path.join(directory, "pid")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not os.path.exists(socket_path):
            if time.monotonic() > deadline or agent.poll() is not None:
                raise SystemExit("the agent did not start under valgrind")
            time.sleep(0.1)
        time.sleep(2)  # until the main loop runs
        dump(agent.pid, "start-up")
        session(socket_path, directory, agent.pid)
        agent.terminate()
        agent.wait()

        # Three files: start-up, polling requests, the rest (and the exit).
        parts = sorted(name for name in os.listdir(directory) if name.startswith("callgrind.out"))
        if len(parts) != 3:
            raise SystemExit("expected 3 callgrind dumps, found %s" % parts)
        by_part = {}
        for part in parts:
            by_part[part] = functions_run(os.path.join(directory, part), binary)
        start_up, polling, rest = (by_part[part] for part in
                                   ["callgrind.out.1", "callgrind.out.2", "callgrind.out"])
    local, extern = monolithic_functions()
    monolithic = local | (extern - own_functions())
    polling -= monolithic
    rest = rest - polling - monolithic
    start_up = start_up - polling - rest - monolithic
    # Sorted within each group, so that a new list differs from the old one
    # only where the sets changed; the order inside a group matters little.
    with open(OUTPUT, "w") as f:
        for group in (polling, rest, start_up):
            f.write("".join(name + "\n" for name in sorted(group)))
    functions = polling | rest | start_up
    print("%d polling, %d other session, %d start-up-only functions" % (len(polling), len(rest), len(start_up)))
    print("%d functions written to %s" % (len(functions), os.path.relpath(OUTPUT, ROOT)))


def functions_run(path, binary):
    """The functions of `binary` that ran in one callgrind dump. In its
    output `ob=` sets the object and `fn=` names a function that ran (a
    suffix 'N marks a recursion level)."""
    functions = set()
    current = None
    with open(path) as f:
        for line in f:
            if line.startswith("ob="):
                current = os.path.realpath(line[3:].strip())
            elif line.startswith("fn=") and current == os.path.realpath(binary):
                name = line[3:].strip().split("'")[0]
                # Neither an address nor callgrind's "(below main)" is a symbol.
                if not name.startswith("0x") and " " not in name:
                    functions.add(name)
    return functions


def own_functions():
    """Functions our modules' objects define, each in a section of its own
    (Package.swift builds them with -function-sections): generic
    specializations and helpers like __swift_memcpy24_8 that the standard
    library's objects define too, but whose definition the link takes from
    ours."""
    build = os.path.join(ROOT, ".build", "release")
    objects = [os.path.join(build, target + ".build", name)
               for target in ["GuestAgent", "QMPJSON", "qemu_ga"]
               for name in os.listdir(os.path.join(build, target + ".build")) if name.endswith(".o")]
    output = subprocess.run(["nm", "--defined-only"] + objects, capture_output=True, text=True, check=True).stdout
    return {fields[2] for fields in (line.split() for line in output.splitlines())
            if len(fields) == 3 and fields[1] in "tTwW"}


def monolithic_functions():
    """Functions defined in a plain `.text` section larger than 16 KiB of an
    object of the Swift toolchain's static libraries (the Swift code of
    libswiftCore.a, libswift_Concurrency.a, ...): the linker can only move
    such a section whole. Local and global ones apart: lld orders by name
    the local symbols of every object too, so a name local there drags the
    section even when the definition the program uses is ours."""
    swift = subprocess.run(["swift", "-print-target-info"], capture_output=True, text=True, check=True).stdout
    resources = json.loads(swift)["paths"]["runtimeResourcePath"]
    static = os.path.join(os.path.dirname(resources), "swift_static", "linux")
    local, extern = set(), set()
    for archive in sorted(name for name in os.listdir(static) if name.startswith("libswift") and name.endswith(".a")):
        output = subprocess.run(["readelf", "-sSW", os.path.join(static, archive)],
                                capture_output=True, text=True, check=True).stdout
        big = set()
        for line in output.splitlines():
            fields = line.replace("[ ", "[").split()
            if len(fields) > 6 and fields[0].startswith("[") and fields[1] == ".text" \
                    and int(fields[5], 16) > 16384:
                big.add(fields[0].strip("[]"))
            elif len(fields) == 8 and fields[3] == "FUNC" and fields[6] in big:
                (local if fields[4] == "LOCAL" else extern).add(fields[7])
            elif line.startswith("File: "):
                big = set()
    return local, extern


if __name__ == "__main__":
    main()
