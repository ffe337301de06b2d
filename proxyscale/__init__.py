"""proxyscale: does a small proxy model see the training data the way a large model does?

One subpackage per stage of the paper (Khaddaj, Engstrom, Madry 2025), each beside its rule file:
``data`` (rules/data.smk), ``correlation`` (rules/correlation.smk), ``datamodels``
(rules/datamodels.smk, shared by attribution and selection), ``attribution`` (rules/attribution.smk)
and ``selection`` (rules/selection.smk); ``models`` and ``training`` serve them all, as do the small
generic modules beside this file (errors, io, losses, device, stats, markdown, plotting, ...); ``config``,
``plan`` and ``runner`` are the workflow's own, above the experiments (README, "Floors").
"""
