"""Graph utilities for the Half-Hop paper (Azabou et al., ICML 2023).

* :mod:`repro.graphs.halfhop` -- the Half-Hop upsampling (PyG's transform as engine) and a
  memory-lean first layer that interpolates slow nodes in hidden space.
* :mod:`repro.graphs.homophily` -- edge, node and class-insensitive homophily on ``edge_index`` tensors.
* :mod:`repro.graphs.csbm` -- a contextual stochastic block model with a target edge homophily,
  plus random train/val/test split masks.
"""
