# The names every stage's rules share (sizes, distributions, runs, ...) and the input and params functions
# of every stage (rule files hold rules only; paths come from proxyscale/layout.py, rule resources and
# environments from proxyscale/config.py). Each params function returns only the config slice its rule
# depends on, which is what keeps reruns exact.
from pathlib import Path

from proxyscale.config import (
    attribution_setting,
    check_config,
    conda_env,
    correlation_distributions,
    correlation_sizes,
    datamodel_experiments,
    datamodel_settings,
    dataset_sources,
    imported_checkpoint,
    needs_q,
    proxies,
    resolve_data_paths,
    rule_resources,
    rule_retries,
    rule_threads,
    selection_distributions,
    selection_methods,
    size_seeds,
    tokenizer_spec,
    trak_shards,
    uses_gpus,
)
from proxyscale.errors import ConfigError
from proxyscale.layout import REPORTS, RESULTS, artifact_path, one_of, replicate_path, replicate_runs, shard_name
from proxyscale.selection.registry import method_params, parse_method

config.update(resolve_data_paths(config, workflow.basedir))  # the embedded data, from any working directory
try:
    check_config(config)
except ConfigError as exc:
    raise WorkflowError(f"invalid config: {exc}") from None
if workflow.is_main_process and config["check_runtimes"] and uses_gpus(config):
    from proxyscale.plan import runtime_check  # the cost model, only for configs that ask for GPUs

    if stuck := runtime_check(config):
        raise WorkflowError(stuck)

CORRELATION_DIR = f"{RESULTS}/correlation"
ATTRIBUTION_DIR = f"{RESULTS}/attribution"
SELECTION_DIR = f"{RESULTS}/selection"
LOGS = f"{RESULTS}/logs"
BENCHMARKS = f"{RESULTS}/benchmarks"  # the costliest rules' wall time and memory per job (snakemake plan reads them)

# Scale correlation: every size trained (sizes) or imported (models) on every distribution, evaluated
# on every test set.
SOURCES = list(config["sources"])
SELECTION_DISTRIBUTIONS = selection_distributions(config)  # selections trained on as distributions
DISTRIBUTIONS = correlation_distributions(config)
TRAINED_SIZES = list(config["sizes"])
IMPORTED_SIZES = list(config.get("models", {}))
SIZES = correlation_sizes(config)
TESTS = list(config["test_sets"])
PROXIES = proxies(config)
REFERENCE = config["reference"]
RUNS = [(d, s) for d in DISTRIBUTIONS for s in SIZES]
TRAINED_RUNS = [(d, s) for d, s in RUNS if s in TRAINED_SIZES]
IMPORTED_RUNS = [(d, s) for d, s in RUNS if s in IMPORTED_SIZES]
SEEDS = size_seeds(config)  # replicates of each size (seeds:); replicate k trains with seed + k
REPLICATES = replicate_runs(DISTRIBUTIONS, SIZES, SEEDS)  # (dist, size, replicate) of every model
BPE_PATH = artifact_path("bpe")  # where train_tokenizer writes the BPE of tokenizer.kind bpe
TOKENIZER = tokenizer_spec(config, BPE_PATH)  # a trained BPE's entry names its file
TOKENIZER_FILES = [TOKENIZER["path"]] if "path" in TOKENIZER else []  # what tokenised artifacts depend on
TESTSET_FILES = [artifact_path("testset", test=t) for t in TESTS]
HF_EXPORTS = [artifact_path("hf_export", dist=d, size=s) for d, s in TRAINED_RUNS]  # export_hf's models
LOSS_KEYS = [(d, s, k, t) for d, s, k in REPLICATES for t in TESTS]
SELECTION_TARGETS = list(config.get("selection", {}).get("targets", []))
RESERVED_TESTS = [t for t in SELECTION_TARGETS if t in TESTS]  # their DsDm target parts stay out
CORRELATION_REPORT = REPORTS["correlation"]
NOISE_TABLE = f"{CORRELATION_DIR}/noise.parquet"  # per (test set, size): seed noise (seeds:)
# the decision probabilities (report.decision_probability): per decision, their calibration, per test set and proxy
DECISION_TABLES = {
    "decisions": f"{CORRELATION_DIR}/decisions.parquet",
    "reliability": f"{CORRELATION_DIR}/reliability.parquet",
    "safe": f"{CORRELATION_DIR}/safe_decisions.parquet",
}
# {shard name: token stream path} of each training distribution: its sources' shards, or its selection's
TRAINING_SHARDS = {
    **{
        d: {s: artifact_path("shard", source=s) for s in sorted(config["distributions"][d])}
        for d in config["distributions"]
    },
    **{d: {d: artifact_path("selected_shard", target=t, method=m)} for d, (t, m) in SELECTION_DISTRIBUTIONS.items()},
}

