#!/usr/bin/env python3
"""The critical path of a `cargo build --timings` report: from the last unit to finish, walk
back through the unit that unblocked it last. Usage: bench/critical_path.py REPORT.html"""
import json
import re
import sys

html = open(sys.argv[1]).read()
units = json.loads(re.search(r"const UNIT_DATA = (\[.*?\]);\n", html, re.S).group(1))
by_i = {u["i"]: u for u in units}
unblockers = {}
for u in units:
    for j in u.get("unblocked_units") or []:
        unblockers.setdefault(j, []).append(u["i"])
    for j in u.get("unblocked_rmeta_units") or []:
        unblockers.setdefault(j, []).append(u["i"])
cur = max(units, key=lambda u: u["start"] + u["duration"])
path = []
while cur is not None:
    path.append(cur)
    prev = [by_i[i] for i in unblockers.get(cur["i"], [])]
    cur = max(prev, key=lambda u: u["start"] + u["duration"]) if prev else None
print("| unit | starts at | time |")
print("|---|---|---|")
for u in reversed(path):
    what = u["name"] + (" (build script)" if "build-script" in (u.get("target") or "") else "")
    print(f"| {what} | {u['start']:.0f} s | {u['duration']:.0f} s |")
