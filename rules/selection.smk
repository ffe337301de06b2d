# Dataset selection across scale: a pool of windows and target tasks (each split by passage into a
# target and a holdout part, which the correlation experiment reads to leave the target part out) ->
# TRAK datamodels of every size on the pool (datamodels.smk, exp=selection) -> one subset per
# (target, method) -> the reference retrained on each subset -> the DsDm report. A selection
# listed in selection.distributions also becomes a training distribution of the correlation
# experiment through its token stream (selection_shard).


rule selection_split:
    input:
        testset_path("{target}"),
    output:
        split_path("{target}"),
    log:
        f"{LOGS}/selection/split/{{target}}.log",
    conda:
        conda_env("data")
    threads: 1
    resources:
        **rule_resources("data"),
    params:
        n_targets=SELECTION["n_targets"],
        n_holdout=SELECTION["n_holdout"],
        seed=SELECTION["seed"],
        max_examples=config["evaluation"]["max_examples"],  # named when the parts do not fit
    script:
        "../workflow_scripts/selection_split.py"


rule selection_data:
    input:
        shards=[shard_path(s) for s in pool_sources()],
        targets=[testset_path(t) for t in SELECTION_TARGETS],
        splits=[split_path(t) for t in SELECTION_TARGETS],
    output:
        directory(dataset_path("selection")),
    log:
        f"{LOGS}/selection/selection_data.log",
    conda:
        conda_env("data")
    threads: rule_threads("data")
    resources:
        **rule_resources("data"),
    params:
        spec=selection_data_params(),
    script:
        "../workflow_scripts/selection_data.py"


rule select:
    input:
        unpack(select_inputs),
    output:
        subset_path("{target}", "{method}"),
    log:
        f"{LOGS}/selection/select/{{target}}/{{method}}.log",
    conda:
        conda_env("report")
    threads: 1
    resources:
        **rule_resources("report"),
    params:
        spec=select_params,
    script:
        "../workflow_scripts/select.py"


rule selection_retrain:
    input:
        data=dataset_path("selection"),
        shards=dataset_shards("selection"),
        subset=subset_path("{target}", "{method}"),
    output:
        retrain_path("{target}", "{method}"),
    log:
        f"{LOGS}/selection/retrain/{{target}}/{{method}}.log",
    conda:
        conda_env("attribution")
    threads: rule_threads("attribution")
    resources:
        **training_resources("attribution"),
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


rule selection_shard:
    input:
        data=dataset_path("selection"),
        shards=dataset_shards("selection"),
        subset=subset_path("{target}", "{method}"),
    output:
        selected_shard_path("{target}", "{method}"),
    log:
        f"{LOGS}/selection/shard/{{target}}/{{method}}.log",
    conda:
        conda_env("data")
    threads: 1
    resources:
        **rule_resources("data"),
    script:
        "../workflow_scripts/selection_shard.py"


rule dsdm:
    input:
        data=dataset_path("selection"),
        retrains=[retrain_path(t, m) for t, m in SELECTION_RUNS],
        subsets=[subset_path(t, m) for t, m in SELECTION_RUNS],
        models=checkpoint_artifacts("selection", SELECTION_SIZES, model_path),
        stores=checkpoint_artifacts("selection", SELECTION_SIZES, trak_store_path),
    output:
        report=DSDM_REPORT,
        results=f"{SELECTION_DIR}/report/results.parquet",
        cost=f"{SELECTION_DIR}/report/cost.parquet",
        composition=f"{SELECTION_DIR}/report/composition.parquet",
        fig_dsdm=report(f"{SELECTION_DIR}/report/fig8_dsdm_vs_compute.png", category="Dataset selection (DsDm)"),
        fig_composition=report(f"{SELECTION_DIR}/report/composition.png", category="Dataset selection (DsDm)"),
    log:
        f"{LOGS}/dsdm.log",
    conda:
        conda_env("report")
    threads: rule_threads("report")
    resources:
        **rule_resources("report"),
    params:
        runs=SELECTION_RUNS,
        sizes=SELECTION_SIZES,
        checkpoints=len(CHECKPOINTS["selection"]),
        reference=SELECTION["reference"],
        q_term=SELECTION["trak"]["q_term"],
        lambda_reg=SELECTION["trak"]["lambda_reg"],
        bootstrap=config["report"]["bootstrap"],
        ci=config["report"]["ci"],
    script:
        "../workflow_scripts/dsdm_report.py"
