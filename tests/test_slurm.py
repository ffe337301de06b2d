"""The SLURM profile on a real cluster: a slice of the tiny workflow submitted through
``snakemake --profile profiles/slurm`` must run as SLURM jobs and give what a local run gives, and a
training job killed at its time limit must be retried, resume, and end with the local run's weights.

Needs a running SLURM (``scripts/slurm_localhost.sh`` starts a single-node one; ``.ci/run`` calls it)
and the Snakemake SLURM executor plugin; skipped, with the reason, where either is missing.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import REPO, run_snakemake, tiny_config, unavailable, write_config

pytestmark = [pytest.mark.workflow, pytest.mark.xdist_group("slurm")]  # one SLURM test at a time: the queue is shared

TARGETS = ["results/testsets/lambada.parquet", "results/checkpoints/web/tiny.pt"]
# The profile as a user runs it, polling this one-node cluster every few seconds rather than after the
# plugin's 40 s (then 50 s, 60 s, ... while nothing finishes), and with a local disk's latency: the
# outcome is the same, the waiting is not.
PROFILE = ["--profile", str(REPO / "profiles/slurm"), "--slurm-init-seconds-before-status-checks", "3"]
PROFILE += ["--latency-wait", "5"]


def _slurm_ready() -> str | None:
    """None when jobs can be submitted here, else why not."""
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        return "snakemake-executor-plugin-slurm is not installed (scripts/slurm_localhost.sh install)"
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "no SLURM client commands (run scripts/slurm_localhost.sh as root on Debian)"
    result = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    if result.returncode != 0 or not re.search(r"idle|mixed", result.stdout):
        return f"SLURM is not up: sinfo said {(result.stdout + result.stderr).strip()!r}"
    return None


def _run(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    config = tiny_config()
    config["resources"] = {  # must reach sbatch: each group's size, and where its jobs run
        "data": {"slurm_partition": "debug"},
        "train": {"mem_mb": 1500, "runtime": 7, "threads": 2, "slurm_partition": "gpu"},
    }
    write_config(config, workdir)
    return run_snakemake(workdir, *args, *TARGETS)


def test_tiny_workflow_through_the_slurm_profile_matches_a_local_run(tmp_path):
    reason = _slurm_ready()
    if reason:
        unavailable("slurm", reason)
    slurm, local = tmp_path / "slurm", tmp_path / "local"
    slurm.mkdir()
    local.mkdir()
    result = _run(slurm, *PROFILE)
    assert result.returncode == 0, result.stderr[-5000:]
    submitted = re.findall(r"submitted with SLURM jobid (\d+)", result.stdout + result.stderr)
    assert len(submitted) == 3, result.stderr[-3000:]  # prepare_source, build_testset, train
    # slurmctld remembers finished jobs for MinJobAge seconds
    states = [
        subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout for job in submitted
    ]
    assert all("JobState=COMPLETED" in state for state in states), states
    train = next(state for state in states if "rule_train" in state)  # its rule group's resources, as sbatch options
    assert "TimeLimit=00:07:00" in train and "MinMemoryNode=1500M" in train and "NumCPUs=2" in train, train
    # per-group placement: the "GPU" rule in the gpu partition, the CPU rules in the other
    assert "Partition=gpu" in train, train
    data = [state for state in states if "rule_prepare_source" in state or "rule_build_testset" in state]
    assert len(data) == 2 and all("Partition=debug" in state for state in data), data
    assert _run(local, "--cores", "2").returncode == 0

    pd.testing.assert_frame_equal(pd.read_parquet(slurm / TARGETS[0]), pd.read_parquet(local / TARGETS[0]))
    assert np.array_equal(np.load(slurm / "results/shards/web.npy"), np.load(local / "results/shards/web.npy"))
    a = torch.load(slurm / TARGETS[1], weights_only=True)["state_dict"]
    b = torch.load(local / TARGETS[1], weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_training_job_killed_at_its_time_limit_is_retried_and_resumes(tmp_path, cancel_leftovers):
    """A train job under a one-minute time limit: once it has saved its first state the test freezes it
    (SIGSTOP to its processes, as a debugger would), so its limit falls mid-run on any machine however fast,
    without a minute of training. At the limit SLURM sends SIGCONT and SIGTERM, the job saves and ends
    TIMEOUT, the profile's retry resubmits it, the retry resumes from the saved state, and the weights are
    bit-identical to a local, uninterrupted run's (which runs meanwhile on the other core). Every later
    job gets a 20-minute limit (scontrol, as an admin would), so the retry is never cut short."""
    reason = _slurm_ready()
    if reason:
        unavailable("slurm", reason)
    target = "results/checkpoints/mixture/ref.pt"
    config = tiny_config()
    config["model"] = {"context_length": 32, "tokens_per_param": 150, "max_repetition": 2000}  # 4,350 steps
    config["resume_every_minutes"] = 0.005  # a save every 0.3 s
    config["resources"] = {"train": {"mem_mb": 1500, "runtime": 1, "threads": 1}}
    slurm, local = tmp_path / "slurm", tmp_path / "local"
    for workdir in (slurm, local):
        workdir.mkdir()
        write_config(config, workdir)
    shards = [f"results/shards/{s}.npy" for s in config["distributions"]["mixture"]]
    for workdir in (slurm, local):  # the shards first, so the time limit falls on training
        assert run_snakemake(workdir, "--cores", "1", *shards).returncode == 0
    base = ["snakemake", target, "--snakefile", str(REPO / "Snakefile"), "--configfile", "config.yaml"]
    local_run = subprocess.Popen([*base, "--cores", "1"], cwd=local, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    with _later_jobs_get_minutes(20):
        slurm_run = subprocess.Popen(
            [*base, *PROFILE, "--retries", "1"],
            cwd=slurm, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        frozen = _freeze_once_saved(slurm / "results/resume", slurm_run)
        stdout, stderr = slurm_run.communicate(timeout=1500)
    local_out, _ = local_run.communicate(timeout=600)
    assert local_run.returncode == 0, local_out[-3000:]
    assert slurm_run.returncode == 0, stderr[-5000:]
    submitted = re.findall(r"submitted with SLURM jobid (\d+)", stdout + stderr)
    assert submitted[0] == frozen, (submitted, frozen)
    states = [re.search(r"JobState=(\w+)", _job_state(job)) for job in submitted]
    assert [m and m.group(1) for m in states] == ["TIMEOUT", "COMPLETED"], submitted
    log = (slurm / "results/logs/train/mixture/ref.log").read_text()
    assert "resuming from results/resume/train/" in log, log[-2000:]
    a = torch.load(slurm / target, weights_only=True)
    b = torch.load(local / target, weights_only=True)
    assert a["meta"]["resumed_from_step"] and b["meta"]["resumed_from_step"] is None
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in b["state_dict"])
    assert not list((slurm / "results/resume").rglob("*.pt"))


def _freeze_once_saved(resume: Path, run: subprocess.Popen, timeout: float = 600) -> str:
    """Stop (SIGSTOP to each of its processes, behind SLURM's back as a debugger's would be) the one running
    SLURM job as soon as a saved training state appears under ``resume``; its id. Fails if the run ends first."""
    for _ in range(int(timeout / 0.2)):
        if any(not p.name.startswith(".") for p in resume.rglob("*.pt")):  # not an atomic write's temporary
            running = subprocess.run(["squeue", "-h", "-t", "R", "-o", "%i"], capture_output=True, text=True)
            (job,) = running.stdout.split()
            pids = subprocess.run(["scontrol", "listpids", job], capture_output=True, text=True, check=True)
            for line in pids.stdout.splitlines()[1:]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(line.split()[0]), signal.SIGSTOP)
            return job
        assert run.poll() is None, "the SLURM run ended before its training job saved a state"
        time.sleep(0.2)
    raise AssertionError(f"no saved training state under {resume} within {timeout} s")


@pytest.fixture
def cancel_leftovers():
    """Cancel whatever the test left in the queue (a frozen job would hold a CPU, and count as the next
    run's first job)."""
    yield
    queued = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True).stdout.split()
    if queued:
        subprocess.run(["scancel", *queued])


@contextlib.contextmanager
def _later_jobs_get_minutes(minutes: int):
    """While the block runs, every SLURM job after the first one queued gets a time limit of ``minutes``
    (polled every half second; a job runs for a minute at least, so none is missed)."""
    done, seen = threading.Event(), []

    def watch():
        while not done.wait(0.5):
            queued = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True).stdout.split()
            for job in sorted(queued, key=int):
                if not seen:
                    seen.append(job)
                elif job not in seen:
                    subprocess.run(["scontrol", "update", f"JobId={job}", f"TimeLimit={minutes}"], check=True)
                    seen.append(job)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


def _job_state(job: str) -> str:
    return subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
