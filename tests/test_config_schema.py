"""A config the schema refuses is reported in one line naming the key, what is wrong and what is allowed;
a config it accepts gets its defaults exactly as Snakemake's ``validate`` fills them."""

import copy

import pytest
import yaml

from conftest import REPO, run_snakemake, tiny_config, write_config
from proxyscale.errors import ConfigError
from proxyscale.schema import MAX_LISTED, validate_config

SCHEMA = REPO / "schemas/config.schema.yaml"
TOP_KEYS = "seed, device, peak_tflops, check_runtimes, resume_every_minutes, tokenizer, sources"


def _message(edit) -> str:
    config = copy.deepcopy(tiny_config())
    edit(config)
    with pytest.raises(ConfigError) as caught:
        validate_config(config, SCHEMA)
    return str(caught.value)


def _sizes_models(c):
    c["models"] = {"big": {"tokens": 1e9, "checkpoints": {"web": {"hubb": "org/big", "revision": "main"}}}}


# (edit of the tiny config, the exact message, or its exact start where it ends with "...")
CASES = {
    "unknown top-level key, a typo": (
        lambda c: c.update(refrence="ref"),
        f"refrence: not a known key; did you mean 'reference'? (allowed: {TOP_KEYS}, ...",
    ),
    "unknown top-level key, no close match": (
        lambda c: c.update(typo_key=1),
        f"typo_key: not a known key (allowed: {TOP_KEYS}, ...",
    ),
    "unknown key of a size": (
        lambda c: c["sizes"]["tiny"].update(d_modle=8),
        "sizes.tiny.d_modle: not a known key; did you mean 'd_model'? (allowed: d_model, n_layers, "
        "n_heads, batch_size, lr, position, bias, micro_batch_size, activation_checkpointing)",
    ),
    "unknown key of a shared block": (
        lambda c: c["attribution"]["trak"].update(proj_dmi=64),
        "attribution.trak.proj_dmi: not a known key; did you mean 'proj_dim'? (allowed: proj_dim, "
        "lambda_reg, q_term, batch_size, projector_seed, projector, micro_batch_size, store_dtype, shards, "
        "keep_gradients)",
    ),
    "unknown key of an imported checkpoint": (
        _sizes_models,
        "models.big.checkpoints.web.hubb: not a known key; did you mean 'hub'? (allowed: path, hub, ...",
    ),
    "unknown key of a resource group": (
        lambda c: c.update(resources={"train": {"gpus": 1}}),
        "resources.train.gpus: not a known key; did you mean 'gpu'? "
        "(allowed: mem_mb, runtime, gpu, threads, processes, retries, slurm_partition, slurm_account, gpu_model, gres, "
        "constraint, slurm_extra)",
    ),
    "wrong type at the top": (lambda c: c.update(seed="abc"), "seed: 'abc' is not an integer"),
    "wrong type, nested": (
        lambda c: c["evaluation"].update(batch_size="abc"),
        "evaluation.batch_size: 'abc' is not an integer",
    ),
    "wrong type, one of two": (
        lambda c: c.update(peak_tflops="fast"),
        "peak_tflops: 'fast' is not a number or null",
    ),
    "a block left empty": (lambda c: c.update(evaluation=None), "evaluation: null is not a mapping"),
    "above an exclusive maximum": (
        lambda c: c["report"].update(ci=1.5),
        "report.ci: 1.5 is out of range (must be > 0 and < 1)",
    ),
    "above a maximum": (
        lambda c: c["report"].update(verdict={"min_r2": 2}),
        "report.verdict.min_r2: 2 is out of range (must be >= 0 and <= 1)",
    ),
    "at an exclusive minimum": (
        lambda c: c["sizes"]["tiny"].update(lr=0),
        "sizes.tiny.lr: 0 is out of range (must be > 0)",
    ),
    "below a minimum": (
        lambda c: c["attribution"]["lds"].update(subsets=1),
        "attribution.lds.subsets: 1 is out of range (must be >= 2)",
    ),
    "a weight of zero": (
        lambda c: c["distributions"]["mixture"].update(web=0),
        "distributions.mixture.web: 0 is out of range (must be > 0)",
    ),
    "not in an enum": (
        lambda c: c["sizes"]["ref"].update(position="alibii"),
        "sizes.ref.position: 'alibii' must be one of alibi, learned; did you mean 'alibi'?",
    ),
    "not in an enum, in a list": (
        lambda c: c["sources"]["web"][0].update(format="txt"),
        "sources.web[0].format: 'txt' must be one of plain_text, gutenberg, wikitext, arxiv_csv, "
        "s2orc_jsonl, jsonl, hf",
    ),
    "no branch of a oneOf": (
        lambda c: c["sizes"]["tiny"].update(micro_batch_size="autoo"),
        "sizes.tiny.micro_batch_size: 'autoo' must be an integer >= 1 or 'auto'; did you mean 'auto'?",
    ),
    "no branch of an anyOf": (
        lambda c: c["selection"]["trak"].update(shards=0),
        "selection.trak.shards: 0 must be an integer >= 1 or 'auto'",
    ),
    "a required key missing": (
        lambda c: c["sizes"]["tiny"].pop("lr"),
        "sizes.tiny: missing required key 'lr'",
    ),
    "required keys missing at the top": (
        lambda c: [c.pop("reference"), c.pop("test_sets")],
        "missing required keys 'test_sets', 'reference'",
    ),
    "a name the schema refuses": (
        lambda c: c["sizes"].update({"big one": c["sizes"]["tiny"]}),
        "sizes.big one: not a valid name (a string matching ^[A-Za-z0-9_-]+$)",
    ),
    "a repeated list item": (
        lambda c: c["selection"].update(methods=["dsdm", "dsdm"]),
        "selection.methods: lists 'dsdm' more than once",
    ),
    "too few sizes": (
        lambda c: c["selection"]["sizes"].pop("d4"),
        "selection.sizes: needs at least 2 entries (has 1)",
    ),
}


