"""The meta-optimizer every learner shares: MAML with both learning rates adapted online (Alpha MAML).

:class:`MetaOptimizer` owns the meta-parameters θ (a module's parameters), the inner rate α
(:class:`~rl_alphamaml.meta.rates.InnerRate`) and the outer optimizer with rate β
(:class:`~rl_alphamaml.meta.outer.OuterOptimizer`). One meta-iteration is::

    meta = MetaOptimizer(model, InnerConfig(lr=0.4, lr_mode="hd"), OuterConfig(lr_mode="hd"))
    losses = []
    for support, query in tasks:
        fast = meta.adapt(lambda p: loss(p, support))           # θ → θ'_i, functional
        losses.append(loss(fast.params, query))
    info = meta.step(torch.stack(losses).mean())               # θ by β; α and β by hypergradient

It implements MAML [1] with α and β by hypergradient descent (Alpha MAML [2]; SGD-HD and Adam-HD [3]) and
Meta-SGD's learned per-parameter α [4].

The hypergradient of α is ``∂L_val(θ'(α))/∂α`` by autograd: exact through the inner steps in
second-order mode, the first-order formula ``−Σ_j ⟨∇L_val(θ'), ∇L_train(θ_j)⟩`` in first-order mode
(see :mod:`rl_alphamaml.meta.adapt`). A step whose loss or gradients are not finite changes nothing
(θ, α, β and the optimizer state stay as they were); after ``max_nonfinite`` such steps in a row,
:class:`~rl_alphamaml.errors.NonFiniteError` ends the run.

References:
    [1] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
    [2] Behl, Baydin & Torr, "Alpha MAML: Adaptive Model-Agnostic Meta-Learning", 2019.
        https://arxiv.org/abs/1905.07435
    [3] Baydin, Cornish, Martínez Rubio, Schmidt & Wood, "Online Learning Rate Adaptation with Hypergradient
        Descent", ICLR 2018. https://arxiv.org/abs/1703.04782
    [4] Li, Zhou, Chen & Li, "Meta-SGD: Learning to Learn Quickly for Few-Shot Learning", 2017.
        https://arxiv.org/abs/1707.09835
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from rl_alphamaml.errors import NonFiniteError
from rl_alphamaml.meta.adapt import Adapted, Params, adapt
from rl_alphamaml.meta.outer import OuterConfig, OuterOptimizer
from rl_alphamaml.meta.rates import InnerConfig, InnerRate


@dataclasses.dataclass
class MetaGradients:
    """The meta-loss value and its gradients with respect to θ (by name) and to each α tensor."""

    loss: float
    theta: dict[str, Tensor]
    alpha: list[Tensor] | None

    def is_finite(self) -> bool:
        """Whether the loss and every gradient entry are finite (a step with anything else changes nothing)."""
        tensors = list(self.theta.values()) + (self.alpha or [])
        return math.isfinite(self.loss) and all(bool(torch.isfinite(t).all()) for t in tensors)

    def __add__(self, other: MetaGradients) -> MetaGradients:
        """The gradients of the sum of two losses (e.g. two passes over parts of a meta-batch)."""
        alpha = None if self.alpha is None or other.alpha is None else [x + y for x, y in zip(self.alpha, other.alpha)]
        return MetaGradients(self.loss + other.loss, {n: g + other.theta[n] for n, g in self.theta.items()}, alpha)

    @staticmethod
    def sum(parts: Sequence[MetaGradients]) -> MetaGradients:
        """The gradients of a loss summed over parts, added in order."""
        if not parts:
            raise ValueError("no gradients to sum")
        total = parts[0]
        for part in parts[1:]:
            total = total + part
        return total


@dataclasses.dataclass
class StepInfo:
    """What one outer step did, for logging."""

    skipped: bool
    loss: float
    alpha: float
    beta: float
    grad_norm: float
    beta_hypergrad: float | None = None
    alpha_hypergrad_norm: float | None = None
    nonfinite_in_a_row: int = 0
    #: the mean α of each inner step, α₁ … α_K (per-step rates only)
    alpha_steps: list[float] | None = None

    def scalars(self) -> dict[str, float]:
        """The values under their TensorBoard tags: ``meta/alpha`` is the mean α over all steps, and per-step
        rates add ``meta/alpha_1`` … ``meta/alpha_K``."""
        out = {"meta/alpha": self.alpha, "meta/beta": self.beta, "meta/grad_norm": self.grad_norm,
               "meta/skipped": float(self.skipped)}
        for j, value in enumerate(self.alpha_steps or []):
            out[f"meta/alpha_{j + 1}"] = value
        if self.beta_hypergrad is not None:
            out["meta/beta_hypergrad"] = self.beta_hypergrad
        if self.alpha_hypergrad_norm is not None:
            out["meta/alpha_hypergrad_norm"] = self.alpha_hypergrad_norm
        return out


class MetaOptimizer:
    """θ, α and β of one meta-learner, with adaptation, the outer step and resumable state.

    MAML [1] with the inner rate α fixed, adapted by its hypergradient (Alpha MAML [2]) or learned as a
    meta-parameter (Meta-SGD [4]), and the outer rate β of SGD or Adam fixed or adapted by SGD-HD / Adam-HD [3]
    (Alpha MAML [2] with both adapted).

    ``module``'s parameters are θ; they change only in :meth:`step` / :meth:`apply` (in place, under
    ``no_grad``). For a TRPO outer loop, update θ yourself and call ``apply(grads, update_theta=False)``
    so that α still follows its hypergradient (β is not used there).
    """

    def __init__(
        self, module: nn.Module, inner: InnerConfig, outer: OuterConfig, max_nonfinite: int = 10
    ) -> None:
        self.module = module
        self.inner_config = inner
        self.outer_config = outer
        self.max_nonfinite = max_nonfinite
        self.alpha = InnerRate(self.params, inner)
        meta_params = list(self.params.values())
        if self.alpha.mode.meta_parameter:
            meta_params += self.alpha.tensors
        self.outer = OuterOptimizer(meta_params, outer)
        self.nonfinite_in_a_row = 0
        self.nonfinite_total = 0

    @property
    def params(self) -> Params:
        """θ by name (the module's parameters)."""
        return dict(self.module.named_parameters())

    @property
    def beta(self) -> float:
        """The current outer rate β."""
        return self.outer.beta

    def adapt(
        self,
        loss_fn: Callable[[Params], Tensor],
        params: Mapping[str, Tensor] | None = None,
        steps: int | None = None,
        first_order: bool | None = None,
        start: int = 0,
    ) -> Adapted:
        """Adapt ``params`` (default θ) with α: ``steps`` (default ``inner.steps``) steps on ``loss_fn``, the first
        of them inner step ``start`` (0-based) — with per-step rates step j takes α_{j+1}, and a step past the last
        trained one takes α_K (e.g. one step at a time: ``adapt(loss, params, steps=1, start=j)``)."""
        steps = self.inner_config.steps if steps is None else steps
        return adapt(
            self.params if params is None else params,
            loss_fn,
            [self.alpha.for_params(start + j) for j in range(max(1, steps))],
            steps,
            self.inner_config.first_order if first_order is None else first_order,
        )

    @torch.no_grad()
    def set_rates(self, alpha: float | None = None, beta: float | None = None) -> None:
        """Set every α value and/or β (e.g. lower rates after a divergence, on ``train --resume --set``), then
        clamp both to their configured bounds; the hypergradient rules' running moments are kept."""
        if alpha is not None:
            for t in self.alpha.tensors:
                t.fill_(float(alpha))
        if beta is not None:
            self.outer.beta = float(beta)
        self.alpha.clamp_()
        self.outer.beta = min(max(self.outer.beta, self.outer_config.lr_min), self.outer_config.lr_max)

    def gradients(self, meta_loss: Tensor, retain_graph: bool = False) -> MetaGradients:
        """∇θ and ∂/∂α of the meta-loss (α only in modes ``hd`` and ``learned``)."""
        names = list(self.params)
        inputs = [self.params[n] for n in names]
        want_alpha = self.alpha.requires_grad
        if want_alpha:
            inputs += self.alpha.tensors
        grads = torch.autograd.grad(meta_loss, inputs, retain_graph=retain_graph, allow_unused=True)
        filled = [torch.zeros_like(x) if g is None else g.detach() for x, g in zip(inputs, grads)]
        theta = dict(zip(names, filled[: len(names)]))
        alpha = filled[len(names):] if want_alpha else None
        return MetaGradients(float(meta_loss.detach()), theta, alpha)

    def step(self, meta_loss: Tensor) -> StepInfo:
        """Compute the meta-gradients of ``meta_loss`` and apply them."""
        return self.apply(self.gradients(meta_loss))

    def apply(self, grads: MetaGradients, update_theta: bool = True,
              directions: Mapping[str, Tensor] | None = None) -> StepInfo:
        """Update θ with the outer optimizer (unless ``update_theta`` is false), α and β by hypergradient. With
        ``directions`` (θ's by name; SGD only) θ steps along them instead of its gradients — a preconditioned step,
        β's hypergradient taken along them (:meth:`~rl_alphamaml.meta.outer.OuterOptimizer.step`); a meta-learned α
        (Meta-SGD) still steps along its own gradient."""
        grad_norm = math.sqrt(sum(float(g.pow(2).sum()) for g in grads.theta.values()))
        if not grads.is_finite():
            self.nonfinite_in_a_row += 1
            self.nonfinite_total += 1
            info = StepInfo(True, grads.loss, self.alpha.mean(), self.beta, grad_norm,
                            nonfinite_in_a_row=self.nonfinite_in_a_row, alpha_steps=self.alpha_steps())
            if self.nonfinite_in_a_row >= self.max_nonfinite:
                raise NonFiniteError(
                    f"{self.nonfinite_in_a_row} meta-steps in a row had a non-finite loss or gradient "
                    f"(last loss {grads.loss}); θ, α and β are kept at their last finite values. "
                    "Lower the initial rates (inner.lr, outer.lr) or their bounds (lr_max)."
                )
            return info
        self.nonfinite_in_a_row = 0
        alpha_h_norm = None
        if grads.alpha is not None:
            alpha_h_norm = math.sqrt(sum(float(h.pow(2).sum()) for h in grads.alpha))
        if update_theta:
            step_grads = [grads.theta[n] for n in self.params]
            step_directions = None if directions is None else [directions[n] for n in self.params]
            if self.alpha.mode.meta_parameter:
                assert grads.alpha is not None
                step_grads += grads.alpha
                step_directions = None if step_directions is None else step_directions + grads.alpha
            self.outer.step(step_grads, step_directions)
        self.alpha.after_outer_step(grads.alpha)
        return StepInfo(
            False, grads.loss, self.alpha.mean(), self.beta, grad_norm,
            beta_hypergrad=self.outer.last_hypergrad if update_theta else None,
            alpha_hypergrad_norm=alpha_h_norm, alpha_steps=self.alpha_steps(),
        )

    def alpha_steps(self) -> list[float] | None:
        """The mean α of each inner step, α₁ … α_K, with per-step rates (``inner.lr_per_step``); else ``None``."""
        return self.alpha.step_means() if self.inner_config.lr_per_step else None

    def retract(self, fraction: float, beta_factor: float | None = None) -> None:
        """Shrink the last outer step to ``fraction`` of itself (0 takes it back; θ, and α when it is a
        meta-parameter, move back along the step) and multiply β by ``beta_factor`` (default ``fraction``: β
        becomes the rate of the step that remains), within β's bounds. The backtracking of a line search on an
        SGD/Adam step (see :meth:`OuterOptimizer.scale_last_step`)."""
        self.outer.scale_last_step(fraction)
        self.set_rates(beta=self.beta * (fraction if beta_factor is None else beta_factor))

    def state_dict(self) -> dict[str, Any]:
        """θ's optimizer state, α, β, the stored previous gradients and the non-finite counters.

        θ itself is in ``module.state_dict()``; checkpoints store both.
        """
        return {
            "alpha": self.alpha.state_dict(),
            "outer": self.outer.state_dict(),
            "nonfinite_in_a_row": self.nonfinite_in_a_row,
            "nonfinite_total": self.nonfinite_total,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` (θ itself with ``module.load_state_dict``). A state without per-step rates
        loads into per-step ones: every step starts from its α (:meth:`InnerRate.widen`), and with a learned α
        (Meta-SGD) every step's α from its optimizer moments too."""
        self.alpha.load_state_dict(state["alpha"])
        outer = dict(state["outer"])
        if self.alpha.mode.meta_parameter:  # θ's tensors, then α's: widen α's part
            theta = len(self.params)
            for key in ("m", "v", "prev_direction"):
                if outer[key]:
                    outer[key] = list(outer[key][:theta]) + self.alpha.widen(outer[key][theta:])
        self.outer.load_state_dict(outer)
        self.nonfinite_in_a_row = int(state["nonfinite_in_a_row"])
        self.nonfinite_total = int(state["nonfinite_total"])
