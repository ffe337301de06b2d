"""Data attribution across scale (the paper's section 3.1): the attribution dataset (``dataset``), the
reference retrained on random subsets and the Linear Datamodeling Score (``lds``), and the tables,
figures and report comparing every size's datamodel with the reference (``analysis``, ``figures``,
``report``). Datamodels come from :mod:`proxyscale.datamodels`."""
