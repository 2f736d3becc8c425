"""Which experiment each data-augmentation figure plots (figure name -> experiment key).

Kept free of heavy imports: the workflow reads it at parse time to list the figures of the
configured experiments, and the plotting functions (:data:`repro.augtheory.report.FIGURES`) import
torch and matplotlib.
"""

FIGURE_EXPERIMENTS: dict[str, str] = {
    "spectrum": "e21",
    "bias_variance": "e22_fig1",
    "classification_map": "e23",
    "mse_decomposition": "e24",
    "finite_vs_aerm": "e25",
    "heterogeneous_mask": "e26",
    "biased_vs_unbiased": "e27",
    "sgd_convergence": "e28",
    "signal_mask": "e29",
}