# The experiments that build TRAK datamodels share their rules through the {exp} wildcard; a config
# without an experiment's block has none of its rules (the scale correlation needs neither). Each
# size of an experiment trains M models, {model_id} 0 to M - 1.
DATAMODELS = {e: datamodel_settings(config, e) for e in datamodel_experiments(config)}
MODEL_IDS = {e: list(range(DATAMODELS[e]["checkpoints"])) for e in DATAMODELS}
# Each checkpoint's training rows are featurized by N jobs of {shard} "i-of-N" (trak.shards); their
# projected gradients are temporary unless the experiment keeps them (trak.keep_gradients).
try:
    TRAK_SHARDS = {e: trak_shards(config, e) for e in DATAMODELS}
except ConfigError as exc:  # trak.shards: auto needs what the plan needs
    raise WorkflowError(f"invalid config: {exc}") from None
KEPT_GRADIENTS = [e for e in DATAMODELS if DATAMODELS[e]["trak"]["keep_gradients"]]
TEMPORARY_GRADIENTS = [e for e in DATAMODELS if e not in KEPT_GRADIENTS]
# the token shards a language dataset's training windows are read from (none for images): an input of
# every rule that reads the dataset's training examples, so a rebuilt shard reruns them
DATASET_SOURCES = {e: dataset_sources(config, e) for e in DATAMODELS}
DATASET_SHARDS = {e: [artifact_path("shard", source=s) for s in DATASET_SOURCES[e]] for e in DATAMODELS}
# the noise and decision tables too: a run finished before the correlation rule declared them has no record
# of them, which hides the rule's changed inputs and params (seeds:) from Snakemake until they are made
CORRELATION_TARGETS = [CORRELATION_REPORT, NOISE_TABLE, *DECISION_TABLES.values()]
REPORT_TARGETS = list(CORRELATION_TARGETS)

# Data attribution across scale (LDS).
if "attribution" in DATAMODELS:
    ATTRIBUTION = config["attribution"]
    ATTRIBUTION_SETTING = attribution_setting(config)
    ATTRIBUTION_SIZES = list(ATTRIBUTION_SETTING["sizes"])
    ATTRIBUTION_REFERENCE = ATTRIBUTION_SETTING["reference"]
    LDS_SUBSETS = list(range(ATTRIBUTION["lds"]["subsets"]))
    LDS_REPORT = REPORTS["attribution"]
    REPORT_TARGETS.append(LDS_REPORT)

# Dataset selection across scale (DsDm).
if "selection" in DATAMODELS:
    SELECTION = config["selection"]
    SELECTION_SIZES = list(SELECTION["sizes"])
    SELECTION_METHODS = selection_methods(config)
    SELECTION_RUNS = [(t, m) for t in SELECTION_TARGETS for m in SELECTION_METHODS]
    DSDM_REPORT = REPORTS["selection"]
    REPORT_TARGETS.append(DSDM_REPORT)


wildcard_constraints:
    source="[A-Za-z0-9_-]+",
    dist="[A-Za-z0-9_-]+",
    size="[A-Za-z0-9_-]+",
    test="[A-Za-z0-9_-]+",
    model_id="[0-9]+",
    seed="[1-9][0-9]*",
    shard="[0-9]+-of-[0-9]+",
    subset="[0-9]+",
    exp="|".join(DATAMODELS),
    target="[A-Za-z0-9_-]+",
    method="[A-Za-z0-9_-]+",


