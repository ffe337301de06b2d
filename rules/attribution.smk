# Data attribution across scale (the paper's section 3.1): the attribution dataset, whose TRAK
# datamodels every size builds (datamodels.smk, exp=attribution); the LDS ground truth, the reference
# retrained on m random subsets of the training set, each subset its own job (its mask is derived
# from (lds.seed, subset index), so adding subsets runs only the new ones); and the report comparing
# every size's datamodel with those outputs.


rule attribution_data:
    input:
        attribution_data_inputs,
    output:
        directory(artifact_path("dataset", exp="attribution")),
    log:
        f"{LOGS}/attribution/attribution_data.log",
    retries: rule_retries(config, "data")
    conda:
        conda_env("data")
    threads: rule_threads(config, "data")
    resources:
        **rule_resources(config, "data"),
    params:
        spec=attribution_data_params(),
    script:
        "../workflow_scripts/attribution_data.py"


rule lds_subset:
    input:
        data=artifact_path("dataset", exp="attribution"),
        shards=DATASET_SHARDS["attribution"],
    output:
        artifact_path("lds_subset", subset="{subset}"),
    log:
        f"{LOGS}/lds_subset/{{subset}}.log",
    benchmark:
        f"{BENCHMARKS}/lds_subset/{{subset}}.tsv"
    retries: rule_retries(config, "datamodels")
    conda:
        conda_env("datamodels")
    threads: rule_threads(config, "datamodels")
    resources:
        **rule_resources(config, "datamodels", training=True),
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
        data=artifact_path("dataset", exp="attribution"),
        shards=DATASET_SHARDS["attribution"],
        datamodels=[artifact_path("datamodel", exp="attribution", size=s) for s in ATTRIBUTION_SIZES],
        scores=model_artifacts("attribution", ATTRIBUTION_SIZES, "trak_scores"),
        models=model_artifacts("attribution", ATTRIBUTION_SIZES, "model"),
        stores=model_artifacts("attribution", ATTRIBUTION_SIZES, "trak_store"),
        subsets=[artifact_path("lds_subset", subset=i) for i in LDS_SUBSETS],
    output:
        report=LDS_REPORT,
        html=report(
            f"{ATTRIBUTION_DIR}/report/report.html",
            caption="report/lds_report.rst",
            category="Data attribution",
            labels={"#": "1", "item": "Report", "shows": "the findings, every table and figure (report.md)"},
        ),
        lds=f"{ATTRIBUTION_DIR}/report/lds.parquet",
        lds_vs_m=f"{ATTRIBUTION_DIR}/report/lds_vs_checkpoints.parquet",
        overlap=f"{ATTRIBUTION_DIR}/report/top_k_overlap.parquet",
        rank=f"{ATTRIBUTION_DIR}/report/rank_correlation.parquet",
        compute=f"{ATTRIBUTION_DIR}/report/compute.parquet",
        # every figure is a PNG (in the HTML report, captioned from rules/report/) and an SVG beside it
        fig_lds=report(
            f"{ATTRIBUTION_DIR}/report/fig6_lds_vs_compute.png",
            caption="report/fig6_lds_vs_compute.rst",
            category="Data attribution",
            labels={"#": "2", "item": "Figure 6", "shows": "each size's LDS against its compute ratio"},
        ),
        fig_lds_svg=f"{ATTRIBUTION_DIR}/report/fig6_lds_vs_compute.svg",
        fig_overlap=report(
            f"{ATTRIBUTION_DIR}/report/fig7_top_k_overlap.png",
            caption="report/fig7_top_k_overlap.rst",
            category="Data attribution",
            labels={"#": "3", "item": "Figure 7", "shows": "top-k and bottom-k examples shared with the reference"},
        ),
        fig_overlap_svg=f"{ATTRIBUTION_DIR}/report/fig7_top_k_overlap.svg",
        fig_m=report(
            f"{ATTRIBUTION_DIR}/report/lds_vs_checkpoints.png",
            caption="report/lds_vs_checkpoints.rst",
            category="Data attribution",
            labels={"#": "4", "item": "LDS vs checkpoints", "shows": "LDS as more checkpoints are averaged"},
        ),
        fig_m_svg=f"{ATTRIBUTION_DIR}/report/lds_vs_checkpoints.svg",
        fig_rank=report(
            f"{ATTRIBUTION_DIR}/report/rank_correlation.png",
            caption="report/rank_correlation.rst",
            category="Data attribution",
            labels={"#": "5", "item": "Rank correlation", "shows": "Spearman of datamodel weights between sizes"},
        ),
        fig_rank_svg=f"{ATTRIBUTION_DIR}/report/rank_correlation.svg",
        fig_examples=report(
            f"{ATTRIBUTION_DIR}/report/top_k_examples.png",
            caption="report/top_k_examples.rst",
            category="Data attribution",
            labels={"#": "6", "item": "Top examples", "shows": "each size's most helpful training examples"},
        ),
        fig_examples_svg=f"{ATTRIBUTION_DIR}/report/top_k_examples.svg",
    log:
        f"{LOGS}/lds.log",
    retries: rule_retries(config, "report")
    conda:
        conda_env("report")
    threads: rule_threads(config, "report")
    resources:
        **rule_resources(config, "report"),
    params:
        sizes=ATTRIBUTION_SIZES,
        reference=ATTRIBUTION_REFERENCE,
        checkpoints=len(MODEL_IDS["attribution"]),
        q_term=ATTRIBUTION["trak"]["q_term"],
        lambda_reg=ATTRIBUTION["trak"]["lambda_reg"],
        proj_dim=ATTRIBUTION["trak"]["proj_dim"],
        report=ATTRIBUTION["report"],
        bootstrap=config["report"]["bootstrap"],
        ci=config["report"]["ci"],
    script:
        "../workflow_scripts/lds_report.py"
