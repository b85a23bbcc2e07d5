#!/usr/bin/env bash
# Engine benchmark against GNU Make (and Snakemake when installed) on the peers' DAG shape:
# 1 source -> clean -> B aggregates -> B plots + B tables (every stage a `cat`), so 1 + 3B
# stages: B = 20 gives the 61-stage DAG, 1000 gives 3,001 stages, 3333 gives 10,000.
# Each aggregate also reads a small parameter file, so "one parameter edited" reruns 3 stages.
#
# Timing: bench/timeit.py runs each command as its own process (no shell, `cd` or `date` in
# the timed region), N rounds with the tools alternating, and reports median, min and max.
# Usage: bench/engine.sh [ARTIFACT_BIN]; env: SIZES (default "20 1000 3333"), JOBS (2), N (20).
# Prints Markdown tables; the raw numbers go to $OUT (default bench/engine.json) too.
# Snakemake (`make bench` installs it: `make bench-deps`) runs at 61 stages only: at 3,001 its
# first full run took 446 s and its no-op 5.2 s (session 13, once by hand), so N rounds of it
# would take hours.
set -euo pipefail
BIN=${1:-${CARGO_TARGET_DIR:-target}/debug/artifact}
BIN=$(realpath "$BIN")
HERE=$(cd "$(dirname "$0")" && pwd)
JOBS=${JOBS:-2}
N=${N:-20}
SIZES=${SIZES:-"20 1000 3333"}
OUT=${OUT:-$HERE/engine.json}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
have_snakemake=$(command -v snakemake >/dev/null 2>&1 && echo 1 || echo 0)
[ "$have_snakemake" = 1 ] || echo "note: snakemake not on PATH; its column stays empty (make bench-deps)" >&2

gen() { # gen DIR B: pipeline.yaml, Makefile and Snakefile of the same DAG
  python3 - "$1" "$2" <<'PY'
import os, sys
d, b = sys.argv[1], int(sys.argv[2])
w = len(str(b))
os.makedirs(f"{d}/data", exist_ok=True); os.makedirs(f"{d}/params", exist_ok=True)
with open(f"{d}/data/raw.txt", "w") as f:
    f.write("id,value\n" + "".join(f"{i},{i * 7 % 13}\n" for i in range(1, 201)))
ids = [f"{i:0{w}d}" for i in range(1, b + 1)]
y = ["version: 1", "stages:", "  clean:", "    kind: command", "    inputs: [data/raw.txt]",
     "    outputs: [out/clean.txt]", '    with: { run: "mkdir -p out && cat data/raw.txt > out/clean.txt" }']
# Make at its best: no built-in implicit rules (otherwise it searches them for every
# prerequisite without a rule, which made its no-op 15x slower at 3,001 stages).
m = ["MAKEFLAGS += -r", ".SUFFIXES:", ".PHONY: all", "all: " + " ".join(f"out/plot_{i}.txt out/table_{i}.txt" for i in ids),
     "out/clean.txt: data/raw.txt", "\tmkdir -p out && cat data/raw.txt > out/clean.txt"]
for i in ids:
    open(f"{d}/params/agg_{i}.txt", "w").write(f"p{i}\n")
    y += [f"  agg_{i}:", "    kind: command", f"    inputs: [out/clean.txt, params/agg_{i}.txt]",
          f"    outputs: [out/agg_{i}.txt]",
          f'    with: {{ run: "cat out/clean.txt params/agg_{i}.txt > out/agg_{i}.txt" }}']
    for k in ("plot", "table"):
        y += [f"  {k}_{i}:", "    kind: command", f"    inputs: [out/agg_{i}.txt]",
              f"    outputs: [out/{k}_{i}.txt]",
              f'    with: {{ run: "cat out/agg_{i}.txt > out/{k}_{i}.txt" }}']
    m += [f"out/agg_{i}.txt: out/clean.txt params/agg_{i}.txt",
          f"\tcat out/clean.txt params/agg_{i}.txt > out/agg_{i}.txt"]
    for k in ("plot", "table"):
        m += [f"out/{k}_{i}.txt: out/agg_{i}.txt", f"\tcat out/agg_{i}.txt > out/{k}_{i}.txt"]
open(f"{d}/pipeline.yaml", "w").write("\n".join(y) + "\n")
open(f"{d}/Makefile", "w").write("\n".join(m) + "\n")
open(f"{d}/Snakefile", "w").write(f'''IDS = [f"{{i:0{w}d}}" for i in range(1, {b + 1})]
rule all:
    input: expand("out/plot_{{i}}.txt", i=IDS), expand("out/table_{{i}}.txt", i=IDS)
rule clean:
    input: "data/raw.txt"
    output: "out/clean.txt"
    shell: "cat {{input}} > {{output}}"
rule agg:
    input: "out/clean.txt", "params/agg_{{i}}.txt"
    output: "out/agg_{{i}}.txt"
    shell: "cat {{input}} > {{output}}"
rule plot:
    input: "out/agg_{{i}}.txt"
    output: "out/plot_{{i}}.txt"
    shell: "cat {{input}} > {{output}}"
rule table:
    input: "out/agg_{{i}}.txt"
    output: "out/table_{{i}}.txt"
    shell: "cat {{input}} > {{output}}"
''')
PY
}

