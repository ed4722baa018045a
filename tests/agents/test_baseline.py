"""Linear feature baseline against hand-written features and rllab-style per-path numpy fits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import agents.baseline as baseline_mod
from agents.baseline import (
    LinearFeatureBaseline,
    baseline_features,
    fit_linear_baseline,
    predict_linear_baseline,
)


def rllab_fit(obs: np.ndarray, returns: np.ndarray, lengths: np.ndarray, reg: float, clip: float | None):
    """rllab's LinearFeatureBaseline, written out: per-path features, concatenated, ridge lstsq.

    obs (time, episodes, d), returns (time, episodes); each episode e is the path obs[:lengths[e], e].
    Returns (coeffs, predicted values (time, episodes) with zeros after each episode's end).
    """

    def feats(o: np.ndarray) -> np.ndarray:
        if clip is not None:
            o = np.clip(o, -clip, clip)
        n = len(o)
        al = np.arange(n).reshape(-1, 1) / 100.0
        return np.concatenate([o, o**2, al, al**2, al**3, np.ones((n, 1))], axis=1)

    paths = [(obs[: lengths[e], e], returns[: lengths[e], e]) for e in range(obs.shape[1])]
    X = np.concatenate([feats(o) for o, _ in paths])
    y = np.concatenate([r for _, r in paths])
    coeffs = np.linalg.lstsq(X.T @ X + reg * np.eye(X.shape[1]), X.T @ y, rcond=None)[0]
    values = np.zeros(returns.shape)
    for e, (o, _) in enumerate(paths):
        values[: lengths[e], e] = feats(o) @ coeffs
    return coeffs, values


def test_features_by_hand() -> None:
    obs = torch.tensor([[[0.5, -20.0]], [[2.0, 3.0]]], dtype=torch.float64)  # (time 2, episodes 1, d 2)
    f = baseline_features(obs)
    expected = torch.tensor(
        [
            [[0.5, -10.0, 0.25, 100.0, 0.0, 0.0, 0.0, 1.0]],
            [[2.0, 3.0, 4.0, 9.0, 0.01, 1e-4, 1e-6, 1.0]],
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(f, expected)
    f_noclip = baseline_features(obs, obs_clip=None)
    assert f_noclip[0, 0, 1].item() == -20.0 and f_noclip[0, 0, 3].item() == 400.0
    # masked step: all features zero
    mask = torch.tensor([[1.0], [0.0]], dtype=torch.float64)
    f_masked = baseline_features(obs, mask)
    torch.testing.assert_close(f_masked[0], expected[0])
    assert torch.count_nonzero(f_masked[1]) == 0


@pytest.mark.parametrize("clip", [10.0, None])
def test_fit_matches_rllab_per_task_with_masks(clip: float | None) -> None:
    rng = np.random.default_rng(0)
    n_tasks, horizon, episodes, d = 3, 12, 4, 3
    lengths = rng.integers(2, horizon + 1, size=(n_tasks, episodes))
    lengths[:, 0] = horizon
    obs = rng.normal(scale=6.0, size=(n_tasks, horizon, episodes, d))  # some beyond ±10
    returns = rng.normal(size=(n_tasks, horizon, episodes)) + np.arange(horizon)[None, :, None] * 0.3
    mask = (np.arange(horizon)[None, :, None] < lengths[:, None, :]).astype(np.float64)
    # NaN padding after an episode's end must not matter
    obs_pad = np.where(mask[..., None] > 0, obs, np.nan)
    returns_pad = np.where(mask > 0, returns, np.nan)

    baseline = LinearFeatureBaseline(reg_coeff=1e-5, obs_clip=clip)
    values = baseline.fit_predict(torch.tensor(obs_pad), torch.tensor(returns_pad), torch.tensor(mask))
    assert baseline.coeffs is not None and baseline.coeffs.shape == (n_tasks, 2 * d + 4)
    assert values.shape == (n_tasks, horizon, episodes)
    for i in range(n_tasks):
        coeffs, expected = rllab_fit(obs[i], returns[i], lengths[i], 1e-5, clip)
        np.testing.assert_allclose(baseline.coeffs[i].numpy(), coeffs, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(values[i].numpy(), expected, rtol=1e-6, atol=1e-8)


def test_unbatched_layout_float32_and_exact_fit() -> None:
    # returns exactly linear in the features are reproduced (negligible ridge: the time powers are
    # nearly collinear over 20 steps, so the default 1e-5 ridge visibly shrinks them)
    rng = np.random.default_rng(1)
    horizon, episodes, d = 20, 5, 2
    obs = torch.tensor(rng.uniform(-3, 3, size=(horizon, episodes, d)), dtype=torch.float32)
    w = torch.tensor(rng.normal(size=2 * d + 4))
    returns = (baseline_features(obs.double()) * w).sum(-1).float()
    coeffs = fit_linear_baseline(obs, returns, reg_coeff=1e-12)
    assert coeffs.shape == (2 * d + 4,) and coeffs.dtype == torch.float64
    values = predict_linear_baseline(obs, coeffs)
    assert values.dtype == torch.float32
    torch.testing.assert_close(values, returns, rtol=1e-4, atol=1e-4)


def test_predict_before_fit_and_shape_errors() -> None:
    with pytest.raises(RuntimeError, match="before fit"):
        LinearFeatureBaseline().predict(torch.zeros(3, 2, 1))
    with pytest.raises(ValueError):
        fit_linear_baseline(torch.zeros(3, 2, 1), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="mask"):
        baseline_features(torch.zeros(3, 2, 1), torch.ones(3, 3))


def test_singular_system_raises_after_retries() -> None:
    obs = torch.zeros(2, 5, 4, 2, dtype=torch.float64)  # o and o² columns identically zero
    obs[1] = torch.randn(5, 4, 2, dtype=torch.float64)  # task 1 is fine
    returns = torch.randn(2, 5, 4, dtype=torch.float64)
    fit_linear_baseline(obs, returns)  # the ridge term makes task 0 solvable
    with pytest.raises(RuntimeError, match="1 task"):
        fit_linear_baseline(obs, returns, reg_coeff=0.0)


def test_failed_task_is_retried_with_ten_times_the_ridge(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(2)
    obs = rng.normal(size=(2, 6, 3, 1))
    returns = rng.normal(size=(2, 6, 3))
    lengths = np.full((2, 3), 6)
    real_cholesky_ex = torch.linalg.cholesky_ex
    calls: list[int] = []

    def flaky_cholesky_ex(A: torch.Tensor):  # first call: task 0 "fails"
        chol, info = real_cholesky_ex(A)
        if not calls:
            info = info.clone()
            info[0] = 1
        calls.append(A.shape[0])
        return chol, info

    monkeypatch.setattr(baseline_mod.torch.linalg, "cholesky_ex", flaky_cholesky_ex)
    reg = 0.5  # large, so that the ×10 is visible in the coefficients
    coeffs = fit_linear_baseline(torch.tensor(obs), torch.tensor(returns), reg_coeff=reg)
    assert calls == [2, 1]  # both tasks, then only the failed one
    c0, _ = rllab_fit(obs[0], returns[0], lengths[0], 10 * reg, 10.0)
    c1, _ = rllab_fit(obs[1], returns[1], lengths[1], reg, 10.0)
    np.testing.assert_allclose(coeffs[0].numpy(), c0, rtol=1e-8)
    np.testing.assert_allclose(coeffs[1].numpy(), c1, rtol=1e-8)


def test_fit_on_ant_observations_with_constant_zero_features() -> None:
    # Regression: Ant's observations carry 24 contact-force dims that stay exactly zero; with them the
    # batched LU solve raised ("Pivots given to lu_solve must all be greater or equal to 1") instead of
    # reporting the near-singular system, which crashed the first Ant meta-iteration.
    from agents.policy import GaussianMLPPolicy
    from agents.sampler import Sampler
    from rl_alphamaml.meta import expand_params

    sampler = Sampler("rl_alphamaml/AntVel-v0", 2, 5, threads=1)
    torch.manual_seed(0)
    policy = GaussianMLPPolicy(sampler.obs_dim, sampler.act_dim, (100, 100))
    episodes = sampler.sample(policy, expand_params(policy.params(), 2),
                              sampler.sample_tasks(np.random.default_rng(0)), (0, 0))
    sampler.close()
    assert int((episodes.obs.abs().amax(dim=(0, 1, 2)) == 0).sum()) > 0
    returns = torch.flip(torch.cumsum(torch.flip(episodes.rewards, [1]), 1), [1])
    coeffs = fit_linear_baseline(episodes.obs, returns, episodes.mask)
    assert torch.isfinite(coeffs).all()
    residual = returns - predict_linear_baseline(episodes.obs, coeffs, episodes.mask)
    assert float(residual.pow(2).mean()) < float((returns - returns.mean()).pow(2).mean())
