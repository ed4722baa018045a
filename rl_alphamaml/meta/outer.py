"""The outer (meta) optimizer: SGD or Adam with rate β, fixed or adapted by hypergradient descent.

Hypergradient descent on β follows Baydin et al. [1]:

* SGD-HD: θ_t = θ_{t−1} − β·g_t, whose derivative with respect to the previous rate gives the
  hypergradient ``h_t = −⟨g_t, g_{t−1}⟩``.
* Adam-HD: θ_t = θ_{t−1} − β·u_t with u_t = m̂_t / (√v̂_t + ε) the Adam direction, so
  ``h_t = −⟨g_t, u_{t−1}⟩``.
* Preconditioned SGD-HD: θ_t = θ_{t−1} − β·d_t with a direction d_t = P_t·g_t the caller gives (the natural gradient
  F⁻¹g_t of the RL learner's ``ngd`` outer step), so ``h_t = −⟨g_t, d_{t−1}⟩``.

β is updated first (``β ← β − η·h_t``, or the scale-free ``normalized`` rule of
:mod:`rl_alphamaml.meta.hypergradient`), then used for the step. Alpha MAML [2] uses
this for MAML's outer rate. The optimizer is written out here (not wrapped around ``torch.optim``)
because HD needs the previous step direction, and a resumable state needs all of it.

References:
    [1] Baydin, Cornish, Martínez Rubio, Schmidt & Wood, "Online Learning Rate Adaptation with Hypergradient
        Descent", ICLR 2018. https://arxiv.org/abs/1703.04782
    [2] Behl, Baydin & Torr, "Alpha MAML: Adaptive Model-Agnostic Meta-Learning", 2019.
        https://arxiv.org/abs/1905.07435
    [3] Schulman, Levine, Moritz, Jordan & Abbeel, "Trust Region Policy Optimization", ICML 2015.
        https://arxiv.org/abs/1502.05477
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
from torch import Tensor

from rl_alphamaml.fields import ranged
from rl_alphamaml.meta.hypergradient import HD_RULES, HDRule, make_rule


@dataclasses.dataclass
class OuterConfig:
    """The outer (meta) update of θ: ``sgd`` or ``adam`` with rate β, ``fixed`` or ``hd`` (Alpha MAML)."""

    optimizer: Literal["sgd", "adam"] = ranged("adam", doc="the outer optimizer of theta")
    lr: float = ranged(1e-3, min=0.0, min_exclusive=True, max=1e6, doc="initial outer rate beta")
    lr_mode: Literal["fixed", "hd"] = ranged("fixed", doc="beta fixed, or adapted by hypergradient (Alpha MAML)")
    hd_rule: HDRule = ranged(
        "normalized",
        doc="beta's hypergradient rule: normalized, log_adam, log_adam_annealed (scale-free) or additive")
    hyper_lr: float | None = ranged(
        None, min=0.0, doc="hyper-rate of beta's update; null: the rule's default (default_hyper_lr)"
    )
    lr_min: float = ranged(1e-7, min=0.0, doc="lower bound of beta")
    lr_max: float = ranged(1.0, min=0.0, min_exclusive=True, max=1e6, doc="upper bound of beta")
    adam_betas: tuple[float, float] = ranged((0.9, 0.999), min=0.0, max=0.999999, doc="Adam's moment decays")
    adam_eps: float = ranged(1e-8, min=0.0, min_exclusive=True, doc="Adam's epsilon")
    max_grad_norm: float | None = ranged(None, min=0.0, min_exclusive=True, doc="clip the meta-gradient norm")

    def validate(self) -> None:
        """Cross-field checks: β starts within its bounds, and a log-space rule (``normalized``, ``log_adam``…) gets a
        positive lower bound.

        Raises:
            ValueError: naming the field that is wrong.
        """
        if not self.lr_min <= self.lr <= self.lr_max:
            raise ValueError(
                f"lr: initial beta {self.lr} is outside [lr_min, lr_max] = [{self.lr_min}, {self.lr_max}]"
            )
        if HD_RULES[self.hd_rule].log_space and self.lr_mode == "hd" and self.lr_min <= 0:
            raise ValueError(f"lr_min: the {self.hd_rule} rule adapts log(beta), so lr_min must be > 0")


def _dot(a: Sequence[Tensor], b: Sequence[Tensor]) -> Tensor:
    return sum((torch.sum(x * y) for x, y in zip(a, b)), torch.zeros((), dtype=a[0].dtype, device=a[0].device))


class OuterOptimizer:
    """SGD or Adam over a list of tensors with rate β, optionally adapted by SGD-HD / Adam-HD [1].

    Alpha MAML [2] uses it for MAML's outer loop with ``lr_mode="hd"``.

    Example::

        opt = OuterOptimizer(list(model.parameters()), OuterConfig(optimizer="adam", lr_mode="hd"))
        opt.step([p.grad for p in model.parameters()])
    """

    def __init__(self, params: Sequence[Tensor], config: OuterConfig) -> None:
        self.params = list(params)
        self.config = config
        self.beta = float(config.lr)
        self.t = 0
        self.m: list[Tensor] = []
        self.v: list[Tensor] = []
        self.prev_direction: list[Tensor] | None = None  # g_{t−1} (SGD) or u_{t−1} (Adam)
        self.rule = (make_rule(config.hd_rule, config.hyper_lr, config.lr_min, config.lr_max, config.optimizer)
                     if config.lr_mode == "hd" else None)
        self.last_hypergrad: float | None = None
        self._last_step: tuple[list[Tensor], float] | None = None  # (directions, rate) of the last step taken

    @torch.no_grad()
    def step(self, grads: Sequence[Tensor], directions: Sequence[Tensor] | None = None) -> None:
        """Update β from its hypergradient (when adapted), then take one step on the parameters: along the gradients
        ``grads`` (SGD) or Adam's direction, or with SGD along ``directions`` when given — a preconditioned gradient
        d = P·g, one tensor per parameter, whose hypergradient for β is ``−⟨g_t, d_{t−1}⟩`` [1]. ``max_grad_norm``
        scales ``directions`` by the factor that clips the gradients.

        Raises:
            ValueError: ``directions`` with Adam (it makes its own), or not one per parameter.
        """
        if directions is not None and (self.config.optimizer != "sgd" or len(directions) != len(self.params)):
            raise ValueError("directions: one tensor per parameter, and only for optimizer sgd "
                             f"(got {len(directions)} for {len(self.params)} with {self.config.optimizer})")
        grads = [g.detach() for g in grads]
        given = None if directions is None else [d.detach() for d in directions]
        if self.config.max_grad_norm is not None:
            norm = float(torch.sqrt(_dot(grads, grads)))
            if norm > self.config.max_grad_norm:
                grads = [g * (self.config.max_grad_norm / norm) for g in grads]
                given = None if given is None else [d * (self.config.max_grad_norm / norm) for d in given]
        self.last_hypergrad = None
        if self.rule is not None and self.prev_direction is not None:
            h = -_dot(grads, self.prev_direction)
            self.last_hypergrad = float(h)
            self.beta = self.rule.update_scalar(self.beta, h)
        self.t += 1
        if self.config.optimizer == "sgd":
            directions = grads if given is None else given
        else:
            b1, b2 = self.config.adam_betas
            if not self.m:
                self.m = [torch.zeros_like(g) for g in grads]
                self.v = [torch.zeros_like(g) for g in grads]
            directions = []
            for m, v, g in zip(self.m, self.v, grads):
                m.mul_(b1).add_(g, alpha=1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                m_hat = m / (1 - b1**self.t)
                v_hat = v / (1 - b2**self.t)
                directions.append(m_hat / (v_hat.sqrt() + self.config.adam_eps))
        for p, d in zip(self.params, directions):
            p.sub_(self.beta * d)
        self._last_step = (directions, self.beta)
        if self.rule is not None:
            self.prev_direction = [d.clone() for d in directions]

    @torch.no_grad()
    def scale_last_step(self, fraction: float) -> None:
        """Shrink the last step taken to ``fraction`` of its length, along the same direction (0 takes it back):
        the parameters go to θ_old − fraction·β·u. Repeated calls compound (two calls with 0.5 leave a quarter of
        the step). β and the moments stay as they are, and so does the previous direction unless the step is taken
        back whole (then the next step takes no β hypergradient, as the first one); the step is remembered only
        until the next one (a checkpoint does not keep it). The backtracking of TRPO's line search [3] on an
        SGD/Adam step: the RL learner's β repair (``agents.outer_steps.GradientStep``) uses it.

        Raises:
            RuntimeError: no step has been taken since this optimizer was built or loaded.
        """
        if self._last_step is None:
            raise RuntimeError("no outer step to scale: none was taken since the optimizer was built or loaded")
        directions, rate = self._last_step
        for p, d in zip(self.params, directions):
            p.add_(d, alpha=(1.0 - fraction) * rate)
        self._last_step = (directions, rate * fraction)
        if fraction == 0.0:
            self.prev_direction = None

    def state_dict(self) -> dict[str, Any]:
        """β, the step count, Adam's moments, the previous step direction and the rule's state: a resumed run
        continues exactly."""
        return {
            "beta": self.beta,
            "t": self.t,
            "m": [x.clone() for x in self.m],
            "v": [x.clone() for x in self.v],
            "prev_direction": None if self.prev_direction is None else [x.clone() for x in self.prev_direction],
            "rule": self.rule.state_dict() if self.rule else None,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`, moving its tensors to the parameters' device.

        Raises:
            ValueError: the state's moments or previous direction are for another number of tensors.
        """
        for key in ("m", "v", "prev_direction"):
            if state[key] is not None and len(state[key]) not in (0, len(self.params)):
                raise ValueError(f"the outer optimizer's state holds {len(state[key])} tensors of {key}, "
                                 f"this optimizer has {len(self.params)}")
        self._last_step = None
        self.beta = float(state["beta"])
        self.t = int(state["t"])
        on = self.params  # the state may come from a checkpoint of another device
        self.m = [x.to(p.device, copy=True) for x, p in zip(state["m"], on)]
        self.v = [x.to(p.device, copy=True) for x, p in zip(state["v"], on)]
        prev = state["prev_direction"]
        self.prev_direction = None if prev is None else [x.to(p.device, copy=True) for x, p in zip(prev, on)]
        if self.rule is not None and state.get("rule") is not None:
            self.rule.load_state_dict(state["rule"])
