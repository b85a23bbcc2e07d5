#!/usr/bin/env bash
# with-slurm.sh -- run a command against a throw-away single-node SLURM cluster.
#
#   bash scripts/scaleout/with-slurm.sh CMD [ARGS...]
#
# Starts munged, slurmctld and slurmd (Debian slurm-wlm 22.05, no slurmdbd, no systemd) with a
# private munge key, socket and slurm.conf under a temp dir, waits until the node is idle,
# runs CMD with SLURM_CONF exported, then stops the three daemons by PID (SIGTERM, SIGKILL
# after 10 s) and removes the temp dir (KEEP=1 keeps it). Exits with CMD's status.
# Must run as root: slurmd launches jobs as the submitting user. Adapted from
# ../shared/scaleout/slurm-single-node.sh (proven on this machine kind).
set -euo pipefail
[ "$#" -ge 1 ] || { echo "usage: $0 CMD [ARGS...]" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "with-slurm.sh: must run as root (slurmd runs jobs as their user)" >&2; exit 2; }
for c in munged munge unmunge slurmctld slurmd sbatch squeue sinfo; do
  command -v "$c" >/dev/null || { echo "with-slurm.sh: $c missing (make scaleout-deps)" >&2; exit 2; }
done

D="$(mktemp -d -t artifact-slurm.XXXXXX)"; chmod 755 "$D"
HOST="$(hostname -s)"
# Ports: given, or derived from our PID so that two runs on one machine do not collide.
PORT_CTLD="${PORT_CTLD:-$((20000 + ($$ % 20000) * 2))}"; PORT_SLURMD="${PORT_SLURMD:-$((PORT_CTLD + 1))}"
MUNGED_PID=""; CTLD_PID=""; SLURMD_PID=""

stop_pid() {  # stop_pid PID NAME
  local p="$1"; [ -n "$p" ] || return 0
  kill -0 "$p" 2>/dev/null || return 0
  kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  echo "with-slurm.sh: $2 (PID $p) ignored SIGTERM; SIGKILL" >&2; kill -KILL "$p" 2>/dev/null || true
}
cleanup() {
  stop_pid "$SLURMD_PID" slurmd; stop_pid "$CTLD_PID" slurmctld; stop_pid "$MUNGED_PID" munged
  for p in "$SLURMD_PID" "$CTLD_PID" "$MUNGED_PID"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $D" >&2; else rm -rf "$D"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$D/munge" "$D/state" "$D/spool" "$D/log"
chmod 755 "$D/munge"
dd if=/dev/urandom of="$D/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$D/munge/munge.key"
SOCK="$D/munge/munge.socket.2"
cat > "$D/slurm.conf" <<CONF
ClusterName=artifactci
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$PORT_CTLD
SlurmdPort=$PORT_SLURMD
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCK
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MinJobAge=300
KillWait=2
InactiveLimit=0
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$D/slurm.conf"

t0=$(date +%s%3N)
munged --foreground --socket="$SOCK" --key-file="$D/munge/munge.key" \
  --pid-file="$D/munge/munged.pid" --log-file="$D/log/munged.log" \
  --seed-file="$D/munge/munged.seed" >>"$D/log/munged.out" 2>&1 &
MUNGED_PID=$!
until munge -S "$SOCK" -n </dev/null 2>/dev/null | unmunge -S "$SOCK" >/dev/null 2>&1; do
  kill -0 "$MUNGED_PID" 2>/dev/null || { echo "with-slurm.sh: munged died" >&2; cat "$D/log/munged."* >&2; exit 1; }
  sleep 0.05
done
slurmctld -D -c -f "$SLURM_CONF" >>"$D/log/slurmctld.out" 2>&1 &
CTLD_PID=$!
slurmd -D -f "$SLURM_CONF" >>"$D/log/slurmd.out" 2>&1 &
SLURMD_PID=$!
deadline=$(( $(date +%s%3N) + 60000 ))
until [ "$(sinfo -h -n "$HOST" -o %t 2>/dev/null)" = idle ]; do
  for p in "$CTLD_PID" "$SLURMD_PID"; do
    kill -0 "$p" 2>/dev/null || { echo "with-slurm.sh: a SLURM daemon died" >&2; tail -20 "$D/log/"* >&2; exit 1; }
  done
  [ "$(date +%s%3N)" -lt "$deadline" ] || { echo "with-slurm.sh: node not idle after 60 s" >&2; tail -20 "$D/log/"*.log >&2; exit 1; }
  sleep 0.1
done
echo "with-slurm.sh: cluster up in $(( $(date +%s%3N) - t0 )) ms (munged $MUNGED_PID, slurmctld $CTLD_PID, slurmd $SLURMD_PID); SLURM_CONF=$SLURM_CONF" >&2

set +e
"$@"
rc=$?
set -e
exit "$rc"
