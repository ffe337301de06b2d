"""Job glue: every failure ends up in the job's log file, and as one line on the console."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from types import SimpleNamespace

import pytest

from proxyscale.errors import ConfigError
from proxyscale.runner import run_job


def _job(tmp_path):
    return SimpleNamespace(log=[str(tmp_path / "job.log")], threads=1, rule="train", resources=SimpleNamespace())


def _run(job, main, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        run_job(job, main)
    assert exit_info.value.code == 1
    return capsys.readouterr().err


def test_an_expected_error_is_one_line_in_the_log_and_on_the_console(tmp_path, capsys):
    def main():
        raise ConfigError("sizes.xs.lr: too large")

    console = _run(_job(tmp_path), main, capsys)
    log = (tmp_path / "job.log").read_text()
    assert console.splitlines() == [f"error in rule train: sizes.xs.lr: too large (log: {tmp_path / 'job.log'})"]
    assert log.splitlines()[-1] == "error in rule train: sizes.xs.lr: too large" and "Traceback" not in log


def test_an_unexpected_error_leaves_its_traceback_in_the_log(tmp_path, capsys):
    def main():
        print("progress 50%")
        raise KeyError("missing")

    console = _run(_job(tmp_path), main, capsys)
    log = (tmp_path / "job.log").read_text()
    assert "progress 50%" in log and "Traceback (most recent call last)" in log and "raise KeyError" in log
    assert log.splitlines()[-1] == "error in rule train: unexpected KeyError: 'missing'"
    assert len(console.splitlines()) == 1 and "unexpected KeyError" in console and "job.log" in console


def test_success_is_logged(tmp_path, capsys):
    run_job(_job(tmp_path), lambda: print("work"))
    assert "rule train done in" in (tmp_path / "job.log").read_text() and capsys.readouterr().err == ""


def test_a_job_runs_with_cudas_expandable_segments_unless_told_otherwise(tmp_path, monkeypatch, capsys):
    """Set before the job's code first allocates on a GPU (PyTorch reads it then), inherited by torchrun's
    processes; a setting of the user's own stays."""
    seen = []
    monkeypatch.delenv("PYTORCH_CUDA_ALLOC_CONF", raising=False)
    run_job(_job(tmp_path), lambda: seen.append(os.environ["PYTORCH_CUDA_ALLOC_CONF"]))
    monkeypatch.setenv("PYTORCH_CUDA_ALLOC_CONF", "max_split_size_mb:128")
    run_job(_job(tmp_path), lambda: seen.append(os.environ["PYTORCH_CUDA_ALLOC_CONF"]))
    assert seen == ["expandable_segments:True", "max_split_size_mb:128"]


ALLOCATION_CYCLES = """
import resource, sys
from types import SimpleNamespace
import numpy as np
from proxyscale.runner import run_job

def cycles():
    np.ones(3 << 20, np.uint8)  # freed from mmap: glibc's adaptive thresholds rise to 3 MB (trim past 6 MB)
    start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(50):  # what a training step does: allocate 9 MB of blocks, free them all
        blocks = [np.ones(3_000_000, np.uint8) for _ in range(3)]
        del blocks
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start)

if sys.argv[1] == "job":
    run_job(SimpleNamespace(log=[], threads=1, rule="t", resources=SimpleNamespace()), cycles)
else:
    cycles()
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the malloc settings are glibc's")
def test_a_job_reuses_the_memory_it_frees_instead_of_faulting_it_back_in():
    pages = 3 * 3_000_000 // 4096  # touched by one cycle of allocations

    def minor_faults(how: str) -> int:
        run = subprocess.run([sys.executable, "-c", ALLOCATION_CYCLES, how], capture_output=True, text=True, check=True)
        return int(run.stdout)

    faults = {how: minor_faults(how) for how in ("plain", "job")}
    assert faults["plain"] > 40 * pages  # glibc's defaults give every cycle's pages back to the OS
    assert faults["job"] < 3 * pages  # a job faults them in once
