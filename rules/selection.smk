# Dataset selection across scale: a pool of windows and target tasks (each split by passage into a
# target and a holdout part, which the correlation experiment reads to leave the target part out) ->
# TRAK datamodels of every size on the pool (datamodels.smk, exp=selection) -> one subset per
# (target, method) -> the reference retrained on each subset -> the DsDm report. A selection
# listed in selection.distributions also becomes a training distribution of the correlation
# experiment through its token stream (selection_shard). Random selection and DsDm with the reference size
# are retrained with selection.noise_seeds seeds, the ones beyond retrain_seeds in jobs of their own
# (selection_retrain_noise), so that the interval of their difference covers seed noise.

from proxyscale.selection.registry import extra_noise_seeds, noise_runs

SELECTION_NOISE_SEEDS = extra_noise_seeds(SELECTION)  # beyond retrain_seeds
SELECTION_NOISE_RUNS = noise_runs(SELECTION_TARGETS, SELECTION_METHODS, SELECTION["reference"], SELECTION_NOISE_SEEDS)


rule selection_split:
    input:
        artifact_path("testset", test="{target}"),
    output:
        artifact_path("split", target="{target}"),
    log:
        f"{LOGS}/selection/split/{{target}}.log",
    retries: rule_retries(config, "data")
    conda:
        conda_env("data")
    threads: 1
    resources:
        **rule_resources(config, "data"),
    params:
        n_targets=SELECTION["n_targets"],
        n_holdout=SELECTION["n_holdout"],
        seed=SELECTION["seed"],
        max_examples=config["evaluation"]["max_examples"],  # named when the parts do not fit
    script:
        "../workflow_scripts/selection_split.py"


rule selection_data:
    input:
        shards=DATASET_SHARDS["selection"],
        targets=[artifact_path("testset", test=t) for t in SELECTION_TARGETS],
        splits=[artifact_path("split", target=t) for t in SELECTION_TARGETS],
    output:
        directory(artifact_path("dataset", exp="selection")),
    log:
        f"{LOGS}/selection/selection_data.log",
    retries: rule_retries(config, "data")
    conda:
        conda_env("data")
    threads: rule_threads(config, "data")
    resources:
        **rule_resources(config, "data"),
    params:
        spec=selection_data_params(),
    script:
        "../workflow_scripts/selection_data.py"


rule select:
    input:
        unpack(select_inputs),
    output:
        artifact_path("subset", target="{target}", method="{method}"),
    log:
        f"{LOGS}/selection/select/{{target}}/{{method}}.log",
    retries: rule_retries(config, "report")
    conda:
        conda_env("report")
    threads: 1
    resources:
        **rule_resources(config, "report"),
    params:
        spec=select_params,
    script:
        "../workflow_scripts/select.py"


rule selection_retrain:
    input:
        data=artifact_path("dataset", exp="selection"),
        shards=DATASET_SHARDS["selection"],
        subset=artifact_path("subset", target="{target}", method="{method}"),
    output:
        artifact_path("retrain", target="{target}", method="{method}"),
    log:
        f"{LOGS}/selection/retrain/{{target}}/{{method}}.log",
    benchmark:
        f"{BENCHMARKS}/selection/retrain/{{target}}/{{method}}.tsv"
    retries: rule_retries(config, "datamodels")
    conda:
        conda_env("datamodels")
    threads: rule_threads(config, "datamodels")
    resources:
        **rule_resources(config, "datamodels", training=True),
    params:
        size=SELECTION["sizes"][SELECTION["reference"]],
        budget=DATAMODELS["selection"]["budget"],
        max_repetition=config["model"]["max_repetition"],
        training=SELECTION["training"],
        seeds=SELECTION["retrain_seeds"],
        seed=SELECTION["seed"],
        batch_size=SELECTION["trak"]["batch_size"],
        device=config["device"],
    script:
        "../workflow_scripts/selection_retrain.py"


