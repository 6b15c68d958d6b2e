#!/usr/bin/env python3
"""Writes Sources/qemu-ga/link/hot-functions.txt, the release link's symbol
ordering file: the functions of the binary that a typical host session runs
(start-up, guest-sync-delimited, guest-ping, guest-info, guest-get-osinfo,
guest-get-time, guest-network-get-interfaces, guest-get-fsinfo, a file
written and read back, guest-exec of /bin/true, an unknown command).

lld puts them first in .text, together, so that the pages an agent touches
are few: the kernel maps code in blocks of 64 KiB around each page faulted
in, and functions strewn over 5 MiB of code would keep most of it resident.
An out-of-date list costs only that: names the binary no longer has are
ignored.

Usage: bench/hot-functions.py [BINARY]   (default .build/release/qemu-ga)
Needs valgrind. Run it after changes that move a lot of code around.
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


def session(socket_path, directory):
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
    for command in ["guest-ping", "guest-info", "guest-get-osinfo", "guest-get-time",
                    "guest-network-get-interfaces", "guest-get-fsinfo", "guest-no-such-command"]:
        call(command)
    call("guest-sync", id=2)
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
    binary = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build", "release", "qemu-ga"))
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
        session(socket_path, directory)
        agent.terminate()
        agent.wait()

        # In callgrind's output `ob=` sets the object and `fn=` names a
        # function that ran (a suffix 'N marks a recursion level).
        functions = set()
        current = None
        with open(profile) as f:
            for line in f:
                if line.startswith("ob="):
                    current = os.path.realpath(line[3:].strip())
                elif line.startswith("fn=") and current == os.path.realpath(binary):
                    name = line[3:].strip().split("'")[0]
                    if not name.startswith("0x"):
                        functions.add(name)
    # Sorted, so that a new list differs from the old one only where the set
    # of functions changed; their order among themselves matters little.
    with open(OUTPUT, "w") as f:
        f.write("\n".join(sorted(functions)) + "\n")
    print("%d functions written to %s" % (len(functions), os.path.relpath(OUTPUT, ROOT)))


if __name__ == "__main__":
    main()
