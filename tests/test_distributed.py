"""Data-parallel training: each rank's share of a global batch, and the same tiny training run through
the workflow with one and with two torchrun processes (gloo on CPU) giving the same loss curve."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import REPO, run_snakemake, tiny_config, write_config
from proxyscale.io import save_text
from proxyscale.models.architecture import GPTConfig
from proxyscale.training.distributed import Group


def test_shares_cover_the_batch_and_divisors_make_the_average_the_global_mean():
    groups = [Group(rank, 2) for rank in range(2)]
    assert [g.share(5) for g in groups] == [slice(0, 2), slice(2, 5)]
    assert [g.loss_divisor(5) for g in groups] == [2.5, 2.5]
    losses = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    # DDP averages the ranks' gradients, so it averages their summed losses over their divisors
    averaged = np.mean([losses[g.share(5)].sum() / g.loss_divisor(5) for g in groups])
    assert averaged == pytest.approx(losses.mean())
    assert Group().share(7) == slice(0, 7) and Group().loss_divisor(7) == 7.0


def test_only_rank_zero_writes(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(RuntimeError, match="only rank 0 writes"):
        save_text("x", tmp_path / "out.txt")
    assert not list(tmp_path.iterdir())


def _train(tmp_path, processes: int) -> tuple[pd.DataFrame, dict, str]:
    config = tiny_config()
    config["resources"] = {"train": {"threads": 2, "processes": processes}}
    tmp_path.mkdir()
    write_config(config, tmp_path)
    target = "results/checkpoints/mixture/ref.pt"
    result = run_snakemake(tmp_path, "--cores", "2", target, "results/train_logs/mixture/ref.parquet")
    assert result.returncode == 0, result.stderr[-3000:]
    curve = pd.read_parquet(tmp_path / "results/train_logs/mixture/ref.parquet")
    weights = torch.load(tmp_path / target, weights_only=False)["state_dict"]
    return curve, weights, (tmp_path / "results/logs/train/mixture/ref.log").read_text()


@pytest.mark.workflow
def test_two_processes_train_the_same_model_as_one(tmp_path):
    one, weights_one, _ = _train(tmp_path / "one", 1)
    two, weights_two, log = _train(tmp_path / "two", 2)
    assert "[rank 0]" in log  # the job really ran under torchrun
    assert len(one) == len(two) > 5
    gap = np.abs(one["loss"].to_numpy() - two["loss"].to_numpy()).max()
    print(f"max difference of the loss curves, 1 vs 2 processes: {gap:.2e} (losses ~{one['loss'].mean():.2f})")
    assert gap < 1e-4
    assert one["loss"].iloc[-1] < one["loss"].iloc[0] - 0.5  # it did learn, so agreement is not trivial
    drift = max((weights_one[k] - weights_two[k]).abs().max().item() for k in weights_one)
    print(f"max difference of the final weights: {drift:.2e}")
    assert drift < 5e-3  # Adam's normalised steps amplify rounding in near-zero gradients, but no further
    assert not list((tmp_path / "two/results").rglob("*.tmp*"))


def _signal_config() -> dict:
    """Two gloo processes; no loss read and no timed save before the end (log_every and the save interval
    beyond the run), so only a stop signal read after every step can save mid-run."""
    config = tiny_config()
    config["model"] = {"context_length": 32, "tokens_per_param": 60, "max_repetition": 1000}
    config["training"] = {"log_every": 10**6}
    config["resume_every_minutes"] = 10**4
    config["resources"] = {"train": {"threads": 2, "processes": 2}}
    return config


SIGNAL_TARGET = "results/checkpoints/mixture/ref.pt"


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    """The signalled tests' run, never stopped: made once for both (its result does not depend on how the
    other run is stopped); a shared run (conftest.SHARED_RUNS), so both tests go to one xdist worker."""
    clean = tmp_path_factory.mktemp("uninterrupted")
    write_config(_signal_config(), clean)
    result = run_snakemake(clean, "--cores", "2", SIGNAL_TARGET)
    assert result.returncode == 0, result.stderr[-3000:]
    return clean


def _job_processes(workdir: Path) -> tuple[int | None, list[int]]:
    """The job's own process (the runner that started torchrun) and all of them: of the processes running
    the train job's script in ``workdir`` (runner, torchrun, ranks), the one whose parent is none of them."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            cwd = os.readlink(f"/proc/{pid}/cwd")
            ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue
        if cwd == str(workdir) and any(part.endswith(b".train.py") for part in cmd):
            found[int(pid)] = ppid
    outer = [pid for pid, ppid in found.items() if ppid not in found]
    return (outer[0] if len(found) == 4 and len(outer) == 1 else None), list(found)  # runner, torchrun, 2 ranks


