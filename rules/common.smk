# Paths, config lookups and rule resources shared by every stage.
import sys

sys.path.insert(0, workflow.basedir)  # the proxyscale package beside this Snakefile, installed or not

from proxyscale.config import (
    EXPERIMENTS,
    attribution_setting,
    check_config,
    parse_method,
    proxies,
    resources,
    selection_distributions,
    selection_methods,
    tracing,
)
from proxyscale.errors import ConfigError

try:
    check_config(config)
except ConfigError as exc:
    raise WorkflowError(f"invalid config: {exc}") from None

R = "results"
SOURCES = list(config["sources"])
SEL_DISTS = selection_distributions(config)  # selections trained on as correlation distributions
DISTS = list(config["distributions"]) + list(SEL_DISTS)
SIZES = list(config["sizes"])
TESTS = list(config["test_sets"])
PROXIES = proxies(config)
REFERENCE = config["reference"]

CORRELATION_REPORT = f"{R}/correlation/report.md"

# The experiments that build TRAK datamodels share their rules through the {exp} wildcard.
EXP = {e: tracing(config, e) for e in EXPERIMENTS}
CKPTS = {e: list(range(EXP[e]["checkpoints"])) for e in EXPERIMENTS}

ATT = config["attribution"]
ATT_SETTING = attribution_setting(config)
ATT_SIZES = list(ATT_SETTING["sizes"])
ATT_REFERENCE = ATT_SETTING["reference"]
LDS_SUBSETS = list(range(ATT["lds"]["subsets"]))
A = f"{R}/attribution"
LDS_REPORT = f"{A}/report/report.md"

SEL = config["selection"]
SEL_SIZES = list(SEL["sizes"])
SEL_TARGETS = list(SEL["targets"])
SEL_METHODS = selection_methods(config)
S = f"{R}/selection"
DSDM_REPORT = f"{S}/report/report.md"

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


def shard_path(name):
    return f"{R}/shards/{name}.npy"


def checkpoint_path(dist, size):
    return f"{R}/checkpoints/{dist}/{size}.pt"


def losses_path(dist, size, test):
    return f"{R}/losses/{dist}/{size}/{test}.parquet"


def testset_path(test):
    return f"{R}/testsets/{test}.parquet"


def shards_of(dist):
    """{shard name: token stream path} of a training distribution (sources, or one selection)."""
    if dist in SEL_DISTS:
        return {dist: selected_shard_path(*SEL_DISTS[dist])}
    return {s: shard_path(s) for s in sorted(config["distributions"][dist])}


def weights_of(dist):
    return {dist: 1} if dist in SEL_DISTS else config["distributions"][dist]


def dataset_path(exp):
    return f"{R}/{exp}/dataset.npz"


def model_path(exp, size, ckpt):
    return f"{R}/{exp}/models/{size}/{ckpt}.pt"


def trak_store_path(exp, size, ckpt):
    return f"{R}/{exp}/trak/{size}/{ckpt}"


def trak_scores_path(exp, size, ckpt):
    return f"{R}/{exp}/scores/{size}/{ckpt}.npz"


def datamodel_path(exp, size):
    return f"{R}/{exp}/datamodels/{size}.npy"


def subset_path(target, method):
    return f"{S}/subsets/{target}/{method}.parquet"


def retrain_path(target, method):
    return f"{S}/retrain/{target}/{method}.parquet"


def selected_shard_path(target, method):
    return f"{S}/shards/{target}/{method}.npy"


def lds_subset_path(subset):
    return f"{A}/lds_subsets/{subset}.npz"


def rule_resources(group):
    """resources: of a rule group, from config (mem_mb, runtime in minutes, gpu)."""
    res = resources(config, group)
    return {"mem_mb": res["mem_mb"], "runtime": res["runtime"], "gpu": res["gpu"]}


# One conda environment per rule group (envs/*.yaml), for --software-deployment-method conda.
ENV_FILES = {"data": "data", "train": "train", "evaluate": "train", "attribution": "attribution", "report": "report"}


def conda_env(group):
    return f"../envs/{ENV_FILES[group]}.yaml"


def rule_threads(group):
    return resources(config, group)["threads"]


# Input and params functions of the rules (kept here: rule files hold rules only).


def _pile_sources(wildcards):
    return SOURCES if config["test_sets"][wildcards.test]["format"] == "pile" else []


def _attribution_data_inputs(wildcards):
    if ATT["setting"] == "vision":
        ds = ATT_SETTING["dataset"]
        return [ds[k] for k in ("images", "labels") if k in ds]
    dist = config["distributions"][ATT_SETTING["distribution"]]
    return [shard_path(s) for s in sorted(dist)] + [testset_path(ATT_SETTING["targets"])]


def _attribution_data_params():
    """What the dataset depends on: the setting's data keys (not its sizes), sizes of the split, seed."""
    common = {"n_train": ATT["n_train"], "n_targets": ATT["n_targets"], "seed": ATT["seed"]}
    if ATT["setting"] == "vision":
        keep = ("dataset", "downsample", "family")
        return {"setting": "vision", **{k: ATT_SETTING[k] for k in keep}, **common}
    return {
        "setting": "lm",
        "shards": sorted(config["distributions"][ATT_SETTING["distribution"]]),
        "context_length": ATT_SETTING["context_length"],
        "tokenizer": config["tokenizer"],
        **common,
    }


def _pool_sources():
    return sorted({s for d in SEL["pool"]["distributions"] for s in config["distributions"][d]})


def _select_inputs(wildcards):
    _, size = parse_method(wildcards.method)
    inputs = {"data": dataset_path("selection")}
    if size is not None:
        inputs["datamodel"] = datamodel_path("selection", size)
    return inputs


def _select_params(wildcards):
    """Only what the method reads: the fraction, plus the seed (random, DSIR) and n-gram buckets (DSIR,
    classifier), so changing one baseline's setting re-runs that baseline alone."""
    kind, _ = parse_method(wildcards.method)
    return {
        "kind": kind,
        "fraction": SEL["fraction"],
        "seed": SEL["seed"] if kind in ("random", "dsir") else None,
        "ngram_buckets": SEL["ngram_buckets"] if kind in ("dsir", "classifier") else None,
    }
