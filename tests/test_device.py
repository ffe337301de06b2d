"""Device choice, mixed precision and the TRAK projector choice; the CUDA path itself where a GPU is."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from proxyscale import device
from proxyscale.datamodels import projectors, store
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


def test_cuda_projector_needs_both_a_gpu_and_fast_jl(monkeypatch):
    made = []
    monkeypatch.setattr(projectors, "CudaProjector", lambda *a, **k: made.append(a) or "cuda-projector")
    monkeypatch.setattr(projectors, "fast_jl_available", lambda: True)
    assert projectors.make_projector(100, 8, 0, torch.device("cuda")) == "cuda-projector" and made
    assert type(projectors.make_projector(100, 8, 0, torch.device("cpu"))).__name__ == "CPUProjector"
    monkeypatch.setattr(projectors, "fast_jl_available", lambda: False)
    monkeypatch.setattr(projectors, "CPUProjector", lambda *a, **k: "cpu-projector")
    assert projectors.make_projector(100, 8, 0, torch.device("cuda")) == "cpu-projector"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the GPU path runs only where one is")
def test_training_and_featurizing_on_the_gpu(tmp_path):
    from proxyscale.datamodels.tasks import LMTask, batches
    from proxyscale.training.fit import fit
    from proxyscale.training.recipe import Recipe

    gpu = torch.device("cuda")
    task = LMTask(vocab_size=50, context_length=8)
    x = np.random.default_rng(0).integers(0, 50, (40, 9))
    m = np.ones_like(x, dtype=bool)
    model, meta = fit(
        task,
        {"d_model": 16, "n_layers": 1, "n_heads": 2},
        x,
        m,
        np.arange(40),
        Recipe(batch_size=8, lr=0.01),
        1,
        0,
        gpu,
    )
    assert meta["device"].startswith("cuda") and np.isfinite(meta["final_loss"])
    summary = store.featurize(
        model,
        task.modelout,
        lambda: batches(task, x, m, np.arange(40), 20, gpu),
        40,
        tmp_path / "store",
        tmp_path / "work",
        32,
        gpu,
    )
    assert summary["n_train"] == 40
