"""The sparse JL projector: one signed output per coordinate, balanced buckets, count-sketch statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from proxyscale.datamodels.sjlt import SJLTProjector


def matrix(projector: SJLTProjector, model_id: int = 0) -> torch.Tensor:
    """The p x k matrix S the projector applies (g -> g S): the projection of the identity."""
    return projector.project(torch.eye(projector.grad_dim), model_id)


def test_every_coordinate_goes_to_one_output_with_a_signed_scale_and_buckets_are_balanced():
    p, k = 1000, 64  # 15 full rows of 64 and a tail of 40
    s = matrix(SJLTProjector(p, k, seed=3))
    nonzero = s != 0
    assert nonzero.sum(1).eq(1).all()
    assert torch.allclose(s[nonzero].abs(), torch.tensor(8.0))  # sqrt(k)
    counts = nonzero.sum(0)
    assert counts.max() - counts.min() == 1 and counts.sum() == p
    assert 0.4 < (s[nonzero] > 0).float().mean() < 0.6


def test_projection_is_the_matrix_product_for_dicts_and_matrices_alike():
    blocks = [300, 7, 130, 64]
    p, k = sum(blocks), 32
    proj = SJLTProjector(p, k, seed=0, block_sizes=blocks)
    g = torch.randn(5, p, dtype=torch.float64).float()
    expected = g.double() @ matrix(proj).double()
    flat = proj.project(g, 0)
    parts = torch.split(g, blocks, dim=1)
    as_dict = proj.project({f"w{i}": part.reshape(5, -1, 1) for i, part in enumerate(parts)}, 0)
    torch.testing.assert_close(flat.double(), expected, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(as_dict, flat)


def test_wrong_blocks_are_refused():
    proj = SJLTProjector(10, 4, seed=0, block_sizes=[6, 4])
    with pytest.raises(ValueError, match=r"gradient blocks \[4, 6\] do not match the projector's \[6, 4\]"):
        proj.project({"a": torch.zeros(2, 4), "b": torch.zeros(2, 6)}, 0)
    with pytest.raises(ValueError, match="add up to 9, not grad_dim 10"):
        SJLTProjector(10, 4, seed=0, block_sizes=[5, 4])


def test_the_sketch_depends_on_seed_and_model_id_only_and_survives_free_memory():
    a, b = SJLTProjector(200, 16, seed=1), SJLTProjector(200, 16, seed=1)
    assert torch.equal(matrix(a), matrix(b))
    assert not torch.equal(matrix(a), matrix(SJLTProjector(200, 16, seed=2)))
    first = matrix(a)
    assert not torch.equal(matrix(a, model_id=1), first)
    a.free_memory()
    assert torch.equal(matrix(a, model_id=0), first)
    a.free_memory()  # and for the same model id as before
    assert torch.equal(matrix(a, model_id=0), first)


def test_collisions_never_within_a_row_and_at_rate_one_over_k_across_rows():
    p, k, draws = 48, 8, 3000
    same_row = cross_row = 0
    for seed in range(draws):
        bucket = matrix(SJLTProjector(p, k, seed=seed)).abs().argmax(1)
        same_row += int(bucket[0] == bucket[5])  # coordinates 0 and 5: row 0
        cross_row += int(bucket[0] == bucket[20])  # rows 0 and 2
    assert same_row == 0
    sd = np.sqrt(1 / k * (1 - 1 / k) / draws)
    assert abs(cross_row / draws - 1 / k) < 4 * sd


def test_inner_products_are_preserved_on_average_at_the_dense_projectors_scale():
    torch.manual_seed(0)
    p, k = 4096, 256
    x, y = torch.randn(p), torch.randn(p)
    y = y + x  # correlated: <x, y> is about p
    estimates, norms = [], []
    for seed in range(100):
        proj = SJLTProjector(p, k, seed=seed)
        px, py = proj.project(torch.stack([x, y]), 0) / np.sqrt(k)  # undo the dense-matching scale
        estimates.append(float(px @ py))
        norms.append(float(px @ px))
    assert np.mean(estimates) == pytest.approx(float(x @ y), rel=0.03)
    assert np.mean(norms) == pytest.approx(float(x @ x), rel=0.03)
    # one sketch of size k: relative error of a squared norm about sqrt(2 / k) = 0.09
    assert np.std(np.asarray(norms) / float(x @ x)) == pytest.approx(np.sqrt(2 / k), rel=0.3)


@pytest.mark.parametrize(
    "p, model_id, pinned",
    [
        (16, 0, [1, -3, -4, -2, -2, 1, 4, -3, -2, -4, 1, -3, -2, -3, -1, 4]),  # full rows only
        (17, 0, [-1, 3, 4, -2, -2, -1, 4, -3, -2, -4, -1, 3, -2, 3, 1, -4, 1]),  # a tail of one
        (16, 2, [-2, 3, 4, 1, -4, -2, -1, 3, 3, 4, -2, 1, -4, 3, -1, -2]),  # another model's sketch
    ],
)
def test_the_sketch_of_a_seed_and_model_is_pinned(p, model_id, pinned):
    """Each coordinate's output (1-based) times its sign, for seed 3 and k = 4: a store built by another
    process or version of proxyscale projects with exactly this sketch."""
    s = matrix(SJLTProjector(p, 4, seed=3), model_id)
    rows, cols = s.nonzero(as_tuple=True)
    assert rows.tolist() == list(range(p))
    assert ((cols + 1) * torch.sign(s[rows, cols]).long()).tolist() == pinned


def test_the_featurize_memory_model_counts_the_sketchs_index_arrays():
    """A real SJLT projector of a GPT holds 12 bytes per parameter (an int64 index and an fp32 signed
    scale), which the TRAK memory model counts beside the per-example gradients."""
    from proxyscale.datamodels.featurize_memory import featurize_memory
    from proxyscale.models.architecture import GPTConfig, count_parameters
    from proxyscale.models.gpt import GPT

    cfg = GPTConfig(50, 16, 24, 2, 4)
    model = GPT(cfg)
    projector = SJLTProjector(count_parameters(cfg), 64, 0, block_sizes=[p.numel() for p in model.parameters()])
    held = sum(t.numel() * t.element_size() for block in projector.blocks for t in block)
    assert held == 12 * count_parameters(cfg)
    with_sketch = featurize_memory(cfg, 3, 64, cuda=False, projector="sjlt")["projector"]
    assert with_sketch - featurize_memory(cfg, 3, 64, cuda=True, projector="dense")["projector"] == held


def test_on_a_gpu_hundreds_of_rows_are_gathered_at_once_with_the_same_result(monkeypatch):
    """On CUDA every gather is a kernel launch: a 760m micro-batch of 16 at k = 15,360 gathers 273 rows of
    k per call (its 49K rows in 180 calls, not 49K), whose buffer the memory model counts; any chunk gives
    the same projection (here the CUDA size on a CPU)."""
    from proxyscale.datamodels import sjlt
    from proxyscale.datamodels.featurize_memory import projector_bytes

    assert sjlt.gather_coordinates(torch.device("cuda"), 16, torch.float32) // 15_360 == 273
    assert sjlt.gather_coordinates(torch.device("cpu"), 16, torch.float32) == sjlt.CHUNK
    assert projector_bytes(10**6, 64, "sjlt", cuda=True) - projector_bytes(10**6, 64, "sjlt", cuda=False) == (
        sjlt.CUDA_GATHER_BYTES
    )
    blocks = [3000, 70, 12_345]
    g = torch.randn(5, sum(blocks), generator=torch.Generator().manual_seed(0))
    small = SJLTProjector(sum(blocks), 64, 1, block_sizes=blocks).project(g, 0)
    monkeypatch.setattr(sjlt, "gather_coordinates", lambda device, batch, dtype: 10**6)  # every row at once
    np.testing.assert_allclose(
        SJLTProjector(sum(blocks), 64, 1, block_sizes=blocks).project(g, 0), small, rtol=1e-5, atol=1e-4
    )