echo "{" > "$OUT.tmp"
first=1
for b in $SIZES; do
  stages=$((1 + 3 * b))
  p1=$(printf "%0${#b}d" 1)
  for t in a m s; do rm -rf "$work/$t"; gen "$work/$t" "$b"; done
  (cd "$work/a" && "$BIN" run -q -j "$JOBS")
  (cd "$work/m" && make -s -j"$JOBS")
  snake=0
  if [ "$have_snakemake" = 1 ] && [ "$b" -le 20 ]; then
    snake=1; (cd "$work/s" && snakemake -c"$JOBS" -q >/dev/null 2>&1)
  fi
  edit="echo \"p\$(od -An -N4 -tu4 /dev/urandom)\" > params/agg_$p1.txt"
  src="echo \"\$(od -An -N4 -tu4 /dev/urandom)\" >> data/raw.txt"
  cases() { # cases SCENARIO PREP ARTIFACT_EXTRA MAKE_EXTRA SNAKE_EXTRA
    python3 - "$work" "$BIN" "$JOBS" "$snake" "$@" <<'PY'
import json, sys
work, bin_, jobs, snake, scen, prep, a_x, m_x, s_x = sys.argv[1:]
c = [{"name": "artifact", "cwd": f"{work}/a", "prepare": prep,
      "argv": [bin_, "run", "-q", "-j", jobs] + a_x.split()},
     {"name": "make", "cwd": f"{work}/m", "prepare": prep,
      "argv": ["make", "-s", f"-j{jobs}"] + m_x.split()}]
if snake == "1":
    c.append({"name": "snakemake", "cwd": f"{work}/s", "prepare": prep,
              "argv": ["snakemake", f"-c{jobs}", "-q"] + s_x.split()})
print(json.dumps(c))
PY
  }
  # Full runs: N rounds where a run is cheap (61 stages: about 0.15 s; 5 rounds gave medians
  # 20 % apart between two runs of `make bench`), 3 at 3,001 and 10,000 stages (5-20 s a run).
  runs_full=$(( b > 20 ? 3 : N ))
  for scen in noop edit source forced; do
    case $scen in
      noop) spec=$(cases "$scen" "" "" "" ""); n=$N ;;
      edit) spec=$(cases "$scen" "$edit" "" "" ""); n=$N ;;
      source) spec=$(cases "$scen" "$src" "" "" ""); n=$runs_full ;;
      forced) spec=$(cases "$scen" "" "--force" "-B" "--forceall"); n=$runs_full ;;
    esac
    [ "${SKIP_FULL:-0}" = 1 ] && [ "$b" -gt 20 ] && { [ "$scen" = source ] || [ "$scen" = forced ]; } && continue
    res=$(echo "$spec" | python3 "$HERE/timeit.py" --runs "$n" --warmup 1)
    [ $first = 1 ] || echo "," >> "$OUT.tmp"; first=0
    printf '"%s/%s": %s' "$stages" "$scen" "$res" >> "$OUT.tmp"
  done
done
echo "}" >> "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
python3 - "$OUT" "$JOBS" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); jobs = sys.argv[2]
names = {"noop": "no-op", "edit": "one parameter edited (3 stages rerun)",
         "source": "source edited (every stage reruns)", "forced": "forced full run"}
print(f"| stages | scenario (-j{jobs}; median [min-max] of whole processes) | artifact | GNU make | artifact / make | Snakemake | Snakemake / artifact |")
print("|---|---|---|---|---|---|---|")
fmt = lambda c: f"{c['median_ms']:.1f} ms [{c['min_ms']:.1f}-{c['max_ms']:.1f}]" if c['median_ms'] < 1000 else f"{c['median_ms']/1000:.2f} s [{c['min_ms']/1000:.2f}-{c['max_ms']/1000:.2f}]"
for k, v in r.items():
    stages, scen = k.split("/")
    s = fmt(v["snakemake"]) if "snakemake" in v else "-"
    ratio = v["artifact"]["median_ms"] / v["make"]["median_ms"]
    rs = f'{v["snakemake"]["median_ms"] / v["artifact"]["median_ms"]:.0f}x' if "snakemake" in v else "-"
    print(f"| {int(stages):,} | {names[scen]} | {fmt(v['artifact'])} | {fmt(v['make'])} | {ratio:.2f}x | {s} | {rs} |")
PY
