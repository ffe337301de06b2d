"""Device choice, mixed precision and the TRAK projector choice; the CUDA path itself where a GPU is."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from proxyscale import device
from proxyscale.datamodels import projectors, store
from proxyscale.datamodels.examples import Arrays
from proxyscale.errors import ConfigError


def test_auto_picks_cuda_exactly_when_torch_sees_it(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert device.resolve_device("auto").type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device.resolve_device("auto").type == "cpu"
    with pytest.raises(ConfigError, match="device 'cuda:1' was asked for but torch sees no CUDA device"):
        device.resolve_device("cuda:1")
    with pytest.raises(ConfigError, match="'tpu' is not a torch device name"):
        device.resolve_device("tpu")


def test_mixed_precision_is_bf16_on_cuda_and_off_on_cpu():
    with device.autocast(torch.device("cpu")):
        assert not torch.is_autocast_enabled("cpu")
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_cuda_asks_torch_for_bf16_autocast(monkeypatch):
    asked = {}
    monkeypatch.setattr(torch, "autocast", lambda **kw: asked.update(kw))
    device.autocast(torch.device("cuda"))
    assert asked == {"device_type": "cuda", "dtype": torch.bfloat16, "enabled": True}


def _fake_cuda_projectors(monkeypatch):
    """Record the CUDA projectors make_projector builds (they need a GPU to exist)."""
    made = []
    monkeypatch.setattr(projectors, "fast_jl_available", lambda: True)
    monkeypatch.setattr(projectors, "CudaProjector", lambda *a, **k: made.append(("cuda", a, k)) or "cuda-projector")
    monkeypatch.setattr(projectors, "ChunkedCudaProjector", lambda *a, **k: made.append(("chunked", a, k)) or "chunked")
    return made


def test_dense_on_cuda_is_fast_jl_and_sjlt_stands_in_without_it(monkeypatch, caplog):
    """Without fast_jl the stand-in is said in one line naming the projector that runs."""
    made = _fake_cuda_projectors(monkeypatch)
    small = torch.nn.Linear(100, 10)
    assert projectors.make_projector(small, 512, 0, torch.device("cuda"), 32, "dense") == "cuda-projector" and made
    assert type(projectors.make_projector(small, 8, 0, torch.device("cpu"), 32, "dense")).__name__ == "CPUProjector"
    assert projectors.projector_kind(torch.device("cuda"), "sjlt") == "sjlt"  # asked for, even with fast_jl
    monkeypatch.setattr(projectors, "fast_jl_available", lambda: False)
    assert projectors.projector_kind(torch.device("cuda"), "dense") == "sjlt"
    monkeypatch.setattr(projectors, "SJLTProjector", lambda *a, **k: ("sjlt", k["device"]))
    caplog.set_level("INFO", logger=projectors.__name__)
    assert projectors.make_projector(small, 8, 0, torch.device("cuda"), 32, "dense") == ("sjlt", torch.device("cuda"))
    assert [r.getMessage() for r in caplog.records] == [
        "trak.projector dense: fast_jl is not installed (the gpu extra), so SJLTProjector projects"
    ]


def test_an_unknown_projector_is_one_config_error():
    with pytest.raises(ConfigError, match=r"trak.projector: 'fast' is not a projector \(sjlt, dense\)"):
        projectors.projector_kind(torch.device("cpu"), "fast")


def test_cuda_projection_size_must_be_a_multiple_of_512(monkeypatch):
    _fake_cuda_projectors(monkeypatch)
    with pytest.raises(ConfigError, match=r"trak.proj_dim: 1000 is not a multiple of 512"):
        projectors.make_projector(torch.nn.Linear(100, 10), 1000, 0, torch.device("cuda"), 32, "dense")


def test_models_past_the_uint32_limit_get_the_chunked_projector(monkeypatch):
    made = _fake_cuda_projectors(monkeypatch)
    # 4 x 2^25 parameters on the meta device (no memory): at batch 32, 2^32 entries, past fast_jl's limit
    big = torch.nn.Sequential(*(torch.nn.Linear(2**15, 2**10, bias=False, device="meta") for _ in range(4)))
    assert projectors.make_projector(big, 1024, 7, torch.device("cuda"), 32, "dense") == "chunked"
    chunks = [a for kind, a, _ in made if kind == "cuda"]
    assert len(chunks) >= 2 and sum(a[0] for a in chunks) == 4 * 2**25
    assert all(a[0] * 32 < projectors.UINT32_LIMIT and a[1] == 1024 for a in chunks)
    assert len({a[2] for a in chunks}) == len(chunks)  # each chunk its own seed
    made.clear()
    assert projectors.make_projector(big, 1024, 7, torch.device("cuda"), 16, "dense") == "cuda-projector"  # 2^31 fits


def test_every_checkpoint_gets_its_own_projection_seed():
    seeds = [projectors.checkpoint_seed(0, c) for c in range(6)]
    assert len(set(seeds)) == 6 and seeds == [projectors.checkpoint_seed(0, c) for c in range(6)]
    assert projectors.checkpoint_seed(1, 0) != seeds[0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the GPU path runs only where one is")
def test_training_and_featurizing_on_the_gpu(tmp_path):
    from proxyscale.datamodels.tasks import LMTask
    from proxyscale.training.fit import fit
    from proxyscale.training.recipe import Recipe

    gpu = torch.device("cuda")
    task = LMTask(vocab_size=50, context_length=8)
    x = np.random.default_rng(0).integers(0, 50, (40, 9))
    m = np.ones_like(x, dtype=bool)
    model, meta = fit(
        task,
        {"d_model": 16, "n_layers": 1, "n_heads": 2},
        Arrays(x, m),
        np.arange(40),
        Recipe(batch_size=8, lr=0.01),
        1,
        0,
        gpu,
    )
    assert meta["device"].startswith("cuda") and np.isfinite(meta["final_loss"])
    summary = store.featurize(model, task, Arrays(x, m), 20, tmp_path / "store", 512, gpu)  # fast_jl: k % 512
    assert summary["n_train"] == 40


def test_the_gpu_check_runs_its_checks_on_a_cpu_with_tiny_sizes():
    """bench/gpu_check.py is run on a GPU when one is lent; --smoke runs the same code here, so it cannot
    rot between loans (the GPU-only parts, FlexAttention training and the kernels' names, are skipped)."""
    import subprocess
    import sys

    from conftest import REPO

    out = subprocess.run([sys.executable, str(REPO / "bench/gpu_check.py"), "--smoke", "--steps", "1"],
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [line for line in out.stdout.splitlines() if line.startswith("| (")]
    assert [r.split(" |")[0] for r in rows] == ["| (a) 760m sdpa", "| (b) 760m after a restore", "| (d) 760m TRAK",
                                                "| (e) 37m", "| (e) 353m"]  # fmt: skip
    assert all("tokens/s" in r for r in rows if "TRAK" not in r) and "s/example" in rows[2]
