#!/usr/bin/env python3
"""Bulk file transfer: our qemu-ga against the reference /usr/sbin/qemu-ga.

Starts both agents with the same options on unix sockets
(-m unix-listen -p DIR/sock -t DIR -f DIR/pid), runs every workload on
each agent in turn (alternating which goes first), several rounds, and
prints the medians and the ratios ours/reference:

  write-1MiB   64 guest-file-write requests of 1 MiB each (64 MiB in all)
  write-16MiB  one guest-file-write of 16 MiB; also the agent's peak
               resident memory during that request (VmHWM, reset before it)
  read-1MiB    64 guest-file-read requests of 1 MiB each

Throughput counts decoded bytes per second, from sending the request to
receiving the whole reply line. The data is random and checked: every
write's file is compared with what was sent, every read with the file.

Usage: bench/bench.py [--rounds N] [--ours PATH] [--reference PATH]
Without --ours it runs `swift build -c release` (with --scratch-path if
given) and uses the binary it built.
"""
import argparse
import base64
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

MiB = 1 << 20


class Agent:
    def __init__(self, name, binary):
        self.name = name
        self.directory = tempfile.mkdtemp(prefix="qga-bench-%s." % name)
        self.socket_path = os.path.join(self.directory, "sock")
        self.process = subprocess.Popen(
            [binary, "-m", "unix-listen", "-p", self.socket_path, "-t", self.directory,
             "-f", os.path.join(self.directory, "pid")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client = socket.socket(socket.AF_UNIX)
                self.client.connect(self.socket_path)
                break
            except OSError:
                self.client.close()
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise SystemExit("%s (%s) did not start" % (name, binary))
                time.sleep(0.02)
        self.pending = bytearray()

    def stop(self):
        self.client.close()
        self.process.kill()
        self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)

    def send(self, data):
        self.client.sendall(data)

    def receive_line(self):
        while True:
            end = self.pending.find(b"\n")
            if end >= 0:
                line = bytes(self.pending[:end + 1])
                del self.pending[:end + 1]
                return line
            chunk = self.client.recv(4 * MiB)
            if not chunk:
                raise SystemExit("%s closed the connection" % self.name)
            self.pending += chunk

    def call(self, execute, **arguments):
        self.send(json.dumps({"execute": execute, "arguments": arguments}).encode())
        reply = json.loads(self.receive_line())
        if "return" not in reply:
            raise SystemExit("%s: %s failed: %s" % (self.name, execute, reply))
        return reply["return"]

    def path(self, name):
        return os.path.join(self.directory, name)

    def reset_peak_memory(self):
        # Writing 5 to clear_refs resets VmHWM to the current resident size.
        with open("/proc/%d/clear_refs" % self.process.pid, "w") as f:
            f.write("5")

    def peak_memory(self):
        with open("/proc/%d/status" % self.process.pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        raise SystemExit("no VmHWM for %s" % self.name)


def write_request(handle, payload_b64):
    return (b'{"execute":"guest-file-write","arguments":{"handle":%d,"buf-b64":"' % handle
            + payload_b64 + b'"}}')


def check_file(agent, name, expected):
    with open(agent.path(name), "rb") as f:
        if f.read() != expected:
            raise SystemExit("%s wrote wrong data to %s" % (agent.name, name))


def write_workload(agent, chunks, name):
    """Writes the chunks (already base64) one request at a time; returns seconds."""
    handle = agent.call("guest-file-open", path=agent.path(name), mode="w")
    requests = [write_request(handle, b64) for b64 in chunks]
    start = time.perf_counter()
    for request in requests:
        agent.send(request)
        reply = json.loads(agent.receive_line())
        if "return" not in reply:
            raise SystemExit("%s: write failed: %s" % (agent.name, reply))
    elapsed = time.perf_counter() - start
    agent.call("guest-file-close", handle=handle)
    return elapsed


def read_workload(agent, name, size, count):
    handle = agent.call("guest-file-open", path=agent.path(name), mode="r")
    request = b'{"execute":"guest-file-read","arguments":{"handle":%d,"count":%d}}' % (handle, size)
    received = []
    start = time.perf_counter()
    for _ in range(count):
        agent.send(request)
        received.append(agent.receive_line())
    elapsed = time.perf_counter() - start
    agent.call("guest-file-close", handle=handle)
    data = b"".join(base64.b64decode(json.loads(line)["return"]["buf-b64"]) for line in received)
    check_file(agent, name, data)
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ours")
    parser.add_argument("--reference", default="/usr/sbin/qemu-ga")
    parser.add_argument("--scratch-path")
    options = parser.parse_args()

    ours = options.ours
    if ours is None:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        command = ["swift", "build", "-c", "release"]
        if options.scratch_path:
            command += ["--scratch-path", options.scratch_path]
        subprocess.run(command, cwd=root, check=True, stdout=sys.stderr)
        binary_dir = subprocess.run(command + ["--show-bin-path"], cwd=root, check=True,
                                    capture_output=True, text=True).stdout.strip()
        ours = os.path.join(binary_dir, "qemu-ga")

    random = os.urandom
    small = [random(MiB) for _ in range(64)]
    small_b64 = [base64.b64encode(c) for c in small]
    big = random(16 * MiB)
    big_b64 = [base64.b64encode(big)]
    read_data = random(64 * MiB)

    agents = [Agent("ours", ours), Agent("reference", options.reference)]
    results = {a.name: {"write-1MiB": [], "write-16MiB": [], "read-1MiB": [], "peak-16MiB": []} for a in agents}
    try:
        for agent in agents:
            with open(agent.path("read.bin"), "wb") as f:
                f.write(read_data)
        for round_number in range(options.rounds):
            order = agents if round_number % 2 == 0 else agents[::-1]
            for agent in order:
                r = results[agent.name]
                seconds = write_workload(agent, small_b64, "small.bin")
                check_file(agent, "small.bin", b"".join(small))
                r["write-1MiB"].append(64 * MiB / seconds)

                agent.reset_peak_memory()
                seconds = write_workload(agent, big_b64, "big.bin")
                r["peak-16MiB"].append(agent.peak_memory())
                check_file(agent, "big.bin", big)
                r["write-16MiB"].append(16 * MiB / seconds)

                seconds = read_workload(agent, "read.bin", MiB, 64)
                r["read-1MiB"].append(64 * MiB / seconds)
            print("round %d done" % (round_number + 1), file=sys.stderr)
    finally:
        for agent in agents:
            agent.stop()

    print("%-12s %14s %14s %8s  target" % ("workload", "ours", "reference", "ratio"))
    targets = {"write-1MiB": ">= 5", "write-16MiB": ">= 8", "read-1MiB": ">= 1.5", "peak-16MiB": "<= 0.60"}
    for key in ["write-1MiB", "write-16MiB", "read-1MiB", "peak-16MiB"]:
        mine = statistics.median(results["ours"][key])
        theirs = statistics.median(results["reference"][key])
        unit = "MiB" if key.startswith("peak") else "MiB/s"
        print("%-12s %10.1f %-5s %8.1f %-5s %6.2fx  %s" % (key, mine / MiB, unit, theirs / MiB, unit, mine / theirs,
                                                        targets[key]))
    print("(medians of %d rounds; peak = VmHWM during the 16 MiB write)" % options.rounds)


if __name__ == "__main__":
    main()
