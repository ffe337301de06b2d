# Raw files -> per-source training token streams and holdout documents; test sets -> tokenised candidates.


rule prepare_source:
    input:
        source_files,
    output:
        shard=shard_path("{source}"),
        holdout=holdout_path("{source}"),
    log:
        f"{LOGS}/prepare_source/{{source}}.log",
    conda:
        conda_env("data")
    threads: rule_threads("data")
    resources:
        **rule_resources("data"),
    params:
        files=source_entries,
        holdout_fraction=config["holdout_fraction"],
        tokenizer=config["tokenizer"],
    script:
        "../workflow_scripts/prepare_source.py"


rule build_testset:
    input:
        files=testset_files,
        holdouts=pile_holdouts,
    output:
        testset_path("{test}"),
    log:
        f"{LOGS}/build_testset/{{test}}.log",
    conda:
        conda_env("data")
    threads: rule_threads("data")
    resources:
        **rule_resources("data"),
    params:
        spec=testset_spec,
        holdout_sources=pile_sources,
        max_examples=config["evaluation"]["max_examples"],
        max_chars=config["evaluation"]["max_chars"],
        tokenizer=config["tokenizer"],
        seed=config["seed"],
    script:
        "../workflow_scripts/build_testset.py"
