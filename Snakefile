# proxyscale: does a small proxy model see the training data the way a large model does?
# Stages live in rules/*.smk; all logic lives in the proxyscale package.
import sys
import time

from snakemake.utils import min_version

sys.path.insert(0, workflow.basedir)  # the proxyscale package beside this Snakefile, installed or not
from proxyscale.config import default_configfile, drop_keys
from proxyscale.errors import ConfigError
from proxyscale.runner import outlive_stop_warnings
from proxyscale.schema import validate_config
from proxyscale.summary import failure_summary, run_summary

RUN_STARTED = time.time()  # reports written after this were made by this run
outlive_stop_warnings()  # a cluster's SIGUSR1 ahead of a job's time limit is for the job's training processes

min_version("9.0")


configfile: default_configfile(workflow.basedir)  # the working directory's config.yaml, else the embedded default


try:
    drop_keys(config)  # an overlay's `drop:` list removes what merging config files cannot
    validate_config(config, f"{workflow.basedir}/schemas/config.schema.yaml")  # fills the defaults too
except ConfigError as exc:
    raise WorkflowError(f"invalid config: {exc}") from None


report: "rules/report/workflow.rst"  # the front page of snakemake --report; figure captions beside it


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/correlation.smk"
include: "rules/plan.smk"
include: "rules/export.smk"


if DATAMODELS:  # a config's attribution and selection blocks are optional

    include: "rules/datamodels.smk"


if "attribution" in DATAMODELS:

    include: "rules/attribution.smk"

    rule lds_report:
        input:
            LDS_REPORT,


if "selection" in DATAMODELS:

    include: "rules/selection.smk"

    rule dsdm_report:
        input:
            DSDM_REPORT,


rule all:
    default_target: True
    input:
        REPORT_TARGETS,


rule correlation_report:
    input:
        CORRELATION_TARGETS,


rule export_hf:
    input:
        HF_EXPORTS,


rule export_traker:
    input:
        traker_exports,


onsuccess:
    if summary := run_summary(".", RUN_STARTED):
        print(summary, file=sys.stderr)


onerror:
    if summary := failure_summary(log):
        print(summary, file=sys.stderr)
