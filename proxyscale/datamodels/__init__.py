"""The TRAK datamodel pipeline shared by the attribution and selection experiments.

``dataset`` (the dataset file and its language examples) -> ``tasks`` (vision or language models,
their losses and outputs) -> M checkpoints per size (:mod:`proxyscale.training.fit`) -> ``store``
(one traker store per checkpoint, with the ``projectors`` (traker's, or the sparse ``sjlt``) and the model
``outputs`` TRAK attributes)
-> ``datamodel`` (scores averaged over checkpoints, eq. 17), with ``cost`` counting what it took."""
