# TRAK datamodels, shared by the attribution and selection experiments through {exp}: a dataset
# (attribution.smk, selection.smk) -> M checkpoints per size -> one TRAK store per checkpoint
# (featurize + finalize) -> per-checkpoint scores for the targets -> one datamodel matrix per size.
# Each rule's params hold only the config it depends on, so editing one size re-runs that size.


rule attribution_train:
    input:
        dataset_path("{exp}"),
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


rule trak_featurize:
    input:
        model=model_path("{exp}", "{size}", "{ckpt}"),
        data=dataset_path("{exp}"),
    output:
        directory(trak_store_path("{exp}", "{size}", "{ckpt}")),
    log:
        f"{LOGS}/{{exp}}/trak_featurize/{{size}}/{{ckpt}}.log",
    conda:
        conda_env("attribution")
    threads: rule_threads("attribution")
    resources:
        **rule_resources("attribution"),
    params:
        trak=featurize_settings,
        work_dir=trak_work_dir,
        device=config["device"],
    script:
        "../workflow_scripts/trak_featurize.py"


rule trak_score:
    input:
        store=trak_store_path("{exp}", "{size}", "{ckpt}"),
        model=model_path("{exp}", "{size}", "{ckpt}"),
        data=dataset_path("{exp}"),
    output:
        trak_scores_path("{exp}", "{size}", "{ckpt}"),
    log:
        f"{LOGS}/{{exp}}/trak_score/{{size}}/{{ckpt}}.log",
    conda:
        conda_env("attribution")
    threads: rule_threads("attribution")
    resources:
        **rule_resources("attribution"),
    params:
        batch_size=scoring_batch_size,
        device=config["device"],
    script:
        "../workflow_scripts/trak_score.py"


rule datamodel:
    input:
        checkpoint_scores,
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
