"""Learning rates adapted online by their hypergradients.

Hypergradient descent (Baydin, Cornish, Martinez Rubio, Schmidt & Wood, "Online Learning Rate Adaptation
with Hypergradient Descent", ICLR 2018) treats a learning rate as a parameter and descends the
derivative of the loss with respect to it. Alpha MAML (Behl, Baydin & Torr, "Alpha MAML: Adaptive
Model-Agnostic Meta-Learning", 2019) applies it to both MAML rates: the inner rate α and the outer rate β.

Two update rules are offered for a rate ``r`` with hypergradient ``h = ∂L/∂r``:

``additive`` (Baydin et al. 2018)
    ``r ← r − η·h``. Simple, but ``h`` scales with the square of the loss scale, so the hyper-rate η
    that works on one problem can be useless or explosive on another.

``normalized`` (scale-free; the default)
    ``log r ← log r − η·h/√v̂`` with ``v̂`` a bias-corrected running mean of ``h²`` — Adam-style
    normalisation of the hypergradient (as in Chandra et al., "Gradient Descent: The Ultimate
    Optimizer", NeurIPS 2022, which optimises hyperparameters with Adam) applied in log space. Rescaling
    the loss leaves the update unchanged, each step changes ``r`` by a factor of at most about ``e^η``,
    and ``r`` stays positive. One default ``η`` works across problems of very different gradient scale.

Both rules clamp the rate to ``[lr_min, lr_max]`` after every update.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

import torch
from torch import Tensor

from rl_alphamaml.fields import ranged

RateMode = Literal["fixed", "hd", "learned"]
RateShape = Literal["scalar", "per_layer", "per_parameter"]
HDRule = Literal["additive", "normalized"]


@dataclasses.dataclass
class InnerConfig:
    """The inner (adaptation) loop: k steps of gradient descent with rate α.

    ``lr_mode``: ``fixed`` (MAML, Finn et al. 2017), ``hd`` (Alpha MAML: α by hypergradient descent) or
    ``learned`` (Meta-SGD, Li et al. 2017: α is a meta-parameter updated by the outer optimizer).
    ``lr_shape``: one α for the whole network, one per parameter tensor (``per_layer``), or one per
    weight (``per_parameter``).
    """

    steps: int = ranged(1, min=0, doc="inner gradient steps per task")
    lr: float = ranged(0.01, min=0.0, min_exclusive=True, max=1e6, doc="initial inner rate alpha")
    lr_shape: RateShape = ranged("scalar", doc="one alpha, one per parameter tensor, or one per weight")
    lr_mode: RateMode = ranged("fixed", doc="fixed (MAML), hd (Alpha MAML) or learned (Meta-SGD)")
    first_order: bool = ranged(False, doc="first-order meta-gradient (FOMAML)")
    hd_rule: HDRule = ranged("normalized", doc="alpha's hypergradient rule: scale-free normalized, or additive")
    hyper_lr: float | None = ranged(
        None, min=0.0, doc="hyper-rate of alpha's update; null: the rule's default (default_hyper_lr)"
    )
    lr_min: float = ranged(1e-6, min=0.0, doc="lower bound of alpha")
    lr_max: float = ranged(10.0, min=0.0, min_exclusive=True, max=1e6, doc="upper bound of alpha")

    def validate(self) -> None:
        if not self.lr_min <= self.lr <= self.lr_max:
            raise ValueError(f"lr: initial alpha {self.lr} is outside [lr_min, lr_max] = "
                             f"[{self.lr_min}, {self.lr_max}]")
        if self.hd_rule == "normalized" and self.lr_mode == "hd" and self.lr_min <= 0:
            raise ValueError("lr_min: the normalized rule adapts log(alpha), so lr_min must be > 0")


def default_hyper_lr(rule: HDRule, optimizer: str = "sgd") -> float:
    """The default hyper-rate η of each rule.

    ``normalized``: 0.02 (a step changes a rate by at most about 2 %). ``additive``: Baydin et al.'s
    (2018) values, 1e-3 for SGD-HD (and α, whose inner loop is SGD) and 1e-7 for Adam-HD.
    """
    if rule == "normalized":
        return 0.02
    return 1e-7 if optimizer == "adam" else 1e-3


class HypergradientRule:
    """Updates a set of rate tensors in place from their hypergradients (Baydin et al. 2018).

    Holds the running second moment of the ``normalized`` rule; ``state_dict`` makes it resumable.
    """

    def __init__(
        self, rule: HDRule, hyper_lr: float, lr_min: float, lr_max: float, decay: float = 0.9, eps: float = 1e-30
    ) -> None:
        self.rule = rule
        self.hyper_lr = hyper_lr
        self.lr_min = lr_min
        self.lr_max = lr_max
        self.decay = decay
        self.eps = eps
        self.steps = 0
        self.second_moment: list[Tensor] = []

    @torch.no_grad()
    def update(self, rates: list[Tensor], hypergrads: list[Tensor]) -> None:
        """One hypergradient step on each rate tensor (in place), then clamp to the bounds."""
        if self.rule == "normalized" and not self.second_moment:
            self.second_moment = [torch.zeros_like(r) for r in rates]
        elif self.second_moment and self.second_moment[0].device != rates[0].device:  # loaded on another device
            self.second_moment = [v.to(r.device) for v, r in zip(self.second_moment, rates)]
        self.steps += 1
        for i, (rate, h) in enumerate(zip(rates, hypergrads)):
            if self.rule == "additive":
                rate.sub_(self.hyper_lr * h)
            else:
                v = self.second_moment[i]
                v.mul_(self.decay).addcmul_(h, h, value=1 - self.decay)
                v_hat = v / (1 - self.decay**self.steps)
                rate.mul_(torch.exp(-self.hyper_lr * h / (v_hat.sqrt() + self.eps)))
            rate.clamp_(self.lr_min, self.lr_max)

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "second_moment": [v.clone() for v in self.second_moment]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.steps = int(state["steps"])
        self.second_moment = [v.clone() for v in state["second_moment"]]


class InnerRate:
    """The inner rate α of MAML, as one tensor per parameter group.

    ``scalar``: one 0-d tensor shared by every parameter; ``per_layer``: one 0-d tensor per parameter
    tensor (weights and biases separately); ``per_parameter``: a tensor of each parameter's shape
    (Meta-SGD's layout, Li et al. 2017). ``for_params()`` maps each parameter name to its α, ready to
    broadcast in ``θ − α·g`` (also over a leading task dimension).

    Example::

        alpha = InnerRate(dict(model.named_parameters()), InnerConfig(lr=0.4, lr_mode="hd"))
        fast = {n: p - alpha.for_params()[n] * g[n] for n, p in params.items()}
    """

    def __init__(self, params: Mapping[str, Tensor], config: InnerConfig) -> None:
        self.config = config
        self.names = list(params)
        trainable = config.lr_mode in ("hd", "learned")
        like = next(iter(params.values())) if params else torch.zeros(())

        def make(shape: torch.Size | tuple[int, ...]) -> Tensor:
            t = torch.full(shape, float(config.lr), dtype=like.dtype, device=like.device)
            return t.requires_grad_(trainable)

        if config.lr_shape == "scalar":
            self.tensors = [make(())]
            self.index = {n: 0 for n in self.names}
        elif config.lr_shape == "per_layer":
            self.tensors = [make(()) for _ in self.names]
            self.index = {n: i for i, n in enumerate(self.names)}
        else:
            self.tensors = [make(p.shape) for p in params.values()]
            self.index = {n: i for i, n in enumerate(self.names)}
        self.rule = (
            HypergradientRule(
                config.hd_rule,
                default_hyper_lr(config.hd_rule) if config.hyper_lr is None else config.hyper_lr,
                config.lr_min,
                config.lr_max,
            )
            if config.lr_mode == "hd"
            else None
        )

    @property
    def requires_grad(self) -> bool:
        """Whether the meta-gradient must reach α (modes ``hd`` and ``learned``)."""
        return self.config.lr_mode in ("hd", "learned")

    def for_params(self) -> dict[str, Tensor]:
        """α for each parameter name (shared tensors for ``scalar``)."""
        return {n: self.tensors[i] for n, i in self.index.items()}

    def mean(self) -> float:
        """The mean α over all weights it applies to (what ``meta/alpha`` logs)."""
        if self.config.lr_shape == "per_parameter":
            total = sum(float(t.detach().sum()) for t in self.tensors)
            return total / max(1, sum(t.numel() for t in self.tensors))
        return float(torch.stack([t.detach() for t in self.tensors]).mean())

    def values(self) -> Tensor:
        """All α values as one flat tensor (for histograms)."""
        return torch.cat([t.detach().reshape(-1) for t in self.tensors])

    def hd_step(self, hypergrads: list[Tensor]) -> None:
        """Alpha MAML's update of α from ``∂L_val/∂α`` (one tensor per α tensor)."""
        if self.rule is None:
            raise RuntimeError(f"alpha is not adapted by hypergradient in mode {self.config.lr_mode!r}")
        self.rule.update(self.tensors, hypergrads)

    @torch.no_grad()
    def clamp_(self) -> None:
        """Keep α within its bounds (after a Meta-SGD outer step)."""
        for t in self.tensors:
            t.clamp_(self.config.lr_min, self.config.lr_max)

    def state_dict(self) -> dict[str, Any]:
        return {
            "tensors": [t.detach().clone() for t in self.tensors],
            "rule": self.rule.state_dict() if self.rule else None,
        }

    @torch.no_grad()
    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        tensors = state["tensors"]
        if len(tensors) != len(self.tensors) or any(a.shape != b.shape for a, b in zip(tensors, self.tensors)):
            raise ValueError("alpha's layout in the state does not match this model and lr_shape")
        for t, saved in zip(self.tensors, tensors):
            t.copy_(saved)
        if self.rule is not None and state.get("rule") is not None:
            self.rule.load_state_dict(state["rule"])

