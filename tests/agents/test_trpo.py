"""TRPO machinery: CG, Hessian-vector products (finite differences), trust-region step, line search."""

from __future__ import annotations

import math

import pytest
import torch

from agents.policy import GaussianMLPPolicy, expand_params
from agents.trpo import (
    conjugate_gradient,
    flat_grad,
    flatten_params,
    hessian_vector_product,
    line_search,
    scale_to_trust_region,
    set_flat_params_,
    trpo_step,
    unflatten_params,
)

OBS, ACT = 3, 2


def make_problem(seed: int = 0, n: int = 64):
    torch.manual_seed(seed)
    policy = GaussianMLPPolicy(OBS, ACT, hidden_sizes=(8, 8)).double()
    g = torch.Generator().manual_seed(seed + 100)
    obs = torch.randn(n, OBS, generator=g, dtype=torch.float64)
    return policy, obs, g


def test_conjugate_gradient_solves_random_spd_system() -> None:
    g = torch.Generator().manual_seed(0)
    n = 12
    Q = torch.randn(n, n, generator=g, dtype=torch.float64)
    A = Q @ Q.T + 0.5 * torch.eye(n, dtype=torch.float64)
    b = torch.randn(n, generator=g, dtype=torch.float64)
    x = conjugate_gradient(lambda v: A @ v, b, iters=3 * n, residual_tol=1e-24)
    torch.testing.assert_close(x, torch.linalg.solve(A, b), rtol=1e-8, atol=1e-10)
    # few iterations: a partial solve that already reduces the residual
    x2 = conjugate_gradient(lambda v: A @ v, b, iters=2)
    assert torch.linalg.norm(A @ x2 - b) < torch.linalg.norm(b)
    # zero right-hand side: zero solution, no division by zero
    assert torch.equal(conjugate_gradient(lambda v: A @ v, torch.zeros(n, dtype=torch.float64)), torch.zeros(n))


def test_flatten_unflatten_roundtrip_and_set() -> None:
    policy, _, _ = make_problem()
    params = policy.params()
    flat = flatten_params(params)
    assert flat.shape == (sum(p.numel() for p in policy.parameters()),)
    back = unflatten_params(flat, params)
    for k in params:
        assert torch.equal(back[k], params[k])
    set_flat_params_(params, flat + 1.0)
    for k, v in policy.named_parameters():
        torch.testing.assert_close(v.detach(), back[k] + 1.0)
    with pytest.raises(ValueError):
        unflatten_params(flat[:-1], params)


def _finite_difference_hvp(grad_fn, theta_flat: torch.Tensor, v: torch.Tensor, eps: float) -> torch.Tensor:
    return (grad_fn(theta_flat + eps * v) - grad_fn(theta_flat - eps * v)) / (2 * eps)


def test_hvp_of_policy_kl_matches_central_finite_differences() -> None:
    policy, obs, g = make_problem()
    old = {k: v.detach().clone() for k, v in policy.named_parameters()}
    # evaluate away from θ_old so the Hessian is not just the Fisher at the minimum
    with torch.no_grad():
        for v in policy.parameters():
            v.add_(0.2 * torch.randn(v.shape, generator=g, dtype=v.dtype))
    theta = policy.params()

    def kl_fn(p):
        return policy.kl(old, p, obs)

    def grad_at(flat: torch.Tensor) -> torch.Tensor:
        p = {k: t.requires_grad_() for k, t in unflatten_params(flat.clone(), theta).items()}
        return flat_grad(kl_fn(p), p)

    theta_flat = flatten_params(theta).detach()
    hvp = hessian_vector_product(kl_fn, theta, damping=0.0)
    for _ in range(3):
        v = torch.randn(theta_flat.shape, generator=g, dtype=torch.float64)
        fd = _finite_difference_hvp(grad_at, theta_flat, v, eps=1e-5)
        torch.testing.assert_close(hvp(v), fd, rtol=1e-6, atol=1e-8)
    # damping adds c·v; the closure can be called repeatedly
    hvp_d = hessian_vector_product(kl_fn, theta, damping=0.1)
    torch.testing.assert_close(hvp_d(v), hvp(v) + 0.1 * v)


def test_hvp_through_batched_inner_adaptation_matches_finite_differences() -> None:
    """The MAML-TRPO case: KL of per-task adapted policies, differentiated through the inner step."""
    policy, _, g = make_problem(seed=1)
    T, B = 3, 10
    obs = torch.randn(T, B, OBS, generator=g, dtype=torch.float64)
    actions = torch.randn(T, B, ACT, generator=g, dtype=torch.float64)
    adv = torch.randn(T, B, generator=g, dtype=torch.float64)
    theta = policy.params()

    def adapt(p):
        fast = expand_params(p, T)
        inner = -(policy.log_prob(fast, obs, actions) * adv).mean(-1).sum()
        grads = torch.autograd.grad(inner, list(fast.values()), create_graph=True)
        return {k: v - 0.1 * gr for (k, v), gr in zip(fast.items(), grads)}

    old_fast = {k: v.detach() for k, v in adapt(theta).items()}
    # move θ a little so the KL of the adapted policies is non-trivial
    theta_flat = flatten_params(theta).detach() + 0.05 * torch.randn(
        flatten_params(theta).shape, generator=g, dtype=torch.float64
    )
    p0 = {k: t.requires_grad_() for k, t in unflatten_params(theta_flat.clone(), theta).items()}

    def kl_fn(p):
        return policy.kl(old_fast, adapt(p), obs).mean()

    def grad_at(flat: torch.Tensor) -> torch.Tensor:
        p = {k: t.requires_grad_() for k, t in unflatten_params(flat.clone(), theta).items()}
        return flat_grad(kl_fn(p), p)

    hvp = hessian_vector_product(kl_fn, p0, damping=0.0)
    v = torch.randn(theta_flat.shape, generator=g, dtype=torch.float64)
    fd = _finite_difference_hvp(grad_at, theta_flat, v, eps=1e-5)
    torch.testing.assert_close(hvp(v), fd, rtol=1e-5, atol=1e-7)


