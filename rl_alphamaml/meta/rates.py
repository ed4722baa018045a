"""The inner rate α of MAML and how it is learned: fixed (MAML [1]), by hypergradient (Alpha MAML [2]) or as
a meta-parameter (Meta-SGD [3]).

Each way is an :class:`InnerRateMode` — one class, one line in :data:`RATE_MODES` — that says whether the
meta-gradient must reach α, whether the outer optimizer updates α with θ, and what happens to α after an
outer step. :class:`InnerRate` holds the α tensors (one, one per parameter tensor, or one per weight) — with
``lr_per_step`` one such set per inner step, α₁ … α_K, each learned from its own gradient (the per-step rates
of MAML++'s LSLR [4]; by hypergradient, per-step Alpha MAML). The hypergradient rules are in
:mod:`rl_alphamaml.meta.hypergradient`.

References:
    [1] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
    [2] Behl, Baydin & Torr, "Alpha MAML: Adaptive Model-Agnostic Meta-Learning", 2019.
        https://arxiv.org/abs/1905.07435
    [3] Li, Zhou, Chen & Li, "Meta-SGD: Learning to Learn Quickly for Few-Shot Learning", 2017.
        https://arxiv.org/abs/1707.09835
    [4] Antoniou, Edwards & Storkey, "How to train your MAML", ICLR 2019. https://arxiv.org/abs/1810.09502
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

import torch
from torch import Tensor

from rl_alphamaml.fields import ranged
from rl_alphamaml.meta.hypergradient import HD_RULES, HDRule, HypergradientRule, make_rule

RateMode = Literal["fixed", "hd", "learned"]
RateShape = Literal["scalar", "per_layer", "per_parameter"]


@dataclasses.dataclass
class InnerConfig:
    """The inner (adaptation) loop: k steps of gradient descent with rate α.

    ``lr_mode``: ``fixed`` (MAML [1]), ``hd`` (Alpha MAML [2]: α by hypergradient descent) or
    ``learned`` (Meta-SGD [3]: α is a meta-parameter updated by the outer optimizer).
    ``lr_shape``: one α for the whole network, one per parameter tensor (``per_layer``), or one per
    weight (``per_parameter``). ``lr_per_step``: that layout once per inner step, α₁ … α_K (MAML++'s
    per-step rates [4]), each starting at ``lr`` and learned from its own gradient; adapting past the K-th
    step (a longer evaluation) uses α_K.
    """

    steps: int = ranged(1, min=0, doc="inner gradient steps per task")
    lr: float = ranged(0.01, min=0.0, min_exclusive=True, max=1e6, doc="initial inner rate alpha")
    lr_shape: RateShape = ranged("scalar", doc="one alpha, one per parameter tensor, or one per weight")
    lr_mode: RateMode = ranged("fixed", doc="fixed (MAML), hd (Alpha MAML) or learned (Meta-SGD)")
    first_order: bool = ranged(False, doc="first-order meta-gradient (FOMAML)")
    lr_per_step: bool = ranged(False, doc="one alpha (of lr_shape) per inner step, alpha_1 ... alpha_K, each from lr")
    hd_rule: HDRule = ranged(
        "normalized",
        doc="alpha's hypergradient rule: normalized, log_adam, log_adam_annealed (scale-free) or additive")
    hyper_lr: float | None = ranged(
        None, min=0.0, doc="hyper-rate of alpha's update; null: the rule's default (default_hyper_lr)"
    )
    lr_min: float = ranged(1e-6, min=0.0, doc="lower bound of alpha")
    lr_max: float = ranged(10.0, min=0.0, min_exclusive=True, max=1e6, doc="upper bound of alpha")

    def validate(self) -> None:
        """Cross-field checks: α starts within its bounds, a log-space rule (``normalized``, ``log_adam``…) gets a
        positive lower bound, and per-step rates have steps to belong to.

        Raises:
            ValueError: naming the field that is wrong.
        """
        if not self.lr_min <= self.lr <= self.lr_max:
            raise ValueError(f"lr: initial alpha {self.lr} is outside [lr_min, lr_max] = "
                             f"[{self.lr_min}, {self.lr_max}]")
        if HD_RULES[self.hd_rule].log_space and RATE_MODES[self.lr_mode].follows_rule and self.lr_min <= 0:
            raise ValueError(f"lr_min: the {self.hd_rule} rule adapts log(alpha), so lr_min must be > 0")
        if self.lr_per_step and self.steps < 1:
            raise ValueError("lr_per_step: one alpha per inner step needs steps >= 1, got steps 0")


class InnerRateMode:
    """How α is learned; ``inner.lr_mode`` names one through :data:`RATE_MODES`. The base is MAML's fixed α."""

    #: the meta-gradient must reach α (its tensors require grad)
    trainable: bool = False
    #: the outer optimizer updates α together with θ
    meta_parameter: bool = False
    #: α follows a hypergradient rule (``inner.hd_rule``; :meth:`rule` returns it)
    follows_rule: bool = False

    def rule(self, config: InnerConfig) -> HypergradientRule | None:
        """The hypergradient rule α follows, if any."""
        return None

    def after_outer_step(self, rate: InnerRate, hypergrads: list[Tensor] | None) -> None:
        """Update α once θ's outer step is taken (``hypergrads``: ∂L_val/∂α per α tensor, when trainable)."""


