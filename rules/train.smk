# One model per (training distribution, size); a distribution is a weighting of source shards or one
# selection's shard (selection.distributions). Only the size's own architecture and recipe are
# params, so editing one size re-runs that size's models and what depends on them.


rule train:
    input:
        shards=lambda w: list(shards_of(w.dist).values()),
    output:
        ckpt=checkpoint_path("{dist}", "{size}"),
        curve=f"{R}/train_logs/{{dist}}/{{size}}.parquet",
    params:
        shards=lambda w: list(shards_of(w.dist)),
        weights=lambda w: weights_of(w.dist),
        size=lambda w: config["sizes"][w.size],
        model=config["model"],
        training=config["training"],
        tokenizer=config["tokenizer"],
        seed=config["seed"],
        device=config["device"],
    log:
        f"{R}/logs/train/{{dist}}/{{size}}.log",
    threads: rule_threads("train")
    resources:
        **rule_resources("train"),
    conda:
        conda_env("train")
    script:
        "../workflow_scripts/train.py"
