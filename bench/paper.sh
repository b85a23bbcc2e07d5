#!/usr/bin/env bash
# Paper pipeline benchmark: the real data (cold: no cache, binary already built; and no-op), then
# a seeded synthetic dataset with the same schema at 10^4, 10^5 and 10^6 rows (cold, -j 1 so that
# each stage's peak memory is its own): total time, and time and peak RSS per stage.
# Usage: bench/paper.sh [ARTIFACT_BIN]   (needs python3; the mirror folder or network for real data)
set -euo pipefail
BIN=${1:-${CARGO_TARGET_DIR:-target}/debug/artifact}
BIN=$(realpath "$BIN")
REPO=$(cd "$(dirname "$0")/.." && pwd)
ROWS=${ROWS:-"10000 100000 1000000"}
# Like the Makefile: the shared mirror beside the checkout, when no mirror is given.
if [ -z "${ARTIFACT_MIRROR:-}" ] && [ -d "$REPO/../shared/upstream/bugs-in-LLM-inference-engines" ]; then
  export ARTIFACT_MIRROR="$REPO/../shared/upstream/bugs-in-LLM-inference-engines"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

copy_project() {
  mkdir -p "$1/data"
  cp "$REPO/pipeline.yaml" "$1/"
  cp "$REPO/data/taxonomy.yaml" "$REPO/data/claims.yaml" "$1/data/"
  cp -r "$REPO/templates" "$1/"
}
now() { date +%s%N; }
secs() { awk -v n="$1" 'BEGIN { printf "%.3f", n / 1e9 }'; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }

echo "## Real data (929 bugs), $(nproc) cores"
echo
copy_project "$work/real"
cold=()
for _ in 1 2 3; do
  (cd "$work/real" && rm -rf .artifact results figures paper-tables data/raw pipeline.lock)
  s=$(now); (cd "$work/real" && "$BIN" run -q); e=$(now); cold+=($((e - s)))
done
noop=()
for _ in $(seq 1 10); do s=$(now); (cd "$work/real" && "$BIN" run -q); e=$(now); noop+=($((e - s))); done
stages=$(grep -c "^  [a-z_0-9]*:$" "$work/real/pipeline.yaml")
echo "| run | median wall time |"
echo "|---|---|"
echo "| cold ($stages stages, no cache, -j $(nproc)) | $(secs "$(printf '%s\n' "${cold[@]}" | median)") s |"
echo "| no-op | $(secs "$(printf '%s\n' "${noop[@]}" | median)") s |"
echo

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
  "$BIN" synth --taxonomy "$d/data/taxonomy.yaml" --rows "$n" --seed 7 -o "$d/data/raw/dataset.csv"
  # Cold wall time at the default parallelism, then a second cold run with -j 1, where each
  # stage's peak resident memory is its own (the engine resets the high-water mark per stage).
  s=$(now); (cd "$d" && "$BIN" run -q); e=$(now)
  (cd "$d" && rm -rf .artifact results figures paper-tables pipeline.lock && "$BIN" --json run -j 1 > "$d/events.jsonl")
  echo "## Synthetic, $n rows: cold $(secs $((e - s))) s at -j $(nproc)"
  echo
  python3 - "$d/events.jsonl" <<'PY'
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
peak = max((r.get("peak_rss_kib") or 0) for r in rows) / 1024
print(f"\n(8 slowest of {len(rows)} stages at -j 1; sum of stage times {total:.2f} s; largest stage peak {peak:.0f} MiB{'; FAILED: ' + ', '.join(bad) if bad else ''})\n")
PY
done
