# Scale correlation (the paper's section 2): one model per (training distribution, size), its
# per-sample losses on every test set, then the analysis of how well proxy losses predict the
# reference's: tables (parquet), figures (PNG + SVG) and a markdown report. A distribution is a
# weighting of source shards or one selection's shard (selection.distributions). Only a size's own
# architecture and recipe are params, so editing one size re-runs that size's models and the report.
# A size under models: is imported from transformers checkpoints instead: evaluate_imported replaces
# its train and evaluate jobs (after convert_imported for checkpoints in OLMo's hf_olmo format).
# With seeds: above 1, replicate k >= 1 of a (distribution, size) is trained and evaluated by
# train_replicate and evaluate_replicate, its files under seed{k}/; replicate 0 is train's and evaluate's.


rule train:
    input:
        shards=distribution_shards,
        tokenizer=TOKENIZER_FILES,
    output:
        ckpt=artifact_path("checkpoint", dist="{dist}", size="{size}"),
        curve=artifact_path("curve", dist="{dist}", size="{size}"),
    log:
        f"{LOGS}/train/{{dist}}/{{size}}.log",
    benchmark:
        f"{BENCHMARKS}/train/{{dist}}/{{size}}.tsv"
    wildcard_constraints:
        size=one_of(TRAINED_SIZES),
    retries: rule_retries(config, "train")
    conda:
        conda_env("train")
    threads: rule_threads(config, "train")
    resources:
        **rule_resources(config, "train", training=True),
    params:
        shards=distribution_shard_names,
        weights=distribution_weights,
        size=size_spec,
        model=config["model"],
        training=config["training"],
        tokenizer=TOKENIZER,
        seed=config["seed"],
        device=config["device"],
    script:
        "../workflow_scripts/train.py"


rule evaluate:
    input:
        ckpt=artifact_path("checkpoint", dist="{dist}", size="{size}"),
        tests=TESTSET_FILES,
        tokenizer=TOKENIZER_FILES,
    output:
        [artifact_path("losses", dist="{dist}", size="{size}", test=t) for t in TESTS],
    log:
        f"{LOGS}/evaluate/{{dist}}/{{size}}.log",
    benchmark:
        f"{BENCHMARKS}/evaluate/{{dist}}/{{size}}.tsv"
    wildcard_constraints:
        size=one_of(TRAINED_SIZES),
    retries: rule_retries(config, "evaluate")
    conda:
        conda_env("evaluate")
    threads: rule_threads(config, "evaluate")
    resources:
        **rule_resources(config, "evaluate"),
    params:
        tests=TESTS,
        batch_size=config["evaluation"]["batch_size"],
        tokenizer=TOKENIZER,
        device=config["device"],
    script:
        "../workflow_scripts/evaluate.py"


use rule train as train_replicate with:
    output:
        ckpt=replicate_path("checkpoint", "{seed}", dist="{dist}", size="{size}"),
        curve=replicate_path("curve", "{seed}", dist="{dist}", size="{size}"),
    log:
        f"{LOGS}/train/seed{{seed}}/{{dist}}/{{size}}.log",
    benchmark:
        f"{BENCHMARKS}/train/seed{{seed}}/{{dist}}/{{size}}.tsv"
    params:
        seed=replicate_seed,


use rule evaluate as evaluate_replicate with:
    input:
        ckpt=replicate_path("checkpoint", "{seed}", dist="{dist}", size="{size}"),
        tests=TESTSET_FILES,
        tokenizer=TOKENIZER_FILES,
    output:
        [replicate_path("losses", "{seed}", dist="{dist}", size="{size}", test=t) for t in TESTS],
    log:
        f"{LOGS}/evaluate/seed{{seed}}/{{dist}}/{{size}}.log",
    benchmark:
        f"{BENCHMARKS}/evaluate/seed{{seed}}/{{dist}}/{{size}}.tsv"


rule convert_imported:
    input:
        lambda w: local_files(imported_source(w)),
    output:
        directory(artifact_path("converted", dist="{dist}", size="{size}")),
    log:
        f"{LOGS}/convert_imported/{{dist}}/{{size}}.log",
    wildcard_constraints:
        size=one_of(IMPORTED_SIZES),
    retries: rule_retries(config, "report")
    conda:
        conda_env("imported")
    threads: 1
    resources:
        **rule_resources(config, "report"),
    params:
        source=imported_source,
    script:
        "../workflow_scripts/convert_imported.py"


rule evaluate_imported:
    input:
        model=imported_files,
        tests=TESTSET_FILES,
    output:
        losses=[artifact_path("losses", dist="{dist}", size="{size}", test=t) for t in TESTS],
        record=artifact_path("imported", dist="{dist}", size="{size}"),
    log:
        f"{LOGS}/evaluate/{{dist}}/{{size}}.log",
    wildcard_constraints:
        size=one_of(IMPORTED_SIZES),
    retries: rule_retries(config, "evaluate")
    conda:
        conda_env("imported")
    threads: rule_threads(config, "evaluate")
    resources:
        **rule_resources(config, "evaluate"),
    params:
        model=imported_model,
        tests=TESTS,
        batch_size=config["evaluation"]["batch_size"],
        device=config["device"],
    script:
        "../workflow_scripts/evaluate_imported.py"


