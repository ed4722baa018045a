"""Learning rates adapted online by their hypergradients.

Hypergradient descent [1] treats a learning rate as a parameter and descends the derivative of the loss
with respect to it. Alpha MAML [2] applies it to both MAML rates: the inner rate α and the outer rate β.

Four update rules are offered for a rate ``r`` with hypergradient ``h = ∂L/∂r``:

``additive`` [1]
    ``r ← r − η·h``. Simple, but ``h`` scales with the square of the loss scale, so the hyper-rate η
    that works on one problem can be useless or explosive on another.

``normalized`` (scale-free; the default)
    ``log r ← log r − η·h/√v̂`` with ``v̂`` a bias-corrected running mean of ``h²`` — Adam-style
    normalisation of the hypergradient (as in Chandra et al. [3], which optimises hyperparameters with
    Adam) applied in log space. Rescaling the loss leaves the update unchanged, each step changes ``r``
    by a factor of at most about ``e^η``, and ``r`` stays positive. One default ``η`` works across
    problems of very different gradient scale.

``log_adam`` (Adam [4] on ``log r``)
    ``log r ← log r − η·m̂/(√v̂ + ε)`` with ``m̂`` and ``v̂`` Adam's bias-corrected running means of ``h``
    and ``h²``. Scale-free like ``normalized``, but the step follows the *mean* hypergradient: it is close to
    ``η`` while the hypergradient keeps its sign and shrinks when its sign is noise (alternating signs cancel
    in ``m̂``), so its default hyper-rate can be ten times ``normalized``'s (0.2), which moves a rate across a
    decade in about a dozen consistent updates — what an RL budget of a few hundred iterations needs.

``log_adam_annealed`` (``log_adam`` with a decaying hyper-rate)
    ``η_t = η / √(1 + (t − 1)/τ)`` at update ``t``, τ = 20 updates: ``log_adam``'s pace while a run's rates are
    far from good (the first ~20 iterations, where an RL budget needs them to move), then steps that shrink like
    a stochastic-approximation step size (Robbins & Monro [5]), so that over the thousands of updates of a
    supervised run the rates stop wandering with the hypergradient's noise (η_600 ≈ η/5.5).

Every rule clamps the rate to ``[lr_min, lr_max]`` after every update.

References:
    [1] Baydin, Cornish, Martínez Rubio, Schmidt & Wood, "Online Learning Rate Adaptation with Hypergradient
        Descent", ICLR 2018. https://arxiv.org/abs/1703.04782
    [2] Behl, Baydin & Torr, "Alpha MAML: Adaptive Model-Agnostic Meta-Learning", 2019.
        https://arxiv.org/abs/1905.07435
    [3] Chandra, Xie, Ragan-Kelley & Meijer, "Gradient Descent: The Ultimate Optimizer", NeurIPS 2022.
        https://arxiv.org/abs/1909.13371
    [4] Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015. https://arxiv.org/abs/1412.6980
    [5] Robbins & Monro, "A Stochastic Approximation Method", Annals of Mathematical Statistics 22(3), 1951.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
from torch import Tensor

HDRule = Literal["additive", "normalized", "log_adam", "log_adam_annealed"]


class HypergradientRule:
    """Updates a set of rate tensors in place from their hypergradients [1], then clamps them to
    ``[lr_min, lr_max]``. A rule is a subclass with :meth:`step` (and, if it keeps state, :meth:`state_dict`);
    ``hd_rule`` names one through :data:`HD_RULES` — one class and one registry line per rule.
    """

    #: the rule adapts ``log r`` (the rate's lower bound must then be positive)
    log_space: bool = False

    def __init__(self, hyper_lr: float, lr_min: float, lr_max: float) -> None:
        self.hyper_lr = hyper_lr
        self.lr_min = lr_min
        self.lr_max = lr_max
        self.steps = 0

    @staticmethod
    def default_hyper_lr(optimizer: str = "sgd") -> float:
        """The rule's default hyper-rate η when its rate drives ``optimizer`` (``sgd`` for α: the inner loop)."""
        raise NotImplementedError

    def step(self, index: int, rate: Tensor, hypergrad: Tensor) -> None:
        """Move rate tensor ``index`` (in place) against its hypergradient."""
        raise NotImplementedError

    @torch.no_grad()
    def update(self, rates: list[Tensor], hypergrads: list[Tensor]) -> None:
        """One hypergradient step on each rate tensor (in place), then clamp to the bounds."""
        self.steps += 1
        for i, (rate, h) in enumerate(zip(rates, hypergrads)):
            self.step(i, rate, h)
            rate.clamp_(self.lr_min, self.lr_max)

    def update_scalar(self, rate: float, hypergrad: Tensor) -> float:
        """:meth:`update` of a single scalar rate (β, a trust region's radius), in float64 on the CPU; returns the
        new rate."""
        value = torch.tensor(rate, dtype=torch.float64)
        self.update([value], [hypergrad.detach().to("cpu", torch.float64)])
        return float(value)

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps of the rule: the number of updates taken (and a rule's running moments)."""
        return {"steps": self.steps}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.steps = int(state["steps"])


class AdditiveRule(HypergradientRule):
    """``r ← r − η·h`` [1]."""

    @staticmethod
    def default_hyper_lr(optimizer: str = "sgd") -> float:
        """Baydin et al.'s values [1]: 1e-3 for SGD-HD (and α, whose inner loop is SGD), 1e-7 for Adam-HD."""
        return 1e-7 if optimizer == "adam" else 1e-3

    def step(self, index: int, rate: Tensor, hypergrad: Tensor) -> None:
        """``rate ← rate − η·hypergrad`` in place (SGD-HD's update of the rate [1])."""
        rate.sub_(self.hyper_lr * hypergrad)


class NormalizedRule(HypergradientRule):
    """``log r ← log r − η·h/√v̂``, v̂ the bias-corrected running mean of h² (scale-free; the default).

    Hypergradient descent [1] on ``log r`` with the hypergradient normalised by its running RMS, as Adam
    normalises a gradient (Chandra et al. [3] optimise hyperparameters with Adam); Alpha MAML [2] adapts α and β
    with it in this toolkit.
    """

    log_space = True

    def __init__(self, hyper_lr: float, lr_min: float, lr_max: float, decay: float = 0.9, eps: float = 1e-30) -> None:
        super().__init__(hyper_lr, lr_min, lr_max)
        self.decay = decay
        self.eps = eps
        self.second_moment: list[Tensor] = []

    @staticmethod
    def default_hyper_lr(optimizer: str = "sgd") -> float:
        """0.02: a step changes a rate by at most about 2 %."""
        return 0.02

    @torch.no_grad()
    def update(self, rates: list[Tensor], hypergrads: list[Tensor]) -> None:
        """:meth:`HypergradientRule.update`, with the running second moments created (or moved to the rates'
        device after a checkpoint of another device) first."""
        if not self.second_moment:
            self.second_moment = [torch.zeros_like(r) for r in rates]
        elif self.second_moment[0].device != rates[0].device:  # loaded from a checkpoint of another device
            self.second_moment = [v.to(r.device) for v, r in zip(self.second_moment, rates)]
        super().update(rates, hypergrads)

    def step(self, index: int, rate: Tensor, hypergrad: Tensor) -> None:
        """``rate ← rate · exp(−η·h/√v̂)`` in place, after folding ``h²`` into rate ``index``'s running moment."""
        v = self.second_moment[index]
        v.mul_(self.decay).addcmul_(hypergrad, hypergrad, value=1 - self.decay)
        v_hat = v / (1 - self.decay**self.steps)
        rate.mul_(torch.exp(-self.hyper_lr * hypergrad / (v_hat.sqrt() + self.eps)))

    def state_dict(self) -> dict[str, Any]:
        """The number of updates (for the bias correction) and the running second moments."""
        return {"steps": self.steps, "second_moment": [v.clone() for v in self.second_moment]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.steps = int(state["steps"])
        self.second_moment = [v.clone() for v in state.get("second_moment", [])]


class LogAdamRule(NormalizedRule):
    """``log r ← log r − η·m̂/(√v̂ + ε)``: Adam [4] on ``log r`` with hypergradient descent's gradient [1].

    ``m̂`` and ``v̂`` are the bias-corrected running means of the hypergradient ``h`` and of ``h²``, both with
    decay 0.9 — the ``normalized`` rule with Adam's first moment added. Hyperparameters optimised by Adam are
    Chandra et al.'s [3]; doing it in log space keeps the rate positive and every step a factor of at most about
    ``e^η``. While ``h`` keeps its sign, ``|m̂|/√v̂`` stays near 1 and each step changes the rate by about
    ``e^η``; when the sign is noise, ``m̂`` averages it out and the steps shrink (to about 0.05 η for strictly
    alternating signs), so the hyper-rate can be ten times the ``normalized`` rule's. (``v̂`` forgets at 0.9, not
    Adam's 0.999, so that the normalisation follows the hypergradient as it shrinks near a good rate instead of
    remembering the large ones of a bad start.)
    """

    def __init__(self, hyper_lr: float, lr_min: float, lr_max: float, decay: float = 0.9, eps: float = 1e-30,
                 momentum: float = 0.9) -> None:
        super().__init__(hyper_lr, lr_min, lr_max, decay, eps)
        self.momentum = momentum
        self.first_moment: list[Tensor] = []

    @staticmethod
    def default_hyper_lr(optimizer: str = "sgd") -> float:
        """0.2, ten times the ``normalized`` rule's: a step changes a rate by at most about 22 %, by about that
        while the hypergradient keeps its sign (a factor of 10 in about 12 updates)."""
        return 0.2

    @torch.no_grad()
    def update(self, rates: list[Tensor], hypergrads: list[Tensor]) -> None:
        """:meth:`NormalizedRule.update`, with the running first moments created (or moved) beside the second."""
        if not self.first_moment:
            self.first_moment = [torch.zeros_like(r) for r in rates]
        elif self.first_moment[0].device != rates[0].device:
            self.first_moment = [m.to(r.device) for m, r in zip(self.first_moment, rates)]
        super().update(rates, hypergrads)

    def step(self, index: int, rate: Tensor, hypergrad: Tensor) -> None:
        """``rate ← rate · exp(−η·m̂/(√v̂ + ε))`` in place, after folding ``h`` and ``h²`` into rate ``index``'s
        running moments."""
        m, v = self.first_moment[index], self.second_moment[index]
        m.mul_(self.momentum).add_(hypergrad, alpha=1 - self.momentum)
        v.mul_(self.decay).addcmul_(hypergrad, hypergrad, value=1 - self.decay)
        m_hat = m / (1 - self.momentum**self.steps)
        v_hat = v / (1 - self.decay**self.steps)
        rate.mul_(torch.exp(-self.current_hyper_lr() * m_hat / (v_hat.sqrt() + self.eps)))

    def current_hyper_lr(self) -> float:
        """The hyper-rate of this update: η (constant)."""
        return self.hyper_lr

    def state_dict(self) -> dict[str, Any]:
        """The number of updates (for the bias corrections) and both running moments."""
        return {**super().state_dict(), "first_moment": [m.clone() for m in self.first_moment]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        super().load_state_dict(state)
        self.first_moment = [m.clone() for m in state.get("first_moment", [])]


class AnnealedLogAdamRule(LogAdamRule):
    """:class:`LogAdamRule` whose hyper-rate decays as ``η_t = η / √(1 + (t − 1)/τ)`` at update ``t`` (τ = 20).

    The first ~τ updates move a rate as fast as ``log_adam`` (a decade in about 15 consistent ones, η_20 ≈ 0.7 η);
    later steps shrink like a stochastic-approximation step size (Robbins & Monro [5]), so that a long run's
    rates settle instead of following the hypergradient's noise (η_600 ≈ 0.18 η).
    """

    #: τ, the number of updates after which η has fallen to η/√2
    anneal_updates: float = 20.0

    def current_hyper_lr(self) -> float:
        """``η / √(1 + (t − 1)/τ)``, ``t`` this update's number (1 for the first)."""
        return self.hyper_lr / (1.0 + (self.steps - 1) / self.anneal_updates) ** 0.5


#: ``hd_rule`` → the rule. One line per rule.
HD_RULES: dict[str, type[HypergradientRule]] = {"additive": AdditiveRule, "normalized": NormalizedRule,
                                                "log_adam": LogAdamRule, "log_adam_annealed": AnnealedLogAdamRule}


def default_hyper_lr(rule: HDRule, optimizer: str = "sgd") -> float:
    """The default hyper-rate η of the rule named ``rule`` (see each rule's ``default_hyper_lr``)."""
    return HD_RULES[rule].default_hyper_lr(optimizer)


def make_rule(rule: HDRule, hyper_lr: float | None, lr_min: float, lr_max: float, optimizer: str = "sgd"
              ) -> HypergradientRule:
    """The rule named ``rule`` with ``hyper_lr`` (``None``: its default for ``optimizer``) and the rate's bounds."""
    return HD_RULES[rule](default_hyper_lr(rule, optimizer) if hyper_lr is None else hyper_lr, lr_min, lr_max)
