"""What a config will cost before anything is submitted: jobs, FLOPs, GPU-hours, memory and disk.

:func:`plan` reads only the config (no data, no network) and gives one row per rule and model size of
the language-model rules: the jobs, the FLOPs per job and in all (training: 6 x params x tokens, the
Chinchilla budget ``tokens_per_param x params`` per model; TRAK:
:func:`proxyscale.datamodels.cost.featurize_flops` per shard and
:func:`proxyscale.datamodels.cost.gather_flops` per checkpoint; evaluation: 2 x params x the scored
tokens), the wall hours of one job against its group's runtime x tries (:func:`unfinishable_line`),
GPU-hours at an MFU (assumed per precision, :data:`ASSUMED_MFU`, unless a finished run of the same
config measured it), the micro-batch and peak memory per GPU that the memory models choose on cards of
:data:`CARDS_GB` (and whether the size fits at all), the host memory of the jobs that stream large
arrays, and the disk each rule's outputs take. A vision attribution setting is listed without estimates
(its models are CPU-sized).

The figures are estimates of the models in :mod:`proxyscale.training.memory` and
:mod:`proxyscale.datamodels.featurize_memory`; ``bench/gpu_training.py`` sets them against a GPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from proxyscale.benchmarks import measured_jobs
from proxyscale.config import (
    attribution_setting,
    correlation_distributions,
    datamodel_experiments,
    datamodel_settings,
    lookup,
    needs_q,
    resources,
    selection_methods,
    size_seeds,
    trak_shards,
)
from proxyscale.datamodels.budget import budget_windows
from proxyscale.datamodels.cost import featurize_flops, gather_flops
from proxyscale.datamodels.datamodel import BLOCK_BYTES
from proxyscale.datamodels.featurize_memory import choose_micro_batch, featurize_memory
from proxyscale.datamodels.store import ROW_BLOCK_BYTES
from proxyscale.datamodels.tasks import LMTask
from proxyscale.errors import ConfigError
from proxyscale.models.architecture import GPTConfig, count_parameters, token_budget, training_flops
from proxyscale.selection.memory import report_host_bytes, retrain_host_bytes, select_host_bytes
from proxyscale.selection.registry import extra_noise_seeds, noise_runs
from proxyscale.training.distributed import Group
from proxyscale.training.memory import GIB, choose

DEFAULT_PEAK_TFLOPS = 989.0  # H100 SXM dense bf16, when the config names no peak_tflops
H100_FP32_TFLOPS = 67.0  # H100 SXM dense fp32 without tensor cores (NVIDIA's data sheet)
LLM_FOUNDRY_760M = 6 * 760_470_528 * 63_147 / (DEFAULT_PEAK_TFLOPS * 1e12)
"""llm-foundry's MPT-760m on 8 H100 80GB in bf16 at 2,048 tokens: 63,147 tokens/s per GPU for 760,470,528
parameters (github.com/mosaicml/llm-foundry, scripts/train/benchmarking/README.md); by this project's
6 x params x tokens count, 29.1% of the bf16 peak (its table's 34.9% also counts attention's FLOPs)."""
ASSUMED_MFU = {"bf16": LLM_FOUNDRY_760M, "fp32": LLM_FOUNDRY_760M * H100_FP32_TFLOPS / DEFAULT_PEAK_TFLOPS}
"""Model FLOPs utilisation assumed for a GPU rule until a finished run measures it, by the precision it
computes in, in the one definition used everywhere: the rule's model FLOPs (6ND for training, 2ND for
evaluation, the paper's TRAK cost model) over wall time over the devices' dense bf16 peak. bf16 (training,
retraining, evaluation): llm-foundry's MPT-760m (:data:`LLM_FOUNDRY_760M`). fp32 (TRAK's per-example
gradients, which run without tensor cores): the same share of the fp32 peak, 2.0% of the bf16 one; no
published measurement of per-example gradients was found, so this is the plan's least certain figure."""
CARD_BYTES = {40: 42_298_834_944, 80: 85_520_809_984, 141: 150_754_820_096}
"""The memory of the cards the plan sizes jobs for, by their nominal GB, as the cards report it rather than
the nominal 40e9, 80e9, 141e9: an A100-SXM4-40GB's 40,339 MiB (CUDA 12.2's deviceQuery, what
``torch.cuda.get_device_properties(...).total_memory`` reads), an H100 80GB HBM3's 81,559 MiB and an
H200's 143,771 MiB (nvidia-smi on the machines this project has been lent; CUDA's own total can be a few
hundred MiB lower, which the memory models' 10% margin absorbs; ``bench/gpu_check.py`` prints it)."""
CARDS_GB = tuple(CARD_BYTES)
SHARD_SHARE = 0.5
"""``trak.shards: auto`` plans each featurizing job to need at most this share of its group's runtime: the
fp32 MFU its hours assume is the plan's least certain figure."""
BYTE_VOCAB = 257