rule correlation:
    input:
        losses=[replicate_path("losses", k, dist=d, size=s, test=t) for d, s, k, t in LOSS_KEYS],
        ckpts=[artifact_path("checkpoint", dist=d, size=s) for d, s in TRAINED_RUNS],
        imported=[artifact_path("imported", dist=d, size=s) for d, s in IMPORTED_RUNS],
        curves=[artifact_path("curve", dist=d, size=s) for d, s in TRAINED_RUNS],
        testsets=TESTSET_FILES,
        reserved=[artifact_path("split", target=t) for t in RESERVED_TESTS],
    output:
        report=CORRELATION_REPORT,
        html=report(
            f"{CORRELATION_DIR}/report.html",
            caption="report/correlation_report.rst",
            category="Scale correlation",
            labels={"#": "1", "item": "Report", "shows": "the findings, every table and figure (report.md)"},
        ),
        means=f"{CORRELATION_DIR}/mean_losses.parquet",
        accuracy=f"{CORRELATION_DIR}/accuracy.parquet",
        compute=f"{CORRELATION_DIR}/compute.parquet",
        summary=f"{CORRELATION_DIR}/summary.parquet",
        per_sample=f"{CORRELATION_DIR}/per_sample_r2.parquet",
        loo=f"{CORRELATION_DIR}/loo_predictions.parquet",
        null=f"{CORRELATION_DIR}/per_sample_null.parquet",
        verdict=f"{CORRELATION_DIR}/verdict.parquet",
        noise=NOISE_TABLE,
        decisions=DECISION_TABLES["decisions"],
        reliability=DECISION_TABLES["reliability"],
        safe=DECISION_TABLES["safe"],
        # every figure is a PNG (in the HTML report, captioned from rules/report/) and an SVG beside it
        scatter=report(
            f"{CORRELATION_DIR}/fig1_scatter.png",
            caption="report/fig1_scatter.rst",
            category="Scale correlation",
            labels={"#": "2", "item": "Figure 1", "shows": "reference vs proxy mean loss, per distribution"},
        ),
        scatter_svg=f"{CORRELATION_DIR}/fig1_scatter.svg",
        r2_compute=report(
            f"{CORRELATION_DIR}/fig2_r2_vs_compute.png",
            caption="report/fig2_r2_vs_compute.rst",
            category="Scale correlation",
            labels={"#": "3", "item": "Figure 2", "shows": "R² against how much less compute the proxy used"},
        ),
        r2_compute_svg=f"{CORRELATION_DIR}/fig2_r2_vs_compute.svg",
        r2_accuracy=report(
            f"{CORRELATION_DIR}/fig3_r2_vs_accuracy.png",
            caption="report/fig3_r2_vs_accuracy.rst",
            category="Scale correlation",
            labels={"#": "4", "item": "Figure 3", "shows": "R² against the proxy's accuracy above chance"},
        ),
        r2_accuracy_svg=f"{CORRELATION_DIR}/fig3_r2_vs_accuracy.svg",
        per_sample_fig=report(
            f"{CORRELATION_DIR}/fig4_per_sample.png",
            caption="report/fig4_per_sample.rst",
            category="Scale correlation",
            labels={"#": "5", "item": "Figure 4", "shows": "single test examples' losses, per distribution"},
        ),
        per_sample_fig_svg=f"{CORRELATION_DIR}/fig4_per_sample.svg",
        per_sample_hist=report(
            f"{CORRELATION_DIR}/fig5_per_sample_r2.png",
            caption="report/fig5_per_sample_r2.rst",
            category="Scale correlation",
            labels={"#": "6", "item": "Figure 5", "shows": "per-example R² against its permutation null"},
        ),
        per_sample_hist_svg=f"{CORRELATION_DIR}/fig5_per_sample_r2.svg",
        reliability_fig=report(
            f"{CORRELATION_DIR}/fig6_reliability.png",
            caption="report/fig6_reliability.rst",
            category="Scale correlation",
            labels={"#": "7", "item": "Reliability", "shows": "how often proxy decisions held, by their probability"},
        ),
        reliability_fig_svg=f"{CORRELATION_DIR}/fig6_reliability.svg",
        curves=report(
            f"{CORRELATION_DIR}/training_curves.png",
            caption="report/training_curves.rst",
            category="Scale correlation",
            labels={"#": "8", "item": "Training curves", "shows": "training loss against tokens, every run"},
        ),
        curves_svg=f"{CORRELATION_DIR}/training_curves.svg",
    log:
        f"{LOGS}/correlation.log",
    retries: rule_retries(config, "report")
    conda:
        conda_env("report")
    threads: rule_threads(config, "report")
    resources:
        **rule_resources(config, "report"),
    params:
        # the inputs' keys are products of these (losses: dists x sizes x each size's seeds x tests, curves:
        # dists x trained sizes): any change of a key changes a param, and the HTML report's job parameters
        # stay short
        dists=DISTRIBUTIONS,
        sizes=SIZES,
        seeds=SEEDS,
        tests=TESTS,
        reserved_tests=RESERVED_TESTS,
        induced=list(SELECTION_DISTRIBUTIONS),
        tokenizer=TOKENIZER if TRAINED_SIZES else None,
        imported_sizes=IMPORTED_SIZES,
        reference=REFERENCE,
        bootstrap=config["report"]["bootstrap"],
        ci=config["report"]["ci"],
        panels=config["report"]["per_sample_panels"],
        null_permutations=config["report"]["null_permutations"],
        verdict=config["report"]["verdict"],
        decision_probability=config["report"]["decision_probability"],
        seed=config["seed"],
    script:
        "../workflow_scripts/correlation_report.py"
