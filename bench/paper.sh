#!/usr/bin/env bash
# Paper pipeline benchmark.
# 1. Real data (929 bugs) with the reviewer's build (the dev profile that `make artifact` makes):
#    cold (no cache) and no-op, whole processes.
# 2. Data scale with the benchmark build (`--profile bench-opt`, built only by `make bench`): a
#    seeded synthetic dataset with the paper's schema at 10^4 .. 10^7 rows, cold at -j 2: wall
#    time and the process's peak resident memory (GNU time), then per-stage time and peak
#    memory at -j 1 for 10^6 rows (each stage's peak is its own at -j 1).
# Usage: bench/paper.sh [DEV_BIN] [OPT_BIN]   (needs python3 and GNU time; the mirror folder or
# the network for the real data). ROWS overrides the sizes.
set -euo pipefail
T=${CARGO_TARGET_DIR:-target}
BIN=$(realpath "${1:-$T/debug/artifact}")
OPT=$(realpath "${2:-$T/bench-opt/artifact}")
REPO=$(cd "$(dirname "$0")/.." && pwd)
ROWS=${ROWS:-"10000 100000 1000000 10000000"}
if [ -z "${ARTIFACT_MIRROR:-}" ] && [ -d "$REPO/../shared/upstream/bugs-in-LLM-inference-engines" ]; then
  export ARTIFACT_MIRROR="$REPO/../shared/upstream/bugs-in-LLM-inference-engines"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

copy_project() {
  mkdir -p "$1/data"
  cp "$REPO/pipeline.yaml" "$1/"
  cp "$REPO/data/taxonomy.yaml" "$REPO/data/claims.yaml" "$REPO/data/corrections.yaml" "$1/data/"
  cp -r "$REPO/templates" "$1/"
}

echo "## Real data (929 bugs), $(nproc) cores, dev build"
echo
copy_project "$work/real"
reset="rm -rf .artifact results figures paper-tables data/raw data/tidy pipeline.lock"
cold=$(python3 "$REPO/bench/timeit.py" --runs 5 --warmup 1 <<JSON
[{"name": "cold", "cwd": "$work/real", "prepare": "$reset", "argv": ["$BIN", "run", "-q"]}]
JSON
)
noop=$(python3 "$REPO/bench/timeit.py" --runs 20 --warmup 2 <<JSON
[{"name": "noop", "cwd": "$work/real", "argv": ["$BIN", "run", "-q"]}]
JSON
)
# Stages after matrix expansion (a `matrix:` entry in the YAML is several stages).
stages=$(cd "$work/real" && "$BIN" status | grep -c "^up to date")
python3 - "$cold" "$noop" "$stages" <<'PY'
import json, sys
c, n = json.loads(sys.argv[1])["cold"], json.loads(sys.argv[2])["noop"]
print("| run | median | min | max |")
print("|---|---|---|---|")
print(f"| cold ({sys.argv[3]} stages, no cache, -j 2) | {c['median_ms']/1000:.3f} s | {c['min_ms']/1000:.3f} s | {c['max_ms']/1000:.3f} s |")
print(f"| no-op | {n['median_ms']:.1f} ms | {n['min_ms']:.1f} ms | {n['max_ms']:.1f} ms |")
print()
PY

# Everything a run makes from the synthetic dataset, so that the next run is cold.
clear_outputs() { (cd "$1" && rm -rf .artifact results figures paper-tables data/tidy pipeline.lock); }

echo "## Data scale, bench-opt build, cold at -j 2"
echo
echo "| rows | wall (median [min-max]) | per 10^6 rows | peak RSS (whole run, largest) |"
echo "|---|---|---|---|"
for n in $ROWS; do
  d="$work/s$n"
  copy_project "$d"
  # The synthetic data replaces the pinned download: drop the fetch stage, write its output.
  python3 - "$d/pipeline.yaml" <<'PY'
import re, sys
p = sys.argv[1]
s = open(p).read()
s = re.sub(r"\n  fetch_dataset:\n(    .*\n|\n)*?(?=  [a-z])", "\n", s)
open(p, "w").write(s)
PY
  mkdir -p "$d/data/raw"
  "$OPT" synth --taxonomy "$d/data/taxonomy.yaml" --rows "$n" --seed 7 -o "$d/data/raw/dataset.csv"
  # Cold runs: 3 up to 10^6 rows (a run's time moves by about 10 % on this machine; the median
  # is reported with the range), 1 above. Peak RSS: the largest of the runs.
  reps=$(( n <= 1000000 ? 3 : 1 ))
  : > "$d/times.txt"
  for _ in $(seq "$reps"); do
    clear_outputs "$d"
    sync
    /usr/bin/time -f "%e %M" -o "$d/time.txt" "$OPT" -f "$d/pipeline.yaml" run -q -j 2
    cat "$d/time.txt" >> "$d/times.txt"
  done
  python3 - "$n" "$d/times.txt" <<'PY'
import statistics, sys
n = int(sys.argv[1])
runs = [tuple(map(float, l.split())) for l in open(sys.argv[2]) if l.strip()]
walls = sorted(w for w, _ in runs)
med, kib = statistics.median(walls), max(k for _, k in runs)
spread = f" [{walls[0]:.2f}-{walls[-1]:.2f}], {len(walls)} runs" if len(walls) > 1 else ", 1 run"
print(f"| {n:,} | {med:.2f} s{spread} | {med / (n / 1e6):.2f} s | {kib / 1024:.0f} MiB |")
PY
  if [ "$n" = 1000000 ]; then
    clear_outputs "$d"
    "$OPT" -f "$d/pipeline.yaml" --json run -j 1 > "$d/events.jsonl"
    cp "$d/events.jsonl" "$work/events-1e6.jsonl"
  fi
  rm -rf "$d"
done
echo
if [ -f "$work/events-1e6.jsonl" ]; then
  echo "## 10^6 rows, per stage at -j 1 (bench-opt build)"
  echo
  python3 - "$work/events-1e6.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rows = [r for r in rows if r.get("event") == "finished"]
print("| stage | kind | time | peak RSS |")
print("|---|---|---|---|")
for r in sorted(rows, key=lambda r: -r["millis"])[:8]:
    rss = r.get("peak_rss_kib")
    print(f"| {r['stage']} | {r['kind']} | {r['millis'] / 1000:.3f} s | {rss / 1024:.0f} MiB |" if rss else f"| {r['stage']} | {r['kind']} | {r['millis'] / 1000:.3f} s | - |")
bad = [r["stage"] for r in rows if r["status"] not in ("ran", "cached", "restored")]
total = sum(r["millis"] for r in rows) / 1000
print(f"\n(8 slowest of {len(rows)} stages; sum of stage times {total:.2f} s{'; FAILED: ' + ', '.join(bad) if bad else ''})\n")
PY
fi
