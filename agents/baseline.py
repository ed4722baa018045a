"""Linear feature baseline of MAML-RL, batched over tasks.

The value baseline of rllab [1, supplementary material] used by MAML-RL [2] and
pytorch-maml-rl's ``LinearFeatureBaseline``: a ridge-regularised least-squares fit of the
discounted returns on hand-made features of one step,

    φ(s, t) = [clip(s, −10, 10), clip(s, −10, 10)², a, a², a³, 1],   a = t / 100,

with t the time step within the episode. rllab clips the observation to ±10; pytorch-maml-rl
does not (``obs_clip=None`` reproduces that). Features at masked steps (after an episode ended) are
all zero, so those steps add nothing to the normal equations — the same fit as rllab's
concatenation of variable-length paths.

The fit solves (XᵀX + c I) w = Xᵀy in float64, with c = ``reg_coeff`` (1e-5), and for a task whose
solve fails (singular or non-finite) retries with c × 10, up to ``max_tries`` times as rllab does.
All tasks are solved at once with ``torch.linalg.solve_ex`` on a batch of (F × F) systems,
F = 2·obs_dim + 4.

Layout: observations ``(..., time, episodes, obs_dim)``, returns and mask ``(..., time, episodes)``;
each leading index (typically the task) gets its own coefficients.

Usage::

    baseline = LinearFeatureBaseline()
    values = baseline.fit_predict(obs, returns, mask)     # obs (T, H, E, d) -> values (T, H, E)

References:
    [1] Duan, Chen, Houthooft, Schulman & Abbeel, "Benchmarking Deep Reinforcement Learning for Continuous
        Control", ICML 2016 (rllab). https://arxiv.org/abs/1604.06778
    [2] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "LinearFeatureBaseline",
    "baseline_features",
    "fit_linear_baseline",
    "predict_linear_baseline",
]


def _check_layout(obs: Tensor, mask: Tensor | None) -> None:
    if obs.dim() < 3:
        raise ValueError(f"obs must be (..., time, episodes, obs_dim); got shape {tuple(obs.shape)}")
    if mask is not None and mask.shape != obs.shape[:-1]:
        raise ValueError(f"mask shape {tuple(mask.shape)} must equal obs.shape[:-1] = {tuple(obs.shape[:-1])}")


def baseline_features(obs: Tensor, mask: Tensor | None = None, obs_clip: float | None = 10.0) -> Tensor:
    """Features ``[o, o², a, a², a³, 1]`` (o = clipped obs, a = t/100), zero at masked steps.

    Args:
        obs: ``(..., time, episodes, obs_dim)``.
        mask: ``(..., time, episodes)``, 1 = valid step; ``None`` = all valid.
        obs_clip: clip observations to ±obs_clip (rllab: 10); ``None`` = no clipping.

    Returns:
        ``(..., time, episodes, 2 * obs_dim + 4)`` in ``obs.dtype``.
    """
    _check_layout(obs, mask)
    horizon = obs.shape[-3]
    ones = torch.ones(obs.shape[:-1], dtype=obs.dtype, device=obs.device)
    o = obs if obs_clip is None else obs.clamp(-obs_clip, obs_clip)
    if mask is not None:
        valid = mask.bool()
        ones = ones * valid.to(obs.dtype)
        o = torch.where(valid.unsqueeze(-1), o, torch.zeros((), dtype=o.dtype, device=o.device))
    ones = ones.unsqueeze(-1)
    a = torch.arange(horizon, dtype=obs.dtype, device=obs.device).view(horizon, 1, 1) / 100.0
    a = a * ones
    return torch.cat([o, o * o, a, a * a, a * a * a, ones], dim=-1)


def fit_linear_baseline(
    obs: Tensor,
    returns: Tensor,
    mask: Tensor | None = None,
    reg_coeff: float = 1e-5,
    obs_clip: float | None = 10.0,
    max_tries: int = 5,
) -> Tensor:
    """Ridge least-squares coefficients per leading index, in float64.

    Args:
        obs: ``(..., time, episodes, obs_dim)``.
        returns: ``(..., time, episodes)`` discounted returns (the regression target).
        mask: ``(..., time, episodes)``, 1 = valid step; ``None`` = all valid.
        reg_coeff: initial ridge coefficient c; multiplied by 10 on a failed solve.
        obs_clip: see :func:`baseline_features`.
        max_tries: solves attempted per task before giving up.

    Returns:
        Coefficients ``(..., 2 * obs_dim + 4)``, float64.

    Raises:
        RuntimeError: if some task's normal equations stay unsolvable after ``max_tries`` tries.
    """
    if returns.shape != obs.shape[:-1]:
        raise ValueError(f"returns shape {tuple(returns.shape)} must equal obs.shape[:-1] = {tuple(obs.shape[:-1])}")
    feats = baseline_features(obs.to(torch.float64), mask, obs_clip)
    lead = feats.shape[:-3]
    n_feat = feats.shape[-1]
    X = feats.reshape(-1, feats.shape[-3] * feats.shape[-2], n_feat)  # (L, N, F)
    y = returns.to(torch.float64)
    if mask is not None:
        y = torch.where(mask.bool(), y, torch.zeros((), dtype=torch.float64, device=y.device))
    y = y.reshape(X.shape[0], -1, 1)  # (L, N, 1)
    XtX = X.transpose(1, 2) @ X
    Xty = X.transpose(1, 2) @ y
    eye = torch.eye(n_feat, dtype=torch.float64, device=X.device)

    coeffs = torch.zeros(X.shape[0], n_feat, dtype=torch.float64, device=X.device)
    todo = torch.arange(X.shape[0], device=X.device)
    reg = reg_coeff
    for attempt in range(max_tries):
        reg = reg_coeff * 10.0**attempt
        # XᵀX + cI is symmetric positive definite when it is well conditioned: Cholesky, whose *_ex form
        # reports a failure per task. (linalg.solve_ex raised instead, from MKL's pivoting, on the
        # near-singular systems of Ant, whose observations include constant zero contact forces.)
        chol, info = torch.linalg.cholesky_ex(XtX[todo] + reg * eye)
        sol = torch.cholesky_solve(Xty[todo], chol)
        ok = (info == 0) & torch.isfinite(sol).all(dim=(-2, -1))
        coeffs[todo[ok]] = sol[ok].squeeze(-1)
        todo = todo[~ok]
        if todo.numel() == 0:
            break
    else:
        raise RuntimeError(
            "LinearFeatureBaseline: the normal equations (XᵀX + cI) w = Xᵀy of "
            f"{todo.numel()} task(s) could not be solved even with regularisation c = {reg:g}; "
            "the observations are probably non-finite."
        )
    return coeffs.reshape(*lead, n_feat)


def predict_linear_baseline(
    obs: Tensor, coeffs: Tensor, mask: Tensor | None = None, obs_clip: float | None = 10.0
) -> Tensor:
    """Baseline values φ(s, t)ᵀw, shaped ``obs.shape[:-1]`` in ``obs.dtype``, zero at masked steps."""
    feats = baseline_features(obs.to(torch.float64), mask, obs_clip)
    w = coeffs.to(torch.float64)
    values = (feats * w.reshape(*w.shape[:-1], 1, 1, w.shape[-1])).sum(-1)
    return values.to(obs.dtype)


class LinearFeatureBaseline:
    """Linear feature baseline (rllab [1]; MAML-RL [2]).

    Holds the coefficients of the last :meth:`fit` (one row per task in the batched layout).
    See the module docstring for the features and the ridge fit.

    Args:
        reg_coeff: initial ridge coefficient (rllab: 1e-5), ×10 per failed solve.
        obs_clip: observation clip (rllab: 10; ``None`` as in pytorch-maml-rl).
        max_tries: solve attempts before raising (rllab / pytorch-maml-rl: 5).

    Example::

        baseline = LinearFeatureBaseline()
        baseline.fit(obs, returns, mask)        # obs (T, H, E, d), returns/mask (T, H, E)
        values = baseline.predict(obs, mask)    # (T, H, E)
    """

    def __init__(self, reg_coeff: float = 1e-5, obs_clip: float | None = 10.0, max_tries: int = 5) -> None:
        self.reg_coeff = reg_coeff
        self.obs_clip = obs_clip
        self.max_tries = max_tries
        self.coeffs: Tensor | None = None

    def fit(self, obs: Tensor, returns: Tensor, mask: Tensor | None = None) -> Tensor:
        """Fit the coefficients to ``returns``; stores and returns them (float64)."""
        with torch.no_grad():
            self.coeffs = fit_linear_baseline(obs, returns, mask, self.reg_coeff, self.obs_clip, self.max_tries)
        return self.coeffs

    def predict(self, obs: Tensor, mask: Tensor | None = None) -> Tensor:
        """Values of the last fit at ``obs`` (same leading layout as the fit)."""
        if self.coeffs is None:
            raise RuntimeError("LinearFeatureBaseline.predict called before fit")
        with torch.no_grad():
            return predict_linear_baseline(obs, self.coeffs, mask, self.obs_clip)

    def fit_predict(self, obs: Tensor, returns: Tensor, mask: Tensor | None = None) -> Tensor:
        """Fit on the episodes, then predict their values (what MAML-RL does per batch)."""
        self.fit(obs, returns, mask)
        return self.predict(obs, mask)
