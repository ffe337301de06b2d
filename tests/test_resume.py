"""Resuming killed training: a run stopped part-way and started again from its saved state ends with
the weights, bit for bit, of a run never stopped; a job killed with ``kill -9`` and rerun through the
workflow resumes and matches an uninterrupted job; a changed config after the kill starts fresh."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import time
import weakref
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch._C._functorch import is_functorch_wrapped_tensor

from conftest import REPO, run_snakemake, tiny_config, write_config
from proxyscale.datamodels.examples import Arrays
from proxyscale.datamodels.tasks import LMTask
from proxyscale.models.architecture import GPTConfig
from proxyscale.training import resume as resume_module
from proxyscale.training.fit import fit
from proxyscale.training.lm import train_lm
from proxyscale.training.loop import Steps
from proxyscale.training.recipe import Recipe
from proxyscale.training.resume import Preempted, Resume, job_key

CPU = torch.device("cpu")
STREAM = ((np.arange(40_000) * 7 + np.random.default_rng(0).integers(0, 3, 40_000)) % 257).astype(np.uint16)


class Killed(Exception):
    pass


class DiesAfterSaves(Resume):
    """Saves after every step and dies (as if killed) right after its ``saves``-th save."""

    def __init__(self, path, saves: int):
        super().__init__(path, every_seconds=0.0)
        self.saves = saves

    def save(self, state):
        super().save(state)
        self.saves -= 1
        if self.saves == 0:
            raise Killed


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def _lm(resume):
    recipe = Recipe(batch_size=8, lr=0.01, log_every=7)
    return train_lm({"s": STREAM}, {"s": 1}, GPTConfig(257, 32, 16, 1, 4), recipe, 4, 0, CPU, resume=resume)


def test_a_language_model_resumed_from_its_saved_state_ends_bit_identical(tmp_path):
    model, curve, meta = _lm(Resume(None))
    path = tmp_path / "state.pt"
    with pytest.raises(Killed):
        _lm(DiesAfterSaves(path, saves=17))  # between logging points (every 7 steps): mid-window
    assert torch.load(path, weights_only=True)["step"] == 17
    resumed, resumed_curve, resumed_meta = _lm(Resume(path, every_seconds=1e9))
    assert resumed_meta["resumed_from_step"] == 17 and meta["resumed_from_step"] is None
    assert _same_weights(model, resumed)
    assert resumed_curve["loss"].tolist() == curve["loss"].tolist()


def test_a_fit_resumed_from_its_saved_state_ends_bit_identical(tmp_path):
    tokens = np.random.default_rng(0).integers(0, 20, (50, 9))
    mask = np.ones_like(tokens, dtype=bool)
    mask[:, 0] = False
    task, size = LMTask(20, 8), {"d_model": 8, "n_layers": 1, "n_heads": 2}

    def run(resume):
        recipe = Recipe(batch_size=8, lr=0.02, log_every=3)
        return fit(task, size, Arrays(tokens, mask), np.arange(50), recipe, 2.5, 0, CPU, resume=resume)

    model, meta = run(Resume(None))
    path = tmp_path / "state.pt"
    with pytest.raises(Killed):
        run(DiesAfterSaves(path, saves=7))  # between logging points (every 3 steps)
    resumed, resumed_meta = run(Resume(path, every_seconds=1e9))
    assert resumed_meta["resumed_from_step"] == 7
    assert _same_weights(model, resumed) and resumed_meta["final_loss"] == meta["final_loss"]


def _live_tensor_bytes() -> int:
    """Bytes of every distinct tensor storage the process still references: plain tensors and parameters,
    not other tests' leftovers that have no storage (fake tensors, a `vmap` batch kept alive by a cycle)."""
    gc.collect()
    storages = {}
    for obj in gc.get_objects():
        if type(obj) in (torch.Tensor, torch.nn.Parameter) and not is_functorch_wrapped_tensor(obj):
            storage = obj.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
    return sum(storages.values())


def test_a_resumed_run_keeps_nothing_of_its_saved_state_and_holds_what_a_fresh_run_holds(tmp_path, monkeypatch):
    """The state is read to the CPU whatever the run's device, copied into the live tensors and dropped: at
    the first step after the restore none of its tensors is alive, and the process holds the same tensor
    bytes as a run never stopped holds at that step (on a GPU the saved state would otherwise sit beside
    the model for the whole run, uncounted by the memory model)."""
    path = tmp_path / "state.pt"
    with pytest.raises(Killed):
        _lm(DiesAfterSaves(path, saves=14))  # saved at step 14
    held, loaded, calls = {}, [], []
    read = resume_module.load_torch

    def spy_read(where, device, mmap=False):
        assert device == "cpu" and mmap  # read from the file as used: the ranks of a node share its pages
        state = read(where, device, mmap)
        loaded.extend(weakref.ref(t) for t in state["model"].values())
        loaded.extend(weakref.ref(t) for group in state["steps"]["opt"]["state"] for s in group for t in s)
        return state

    step = Steps.step

    def spy_step(self, micro_losses, lr):
        calls.append(len(calls))
        if calls[-1] in (0, 14):
            held[calls[-1]] = (_live_tensor_bytes(), [ref() is not None for ref in loaded])
        return step(self, micro_losses, lr)

    monkeypatch.setattr(resume_module, "load_torch", spy_read)
    monkeypatch.setattr(Steps, "step", spy_step)
    gc.collect()
    _lm(Resume(path, every_seconds=1e9))
    resumed_bytes, alive = held[0]  # the first step after the restore (step 14)
    assert len(loaded) > 10 and not any(alive)
    held.clear()
    calls.clear()
    _lm(Resume(None))
    assert held[14][0] == resumed_bytes


