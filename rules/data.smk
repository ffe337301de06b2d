# Raw files -> per-source training token streams and holdout documents; test sets -> tokenised candidates.


rule prepare_source:
    input:
        lambda w: [e["path"] for e in config["sources"][w.source] if "path" in e],
    output:
        shard=f"{R}/shards/{{source}}.npy",
        holdout=f"{R}/holdout/{{source}}.parquet",
    params:
        files=lambda w: config["sources"][w.source],
        holdout_fraction=config["holdout_fraction"],
        tokenizer=config["tokenizer"],
    log:
        f"{R}/logs/prepare_source/{{source}}.log",
    threads: rule_threads("data")
    resources:
        **rule_resources("data"),
    conda:
        conda_env("data")
    script:
        "../workflow_scripts/prepare_source.py"


rule build_testset:
    input:
        files=lambda w: [config["test_sets"][w.test]["path"]] if "path" in config["test_sets"][w.test] else [],
        holdouts=lambda w: [f"{R}/holdout/{s}.parquet" for s in _pile_sources(w)],
    output:
        testset_path("{test}"),
    params:
        spec=lambda w: config["test_sets"][w.test],
        holdout_sources=_pile_sources,
        max_examples=config["evaluation"]["max_examples"],
        max_chars=config["evaluation"]["max_chars"],
        tokenizer=config["tokenizer"],
        seed=config["seed"],
    log:
        f"{R}/logs/build_testset/{{test}}.log",
    threads: rule_threads("data")
    resources:
        **rule_resources("data"),
    conda:
        conda_env("data")
    script:
        "../workflow_scripts/build_testset.py"
