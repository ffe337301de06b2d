# LDS ground truth: the reference model retrained on m random subsets of the training set, each
# subset its own job (its mask is derived from (lds.seed, subset index), so adding subsets runs only
# the new ones), then the report comparing every size's datamodel with those outputs.


rule lds_subset:
    input:
        dataset_path("attribution"),
    output:
        lds_subset_path("{subset}"),
    params:
        size=ATT_SETTING["sizes"][ATT_REFERENCE],
        epochs=ATT_SETTING["epochs"],
        training=ATT["training"],
        alpha=ATT["lds"]["alpha"],
        seed=ATT["lds"]["seed"],
        batch_size=ATT["trak"]["batch_size"],
        device=config["device"],
    log:
        f"{R}/logs/lds_subset/{{subset}}.log",
    threads: rule_threads("attribution")
    resources:
        **rule_resources("attribution"),
    conda:
        conda_env("attribution")
    script:
        "../workflow_scripts/lds_subset.py"


rule lds:
    input:
        data=dataset_path("attribution"),
        datamodels=[datamodel_path("attribution", s) for s in ATT_SIZES],
        scores=[trak_scores_path("attribution", s, c) for s in ATT_SIZES for c in CKPTS["attribution"]],
        models=[model_path("attribution", s, c) for s in ATT_SIZES for c in CKPTS["attribution"]],
        stores=[trak_store_path("attribution", s, c) for s in ATT_SIZES for c in CKPTS["attribution"]],
        subsets=[lds_subset_path(i) for i in LDS_SUBSETS],
    output:
        report=LDS_REPORT,
        lds=f"{A}/report/lds.parquet",
        lds_vs_m=f"{A}/report/lds_vs_checkpoints.parquet",
        overlap=f"{A}/report/top_k_overlap.parquet",
        rank=f"{A}/report/rank_correlation.parquet",
        compute=f"{A}/report/compute.parquet",
        fig_lds=report(f"{A}/report/fig6_lds_vs_compute.png", category="Data attribution (LDS)"),
        fig_m=report(f"{A}/report/lds_vs_checkpoints.png", category="Data attribution (LDS)"),
        fig_overlap=report(f"{A}/report/fig7_top_k_overlap.png", category="Data attribution (LDS)"),
        fig_rank=report(f"{A}/report/rank_correlation.png", category="Data attribution (LDS)"),
        fig_examples=report(f"{A}/report/top_k_examples.png", category="Data attribution (LDS)"),
    params:
        sizes=ATT_SIZES,
        reference=ATT_REFERENCE,
        checkpoints=len(CKPTS["attribution"]),
        q_term=ATT["trak"]["q_term"],
        report=ATT["report"],
        bootstrap=config["report"]["bootstrap"],
        ci=config["report"]["ci"],
    log:
        f"{R}/logs/lds.log",
    threads: rule_threads("report")
    resources:
        **rule_resources("report"),
    conda:
        conda_env("report")
    script:
        "../workflow_scripts/lds_report.py"
