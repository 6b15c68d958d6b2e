#!/usr/bin/env python3
"""Host side of the systemd guest test (Tests/vm/systemd-guest): a Debian 12
guest with systemd, udev, journald and rsyslog and Debian's
qemu-guest-agent installed; the package under test is installed over it
as an operator would, and everything is checked through the agent's own
virtio-serial port. Prints ok/not ok per check and 'N passed, N failed'.

Arguments: SOCKET QEMU_PID PACKAGE_NAME PACKAGE_VERSION BINARY
(BINARY: the package's qemu-ga, unpacked on this machine, which tells the
version, the command list and the blocked-command text to expect);
QGA_PACKAGE and QGA_DEBIAN_PACKAGE in the environment: the package under
test and Debian's, which the host copies into the guest."""

import base64
import os
import subprocess
import sys
import tempfile
import time

from qga import Client, check, exec_and_wait, expect, expect_exit, finish, output_of, returned

SOCKET, QEMU_PID, PACKAGE, PACKAGE_VERSION, BINARY = sys.argv[1:6]
# apt reads a local package as its own unprivileged user: not from /root.
DEBIAN_DEB = "/var/tmp/qemu-guest-agent.deb"
PACKAGE_DEB = "/var/tmp/package.deb"
agent = Client(SOCKET, timeout=60)


