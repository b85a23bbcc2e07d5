#!/usr/bin/env bash
# deps.sh -- install what the scale-out tests need when it is missing: nginx and htpasswd (the
# remote-cache tests), munge and SLURM (the SLURM integration test). Debian/Ubuntu, with apt;
# root, or sudo. A policy-rc.d that answers 101 keeps the packages' postinst scripts from
# starting the distribution's own nginx/munge/slurm services (there may be no systemd).
set -euo pipefail
need=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v munged >/dev/null || [ -x /usr/sbin/munged ] || need+=(munge)
command -v slurmctld >/dev/null || [ -x /usr/sbin/slurmctld ] || need+=(slurmctld)
command -v slurmd >/dev/null || [ -x /usr/sbin/slurmd ] || need+=(slurmd)
command -v sbatch >/dev/null || need+=(slurm-client)
[ "${#need[@]}" = 0 ] && exit 0
echo "installing ${need[*]}"
if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
created=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d; created=1
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
[ "$created" = 1 ] && $SUDO rm -f /usr/sbin/policy-rc.d
exit 0
