#!/usr/bin/env python3
"""Soak test: drives a built agent over unix-listen with N mixed requests and
checks every reply, their order, and that the agent's resident memory and
open descriptors at the end are within a small bound of those after warm-up.

    Tests/soak/soak.py [-n REQUESTS] [--binary PATH] [--seed S]

The mix: pings, syncs and sync-delimited, information commands (read-only on
this machine), guest-file open/write/seek/read/close on files of a temporary
directory, guest-exec of cat and sh with captured output, bad requests
(parse errors, unknown commands, wrong and missing arguments), requests cut
into pieces, 0xFF flushes of half-sent requests, and clients that disconnect
and reconnect mid-message and mid-reply. Every reply is parsed and checked
against what that request must get, in the order sent.

Memory and descriptors are measured while one client is connected and idle,
no guest file is open and no guest-exec child is left: once after warm-up
and once at the end. The last line is `N passed, N failed`; the exit status
is 0 only when nothing failed.
"""

import argparse
import base64
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Failure(Exception):
    pass


class Client:
    """One connection; reads reply lines (a 0xFF sentinel stays on its line)."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # Blocking: the agent serves one client at a time with a backlog of
        # one (as qemu-ga), so a connect may wait for the previous client to
        # be closed (a non-blocking one would fail with EAGAIN).
        self.sock.connect(path)
        self.sock.settimeout(30)
        self.pending = b""

    def send(self, data):
        self.sock.sendall(data)

    def lines(self, count):
        result = []
        while len(result) < count:
            index = self.pending.find(b"\n")
            if index < 0:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    raise Failure("the agent closed the connection with %d replies missing" % (count - len(result)))
                self.pending += chunk
                continue
            result.append(self.pending[:index])
            self.pending = self.pending[index + 1:]
        return result

    def close(self):
        self.sock.close()


def request(command, arguments=None, id=None):
    message = {"execute": command}
    if arguments is not None:
        message["arguments"] = arguments
    if id is not None:
        message["id"] = id
    return json.dumps(message).encode()


def returns(check=None):
    """A checker: the line is `{"return": R}` (with `check(R)` true)."""

    def checker(line):
        reply = parse(line)
        if set(reply) != {"return"}:
            raise Failure("expected a return, got %r" % line[:300])
        try:
            good = check is None or check(reply["return"])
        except (KeyError, TypeError, IndexError):
            good = False
        if not good:
            raise Failure("unexpected return %r" % line[:300])
        return reply["return"]

    return checker


def error(desc, error_class="GenericError"):
    def checker(line):
        reply = parse(line)
        expected = {"error": {"class": error_class, "desc": desc}}
        if reply != expected:
            raise Failure("expected %r, got %r" % (expected, line[:300]))

    return checker


def delimited(id):
    def checker(line):
        if line[:1] != b"\xff" or parse(line[1:]) != {"return": id}:
            raise Failure("expected \\xff + return %r, got %r" % (id, line[:300]))

    return checker


def parse(line):
    try:
        return json.loads(line)
    except ValueError:
        raise Failure("not JSON: %r" % line[:300])


class Soak:
    def __init__(self, binary, requests, seed, workdir, rss_bound_kib, verbose):
        self.binary = binary
        self.total = requests
        self.random = random.Random(seed)
        self.dir = workdir
        self.socket_path = os.path.join(workdir, "sock")
        self.files = os.path.join(workdir, "files")
        os.mkdir(self.files)
        self.rss_bound_kib = rss_bound_kib
        self.verbose = verbose
        self.sent = 0
        self.passed = 0
        self.failed = 0
        self.failures = []
        self.counts = {}
        self.client = None
        self.process = None

    # -- the agent --------------------------------------------------------

    def start(self):
        log = open(os.path.join(self.dir, "log"), "wb")
        self.process = subprocess.Popen(
            [self.binary, "-m", "unix-listen", "-p", self.socket_path, "-t", self.dir, "-f", os.path.join(self.dir, "pid")],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client = Client(self.socket_path)
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise Failure("the agent did not start: %s" % self.log_tail())
                time.sleep(0.01)

    def log_tail(self):
        with open(os.path.join(self.dir, "log"), "rb") as log:
            return log.read()[-2000:].decode(errors="replace")

    def reconnect(self):
        self.client.close()
        self.client = Client(self.socket_path)

    def measure(self):
        """VmRSS in KiB and the number of open descriptors, the agent idle."""
        pid = self.process.pid
        with open("/proc/%d/status" % pid) as status:
            rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
        return rss, len(os.listdir("/proc/%d/fd" % pid))

    # -- bookkeeping ------------------------------------------------------

    def record(self, kind, checks):
        self.counts[kind] = self.counts.get(kind, 0) + checks

    def fail(self, kind, message):
        self.failed += 1
        if len(self.failures) < 20:
            self.failures.append("%s (request %d): %s" % (kind, self.sent, message))
        # A failed exchange may leave replies in flight: start a clean client.
        self.client.close()
        self.client = Client(self.socket_path)

    def exchange(self, pairs, chunks=1):
        """Sends the requests (in `chunks` pieces) and checks the replies in order."""
        data = b"".join(request for request, _ in pairs)
        if chunks <= 1:
            self.client.send(data)
        else:
            cuts = sorted(self.random.sample(range(1, len(data)), min(chunks - 1, len(data) - 1)))
            for start, end in zip([0] + cuts, cuts + [len(data)]):
                self.client.send(data[start:end])
                time.sleep(0.0005)
        self.sent += len(pairs)
        results = []
        for line, (_, check) in zip(self.client.lines(len(pairs)), pairs):
            results.append(check(line))
            self.passed += 1
        return results

    # -- the mix ----------------------------------------------------------

    def simple(self):
        """Requests with known answers, pipelined."""
        pairs = []
        for _ in range(self.random.randint(1, 40)):
            choice = self.random.random()
            id = self.random.randint(-(2 ** 63), 2 ** 63 - 1)
            if choice < 0.25:
                pairs.append((request("guest-ping"), returns(lambda r: r == {})))
            elif choice < 0.45:
                pairs.append((request("guest-sync", {"id": id}), returns(lambda r, id=id: r == id)))
            elif choice < 0.5:
                pairs.append((request("guest-sync-delimited", {"id": id}), delimited(id)))
            elif choice < 0.55:
                pairs.append((request("guest-ping", id=id), self.with_id(id)))
            else:
                pairs.append(self.random.choice(self.information + self.bad_requests))
        self.exchange(pairs)
        return "simple"

    def with_id(self, id):
        def checker(line):
            if parse(line) != {"return": {}, "id": id}:
                raise Failure("expected the id %r echoed, got %r" % (id, line[:300]))
        return checker

    information = [
        (request("guest-info"), returns(lambda r: r["version"] and len(r["supported_commands"]) > 30)),
        (request("guest-get-time"), returns(lambda r: isinstance(r, int) and r > 0)),
        (request("guest-get-host-name"), returns(lambda r: "host-name" in r)),
        (request("guest-get-timezone"), returns(lambda r: "offset" in r)),
        (request("guest-get-osinfo"), returns(lambda r: "kernel-release" in r)),
        (request("guest-fsfreeze-status"), returns(lambda r: r == "thawed")),
        (request("guest-get-vcpus"), returns(lambda r: len(r) >= 1)),
        (request("guest-get-load"), returns(lambda r: "load1m" in r)),
        (request("guest-get-cpustats"), returns(lambda r: isinstance(r, list))),
        (request("guest-get-users"), returns(lambda r: isinstance(r, list))),
        (request("guest-network-get-interfaces"), returns(lambda r: isinstance(r, list))),
    ]

    bad_requests = [
        (b'{"execute":}', error("JSON parse error, expecting value")),
        (b']', error("JSON parse error, expecting value")),
        (b'[1]', error("QMP input must be a JSON object")),
        (b'{"execute":"guest-nope"}', error("The command guest-nope has not been found", "CommandNotFound")),
        (request("guest-sync", {"id": "x"}), error("Invalid parameter type for 'id', expected: integer")),
        (request("guest-sync"), error("Parameter 'id' is missing")),
        (request("guest-ping", {"x": 1}), error("Parameter 'x' is unexpected")),
        (b'{"execute":"guest-ping","foo":1}', error("QMP input member 'foo' is unexpected")),
        (request("guest-file-close", {"handle": 1}), error("handle '1' has not been found")),
        (request("guest-exec-status", {"pid": 0}), error("Invalid parameter 'pid'")),
    ]

    def file_session(self):
        """Open, write, seek, read back, close a file of the temporary directory."""
        path = os.path.join(self.files, "f%d" % self.random.randint(0, 7))
        size = self.random.choice([0, 1, 100, 4096, 65536, 200000]) if self.random.random() > 0.01 else 1 << 20
        data = self.random.randbytes(size)
        [handle] = self.exchange([(request("guest-file-open", {"path": path, "mode": "w+"}),
                                   returns(lambda r: isinstance(r, int)))])
        encoded = base64.b64encode(data).decode()
        self.exchange([
            (request("guest-file-write", {"handle": handle, "buf-b64": encoded}),
             returns(lambda r: r == {"count": size, "eof": False})),
            (request("guest-file-seek", {"handle": handle, "offset": 0, "whence": "set"}),
             returns(lambda r: r == {"position": 0, "eof": False})),
            (request("guest-file-read", {"handle": handle, "count": size + 1}),
             returns(lambda r: r == {"count": size, "buf-b64": encoded, "eof": True})),
            (request("guest-file-close", {"handle": handle}), returns(lambda r: r == {})),
        ], chunks=self.random.choice([1, 1, 1, 3]))
        return "file"

    def exec_session(self):
        """guest-exec with captured output, then guest-exec-status until it exited."""
        if self.random.random() < 0.5:
            data = self.random.randbytes(self.random.choice([0, 10, 5000, 100000]))
            arguments = {"path": "/bin/cat", "capture-output": True}
            if data:
                arguments["input-data"] = base64.b64encode(data).decode()
            expected = {"exited": True, "exitcode": 0}
            if data:
                expected.update({"out-data": base64.b64encode(data).decode(), "out-truncated": False})
        else:
            arguments = {"path": "/bin/sh", "arg": ["-c", "echo out; echo err >&2; exit 3"], "capture-output": "separated"}
            expected = {"exited": True, "exitcode": 3, "out-data": "b3V0Cg==", "out-truncated": False,
                        "err-data": "ZXJyCg==", "err-truncated": False}
        [result] = self.exchange([(request("guest-exec", arguments), returns(lambda r: set(r) == {"pid"}))])
        pid = result["pid"]
        deadline = time.monotonic() + 30
        while True:
            [status] = self.exchange([(request("guest-exec-status", {"pid": pid}), returns(lambda r: "exited" in r))])
            if status["exited"]:
                if status != expected:
                    raise Failure("guest-exec-status %r, expected %r" % (status, expected))
                return "exec"
            if time.monotonic() > deadline:
                raise Failure("guest-exec child %d did not exit" % pid)
            time.sleep(0.001)

    def flush_with_ff(self):
        """Half a request, then 0xFF and a guest-sync-delimited: only its reply."""
        id = self.random.randint(0, 2 ** 62)
        half = request("guest-sync", {"id": 1})[: self.random.randint(1, 20)]
        self.client.send(half)
        self.sent += 1
        self.exchange([(b"\xff" + request("guest-sync-delimited", {"id": id}), delimited(id))])
        return "flush"

    def drop_mid_message(self):
        """A client leaves halfway through a request; the next starts clean."""
        self.client.send(request("guest-file-open", {"path": "/nonexistent"})[: self.random.randint(1, 30)])
        self.sent += 1
        self.reconnect()
        id = self.random.randint(0, 2 ** 62)
        self.exchange([(request("guest-sync", {"id": id}), returns(lambda r: r == id))])
        return "drop-mid-message"

    def drop_mid_reply(self):
        """A client asks for large replies and leaves without reading them;
        its open file stays open for the next client to close."""
        path = os.path.join(self.files, "big")
        [handle] = self.exchange([(request("guest-file-open", {"path": path, "mode": "r"}),
                                   returns(lambda r: isinstance(r, int)))])
        count = self.random.choice([1, 20])
        self.client.send(request("guest-file-read", {"handle": handle, "count": 1 << 20}) * count
                         + request("guest-info") * self.random.randint(0, 50))
        self.sent += count
        if self.random.random() < 0.5:
            self.client.lines(1)  # part of the replies read
        self.reconnect()
        self.exchange([(request("guest-file-close", {"handle": handle}), returns(lambda r: r == {}))])
        return "drop-mid-reply"

    def run(self):
        with open(os.path.join(self.files, "big"), "wb") as big:
            big.write(os.urandom(1 << 20))
        self.start()
        scenarios = [(self.simple, 70), (self.file_session, 12), (self.exec_session, 3), (self.flush_with_ff, 5),
                     (self.drop_mid_message, 3), (self.drop_mid_reply, 1), (lambda: (self.reconnect(), "reconnect")[1], 2)]
        functions = [function for function, _ in scenarios]
        weights = [weight for _, weight in scenarios]
        warmup = min(max(self.total // 10, 1000), self.total)
        baseline = None
        started = time.monotonic()
        last_report = started
        while self.sent < self.total:
            if baseline is None and self.sent >= warmup:
                baseline = self.quiet_measure()
            function = self.random.choices(functions, weights)[0]
            try:
                kind = function()
            except (Failure, OSError) as failure:
                self.fail(function.__name__, failure)
                continue
            self.record(kind, 1)
            if self.process.poll() is not None:
                raise Failure("the agent exited (%s): %s" % (self.process.returncode, self.log_tail()))
            if self.verbose and time.monotonic() - last_report > 10:
                last_report = time.monotonic()
                print("  %d requests, %.0f/s" % (self.sent, self.sent / (last_report - started)), flush=True)
        if baseline is None:
            baseline = self.quiet_measure()
        final = self.quiet_measure()
        elapsed = time.monotonic() - started
        return baseline, final, elapsed

    def quiet_measure(self):
        """Measures with the agent idle: a sync round trip on a fresh client first."""
        self.reconnect()
        id = self.random.randint(0, 2 ** 62)
        self.exchange([(request("guest-sync", {"id": id}), returns(lambda r: r == id))])
        time.sleep(0.05)
        return self.measure()

    def stop(self):
        if self.client:
            self.client.close()
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                return None
        return self.process.returncode if self.process else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--requests", type=int, default=1_000_000)
    parser.add_argument("--binary", default=os.environ.get("QGA_BINARY", os.path.join(REPO, ".build/debug/qemu-ga")))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rss-bound", type=int, default=4096, help="KiB the resident memory may grow after warm-up")
    parser.add_argument("-v", "--verbose", action="store_true")
    options = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="qga-soak.")
    soak = Soak(options.binary, options.requests, options.seed, workdir, options.rss_bound, options.verbose)
    print("soak: %s, %d requests, seed %d" % (options.binary, options.requests, options.seed), flush=True)
    try:
        try:
            baseline, final, elapsed = soak.run()
        except (Failure, OSError) as failure:
            soak.failed += 1
            soak.failures.append("fatal: %s" % failure)
            baseline = final = None
            elapsed = 0
        finally:
            status = soak.stop()
        if status != 0:
            soak.failed += 1
            soak.failures.append("the agent ended with status %r after SIGTERM (expected 0): %s" % (status, soak.log_tail()))
        else:
            soak.passed += 1
        if baseline and final:
            rss_growth = final[0] - baseline[0]
            print("soak: %d requests in %.0f s (%.0f/s); scenarios: %s" % (
                soak.sent, elapsed, soak.sent / max(elapsed, 1e-9),
                ", ".join("%s %d" % item for item in sorted(soak.counts.items()))))
            print("soak: after warm-up VmRSS %d KiB, %d descriptors; at the end VmRSS %d KiB (%+d), %d descriptors" % (
                baseline[0], baseline[1], final[0], rss_growth, final[1]))
            for ok, message in [(rss_growth <= options.rss_bound, "resident memory grew by %d KiB (bound %d KiB)" % (rss_growth, options.rss_bound)),
                                (final[1] == baseline[1], "descriptors %d -> %d" % (baseline[1], final[1]))]:
                if ok:
                    soak.passed += 1
                else:
                    soak.failed += 1
                    soak.failures.append(message)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for failure in soak.failures:
        print("FAIL: %s" % failure)
    print("%d passed, %d failed" % (soak.passed, soak.failed))
    return 1 if soak.failed else 0


if __name__ == "__main__":
    sys.exit(main())
