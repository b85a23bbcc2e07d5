#!/usr/bin/env bash
# Scale-out benchmark (BENCHMARKS.md "Scale-out"); run it through the one-node cluster script:
#   bash scripts/scaleout/with-slurm.sh bash bench/scaleout.sh [BIN]     (or: make bench-scaleout)
# 1. 20 independent `command` stages, cold, through SLURM (executor: slurm, squeue polled every
#    POLL seconds) against the same 20 stages run locally: per-job overhead.
# 2. A second clone of the paper pipeline with an empty local cache, fetched from a real nginx
#    remote cache (0 stages executed), against the same clone computed locally (cold).
# Needs root (SLURM), nginx + htpasswd, python3. Whole processes, timed by bench/timeit.py.
set -euo pipefail
T=${CARGO_TARGET_DIR:-target}
BIN=$(realpath "${1:-$T/debug/artifact}")
REPO=$(cd "$(dirname "$0")/.." && pwd)
POLL=${POLL:-0.2}
RUNS=${RUNS:-5}
[ -n "${SLURM_CONF:-}" ] || { echo "no SLURM_CONF: run through scripts/scaleout/with-slurm.sh" >&2; exit 2; }
if [ -z "${ARTIFACT_MIRROR:-}" ] && [ -d "$REPO/../shared/upstream/bugs-in-LLM-inference-engines" ]; then
  export ARTIFACT_MIRROR="$REPO/../shared/upstream/bugs-in-LLM-inference-engines"