@dataclass(frozen=True)
class Row:
    """One rule and size of the plan."""

    rule: str
    size: str
    jobs: int
    group: str = ""  # its resource group (runtime, retries)
    processes: int = 1  # GPUs a job runs on (data-parallel training)
    resumes: bool = False  # a job killed at its time limit resumes in its retry (training, TRAK shards)
    params: int = 0
    flops_per_job: float = 0.0
    gpu: bool = True
    precision: str = "bf16"  # what its GPU work computes in (ASSUMED_MFU)
    memory: dict = field(default_factory=dict)  # card GB -> (micro-batch, peak bytes, checkpointing) or None
    host_bytes: float = 0.0
    disk_bytes: float = 0.0  # outputs kept
    temp_bytes: float = 0.0  # outputs deleted once their readers are done (temp())
    note: str = ""


def vocab_size(config: dict) -> int:
    """The tokenizer's vocabulary without loading it: bytes, the BPE size, or a Hugging Face tokenizer's
    ``tokenizer.vocab_size`` (required for ``kind: hf``: the plan reads no network)."""
    tok = config["tokenizer"]
    if tok["kind"] == "byte":
        return BYTE_VOCAB
    if tok.get("vocab_size"):
        return int(tok["vocab_size"])
    raise ConfigError("tokenizer.vocab_size: the plan needs the Hugging Face tokenizer's vocabulary size")


def _training_memory(cfg: GPTConfig, size: dict, world: int = 1) -> dict:
    """Per card: the micro-batch and peak bytes :func:`proxyscale.training.memory.choose` picks (bf16, a
    fused attention kernel), or None where not even one sequence fits."""
    share = Group(0, world).share(size["batch_size"])  # rank 0's rows, as a job's first process takes them
    out = {}
    for gb in CARDS_GB:
        try:
            c = choose(cfg, share.stop - share.start, CARD_BYTES[gb], True, True, size.get("micro_batch_size", "auto"),
                       size.get("activation_checkpointing", "auto"), world=world)  # fmt: skip
            out[gb] = (c.micro_batch_size, c.estimate.total, c.activation_checkpointing)
        except ConfigError:
            out[gb] = None
    return out


def _featurize_memory(cfg: GPTConfig, trak: dict) -> dict:
    out = {}
    for gb in CARDS_GB:
        try:
            projector = trak.get("projector", "sjlt")
            micro = choose_micro_batch(cfg, trak["batch_size"], trak["proj_dim"], CARD_BYTES[gb], True, projector)
            if trak.get("micro_batch_size", "auto") != "auto":
                micro = min(int(trak["micro_batch_size"]), trak["batch_size"])
            out[gb] = (micro, featurize_memory(cfg, micro, trak["proj_dim"], True, projector)["total"], False)
        except ConfigError:
            out[gb] = None
    return out


def _token_bytes(vocab: int) -> int:
    return 2 if vocab <= 2**16 else 4


def _checkpoint_bytes(params: int) -> float:
    return 4.0 * params  # fp32 weights (optimiser state lives only in the resume file)