use rule selection_retrain as selection_retrain_noise with:
    output:
        artifact_path("retrain_noise", target="{target}", method="{method}"),
    log:
        f"{LOGS}/selection/retrain_noise/{{target}}/{{method}}.log",
    benchmark:
        f"{BENCHMARKS}/selection/retrain_noise/{{target}}/{{method}}.tsv"
    params:
        seeds=SELECTION_NOISE_SEEDS,
        seed=SELECTION["seed"] + SELECTION["retrain_seeds"],  # after the selection_retrain job's seeds


rule selection_shard:
    input:
        data=artifact_path("dataset", exp="selection"),
        shards=DATASET_SHARDS["selection"],
        subset=artifact_path("subset", target="{target}", method="{method}"),
    output:
        artifact_path("selected_shard", target="{target}", method="{method}"),
    log:
        f"{LOGS}/selection/shard/{{target}}/{{method}}.log",
    retries: rule_retries(config, "data")
    conda:
        conda_env("data")
    threads: 1
    resources:
        **rule_resources(config, "data"),
    script:
        "../workflow_scripts/selection_shard.py"


rule dsdm:
    input:
        data=artifact_path("dataset", exp="selection"),
        retrains=[artifact_path("retrain", target=t, method=m) for t, m in SELECTION_RUNS],
        noise=[artifact_path("retrain_noise", target=t, method=m) for t, m in SELECTION_NOISE_RUNS],
        subsets=[artifact_path("subset", target=t, method=m) for t, m in SELECTION_RUNS],
        models=model_artifacts("selection", SELECTION_SIZES, "model"),
        stores=model_artifacts("selection", SELECTION_SIZES, "trak_store"),
    output:
        report=DSDM_REPORT,
        html=report(
            f"{SELECTION_DIR}/report/report.html",
            caption="report/dsdm_report.rst",
            category="Dataset selection",
            labels={"#": "1", "item": "Report", "shows": "the findings, every table and figure (report.md)"},
        ),
        results=f"{SELECTION_DIR}/report/results.parquet",
        cost=f"{SELECTION_DIR}/report/cost.parquet",
        composition=f"{SELECTION_DIR}/report/composition.parquet",
        # every figure is a PNG (in the HTML report, captioned from rules/report/) and an SVG beside it
        fig_dsdm=report(
            f"{SELECTION_DIR}/report/fig8_dsdm_vs_compute.png",
            caption="report/fig8_dsdm_vs_compute.rst",
            category="Dataset selection",
            labels={"#": "2", "item": "Figure 8", "shows": "the reference trained on each size's DsDm selection"},
        ),
        fig_dsdm_svg=f"{SELECTION_DIR}/report/fig8_dsdm_vs_compute.svg",
        fig_composition=report(
            f"{SELECTION_DIR}/report/composition.png",
            caption="report/composition.rst",
            category="Dataset selection",
            labels={"#": "3", "item": "Composition", "shows": "the share of each source in every selection"},
        ),
        fig_composition_svg=f"{SELECTION_DIR}/report/composition.svg",
    log:
        f"{LOGS}/dsdm.log",
    retries: rule_retries(config, "report")
    conda:
        conda_env("report")
    threads: rule_threads(config, "report")
    resources:
        **rule_resources(config, "report"),
    params:
        targets=SELECTION_TARGETS,  # the runs are targets x methods, in the inputs' order
        methods=SELECTION_METHODS,
        noise_seeds=SELECTION_NOISE_SEEDS,  # with targets, methods and reference: the noise inputs' runs
        sizes=SELECTION_SIZES,
        checkpoints=len(MODEL_IDS["selection"]),
        reference=SELECTION["reference"],
        q_term=SELECTION["trak"]["q_term"],
        lambda_reg=SELECTION["trak"]["lambda_reg"],
        bootstrap=config["report"]["bootstrap"],
        ci=config["report"]["ci"],
    script:
        "../workflow_scripts/dsdm_report.py"