def test_a_stop_signal_saves_the_state_and_stops_with_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(resume_module, "_received", [])
    path = tmp_path / "state.pt"
    resume = Resume(path, every_seconds=1e9)
    try:
        os.kill(os.getpid(), signal.SIGUSR1)  # SLURM's --signal ahead of the time limit
        # read after every step, not only at logging points (every 7 steps): saved after the first step
        with pytest.raises(Preempted, match=rf"^stopped by SIGUSR1 at step 1; its state is saved in {path}"):
            _lm(resume)
    finally:
        for signum in resume_module.STOP_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
    assert torch.load(path, weights_only=True)["step"] == 1


def test_the_key_changes_with_params_inputs_and_wildcards(tmp_path):
    data = tmp_path / "shard.npy"
    np.save(data, np.arange(10))
    key = job_key("train", {"size": "s"}, {"lr": 0.1}, [str(data)])
    assert key == job_key("train", {"size": "s"}, {"lr": 0.1}, [str(data)])
    assert key != job_key("train", {"size": "s"}, {"lr": 0.2}, [str(data)])
    assert key != job_key("train", {"size": "m"}, {"lr": 0.1}, [str(data)])
    time.sleep(0.01)
    np.save(data, np.arange(10))  # rewritten: a new modification time
    assert key != job_key("train", {"size": "s"}, {"lr": 0.1}, [str(data)])


# The workflow: a real kill -9 of the training job's process.

TARGET = "results/checkpoints/mixture/ref.pt"


def _config(lr: float = 0.01) -> dict:
    config = tiny_config()
    config["model"] = {"context_length": 32, "tokens_per_param": 120, "max_repetition": 100}  # 3,480 steps
    config["sizes"]["ref"]["lr"] = lr
    config["resume_every_minutes"] = 0.005  # a save every 0.3 s
    config["resources"] = {"train": {"threads": 1}}
    return config


def _job_processes(workdir: Path) -> list[int]:
    """Processes running the train job's script (Snakemake copies it under .snakemake/scripts)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if cwd == str(workdir) and any(part.endswith(b".train.py") for part in cmd):
            found.append(int(pid))
    return found


def _start_and_kill(workdir: Path, lr: float = 0.01) -> Path:
    """Start the job, wait for a saved state, kill -9 the job's process; return the state file."""
    workdir.mkdir()
    write_config(_config(lr), workdir)
    cmd = ["snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir)]
    cmd += ["--configfile", str(workdir / "config.yaml"), "--cores", "1", TARGET]
    snakemake = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    states = workdir / "results/resume/train"
    deadline = time.time() + 120
    while time.time() < deadline and not list(states.glob("*.pt")):
        time.sleep(0.05)
    time.sleep(0.5)  # a few more saves
    jobs = _job_processes(workdir)
    assert jobs and list(states.glob("*.pt")), "the job saved no state before the deadline"
    for pid in jobs:
        os.kill(pid, signal.SIGKILL)
    out, _ = snakemake.communicate(timeout=120)
    assert snakemake.returncode != 0, out[-2000:]
    assert not (workdir / TARGET).exists()
    (state,) = states.glob("*.pt")
    return state


def _result(workdir: Path) -> tuple[dict, list, dict]:
    blob = torch.load(workdir / TARGET, weights_only=True)
    curve = pd.read_parquet(workdir / "results/train_logs/mixture/ref.parquet")
    return blob["state_dict"], curve["loss"].tolist(), blob["meta"]


@pytest.mark.workflow
def test_a_training_job_killed_with_sigkill_resumes_and_matches_an_uninterrupted_one(tmp_path):
    killed = tmp_path / "killed"
    state = _start_and_kill(killed)
    saved_step = torch.load(state, weights_only=True)["step"]
    result = run_snakemake(killed, "--cores", "1", TARGET)
    assert result.returncode == 0, result.stderr[-3000:]
    log = (killed / "results/logs/train/mixture/ref.log").read_text()
    assert f"resuming from {state.relative_to(killed)} (step {saved_step})" in log
    assert not state.exists()  # a finished job leaves no state behind

    clean = tmp_path / "clean"
    clean.mkdir()
    write_config(_config(), clean)
    assert run_snakemake(clean, "--cores", "1", TARGET).returncode == 0
    weights, losses, meta = _result(killed)
    clean_weights, clean_losses, clean_meta = _result(clean)
    assert meta["resumed_from_step"] == saved_step > 0 and clean_meta["resumed_from_step"] is None
    assert weights.keys() == clean_weights.keys()
    assert all(torch.equal(weights[k], clean_weights[k]) for k in weights)
    assert losses == clean_losses


@pytest.mark.workflow
def test_a_changed_learning_rate_after_a_kill_starts_fresh(tmp_path):
    workdir = tmp_path / "w"
    state = _start_and_kill(workdir)
    write_config(_config(lr=0.005), workdir)
    result = run_snakemake(workdir, "--cores", "1", TARGET)
    assert result.returncode == 0, result.stderr[-3000:]
    log = (workdir / "results/logs/train/mixture/ref.log").read_text()
    assert "resuming" not in log and f"removing {state.relative_to(workdir)}" in log
    assert _result(workdir)[2]["resumed_from_step"] is None
    assert not list((workdir / "results/resume/train").glob("*.pt"))
