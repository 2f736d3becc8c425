"""Self-supervised learning for neural activity: Swap-VAE (Liu et al., NeurIPS 2021) and MYOW
(Azabou et al., 2021), with VAE, beta-VAE and BYOL baselines (brief ``shared/papers/ssl_graph_neural.md``
§2-§4).  ``trials.TrialData`` is the data contract every module here shares."""
