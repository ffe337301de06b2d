# Paths, config lookups, rule resources, and the input and params functions of every stage (rule
# files hold rules only). Each params function returns only the config slice its rule depends on,
# which is what keeps reruns exact.
import re
from pathlib import Path

from proxyscale.config import (
    attribution_setting,
    check_config,
    correlation_distributions,
    correlation_sizes,
    datamodel_settings,
    experiments,
    imported_checkpoint,
    proxies,
    resources,
    selection_distributions,
    selection_methods,
    tokenizer_spec,
)
from proxyscale.errors import ConfigError
from proxyscale.layout import REPORTS, RESULTS, artifact_path
from proxyscale.selection.registry import method_params, parse_method

try:
    check_config(config)
except ConfigError as exc:
    raise WorkflowError(f"invalid config: {exc}") from None

CORRELATION_DIR = f"{RESULTS}/correlation"
ATTRIBUTION_DIR = f"{RESULTS}/attribution"
SELECTION_DIR = f"{RESULTS}/selection"
LOGS = f"{RESULTS}/logs"

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
BPE_PATH = artifact_path("bpe")  # where train_tokenizer writes the BPE of tokenizer.kind bpe
TOKENIZER = tokenizer_spec(config, BPE_PATH)  # a trained BPE's entry names its file
TOKENIZER_FILES = [TOKENIZER["path"]] if "path" in TOKENIZER else []  # what tokenised artifacts depend on
LOSS_KEYS = [(d, s, t) for d, s in RUNS for t in TESTS]
SELECTION_TARGETS = list(config.get("selection", {}).get("targets", []))
RESERVED_TESTS = [t for t in SELECTION_TARGETS if t in TESTS]  # their DsDm target parts stay out
CORRELATION_REPORT = REPORTS["correlation"]

# The experiments that build TRAK datamodels share their rules through the {exp} wildcard; a config
# without an experiment's block has none of its rules (the scale correlation needs neither).
EXPERIMENTS = experiments(config)
DATAMODELS = {e: datamodel_settings(config, e) for e in EXPERIMENTS}
CHECKPOINTS = {e: list(range(DATAMODELS[e]["checkpoints"])) for e in EXPERIMENTS}
REPORT_TARGETS = [CORRELATION_REPORT]

# Data attribution across scale (LDS).
if "attribution" in EXPERIMENTS:
    ATTRIBUTION = config["attribution"]
    ATTRIBUTION_SETTING = attribution_setting(config)
    ATTRIBUTION_SIZES = list(ATTRIBUTION_SETTING["sizes"])
    ATTRIBUTION_REFERENCE = ATTRIBUTION_SETTING["reference"]
    LDS_SUBSETS = list(range(ATTRIBUTION["lds"]["subsets"]))
    LDS_REPORT = REPORTS["attribution"]
    REPORT_TARGETS.append(LDS_REPORT)

# Dataset selection across scale (DsDm).
if "selection" in EXPERIMENTS:
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
    ckpt="[0-9]+",
    subset="[0-9]+",
    exp="|".join(EXPERIMENTS),
    target="[A-Za-z0-9_-]+",
    method="[A-Za-z0-9_-]+",


# Artifact paths (the layout, and which rule makes each, is proxyscale/layout.py).


def shard_path(name):
    return artifact_path("shard", source=name)


def holdout_path(source):
    return artifact_path("holdout", source=source)


def testset_path(test):
    return artifact_path("testset", test=test)


def checkpoint_path(dist, size):
    return artifact_path("checkpoint", dist=dist, size=size)


def imported_path(dist, size):
    return artifact_path("imported", dist=dist, size=size)


def curve_path(dist, size):
    return artifact_path("curve", dist=dist, size=size)


def losses_path(dist, size, test):
    return artifact_path("losses", dist=dist, size=size, test=test)


def dataset_path(exp):
    return artifact_path("dataset", exp=exp)


def model_path(exp, size, ckpt):
    return artifact_path("model", exp=exp, size=size, ckpt=ckpt)


def trak_store_path(exp, size, ckpt):
    return artifact_path("trak_store", exp=exp, size=size, ckpt=ckpt)


def trak_scores_path(exp, size, ckpt):
    return artifact_path("trak_scores", exp=exp, size=size, ckpt=ckpt)


def datamodel_path(exp, size):
    return artifact_path("datamodel", exp=exp, size=size)


def lds_subset_path(subset):
    return artifact_path("lds_subset", subset=subset)


def split_path(target):
    return artifact_path("split", target=target)


def subset_path(target, method):
    return artifact_path("subset", target=target, method=method)


def retrain_path(target, method):
    return artifact_path("retrain", target=target, method=method)


def selected_shard_path(target, method):
    return artifact_path("selected_shard", target=target, method=method)


def checkpoint_artifacts(exp, sizes, path):
    """``path(exp, size, ckpt)`` of every checkpoint of every size, size-major."""
    return [path(exp, s, c) for s in sizes for c in CHECKPOINTS[exp]]


# Rule resources and environments.


def rule_resources(group):
    """resources: of a rule group, from config (mem_mb, runtime in minutes, gpu)."""
    res = resources(config, group)
    return {k: res[k] for k in ("mem_mb", "runtime", "gpu")}


def training_resources(group):
    """resources: of the rules that train, their group's plus the data-parallel process count (torchrun)."""
    return {**rule_resources(group), "processes": resources(config, group)["processes"]}


# One conda environment per rule group (envs/*.yaml), for --software-deployment-method conda.
ENV_FILES = {"data": "data", "train": "train", "evaluate": "train", "imported": "imported", "attribution": "attribution",
             "report": "report"}  # fmt: skip


