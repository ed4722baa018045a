"""The inner surrogates: ProMP's LVC objective has VPG's value and gradient, and adds the score-function term
to the second derivative (Rothfuss et al. 2019, §5). Checked in float64 against finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.maml_pg import Estimator, inner_loss
from agents.policy import GaussianMLPPolicy
from agents.returns import masked_mean
from agents.sampler import Episodes, Sampler
from agents.trpo import flatten_params, unflatten_params
from rl_alphamaml.meta import expand_params

T, E, H = 2, 3, 8


@pytest.fixture(scope="module")
def setup() -> tuple[GaussianMLPPolicy, dict[str, torch.Tensor], Episodes, torch.Tensor]:
    sampler = Sampler("rl_alphamaml/Navigation2D-v0", num_tasks=T, episodes=E, threads=1, horizon=H)
    torch.manual_seed(0)
    policy = GaussianMLPPolicy(2, 2, hidden_sizes=(6,), action_scale=0.1, action_bounds=([-0.1] * 2, [0.1] * 2))
    try:
        tasks = sampler.sample_tasks(np.random.default_rng(0))
        episodes = sampler.sample(policy, expand_params(policy.params(), T), tasks, (0, 1))
    finally:
        sampler.close()
    policy = policy.double()
    episodes = Episodes(*(t.double() for t in (episodes.obs, episodes.actions, episodes.rewards, episodes.mask)))
    adv = torch.randn(T, H, E, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * episodes.mask
    theta = {k: v.detach() for k, v in expand_params(policy.params(), T).items()}
    return policy, theta, episodes, adv


def grad_and_hvp(policy: GaussianMLPPolicy, theta: dict[str, torch.Tensor], episodes: Episodes, adv: torch.Tensor,
                 estimator: Estimator, v: torch.Tensor) -> tuple[float, torch.Tensor, torch.Tensor]:
    """The loss, its flat gradient and the flat Hessian-vector product with ``v`` at ``theta``."""
    p = {k: t.clone().requires_grad_(True) for k, t in theta.items()}
    loss = inner_loss(policy, p, episodes, adv, estimator)
    grads = torch.autograd.grad(loss, list(p.values()), create_graph=True)
    g = torch.cat([x.reshape(-1) for x in grads])
    hv = torch.autograd.grad(g @ v, list(p.values()))
    return float(loss.detach()), g.detach(), torch.cat([x.reshape(-1) for x in hv])


def test_lvc_has_vpgs_value_and_gradient_and_adds_the_score_function_term(setup: tuple) -> None:
    policy, theta, episodes, adv = setup
    flat = flatten_params(theta)
    v = torch.randn(flat.numel(), generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    vpg_value, vpg_grad, vpg_hv = grad_and_hvp(policy, theta, episodes, adv, "vpg", v)
    lvc_value, lvc_grad, lvc_hv = grad_and_hvp(policy, theta, episodes, adv, "lvc", v)
    assert lvc_value == pytest.approx(vpg_value, rel=1e-12, abs=1e-12)
    torch.testing.assert_close(lvc_grad, vpg_grad, rtol=1e-10, atol=1e-12)

    # VPG's Hessian-vector product is the finite difference of its gradient.
    eps = 1e-6

    def vpg_gradient(x: torch.Tensor) -> torch.Tensor:
        return grad_and_hvp(policy, unflatten_params(x, theta), episodes, adv, "vpg", v)[1]

    torch.testing.assert_close(vpg_hv, (vpg_gradient(flat + eps * v) - vpg_gradient(flat - eps * v)) / (2 * eps),
                               rtol=1e-5, atol=1e-7)

    # LVC adds S v = −mean over steps of Â · (∇log π · v) ∇log π, per task; (∇log π · v) by finite differences.
    def logp(x: torch.Tensor) -> torch.Tensor:
        return policy.log_prob(unflatten_params(x, theta), episodes.obs, episodes.actions)

    directional = ((logp(flat + eps * v) - logp(flat - eps * v)) / (2 * eps)).detach()  # (T, H, E)
    p = {k: t.clone().requires_grad_(True) for k, t in theta.items()}
    weighted = -masked_mean(directional * adv * policy.log_prob(p, episodes.obs, episodes.actions), episodes.mask,
                            dims=(1, 2)).sum()
    score_term = torch.cat([x.reshape(-1) for x in torch.autograd.grad(weighted, list(p.values()))])
    assert float(score_term.norm()) > 1e-3 * float(vpg_hv.norm())  # the term is not negligible here
    torch.testing.assert_close(lvc_hv, vpg_hv + score_term, rtol=1e-5, atol=1e-7)


def test_unknown_estimator_is_rejected(setup: tuple) -> None:
    policy, theta, episodes, adv = setup
    with pytest.raises(ValueError, match="unknown estimator"):
        inner_loss(policy, theta, episodes, adv, "dice")  # type: ignore[arg-type]
