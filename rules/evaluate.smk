# Per-sample losses of one checkpoint on every test set.


rule evaluate:
    input:
        ckpt=checkpoint_path("{dist}", "{size}"),
        tests=[testset_path(t) for t in TESTS],
    output:
        [losses_path("{dist}", "{size}", t) for t in TESTS],
    params:
        tests=TESTS,
        batch_size=config["evaluation"]["batch_size"],
        device=config["device"],
    log:
        f"{R}/logs/evaluate/{{dist}}/{{size}}.log",
    threads: rule_threads("evaluate")
    resources:
        **rule_resources("evaluate"),
    conda:
        conda_env("evaluate")
    script:
        "../workflow_scripts/evaluate.py"
