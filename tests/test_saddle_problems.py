"""The two objectives of the stochastic-momentum paper: gradients and Hessians against autograd."""

import numpy as np
import pytest
import torch

from repro.optim.saddle_problems import PhaseRetrieval, ToySaddle, build_problem


def _torch_toy(problem, w):
    h = torch.tensor(problem.h)
    b = torch.tensor(problem.b[0])  # (n, 2)
    terms = 0.5 * (h * w**2).sum() + b @ w + (w**10).sum()
    return terms.mean()


def _torch_phase(problem, w):
    a = torch.tensor(problem.a[0])
    y = torch.tensor(problem.y[0])
    return problem.scale * (((a @ w) ** 2 - y) ** 2).mean()


@pytest.mark.parametrize("kind", ["toy_saddle", "phase_retrieval"])
def test_gradient_and_hessian_match_autograd(kind):
    problem = build_problem(kind, [3])
    rng = np.random.default_rng(0)
    w = rng.normal(size=(1, 1, problem.dim)) * 0.7
    fn = _torch_toy if kind == "toy_saddle" else _torch_phase
    wt = torch.tensor(w[0, 0], requires_grad=True)
    loss = fn(problem, wt)
    (grad,) = torch.autograd.grad(loss, wt)
    hess = torch.autograd.functional.hessian(lambda x: fn(problem, x), wt)
    np.testing.assert_allclose(problem.loss(w)[0, 0], loss.item(), rtol=1e-12)
    np.testing.assert_allclose(problem.grad(w)[0, 0], grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(problem.hessian(w)[0, 0], hess.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["toy_saddle", "phase_retrieval"])
def test_full_batch_stochastic_gradient_is_the_gradient(kind):
    problem = build_problem(kind, [0, 1])
    w = np.random.default_rng(1).normal(size=(2, 3, problem.dim)) * 0.3
    idx = np.broadcast_to(np.arange(problem.n_samples), (1, 2, problem.n_samples))
    batch = tuple(x[0] for x in problem.gather(idx))
    np.testing.assert_allclose(problem.stochastic_grad(w, batch), problem.grad(w), rtol=1e-10, atol=1e-14)


def test_toy_saddle_offsets_have_the_paper_covariance():
    problem = ToySaddle.sample(range(400), n=10)
    var = problem.b.reshape(-1, 2).var(axis=0)
    np.testing.assert_allclose(var, [0.1, 0.001], rtol=0.05)


def test_phase_retrieval_landscape_facts():
    problem = PhaseRetrieval.sample([0], n=2000, d=4)
    w_star = problem.w_star[:, None, :]
    # +-w* are global minima with zero loss and zero gradient
    for sign in (1, -1):
        assert problem.loss(sign * w_star)[0, 0] == pytest.approx(0.0, abs=1e-20)
        np.testing.assert_allclose(problem.grad(sign * w_star), 0.0, atol=1e-12)
    np.testing.assert_allclose(problem.relative_distance(-w_star), 0.0, atol=1e-15)
    # 0 is a critical point with a negative semi-definite Hessian (a local maximum)
    zero = np.zeros_like(w_star)
    np.testing.assert_allclose(problem.grad(zero), 0.0)
    assert np.linalg.eigvalsh(problem.hessian(zero)[0, 0]).max() < 0


def test_unknown_problem_and_scale_are_named():
    with pytest.raises(ValueError, match="unknown saddle problem 'ring'"):
        build_problem("ring", [0])
    with pytest.raises(ValueError, match="scale '1/2n' is not one of"):
        PhaseRetrieval.sample([0], scale="1/2n")
