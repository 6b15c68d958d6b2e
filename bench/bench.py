#!/usr/bin/env python3
"""Speed and footprint: our qemu-ga against the reference /usr/sbin/qemu-ga.

Starts both agents with the same options on unix sockets
(-m unix-listen -p DIR/sock -t DIR -f DIR/pid) and runs every workload on
both, several rounds, alternating which agent goes first; prints the medians
of the rounds, the ratio ours/reference and whether each target is met. The
round trips take turns by batches of 50 requests and the start-ups one by
one, so that both agents see the same load from the rest of the machine.

  ping-pipelined  50,000 guest-ping requests sent in one write (from a
                  second thread), replies read as they come: requests/s
  ping-rtt        one guest-ping at a time, send to reply: median of 2,000
  info-rtt, interfaces-rtt, fsinfo-rtt
                  guest-info, guest-network-get-interfaces and
                  guest-get-fsinfo one at a time: median of 300 each
  sync-delimited  guest-sync-delimited round trip (0xFF, then the reply
                  with the id): median of 1,000
  write-1MiB      64 guest-file-write requests of 1 MiB each (64 MiB)
  write-16MiB     one guest-file-write of 16 MiB; peak-16MiB is the agent's
                  peak resident memory during that request (VmHWM reset
                  before it)
  read-1MiB       64 guest-file-read requests of 1 MiB each
  start-up        process start to the socket accepting a connection (a
                  fresh agent each time, 3 per round)
  idle-rss        VmRSS of such a fresh agent after one guest-sync-delimited
                  and 1.5 s of idleness (ours gives its binary's clean pages
                  back a second after the host last spoke)
  peak-rss        the highest VmHWM of the long-running agents over the run
  binary          file size, as built and stripped (no target)
  parser-*        bench/parser: our JSON parser alone, in process, under
                  google/swift-benchmark (MiB/s of JSON; no reference)
  libraries       DT_NEEDED of our binary: only glibc (libgcc_s comes with
                  it: Debian's libc6 depends on libgcc-s1), libglib, libudev

Throughput counts decoded bytes (files) or requests per second, from sending
to receiving the last reply; latencies are per request (Python's own
overhead is in both columns alike). File data is random and checked.

Usage: bench/bench.py [--rounds N] [--ours PATH] [--reference PATH]
                      [--parser PATH | --no-parser]
Without --ours it runs `make build` (the release binary the packages ship)
and uses .build/release/qemu-ga; without --parser it
builds bench/parser in release mode.
"""
import argparse
import base64
import gc
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

MiB = 1 << 20
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PING = b'{"execute":"guest-ping"}'
PING_REPLY = b'{"return": {}}\n'


def status_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise SystemExit("no %s for process %d" % (field, pid))