def model_artifacts(exp, sizes, kind):
    """The artifact ``kind`` (model, trak_store, trak_scores) of every model of every size, size-major."""
    return [artifact_path(kind, exp=exp, size=s, model_id=i) for s in sizes for i in MODEL_IDS[exp]]


# Data preparation.


def source_files_of(source):
    """The local files a source reads (Hugging Face entries have none)."""
    return [e["path"] for e in config["sources"][source] if "path" in e]


def source_files(wildcards):
    return source_files_of(wildcards.source)


def source_entries(wildcards):
    return config["sources"][wildcards.source]


def testset_spec(wildcards):
    return config["test_sets"][wildcards.test]


def testset_files(wildcards):
    spec = testset_spec(wildcards)
    return [spec["path"]] if "path" in spec else []


def pile_sources(wildcards):
    """The Pile-like test set draws from every source's holdout documents; other test sets from none."""
    return SOURCES if testset_spec(wildcards)["format"] == "pile" else []


def pile_holdouts(wildcards):
    return [artifact_path("holdout", source=s) for s in pile_sources(wildcards)]


# Scale correlation.


def distribution_shards(wildcards):
    return list(TRAINING_SHARDS[wildcards.dist].values())


def distribution_shard_names(wildcards):
    return list(TRAINING_SHARDS[wildcards.dist])


def distribution_weights(wildcards):
    dist = wildcards.dist
    return {dist: 1} if dist in SELECTION_DISTRIBUTIONS else config["distributions"][dist]


def size_spec(wildcards):
    return config["sizes"][wildcards.size]


def replicate_seed(wildcards):
    """The training seed of replicate k >= 1 (replicate 0 trains with the config's seed)."""
    return config["seed"] + int(wildcards.seed)


def imported_source(wildcards):
    """An imported checkpoint's config entry, as given (an hf_olmo one is what convert_imported reads)."""
    return imported_checkpoint(config, wildcards.size, wildcards.dist)


def imported_model(wildcards):
    """The entry evaluate_imported loads: as given, or for format hf_olmo its converted directory (the
    hub name, revision and modules were the conversion's)."""
    entry = imported_source(wildcards)
    if entry.get("format") != "hf_olmo":
        return entry
    dropped = ("hub", "revision", "modules", "format", "trust_remote_code")
    converted = artifact_path("converted", dist=wildcards.dist, size=wildcards.size)
    return {**{k: v for k, v in entry.items() if k not in dropped}, "path": converted}


def local_files(entry):
    """A local checkpoint's files, so that replacing them reruns what reads it (a hub model's name and
    revision are params)."""
    if "path" not in entry:
        return []
    return sorted(str(f) for f in Path(entry["path"]).rglob("*") if f.is_file())


def imported_files(wildcards):
    """What evaluate_imported reads: the converted directory of an hf_olmo checkpoint, else its files."""
    entry = imported_source(wildcards)
    if entry.get("format") == "hf_olmo":
        return [artifact_path("converted", dist=wildcards.dist, size=wildcards.size)]
    return local_files(entry)


# TRAK datamodels (both experiments, through {exp}).


def dataset_shards(wildcards):
    return DATASET_SHARDS[wildcards.exp]


def datamodel_size(wildcards):
    return DATAMODELS[wildcards.exp]["sizes"][wildcards.size]


def datamodel_budget(wildcards):
    return DATAMODELS[wildcards.exp]["budget"]


def model_subset(wildcards):
    """What a model's training subset depends on: the experiment's seed and pool key."""
    return {k: DATAMODELS[wildcards.exp][k] for k in ("seed", "pool_key")}


def datamodel_training(wildcards):
    return DATAMODELS[wildcards.exp]["training"]


SCORING_KEYS = ("q_term", "lambda_reg", "shards", "keep_gradients")  # what featurizing does not read


def featurize_settings(wildcards):
    """What a shard's projected gradients depend on: the TRAK settings but those of scoring and keeping,
    and whether Q is computed (proxyscale.config.needs_q)."""
    trak = DATAMODELS[wildcards.exp]["trak"]
    return {**{k: v for k, v in trak.items() if k not in SCORING_KEYS}, "q": needs_q(config, wildcards.exp)}


