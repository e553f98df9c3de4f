#!/usr/bin/env python3
"""Samples a process's RssAnon and RssFile (kB) every 0.2 s until it exits: `rss_sampler.py MARKER OUT`.

The process is the java process whose command line contains MARKER (waited for up to 120 s); each line of OUT is
`unix-time rss-anon-kB rss-file-kB`. Used by bench/memory-scale.sh.
"""
import os
import sys
import time


def find(marker):
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if cmd and cmd[0].endswith(b"java") and marker.encode() in cmd:
            return pid
    return None


def main(marker, out):
    deadline = time.time() + 120
    pid = None
    while pid is None and time.time() < deadline:
        pid = find(marker)
        time.sleep(0.05)
    with open(out, "w") as f:
        while pid is not None:
            try:
                fields = dict(l.split(":", 1) for l in open(f"/proc/{pid}/status").read().splitlines() if ":" in l)
            except OSError:
                break
            kb = lambda k: fields.get(k, "0 kB").split()[0]
            f.write(f"{time.time():.3f} {kb('RssAnon')} {kb('RssFile')}\n")
            time.sleep(0.2)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
