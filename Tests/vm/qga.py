"""A host-side guest-agent client and the ok/not ok checks of the
end-to-end drivers (Tests/vm/drive.py, Tests/portability/drive.py)."""

import base64
import json
import random
import socket
import sys
import time

results = []


class Client:
    """One host-side connection to a chardev socket."""

    def __init__(self, path, timeout=60):
        deadline = time.time() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        self.buffer = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def request(self, command, arguments=None, timeout=60):
        message = {"execute": command}
        if arguments is not None:
            message["arguments"] = arguments
        self.send(json.dumps(message))
        return self.read_reply(timeout)

    def read_line(self, timeout):
        deadline = time.time() + timeout
        while b"\n" not in self.buffer:
            remaining = deadline - time.time()
            if remaining <= 0:
                raise TimeoutError("no reply within %ss; pending %r" % (timeout, self.buffer[:200]))
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("the port closed; pending %r" % self.buffer[:200])
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line + b"\n"

    def read_reply(self, timeout=60):
        return json.loads(self.read_line(timeout))

    def sync(self, timeout=120, resend=3.0, flush=True):
        """The standard client resynchronisation: 0xFF, then
        guest-sync-delimited with a random id, resent until answered; returns
        the exact bytes of the reply from its 0xFF sentinel on."""
        ident = random.randint(1, 2**31)
        request = ('{"execute":"guest-sync-delimited","arguments":{"id":%d}}' % ident).encode()
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.send((b"\xff" if flush else b"") + request)
            wait_until = time.time() + resend
            while time.time() < wait_until:
                self.sock.settimeout(max(0.05, wait_until - time.time()))
                try:
                    chunk = self.sock.recv(65536)
                except socket.timeout:
                    break
                if not chunk:
                    raise ConnectionError("the port closed during sync")
                self.buffer += chunk
                expected = b"\xff" + ('{"return": %d}\n' % ident).encode()
                start = self.buffer.find(b"\xff")
                while start >= 0:
                    if self.buffer[start:start + len(expected)] == expected:
                        self.drain()
                        return expected
                    start = self.buffer.find(b"\xff", start + 1)
        raise TimeoutError("no guest-sync-delimited reply; received %r" % self.buffer[-300:])

    def drain(self, quiet=1.5):
        """Drops what is pending and whatever arrives until the line is
        quiet: the answers to syncs resent while the guest was booting."""
        self.buffer = b""
        while True:
            self.sock.settimeout(quiet)
            try:
                if not self.sock.recv(65536):
                    return
            except socket.timeout:
                return

    def close(self):
        self.sock.close()


def check(name):
    def run(function):
        try:
            detail = function()
            results.append((name, True, detail))
            print("ok - %s%s" % (name, " (%s)" % detail if detail else ""), flush=True)
        except Exception as error:  # every failure is reported, none stops the run
            results.append((name, False, str(error)))
            print("not ok - %s: %s" % (name, error), flush=True)
    return run


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


def returned(reply):
    expect("return" in reply, "error reply: %r" % reply)
    return reply["return"]


def exec_and_wait(client, path, args=(), capture=True, timeout=60, quiet=0):
    """Runs a program in the guest and polls its status until it exits;
    `quiet` seconds pass before the first poll."""
    pid = returned(client.request("guest-exec", {"path": path, "arg": list(args), "capture-output": capture}))["pid"]
    time.sleep(quiet)
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = returned(client.request("guest-exec-status", {"pid": pid}))
        if status["exited"]:
            return status
        time.sleep(0.2)
    raise TimeoutError("guest-exec of %s did not finish" % path)


def output_of(status, stream="out-data"):
    return base64.b64decode(status.get(stream, "")).decode(errors="replace")


def expect_exit(pid, seconds):
    """Waits for the process (QEMU) to end: gone, or a zombie (kill -0
    succeeds on a zombie, so its status is read)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            state = open("/proc/%s/status" % pid).read()
        except OSError:
            return
        if "\nState:\tZ" in state:
            return
        time.sleep(0.5)
    raise AssertionError("QEMU still runs %d s after guest-shutdown" % seconds)


def finish(figures=()):
    """Prints the figures and the closing 'N passed, N failed' line; exits
    non-zero when a check failed."""
    for name, value in figures:
        print("figure: %s: %s" % (name, value))
    passed = sum(1 for result in results if result[1])
    print("%d passed, %d failed" % (passed, len(results) - passed))
    sys.exit(0 if passed == len(results) else 1)