class Agent:
    """One agent process and a client connection to it."""

    def __init__(self, name, binary):
        self.name = name
        self.directory = tempfile.mkdtemp(prefix="qga-bench-%s." % name)
        self.socket_path = os.path.join(self.directory, "sock")
        self.client = socket.socket(socket.AF_UNIX)
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [binary, "-m", "unix-listen", "-p", self.socket_path, "-t", self.directory,
             "-f", os.path.join(self.directory, "pid")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = started + 10
        while True:
            try:
                self.client.connect(self.socket_path)
                break
            except OSError:
                if time.perf_counter() > deadline or self.process.poll() is not None:
                    raise SystemExit("%s (%s) did not start" % (name, binary))
                time.sleep(0.0002)
        self.startup = time.perf_counter() - started
        self.pending = bytearray()
        self.peak = 0

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

    def note_peak(self):
        self.peak = max(self.peak, status_kib(self.process.pid, "VmHWM") * 1024)

    def reset_peak_memory(self):
        self.note_peak()
        # Writing 5 to clear_refs resets VmHWM to the current resident size.
        with open("/proc/%d/clear_refs" % self.process.pid, "w") as f:
            f.write("5")

    def peak_memory(self):
        self.note_peak()
        return status_kib(self.process.pid, "VmHWM") * 1024


# Workloads on running agents: the figures of one round.

def ping_pipelined(agent, count=50_000):
    """Requests per second."""
    sender = threading.Thread(target=agent.send, args=(PING * count,))
    start = time.perf_counter()
    sender.start()
    replies = 0
    tail = b""
    while replies < count:
        chunk = agent.client.recv(MiB)
        if not chunk:
            raise SystemExit("%s closed the connection" % agent.name)
        replies += chunk.count(b"\n")
        tail = chunk
    elapsed = time.perf_counter() - start
    sender.join()
    if replies != count or not tail.endswith(PING_REPLY):
        raise SystemExit("%s: pipelined pings answered wrongly" % agent.name)
    return count / elapsed


def round_trips(agents, request, count, check, batch=50):
    """Median seconds from sending `request` to its whole reply, per agent.

    The agents take turns by batches, so that both see the same load from
    the rest of the machine."""
    times = {agent.name: [] for agent in agents}
    for turn in range(count // batch):
        for agent in agents if turn % 2 == 0 else agents[::-1]:
            for n in range(batch):
                start = time.perf_counter()
                agent.send(request(n) if callable(request) else request)
                line = agent.receive_line()
                times[agent.name].append(time.perf_counter() - start)
                check(line, n)
    return {name: statistics.median(samples) for name, samples in times.items()}


def expect_return(line, _=None):
    if not line.startswith(b'{"return"'):
        raise SystemExit("unexpected reply: %r" % line[:200])


def sync_request(n):
    return b'{"execute":"guest-sync-delimited","arguments":{"id":%d}}' % n


def expect_sync(line, n):
    if line != b'\xff{"return": %d}\n' % n:
        raise SystemExit("guest-sync-delimited answered %r" % line)


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
        expect_return(agent.receive_line())
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


# How long a fresh agent is left alone before its idle memory is read.
IDLE_SECONDS = 1.5


def fresh_start(name, binary):
    """Start-up seconds and idle VmRSS (bytes) of a new agent."""
    agent = Agent(name, binary)
    try:
        agent.send(sync_request(0))
        expect_sync(agent.receive_line(), 0)
        time.sleep(IDLE_SECONDS)
        return agent.startup, status_kib(agent.process.pid, "VmRSS") * 1024
    finally:
        agent.stop()


class Data:
    def __init__(self):
        random = os.urandom
        self.small = [random(MiB) for _ in range(64)]
        self.small_b64 = [base64.b64encode(c) for c in self.small]
        self.big = random(16 * MiB)
        self.big_b64 = [base64.b64encode(self.big)]
        self.read = random(64 * MiB)


def run_round(agents, order, binaries, data, results):
    """One round: the short workloads with the agents taking turns, then the
    long ones agent by agent in `order`."""
    for _ in range(3):
        for agent in order:
            seconds, rss = fresh_start(agent.name, binaries[agent.name])
            results[agent.name]["start-up"].append(seconds)
            results[agent.name]["idle-rss"].append(rss)

    for key, request, count, check in [
        ("ping-rtt", PING, 2000, expect_return),
        ("info-rtt", b'{"execute":"guest-info"}', 300, expect_return),
        ("interfaces-rtt", b'{"execute":"guest-network-get-interfaces"}', 300, expect_return),
        ("fsinfo-rtt", b'{"execute":"guest-get-fsinfo"}', 300, expect_return),
        ("sync-delimited", sync_request, 1000, expect_sync),
    ]:
        for name, median in round_trips(order, request, count, check).items():
            results[name][key].append(median)

    for agent in order:
        r = results[agent.name]
        r["ping-pipelined"].append(ping_pipelined(agent))

        seconds = write_workload(agent, data.small_b64, "small.bin")
        check_file(agent, "small.bin", b"".join(data.small))
        r["write-1MiB"].append(64 * MiB / seconds)

        agent.reset_peak_memory()
        seconds = write_workload(agent, data.big_b64, "big.bin")
        r["peak-16MiB"].append(agent.peak_memory())
        check_file(agent, "big.bin", data.big)
        r["write-16MiB"].append(16 * MiB / seconds)

        seconds = read_workload(agent, "read.bin", MiB, 64)
        r["read-1MiB"].append(64 * MiB / seconds)
        agent.note_peak()


# name: (unit, scale, target text, test on the ratio ours/reference)
ROWS = [
    ("ping-pipelined", "req/s", 1, ">= 1.5", lambda x: x >= 1.5),
    ("ping-rtt", "us", 1e6, "<= 1", lambda x: x <= 1),
    ("info-rtt", "us", 1e6, "<= 1", lambda x: x <= 1),
    ("interfaces-rtt", "us", 1e6, "<= 1", lambda x: x <= 1),
    ("fsinfo-rtt", "us", 1e6, "<= 1", lambda x: x <= 1),
    ("sync-delimited", "us", 1e6, "<= 1", lambda x: x <= 1),
    ("write-1MiB", "MiB/s", 1 / MiB, ">= 5", lambda x: x >= 5),
    ("write-16MiB", "MiB/s", 1 / MiB, ">= 8", lambda x: x >= 8),
    ("read-1MiB", "MiB/s", 1 / MiB, ">= 1.5", lambda x: x >= 1.5),
    ("peak-16MiB", "MiB", 1 / MiB, "<= 0.6", lambda x: x <= 0.6),
    ("start-up", "ms", 1e3, "<= 1", lambda x: x <= 1),
    ("idle-rss", "MiB", 1 / MiB, "<= 1", lambda x: x <= 1),
    ("peak-rss", "MiB", 1 / MiB, "", None),
]

# glibc's libraries, libgcc_s (Debian's libc6 depends on libgcc-s1), libglib, libudev.
ALLOWED_LIBRARIES = {"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1",
                     "ld-linux-x86-64.so.2", "libgcc_s.so.1", "libglib-2.0.so.0", "libudev.so.1"}


def needed_libraries(binary):
    output = subprocess.run(["readelf", "-d", binary], check=True, capture_output=True, text=True).stdout
    return [line.split("[")[1].rstrip("]") for line in output.splitlines() if "(NEEDED)" in line]


def stripped_size(binary):
    with tempfile.TemporaryDirectory() as directory:
        stripped = os.path.join(directory, "stripped")
        subprocess.run(["strip", "-o", stripped, binary], check=True)
        return os.path.getsize(stripped)


def build(command, cwd):
    subprocess.run(command, cwd=cwd, check=True, stdout=sys.stderr)
    binary_dir = subprocess.run(command + ["--show-bin-path"], cwd=cwd, check=True,
                                capture_output=True, text=True).stdout.strip()
    return binary_dir


def parser_throughput(binary):
    """MiB/s per workload of bench/parser."""
    output = subprocess.run([binary], check=True, capture_output=True, text=True).stdout
    sys.stderr.write(output)
    return {line.split()[1]: float(line.split()[2])
            for line in output.splitlines() if line.startswith("throughput ")}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ours")
    parser.add_argument("--reference", default="/usr/sbin/qemu-ga")
    parser.add_argument("--parser", help="a built bench/parser binary")
    parser.add_argument("--no-parser", action="store_true", help="skip the parser benchmark")
    options = parser.parse_args()

    ours = options.ours
    if ours is None:
        subprocess.run(["make", "build"], cwd=ROOT, check=True, stdout=sys.stderr)
        ours = os.path.join(ROOT, ".build", "release", "qemu-ga")
    parser_binary = options.parser
    if parser_binary is None and not options.no_parser:
        parser_dir = os.path.join(ROOT, "bench", "parser")
        parser_binary = os.path.join(build(["swift", "build", "-c", "release"], parser_dir), "parser-bench")
    binaries = {"ours": ours, "reference": options.reference}

    data = Data()
    agents = [Agent("ours", ours), Agent("reference", options.reference)]
    keys = [row[0] for row in ROWS if row[0] != "peak-rss"]
    results = {a.name: {key: [] for key in keys} for a in agents}
    gc.disable()
    try:
        for agent in agents:
            with open(agent.path("read.bin"), "wb") as f:
                f.write(data.read)
        for round_number in range(options.rounds):
            order = agents if round_number % 2 == 0 else agents[::-1]
            run_round(agents, order, binaries, data, results)
            print("round %d done" % (round_number + 1), file=sys.stderr)
        for agent in agents:
            results[agent.name]["peak-rss"] = [agent.peak]
    finally:
        gc.enable()
        for agent in agents:
            agent.stop()

    parser_results = parser_throughput(parser_binary) if parser_binary else {}

    verdicts = []
    print("%-22s %16s %16s %8s  %-8s %s" % ("workload", "ours", "reference", "ratio", "target", ""))
    for key, unit, scale, target, test in ROWS:
        mine = statistics.median(results["ours"][key])
        theirs = statistics.median(results["reference"][key])
        ratio = mine / theirs
        verdict = ("met" if test(ratio) else "MISSED") if test else ""
        verdicts.append(verdict)
        print("%-22s %10.1f %-5s %10.1f %-5s %7.2fx  %-8s %s" % (
            key, mine * scale, unit, theirs * scale, unit, ratio, target, verdict))
    for label, size in [("binary", os.path.getsize), ("binary, stripped", stripped_size)]:
        mine, theirs = size(ours), size(options.reference)
        print("%-22s %10.1f %-5s %10.1f %-5s %7.2fx" % (label, mine / MiB, "MiB", theirs / MiB, "MiB", mine / theirs))
    for name, value in parser_results.items():
        target, verdict = ("", "")
        if name == "parser-large":
            target, verdict = ">= 500", "met" if value >= 500 else "MISSED"
            verdicts.append(verdict)
        print("%-22s %10.1f %-5s %16s %8s  %-8s %s" % (name, value, "MiB/s", "", "", target, verdict))
    libraries = needed_libraries(ours)
    extra = [name for name in libraries if name not in ALLOWED_LIBRARIES]
    verdict = "MISSED" if extra else "met"
    verdicts.append(verdict)
    print("%-22s %s  %s" % ("libraries", " ".join(libraries), verdict + (" (%s)" % " ".join(extra) if extra else "")))
    print("(medians of %d rounds; ratio = ours/reference; peak-16MiB = VmHWM during the 16 MiB write)"
          % options.rounds)
    missed = verdicts.count("MISSED")
    print("targets: %d met, %d missed" % (verdicts.count("met"), missed))
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
