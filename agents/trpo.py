"""Generic TRPO machinery on flat parameter vectors [1].

Trust Region Policy Optimization [1, §6 and Appendix C] minimises a surrogate loss L(θ) subject to
KL(π_old ‖ π_θ) ≤ δ. With g = ∇L and H the Hessian of the KL at θ_old (the Fisher matrix):

1. solve H s = −g approximately with conjugate gradient (:func:`conjugate_gradient`), using only
   Hessian-vector products (:func:`hessian_vector_product`, double backward);
2. scale s onto the KL boundary of the quadratic model: β = sqrt(2δ / sᵀHs), full step βs
   (:func:`scale_to_trust_region`);
3. backtrack along the full step until the true surrogate improves and the true KL ≤ δ, else keep
   θ_old (:func:`line_search`).

:func:`trpo_step` chains the three. Nothing here knows about MAML: in MAML-TRPO [2]
the trainer's ``kl_fn`` / ``loss_and_kl_fn`` adapt θ → θ'ᵢ inside, so the Hessian-vector products
are taken through the inner adaptation.

Damping: the HVP returns (H + c I) v. ``damping`` defaults to 1e-5, the value of MAML-RL's rllab
``ConjugateGradientOptimizer`` (``reg_coeff``) and of pytorch-maml-rl's configs (``cg-damping``);
Schulman's modular_rl and Spinning Up use 0.1, which is more robust when H is badly conditioned.

Usage::

    theta = policy.params()
    hvp = hessian_vector_product(lambda p: policy.kl(old, p, obs), theta, damping=1e-5)
    g = flat_grad(surrogate_loss(theta), theta)
    new_flat, info = trpo_step(g, hvp, loss_and_kl_fn, flatten_params(theta).detach(), max_kl=0.01)
    set_flat_params_(theta, new_flat)

References:
    [1] Schulman, Levine, Moritz, Jordan & Abbeel, "Trust Region Policy Optimization", ICML 2015.
        https://arxiv.org/abs/1502.05477
    [2] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
    [3] Hestenes & Stiefel, "Methods of Conjugate Gradients for Solving Linear Systems",
        J. Res. Nat. Bur. Standards 1952. https://doi.org/10.6028/jres.049.044
    [4] Pearlmutter, "Fast Exact Multiplication by the Hessian", Neural Computation 1994.
        https://doi.org/10.1162/neco.1994.6.1.147
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import torch
from torch import Tensor

__all__ = [
    "LineSearchResult",
    "conjugate_gradient",
    "flat_grad",
    "flatten_params",
    "hessian_vector_product",
    "line_search",
    "scale_to_trust_region",
    "set_flat_params_",
    "trpo_step",
    "unflatten_params",
]

HVPFn = Callable[[Tensor], Tensor]
LossAndKLFn = Callable[[Tensor], tuple[Tensor | float, Tensor | float]]


# --------------------------------------------------------------------------------------------------
# Flat vectors <-> params dicts
# --------------------------------------------------------------------------------------------------


def flatten_params(params: Mapping[str, Tensor]) -> Tensor:
    """Concatenate the tensors of a params dict (in its key order) into one flat vector."""
    return torch.cat([v.reshape(-1) for v in params.values()])


def unflatten_params(flat: Tensor, like: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Split a flat vector into a dict shaped like ``like`` (views of ``flat``: autograd kept)."""
    total = sum(v.numel() for v in like.values())
    if flat.dim() != 1 or flat.numel() != total:
        raise ValueError(f"flat vector has shape {tuple(flat.shape)}, params need ({total},)")
    out: dict[str, Tensor] = {}
    offset = 0
    for k, v in like.items():
        n = v.numel()
        out[k] = flat[offset : offset + n].view_as(v)
        offset += n
    return out


@torch.no_grad()
def set_flat_params_(params: Mapping[str, Tensor], flat: Tensor) -> None:
    """Copy a flat vector into the tensors of ``params`` in place (e.g. a module's parameters)."""
    for v, new in zip(params.values(), unflatten_params(flat, params).values()):
        v.copy_(new)


def _flat_or_zeros(grads: tuple[Tensor | None, ...], tensors: list[Tensor]) -> Tensor:
    return torch.cat([(torch.zeros_like(t) if g is None else g).reshape(-1) for g, t in zip(grads, tensors)])


def flat_grad(
    output: Tensor,
    params: Mapping[str, Tensor],
    *,
    create_graph: bool = False,
    retain_graph: bool | None = None,
) -> Tensor:
    """∂output/∂params as one flat vector; parameters ``output`` does not depend on get zeros."""
    tensors = list(params.values())
    grads = torch.autograd.grad(
        output, tensors, create_graph=create_graph, retain_graph=retain_graph, allow_unused=True
    )
    return _flat_or_zeros(grads, tensors)


