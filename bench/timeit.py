#!/usr/bin/env python3
"""Whole-process timing, hyperfine-style, with the tools alternating.

Reads a JSON list of cases on stdin, each {"name", "cwd", "argv", "prepare"}:
- `argv` is executed directly (no shell, no `cd`, no `date` in the timed region: the clock is
  read in this process immediately around spawn + wait of exactly that command);
- `prepare` (optional) is a shell snippet run in `cwd` before each timed run, untimed, followed
  by an untimed `sync` (for every case alike), so writeback of the previous run does not land in
  the next timed one.

Rounds: each round runs every case once, and the order rotates between rounds, so that no tool
always runs first (or right after another's writes). `--warmup` rounds are run and discarded.
Every timed command must exit 0, or the benchmark stops (a failing tool is not a fast tool).

Prints one JSON object: {name: {"runs", "median_ms", "min_ms", "max_ms"}}.
Why not hyperfine: hyperfine runs all runs of one command before the next command; alternating
needs one driver over all tools.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=1)
    args = ap.parse_args()
    cases = json.load(sys.stdin)
    times = {c["name"]: [] for c in cases}
    for rnd in range(args.warmup + args.runs):
        k = rnd % len(cases)
        for c in cases[k:] + cases[:k]:
            if c.get("prepare"):
                subprocess.run(["/bin/sh", "-c", c["prepare"]], cwd=c["cwd"], check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            os.sync()
            t0 = time.perf_counter_ns()
            rc = subprocess.run(c["argv"], cwd=c["cwd"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE).returncode
            t1 = time.perf_counter_ns()
            if rc != 0:
                print(f"timeit: {c['name']} exited {rc}: {' '.join(c['argv'])} in {c['cwd']}",
                      file=sys.stderr)
                return 1
            if rnd >= args.warmup:
                times[c["name"]].append((t1 - t0) / 1e6)
    out = {
        name: {
            "runs": len(t),
            "median_ms": round(statistics.median(t), 3),
            "min_ms": round(min(t), 3),
            "max_ms": round(max(t), 3),
        }
        for name, t in times.items()
    }
    json.dump(out, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
