# Data attribution across scale (the paper's section 3.1): the attribution dataset, whose TRAK
# datamodels every size builds (datamodels.smk, exp=attribution); the LDS ground truth, the reference
# retrained on m random subsets of the training set, each subset its own job (its mask is derived
# from (lds.seed, subset index), so adding subsets runs only the new ones); and the report comparing
# every size's datamodel with those outputs.


rule attribution_data:
    input:
        attribution_data_inputs,
    output:
        directory(dataset_path("attribution")),
    log:
        f"{LOGS}/attribution/attribution_data.log",
    conda:
        conda_env("data")
    threads: rule_threads("data")
    resources:
        **rule_resources("data"),
    params:
        spec=attribution_data_params(),
    script:
        "../workflow_scripts/attribution_data.py"


rule lds_subset:
    input:
        data=dataset_path("attribution"),
        shards=dataset_shards("attribution"),
    output:
        lds_subset_path("{subset}"),
    log:
        f"{LOGS}/lds_subset/{{subset}}.log",
    conda:
        conda_env("attribution")
    threads: rule_threads("attribution")
    resources:
        **training_resources("attribution"),
    params:
        size=ATTRIBUTION_SETTING["sizes"][ATTRIBUTION_REFERENCE],
        budget=DATAMODELS["attribution"]["budget"],
        max_repetition=config["model"]["max_repetition"],
        training=ATTRIBUTION["training"],
        alpha=ATTRIBUTION["lds"]["alpha"],
        seed=ATTRIBUTION["lds"]["seed"],
        batch_size=ATTRIBUTION["trak"]["batch_size"],
        device=config["device"],
    script:
        "../workflow_scripts/lds_subset.py"


rule lds:
    input:
        data=dataset_path("attribution"),
        shards=dataset_shards("attribution"),
        datamodels=[datamodel_path("attribution", s) for s in ATTRIBUTION_SIZES],
        scores=checkpoint_artifacts("attribution", ATTRIBUTION_SIZES, trak_scores_path),
        models=checkpoint_artifacts("attribution", ATTRIBUTION_SIZES, model_path),
        stores=checkpoint_artifacts("attribution", ATTRIBUTION_SIZES, trak_store_path),
        subsets=[lds_subset_path(i) for i in LDS_SUBSETS],
    output:
        report=LDS_REPORT,
        lds=f"{ATTRIBUTION_DIR}/report/lds.parquet",
        lds_vs_m=f"{ATTRIBUTION_DIR}/report/lds_vs_checkpoints.parquet",
        overlap=f"{ATTRIBUTION_DIR}/report/top_k_overlap.parquet",
        rank=f"{ATTRIBUTION_DIR}/report/rank_correlation.parquet",
        compute=f"{ATTRIBUTION_DIR}/report/compute.parquet",
        fig_lds=report(f"{ATTRIBUTION_DIR}/report/fig6_lds_vs_compute.png", category="Data attribution (LDS)"),
        fig_m=report(f"{ATTRIBUTION_DIR}/report/lds_vs_checkpoints.png", category="Data attribution (LDS)"),
        fig_overlap=report(f"{ATTRIBUTION_DIR}/report/fig7_top_k_overlap.png", category="Data attribution (LDS)"),
        fig_rank=report(f"{ATTRIBUTION_DIR}/report/rank_correlation.png", category="Data attribution (LDS)"),
        fig_examples=report(f"{ATTRIBUTION_DIR}/report/top_k_examples.png", category="Data attribution (LDS)"),
    log:
        f"{LOGS}/lds.log",
    conda:
        conda_env("report")
    threads: rule_threads("report")
    resources:
        **rule_resources("report"),
    params:
        sizes=ATTRIBUTION_SIZES,
        reference=ATTRIBUTION_REFERENCE,
        checkpoints=len(CHECKPOINTS["attribution"]),
        q_term=ATTRIBUTION["trak"]["q_term"],
        lambda_reg=ATTRIBUTION["trak"]["lambda_reg"],
        report=ATTRIBUTION["report"],
        bootstrap=config["report"]["bootstrap"],
        ci=config["report"]["ci"],
    script:
        "../workflow_scripts/lds_report.py"
