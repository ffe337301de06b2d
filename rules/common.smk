# Paths, config lookups and rule resources shared by every stage.
import sys

sys.path.insert(0, workflow.basedir)  # the proxyscale package beside this Snakefile, installed or not

from proxyscale.config import attribution_setting, check_config, proxies, resources
from proxyscale.errors import ConfigError

try:
    check_config(config)
except ConfigError as exc:
    raise WorkflowError(f"invalid config: {exc}") from None

R = "results"
SOURCES = list(config["sources"])
DISTS = list(config["distributions"])
SIZES = list(config["sizes"])
TESTS = list(config["test_sets"])
PROXIES = proxies(config)
REFERENCE = config["reference"]

CORRELATION_REPORT = f"{R}/correlation/report.md"

ATT = config["attribution"]
ATT_SETTING = attribution_setting(config)
ATT_SIZES = list(ATT_SETTING["sizes"])
ATT_REFERENCE = ATT_SETTING["reference"]
ATT_CKPTS = list(range(ATT["checkpoints"]))
LDS_SUBSETS = list(range(ATT["lds"]["subsets"]))
A = f"{R}/attribution"
ATT_DATASET = f"{A}/dataset.npz"
LDS_REPORT = f"{A}/report/report.md"

wildcard_constraints:
    source="[A-Za-z0-9_-]+",
    dist="[A-Za-z0-9_-]+",
    size="[A-Za-z0-9_-]+",
    test="[A-Za-z0-9_-]+",
    ckpt="[0-9]+",
    subset="[0-9]+",


def shard_path(name):
    return f"{R}/shards/{name}.npy"


def checkpoint_path(dist, size):
    return f"{R}/checkpoints/{dist}/{size}.pt"


def losses_path(dist, size, test):
    return f"{R}/losses/{dist}/{size}/{test}.parquet"


def testset_path(test):
    return f"{R}/testsets/{test}.parquet"


def attribution_model_path(size, ckpt):
    return f"{A}/models/{size}/{ckpt}.pt"


def trak_store_path(size, ckpt):
    return f"{A}/trak/{size}/{ckpt}"


def trak_scores_path(size, ckpt):
    return f"{A}/scores/{size}/{ckpt}.npz"


def datamodel_path(size):
    return f"{A}/datamodels/{size}.npy"


def lds_subset_path(subset):
    return f"{A}/lds_subsets/{subset}.npz"


def rule_resources(group):
    """resources: of a rule group, from config (mem_mb, runtime in minutes, gpu)."""
    res = resources(config, group)
    return {"mem_mb": res["mem_mb"], "runtime": res["runtime"], "gpu": res["gpu"]}


def rule_threads(group):
    return resources(config, group)["threads"]
