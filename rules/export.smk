# Models and datamodels trained here, out. export_hf: every trained correlation checkpoint as a Hugging
# Face transformers model with the workflow's tokenizer (MPT for ALiBi without biases, GPT-2 for learned
# positions), for lm-evaluation-harness, vLLM or a notebook; read back through models:, it scores as
# trained. export_traker: each size of a TRAK experiment that keeps its gradients (trak.keep_gradients)
# in traker's own layout, one traker model id per checkpoint, which traker's scoring reproduces.


rule export_hf_model:
    input:
        ckpt=artifact_path("checkpoint", dist="{dist}", size="{size}"),
        tokenizer=TOKENIZER_FILES,
    output:
        directory(artifact_path("hf_export", dist="{dist}", size="{size}")),
    log:
        f"{LOGS}/export_hf/{{dist}}/{{size}}.log",
    wildcard_constraints:
        size=one_of(TRAINED_SIZES),
    retries: rule_retries(config, "report")
    conda:
        conda_env("imported")
    threads: 1
    resources:
        **rule_resources(config, "report"),
    params:
        tokenizer=TOKENIZER,
    script:
        "../workflow_scripts/export_hf.py"


rule export_traker_size:
    input:
        models=size_models,
        data=artifact_path("dataset", exp="{exp}"),
        featurized=lambda w: [d for shards in size_kept_shards(w) for d in shards],
    output:
        directory(artifact_path("traker_export", exp="{exp}", size="{size}")),
    log:
        f"{LOGS}/{{exp}}/export_traker/{{size}}.log",
    wildcard_constraints:
        exp=one_of(KEPT_GRADIENTS),
    retries: rule_retries(config, "datamodels")
    conda:
        conda_env("datamodels")
    threads: rule_threads(config, "datamodels")
    resources:
        **rule_resources(config, "datamodels"),
    params:
        shards=size_kept_shards,
        scoring=scoring_settings,
        device=config["device"],
    script:
        "../workflow_scripts/export_traker.py"
