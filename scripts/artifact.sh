#!/usr/bin/env bash
# `make artifact`: build, fetch the pinned dataset, run the paper pipeline, verify the lock,
# check the paper's claims, write the reviewer report; end with the verdict and total time.
set -uo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN="$TARGET_DIR/debug/artifact"
t0=$(date +%s.%N)
step() { printf '\n== %s\n' "$*"; }
elapsed() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f s", b - a }'; }

step "build (debug profile; the build \`make test\` uses too)"
$CARGO build --locked || { echo "make artifact: build failed"; exit 1; }
echo "built in $(elapsed)"

step "run the pipeline (mirror: ${ARTIFACT_MIRROR:-none; downloading})"
"$BIN" run || { rc=$?; echo "make artifact: the pipeline failed (exit $rc); see the errors above"; exit $rc; }

step "verify outputs against pipeline.lock"
"$BIN" verify || { rc=$?; echo "make artifact: outputs differ from pipeline.lock (exit $rc)"; exit $rc; }

step "check the paper's claims"
"$BIN" check
check_rc=$?

step "report"
"$BIN" report || exit $?

echo
if [ "$check_rc" -eq 0 ]; then
  verdict="RESULTS REPRODUCED (every checkable claim passes or is a documented discrepancy)"
else
  verdict="NOT REPRODUCED: unexpected claim mismatches (exit $check_rc), see REPORT.md"
fi
echo "verdict: $verdict"
echo "report:  $(pwd)/REPORT.md and $(pwd)/report.html"
echo "total:   $(elapsed) (build included)"
exit "$check_rc"
