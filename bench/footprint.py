#!/usr/bin/env python3
"""Where an idle agent's resident memory goes, per mapping and per ELF section.

Usage: bench/footprint.py [--runs N] [--no-request] [--wait SECONDS] [--floor FLOOR] BINARY...

Starts each agent as bench/bench.py does (-m unix-listen on a fresh
directory), sends one guest-sync-delimited (unless --no-request), waits
1.5 s as bench.py does (ours gives its binary's clean pages back a second
after the host last spoke; --wait changes it), then reads /proc/PID/smaps
(resident and anonymous kB per mapping, files grouped) and
/proc/PID/pagemap (which pages of the binary's own sections are present,
and which of them are private copies: the pages the loader's relocations or
the program wrote). Page-table residency of clean file pages depends on
where the kernel's fault-around windows (64 KiB, aligned in virtual
addresses, so they move with the load address) fall: the figures are
medians of --runs runs (default 7). Load-independent: no timing.

--floor FLOOR measures `footprint-floor` (built like qemu-ga: `make
footprint`) first, without a request: a Swift program on GLib and libudev
that only listens, the floor under any agent built the same way.
"""
import argparse
import collections
import os
import socket
import statistics
import struct
import subprocess
import tempfile
import time
import shutil
import bisect


def start(binary, request, wait):
    directory = tempfile.mkdtemp(prefix="qga-footprint.")
    path = os.path.join(directory, "sock")
    process = subprocess.Popen([binary, "-m", "unix-listen", "-p", path, "-t", directory,
                                "-f", os.path.join(directory, "pid")],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = socket.socket(socket.AF_UNIX)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.connect(path)
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("%s did not start" % binary)
            time.sleep(0.0005)
    if request:
        client.sendall(b'{"execute":"guest-sync-delimited","arguments":{"id":0}}')
        reply = b""
        while not reply.endswith(b"\n"):
            reply += client.recv(100)
    time.sleep(wait)
    return process, client, directory


def sections(binary):
    result = []
    output = subprocess.run(["readelf", "-SW", binary], capture_output=True, text=True, check=True).stdout
    for line in output.splitlines():
        if line.strip().startswith("[") and "]" in line:
            fields = line.split("]", 1)[1].split()
            if len(fields) > 4 and fields[2] != "Address" and int(fields[2], 16):
                result.append((int(fields[2], 16), int(fields[4], 16), fields[0]))
    return sorted(result)


def measure(binary, request, wait):
    binary = os.path.realpath(binary)
    process, client, directory = start(binary, request, wait)
    try:
        pid = process.pid
        mappings = collections.defaultdict(collections.Counter)
        current = None
        for line in open("/proc/%d/smaps" % pid):
            fields = line.split()
            if "-" in fields[0] and not fields[0].endswith(":"):
                name = os.path.basename(fields[5]) if len(fields) > 5 else "[anon]"
                if len(fields) > 5 and os.path.realpath(fields[5]) == binary:
                    name = "(the binary)"
                current = mappings[name]
            elif fields[0] in ("Rss:", "Anonymous:"):
                current[fields[0][:-1]] += int(fields[1])
        status = {l.split(":")[0]: int(l.split()[1]) for l in open("/proc/%d/status" % pid)
                  if l.startswith(("VmRSS", "RssAnon", "RssFile"))}
        # The binary's sections: present pages, and private (anonymous) ones.
        table = sections(binary)
        starts = [s[0] for s in table]
        base, ranges = None, []
        for line in open("/proc/%d/maps" % pid):
            fields = line.split()
            low, high = (int(x, 16) for x in fields[0].split("-"))
            if len(fields) >= 6 and os.path.realpath(fields[5]) == binary:
                if base is None:
                    base = low - int(fields[2], 16)
                ranges.append((low, high))
            elif len(fields) == 5 and ranges and low == ranges[-1][1]:
                ranges.append((low, high))  # .bss beyond the file
        present, private = collections.Counter(), collections.Counter()
        with open("/proc/%d/pagemap" % pid, "rb") as pagemap:
            for low, high in ranges:
                pagemap.seek((low >> 12) * 8)
                data = pagemap.read(((high - low) >> 12) * 8)
                for i in range((high - low) >> 12):
                    entry = struct.unpack_from("<Q", data, i * 8)[0]
                    if not entry >> 63:
                        continue
                    address = low + i * 4096 - base
                    j = max(bisect.bisect_right(starts, address) - 1, 0)
                    name = "?"
                    for start_, size, section in table[j:]:
                        if start_ < address + 4096 and start_ + size > address:
                            name = section
                            break
                    present[name] += 4
                    if not (entry >> 61) & 1:
                        private[name] += 4
        return status, mappings, present, private, {s[2]: s[1] for s in table}
    finally:
        client.close()
        process.kill()
        process.wait()
        shutil.rmtree(directory, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--no-request", action="store_true")
    parser.add_argument("--floor")
    parser.add_argument("--wait", type=float, default=1.5, help="seconds idle before measuring")
    parser.add_argument("binaries", nargs="+")
    options = parser.parse_args()
    measured = [(options.floor, False)] if options.floor else []
    for binary, request in measured + [(binary, not options.no_request) for binary in options.binaries]:
        runs = [measure(binary, request, options.wait) for _ in range(options.runs)]
        med = lambda values: int(statistics.median(values))
        print("== %s (medians of %d runs)" % (binary, options.runs))
        for key in ("VmRSS", "RssAnon", "RssFile"):
            print("  %-8s %6d kB" % (key, med([r[0][key] for r in runs])))
        names = sorted({n for r in runs for n in r[1]}, key=lambda n: -med([r[1][n]["Rss"] for r in runs]))
        print("  %-32s %8s %8s" % ("mapping", "Rss kB", "Anon kB"))
        for name in names:
            rss = med([r[1][name]["Rss"] for r in runs])
            if rss:
                print("  %-32s %8d %8d" % (name[:32], rss, med([r[1][name]["Anonymous"] for r in runs])))
        print("  %-32s %8s %10s %10s" % ("section of the binary", "size KiB", "resident", "private"))
        sizes = runs[0][4]
        names = sorted({n for r in runs for n in r[2]}, key=lambda n: -med([r[2][n] for r in runs]))
        for name in names:
            resident = med([r[2][name] for r in runs])
            if resident:
                print("  %-32s %8d %10d %10d" % (name[:32], sizes.get(name, 0) >> 10, resident,
                                                 med([r[3][name] for r in runs])))


if __name__ == "__main__":
    main()