# --------------------------------------------------------------------------------------------------
# Conjugate gradient and Hessian-vector products
# --------------------------------------------------------------------------------------------------


def conjugate_gradient(hvp_fn: HVPFn, b: Tensor, iters: int = 10, residual_tol: float = 1e-10) -> Tensor:
    """Approximately solve A x = b for symmetric positive-definite A given only v ↦ A v.

    Plain CG [3] from x₀ = 0, as in TRPO [1, Appendix C]:
    at most ``iters`` products, stopping once ‖r‖² < ``residual_tol``. Stops early, keeping the
    current iterate, if a direction shows non-positive curvature. Returns a detached vector.
    """
    b = b.detach()
    x = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    rdotr = torch.dot(r, r)
    for _ in range(iters):
        if rdotr.item() < residual_tol:
            break
        z = hvp_fn(p).detach()
        pz = torch.dot(p, z)
        if not torch.isfinite(pz) or pz.item() <= 0.0:
            break
        alpha = rdotr / pz
        x = x + alpha * p
        r = r - alpha * z
        new_rdotr = torch.dot(r, r)
        p = r + (new_rdotr / rdotr) * p
        rdotr = new_rdotr
    return x


def hessian_vector_product(
    kl_fn: Callable[[Mapping[str, Tensor]], Tensor],
    params: Mapping[str, Tensor],
    damping: float = 1e-5,
) -> HVPFn:
    """Build ``v ↦ (∇²KL(params) + damping·I) v`` by double backward [4].

    ``kl_fn(params)`` is evaluated and differentiated once with ``create_graph=True``; each call of
    the returned closure is one more backward pass through that graph (kept alive for repeated use
    by CG). For TRPO the old distribution inside ``kl_fn`` must be detached, so that at θ = θ_old
    the Hessian is the Fisher information matrix. ``params`` must require grad; the closure takes
    and returns flat vectors in the key order of ``params`` (:func:`flatten_params`).
    """
    tensors = list(params.values())
    kl = kl_fn(params)
    grads = torch.autograd.grad(kl, tensors, create_graph=True, allow_unused=True)
    flat_g = _flat_or_zeros(grads, tensors)

    def hvp(v: Tensor) -> Tensor:
        v = v.detach()
        if not flat_g.requires_grad:  # KL at most linear in params: zero Hessian
            return damping * v
        gv = torch.dot(flat_g, v)
        hv = torch.autograd.grad(gv, tensors, retain_graph=True, allow_unused=True)
        return _flat_or_zeros(hv, tensors).detach() + damping * v

    return hvp


def scale_to_trust_region(step_dir: Tensor, hvp_fn: HVPFn, max_kl: float) -> tuple[Tensor, float]:
    """Scale a search direction s to the boundary of ½ sᵀHs ≤ max_kl: returns (β s, sᵀHs).

    β = sqrt(2 δ / sᵀHs) [1, Appendix C]. If sᵀHs is not positive and finite
    the full step is zero (the line search will then reject it).
    """
    step_dir = step_dir.detach()
    shs = float(torch.dot(step_dir, hvp_fn(step_dir).detach()))
    if not math.isfinite(shs) or shs <= 0.0:
        return torch.zeros_like(step_dir), shs
    return step_dir * math.sqrt(2.0 * max_kl / shs), shs


def _scalar(x: Tensor | float) -> float:
    return float(x.detach()) if isinstance(x, Tensor) else float(x)


# --------------------------------------------------------------------------------------------------
# Line search and the full step
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineSearchResult:
    """Outcome of :func:`line_search`.

    Attributes:
        accepted: a step was taken; if False the parameters were kept.
        step_frac: fraction of the full step taken (0.0 when rejected).
        kl: KL at the accepted step (when rejected: at the last, smallest step tried).
        improvement: old loss − new loss at that step (same convention).
        expected_improvement: first-order prediction for the full step, −gᵀ(full step).
        backtracks: number of shrinkings before acceptance (``max_backtracks`` when rejected).
        loss: surrogate loss at the returned parameters.
        shs: sᵀHs of the search direction (filled by :func:`trpo_step`; NaN otherwise).
    """

    accepted: bool
    step_frac: float
    kl: float
    improvement: float
    expected_improvement: float
    backtracks: int
    loss: float
    shs: float = math.nan


