"""Dataset selection across scale (the paper's section 3.2): the pool and target tasks (``dataset``),
DsDm and the baselines (``methods``), the reference retrained on each selection (``retrain``), and the
tables, figures and report (``analysis``, ``figures``, ``report``). Datamodels come from
:mod:`proxyscale.datamodels`."""
