# The plan of a config before anything runs (`snakemake plan`): jobs, FLOPs, GPU-hours, memory per GPU
# and host, and disk, per rule and size, from the config alone (no data, no network). Its params are the
# whole config, so it is rewritten when any setting changes. Not part of `all`.


rule plan:
    output:
        md=f"{RESULTS}/plan.md",
        table=f"{RESULTS}/plan.parquet",
    log:
        f"{LOGS}/plan.log",
    retries: rule_retries(config, "report")
    conda:
        conda_env("report")
    threads: 1
    resources:
        **rule_resources(config, "report"),
    params:
        config=config,
        compute=f"{CORRELATION_DIR}/compute.parquet",
        benchmarks=BENCHMARKS,
    script:
        "../workflow_scripts/plan.py"
