# TRAK datamodels, shared by the attribution and selection experiments through {exp}: a dataset
# (attribution.smk, selection.smk) -> M checkpoints per size -> each checkpoint's training rows
# featurized by trak.shards jobs (projected gradients and a partial Phi^T Phi per shard, resumable;
# temporary unless trak.keep_gradients) -> one gather job per checkpoint (sums the partials, inverts
# once, scores the targets; keeps a small store: summary and Q) -> one datamodel matrix per size.
# Language datasets name the token shards their windows are read from: those are inputs too.
# Each rule's params hold only the config it depends on, so editing one size re-runs that size.


rule datamodel_train:
    input:
        data=artifact_path("dataset", exp="{exp}"),
        shards=dataset_shards,
    output:
        artifact_path("model", exp="{exp}", size="{size}", model_id="{model_id}"),
    log:
        f"{LOGS}/{{exp}}/datamodel_train/{{size}}/{{model_id}}.log",
    retries: rule_retries(config, "datamodels")
    conda:
        conda_env("datamodels")
    threads: rule_threads(config, "datamodels")
    resources:
        **rule_resources(config, "datamodels", training=True),
    params:
        size=datamodel_size,
        budget=datamodel_budget,
        subset=model_subset,
        max_repetition=config["model"]["max_repetition"],
        training=datamodel_training,
        device=config["device"],
    script:
        "../workflow_scripts/datamodel_train.py"


rule trak_featurize:
    input:
        model=artifact_path("model", exp="{exp}", size="{size}", model_id="{model_id}"),
        data=artifact_path("dataset", exp="{exp}"),
        shards=dataset_shards,
    output:
        temp(directory(artifact_path("trak_shard", exp="{exp}", size="{size}", model_id="{model_id}", shard="{shard}"))),
    log:
        f"{LOGS}/{{exp}}/trak_featurize/{{size}}/{{model_id}}/{{shard}}.log",
    benchmark:
        f"{BENCHMARKS}/{{exp}}/trak_featurize/{{size}}/{{model_id}}/{{shard}}.tsv"
    wildcard_constraints:
        exp=one_of(TEMPORARY_GRADIENTS),
    retries: rule_retries(config, "datamodels")
    conda:
        conda_env("datamodels")
    threads: rule_threads(config, "datamodels")
    resources:
        **rule_resources(config, "datamodels"),
    params:
        trak=featurize_settings,
        work_dir=trak_work_dir,
        device=config["device"],
    script:
        "../workflow_scripts/trak_featurize.py"


use rule trak_featurize as trak_featurize_kept with:
    output:
        directory(artifact_path("trak_shard", exp="{exp}", size="{size}", model_id="{model_id}", shard="{shard}")),
    wildcard_constraints:
        exp=one_of(KEPT_GRADIENTS),


rule trak:
    input:
        model=artifact_path("model", exp="{exp}", size="{size}", model_id="{model_id}"),
        data=artifact_path("dataset", exp="{exp}"),
        shards=dataset_shards,
        featurized=featurized_shards,
    output:
        store=directory(artifact_path("trak_store", exp="{exp}", size="{size}", model_id="{model_id}")),
        scores=artifact_path("trak_scores", exp="{exp}", size="{size}", model_id="{model_id}"),
    log:
        f"{LOGS}/{{exp}}/trak/{{size}}/{{model_id}}.log",
    benchmark:
        f"{BENCHMARKS}/{{exp}}/trak/{{size}}/{{model_id}}.tsv"
    retries: rule_retries(config, "datamodels")
    conda:
        conda_env("datamodels")
    threads: rule_threads(config, "datamodels")
    resources:
        **rule_resources(config, "datamodels"),
    params:
        featurize=featurize_settings,  # its shards' settings: once they are deleted (temp), a change reruns this
        scoring=scoring_settings,
        device=config["device"],
    script:
        "../workflow_scripts/trak.py"


rule datamodel:
    input:
        scores=size_scores,
        stores=size_stores,
    output:
        artifact_path("datamodel", exp="{exp}", size="{size}"),
    log:
        f"{LOGS}/{{exp}}/datamodel/{{size}}.log",
    retries: rule_retries(config, "report")
    conda:
        conda_env("report")
    threads: 1
    resources:
        **rule_resources(config, "report"),
    params:
        q_term=q_term,
    script:
        "../workflow_scripts/datamodel.py"