def _surrogate_problem(seed: int = 0):
    policy, obs, g = make_problem(seed, n=128)
    theta = policy.params()
    old = {k: v.detach().clone() for k, v in theta.items()}
    actions = policy.sample(old, obs, g)
    adv = torch.randn(obs.shape[0], generator=g, dtype=torch.float64) + actions[:, 0]  # learnable signal
    old_logp = policy.log_prob(old, obs, actions).detach()

    def loss_fn(p):
        return -(torch.exp(policy.log_prob(p, obs, actions) - old_logp) * adv).mean()

    def loss_and_kl_fn(flat: torch.Tensor):
        p = unflatten_params(flat, theta)
        with torch.no_grad():
            return loss_fn(p), policy.kl(old, p, obs)

    return policy, obs, theta, old, loss_fn, loss_and_kl_fn


@pytest.mark.parametrize("max_kl", [1e-2, 1e-4])
def test_trpo_step_on_policy_respects_max_kl_and_improves(max_kl: float) -> None:
    policy, obs, theta, old, loss_fn, loss_and_kl_fn = _surrogate_problem()
    old_loss = loss_fn(theta)
    grad = flat_grad(old_loss, theta)
    old_loss = old_loss.detach()
    hvp = hessian_vector_product(lambda p: policy.kl(old, p, obs), theta, damping=1e-5)
    theta_flat = flatten_params(theta).detach()

    new_flat, info = trpo_step(grad, hvp, loss_and_kl_fn, theta_flat, max_kl, cg_iters=10)

    assert info.accepted
    assert info.improvement > 0 and info.step_frac > 0
    assert info.shs > 0 and info.expected_improvement > 0
    new_loss, new_kl = loss_and_kl_fn(new_flat)
    assert float(new_kl) <= max_kl
    assert float(new_kl) > 0.05 * max_kl  # the step really uses the trust region
    assert math.isclose(float(new_kl), info.kl, rel_tol=1e-9)
    assert math.isclose(float(old_loss) - float(new_loss), info.improvement, rel_tol=1e-9)
    # the module was not touched until we copy the result in
    torch.testing.assert_close(flatten_params(policy.params()).detach(), theta_flat)
    set_flat_params_(theta, new_flat)
    assert float(policy.kl(old, policy.params(), obs).detach()) <= max_kl


def test_scaled_step_lies_on_quadratic_kl_boundary() -> None:
    policy, obs, theta, old, loss_fn, _ = _surrogate_problem(seed=2)
    grad = flat_grad(loss_fn(theta), theta)
    hvp = hessian_vector_product(lambda p: policy.kl(old, p, obs), theta, damping=1e-5)
    s = conjugate_gradient(hvp, -grad, iters=10)
    full_step, shs = scale_to_trust_region(s, hvp, max_kl=0.01)
    assert math.isclose(0.5 * float(full_step @ hvp(full_step)), 0.01, rel_tol=1e-9)
    assert math.isclose(shs, float(s @ hvp(s)), rel_tol=1e-12)
    zero, shs0 = scale_to_trust_region(torch.zeros_like(s), hvp, 0.01)
    assert shs0 == 0.0 and torch.count_nonzero(zero) == 0


def test_line_search_backtracks_from_an_oversized_step() -> None:
    policy, obs, theta, old, loss_fn, loss_and_kl_fn = _surrogate_problem(seed=3)
    grad = flat_grad(loss_fn(theta), theta)
    hvp = hessian_vector_product(lambda p: policy.kl(old, p, obs), theta, damping=1e-5)
    full_step, _ = scale_to_trust_region(conjugate_gradient(hvp, -grad), hvp, max_kl=0.01)
    big = 50.0 * full_step  # KL ≈ 2500 × 0.01 along this direction: must shrink
    theta_flat = flatten_params(theta).detach()
    new_flat, info = line_search(loss_and_kl_fn, theta_flat, big, float(-grad @ big), 0.01, ratio=0.5)
    assert info.accepted and info.backtracks >= 5
    assert info.step_frac == 0.5**info.backtracks
    assert info.kl <= 0.01
    torch.testing.assert_close(new_flat, theta_flat + info.step_frac * big)


def test_line_search_reverts_when_no_step_is_acceptable() -> None:
    params = torch.tensor([1.0, 2.0], dtype=torch.float64)
    step = torch.tensor([1.0, 0.0], dtype=torch.float64)
    calls = []

    def never_better(flat):
        calls.append(flat)
        return torch.tensor(5.0) + flat[0] * 0.0, torch.tensor(0.0)

    new, info = line_search(never_better, params, step, 1.0, 0.01, max_backtracks=6, ratio=0.5, old_loss=5.0)
    assert not info.accepted and info.step_frac == 0.0 and info.backtracks == 6
    assert torch.equal(new, params) and len(calls) == 6
    assert info.loss == 5.0

    def better_but_too_far(flat):
        return -flat[0], torch.tensor(1.0)  # improves, KL always 1 > max_kl

    new, info = line_search(better_but_too_far, params, step, 1.0, 0.01, max_backtracks=4)
    assert not info.accepted and torch.equal(new, params) and info.kl == 1.0

    def nan_loss(flat):
        return torch.tensor(float("nan")), torch.tensor(0.0)

    new, info = line_search(nan_loss, params, step, 1.0, 0.01, max_backtracks=3, old_loss=0.0)
    assert not info.accepted and torch.equal(new, params)
