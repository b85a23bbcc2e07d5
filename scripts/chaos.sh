#!/usr/bin/env bash
# Kill / interrupt / race loop for the runner (issue 8). Usage: scripts/chaos.sh BIN [SECONDS]
#
# In temporary projects of small `command` pipelines, repeatedly starts one to three concurrent
# `artifact run`s (some --force, some after an input edit), kills them at random points with
# SIGKILL, SIGTERM or SIGINT (sometimes twice), and after each round asserts:
#   - `artifact run` then `artifact verify` succeed;
#   - no stage ran twice at once (each stage appends start/tick/end markers with a unique id to
#     a ledger; a marker of an older instance after a newer one started is an overlap);
#   - no process is left running in the project (a leftover is found by its working folder);
#   - no stray temporary file (`.NAME.tmp.PID.N`) is left in the project or its cache.
# Bounded: stops starting rounds after SECONDS (default 60). Prints one summary line; exits 1
# on any violation.
set -u
BIN=$(realpath "${1:?usage: scripts/chaos.sh BIN [SECONDS]}")
DURATION=${2:-60}
ROOT=$(mktemp -d "${TMPDIR:-/tmp}/artifact-chaos.XXXXXX")
trap 'rm -rf "$ROOT"' EXIT

rounds=0 started=0 sigkill=0 sigterm=0 sigint=0 overlaps=0 orphans=0 strays=0 failures=0
fail() { echo "chaos: FAIL ($1) in $2" >&2; failures=$((failures + 1)); }

new_project() {
  local d=$1
  mkdir -p "$d/data"
  cat > "$d/stage.sh" <<'SH'
#!/bin/sh
# stage.sh NAME OUT [INPUT...]: a stage that takes a while and logs its life in ./ledger.
name=$1; out=$2; shift 2
id="$name.$$.$(date +%s%N)"
echo "start $id" >> ledger
for i in 1 2 3 4; do sleep 0.05; echo "tick $id" >> ledger; done
mkdir -p out
{ cat "$@" /dev/null; echo "$name"; } > "$out"
echo "end $id" >> ledger
SH
  echo 1 > "$d/data/in.txt"
  cat > "$d/pipeline.yaml" <<'YAML'
version: 1
stages:
  a: {kind: command, inputs: [stage.sh, data/in.txt], outputs: [out/a], with: {run: "sh stage.sh a out/a data/in.txt"}}
  b: {kind: command, inputs: [stage.sh, out/a], outputs: [out/b], with: {run: "sh stage.sh b out/b out/a"}}
  c: {kind: command, inputs: [stage.sh], outputs: [out/c], with: {run: "sh stage.sh c out/c"}}
  d: {kind: command, inputs: [stage.sh, out/b, out/c], outputs: [out/d], with: {run: "sh stage.sh d out/d out/b out/c"}}
YAML
}

# Processes whose working folder is inside $1 (a leftover stage), one pid a line.
procs_in() { # processes working in $1, other than this script and this function's subshell
  local p self=$BASHPID
  for p in /proc/[0-9]*; do
    [ "${p#/proc/}" = "$$" ] || [ "${p#/proc/}" = "$self" ] && continue
    case "$(readlink "$p/cwd" 2>/dev/null)" in "$1" | "$1"/*) echo "${p#/proc/}" ;; esac
  done
}

check_ledger() {
  [ -f "$1/ledger" ] || return 0
  awk '{ split($2, p, "."); s = p[1];
         if ($1 == "start") cur[s] = $2;
         else if (cur[s] != $2) { print "overlap: " $0; bad++ } }
       END { exit bad > 0 }' "$1/ledger" >&2
}

end=$((SECONDS + DURATION))
proj=
while [ "$SECONDS" -lt "$end" ]; do
  if [ $((rounds % 5)) -eq 0 ]; then
    proj="$ROOT/p$rounds"
    new_project "$proj"
  fi
  rounds=$((rounds + 1))
  cd "$proj" || exit 1
  [ $((RANDOM % 3)) -eq 0 ] && echo "$RANDOM" > data/in.txt
  pids=()
  for _ in $(seq $((1 + RANDOM % 3))); do
    args=(run -q -j $((1 + RANDOM % 4)))
    [ $((RANDOM % 2)) -eq 0 ] && args+=(--force)
    "$BIN" "${args[@]}" > /dev/null 2>&1 &
    pids+=($!)
    started=$((started + 1))
    sleep "0.0$((RANDOM % 10))"
  done
  sleep "0.$((RANDOM % 8))"
  for pid in "${pids[@]}"; do
    case $((RANDOM % 4)) in
      0) kill -KILL "$pid" 2> /dev/null && sigkill=$((sigkill + 1)) ;;
      1) kill -TERM "$pid" 2> /dev/null && sigterm=$((sigterm + 1)) ;;
      2) kill -INT "$pid" 2> /dev/null && sigint=$((sigint + 1))
         if [ $((RANDOM % 2)) -eq 0 ]; then
           sleep 0.05; kill -INT "$pid" 2> /dev/null && sigint=$((sigint + 1))
         fi ;;
      *) ;; # left to finish
    esac
    sleep "0.0$((RANDOM % 10))"
  done
  for pid in "${pids[@]}"; do wait "$pid" 2> /dev/null; done
  "$BIN" run -q > /dev/null 2> run.err || fail "run exit $?: $(head -c 300 run.err)" "$proj"
  rm -f run.err
  "$BIN" verify -q > /dev/null 2>&1 || fail "verify exit $?" "$proj"
  if ! check_ledger "$proj"; then overlaps=$((overlaps + 1)); fail "overlap" "$proj"; fi
  left=$(procs_in "$proj")
  if [ -n "$left" ]; then
    orphans=$((orphans + $(echo "$left" | wc -l)))
    fail "processes left: $(echo $left)" "$proj"
    for p in $left; do kill -KILL "$p" 2> /dev/null; done
  fi
  stray=$(find "$proj" -name '.*.tmp.*' 2> /dev/null)
  if [ -n "$stray" ]; then
    strays=$((strays + $(echo "$stray" | wc -l)))
    fail "stray temp files: $(echo $stray)" "$proj"
    rm -rf $stray
  fi
done
cd /
echo "chaos: $rounds rounds, $started runs started, signals: $sigkill SIGKILL, $sigterm SIGTERM, $sigint SIGINT; $overlaps overlaps, $orphans orphan processes, $strays stray temp files, $failures failures"
[ "$failures" -eq 0 ]
