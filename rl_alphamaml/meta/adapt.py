"""Functional inner-loop adaptation (the inner loop of MAML [1]).

Fast weights are a plain ``dict[str, Tensor]`` evaluated with :func:`torch.func.functional_call`, so a
module is never mutated by adaptation. Each step is ``θ_{j+1} = θ_j − α ⊙ ∇L_train(θ_j)``.

*Second order* (``first_order=False``): the inner gradients are part of the autograd graph
(``create_graph=True``), so a loss on the adapted weights differentiates exactly through the inner steps
to θ and to α.

*First order* (FOMAML): the inner gradients are detached. The adapted weights still depend on θ (with
identity Jacobian) and on α through ``−α ⊙ g_j``, so autograd of a validation loss gives the FOMAML
meta-gradient ``∇L_val(θ')`` for θ and exactly the first-order hypergradient of α,
``∂L_val/∂α = −Σ_j ⟨∇L_val(θ'), ∇L_train(θ_j)⟩`` (summed per α group), as used by Alpha MAML [2].

Tasks can be adapted one at a time or all at once: give parameters with a leading task dimension
(:func:`expand_params`) and a loss that *sums* the per-task losses; each task's gradient is then its own.

The rates may differ from step to step: give one mapping of rates per step (the per-step rates α₁ … α_K of
MAML++ [3]), and each step's hypergradient is its own.

References:
    [1] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
    [2] Behl, Baydin & Torr, "Alpha MAML: Adaptive Model-Agnostic Meta-Learning", 2019.
        https://arxiv.org/abs/1905.07435
    [3] Antoniou, Edwards & Storkey, "How to train your MAML", ICLR 2019. https://arxiv.org/abs/1810.09502
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import torch
from torch import Tensor, nn
from torch.func import functional_call

Params = dict[str, Tensor]


@dataclasses.dataclass
class Adapted:
    """The result of :func:`adapt`: the fast weights θ' and the inner losses (detached), one per step."""

    params: Params
    inner_losses: list[float]


def inner_update(param: Tensor, grad: Tensor, alpha: Tensor) -> Tensor:
    """One inner step on one tensor, θ − α ⊙ g: the update every adaptation takes. Its Jacobian with respect to
    θ is J = I − α ⊙ H (H the inner loss's Hessian); :func:`inner_update_jvp` and :func:`inner_update_vjp` are
    its products, which second-order curvature computations through the adaptation use (e.g. MAML-TRPO's
    Fisher-form Hessian-vector product). Change the update's form here and all three change together."""
    return param - alpha * grad


def inner_update_jvp(v: Sequence[Tensor], alpha: Sequence[Tensor],
                     hvp: Callable[[list[Tensor]], Sequence[Tensor]]) -> list[Tensor]:
    """J v = v − α ⊙ (H v) for the update of :func:`inner_update`; ``hvp`` computes H times a list of tensors."""
    return [x - a * h for x, a, h in zip(v, alpha, hvp(list(v)))]


def inner_update_vjp(w: Sequence[Tensor], alpha: Sequence[Tensor],
                     hvp: Callable[[list[Tensor]], Sequence[Tensor]]) -> list[Tensor]:
    """Jᵀ w = w − H (α ⊙ w) for the update of :func:`inner_update` (H symmetric)."""
    return [x - h for x, h in zip(w, hvp([a * x for a, x in zip(alpha, w)]))]


