"""Discounted returns, GAE(γ, λ) and advantage normalisation on episode batches.

Layout: ``(..., time, episodes)`` — time on dim −2, episodes on dim −1, any leading dims (typically
one task dim) are independent batches. ``mask`` has the same shape, 1.0 for steps that happened and
0.0 after an episode ended early (a prefix of ones per episode, as the sampler produces). Rewards and
values at masked steps are ignored, so nothing leaks across an episode's end, and outputs are zero
there.

An episode that runs to the horizon is treated as terminal there (no bootstrap), as in MAML-RL [1]
and its rllab/pytorch-maml-rl reproductions; the time features of the linear
baseline absorb the horizon effect.

Usage::

    returns = discounted_returns(rewards, gamma=0.99, mask=mask)            # (T, H, E)
    values = LinearFeatureBaseline().fit_predict(obs, returns, mask)         # agents.baseline
    adv = gae(rewards, values, gamma=0.99, lam=1.0, mask=mask)
    adv = normalize_advantages(adv, mask)                                    # per task

References:
    [1] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
    [2] Schulman, Moritz, Levine, Jordan & Abbeel, "High-Dimensional Continuous Control Using Generalized
        Advantage Estimation", ICLR 2016. https://arxiv.org/abs/1506.02438
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["discounted_returns", "discounted_sum", "gae", "masked_mean", "normalize_advantages"]


def _check(x: Tensor, name: str, mask: Tensor | None) -> None:
    if x.dim() < 2:
        raise ValueError(f"{name} must be (..., time, episodes); got shape {tuple(x.shape)}")
    if mask is not None and mask.shape != x.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} does not match {name} shape {tuple(x.shape)}")


def _zero_masked(x: Tensor, mask: Tensor) -> Tensor:
    """x with masked entries set to 0 (``where``, so NaN/inf padding after an episode is harmless)."""
    return torch.where(mask.bool(), x, torch.zeros((), dtype=x.dtype, device=x.device))


def discounted_sum(x: Tensor, discount: float) -> Tensor:
    """y_t = x_t + discount · y_{t+1} along dim −2 (time), y_{H} = 0.

    A reverse loop over time, vectorised over every other dim (O(H) small ops; for horizons of a
    few hundred this is cheaper than the O(H²) discount-matrix product and keeps float32 exact).
    """
    _check(x, "x", None)
    steps = x.unbind(dim=-2)
    out: list[Tensor] = [steps[-1]]
    for t in range(len(steps) - 2, -1, -1):
        out.append(steps[t] + discount * out[-1])
    out.reverse()
    return torch.stack(out, dim=-2)


def discounted_returns(rewards: Tensor, gamma: float, mask: Tensor | None = None) -> Tensor:
    """Rewards-to-go R_t = Σ_{k≥t} γ^{k−t} r_k of each episode, zero at masked steps.

    Args:
        rewards: ``(..., time, episodes)``.
        gamma: discount γ.
        mask: same shape as ``rewards``, 1 = valid step; ``None`` = all valid.
    """
    _check(rewards, "rewards", mask)
    if mask is not None:
        rewards = _zero_masked(rewards, mask)
    out = discounted_sum(rewards, gamma)
    return out if mask is None else out * mask


def gae(
    rewards: Tensor,
    values: Tensor,
    gamma: float,
    lam: float,
    mask: Tensor | None = None,
) -> Tensor:
    """Generalised advantage estimation [2, eq. 16].

    δ_t = r_t + γ V(s_{t+1}) − V(s_t) with V = 0 after an episode's last step, and
    Â_t = Σ_{l≥0} (γλ)^l δ_{t+l}. With λ = 1 (MAML-RL's setting) Â_t = R_t − V(s_t).

    Args:
        rewards: ``(..., time, episodes)``.
        values: baseline values V(s_t), the same shape.
        gamma: discount γ.
        lam: GAE λ.
        mask: same shape, 1 = valid step; ``None`` = all valid.
    """
    _check(rewards, "rewards", mask)
    if values.shape != rewards.shape:
        raise ValueError(f"values shape {tuple(values.shape)} does not match rewards {tuple(rewards.shape)}")
    if mask is not None:
        rewards = _zero_masked(rewards, mask)
        values = _zero_masked(values, mask)
    next_values = torch.cat([values[..., 1:, :], torch.zeros_like(values[..., :1, :])], dim=-2)
    deltas = rewards + gamma * next_values - values
    adv = discounted_sum(deltas, gamma * lam)
    return adv if mask is None else adv * mask


def masked_mean(x: Tensor, mask: Tensor | None = None, dims: tuple[int, ...] = (-2, -1)) -> Tensor:
    """Mean of ``x`` over ``dims`` counting only entries where ``mask`` is nonzero."""
    if mask is None:
        return x.mean(dim=dims)
    return _zero_masked(x, mask).sum(dim=dims) / mask.to(x.dtype).sum(dim=dims).clamp(min=1.0)


def normalize_advantages(advantages: Tensor, mask: Tensor | None = None, eps: float = 1e-8) -> Tensor:
    """(A − mean) / (std + eps) per batch over (time, episodes), statistics over valid steps only.

    Each leading index (a task) is normalised on its own, as pytorch-maml-rl does per task and rllab
    (``center_adv``) does per batch; ``std`` is the biased (population) standard deviation. Masked
    steps come out as zero.
    """
    _check(advantages, "advantages", mask)
    mean = masked_mean(advantages, mask).unsqueeze(-1).unsqueeze(-1)
    centered = advantages - mean
    if mask is not None:
        centered = _zero_masked(centered, mask)
    std = masked_mean(centered.pow(2), mask).sqrt().unsqueeze(-1).unsqueeze(-1)
    return centered / (std + eps)
