"""Discounted returns, GAE and advantage normalisation against hand computation / plain loops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.returns import discounted_returns, gae, masked_mean, normalize_advantages


def lengths_to_mask(lengths: np.ndarray, horizon: int) -> np.ndarray:
    """(..., episodes) lengths -> (..., time, episodes) mask of leading ones."""
    t = np.arange(horizon).reshape(horizon, 1)
    return (t < lengths[..., None, :]).astype(np.float64)


def loop_returns(rewards: np.ndarray, lengths: np.ndarray, gamma: float) -> np.ndarray:
    """(time, episodes) rewards-to-go by a double loop, zero after each episode's end."""
    out = np.zeros_like(rewards)
    for e in range(rewards.shape[1]):
        for t in range(int(lengths[e])):
            out[t, e] = sum(gamma ** (k - t) * rewards[k, e] for k in range(t, int(lengths[e])))
    return out


def loop_gae(rewards: np.ndarray, values: np.ndarray, lengths: np.ndarray, gamma: float, lam: float) -> np.ndarray:
    out = np.zeros_like(rewards)
    for e in range(rewards.shape[1]):
        n = int(lengths[e])
        deltas = [rewards[t, e] + gamma * (values[t + 1, e] if t + 1 < n else 0.0) - values[t, e] for t in range(n)]
        for t in range(n):
            out[t, e] = sum((gamma * lam) ** (k - t) * deltas[k] for k in range(t, n))
    return out


def test_returns_by_hand() -> None:
    rewards = torch.tensor([[1.0], [2.0], [3.0]])
    # R_2 = 3, R_1 = 2 + 0.5*3 = 3.5, R_0 = 1 + 0.5*3.5 = 2.75
    torch.testing.assert_close(discounted_returns(rewards, 0.5), torch.tensor([[2.75], [3.5], [3.0]]))
    # episode ends after two steps: the third reward is ignored
    mask = torch.tensor([[1.0], [1.0], [0.0]])
    torch.testing.assert_close(discounted_returns(rewards, 0.5, mask), torch.tensor([[2.0], [2.0], [0.0]]))


def test_gae_by_hand() -> None:
    rewards = torch.tensor([[1.0], [2.0], [3.0]])
    values = torch.tensor([[0.5], [1.0], [2.0]])
    g, lam = 0.5, 0.5
    # δ = [1 + 0.5*1 - 0.5, 2 + 0.5*2 - 1, 3 + 0 - 2] = [1, 2, 1]
    # A_2 = 1, A_1 = 2 + 0.25*1 = 2.25, A_0 = 1 + 0.25*2.25 = 1.5625
    torch.testing.assert_close(gae(rewards, values, g, lam), torch.tensor([[1.5625], [2.25], [1.0]]))
    # masked after step 1: δ_1 = 2 + 0 - 1 = 1, δ_0 = 1 + 0.5 - 0.5 = 1 → A = [1.25, 1, 0]
    mask = torch.tensor([[1.0], [1.0], [0.0]])
    torch.testing.assert_close(gae(rewards, values, g, lam, mask), torch.tensor([[1.25], [1.0], [0.0]]))


@pytest.mark.parametrize(("gamma", "lam"), [(0.99, 1.0), (0.9, 0.95), (0.5, 0.0)])
def test_returns_and_gae_match_loops_with_masks_and_task_dim(gamma: float, lam: float) -> None:
    rng = np.random.default_rng(0)
    n_tasks, horizon, episodes = 3, 9, 5
    lengths = rng.integers(1, horizon + 1, size=(n_tasks, episodes))
    lengths[0, 0] = horizon
    mask = lengths_to_mask(lengths, horizon)
    rewards = rng.normal(size=(n_tasks, horizon, episodes))
    values = rng.normal(size=(n_tasks, horizon, episodes))
    # garbage after the end must not leak in
    rewards_g = np.where(mask > 0, rewards, np.nan)
    values_g = np.where(mask > 0, values, np.inf)

    ret = discounted_returns(torch.tensor(rewards_g), gamma, torch.tensor(mask)).numpy()
    adv = gae(torch.tensor(rewards_g), torch.tensor(values_g), gamma, lam, torch.tensor(mask)).numpy()
    for i in range(n_tasks):
        np.testing.assert_allclose(ret[i], loop_returns(rewards[i], lengths[i], gamma), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(
            adv[i], loop_gae(rewards[i], values[i], lengths[i], gamma, lam), rtol=1e-10, atol=1e-12
        )
    if lam == 1.0:  # GAE(γ, 1) = returns − baseline
        np.testing.assert_allclose(adv, (ret - values) * mask, rtol=1e-10, atol=1e-10)


def test_float32_and_shape_checks() -> None:
    r = torch.ones(200, 4)
    out = discounted_returns(r, 0.99)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out[0], torch.full((4,), (1 - 0.99**200) / (1 - 0.99)))
    with pytest.raises(ValueError):
        discounted_returns(torch.ones(5), 0.9)
    with pytest.raises(ValueError, match="mask"):
        discounted_returns(r, 0.9, torch.ones(200, 3))
    with pytest.raises(ValueError, match="values"):
        gae(r, torch.ones(199, 4), 0.9, 0.9)


def test_normalize_advantages_per_task_with_mask() -> None:
    rng = np.random.default_rng(1)
    n_tasks, horizon, episodes = 3, 6, 4
    lengths = rng.integers(1, horizon + 1, size=(n_tasks, episodes))
    mask = lengths_to_mask(lengths, horizon)
    adv = rng.normal(loc=np.array([5.0, -2.0, 0.0])[:, None, None], scale=3.0, size=(n_tasks, horizon, episodes))
    adv_g = np.where(mask > 0, adv, np.nan)
    out = normalize_advantages(torch.tensor(adv_g), torch.tensor(mask)).numpy()
    for i in range(n_tasks):
        valid = adv[i][mask[i] > 0]
        expected = (valid - valid.mean()) / (valid.std() + 1e-8)
        np.testing.assert_allclose(out[i][mask[i] > 0], expected, rtol=1e-10)
        assert np.all(out[i][mask[i] == 0] == 0.0)
    # without a mask: plain per-task standardisation
    out2 = normalize_advantages(torch.tensor(adv)).numpy()
    for i in range(n_tasks):
        np.testing.assert_allclose(out2[i], (adv[i] - adv[i].mean()) / (adv[i].std() + 1e-8), rtol=1e-10)


def test_masked_mean() -> None:
    x = torch.tensor([[[1.0, 2.0], [3.0, 100.0]]])
    m = torch.tensor([[[1.0, 1.0], [1.0, 0.0]]])
    torch.testing.assert_close(masked_mean(x, m), torch.tensor([2.0]))
    torch.testing.assert_close(masked_mean(x), torch.tensor([26.5]))