def line_search(
    loss_and_kl_fn: LossAndKLFn,
    params: Tensor,
    full_step: Tensor,
    expected_improve: float,
    max_kl: float,
    max_backtracks: int = 15,
    ratio: float = 0.5,
    *,
    accept_ratio: float = 0.0,
    old_loss: float | None = None,
) -> tuple[Tensor, LineSearchResult]:
    """Backtracking line search along ``full_step`` [1, Appendix C].

    Tries θ + ratioᵏ · full_step for k = 0 … max_backtracks−1 and accepts the first whose
    surrogate loss improves (old − new > 0, and ≥ ``accept_ratio`` × the expected improvement of
    that fraction; 0 by default, as in MAML-RL / pytorch-maml-rl) with KL ≤ ``max_kl``, both finite.
    Otherwise returns ``params`` unchanged.

    Args:
        loss_and_kl_fn: flat params ↦ (surrogate loss to minimise, KL(π_old ‖ π_params)). It gets a
            detached candidate vector and may run autograd inside (e.g. MAML's inner adaptation).
        params: flat θ_old.
        full_step: the step at fraction 1 (e.g. from :func:`scale_to_trust_region`).
        expected_improve: first-order predicted loss decrease of the full step (−gᵀ full_step).
        max_kl: trust-region size δ.
        max_backtracks: number of step sizes tried.
        ratio: shrink factor per backtrack (pytorch-maml-rl configs use 0.8).
        accept_ratio: minimum actual/expected improvement ratio (modular_rl uses 0.1).
        old_loss: surrogate loss at ``params``; evaluated if ``None``.

    Returns:
        The new flat parameters (detached) and a :class:`LineSearchResult`.
    """
    params = params.detach()
    full_step = full_step.detach()
    if old_loss is None:
        old_loss = _scalar(loss_and_kl_fn(params.clone())[0])
    kl_v = improvement = math.nan
    for k in range(max_backtracks):
        frac = ratio**k
        candidate = params + frac * full_step
        loss, kl = loss_and_kl_fn(candidate.clone())
        loss_v, kl_v = _scalar(loss), _scalar(kl)
        improvement = old_loss - loss_v
        ok = (
            math.isfinite(loss_v)
            and math.isfinite(kl_v)
            and improvement > 0.0
            and improvement >= accept_ratio * frac * expected_improve
            and kl_v <= max_kl
        )
        if ok:
            return candidate, LineSearchResult(
                accepted=True,
                step_frac=frac,
                kl=kl_v,
                improvement=improvement,
                expected_improvement=float(expected_improve),
                backtracks=k,
                loss=loss_v,
            )
    return params.clone(), LineSearchResult(
        accepted=False,
        step_frac=0.0,
        kl=kl_v,
        improvement=improvement,
        expected_improvement=float(expected_improve),
        backtracks=max_backtracks,
        loss=old_loss,
    )


def trpo_step(
    loss_grad: Tensor,
    hvp_fn: HVPFn,
    loss_and_kl_fn: LossAndKLFn,
    params: Tensor,
    max_kl: float,
    *,
    cg_iters: int = 10,
    cg_residual_tol: float = 1e-10,
    max_backtracks: int = 15,
    ratio: float = 0.5,
    accept_ratio: float = 0.0,
    old_loss: float | None = None,
) -> tuple[Tensor, LineSearchResult]:
    """One TRPO update [1] on flat parameters: CG on H s = −g, scale to the KL boundary, line search.

    Args:
        loss_grad: flat gradient g of the surrogate loss at ``params``.
        hvp_fn: v ↦ (H + cI) v, e.g. from :func:`hessian_vector_product`.
        loss_and_kl_fn: see :func:`line_search`.
        params: flat θ_old.
        max_kl: the trust region; see :func:`line_search`.
        cg_iters: conjugate-gradient iterations (:func:`conjugate_gradient`'s ``iters``).
        cg_residual_tol: see :func:`conjugate_gradient` (``residual_tol``).
        max_backtracks: see :func:`line_search`.
        ratio: see :func:`line_search`.
        accept_ratio: see :func:`line_search`.
        old_loss: see :func:`line_search`.

    Returns:
        The new flat parameters and the :class:`LineSearchResult` (with ``shs`` filled in).
    """
    g = loss_grad.detach()
    step_dir = conjugate_gradient(hvp_fn, -g, iters=cg_iters, residual_tol=cg_residual_tol)
    full_step, shs = scale_to_trust_region(step_dir, hvp_fn, max_kl)
    expected = float(-torch.dot(g, full_step))
    new_params, result = line_search(
        loss_and_kl_fn,
        params,
        full_step,
        expected,
        max_kl,
        max_backtracks,
        ratio,
        accept_ratio=accept_ratio,
        old_loss=old_loss,
    )
    return new_params, replace(result, shs=shs)