def adapt(
    params: Mapping[str, Tensor],
    loss_fn: Callable[[Params], Tensor],
    alpha: Mapping[str, Tensor] | Sequence[Mapping[str, Tensor]],
    steps: int,
    first_order: bool = False,
) -> Adapted:
    """Take ``steps`` gradient steps on ``loss_fn`` from ``params`` with per-name rates ``alpha``: MAML's inner
    loop [1], differentiable to ``params`` and ``alpha`` (α's hypergradient, Alpha MAML [2]).

    ``loss_fn(params) -> scalar`` evaluates the inner (support / pre-update) loss, typically through
    :func:`torch.func.functional_call`. ``alpha[name]`` broadcasts against ``params[name]`` (a 0-d tensor,
    or a tensor of the parameter's shape). ``alpha`` may also be a sequence of such mappings, one per step
    (per-step rates [3]; steps past its end use its last). Parameters that do not require grad are held fixed.

    Example::

        alpha = {n: torch.tensor(0.4) for n in params}
        fast = adapt(params, lambda p: F.cross_entropy(functional_call(net, p, (xs,)), ys), alpha, steps=1)
        query_loss = F.cross_entropy(functional_call(net, fast.params, (xq,)), yq)
    """
    current: Params = dict(params)
    names = [n for n, p in current.items() if p.requires_grad]
    rates = [alpha] if isinstance(alpha, Mapping) else list(alpha)
    losses: list[float] = []
    for j in range(steps):
        rate = rates[min(j, len(rates) - 1)]
        loss = loss_fn(current)
        losses.append(float(loss.detach()))
        grads = torch.autograd.grad(
            loss, [current[n] for n in names], create_graph=not first_order, allow_unused=True
        )
        for name, grad in zip(names, grads):
            if grad is None:
                continue
            if first_order:
                grad = grad.detach()
            current[name] = inner_update(current[name], grad, rate[name])
    return Adapted(current, losses)


M = TypeVar("M")


def adaptation_curve(
    params: Mapping[str, Tensor],
    steps: int,
    measure: Callable[[Params, int], M],
    step: Callable[[Params, int, M], Mapping[str, Tensor]],
) -> tuple[Params, list[M]]:
    """Test-time adaptation: ``measure`` the parameters after 0, 1, …, ``steps`` inner steps.

    At step k the parameters are measured (``measure(params, k)``, e.g. a query loss, or sampled episodes and
    their returns), then — unless k = ``steps`` — adapted once by ``step(params, k, measured)`` (which may use
    what was measured: RL's inner step descends on the episodes just sampled). Every step starts from detached
    leaves, so no graph grows across steps (first-order, as MAML evaluates). Returns the final parameters
    (detached) and the ``steps + 1`` measurements. The one loop behind every ``evaluate``.
    """
    current = {n: p.detach().clone().requires_grad_(True) for n, p in params.items()}
    measured: list[M] = []
    for k in range(steps + 1):
        measured.append(measure(current, k))
        if k < steps:
            with torch.enable_grad():
                adapted = step(current, k, measured[-1])
            current = {n: p.detach().requires_grad_(True) for n, p in adapted.items()}
    return {n: p.detach() for n, p in current.items()}, measured


def expand_params(params: Mapping[str, Tensor], tasks: int) -> Params:
    """Stack ``tasks`` views of each parameter along a new leading task dimension (gradients flow to θ).

    No copy is made; gradients of anything computed from the result sum over tasks into ``params``.
    """
    if tasks < 1:
        raise ValueError(f"the number of tasks must be at least 1, got {tasks}")
    return {n: p.unsqueeze(0).expand(tasks, *p.shape) for n, p in params.items()}


def module_buffers(module: nn.Module) -> Params:
    """Copies of the module's buffers (e.g. batch-norm running statistics).

    Pass these explicitly to :func:`functional_call`: in training mode batch norm updates running
    statistics in the buffers it is given, and adaptation must not mutate the module. Write them back
    with ``module.load_state_dict(..., strict=False)`` if you want to keep them.
    """
    return {n: b.detach().clone() for n, b in module.named_buffers()}


def call(module: nn.Module, params: Mapping[str, Tensor], buffers: Mapping[str, Tensor], *args: Any) -> Any:
    """``module(*args)`` evaluated with the given parameters and buffers, never the module's own."""
    return functional_call(module, (dict(params), dict(buffers)), args)


def call_batched(
    module: nn.Module, params: Mapping[str, Tensor], buffers: Mapping[str, Tensor], *args: Tensor
) -> Any:
    """``call`` for every task at once: ``params`` and ``args`` carry a leading task dimension.

    Uses :func:`torch.func.vmap` over the functional call. Buffers are shared by all tasks; a module that
    *writes* buffers in its forward pass (batch norm tracking running statistics) cannot be vmapped —
    build it with ``track_running_stats=False`` or loop over tasks.
    """

    def one(p: Params, *a: Tensor) -> Any:
        return functional_call(module, (p, dict(buffers)), a)

    return torch.func.vmap(one)(dict(params), *args)