class FixedRate(InnerRateMode):
    """α stays at ``inner.lr`` (MAML [1])."""


class HypergradientRate(InnerRateMode):
    """α follows its hypergradient ∂L_val/∂α by the configured rule (Alpha MAML [2])."""

    trainable = True
    follows_rule = True

    def rule(self, config: InnerConfig) -> HypergradientRule:
        """The rule ``inner.hd_rule`` names, with α's hyper-rate and bounds."""
        return make_rule(config.hd_rule, config.hyper_lr, config.lr_min, config.lr_max)

    def after_outer_step(self, rate: InnerRate, hypergrads: list[Tensor] | None) -> None:
        """One step of the rule on α with the hypergradients ∂L_val/∂α of the outer step."""
        assert hypergrads is not None and rate.rule is not None
        rate.rule.update(rate.tensors, hypergrads)


class LearnedRate(InnerRateMode):
    """α is a meta-parameter the outer optimizer updates with θ, kept within its bounds (Meta-SGD [3])."""

    trainable = True
    meta_parameter = True

    def after_outer_step(self, rate: InnerRate, hypergrads: list[Tensor] | None) -> None:
        """Clamp α to its bounds (the outer optimizer has just updated it with θ)."""
        rate.clamp_()


#: ``inner.lr_mode`` → how α is learned. One line per mode.
RATE_MODES: dict[str, type[InnerRateMode]] = {"fixed": FixedRate, "hd": HypergradientRate, "learned": LearnedRate}


