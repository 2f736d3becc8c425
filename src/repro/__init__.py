"""repro: the logic of the reproduction pipeline (methods, experiments, results contract, kernels)."""

__version__ = "0.1.0"