def binary_facts():
    """Version, commands and the reply to a blocked command, from the
    package's own binary run here."""
    version_line = subprocess.run([BINARY, "-V"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
    commands = subprocess.run([BINARY, "-b", "help"], capture_output=True, text=True, check=True).stdout.split()
    with tempfile.TemporaryDirectory() as directory:
        sock = os.path.join(directory, "sock")
        process = subprocess.Popen([BINARY, "-m", "unix-listen", "-p", sock, "-t", directory, "-b", "guest-get-time"],
                                   stderr=subprocess.DEVNULL)
        try:
            client = Client(sock, timeout=10)
            blocked = client.request("guest-get-time")
            client.close()
        finally:
            process.kill()
            process.wait()
    return version_line.split()[-1], commands, blocked


VERSION, COMMANDS, BLOCKED_REPLY = binary_facts()


def run(*argv, timeout=120):
    """A program in the guest through guest-exec: (exit code, stdout)."""
    status = exec_and_wait(agent, argv[0], argv[1:], timeout=timeout)
    return status.get("exitcode"), output_of(status)


def shell(script, timeout=120):
    return run("/bin/sh", "-c", script, timeout=timeout)


def write_file(path, data):
    handle = returned(agent.request("guest-file-open", {"path": path, "mode": "w"}))
    for offset in range(0, len(data), 1 << 20):
        piece = data[offset:offset + (1 << 20)]
        returned(agent.request("guest-file-write", {"handle": handle, "buf-b64": base64.b64encode(piece).decode()}))
    returned(agent.request("guest-file-close", {"handle": handle}))


def wait_for_agent(timeout=300):
    """Syncs until an agent answers (it may be restarting or booting)."""
    agent.sync(timeout=timeout)


def in_background(script):
    """Runs `script` in a transient systemd unit of its own: a restart of the
    agent's unit must not kill it (apt restarts the agent that started it).
    Then the agent's state goes to the console, which the test prints when
    it fails (the host may have no agent to ask then)."""
    script += ("; { tail -n 15 /root/*.log; systemctl status --no-pager qemu-guest-agent;"
               " journalctl -b --no-pager -n 30 -u qemu-guest-agent; } >/dev/console 2>&1")
    code, _ = run("/usr/bin/systemd-run", "--collect", "--no-block", "/bin/sh", "-c", script)
    expect(code == 0, "systemd-run failed")


def wait_for_file(path, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            wait_for_agent()
            code, text = shell("cat %s 2>/dev/null" % path)
            if code == 0 and text.strip():
                return text.strip()
        except (AssertionError, TimeoutError, ConnectionError):
            pass  # the agent was replaced between two requests: ask the new one
        time.sleep(2)
    raise TimeoutError("%s never appeared" % path)


def unit_property(name):
    code, text = run("/bin/systemctl", "show", "-p", name, "--value", "qemu-guest-agent.service")
    expect(code == 0, "systemctl show %s failed" % name)
    return text.strip()


@check("boot: Debian's qemu-guest-agent comes up and answers guest-sync-delimited")
def first_boot():
    wait_for_agent(timeout=600)
    return "guest-info version %s" % returned(agent.request("guest-info"))["version"]


@check("%s %s installed over it with apt, from a file the host wrote through the agent" % (PACKAGE, PACKAGE_VERSION))
def install():
    write_file(PACKAGE_DEB, open(os.environ["QGA_PACKAGE"], "rb").read())
    in_background("DEBIAN_FRONTEND=noninteractive apt-get install -y --reinstall --allow-downgrades %s "
                  ">/root/install.log 2>&1; echo $? >/root/install.status" % PACKAGE_DEB)
    status = wait_for_file("/root/install.status")
    expect(status == "0", "apt-get exited %s: %s" % (status, shell("tail -n 20 /root/install.log")[1]))
    code, text = run("/usr/bin/dpkg-query", "-W", "-f=${Status} ${Version}", PACKAGE)
    expect(text == "install ok installed " + PACKAGE_VERSION, "dpkg-query: %r" % text)


@check("after a reboot (guest-shutdown mode reboot) the agent comes up by itself: udev rule, then the unit")
def reboot():
    agent.send('{"execute":"guest-shutdown","arguments":{"mode":"reboot"}}')
    time.sleep(5)
    wait_for_agent(timeout=600)
    code, uptime = shell("cut -d' ' -f1 /proc/uptime")
    expect(float(uptime) < 600, "uptime %s: no reboot" % uptime)
    code, text = run("/bin/udevadm", "info", "--query=property", "/dev/virtio-ports/org.qemu.guest_agent.0")
    expect("SYSTEMD_WANTS=qemu-guest-agent.service" in text, "udev: %r" % text)
    return "up %.0f s after the reboot" % float(uptime)


@check("guest-info: the package's version and its full command list, all enabled")
def info():
    result = returned(agent.request("guest-info"))
    expect(result["version"] == VERSION, "version %r, expected %r" % (result["version"], VERSION))
    listed = [entry["name"] for entry in result["supported_commands"]]
    expect(sorted(listed) == sorted(COMMANDS), "commands %r" % sorted(set(listed) ^ set(COMMANDS)))
    disabled = [entry["name"] for entry in result["supported_commands"] if not entry["enabled"]]
    # qemu-ga 7.2 lists guest-get-devices, disabled on Linux.
    expect(disabled in ([], ["guest-get-devices"]), "disabled: %r" % disabled)
    return "%s, %d commands" % (VERSION, len(listed))


@check("systemctl: qemu-guest-agent is active and runs the package's binary")
def unit():
    expect(unit_property("ActiveState") == "active", "not active")
    exec_start = unit_property("ExecStart")
    expect("path=/usr/sbin/qemu-ga " in exec_start, "ExecStart %r" % exec_start)
    code, text = run("/usr/bin/sha256sum", "/usr/sbin/qemu-ga")
    local = subprocess.run(["sha256sum", BINARY], capture_output=True, text=True, check=True).stdout.split()[0]
    expect(text.split()[0] == local, "the binary in the guest is not the package's")
    kind = unit_property("Type")
    if kind == "notify":
        # Active means systemd got READY=1; a watchdog timestamp, WATCHDOG=1.
        expect(unit_property("NotifyAccess") == "main", "NotifyAccess %r" % unit_property("NotifyAccess"))
        expect(unit_property("WatchdogTimestampMonotonic") not in ("", "0"), "no WATCHDOG=1 seen by systemd")
        return "Type=notify: ready, watchdog %s" % unit_property("WatchdogUSec")
    return "Type=%s" % kind


@check("kill -9 of the agent: systemd starts it again and the host's next sync succeeds")
def restart():
    before = unit_property("MainPID")
    expect(before not in ("", "0"), "MainPID %r" % before)
    agent.request("guest-exec", {"path": "/bin/sh", "arg": ["-c", "sleep 1; kill -9 %s" % before]})
    time.sleep(3)
    wait_for_agent(timeout=120)
    after = unit_property("MainPID")
    expect(after not in ("", "0", before), "MainPID %r after %r" % (after, before))
    return "pid %s -> %s" % (before, after)


CONFIG = b"""[general]
block-rpcs=guest-get-time
logfile=/var/log/qga-test.log
verbose=true
fsfreeze-hook=/etc/qemu/fsfreeze-hook
"""
HOOK = b"#!/bin/sh\necho \"$1\" >>/run/hook-calls\n"


@check("config file deployed by the host, unit restarted: the blocked command refused, the log file written")
def config():
    write_file("/etc/qemu/qemu-ga.conf", CONFIG)
    # This request's own reply may never come: the agent is restarted under it.
    agent.send('{"execute":"guest-exec","arguments":{"path":"/bin/systemctl","arg":["restart","qemu-guest-agent"]}}')
    time.sleep(3)
    wait_for_agent(timeout=120)
    blocked = agent.request("guest-get-time")
    expect(blocked == BLOCKED_REPLY, "%r, expected %r" % (blocked, BLOCKED_REPLY))
    returned(agent.request("guest-ping"))
    code, text = shell("cat /var/log/qga-test.log")
    expect(code == 0 and '"guest-ping"' in text, "log file: %r" % text[-500:])
    return BLOCKED_REPLY["error"]["desc"]


@check("fsfreeze through the installed hook and a script in fsfreeze-hook.d, on the second disk")
def fsfreeze():
    write_file("/etc/qemu/fsfreeze-hook.d/record", HOOK)
    run("/bin/chmod", "755", "/etc/qemu/fsfreeze-hook.d/record")
    code, mounted = shell("findmnt -n -o SOURCE /mnt/data")
    expect(mounted.strip() == "/dev/vdb", "/mnt/data is %r" % mounted)
    frozen = returned(agent.request("guest-fsfreeze-freeze-list", {"mountpoints": ["/mnt/data"]}, timeout=120))
    expect(frozen == 1, "froze %r" % frozen)
    expect(returned(agent.request("guest-fsfreeze-status")) == "frozen", "not frozen")
    thawed = returned(agent.request("guest-fsfreeze-thaw", timeout=120))
    expect(thawed == 1, "thawed %r" % thawed)
    expect(returned(agent.request("guest-fsfreeze-status")) == "thawed", "not thawed")
    code, calls = shell("cat /run/hook-calls")
    expect(calls.split() == ["freeze", "thaw"], "hook calls %r" % calls)


@check("syslog: journalctl -t qemu-ga and /var/log/syslog have the agent's lines")
def syslog():
    returned(agent.request("guest-ping"))
    handle = returned(agent.request("guest-file-open", {"path": "/tmp/syslog-check", "mode": "w"}))
    returned(agent.request("guest-file-close", {"handle": handle}))
    exec_and_wait(agent, "/bin/true")
    wanted = ["guest-ping called", "guest-file-open, handle: %d" % handle, "guest-file-close called, handle: %d" % handle,
              'guest-exec called: "/bin/true"', "executing fsfreeze hook with arg 'freeze'",
              "executing fsfreeze hook with arg 'thaw'"]
    time.sleep(2)  # rsyslog writes asynchronously
    code, journal = shell("journalctl -t qemu-ga -o cat --no-pager")
    code, syslog_file = shell("grep qemu-ga /var/log/syslog")
    for line in wanted:
        expect(line in journal, "journal lacks %r" % line)
        expect(line in syslog_file, "/var/log/syslog lacks %r" % line)


@check("the config file removed, the unit restarted: every command enabled again")
def restore():
    run("/bin/rm", "-f", "/etc/qemu/qemu-ga.conf", "/etc/qemu/fsfreeze-hook.d/record")
    agent.send('{"execute":"guest-exec","arguments":{"path":"/bin/systemctl","arg":["restart","qemu-guest-agent"]}}')
    time.sleep(3)
    wait_for_agent(timeout=120)
    expect("return" in agent.request("guest-get-time"), "guest-get-time still refused")


@check("apt remove of %s, then Debian's qemu-guest-agent installs again and answers" % PACKAGE)
def remove():
    write_file(DEBIAN_DEB, open(os.environ["QGA_DEBIAN_PACKAGE"], "rb").read())
    # Whether the new package started the agent is recorded; it is then
    # started by hand, as an operator would, to reach the guest again.
    in_background("export DEBIAN_FRONTEND=noninteractive; apt-get remove -y %s >/root/remove.log 2>&1 && "
                  "apt-get install -y %s >>/root/remove.log 2>&1; echo $? >/root/remove.status.new; "
                  "systemctl is-active qemu-guest-agent >/root/remove.active; systemctl start qemu-guest-agent; "
                  "mv /root/remove.status.new /root/remove.status" % (PACKAGE, DEBIAN_DEB))
    status = wait_for_file("/root/remove.status")
    expect(status == "0", "apt-get exited %s: %s" % (status, shell("tail -n 20 /root/remove.log")[1]))
    started = shell("cat /root/remove.active")[1].strip()
    code, text = run("/usr/bin/dpkg-query", "-W", "-f=${Status}", "qemu-guest-agent")
    expect(text == "install ok installed", "qemu-guest-agent: %r" % text)
    version = returned(agent.request("guest-info"))["version"]
    expect(version.startswith("7.2"), "version %r" % version)
    return "Debian's agent %s answers; right after its installation it was %s" % (version, started)


@check("%s installs again over Debian's package and answers" % PACKAGE)
def reinstall():
    in_background("DEBIAN_FRONTEND=noninteractive apt-get install -y %s >/root/reinstall.log 2>&1; "
                  "echo $? >/root/reinstall.status" % PACKAGE_DEB)
    status = wait_for_file("/root/reinstall.status")
    expect(status == "0", "apt-get exited %s: %s" % (status, shell("tail -n 20 /root/reinstall.log")[1]))
    version = returned(agent.request("guest-info"))["version"]
    expect(version == VERSION, "version %r" % version)


@check("guest-shutdown powers the guest off through systemd")
def shutdown():
    agent.drain(quiet=0.5)
    agent.send('{"execute":"guest-shutdown"}')
    try:  # nothing comes on success
        raise AssertionError("guest-shutdown answered %r" % agent.read_reply(timeout=5))
    except (TimeoutError, ConnectionError):
        pass
    expect_exit(QEMU_PID, 300)


finish()