@pytest.mark.parametrize("case", list(CASES), ids=[case.replace(" ", "-") for case in CASES])
def test_a_schema_failure_is_one_line_naming_the_key(case):
    edit, expected = CASES[case]
    message = _message(edit)
    assert "\n" not in message
    if expected.endswith("..."):
        assert message.startswith(expected[:-3]), message
        assert "did you mean" in expected or "did you mean" not in message, message
    else:
        assert message == expected


def test_every_top_level_key_is_listed_and_a_longer_list_is_capped(tmp_path):
    top = ", ".join(yaml.safe_load(SCHEMA.read_text())["properties"])
    assert _message(lambda c: c.update(typo_key=1)) == f"typo_key: not a known key (allowed: {top})"
    names = {f"k{i:02d}": {} for i in range(MAX_LISTED + 3)}
    (tmp_path / "long.yaml").write_text(yaml.safe_dump({"additionalProperties": False, "properties": names}))
    with pytest.raises(ConfigError) as caught:
        validate_config({"typo": 1}, tmp_path / "long.yaml")
    assert str(caught.value).endswith(f"k{MAX_LISTED - 1:02d}, ... (3 more))"), caught.value


@pytest.mark.parametrize("name", ["config.yaml", "tests/configs/tiny.yaml"])
def test_a_valid_config_gets_the_defaults_snakemake_validate_fills(name):
    from snakemake.utils import validate

    config = yaml.safe_load((REPO / name).read_text())
    theirs, ours = copy.deepcopy(config), copy.deepcopy(config)
    validate(theirs, str(SCHEMA))
    validate_config(ours, SCHEMA)
    assert ours == theirs
    assert ours != config  # defaults were filled


@pytest.mark.workflow
def test_snakemake_reports_a_config_typo_in_a_few_lines(tmp_path):
    write_config(tiny_config(), tmp_path)
    result = run_snakemake(tmp_path, "-n", "--config", "typo_key=1")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "invalid config: typo_key: not a known key (allowed: seed, " in output, output
    assert len(output.splitlines()) < 15, output
