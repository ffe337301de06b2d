"""Scale correlation (the paper's section 2): per-sample losses of every (distribution, size) model on
the test sets (``evaluate``), how well proxy losses predict the reference's across distributions
(``analysis``), and the figures and markdown report (``figures``, ``report``). The models are trained
by :mod:`proxyscale.training.lm`."""
