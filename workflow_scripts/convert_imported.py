"""Snakemake entry: an imported checkpoint in OLMo's hf_olmo format (DataDecide's) converted to a
transformers-native directory (OlmoForCausalLM or LlamaForCausalLM), which evaluate_imported reads."""

import logging

from proxyscale.models.imported import checkpoint_directory
from proxyscale.models.olmo_convert import convert_hf_olmo
from proxyscale.runner import run_job


def main():
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    entry = dict(smk.params.source)
    record = convert_hf_olmo(checkpoint_directory(entry), smk.output[0], entry["where"])
    logging.info("%s: hf_olmo -> %s (%s norm, tied %s), %d params", entry["where"], record["family"],
                 record["norm"], record["tied"], record["params"])  # fmt: skip


run_job(snakemake, main)  # noqa: F821