def scoring_settings(wildcards):
    trak = DATAMODELS[wildcards.exp]["trak"]
    return {"lambda_reg": trak["lambda_reg"], "batch_size": trak["batch_size"], "grouped": wildcards.exp == "selection"}


def checkpoint_shards(exp, size, model_id):
    """The shard directories of one checkpoint, in row order."""
    n = TRAK_SHARDS[exp][size]
    return [
        artifact_path("trak_shard", exp=exp, size=size, model_id=model_id, shard=shard_name(i, n)) for i in range(n)
    ]


def featurized_shards(wildcards):
    return checkpoint_shards(wildcards.exp, wildcards.size, wildcards.model_id)


def size_kept_shards(wildcards):
    """Every kept shard directory of every checkpoint of a size, one list per checkpoint in row order."""
    return [checkpoint_shards(wildcards.exp, wildcards.size, m) for m in MODEL_IDS[wildcards.exp]]


def traker_exports(wildcards):
    """export_traker's sizes: every size of each experiment that keeps its gradients (none: one line saying
    what to set, since the featurized gradients it writes out are otherwise deleted)."""
    if not KEPT_GRADIENTS:
        raise WorkflowError(
            "export_traker: no experiment keeps its projected gradients; set attribution.trak.keep_gradients "
            "(or selection.trak.keep_gradients): true, which featurizes again once"
        )
    return [artifact_path("traker_export", exp=e, size=s) for e in KEPT_GRADIENTS for s in DATAMODELS[e]["sizes"]]


def size_models(wildcards):
    return model_artifacts(wildcards.exp, [wildcards.size], "model")


def trak_work_dir(wildcards):
    w = wildcards
    return f"{RESULTS}/{w.exp}/trak_work/{w.size}/{w.model_id}/{w.shard}"


def size_scores(wildcards):
    return model_artifacts(wildcards.exp, [wildcards.size], "trak_scores")


def size_stores(wildcards):
    return model_artifacts(wildcards.exp, [wildcards.size], "trak_store")


def q_term(wildcards):
    return DATAMODELS[wildcards.exp]["trak"]["q_term"]


# Data attribution across scale.


def attribution_data_inputs(wildcards):
    if ATTRIBUTION["setting"] == "vision":
        dataset = ATTRIBUTION_SETTING["dataset"]
        return [dataset[k] for k in ("images", "labels") if k in dataset]
    return DATASET_SHARDS["attribution"] + [artifact_path("testset", test=ATTRIBUTION_SETTING["targets"])]


def attribution_data_params():
    """What the dataset depends on: the setting's data keys (not its sizes), sizes of the split, seed."""
    common = {"n_train": ATTRIBUTION["n_train"], "n_targets": ATTRIBUTION["n_targets"], "seed": ATTRIBUTION["seed"]}
    if ATTRIBUTION["setting"] == "vision":
        keep = ("dataset", "downsample", "family")
        return {"setting": "vision", **{k: ATTRIBUTION_SETTING[k] for k in keep}, **common}
    return {
        "setting": "lm",
        "shards": DATASET_SOURCES["attribution"],
        "context_length": ATTRIBUTION_SETTING["context_length"],
        "tokenizer": TOKENIZER,
        **common,
    }


# Dataset selection across scale.


def selection_data_params():
    return {
        "sources": DATASET_SOURCES["selection"],
        "pool": {"size": SELECTION["pool"]["size"]},
        "targets": SELECTION_TARGETS,
        **{k: SELECTION[k] for k in ("context_length", "seed")},
        "tokenizer": TOKENIZER,
    }


def select_inputs(wildcards):
    _, size = parse_method(wildcards.method)
    inputs = {"data": artifact_path("dataset", exp="selection"), "shards": DATASET_SHARDS["selection"]}
    if size is not None:
        inputs["datamodel"] = artifact_path("datamodel", exp="selection", size=size)
    return inputs


def select_params(wildcards):
    """Only what the method reads (proxyscale.selection.registry), so changing one method's setting re-runs
    that method alone."""
    kind, _ = parse_method(wildcards.method)
    return method_params(kind, SELECTION, config["model"]["tokens_per_param"])
