"""`snakemake plan`: the cost of a config before anything runs, from the config alone."""

from __future__ import annotations

import math
import subprocess

import pandas as pd
import pytest
import torch
import yaml

from conftest import REPO, validated
from proxyscale.errors import ConfigError
from proxyscale.models.architecture import GPTConfig
from proxyscale.plan import ASSUMED_MFU, DEFAULT_PEAK_TFLOPS, plan


def _paper() -> dict:
    """The paper preset as the workflow sees it (schema defaults filled in)."""
    return validated(yaml.safe_load((REPO / "configs/paper_lm.yaml").read_text()))


def _params(d: int, layers: int, vocab: int) -> int:
    """Parameters of this GPT by hand: tied embedding, per layer two LayerNorms (2 x 2d), attention
    (4 d^2 + 4d), MLP (8 d^2 + 5d); a final LayerNorm (2d); ALiBi has no position embedding."""
    return vocab * d + layers * (4 * d + 4 * d * d + 4 * d + 8 * d * d + 5 * d) + 2 * d


@pytest.fixture(scope="module")
def paper_plan(tmp_path_factory):
    work = tmp_path_factory.mktemp("plan")
    cmd = ["snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(work), "--cores", "1"]
    cmd += ["--configfile", str(REPO / "configs/paper_lm.yaml"), "--replace-workflow-config", "plan"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return pd.read_parquet(work / "results/plan.parquet"), (work / "results/plan.md").read_text()


def test_the_paper_preset_trains_760m_on_an_80gb_card(paper_plan):
    table, md = paper_plan
    train = table[(table["rule"] == "train") & (table["size"] == "760m")].iloc[0]
    assert (
        bool(train["fits_80gb"]) and 1 <= train["micro_batch_80gb"] < 256 and train["peak_gib_80gb"] < 80 * 1e9 / 2**30
    )
    assert table["fits_80gb"].dropna().all()  # every GPU job of the preset, TRAK included
    assert "every GPU job fits an 80 GB card" in md


def test_training_flops_and_gpu_hours_are_six_n_d_by_hand(paper_plan):
    table, md = paper_plan
    config = _paper()
    vocab, peak = config["tokenizer"]["vocab_size"], DEFAULT_PEAK_TFLOPS * 1e12
    dists = len(config["distributions"]) + len(config["selection"]["distributions"])
    by_rule = table.set_index(["rule", "size"])
    hand_hours = 0.0
    for name, size in config["sizes"].items():
        p = _params(size["d_model"], size["n_layers"], vocab)
        row = by_rule.loc[("train", name)]
        assert row["params"] == p and row["jobs"] == dists
        assert row["flops_per_job"] == pytest.approx(6 * p * math.ceil(20 * p))
        hand_hours += dists * 6 * p * math.ceil(20 * p) / (ASSUMED_MFU["bf16"] * peak) / 3600
    assert table[table["rule"] == "train"]["gpu_hours"].sum() == pytest.approx(hand_hours)
    # the checkpoints of the datamodels: each a Chinchilla budget in windows of 2,048 scored tokens
    p = _params(1536, 24, vocab)
    row = by_rule.loc[("attribution: datamodel_train", "760m")]
    assert row["jobs"] == 5 and row["flops_per_job"] == pytest.approx(6 * p * math.ceil(20 * p / 2048) * 2048)
    lds = by_rule.loc[("attribution: lds_subset", "760m")]
    assert lds["jobs"] == 100 and lds["flops_per_job"] == row["flops_per_job"]
    gpu = table[table["mfu_source"] != ""]
    total = sum(gpu.loc[gpu["mfu_source"] == f"assumed {k}", "flops"].sum() / (ASSUMED_MFU[k] * peak) / 3600
                for k in ("bf16", "fp32"))  # fmt: skip
    assert set(gpu["mfu_source"]) == {"assumed bf16", "assumed fp32"}
    assert set(gpu.loc[gpu["rule"].str.contains(": trak"), "mfu_source"]) == {"assumed fp32"}
    assert table["gpu_hours"].sum() == pytest.approx(total)
    assert f"{total:,.0f} GPU-hours" in md


def test_trak_keeps_scores_and_deletes_its_n_by_k_gradients_once_read(paper_plan):
    """The paper preset's selection at 760m: each of the 3 checkpoints' shards hold float16 gradients and
    a k x k fp32 partial each (no Q: q_term false), deleted once scored; kept are the scores (2 target
    tasks) alone."""
    table, md = paper_plan
    rows = table[table["size"] == "760m"].set_index("rule")
    featurize, gather = rows.loc["selection: trak_featurize"], rows.loc["selection: trak"]
    n, k, shards = 80_000_000, 15360, featurize["jobs"] // 3
    assert featurize["disk_gb"] == 0 and featurize["temp_disk_gb"] * 1e9 == pytest.approx(
        3 * (n * k * 2 + shards * k * k * 4)
    )
    assert gather["jobs"] == 3 and gather["disk_gb"] * 1e9 == pytest.approx(3 * 4 * n * 2)
    assert bool(featurize["fits_80gb"]) and featurize["micro_batch_80gb"] >= 1
    assert "TB of outputs kept (and" in md


def test_auto_shards_keep_every_featurizing_job_within_half_its_runtime(paper_plan):
    """trak.shards: auto cuts each checkpoint into the fewest shards of which each needs at most half the
    48-hour runtime, so the preset as shipped plans no job that cannot finish (train 760m resumes over its
    4 submissions); one shard fewer would need more than half."""
    from proxyscale.plan import auto_shards

    table, md = paper_plan
    featurize = table[table["rule"].str.endswith("trak_featurize")]
    assert (featurize["hours_per_job"] <= 24).all() and (featurize["runtime_hours"] == 48).all()
    config = _paper()
    shards = auto_shards(config, "selection")
    assert (
        shards["760m"] == featurize.set_index(["rule", "size"]).loc[("selection: trak_featurize", "760m"), "jobs"] // 3
    )
    config["selection"]["trak"]["shards"] = shards["760m"] - 1
    fewer = plan(config).set_index(["rule", "size"]).loc[("selection: trak_featurize", "760m"), "hours_per_job"]
    assert fewer > 24
    assert table["finishes"].dropna().all() and "Every GPU job finishes within" in md


def test_a_job_that_cannot_finish_is_named_in_one_line_and_stops_the_workflow(tmp_path):
    """With one shard per checkpoint (the paper's one TRAK job per checkpoint) and no retries, the plan's
    last line names every rule and size that cannot finish, and the workflow stops at the start with it,
    unless check_runtimes is false."""
    from proxyscale.plan import plan_markdown, runtime_check

    config = _paper()
    for exp in ("attribution", "selection"):
        config[exp]["trak"]["shards"] = 1
    config["resources"]["train"]["retries"] = 0
    line = runtime_check(config)
    assert line.startswith("Cannot finish within their group's runtime x (retries + 1): train 760m (66.3 h per job), ")
    assert "selection: trak_featurize 760m (37,075 h per job)" in line and "trak 37m" not in line
    assert "set check_runtimes: false to run anyway" in line and line in plan_markdown(plan(config), config)
    (tmp_path / "overlay.yaml").write_text(
        yaml.safe_dump({k: config[k] for k in ("attribution", "selection", "resources")})
    )
    cmd = ["snakemake", "-n", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path), "--configfile"]
    cmd += [str(REPO / "configs/paper_lm.yaml"), str(tmp_path / "overlay.yaml")]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and line in result.stdout + result.stderr, result.stdout[-2000:]
    (tmp_path / "anyway.yaml").write_text("check_runtimes: false\n")
    result = subprocess.run([*cmd, str(tmp_path / "anyway.yaml")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "Cannot finish" not in result.stdout + result.stderr, result.stdout[-2000:]


def test_each_seed_of_a_size_is_a_train_and_an_evaluate_job():
    config = _paper()
    dists = len(config["distributions"]) + len(config["selection"]["distributions"])
    single = plan(config).set_index(["rule", "size"])
    config["seeds"] = {"760m": 3}
    seeded = plan(config).set_index(["rule", "size"])
    for rule in ("train", "evaluate"):
        assert seeded.loc[(rule, "760m"), "jobs"] == 3 * dists and seeded.loc[(rule, "37m"), "jobs"] == dists
        assert seeded.loc[(rule, "760m"), "gpu_hours"] == pytest.approx(3 * single.loc[(rule, "760m"), "gpu_hours"])
    assert seeded.loc[("train", "760m"), "disk_gb"] == pytest.approx(3 * single.loc[("train", "760m"), "disk_gb"])
    assert seeded.loc[("train", "760m"), "note"] == f"{dists} distributions x 3 seeds"
    assert single.loc[("train", "760m"), "note"] == ""  # one seed: the plan as before seeds existed
    config["seeds"] = 2
    assert (plan(config).set_index("rule").loc["train", "jobs"] == 2 * dists).all()


def test_measured_mfu_replaces_the_assumed_one():
    config = _paper()
    config["peak_tflops"] = 100.0
    base, measured = plan(config), plan(config, {"37m": 0.7})
    row = (base["rule"] == "train") & (base["size"] == "37m")
    assert measured.loc[row, "mfu_source"].item() == "measured"
    ratio = ASSUMED_MFU["bf16"] / 0.7
    assert measured.loc[row, "gpu_hours"].item() == pytest.approx(base.loc[row, "gpu_hours"].item() * ratio)
    trak = (base["rule"] == "selection: trak_featurize") & (base["size"] == "37m")  # fp32: not training's MFU
    assert measured.loc[trak, "mfu_source"].item() == "assumed fp32"
    assert measured.loc[trak, "gpu_hours"].item() == base.loc[trak, "gpu_hours"].item()


def test_the_assumed_mfu_is_llm_foundrys_760m_by_six_n_d_and_peaks_are_dense_bf16():
    """63,147 tokens/s per H100 for 760,470,528 parameters is 29.1% of 989 TFLOP/s by 6ND (0.2913) (llm-foundry's
    own 34.9% counts attention's FLOPs); an H100 NVL's dense bf16 peak is 835 TFLOP/s, an SXM's 989."""
    from proxyscale.device import gpu_peak_flops

    assert ASSUMED_MFU["bf16"] == pytest.approx(0.2913, abs=5e-5)
    assert ASSUMED_MFU["fp32"] == pytest.approx(0.2913 * 67 / 989, abs=5e-5)
    assert gpu_peak_flops("NVIDIA H100 NVL") == 835e12 and gpu_peak_flops("NVIDIA H100 80GB HBM3") == 989e12
    assert gpu_peak_flops("NVIDIA H100 PCIe") == 756e12 and gpu_peak_flops("NVIDIA H200 NVL") == 835e12


def test_a_hub_tokenizer_without_its_vocabulary_size_is_one_line_naming_the_key():
    config = _paper()
    del config["tokenizer"]["vocab_size"]
    with pytest.raises(ConfigError, match="tokenizer.vocab_size: the plan needs"):
        plan(config)


def test_an_imported_reference_is_evaluated_not_trained_and_its_flops_need_its_params():
    config = _paper()
    ref = "760m"
    config["sizes"].pop(ref)
    dists = {d: {"hub": f"org/{d}", "revision": "main"} for d in config["distributions"]}
    dists.update(
        {s.replace("/", "-"): {"hub": "org/x", "revision": "main"} for s in config["selection"]["distributions"]}
    )
    config["models"] = {ref: {"tokens": 15e9, "params": 757_000_000, "context_length": 4096, "checkpoints": dists}}
    table = plan(config).set_index(["rule", "size"])
    row = table.loc[("evaluate_imported", ref)]
    scored = len(config["test_sets"]) * config["evaluation"]["max_examples"] * 4096  # its own context
    assert row["jobs"] == len(dists) and row["flops_per_job"] == 2.0 * 757_000_000 * scored
    assert ("train", ref) not in table.index and ("train", "353m") in table.index
    # the shards hold the largest trained size's budget: 353m's
    assert "one distribution's largest trained size's budget" in table.loc[("data: shards", "-"), "note"]
    del config["models"][ref]["params"]
    unknown = plan(config).set_index(["rule", "size"]).loc[("evaluate_imported", ref)]
    assert unknown["flops"] == 0 and "params unknown until loaded" in unknown["note"]


def test_an_unset_max_examples_is_the_schemas_default_in_the_plan_too():
    raw = yaml.safe_load((REPO / "configs/paper_lm.yaml").read_text())
    raw.get("evaluation", {}).pop("max_examples", None)
    config = validated(raw)
    assert config["evaluation"]["max_examples"] == 500
    row = plan(config).set_index(["rule", "size"]).loc[("evaluate", "37m")]
    T = config["model"]["context_length"]
    assert row["flops_per_job"] == 2.0 * row["params"] * len(config["test_sets"]) * 500 * T


def test_the_plans_micro_batch_on_each_card_is_the_one_a_job_there_picks(monkeypatch):
    """For every language-model size of the preset and every card, the micro-batch the plan shows is the
    one a training job (recipe_for) and a TRAK job (trak_micro_batch) choose on a CUDA device reporting
    that card's memory: one memory model, one card size, in both places."""
    from proxyscale.datamodels import featurize_memory
    from proxyscale.datamodels.tasks import LMTask
    from proxyscale.models.gpt import GPT
    from proxyscale.plan import CARD_BYTES
    from proxyscale.training import memory
    from proxyscale.training.distributed import Group

    config = _paper()
    table = plan(config).set_index(["rule", "size"])
    cuda = torch.device("cuda")
    checked = 0
    for gb, capacity in CARD_BYTES.items():
        monkeypatch.setattr(memory, "device_memory", lambda device, c=capacity: c)
        monkeypatch.setattr(featurize_memory, "device_memory", lambda device, c=capacity: c)
        for name, size in config["sizes"].items():
            cfg = GPTConfig.from_size(size, config["tokenizer"]["vocab_size"], config["model"]["context_length"])
            recipe, _ = memory.recipe_for(size, config["training"], cfg, cuda, Group(), f"sizes.{name}")
            assert table.loc[("train", name), f"micro_batch_{gb}gb"] == recipe.micro_batch_size
            checked += 1
        dm = config["selection"]
        task = LMTask(config["tokenizer"]["vocab_size"], dm["context_length"])
        for name, size in dm["sizes"].items():
            with torch.device("meta"):
                model = GPT(task.config(size))  # its shape alone: the TRAK job sizes from model.cfg
            micro = featurize_memory.trak_micro_batch(model, dm["trak"], cuda)
            assert table.loc[("selection: trak_featurize", name), f"micro_batch_{gb}gb"] == micro
            checked += 1
    assert checked == len(CARD_BYTES) * (len(config["sizes"]) + len(config["selection"]["sizes"]))


def test_a_job_is_held_to_its_wall_hours_and_to_one_try_unless_it_resumes():
    """Training on 8 GPUs takes an eighth of its GPU-hours in wall time; a TRAK gather or an evaluation
    starts again in its retry, so its limit is one runtime, while training and TRAK shards resume."""
    config = _paper()
    config["resources"]["train"]["processes"] = 8
    table = plan(config).set_index(["rule", "size"])
    train = table.loc[("train", "760m")]
    assert train["hours_per_job"] == pytest.approx(train["gpu_hours"] / train["jobs"] / 8)
    assert train["tries"] == 4 and table.loc[("selection: trak_featurize", "760m"), "tries"] == 4
    assert table.loc[("selection: trak", "760m"), "tries"] == 1 and table.loc[("evaluate", "760m"), "tries"] == 1


def test_the_vision_preset_plans_and_passes_the_start_check():
    """The vision attribution setting has no estimates: one row, and nothing that cannot finish."""
    from proxyscale.plan import runtime_check

    config = _paper()
    overlay = yaml.safe_load((REPO / "configs/paper_vision.yaml").read_text())
    config["attribution"] = overlay["attribution"]
    config = validated(config)
    table = plan(config)
    assert table.loc[table["rule"] == "attribution (vision)", "jobs"].tolist() == [0]
    assert runtime_check(config) is None
