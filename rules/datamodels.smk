# TRAK datamodels, shared by the attribution and selection experiments through {exp}: a dataset
# (attribution.smk, selection.smk) -> M checkpoints per size -> one TRAK store per checkpoint
# and its scores for the targets (featurize, finalize and score in one job: the same inputs and
# settings, one model load; the store is published only once scored) -> one datamodel matrix per
# size. Language datasets name the token shards their windows are read from: those are inputs too.
# Each rule's params hold only the config it depends on, so editing one size re-runs that size.


rule attribution_train:
    input:
        data=dataset_path("{exp}"),
        shards=lambda w: dataset_shards(w.exp),
    output:
        model_path("{exp}", "{size}", "{ckpt}"),
    log:
        f"{LOGS}/{{exp}}/attribution_train/{{size}}/{{ckpt}}.log",
    conda:
        conda_env("attribution")
    threads: rule_threads("attribution")
    resources:
        **training_resources("attribution"),
    params:
        size=datamodel_size,
        budget=datamodel_budget,
        subset=checkpoint_subset,
        max_repetition=config["model"]["max_repetition"],
        training=datamodel_training,
        device=config["device"],
    script:
        "../workflow_scripts/attribution_train.py"


rule trak:
    input:
        model=model_path("{exp}", "{size}", "{ckpt}"),
        data=dataset_path("{exp}"),
        shards=lambda w: dataset_shards(w.exp),
    output:
        store=directory(trak_store_path("{exp}", "{size}", "{ckpt}")),
        scores=trak_scores_path("{exp}", "{size}", "{ckpt}"),
    log:
        f"{LOGS}/{{exp}}/trak/{{size}}/{{ckpt}}.log",
    conda:
        conda_env("attribution")
    threads: rule_threads("attribution")
    resources:
        **rule_resources("attribution"),
    params:
        trak=featurize_settings,
        work_dir=trak_work_dir,
        grouped=lambda w: w.exp == "selection",
        device=config["device"],
    script:
        "../workflow_scripts/trak.py"


rule datamodel:
    input:
        scores=checkpoint_scores,
        stores=checkpoint_stores,
    output:
        datamodel_path("{exp}", "{size}"),
    log:
        f"{LOGS}/{{exp}}/datamodel/{{size}}.log",
    conda:
        conda_env("report")
    threads: 1
    resources:
        **rule_resources("report"),
    params:
        q_term=q_term,
    script:
        "../workflow_scripts/datamodel.py"