class InnerRate:
    """The inner rate α of MAML, as one tensor per parameter group — per inner step with ``lr_per_step``.

    ``scalar``: one 0-d tensor shared by every parameter; ``per_layer``: one 0-d tensor per parameter
    tensor (weights and biases separately); ``per_parameter``: a tensor of each parameter's shape
    (Meta-SGD's layout [3]). With ``lr_per_step`` that layout is repeated once per inner step (α₁ … α_K,
    MAML++'s per-step rates [4]): :attr:`tensors` holds step 1's groups, then step 2's, and so on.
    ``for_params(step)`` maps each parameter name to the α of inner step ``step`` (0-based; a step past the
    last uses the last), ready to broadcast in ``θ − α·g`` (also over a leading task dimension).

    Example::

        alpha = InnerRate(dict(model.named_parameters()), InnerConfig(lr=0.4, lr_mode="hd"))
        fast = {n: p - alpha.for_params()[n] * g[n] for n, p in params.items()}
    """

    def __init__(self, params: Mapping[str, Tensor], config: InnerConfig) -> None:
        self.config = config
        self.mode = RATE_MODES[config.lr_mode]()
        self.names = list(params)
        trainable = self.mode.trainable
        like = next(iter(params.values())) if params else torch.zeros(())

        def make(shape: torch.Size | tuple[int, ...]) -> Tensor:
            t = torch.full(shape, float(config.lr), dtype=like.dtype, device=like.device)
            return t.requires_grad_(trainable)

        if config.lr_shape == "scalar":
            shapes: list[torch.Size | tuple[int, ...]] = [()]
            self.index = {n: 0 for n in self.names}
        else:
            shapes = [() if config.lr_shape == "per_layer" else p.shape for p in params.values()]
            self.index = {n: i for i, n in enumerate(self.names)}
        #: α tensors per inner step (1 unless ``lr_per_step``)
        self.steps = max(1, config.steps) if config.lr_per_step else 1
        self.tensors = [make(shape) for _ in range(self.steps) for shape in shapes]
        self.rule = self.mode.rule(config)

    @property
    def requires_grad(self) -> bool:
        """Whether the meta-gradient must reach α (modes ``hd`` and ``learned``)."""
        return self.mode.trainable

    @property
    def groups(self) -> int:
        """α tensors of one inner step (1 for ``scalar``, else one per parameter tensor)."""
        return len(self.tensors) // self.steps

    def step_tensors(self, step: int) -> list[Tensor]:
        """The α tensors of inner step ``step`` (0-based; past the last step, the last step's)."""
        first = min(step, self.steps - 1) * self.groups
        return self.tensors[first:first + self.groups]

    def for_params(self, step: int = 0) -> dict[str, Tensor]:
        """α of inner step ``step`` (0-based; past the last step, the last step's) for each parameter name
        (shared tensors for ``scalar``)."""
        tensors = self.step_tensors(step)
        return {n: tensors[i] for n, i in self.index.items()}

    def mean(self) -> float:
        """The mean α over all weights (and steps) it applies to (what ``meta/alpha`` logs)."""
        return self._mean(self.tensors)

    def step_means(self) -> list[float]:
        """The mean α of each inner step, α₁ … α_K (one value without ``lr_per_step``)."""
        return [self._mean(self.step_tensors(j)) for j in range(self.steps)]

    def _mean(self, tensors: list[Tensor]) -> float:
        if self.config.lr_shape == "per_parameter":
            total = sum(float(t.detach().sum()) for t in tensors)
            return total / max(1, sum(t.numel() for t in tensors))
        return float(torch.stack([t.detach() for t in tensors]).mean())

    def values(self) -> Tensor:
        """All α values as one flat tensor (for histograms)."""
        return torch.cat([t.detach().reshape(-1) for t in self.tensors])

    def after_outer_step(self, hypergrads: list[Tensor] | None) -> None:
        """What the mode does to α after θ's outer step (a hypergradient step, a clamp, or nothing)."""
        self.mode.after_outer_step(self, hypergrads)

    @torch.no_grad()
    def clamp_(self) -> None:
        """Keep α within its bounds (after a Meta-SGD outer step)."""
        for t in self.tensors:
            t.clamp_(self.config.lr_min, self.config.lr_max)

    def state_dict(self) -> dict[str, Any]:
        """α's tensors (step by step with ``lr_per_step``) and its rule's state."""
        return {
            "tensors": [t.detach().clone() for t in self.tensors],
            "rule": self.rule.state_dict() if self.rule else None,
        }

    @torch.no_grad()
    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` into α's tensors (in place: the optimizer keeps referring to them).

        A state of one inner step's α (a run without ``lr_per_step``, or one written before it existed) loads into
        per-step rates as every step's starting value, its rule's moments likewise (:meth:`widen`).

        Raises:
            ValueError: the state's α has another layout (another model, ``lr_shape`` or number of steps).
        """
        tensors = self.widen(state["tensors"])
        if len(tensors) != len(self.tensors) or any(a.shape != b.shape for a, b in zip(tensors, self.tensors)):
            raise ValueError("alpha's layout in the state does not match this model, lr_shape and lr_per_step")
        for t, saved in zip(self.tensors, tensors):
            t.copy_(saved)
        if self.rule is not None and state.get("rule") is not None:
            rule = dict(state["rule"])
            for key in ("first_moment", "second_moment"):
                if rule.get(key):
                    rule[key] = self.widen(rule[key])
            self.rule.load_state_dict(rule)

    def widen(self, saved: list[Any]) -> list[Any]:
        """``saved`` (one entry per α tensor) repeated for every inner step when it holds one step's worth and this
        α has several (a checkpoint without per-step rates); otherwise unchanged."""
        if self.steps > 1 and len(saved) == self.groups:
            return [x for _ in range(self.steps) for x in saved]
        return list(saved)