fi
work=$(mktemp -d); chmod 755 "$work"
NGINX_PID=""
cleanup() {
  if [ -n "$NGINX_PID" ]; then
    kill -QUIT "$NGINX_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$NGINX_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$NGINX_PID" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

ms() { python3 -c "import json,sys; d=json.load(sys.stdin); print(d['$1']['median_ms'])"; }

# ---- 1. 20 command stages: SLURM against local ----
mkdir -p "$work/home/.config/artifact"
printf 'slurm:\n  poll_secs: %s\n' "$POLL" > "$work/home/.config/artifact/config.yaml"
gen() {  # gen DIR HINT
  mkdir -p "$1"
  { echo "version: 1"; echo "stages:"
    for i in $(seq -w 1 20); do
      printf '  s%s:\n    kind: command\n%s    outputs: [out/%s.txt]\n    with: { run: "mkdir -p out && echo %s > out/%s.txt" }\n' \
        "$i" "$2" "$i" "$i" "$i"
    done; } > "$1/pipeline.yaml"
}
gen "$work/local" ""
gen "$work/slurm" "    executor: slurm\n"
sed -i 's/\\n/\n/' "$work/slurm/pipeline.yaml"
reset="rm -rf .artifact out pipeline.lock"
r=$(python3 "$REPO/bench/timeit.py" --runs "$RUNS" --warmup 1 <<JSON
[{"name": "local", "cwd": "$work/local", "prepare": "$reset", "argv": ["env", "HOME=$work/home", "$BIN", "run", "-q"]},
 {"name": "slurm", "cwd": "$work/slurm", "prepare": "$reset", "argv": ["env", "HOME=$work/home", "$BIN", "run", "-q"]},
 {"name": "slurm-j20", "cwd": "$work/slurm", "prepare": "$reset", "argv": ["env", "HOME=$work/home", "$BIN", "run", "-q", "-j", "20"]}]
JSON
)
loc=$(echo "$r" | ms local); sl=$(echo "$r" | ms slurm); sl20=$(echo "$r" | ms slurm-j20)
echo "## 20 command stages, cold, $(nproc) cores (SLURM node: $(nproc) CPUs, squeue every ${POLL} s)"
echo
echo "| executor | median wall (ms) | per stage (ms) |"
echo "| --- | ---: | ---: |"
echo "| local, -j $(nproc) (default) | $loc | $(python3 -c "print(round($loc/20,1))") |"
echo "| slurm, -j $(nproc) (default: 2 jobs in flight) | $sl | $(python3 -c "print(round($sl/20,1))") |"
echo "| slurm, -j 20 (20 jobs in flight) | $sl20 | $(python3 -c "print(round($sl20/20,1))") |"
echo
echo "SLURM overhead at the default -j: $(python3 -c "print(round(($sl-$loc)/20,1))") ms of wall time per job ($RUNS runs, medians; raw: $r)"
echo

# ---- 2. second clone of the paper, fetched from an nginx remote cache ----
D="$work/nginx"; mkdir -p "$D/store/cas" "$D/store/ac" "$D/store/.tmp" "$D/tmp" "$D/logs"
USER_LINE=""
if [ "$(id -u)" = 0 ]; then USER_LINE="user www-data www-data;"; chown -R www-data:www-data "$D/store"; fi
htpasswd -bcB "$D/htpasswd" ci s3cret 2>/dev/null; chmod 644 "$D/htpasswd"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$D/nginx.conf" <<CONF
$USER_LINE
worker_processes 1; daemon off; master_process on; pid $D/nginx.pid;
error_log $D/logs/error.log warn;
events { worker_connections 256; }
http {
  access_log off; client_body_temp_path $D/store/.tmp; proxy_temp_path $D/tmp/p;
  fastcgi_temp_path $D/tmp/f; uwsgi_temp_path $D/tmp/u; scgi_temp_path $D/tmp/s;
  default_type application/octet-stream; client_max_body_size 0; sendfile on;
  server { listen 127.0.0.1:$PORT; root $D/store;
    location ~ "^/(cas|ac)/[0-9a-f]{64}\$" { dav_methods PUT; create_full_put_path on;
      dav_access user:rw group:r all:r;
      limit_except GET { auth_basic "artifact cache"; auth_basic_user_file $D/htpasswd; } }
    location / { return 404; } } }
CONF
nginx -p "$D" -c "$D/nginx.conf" -e "$D/logs/error.log" &
NGINX_PID=$!
until curl -s -o /dev/null "http://127.0.0.1:$PORT/"; do sleep 0.02; done
URL="http://127.0.0.1:$PORT"
copy_project() {
  mkdir -p "$1/data"
  cp "$REPO/pipeline.yaml" "$1/"
  cp "$REPO/data/taxonomy.yaml" "$REPO/data/claims.yaml" "$REPO/data/corrections.yaml" "$1/data/"
  cp -r "$REPO/templates" "$1/"
}
copy_project "$work/a"; copy_project "$work/b"; copy_project "$work/c"
(cd "$work/a" && ARTIFACT_REMOTE_TOKEN=ci:s3cret HOME="$work/home" "$BIN" run -q --remote "$URL" --remote-write)
reset="rm -rf .artifact results figures paper-tables data/raw data/tidy pipeline.lock"
check=$(cd "$work/b" && HOME="$work/home" "$BIN" run --offline --remote "$URL" | tail -1)
echo "$check" | grep -q " 0 ran, " || { echo "clone B executed stages: $check" >&2; exit 1; }
(cd "$work/b" && eval "$reset")
r=$(python3 "$REPO/bench/timeit.py" --runs "$RUNS" --warmup 1 <<JSON
[{"name": "fetched", "cwd": "$work/b", "prepare": "$reset", "argv": ["env", "HOME=$work/home", "$BIN", "run", "-q", "--offline", "--remote", "$URL"]},
 {"name": "computed", "cwd": "$work/c", "prepare": "$reset", "argv": ["env", "HOME=$work/home", "$BIN", "run", "-q", "--no-remote"]}]
JSON
)
blobs=$(ls "$D/store/cas" | wc -l); bytes=$(du -sb "$D/store/cas" | cut -f1)
echo "## Second clone of the paper pipeline (empty local cache), $(nproc) cores, dev build"
echo
echo "| clone B | median wall (ms) |"
echo "| --- | ---: |"
echo "| fetched from the nginx remote (0 stages executed) | $(echo "$r" | ms fetched) |"
echo "| computed locally (cold) | $(echo "$r" | ms computed) |"
echo
echo "Last line of clone B's run: \`$check\`; the remote held $blobs blobs, $bytes bytes ($RUNS runs, medians; raw: $r)"
