# Raw files -> per-source training token streams and holdout documents; test sets -> tokenised candidates.
# With tokenizer.kind bpe, a byte-level BPE is trained first on every source's train documents, and all
# tokenised artifacts depend on its file (so changing vocab_size re-runs exactly those).


rule train_tokenizer:
    input:
        [f for s in SOURCES for f in source_files_of(s)],
    output:
        BPE_PATH,
    log:
        f"{LOGS}/train_tokenizer.log",
    retries: rule_retries(config, "data")
    conda:
        conda_env("data")
    threads: rule_threads(config, "data")
    resources:
        **rule_resources(config, "data"),
    params:
        sources=config["sources"],
        holdout_fraction=config["holdout_fraction"],
        tokenizer=config["tokenizer"],
    script:
        "../workflow_scripts/train_tokenizer.py"


rule prepare_source:
    input:
        files=source_files,
        tokenizer=TOKENIZER_FILES,
    output:
        shard=artifact_path("shard", source="{source}"),
        holdout=artifact_path("holdout", source="{source}"),
    log:
        f"{LOGS}/prepare_source/{{source}}.log",
    retries: rule_retries(config, "data")
    conda:
        conda_env("data")
    threads: rule_threads(config, "data")
    resources:
        **rule_resources(config, "data"),
    params:
        files=source_entries,
        holdout_fraction=config["holdout_fraction"],
        tokenizer=TOKENIZER,
    script:
        "../workflow_scripts/prepare_source.py"


rule build_testset:
    input:
        files=testset_files,
        holdouts=pile_holdouts,
        tokenizer=TOKENIZER_FILES,
    output:
        artifact_path("testset", test="{test}"),
    log:
        f"{LOGS}/build_testset/{{test}}.log",
    retries: rule_retries(config, "data")
    conda:
        conda_env("data")
    threads: rule_threads(config, "data")
    resources:
        **rule_resources(config, "data"),
    params:
        spec=testset_spec,
        holdout_sources=pile_sources,
        max_examples=config["evaluation"]["max_examples"],
        max_chars=config["evaluation"]["max_chars"],
        tokenizer=TOKENIZER,
        seed=config["seed"],
    script:
        "../workflow_scripts/build_testset.py"