def _correlation_rows(config: dict, vocab: int) -> list[Row]:
    """Per size: its models' evaluation (imported), or their training and evaluation, one job per training
    distribution and seed (``seeds``)."""
    T, tpp = config["model"]["context_length"], config["model"]["tokens_per_param"]
    dists, seeds = len(correlation_distributions(config)), size_seeds(config)
    examples = len(config["test_sets"]) * config["evaluation"]["max_examples"]
    rows = []
    for name, spec in config["models"].items():
        p = int(spec.get("params") or 0)
        scored = examples * (spec.get("context_length") or T)  # at most a context of tokens per scored example
        note = "imported: no training" + ("" if p else "; params unknown until loaded (give models.<size>.params)")
        rows.append(
            Row("evaluate_imported", name, jobs=dists, group="evaluate", params=p, flops_per_job=2.0 * p * scored,
                note=note)
        )  # fmt: skip
    train_world = resources(config, "train")["processes"]
    for name, size in config["sizes"].items():
        cfg = GPTConfig.from_size(size, vocab, T)
        p, models = count_parameters(cfg), dists * seeds[name]
        replicated = f"{dists} distributions x {seeds[name]} seeds" if seeds[name] > 1 else ""
        rows.append(
            Row("train", name, jobs=models, group="train", params=p,
                flops_per_job=training_flops(p, token_budget(cfg, tpp)), processes=train_world, resumes=True,
                memory=_training_memory(cfg, size, train_world),
                disk_bytes=models * _checkpoint_bytes(p), note=replicated)
        )  # fmt: skip
        rows.append(
            Row("evaluate", name, jobs=models, group="evaluate", params=p, flops_per_job=2.0 * p * (examples * T),
                note="at most max_examples per test set")
        )  # fmt: skip
    return rows


