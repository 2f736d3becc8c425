"""Algorithm 1 against PyTorch's SGD with momentum, and the escape-time measures."""

import numpy as np
import pytest
import torch

from repro.optim.saddle_problems import build_problem
from repro.optim.stochastic_momentum import escape_time_by_loss, first_crossing, simulate_momentum


def test_first_crossing_on_a_known_curve():
    iters = np.arange(0, 1000, 10)
    tau = 100.0
    values = np.exp(-iters / tau)[:, None] * np.array([1.0, 2.0])[None, :]
    # first recorded iteration with exp(-t/tau) * c <= 0.1: t >= tau ln(10 c), rounded up to the grid
    expected = np.ceil(tau * np.log(10 * np.array([1.0, 2.0])) / 10) * 10
    np.testing.assert_array_equal(first_crossing(values, iters, 0.1), expected)
    assert np.isnan(first_crossing(values, iters, -1.0)).all()


def test_simulation_matches_torch_sgd_with_momentum():
    """Same sample stream, same steps: our vectorised loop equals torch.optim.SGD(momentum=beta)."""
    seeds, betas, eta, steps = [5], [0.0, 0.6], 0.01, 300
    problem = build_problem("phase_retrieval", seeds, n=30, d=4)
    trace = simulate_momentum(problem, seeds, betas, eta, steps, batch_size=3, record_every=steps, progress=False)

    rng = np.random.default_rng([5, 2])
    idx = rng.integers(0, problem.n_samples, size=(steps, 3))
    a, y = torch.tensor(problem.a[0]), torch.tensor(problem.y[0])
    w0 = torch.tensor(problem.initial_point(seeds)[0])
    for j, beta in enumerate(betas):
        w = w0.clone().requires_grad_(True)
        opt = torch.optim.SGD([w], lr=eta, momentum=beta, dampening=0.0)
        for t in range(steps):
            opt.zero_grad()
            rows = torch.as_tensor(idx[t])
            loss = problem.scale * (((a[rows] @ w) ** 2 - y[rows]) ** 2).mean()
            loss.backward()
            opt.step()
        np.testing.assert_allclose(trace.final_w[0, j], w.detach().numpy(), rtol=1e-9, atol=1e-12)


def test_toy_escape_time_falls_with_momentum_and_is_deterministic():
    seeds, betas = [0, 1], [0.0, 0.9]
    problem = build_problem("toy_saddle", seeds)
    kwargs = dict(eta=5e-3, n_steps=20_000, record_every=100, apcg_k=100, progress=False)
    trace = simulate_momentum(problem, seeds, betas, **kwargs)
    escape, depth = escape_time_by_loss(trace, problem)
    assert np.isfinite(escape).all() and (depth > 0).all()
    assert (escape[:, 1] < escape[:, 0]).all()
    again, _ = escape_time_by_loss(simulate_momentum(problem, seeds, betas, **kwargs), problem)
    np.testing.assert_array_equal(escape, again)


def test_runs_that_never_leave_the_saddle_are_censored():
    problem = build_problem("toy_saddle", [0])
    trace = simulate_momentum(problem, [0], [0.0], eta=5e-5, n_steps=2000, record_every=100, progress=False)
    escape, _ = escape_time_by_loss(trace, problem)
    assert np.isnan(escape).all()


@pytest.mark.parametrize("record_every", [7, 50])
def test_recorded_iterations_include_start_and_end(record_every):
    problem = build_problem("toy_saddle", [0])
    trace = simulate_momentum(problem, [0], [0.5], 1e-3, 200, record_every=record_every, progress=False)
    assert trace.iterations[0] == 0 and trace.iterations[-1] == 200
    assert trace.stacked("loss").shape == (len(trace.iterations), 1, 1)
    assert np.isnan(trace.stacked("apag")[-1]).all()  # no (g, m) at the final record
