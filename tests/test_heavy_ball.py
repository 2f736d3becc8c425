"""Heavy Ball on PL functions: closed forms, Polyak's rate, the averaged-Hessian identity."""

import numpy as np
import pytest
import torch

from repro.optim.heavy_ball import build_plan, fit_exponent, run_plan, step_and_momentum
from repro.optim.pl_functions import curvature_weights, get_function


def test_sin2_constants_match_the_known_values():
    fn = get_function("sin2")
    assert fn.smoothness == 8.0
    # inf_x 2 + 3 sin(2x)/x = 0.6966 (Karimi et al. 2016 quote mu = 1/32 for a cruder bound)
    assert fn.averaged_strong_convexity == pytest.approx(0.69660, abs=5e-5)
    x = np.linspace(-20, 20, 100_001)
    assert fn.averaged_curvature(x).min() >= fn.averaged_strong_convexity - 1e-9
    assert fn.g_second(x).min() == pytest.approx(-4.0, abs=1e-6)  # non-convex


@pytest.mark.parametrize("name", ["sin2", "quadratic"])
def test_gradient_matches_autograd_and_averaged_hessian_identity(name):
    fn = get_function(name)
    c = curvature_weights(6, 50.0)
    w = np.random.default_rng(0).uniform(-4, 4, size=6)
    wt = torch.tensor(w, requires_grad=True)
    g = fn.g if name == "quadratic" else (lambda x: x**2 + 3 * torch.sin(x) ** 2)
    loss = (torch.tensor(c) * g(wt)).sum()
    (grad,) = torch.autograd.grad(loss, wt)
    np.testing.assert_allclose(fn.loss(w, c), loss.item(), rtol=1e-12)
    np.testing.assert_allclose(fn.grad(w, c), grad.numpy(), rtol=1e-12)
    # grad f(w) = H_t (w - w*) with H_t the averaged Hessian, w* = 0
    np.testing.assert_allclose(fn.grad(w, c), c * fn.averaged_curvature(w) * w, rtol=1e-12)


def test_curvature_weights_are_geometric():
    c = curvature_weights(5, 16.0)
    np.testing.assert_allclose(c, [1, 0.5, 0.25, 0.125, 0.0625])


def test_heavy_ball_on_a_quadratic_converges_at_polyaks_rate():
    """With Polyak's tuning the error contracts like ((sqrt k - 1)/(sqrt k + 1))^t."""
    fn = get_function("quadratic")
    c = curvature_weights(20, 100.0)
    eta, beta = step_and_momentum("hb_polyak", fn, c)
    kappa = c.max() / c.min()
    rho = (np.sqrt(kappa) - 1) / (np.sqrt(kappa) + 1)
    assert beta[0] == pytest.approx(rho**2)
    w = w_prev = np.random.default_rng(1).normal(size=20)
    norms = []
    for _ in range(600):
        w, w_prev = w - eta * fn.grad(w, c) + beta * (w - w_prev), w
        norms.append(np.linalg.norm(w))
    measured = (norms[-1] / norms[299]) ** (1 / 300)
    assert measured == pytest.approx(rho, rel=0.01)


def test_gd_step_on_a_quadratic_is_exact():
    fn = get_function("quadratic")
    c = np.array([1.0, 0.1])
    eta, beta = step_and_momentum("gd", fn, c)
    assert eta == pytest.approx(1 / 2.0) and not beta.any()
    w = np.array([1.0, 1.0])
    # f = sum c_i w_i^2, grad = 2 c w: one GD step multiplies w_i by 1 - 2 eta c_i
    np.testing.assert_allclose(w - eta * fn.grad(w, c), [0.0, 0.9])


def test_run_plan_counts_iterations_and_reports_nonconvergence():
    fn = get_function("sin2")
    plan = build_plan(fn, ["gd", "hb", "hb_polyak"], [100.0], [0], dim=10, init_radius=4.0)
    res = run_plan(fn, plan, tol=1e-10, max_iter=20_000, progress=False)
    it = dict(zip(plan.method, res.iterations))
    assert np.isfinite(it["gd"]) and np.isfinite(it["hb"])
    assert it["hb"] < it["gd"]
    # the quadratic-optimal tuning fails on this non-quadratic function (brief §3.2)
    assert np.isnan(it["hb_polyak"])
    # the reported count is the first iterate below tol: recompute GD's count directly
    c, eta = plan.c[0], plan.eta[0]
    w, t = plan.w0[0].copy(), 0
    while fn.loss(w, c) >= 1e-10:
        w, t = w - eta * fn.grad(w, c), t + 1
    assert it["gd"] == t


def test_fit_exponent_recovers_a_power_law():
    kappa = np.array([10.0, 100.0, 1000.0])
    slope, intercept = fit_exponent(kappa, 3.0 * kappa**0.5)
    assert slope == pytest.approx(0.5) and np.exp(intercept) == pytest.approx(3.0)
    assert np.isnan(fit_exponent(kappa, np.array([np.nan, np.nan, 5.0]))[0])


def test_unknown_method_and_profile_are_named():
    with pytest.raises(ValueError, match="unknown heavy-ball method 'nesterov'"):
        step_and_momentum("nesterov", get_function("sin2"), np.ones(2))
    with pytest.raises(ValueError, match="unknown PL test function 'cos'"):
        get_function("cos")
