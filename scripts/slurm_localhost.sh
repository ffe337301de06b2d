#!/usr/bin/env bash
# A single-node SLURM cluster on localhost, for the SLURM profile test (tests/test_slurm.py).
#
#   scripts/slurm_localhost.sh [install|start|stop|status]   (default: install, then start)
#
# install: Debian's slurm-wlm and munge (needs root and a Debian package mirror) and the Snakemake
#          SLURM executor plugin. start: a munge key, a slurm.conf for this host (all its CPUs, two
#          partitions on it: "debug", the default, and "gpu", which the placement test sends the rules
#          that ask for GPUs to; no cgroups, no accounting database) under /etc/slurm, then munged,
#          slurmctld and slurmd; waits until the node is idle. Exits non-zero with a reason on failure.
set -euo pipefail

action=${1:-up}
state=/var/lib/proxyscale-slurm

install() {
    if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q slurm-wlm munge >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q slurm-wlm munge >/dev/null; }
    fi
    python3 -m pip install -q snakemake-executor-plugin-slurm
}

write_config() {
    local host cpus mem
    host=$(hostname -s)
    cpus=$(nproc)
    mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
    mkdir -p /etc/slurm "$state"/{ctld,d,log} /run/munge /var/log/munge /etc/munge
    cat > /etc/slurm/slurm.conf <<CONF
ClusterName=proxyscale
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/d
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# finished jobs stay known to scontrol for an hour: the time-limit test reads its first job's state
# (TIMEOUT) after the retry has run, which can take minutes on a loaded machine
MinJobAge=3600
MpiDefault=none
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$host Default=NO MaxTime=INFINITE State=UP
CONF
    if [ ! -s /etc/munge/munge.key ]; then
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    chown -R munge:munge /etc/munge /run/munge /var/log/munge 2>/dev/null || true
    chmod 400 /etc/munge/munge.key
}

start() {
    write_config
    pgrep -x munged >/dev/null || runuser -u munge -- munged --force 2>/dev/null || munged --force
    pgrep -x slurmctld >/dev/null || slurmctld
    pgrep -x slurmd >/dev/null || slurmd
    for _ in $(seq 60); do
        if sinfo -h -o %T 2>/dev/null | grep -q idle; then
            echo "SLURM up: $(sinfo -h -o '%P %D %c %T')"
            return 0
        fi
        scontrol update NodeName="$(hostname -s)" State=RESUME >/dev/null 2>&1 || true
        sleep 1
    done
    echo "SLURM did not come up; slurmctld and slurmd logs:" >&2
    tail -n 20 "$state"/log/*.log >&2 || true
    return 1
}

stop() {
    pkill -x slurmd || true
    pkill -x slurmctld || true
}

case "$action" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    status) sinfo ;;
    up) install && start ;;
    *) echo "usage: $0 [install|start|stop|status]" >&2; exit 2 ;;
esac
