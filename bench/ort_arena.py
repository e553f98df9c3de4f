#!/usr/bin/env python3
"""The CPU arena's bytes in use through one run, from ONNX Runtime profiles: `ort_arena.py PROFILE.json...`.

ONNX Runtime's profiler records, with every node's kernel time, the arena's bytes in use after the node
(`mem_bytes_in_use`) and the bytes the arena holds (`mem_arena_held`). For the last run of each profile this prints
the bytes in use when the run starts (the session's weights, pre-packed ones included), the most in use and at which
node, and the most the arena held. Profiles come from `EngineOptions.withProfileDirectory`
(`-Dpet.bench.profile=DIR` in ScaleBenchmark and LlamaTrainStepBenchmark).
"""
import json
import sys

MIB = 1 << 20


def summary(path):
    events = json.load(open(path))
    runs = [e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"]
    if not runs:
        return f"{path}: no model_run events"
    last = max(runs, key=lambda e: e["ts"])
    start, end = last["ts"], last["ts"] + last["dur"]
    nodes = [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")
             and start <= e["ts"] <= end and "mem_bytes_in_use" in e.get("args", {})]
    if not nodes:
        return f"{path}: the last run has no node events with memory figures"
    in_use = [int(e["args"]["mem_bytes_in_use"]) for e in nodes]
    held = max(int(e["args"]["mem_arena_held"]) for e in nodes)
    top = max(range(len(nodes)), key=lambda i: in_use[i])
    name = nodes[top]["name"][: -len("_kernel_time")]
    return (f"{path}: run of {last['dur'] / 1e6:.2f} s, {len(nodes)} nodes; in use at the start {in_use[0] / MIB:.0f} MiB,"
            f" at most {in_use[top] / MIB:.0f} MiB (after {name}), arena held at most {held / MIB:.0f} MiB")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for p in sys.argv[1:]:
        print(summary(p))
