# TRAK datamodels, shared by the attribution and selection experiments through {exp}: a dataset ->
# M checkpoints per size -> one TRAK store per checkpoint (featurize + finalize) -> per-checkpoint
# scores for the targets -> one datamodel matrix per size. Each rule's params hold only the config it
# depends on, so editing one size re-runs that size. The datasets are built by attribution_data
# (here) and selection_data (selection.smk).


rule attribution_data:
    input:
        _attribution_data_inputs,
    output:
        dataset_path("attribution"),
    params:
        spec=_attribution_data_params(),
    log:
        f"{R}/logs/attribution/attribution_data.log",
    threads: rule_threads("data")
    resources:
        **rule_resources("data"),
    conda:
        conda_env("data")
    script:
        "../workflow_scripts/attribution_data.py"


rule attribution_train:
    input:
        dataset_path("{exp}"),
    output:
        model_path("{exp}", "{size}", "{ckpt}"),
    params:
        size=lambda w: EXP[w.exp]["sizes"][w.size],
        epochs=lambda w: EXP[w.exp]["epochs"],
        training=lambda w: EXP[w.exp]["training"],
        device=config["device"],
    log:
        f"{R}/logs/{{exp}}/attribution_train/{{size}}/{{ckpt}}.log",
    threads: rule_threads("attribution")
    resources:
        **rule_resources("attribution"),
    conda:
        conda_env("attribution")
    script:
        "../workflow_scripts/attribution_train.py"


rule trak_featurize:
    input:
        model=model_path("{exp}", "{size}", "{ckpt}"),
        data=dataset_path("{exp}"),
    output:
        directory(trak_store_path("{exp}", "{size}", "{ckpt}")),
    params:
        trak=lambda w: {k: v for k, v in EXP[w.exp]["trak"].items() if k != "q_term"},
        work_dir=lambda w: f"{R}/{w.exp}/trak_work/{w.size}/{w.ckpt}",
        device=config["device"],
    log:
        f"{R}/logs/{{exp}}/trak_featurize/{{size}}/{{ckpt}}.log",
    threads: rule_threads("attribution")
    resources:
        **rule_resources("attribution"),
    conda:
        conda_env("attribution")
    script:
        "../workflow_scripts/trak_featurize.py"


rule trak_score:
    input:
        store=trak_store_path("{exp}", "{size}", "{ckpt}"),
        model=model_path("{exp}", "{size}", "{ckpt}"),
        data=dataset_path("{exp}"),
    output:
        trak_scores_path("{exp}", "{size}", "{ckpt}"),
    params:
        batch_size=lambda w: EXP[w.exp]["trak"]["batch_size"],
        device=config["device"],
    log:
        f"{R}/logs/{{exp}}/trak_score/{{size}}/{{ckpt}}.log",
    threads: rule_threads("attribution")
    resources:
        **rule_resources("attribution"),
    conda:
        conda_env("attribution")
    script:
        "../workflow_scripts/trak_score.py"


rule datamodel:
    input:
        lambda w: [trak_scores_path(w.exp, w.size, c) for c in CKPTS[w.exp]],
    output:
        datamodel_path("{exp}", "{size}"),
    params:
        q_term=lambda w: EXP[w.exp]["trak"]["q_term"],
    log:
        f"{R}/logs/{{exp}}/datamodel/{{size}}.log",
    threads: 1
    resources:
        **rule_resources("report"),
    conda:
        conda_env("report")
    script:
        "../workflow_scripts/datamodel.py"
