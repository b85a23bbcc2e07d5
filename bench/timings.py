#!/usr/bin/env python3
"""Summarises a `cargo build --timings` report (the HTML cargo writes) as Markdown: wall time,
summed unit time, unit count, and the N slowest units. Usage: bench/timings.py REPORT.html [N]"""
import json
import re
import sys

html = open(sys.argv[1]).read()
n = int(sys.argv[2]) if len(sys.argv) > 2 else 15
units = json.loads(re.search(r"const UNIT_DATA = (\[.*?\]);\n", html, re.S).group(1))
wall = max(u["start"] + u["duration"] for u in units)
total = sum(u["duration"] for u in units)
polars = sum(u["duration"] for u in units if u["name"].startswith("polars"))
print(f"wall {wall:.0f} s, {len(units)} units, summed unit time {total:.0f} s, "
      f"of which polars-* {polars:.0f} s ({100 * polars / total:.0f} %)\n")
print("| unit | time | starts at |")
print("|---|---|---|")
for u in sorted(units, key=lambda u: -u["duration"])[:n]:
    what = u["name"] + (" (build script)" if "build-script" in (u.get("target") or "") else "")
    print(f"| {what} | {u['duration']:.0f} s | {u['start']:.0f} s |")
