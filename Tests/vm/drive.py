#!/usr/bin/env python3
"""Host side of the VM test: talks to the agent inside the guest over QEMU's
chardev sockets (a real virtio-serial port and an isa-serial port), runs the
checks, prints one ok/not ok line each, the measured figures, and a final
'N passed, N failed' line. Exits non-zero when a check failed."""

import base64
import random
import sys
import time

from qga import Client, check, exec_and_wait, expect, expect_exit, finish, output_of, returned

VIRTIO_SOCKET, ISA_SOCKET, QEMU_PID, QEMU_STARTED, COMMANDS_FILE, SMP = sys.argv[1:7]
SMP = int(SMP)
figures = []
agent = Client(VIRTIO_SOCKET)


@check("guest-sync-delimited at boot: exact bytes after the 0xFF flush")
def boot_sync():
    reply = agent.sync(timeout=180)
    figures.append(("QEMU start to first sync reply", "%.1f s" % (time.time() - float(QEMU_STARTED))))
    expect(reply.startswith(b'\xff{"return": ') and reply.endswith(b"}\n"), "bytes %r" % reply)


@check("guest-ping")
def ping():
    agent.send('{"execute":"guest-ping"}')
    line = agent.read_line(30)
    expect(line == b'{"return": {}}\n', "bytes %r" % line)


@check("guest-info lists every command, all enabled")
def info():
    listed = returned(agent.request("guest-info"))["supported_commands"]
    expected = [name for name in open(COMMANDS_FILE).read().split() if name]
    names = [entry["name"] for entry in listed]
    expect(sorted(names) == sorted(expected), "listed %s, expected %s" % (names, expected))
    disabled = [entry["name"] for entry in listed if not entry["enabled"]]
    expect(not disabled, "disabled: %s" % disabled)
    return "%d commands" % len(names)


@check("guest-get-osinfo")
def osinfo():
    info = returned(agent.request("guest-get-osinfo"))
    expect(info.get("id") == "qga-test" and info.get("version-id") == "1.0", "%r" % info)
    expect(info.get("kernel-release", "").endswith("-amd64") and info.get("machine") == "x86_64", "%r" % info)


@check("guest-get-host-name")
def host_name():
    expect(returned(agent.request("guest-get-host-name")) == {"host-name": "qga-vm"}, "wrong host name")


@check("guest-network-get-interfaces: lo and the NIC's MAC")
def interfaces():
    found = {entry["name"]: entry for entry in returned(agent.request("guest-network-get-interfaces"))}
    expect("lo" in found and "eth0" in found, "interfaces %s" % list(found))
    expect(found["eth0"].get("hardware-address") == "52:54:00:12:34:56", "eth0 %r" % found["eth0"])
    addresses = [a["ip-address"] for a in found["lo"].get("ip-addresses", [])]
    expect("127.0.0.1" in addresses, "lo addresses %s" % addresses)
    addresses = [a["ip-address"] for a in found["eth0"].get("ip-addresses", [])]
    expect("10.0.2.15" in addresses, "eth0 addresses %s" % addresses)


@check("guest-network-get-route: the default route via the NIC")
def routes():
    routes = returned(agent.request("guest-network-get-route"))
    default = [r for r in routes if r.get("destination") == "0.0.0.0" and r.get("version") == 4]
    expect(default and default[0]["iface"] == "eth0" and default[0].get("gateway") == "10.0.2.2", "routes %r" % routes)


@check("guest-get-vcpus equals -smp")
def vcpus():
    cpus = returned(agent.request("guest-get-vcpus"))
    expect(len(cpus) == SMP and all(c["online"] for c in cpus), "%r" % cpus)


@check("guest-get-fsinfo: the virtio-blk disk's filesystem")
def fsinfo():
    filesystems = returned(agent.request("guest-get-fsinfo"))
    data = [f for f in filesystems if f["mountpoint"] == "/mnt/data"]
    expect(data and data[0]["type"] == "ext4", "fsinfo %r" % filesystems)
    disks = data[0]["disk"]
    expect(disks and disks[0]["bus-type"] == "virtio" and disks[0].get("dev") == "/dev/vda", "disk %r" % disks)
    expect(data[0].get("total-bytes", 0) > 0, "no size: %r" % data[0])


@check("guest-get-disks: the virtio-blk disk")
def disks():
    disks = returned(agent.request("guest-get-disks"))
    vda = [d for d in disks if d["name"] == "/dev/vda"]
    expect(vda and not vda[0]["partition"], "disks %r" % disks)
    expect(vda[0].get("address", {}).get("bus-type") == "virtio", "vda %r" % vda[0])


@check("guest-get-memory-block-info")
def memory_block_info():
    size = returned(agent.request("guest-get-memory-block-info"))["size"]
    expect(size > 0 and size % 4096 == 0, "size %r" % size)


@check("guest-exec with captured output")
def exec_output():
    status = exec_and_wait(agent, "/bin/echo", ["hello", "guest"])
    expect(status.get("exitcode") == 0 and output_of(status) == "hello guest\n", "%r" % status)


AGENT_RSS = "grep VmRSS /proc/$(pidof qemu-ga | tr ' ' '\\n' | sort -n | head -1)/status"


