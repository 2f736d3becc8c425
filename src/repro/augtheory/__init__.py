"""Data augmentation as implicit spectral regularisation in linear models.

Method side of Lin, Kaushik, Dyer & Muthukumar, "The good, the bad and the ugly sides of
data augmentation: an implicit spectral regularization perspective" (JMLR 25(91), 2024),
following the brief ``shared/papers/theory.md`` §2 and the notebooks of
``nerdslab/augmentation-theory`` it describes.

Modules:

* ``model``         the linear-Gaussian model (spectra, theta*, SNR scaling, sampling, labels)
* ``augmentations`` augmentations g(x): exact second moments and Monte-Carlo samplers
* ``estimators``    closed-form augmented ERM (generalised ridge), LSE, deterministic "bar" forms
* ``risk``          MSE = Bias + Var + ApproxErr (exact in the label noise), POE, SU/CN, test risk
* ``spectral``      the augmented spectrum I + Sigma_aug^-1/2 Sigma Sigma_aug^-1/2 (Fig. 1, left)
* ``sgd``           SGD with fresh augmentations on the linear model (torch, vectorised)
* ``experiments``   one runner per experiment E2.1-E2.8 of the brief plus the bug-fixed
                    signal-dependent masking experiment, each returning a long-form DataFrame
"""
