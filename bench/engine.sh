#!/usr/bin/env bash
# Engine benchmark against GNU Make on the peers' 61-stage DAG
# (1 source -> clean -> 20 aggregates -> 20 plots + 20 tables; every stage a `cat`).
# Each aggregate also reads a small parameter file, so "one-input edit" edits one of those
# (3 stages rerun) as well as the source (all 61 rerun).
# Usage: bench/engine.sh [ARTIFACT_BIN] ; prints a Markdown table. Needs GNU make.
# Each timed run is preceded (untimed) by its preparation and a `sync`.
set -euo pipefail
BIN=${1:-${CARGO_TARGET_DIR:-target}/debug/artifact}
BIN=$(realpath "$BIN")
JOBS=${JOBS:-2}
N=${N:-10}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

gen() {
  local dir=$1
  mkdir -p "$dir/data" "$dir/params" "$dir/out"
  printf 'id,value\n' > "$dir/data/raw.txt"
  for i in $(seq 1 200); do printf '%d,%d\n' "$i" $((i * 7 % 13)) >> "$dir/data/raw.txt"; done
  {
    echo "version: 1"
    echo "stages:"
    echo "  clean:"
    echo "    kind: command"
    echo "    inputs: [data/raw.txt]"
    echo "    outputs: [out/clean.txt]"
    echo "    with: { run: \"cat data/raw.txt > out/clean.txt\" }"
  } > "$dir/pipeline.yaml"
  {
    echo ".PHONY: all"
    echo "all: $(for i in $(seq -w 1 20); do printf 'out/plot_%s.txt out/table_%s.txt ' "$i" "$i"; done)"
    echo "out/clean.txt: data/raw.txt"
    printf '\tcat data/raw.txt > out/clean.txt\n'
  } > "$dir/Makefile"
  for i in $(seq -w 1 20); do
    echo "p$i" > "$dir/params/agg_$i.txt"
    cat >> "$dir/pipeline.yaml" <<YAML
  agg_$i:
    kind: command
    inputs: [out/clean.txt, params/agg_$i.txt]
    outputs: [out/agg_$i.txt]
    with: { run: "cat out/clean.txt params/agg_$i.txt > out/agg_$i.txt" }
  plot_$i:
    kind: command
    inputs: [out/agg_$i.txt]
    outputs: [out/plot_$i.txt]
    with: { run: "cat out/agg_$i.txt > out/plot_$i.txt" }
  table_$i:
    kind: command
    inputs: [out/agg_$i.txt]
    outputs: [out/table_$i.txt]
    with: { run: "cat out/agg_$i.txt > out/table_$i.txt" }
YAML
    {
      echo "out/agg_$i.txt: out/clean.txt params/agg_$i.txt"
      printf '\tcat out/clean.txt params/agg_%s.txt > out/agg_%s.txt\n' "$i" "$i"
      echo "out/plot_$i.txt: out/agg_$i.txt"
      printf '\tcat out/agg_%s.txt > out/plot_%s.txt\n' "$i" "$i"
      echo "out/table_$i.txt: out/agg_$i.txt"
      printf '\tcat out/agg_%s.txt > out/table_%s.txt\n' "$i" "$i"
    } >> "$dir/Makefile"
  done
}

# The same DAG as a Snakefile (wildcards), for Snakemake when it is installed.
gen_snakefile() {
  cat > "$1/Snakefile" <<'SMK'
IDS = [f"{i:02d}" for i in range(1, 21)]
rule all:
    input: expand("out/plot_{i}.txt", i=IDS), expand("out/table_{i}.txt", i=IDS)
rule clean:
    input: "data/raw.txt"
    output: "out/clean.txt"
    shell: "cat {input} > {output}"
rule agg:
    input: "out/clean.txt", "params/agg_{i}.txt"
    output: "out/agg_{i}.txt"
    shell: "cat {input} > {output}"
rule plot:
    input: "out/agg_{i}.txt"
    output: "out/plot_{i}.txt"
    shell: "cat {input} > {output}"
rule table:
    input: "out/agg_{i}.txt"
    output: "out/table_{i}.txt"
    shell: "cat {input} > {output}"
SMK
}

# median wall time in seconds of N runs of "prep; cmd" (prep untimed)
measure() {
  local dir=$1 prep=$2 cmd=$3 runs=$4 t=()
  for _ in $(seq 1 "$runs"); do
    (cd "$dir" && eval "$prep") >/dev/null 2>&1
    # Flush dirty pages left by the previous iteration (untimed, for every tool alike), so that
    # background writeback does not land inside the next timed run.
    sync
    local s e
    s=$(date +%s%N)
    (cd "$dir" && eval "$cmd") >/dev/null 2>&1
    e=$(date +%s%N)
    t+=($(( e - s )))
  done
  printf '%s\n' "${t[@]}" | sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.4f", m/1e9}'
}

gen "$work/a"
gen "$work/m"
(cd "$work/a" && "$BIN" run -q -j "$JOBS")
(cd "$work/m" && make -s -j"$JOBS")
flip='i=$((i+1)); echo "p$RANDOM$RANDOM" > params/agg_07.txt'
src='printf "%s\n" "$RANDOM$RANDOM" >> data/raw.txt'

a_noop=$(measure "$work/a" ":" "'$BIN' run -q -j $JOBS" "$N")
m_noop=$(measure "$work/m" ":" "make -s -j$JOBS" "$N")
a_edit=$(measure "$work/a" "$flip" "'$BIN' run -q -j $JOBS" "$N")
m_edit=$(measure "$work/m" "$flip" "make -s -j$JOBS" "$N")
a_src=$(measure "$work/a" "$src" "'$BIN' run -q -j $JOBS" 5)
m_src=$(measure "$work/m" "$src" "make -s -j$JOBS" 5)
a_force=$(measure "$work/a" ":" "'$BIN' run -q --force -j $JOBS" 5)
m_force=$(measure "$work/m" ":" "make -s -B -j$JOBS" 5)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
s_noop=- s_edit=- s_src=- s_force=-
if command -v snakemake >/dev/null 2>&1; then
  gen "$work/s"
  gen_snakefile "$work/s"
  SM="snakemake -c$JOBS -q"
  (cd "$work/s" && $SM) >/dev/null 2>&1
  s_noop=$(measure "$work/s" ":" "$SM" 3)
  s_edit=$(measure "$work/s" "$flip" "$SM" 3)
  s_src=$(measure "$work/s" "$src" "$SM" 3)
  s_force=$(measure "$work/s" ":" "$SM --forceall" 3)
fi
sec() { [ "$1" = - ] && echo "not installed" || echo "$1 s"; }
echo "| scenario (61 stages, -j$JOBS, median) | artifact | GNU make | artifact / make | Snakemake |"
echo "|---|---|---|---|---|"
echo "| no-op | ${a_noop} s | ${m_noop} s | $(ratio "$a_noop" "$m_noop") | $(sec "$s_noop") |"
echo "| one parameter file edited (3 stages rerun) | ${a_edit} s | ${m_edit} s | $(ratio "$a_edit" "$m_edit") | $(sec "$s_edit") |"
echo "| source edited (all 61 rerun) | ${a_src} s | ${m_src} s | $(ratio "$a_src" "$m_src") | $(sec "$s_src") |"
echo "| forced full run | ${a_force} s | ${m_force} s | $(ratio "$a_force" "$m_force") | $(sec "$s_force") |"
