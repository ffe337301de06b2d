# Dataset selection across scale: a pool of windows and target tasks (split into target and holdout
# parts) -> TRAK datamodels of every size on the pool (attribution.smk, exp=selection) -> one subset
# per (target, method) -> the reference retrained on each subset -> the DsDm report. A selection
# listed in selection.distributions also becomes a training distribution of the correlation
# experiment through its token stream (selection_shard).


rule selection_data:
    input:
        shards=[shard_path(s) for s in _pool_sources()],
        targets=[testset_path(t) for t in SEL_TARGETS],
    output:
        dataset_path("selection"),
    params:
        spec={
            "sources": _pool_sources(),
            "pool": {"size": SEL["pool"]["size"]},
            "targets": SEL_TARGETS,
            **{k: SEL[k] for k in ("n_targets", "n_holdout", "context_length", "seed")},
            "tokenizer": config["tokenizer"],
        },
    log:
        f"{R}/logs/selection/selection_data.log",
    threads: rule_threads("data")
    resources:
        **rule_resources("data"),
    conda:
        conda_env("data")
    script:
        "../workflow_scripts/selection_data.py"


rule select:
    input:
        unpack(_select_inputs),
    output:
        subset_path("{target}", "{method}"),
    params:
        spec=_select_params,
    log:
        f"{R}/logs/selection/select/{{target}}/{{method}}.log",
    threads: 1
    resources:
        **rule_resources("report"),
    conda:
        conda_env("report")
    script:
        "../workflow_scripts/select.py"


rule selection_retrain:
    input:
        data=dataset_path("selection"),
        subset=subset_path("{target}", "{method}"),
    output:
        retrain_path("{target}", "{method}"),
    params:
        size=SEL["sizes"][SEL["reference"]],
        epochs=SEL["epochs"],
        training=SEL["training"],
        seeds=SEL["retrain_seeds"],
        seed=SEL["seed"],
        batch_size=SEL["trak"]["batch_size"],
        device=config["device"],
    log:
        f"{R}/logs/selection/retrain/{{target}}/{{method}}.log",
    threads: rule_threads("attribution")
    resources:
        **rule_resources("attribution"),
    conda:
        conda_env("attribution")
    script:
        "../workflow_scripts/selection_retrain.py"


rule selection_shard:
    input:
        data=dataset_path("selection"),
        subset=subset_path("{target}", "{method}"),
    output:
        selected_shard_path("{target}", "{method}"),
    log:
        f"{R}/logs/selection/shard/{{target}}/{{method}}.log",
    threads: 1
    resources:
        **rule_resources("data"),
    conda:
        conda_env("data")
    script:
        "../workflow_scripts/selection_shard.py"


SEL_RUNS = [(t, m) for t in SEL_TARGETS for m in SEL_METHODS]
SEL_MODELS = [(s, c) for s in SEL_SIZES for c in CKPTS["selection"]]


rule dsdm:
    input:
        data=dataset_path("selection"),
        retrains=[retrain_path(t, m) for t, m in SEL_RUNS],
        subsets=[subset_path(t, m) for t, m in SEL_RUNS],
        models=[model_path("selection", s, c) for s, c in SEL_MODELS],
        stores=[trak_store_path("selection", s, c) for s, c in SEL_MODELS],
        scores=[trak_scores_path("selection", s, c) for s, c in SEL_MODELS],
    output:
        report=DSDM_REPORT,
        results=f"{S}/report/results.parquet",
        cost=f"{S}/report/cost.parquet",
        composition=f"{S}/report/composition.parquet",
        fig_dsdm=report(f"{S}/report/fig8_dsdm_vs_compute.png", category="Dataset selection (DsDm)"),
        fig_composition=report(f"{S}/report/composition.png", category="Dataset selection (DsDm)"),
    params:
        runs=SEL_RUNS,
        sizes=SEL_SIZES,
        checkpoints=len(CKPTS["selection"]),
        reference=SEL["reference"],
        fraction=SEL["fraction"],
        bootstrap=config["report"]["bootstrap"],
        ci=config["report"]["ci"],
    log:
        f"{R}/logs/dsdm.log",
    threads: rule_threads("report")
    resources:
        **rule_resources("report"),
    conda:
        conda_env("report")
    script:
        "../workflow_scripts/dsdm_report.py"