@pytest.mark.workflow
@pytest.mark.parametrize("signalled", ["outermost", "every"])
def test_a_two_process_job_signalled_saves_within_a_step_and_resumes_bit_identical(tmp_path, signalled, uninterrupted):
    """SIGUSR1 (SLURM's --signal ahead of the time limit) sent to the job's runner alone reaches both
    ranks through torchrun; sent to every process of the job, as SLURM does, torchrun gets it twice (from
    SLURM and from the runner) and still waits for the ranks. They save at the end of the step they are
    in and the job stops with one line; run again, it resumes and ends with the weights and losses of a
    run never stopped."""
    target = SIGNAL_TARGET
    stopped = tmp_path / "stopped"
    stopped.mkdir()
    write_config(_signal_config(), stopped)
    shards = [f"results/shards/{s}.npy" for s in tiny_config()["distributions"]["mixture"]]
    assert run_snakemake(stopped, "--cores", "2", *shards).returncode == 0  # so the signal falls on training
    cmd = ["snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(stopped), "--cores", "2"]
    job = subprocess.Popen([*cmd, target, "--configfile", str(stopped / "config.yaml")], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)  # fmt: skip
    log = stopped / "results/logs/train/mixture/ref.log"
    deadline, runner = time.time() + 180, None
    while time.time() < deadline and job.poll() is None:  # until rank 0's progress bar shows it is training
        runner, processes = _job_processes(stopped)
        if runner and log.is_file() and re.search(r"\| *\d+/\d+ \[", log.read_text()):
            break
        time.sleep(0.1)
    assert runner and job.poll() is None, "the job did not start training before the deadline"
    for pid in [runner] if signalled == "outermost" else processes:
        os.kill(pid, signal.SIGUSR1)
    out, _ = job.communicate(timeout=300)
    text = log.read_text()
    assert job.returncode != 0 and not (stopped / target).exists(), out[-3000:]
    assert "error in rule train: stopped by SIGUSR1, passed on to its 2 training processes" in out, out[-3000:]
    assert "stopped by SIGUSR1 at step" in text, text[-3000:]
    (state,) = (stopped / "results/resume/train").glob("*.pt")
    saved = torch.load(state, weights_only=True)["step"]
    total = int(re.search(r"\d+/(\d+) \[", text).group(1))
    assert 0 < saved < total

    assert run_snakemake(stopped, "--cores", "2", target).returncode == 0
    assert f"resuming from {state.relative_to(stopped)} (step {saved})" in log.read_text()
    a, b = (torch.load(w / target, weights_only=True) for w in (stopped, uninterrupted))
    assert a["meta"]["resumed_from_step"] == saved and b["meta"]["resumed_from_step"] is None
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in b["state_dict"])
    curves = [pd.read_parquet(w / "results/train_logs/mixture/ref.parquet") for w in (stopped, uninterrupted)]
    assert curves[0]["loss"].tolist() == curves[1]["loss"].tolist()


def _bucket_views_worker(rank: int, world: int, init: str, out: str) -> None:
    """One rank of a gloo group: 3 steps of 2 micro-batches of a tiny GPT; after each micro-batch that did
    not sync, how many distinct storages its gradients have."""
    import torch.distributed as dist

    from proxyscale.models.gpt import GPT
    from proxyscale.training.loop import Steps, prepare
    from proxyscale.training.recipe import Recipe, make_optimizer

    dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=world)
    torch.manual_seed(0)
    model = GPT(GPTConfig(50, 16, 16, 2, 4))
    group = Group(rank, world)
    trained = group.wrap(model, torch.device("cpu"))
    recipe = Recipe(batch_size=8, lr=0.01)
    steps = Steps(trained, make_optimizer(model, recipe), recipe, group, torch.device("cpu"), "t")
    tokens = torch.randint(0, 50, (4, 17), generator=torch.Generator().manual_seed(rank))
    storages = []

    def micro(part: slice):
        def loss():
            if part.start:  # the previous micro-batch ran under no_sync
                storages.append(len({p.grad.untyped_storage().data_ptr() for p in model.parameters()}))
            return trained(tokens[part, :-1], targets=tokens[part, 1:]).sum()

        return loss

    for _ in range(3):
        steps.step([micro(slice(0, 2)), micro(slice(2, 4))], 0.01)
    compiled = prepare(GPT(model.cfg), Recipe(batch_size=8, lr=0.01, compile=True), torch.device("cpu"), group)
    order = [type(compiled).__name__, compiled._compiled_call_impl is not None,
             compiled.module._compiled_call_impl is not None]  # fmt: skip
    if rank == 0:
        torch.save({"storages": storages, "syncs_buffers": trained.forward_sync_buffers, "order": order}, out)
    dist.destroy_process_group()


def test_ddp_keeps_one_copy_of_the_gradients_broadcasts_no_buffers_and_is_compiled_whole(tmp_path):
    """Under gloo, after every micro-batch that did not synchronise, the gradients are views of DDP's one
    communication bucket (this tiny model's parameters fit one), not tensors of their own beside it, so a
    process holds the 4 bytes per parameter the memory model counts, not 8; and DDP does not re-send the
    buffers (ALiBi's bias) at every synced step."""
    import torch.multiprocessing as mp

    out = tmp_path / "result.pt"
    mp.spawn(_bucket_views_worker, args=(2, str(tmp_path / "init"), str(out)), nprocs=2)
    result = torch.load(out, weights_only=True)
    assert result["storages"] == [1, 1, 1] and result["syncs_buffers"] is False
    # torch.compile wraps DDP, not the model inside it, so DDP can all-reduce a bucket as soon as its
    # gradients are ready during the backward pass
    assert result["order"] == ["DistributedDataParallel", True, False]


def test_an_accumulator_saved_by_a_group_of_another_size_keeps_the_groups_mean():
    saved = torch.tensor([1.0, 2.0, 3.0])  # three ranks' loss windows
    assert [Group(r, 3).restored(saved).item() for r in range(3)] == [1.0, 2.0, 3.0]
    two = [Group(r, 2).restored(saved).item() for r in range(2)]
    assert two == [4.0, 0.0] and sum(two) / 2 == saved.mean().item()  # what read() and final_loss average
    assert Group().restored(saved).item() == 6.0 / 3  # one process: the mean itself
