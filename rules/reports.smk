# The scale-correlation analysis: tables (parquet), figures (PNG + SVG) and a markdown report.

C = f"{R}/correlation"
RUNS = [(d, s) for d in DISTS for s in SIZES]
LOSS_KEYS = [(d, s, t) for d, s in RUNS for t in TESTS]


rule correlation:
    input:
        losses=[losses_path(d, s, t) for d, s, t in LOSS_KEYS],
        ckpts=[checkpoint_path(d, s) for d, s in RUNS],
        curves=[f"{R}/train_logs/{d}/{s}.parquet" for d, s in RUNS],
        testsets=[testset_path(t) for t in TESTS],
    output:
        report=CORRELATION_REPORT,
        means=f"{C}/mean_losses.parquet",
        compute=f"{C}/compute.parquet",
        summary=f"{C}/summary.parquet",
        per_sample=f"{C}/per_sample_r2.parquet",
        loo=f"{C}/loo_predictions.parquet",
        scatter=report(f"{C}/fig1_scatter.png", category="Scale correlation"),
        r2_compute=report(f"{C}/fig2_r2_vs_compute.png", category="Scale correlation"),
        r2_accuracy=report(f"{C}/fig3_r2_vs_accuracy.png", category="Scale correlation"),
        per_sample_fig=report(f"{C}/fig4_per_sample.png", category="Scale correlation"),
        per_sample_hist=report(f"{C}/fig5_per_sample_r2.png", category="Scale correlation"),
        curves=report(f"{C}/training_curves.png", category="Scale correlation"),
    params:
        loss_keys=LOSS_KEYS,
        run_keys=RUNS,
        tests=TESTS,
        reference=REFERENCE,
        bootstrap=config["report"]["bootstrap"],
        ci=config["report"]["ci"],
        panels=config["report"]["per_sample_panels"],
    log:
        f"{R}/logs/correlation.log",
    threads: rule_threads("report")
    resources:
        **rule_resources("report"),
    conda:
        conda_env("report")
    script:
        "../workflow_scripts/correlation_report.py"