@dataclass(frozen=True)
class TrakSetup:
    """What the TRAK rows of one experiment's size depend on."""

    cfg: GPTConfig
    params: int
    proj_dim: int
    n_train: int
    n_targets: int
    columns: int  # score columns: targets, or target tasks for selection
    with_q: bool

    @property
    def forward(self) -> float:
        return 2.0 * self.params * self.cfg.context_length  # one window's forward FLOPs

    def featurize_flops(self, shards: int) -> float:
        """One featurizing job's FLOPs, its checkpoint's rows cut into ``shards`` (the largest shard)."""
        return featurize_flops(self.forward, self.params, self.proj_dim, -(-self.n_train // shards), self.with_q)


def trak_setups(config: dict, experiment: str) -> dict[str, TrakSetup]:
    """Per size of a language-model experiment, what its TRAK jobs cost depends on."""
    dm = datamodel_settings(config, experiment)
    block = config["selection"] if experiment == "selection" else attribution_setting(config)
    task = LMTask(vocab_size=vocab_size(config), context_length=block["context_length"])
    n = lookup(config, dm["pool_key"])
    if experiment == "attribution":
        n_targets = columns = config["attribution"]["n_targets"]
    else:
        n_targets, columns = block["n_targets"] * len(block["targets"]), len(block["targets"])
    out = {}
    for name, size in dm["sizes"].items():
        cfg = task.config(size)
        p = count_parameters(cfg)
        k = min(dm["trak"]["proj_dim"], p)
        out[name] = TrakSetup(cfg, p, k, n, n_targets, columns, needs_q(config, experiment))
    return out


def _gpu_seconds(flops: float, config: dict, precision: str) -> float:
    peak = float(config.get("peak_tflops") or DEFAULT_PEAK_TFLOPS) * 1e12
    return flops / (ASSUMED_MFU[precision] * peak)


def auto_shards(config: dict, experiment: str) -> dict[str, int]:
    """``trak.shards: auto``: per size, the fewest featurizing jobs per checkpoint of which each needs at
    most :data:`SHARD_SHARE` of the datamodels group's runtime by the plan's estimate (at most one per
    training example); one for the vision setting, whose models are CPU-sized."""
    if experiment == "attribution" and config["attribution"]["setting"] == "vision":
        return dict.fromkeys(attribution_setting(config)["sizes"], 1)
    budget = SHARD_SHARE * resources(config, "datamodels")["runtime"] * 60
    return {
        name: min(t.n_train, max(1, math.ceil(_gpu_seconds(t.featurize_flops(1), config, "fp32") / budget)))
        for name, t in trak_setups(config, experiment).items()
    }


def _datamodel_rows(config: dict, experiment: str, vocab: int) -> list[Row]:
    dm = datamodel_settings(config, experiment)
    block = config["selection"] if experiment == "selection" else attribution_setting(config)
    T = block["context_length"]
    task = LMTask(vocab_size=vocab, context_length=T)
    trak, M = dm["trak"], dm["checkpoints"]
    store_item = 2 if trak.get("store_dtype", "float32") == "float16" else 4
    tpp = dm["budget"]["tokens_per_param"]
    world = resources(config, "datamodels")["processes"]
    shards, setups = trak_shards(config, experiment), trak_setups(config, experiment)
    ref_setup = setups[dm["reference"]]
    n, n_targets = ref_setup.n_train, ref_setup.n_targets  # the experiment's pool and targets, as every size's
    rows = []
    for name, size in dm["sizes"].items():
        t, N = setups[name], shards[name]
        cfg, p, k = t.cfg, t.params, t.proj_dim
        rows.append(
            Row(f"{experiment}: datamodel_train", name, jobs=M, group="datamodels", params=p, processes=world,
                resumes=True,
                flops_per_job=training_flops(p, budget_windows(task, size, tpp) * T),
                memory=_training_memory(cfg, size, world),
                host_bytes=8.0 * n,  # a model's seeded permutation of the pool
                disk_bytes=M * _checkpoint_bytes(p))
        )  # fmt: skip
        shard_bytes = n * k * store_item + N * k * k * 4.0 + (4.0 * n if t.with_q else 0.0)  # Phi, partials, Q
        kept = bool(trak.get("keep_gradients"))
        rows.append(
            Row(f"{experiment}: trak_featurize", name, jobs=M * N, group="datamodels", params=p, resumes=True,
                flops_per_job=t.featurize_flops(N), precision="fp32", memory=_featurize_memory(cfg, trak),
                host_bytes=ROW_BLOCK_BYTES + trak["batch_size"] * (T + 1) * 8 + 4.0 * p,
                disk_bytes=M * shard_bytes if kept else 0.0, temp_bytes=0.0 if kept else M * shard_bytes,
                note=f"{N:,} shard{'s' if N > 1 else ''} per checkpoint" + ("; with Q" if t.with_q else ""))
        )  # fmt: skip
        rows.append(
            Row(f"{experiment}: trak", name, jobs=M, group="datamodels", params=p,
                flops_per_job=gather_flops(t.forward, p, k, n, t.n_targets, t.columns), precision="fp32",
                host_bytes=2 * ROW_BLOCK_BYTES + 8.0 * k * k,
                disk_bytes=M * (4.0 * n * t.columns + (4.0 * n if t.with_q else 0.0)),
                note="reads every shard: its I/O is not in the hours")
        )  # fmt: skip
        rows.append(
            Row(f"{experiment}: datamodel", name, jobs=1, params=p, gpu=False, host_bytes=BLOCK_BYTES * 3 + 4.0 * n * M,
                disk_bytes=4.0 * n * t.columns)
        )  # fmt: skip
    ref, cfg, p = dm["sizes"][dm["reference"]], ref_setup.cfg, ref_setup.params
    reference = {"params": p, "flops_per_job": training_flops(p, budget_windows(task, ref, tpp) * T),
                 "memory": _training_memory(cfg, ref, world), "group": "datamodels", "processes": world,
                 "resumes": True}  # fmt: skip
    if experiment == "attribution":
        m = config["attribution"]["lds"]["subsets"]
        rows.append(
            Row("attribution: lds_subset", dm["reference"], jobs=m, **reference, host_bytes=2.0 * n,
                disk_bytes=m * (n + 4 * n_targets))
        )  # fmt: skip
        rows.append(
            Row("attribution: lds (report)", "-", jobs=1, gpu=False, host_bytes=5.0 * m * n + 3 * BLOCK_BYTES,
                note="the subsets' masks, as booleans and float32")
        )  # fmt: skip
    else:
        runs = len(selection_methods(config)) * len(block["targets"])
        seeds = config["selection"]["retrain_seeds"]
        extra = extra_noise_seeds(config["selection"])
        noisy = len(noise_runs(block["targets"], selection_methods(config), dm["reference"], extra))
        more = f", {noisy} x {extra} more (noise_seeds)" if extra else ""
        rows.append(
            Row("selection: selection_retrain", dm["reference"], jobs=runs * seeds + noisy * extra, **reference,
                host_bytes=retrain_host_bytes(n), note=f"{runs} selections x {seeds} seeds{more}")
        )  # fmt: skip
        rows.append(
            Row("selection: select", "-", jobs=runs, gpu=False, host_bytes=select_host_bytes(n, T),
                disk_bytes=runs * 17.0 * n,
                note="pool-sized score and order vectors, the classifier's sample, a block of n-grams")
        )  # fmt: skip
        rows.append(
            Row("selection: dsdm (report)", "-", jobs=1, gpu=False, host_bytes=report_host_bytes(n, runs),
                note="every selection's table of the pool")
        )  # fmt: skip
    return rows


def _data_rows(config: dict, vocab: int) -> list[Row]:
    """Token shards: the tokens the largest needs ask for (the reference's budget per distribution, the
    attribution windows, the selection pool), in the shards' token type; none without sources."""
    if not config["sources"]:
        return []
    T, tpp = config["model"]["context_length"], config["model"]["tokens_per_param"]
    sizes = {name: GPTConfig.from_size(size, vocab, T) for name, size in config["sizes"].items()}
    trained = sizes.get(config["reference"]) or max(sizes.values(), key=count_parameters, default=None)
    need = {}
    if trained is not None:  # the largest size trained here when the reference is imported
        label = "reference" if config["reference"] in sizes else "largest trained size's"
        need = {f"one distribution's {label} budget": token_budget(trained, tpp)}
    if config.get("attribution", {}).get("setting") == "lm":
        need["attribution windows"] = config["attribution"]["n_train"] * (
            attribution_setting(config)["context_length"] + 1
        )
    if "selection" in config:
        need["selection pool"] = config["selection"]["pool"]["size"] * (config["selection"]["context_length"] + 1)
    largest = max(need.values(), default=0)
    note = "; ".join(f"{k}: {v / 1e9:,.1f}B tokens" for k, v in need.items())
    return [
        Row("data: shards", "-", jobs=len(config["sources"]), gpu=False, disk_bytes=largest * _token_bytes(vocab),
            note=note)
    ]  # fmt: skip


def plan(config: dict, measured_mfu: dict[str, float] | None = None, benchmark_dir=None) -> pd.DataFrame:
    """The plan of a validated config, one row per rule and size (module docstring). ``measured_mfu``
    (size -> MFU of finished training runs) replaces the assumed MFU of those sizes' bf16 GPU rules; the
    benchmark files of finished jobs under ``benchmark_dir`` (:mod:`proxyscale.benchmarks`) replace the
    estimated hours of one job and host memory of their rows, whose MFU and GPU-hours follow from them."""
    references = {e: datamodel_settings(config, e)["reference"] for e in datamodel_experiments(config)}
    benchmarks = measured_jobs(benchmark_dir, references) if benchmark_dir else {}
    vocab = vocab_size(config)
    peak = float(config.get("peak_tflops") or DEFAULT_PEAK_TFLOPS) * 1e12
    rows = _data_rows(config, vocab) + _correlation_rows(config, vocab)
    if config.get("attribution", {}).get("setting") == "lm":
        rows += _datamodel_rows(config, "attribution", vocab)
    elif "attribution" in config:
        rows.append(Row("attribution (vision)", "-", jobs=0, gpu=False, note="not estimated: CPU-sized models"))
    if "selection" in config:
        rows += _datamodel_rows(config, "selection", vocab)
    measured = measured_mfu or {}
    records = []
    for r in rows:
        bench = benchmarks.get((r.rule, r.size))
        known = r.precision == "bf16" and r.size in measured
        mfu = measured[r.size] if known else ASSUMED_MFU[r.precision]
        if bench and r.flops_per_job:  # the MFU its jobs reached: their FLOPs over their measured wall time
            mfu = r.flops_per_job / (bench.seconds * peak * r.processes)
        total = r.jobs * r.flops_per_job
        group = resources(config, r.group) if r.group else {}
        retries = group.get("retries") or 0
        tries = retries + 1 if r.resumes else 1  # a job that does not resume starts again in its retry
        per_job = r.flops_per_job / (mfu * peak * r.processes) / 3600 if r.gpu else float("nan")  # wall hours
        if bench:
            per_job = bench.seconds / 3600
        # judged only where its group asks for a GPU: the hours are GPU-hours (a CPU group runs elsewhere)
        limit = group["runtime"] / 60 * tries if r.gpu and group and group["gpu"] > 0 else float("nan")
        record = {
            "rule": r.rule,
            "size": r.size,
            "jobs": r.jobs,
            "params": r.params,
            "flops_per_job": r.flops_per_job,
            "flops": total,
            "mfu": mfu if r.gpu else float("nan"),
            "mfu_source": ("benchmarked" if bench else "measured" if known else f"assumed {r.precision}")
            if r.gpu
            else "",
            "gpu_hours": total / (mfu * peak) / 3600 if r.gpu else 0.0,
            "hours_per_job": per_job,
            "runtime_hours": group["runtime"] / 60 if limit == limit else float("nan"),
            "retries": retries,
            "tries": tries,
            "finishes": bool(per_job <= limit) if limit == limit else pd.NA,
            "host_gib": (bench.max_rss_bytes if bench else r.host_bytes) / GIB,
            "measured_jobs": bench.jobs if bench else 0,
            "disk_gb": r.disk_bytes / 1e9,
            "temp_disk_gb": r.temp_bytes / 1e9,
            "note": r.note,
        }
        for gb in CARDS_GB:
            choice = r.memory.get(gb) if r.memory else None
            record[f"fits_{gb}gb"] = (choice is not None) if r.memory else pd.NA
            record[f"micro_batch_{gb}gb"] = choice[0] if choice else pd.NA
            record[f"peak_gib_{gb}gb"] = choice[1] / GIB if choice else float("nan")
            record[f"checkpointing_{gb}gb"] = bool(choice and choice[2])
        records.append(record)
    table = pd.DataFrame(records)
    table["finishes"] = table["finishes"].astype("boolean")
    for gb in CARDS_GB:
        table[f"fits_{gb}gb"] = table[f"fits_{gb}gb"].astype("boolean")
        table[f"micro_batch_{gb}gb"] = table[f"micro_batch_{gb}gb"].astype("Int64")
    return table


def _figure(x: float) -> str:
    """Three significant figures, thousands separated (a plan spans tiny CPU runs and the paper's)."""
    if x == 0 or x != x:
        return "0" if x == 0 else ""
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def plan_markdown(table: pd.DataFrame, config: dict) -> str:
    """``results/plan.md``: the per-rule table and the totals."""
    peak = float(config.get("peak_tflops") or DEFAULT_PEAK_TFLOPS)
    lines = [
        "# Plan",
        "",
        "Estimated from the config alone (no data read). MFU is model FLOPs over wall time over the GPUs' "
        f"dense bf16 peak, {peak:g} TFLOP/s per GPU (config peak_tflops; default: H100 SXM); model FLOPs are "
        "6 x params x tokens for training with the Chinchilla budget, 2 x params x tokens for evaluation, and "
        "the paper's cost model for TRAK (appendix A.3.2). GPU-hours at an MFU measured by a finished run of "
        f"this config where one reported it, else assumed: bf16 rules {ASSUMED_MFU['bf16']:.1%}, llm-foundry's "
        "MPT-760m on H100s (63,147 tokens/s per GPU, scripts/train/benchmarking/README.md of "
        "mosaicml/llm-foundry, counted as 6ND); fp32 rules (TRAK's per-example gradients) "
        f"{ASSUMED_MFU['fp32']:.1%}, the same share of the fp32 peak (67 TFLOP/s on an H100 SXM), not a "
        "measurement. "
        "Micro-batch and peak memory per GPU: the memory models' choice for each card (bf16, fused attention; "
        "TRAK: fp32 per-example gradients), with activation checkpointing where marked (*).",
        "",
    ]
    if measured := int(table["measured_jobs"].sum()):
        rows = ", ".join(f"{r.rule} {r.size}" for r in table.itertuples() if r.measured_jobs)
        lines += [
            f"Measured, not estimated ({rows}): hours per job are the mean wall time, host GiB the largest "
            f"resident memory, and MFU (benchmarked) their FLOPs over that time, of {measured:,} finished jobs' "
            "benchmark files (results/benchmarks/), on the machines that ran them.",
            "",
        ]
    head = ["rule", "size", "jobs", "PFLOPs", "GPU-hours", "hours per job (runtime x tries)", "MFU"]  # wall hours
    head += [f"{gb} GB: micro-batch (peak GiB)" for gb in CARDS_GB] + ["host GiB", "disk GB (temporary)", "note"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in table.itertuples(index=False):
        cells = [r.rule, r.size, f"{r.jobs:,}", _figure(r.flops / 1e15), _figure(r.gpu_hours)]
        if r.finishes is pd.NA:
            cells.append("")
        else:
            limit = f"{_figure(r.runtime_hours)} x {r.tries}"
            cells.append(f"{_figure(r.hours_per_job)} ({limit}){'' if r.finishes else ' CANNOT FINISH'}")
        cells.append("" if r.mfu_source == "" else f"{r.mfu:.1%} {r.mfu_source}")
        for gb in CARDS_GB:
            fits, micro = getattr(r, f"fits_{gb}gb"), getattr(r, f"micro_batch_{gb}gb")
            star = "*" if getattr(r, f"checkpointing_{gb}gb") else ""
            if fits is pd.NA:
                cells.append("")
            else:
                cells.append(f"{micro}{star} ({getattr(r, f'peak_gib_{gb}gb'):.1f})" if fits else "does not fit")
        temporary = f" ({_figure(r.temp_disk_gb)})" if r.temp_disk_gb else ""
        cells += [_figure(r.host_gib), _figure(r.disk_gb) + temporary, r.note]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    fits = bool(table["fits_80gb"].dropna().all())
    lines += [
        "",
        f"**Total:** {table['jobs'].sum():,} jobs, {table['flops'].sum() / 1e18:,.1f} EFLOPs, "
        f"{table['gpu_hours'].sum():,.0f} GPU-hours, {table['disk_gb'].sum() / 1e3:,.1f} TB of outputs kept "
        f"(and {table['temp_disk_gb'].sum() / 1e3:,.1f} TB deleted once read); "
        f"every GPU job {'fits' if fits else 'does NOT fit'} an 80 GB card; largest host memory of a job "
        f"{table['host_gib'].max():.1f} GiB.",
        "",
        unfinishable_line(table),
        "",
    ]
    return "\n".join(lines)


def unfinishable_line(table: pd.DataFrame) -> str:
    """One line: every rule and size whose jobs the plan finds cannot finish within their group's runtime
    x (retries + 1) (x 1 for a job that does not resume), or that every GPU job can."""
    stuck = table[table["finishes"].eq(False).fillna(False)]
    if stuck.empty:
        return "Every GPU job finishes within its group's runtime x (retries + 1) by the plan's estimate."
    jobs = ", ".join(f"{r.rule} {r.size} ({_figure(r.hours_per_job)} h per job)" for r in stuck.itertuples())
    return (
        f"Cannot finish within their group's runtime x (retries + 1): {jobs}; raise resources.<group>.runtime or "
        "retries, shard TRAK (trak.shards: auto), or set check_runtimes: false to run anyway"
    )


def runtime_check(config: dict) -> str | None:
    """The plan's :func:`unfinishable_line` when some job cannot finish, for a config with GPUs (the
    workflow stops at the start with it); None when all can, or when the plan cannot be made from the
    config alone (a Hugging Face tokenizer without ``vocab_size``)."""
    try:
        table = plan(config)
    except ConfigError:
        return None
    return None if table["finishes"].fillna(True).all() else unfinishable_line(table)