@check("agent's resident memory inside the guest: busy, and idle")
def agent_memory():
    # Busy: read while the agent runs this guest-exec, after the session.
    status = exec_and_wait(agent, "/bin/sh", ["-c", AGENT_RSS])
    text = output_of(status).split()
    expect(len(text) >= 2, "%r" % status)
    figures.append(("agent resident memory in the guest, busy", "%s %s" % (text[1], text[2] if len(text) > 2 else "")))
    # Idle: read 3 s after the guest-exec request, the host silent until
    # well after (ours gives its binary's clean pages back after 1 s).
    status = exec_and_wait(agent, "/bin/sh", ["-c", "sleep 3; " + AGENT_RSS], quiet=8)
    text = output_of(status).split()
    expect(len(text) >= 2, "%r" % status)
    figures.append(("agent resident memory in the guest, idle", "%s %s" % (text[1], text[2] if len(text) > 2 else "")))


@check("binary file round trip over the virtio port")
def file_round_trip():
    size = 4 * 1024 * 1024
    data = random.Random(7).randbytes(size)
    handle = returned(agent.request("guest-file-open", {"path": "/mnt/data/blob", "mode": "w"}))
    started = time.time()
    chunk = 1024 * 1024
    for offset in range(0, size, chunk):
        piece = data[offset:offset + chunk]
        written = returned(agent.request("guest-file-write", {"handle": handle, "buf-b64": base64.b64encode(piece).decode()}, timeout=120))
        expect(written["count"] == len(piece), "wrote %r" % written)
    returned(agent.request("guest-file-close", {"handle": handle}))
    write_seconds = time.time() - started
    handle = returned(agent.request("guest-file-open", {"path": "/mnt/data/blob", "mode": "r"}))
    started = time.time()
    back = b""
    while True:
        read = returned(agent.request("guest-file-read", {"handle": handle, "count": chunk}, timeout=120))
        back += base64.b64decode(read["buf-b64"])
        if read["eof"] or read["count"] == 0:
            break
    read_seconds = time.time() - started
    returned(agent.request("guest-file-close", {"handle": handle}))
    expect(back == data, "read back %d bytes, different" % len(back))
    figures.append(("file write over virtio-serial", "%.1f MiB/s" % (size / 1048576 / write_seconds)))
    figures.append(("file read over virtio-serial", "%.1f MiB/s" % (size / 1048576 / read_seconds)))


@check("host disconnect and reconnect")
def reconnect():
    global agent
    agent.close()
    time.sleep(1)
    agent = Client(VIRTIO_SOCKET)
    agent.sync(timeout=60)
    expect(returned(agent.request("guest-ping")) == {}, "no ping after reconnect")


@check("a stale reply from a departed client, then a new client's sync")
def stale_reply():
    global agent
    agent.send('{"execute":"guest-info"}' * 5)
    agent.close()
    time.sleep(1)
    agent = Client(VIRTIO_SOCKET)
    agent.sync(timeout=60)
    agent.send('{"execute":"guest-ping"}')
    line = agent.read_line(30)
    expect(line == b'{"return": {}}\n', "after the sync: %r" % line)


@check("partial JSON from a departed client, then a new client's plain guest-sync")
def partial_json():
    global agent
    agent.send('{"execute":"guest-ping","arguments":{"x":[1,2')
    agent.close()
    time.sleep(1)
    agent = Client(VIRTIO_SOCKET)
    # No 0xFF: the agent itself must have dropped the departed client's half message.
    deadline = time.time() + 60
    while True:
        agent.send('{"execute":"guest-sync","arguments":{"id":4242}}')
        try:
            line = agent.read_line(3)
            break
        except TimeoutError:
            expect(time.time() < deadline, "no answer")
    expect(line == b'{"return": 4242}\n', "bytes %r" % line)


@check("0xFF mid-message flushes it silently")
def flush_mid_message():
    agent.send(b'{"execute":"guest-pi\xff{"execute":"guest-ping"}')
    line = agent.read_line(30)
    expect(line == b'{"return": {}}\n', "bytes %r" % line)


@check("the isa-serial channel")
def isa_serial():
    isa = Client(ISA_SOCKET)
    isa.sync(timeout=120)
    expect(returned(isa.request("guest-ping")) == {}, "no ping")
    isa.close()


@check("fsfreeze: freeze, status, thaw on the guest's filesystem")
def fsfreeze():
    frozen = returned(agent.request("guest-fsfreeze-freeze", timeout=120))
    expect(frozen >= 1, "froze %r" % frozen)
    expect(returned(agent.request("guest-fsfreeze-status")) == "frozen", "not frozen")
    disabled = agent.request("guest-get-time")
    expect(disabled.get("error") == {"class": "CommandNotFound",
                                     "desc": "Command guest-get-time has been disabled: the agent is in frozen state"},
           "while frozen: %r" % disabled)
    thawed = returned(agent.request("guest-fsfreeze-thaw", timeout=120))
    expect(thawed == frozen, "thawed %r of %r" % (thawed, frozen))
    expect(returned(agent.request("guest-fsfreeze-status")) == "thawed", "not thawed")


@check("guest-shutdown powers the VM off and QEMU exits on its own")
def shutdown():
    agent.send('{"execute":"guest-shutdown"}')
    expect_exit(QEMU_PID, 120)


finish(figures)