def conda_env(group):
    return f"../envs/{ENV_FILES[group]}.yaml"


def rule_threads(group):
    return resources(config, group)["threads"]


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
    return [holdout_path(s) for s in pile_sources(wildcards)]


# Scale correlation.


def shards_of(dist):
    """{shard name: token stream path} of a training distribution (sources, or one selection)."""
    if dist in SELECTION_DISTRIBUTIONS:
        return {dist: selected_shard_path(*SELECTION_DISTRIBUTIONS[dist])}
    return {s: shard_path(s) for s in sorted(config["distributions"][dist])}


def distribution_shards(wildcards):
    return list(shards_of(wildcards.dist).values())


def distribution_shard_names(wildcards):
    return list(shards_of(wildcards.dist))


def distribution_weights(wildcards):
    dist = wildcards.dist
    return {dist: 1} if dist in SELECTION_DISTRIBUTIONS else config["distributions"][dist]


def size_spec(wildcards):
    return config["sizes"][wildcards.size]


def one_of(names):
    """A wildcard constraint matching exactly these names (none: a pattern that matches nothing)."""
    return "|".join(re.escape(n) for n in names) or "(?!)"


def imported_model(wildcards):
    return imported_checkpoint(config, wildcards.size, wildcards.dist)


def imported_files(wildcards):
    """A local imported checkpoint's files, so that replacing them re-evaluates it (a hub model's name
    and revision are params)."""
    entry = imported_model(wildcards)
    if "path" not in entry:
        return []
    return sorted(str(f) for f in Path(entry["path"]).rglob("*") if f.is_file())


# TRAK datamodels (both experiments, through {exp}).


def datamodel_size(wildcards):
    return DATAMODELS[wildcards.exp]["sizes"][wildcards.size]


def datamodel_budget(wildcards):
    return DATAMODELS[wildcards.exp]["budget"]


def checkpoint_subset(wildcards):
    """What a checkpoint's training subset depends on: the experiment's seed and pool key."""
    return {k: DATAMODELS[wildcards.exp][k] for k in ("seed", "pool_key")}


def datamodel_training(wildcards):
    return DATAMODELS[wildcards.exp]["training"]


def featurize_settings(wildcards):
    """TRAK settings a store depends on: all but q_term (which only the datamodel reads)."""
    return {k: v for k, v in DATAMODELS[wildcards.exp]["trak"].items() if k != "q_term"}


def trak_work_dir(wildcards):
    return f"{RESULTS}/{wildcards.exp}/trak_work/{wildcards.size}/{wildcards.ckpt}"


def checkpoint_scores(wildcards):
    return [trak_scores_path(wildcards.exp, wildcards.size, c) for c in CHECKPOINTS[wildcards.exp]]


def dataset_shards(exp):
    """The token shards a language dataset's training windows are read from (none for images): an input
    of every rule that reads the dataset's training examples, so a rebuilt shard reruns them."""
    if exp == "selection":
        return [shard_path(s) for s in pool_sources()]
    if ATTRIBUTION["setting"] == "vision":
        return []
    return [shard_path(s) for s in sorted(config["distributions"][ATTRIBUTION_SETTING["distribution"]])]


def checkpoint_stores(wildcards):
    return [trak_store_path(wildcards.exp, wildcards.size, c) for c in CHECKPOINTS[wildcards.exp]]


def q_term(wildcards):
    return DATAMODELS[wildcards.exp]["trak"]["q_term"]


# Data attribution across scale.


def attribution_data_inputs(wildcards):
    if ATTRIBUTION["setting"] == "vision":
        dataset = ATTRIBUTION_SETTING["dataset"]
        return [dataset[k] for k in ("images", "labels") if k in dataset]
    dist = config["distributions"][ATTRIBUTION_SETTING["distribution"]]
    return [shard_path(s) for s in sorted(dist)] + [testset_path(ATTRIBUTION_SETTING["targets"])]


def attribution_data_params():
    """What the dataset depends on: the setting's data keys (not its sizes), sizes of the split, seed."""
    common = {"n_train": ATTRIBUTION["n_train"], "n_targets": ATTRIBUTION["n_targets"], "seed": ATTRIBUTION["seed"]}
    if ATTRIBUTION["setting"] == "vision":
        keep = ("dataset", "downsample", "family")
        return {"setting": "vision", **{k: ATTRIBUTION_SETTING[k] for k in keep}, **common}
    return {
        "setting": "lm",
        "shards": sorted(config["distributions"][ATTRIBUTION_SETTING["distribution"]]),
        "context_length": ATTRIBUTION_SETTING["context_length"],
        "tokenizer": TOKENIZER,
        **common,
    }


# Dataset selection across scale.


def pool_sources():
    return sorted({s for d in SELECTION["pool"]["distributions"] for s in config["distributions"][d]})


def selection_data_params():
    return {
        "sources": pool_sources(),
        "pool": {"size": SELECTION["pool"]["size"]},
        "targets": SELECTION_TARGETS,
        **{k: SELECTION[k] for k in ("context_length", "seed")},
        "tokenizer": TOKENIZER,
    }


def select_inputs(wildcards):
    _, size = parse_method(wildcards.method)
    inputs = {"data": dataset_path("selection"), "shards": dataset_shards("selection")}
    if size is not None:
        inputs["datamodel"] = datamodel_path("selection", size)
    return inputs


def select_params(wildcards):
    """Only what the method reads (proxyscale.selection.registry), so changing one method's setting re-runs
    that method alone."""
    kind, _ = parse_method(wildcards.method)
    return method_params(kind, SELECTION, config["model"]["tokens_per_param"])
