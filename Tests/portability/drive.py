#!/usr/bin/env python3
"""drive.py SUITE ROOT GUEST_SOCKET HOST_SOCKET: the release binary started
in a Debian root filesystem (ROOT, listening on GUEST_SOCKET) must answer as
the same binary on this machine (HOST_SOCKET) does. Prints ok/not ok per
check and 'N passed, N failed'."""

import base64
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "vm"))
from qga import Client, check, exec_and_wait, expect, finish, output_of, returned  # noqa: E402

SUITE, ROOT, GUEST_SOCKET, HOST_SOCKET = sys.argv[1:5]
guest = Client(GUEST_SOCKET, timeout=30)
host = Client(HOST_SOCKET, timeout=30)


def both(command, arguments=None):
    return guest.request(command, arguments), host.request(command, arguments)


def os_release(root):
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            text = open(root + path).read()
            break
        except OSError:
            continue
    fields = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            fields[key] = value.strip().strip('"')
    return fields


@check("%s: 0xFF + guest-sync-delimited, exact bytes" % SUITE)
def sync():
    guest.send(b'\xff{"execute":"guest-sync-delimited","arguments":{"id":123456}}')
    line = guest.read_line(10)
    expect(line == b'\xff{"return": 123456}\n', "bytes %r" % line)


@check("%s: guest-info as on this machine" % SUITE)
def info():
    ours, theirs = both("guest-info")
    expect(ours == theirs, "%r != %r" % (ours, theirs))
    return "%d commands" % len(returned(ours)["supported_commands"])


@check("%s: guest-get-osinfo reports that system's os-release" % SUITE)
def osinfo():
    info = returned(guest.request("guest-get-osinfo"))
    release = os_release(ROOT)
    for key, field in (("id", "ID"), ("version-id", "VERSION_ID"), ("pretty-name", "PRETTY_NAME")):
        expect(info.get(key) == release.get(field), "%s %r, os-release %r" % (key, info.get(key), release.get(field)))
    expect(info["kernel-release"] == os.uname().release, "kernel %r" % info["kernel-release"])
    return info["pretty-name"]


@check("%s: guest-get-host-name, guest-get-vcpus, guest-network-get-interfaces as on this machine" % SUITE)
def facts():
    for command in ("guest-get-host-name", "guest-get-vcpus"):
        ours, theirs = both(command)
        expect(ours == theirs, "%s: %r != %r" % (command, ours, theirs))
    ours, theirs = both("guest-network-get-interfaces")

    def shape(reply):  # counters move between the two calls
        return [{k: v for k, v in entry.items() if k != "statistics"} for entry in returned(reply)]
    expect(shape(ours) == shape(theirs), "%r != %r" % (ours, theirs))


@check("%s: guest-get-fsinfo: / is this machine's root filesystem, as this machine reports it" % SUITE)
def fsinfo():
    def root(reply):
        entries = [entry for entry in returned(reply) if entry["mountpoint"] == "/"]
        expect(len(entries) == 1, "no single / in %r" % reply)
        return {key: value for key, value in entries[0].items() if not key.endswith("-bytes")}
    ours, theirs = both("guest-get-fsinfo")
    expect(root(ours) == root(theirs), "%r != %r" % (root(ours), root(theirs)))
    return "%s on %s" % (root(ours)["type"], root(ours)["name"])


@check("%s: guest-file-* round trip of 384 KiB" % SUITE)
def files():
    data = os.urandom(384 << 10)
    handle = returned(guest.request("guest-file-open", {"path": "/tmp/qga-portability", "mode": "w"}))
    for offset in range(0, len(data), 100000):
        piece = data[offset:offset + 100000]
        written = returned(guest.request("guest-file-write", {"handle": handle, "buf-b64": base64.b64encode(piece).decode()}))
        expect(written["count"] == len(piece), "wrote %r" % written)
    returned(guest.request("guest-file-close", {"handle": handle}))
    expect(open(ROOT + "/tmp/qga-portability", "rb").read() == data, "the file in the root filesystem differs")
    handle = returned(guest.request("guest-file-open", {"path": "/tmp/qga-portability", "mode": "r"}))
    read = returned(guest.request("guest-file-read", {"handle": handle, "count": len(data) + 1}))
    returned(guest.request("guest-file-close", {"handle": handle}))
    expect(base64.b64decode(read["buf-b64"]) == data and read["eof"], "read back %d bytes" % read["count"])


@check("%s: guest-exec with captured output, and a missing program" % SUITE)
def exec_():
    status = exec_and_wait(guest, "/bin/sh", ["-c", "cat /etc/debian_version; echo err >&2; exit 3"])
    expect(status["exitcode"] == 3, "status %r" % status)
    expect(output_of(status).strip() == open(ROOT + "/etc/debian_version").read().strip(), "out %r" % output_of(status))
    expect(output_of(status, "err-data") == "err\n", "err %r" % output_of(status, "err-data"))
    ours, theirs = both("guest-exec", {"path": "/nonexistent/program"})
    expect("error" in ours and ours == theirs, "%r != %r" % (ours, theirs))


@check("%s: -V with no /proc mounted: the options are read from argv, not /proc/self/cmdline" % SUITE)
def version_without_proc():
    # The agent above runs in a mount namespace of its own: here ROOT/proc is empty.
    expect(not os.listdir(ROOT + "/proc"), "/proc is mounted in %s" % ROOT)
    run = subprocess.run(["chroot", ROOT, "/usr/sbin/qemu-ga", "-V"], capture_output=True, text=True, timeout=30)
    expect(run.returncode == 0 and run.stdout.startswith("QEMU Guest Agent "), "%r" % run)


finish()
