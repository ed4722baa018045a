"""Outer (meta) steps: how one collected :class:`~agents.maml_pg.MetaBatch` updates θ (and α, β).

Every step has one interface, :meth:`OuterStep.step` ``(learner, batch) -> scalars``, and is chosen by
``outer.optimizer`` through :data:`OUTER_STEPS`; adding one is a class and a registry line. Each descends the
learner's meta-loss (:meth:`~agents.maml_pg.MAMLPG.meta_loss`: the post-adaptation surrogate of the last inner step,
or with ``outer.meta_loss: all_steps`` the mean of every step's; ProMP's clipped objective likewise).

* :class:`GradientStep` (``sgd``, ``adam``) — one step of the core's outer optimizer with rate β on the
  meta-loss: MAML [1] with a first-order outer optimizer, or Alpha MAML when β and α follow their hypergradients
  [2]; an adapted β is repaired when a step proves too large (``beta_repair``: the
  sufficient-decrease check of a backtracking line search [3, 7] after the step, which is then shrunk and β cut
  with it).
* :class:`NaturalGradientStep` (``ngd``) — SGD with rate β along the natural gradient F⁻¹∇L [8, 9], TRPO's
  direction without its trust region: β fixed, or by hypergradient and repaired as :class:`GradientStep`'s —
  Alpha MAML with MAML-TRPO's direction in place of Adam's.
* :class:`TRPOStep` (``trpo``) — MAML-TRPO ([1], §5.3): conjugate gradient with
  Hessian-vector products of the KL taken *through the inner adaptation*, a step to the max-KL boundary
  and a backtracking line search [3]; with ``trpo.max_kl_mode: hd`` the radius follows its hypergradient [6].
* :class:`ProMPStep` (``promp``) — Proximal Meta-Policy Search [4]: several Adam steps per batch on the
  clipped likelihood-ratio meta-objective [5] plus a KL penalty on the pre-update policy; with
  ``lr_mode: hd`` on α and β, Alpha-ProMP.

References:
    [1] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
    [2] Behl, Baydin & Torr, "Alpha MAML: Adaptive Model-Agnostic Meta-Learning", 2019.
        https://arxiv.org/abs/1905.07435
    [3] Schulman, Levine, Moritz, Jordan & Abbeel, "Trust Region Policy Optimization", ICML 2015.
        https://arxiv.org/abs/1502.05477
    [4] Rothfuss, Lee, Clavera, Asfour & Abbeel, "ProMP: Proximal Meta-Policy Search", ICLR 2019.
        https://arxiv.org/abs/1810.06784
    [5] Schulman, Wolski, Dhariwal, Radford & Klimov, "Proximal Policy Optimization Algorithms", 2017.
        https://arxiv.org/abs/1707.06347
    [6] Baydin, Cornish, Martínez Rubio, Schmidt & Wood, "Online Learning Rate Adaptation with Hypergradient
        Descent", ICLR 2018. https://arxiv.org/abs/1703.04782
    [7] Armijo, "Minimization of functions having Lipschitz continuous first partial derivatives", Pacific J.
        Math. 1966. https://doi.org/10.2140/pjm.1966.16.1
    [8] Amari, "Natural Gradient Works Efficiently in Learning", Neural Computation 10(2), 1998.
        https://doi.org/10.1162/089976698300017746
    [9] Kakade, "A Natural Policy Gradient", NeurIPS 2001.
        https://papers.nips.cc/paper/2073-a-natural-policy-gradient
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor

from agents.maml_pg import MAMLPG, MetaBatch, Phase, inner_loss
from agents.returns import masked_mean
from agents.trpo import (
    conjugate_gradient,
    flatten_params,
    hessian_vector_product,
    set_flat_params_,
    trpo_step,
    unflatten_params,
)
from rl_alphamaml.config import ranged
from rl_alphamaml.meta import (
    MetaGradients,
    Params,
    expand_params,
    inner_update,
    inner_update_jvp,
    inner_update_vjp,
    make_rule,
)
from rl_alphamaml.meta.hypergradient import HDRule
from rl_alphamaml.meta.rates import RATE_MODES

if TYPE_CHECKING:
    from agents.trainer import RLConfig

CoreOptimizer = Literal["sgd", "adam"]


class OuterStep(abc.ABC):
    """One outer update from a collected meta-batch; built from the run's config by :meth:`from_config`."""

    @classmethod
    @abc.abstractmethod
    def core_optimizer(cls, name: str) -> CoreOptimizer | None:
        """The core's outer optimizer (rate β) this step updates θ with, or ``None`` when the step updates
        θ itself and uses no β (the core then only carries α's state)."""

    @classmethod
    @abc.abstractmethod
    def from_config(cls, config: RLConfig) -> OuterStep:
        """The step the run's config describes."""

    @classmethod
    def validate(cls, config: RLConfig) -> None:
        """Refuse, with a ``ValueError`` naming the key, a config this step cannot run (checked when it loads)."""
        return None

    @abc.abstractmethod
    def step(self, learner: MAMLPG, batch: MetaBatch) -> dict[str, float]:
        """Update ``learner.meta`` (θ, α, β) from ``batch``; returns the log scalars, ``loss/post_adapt``
        (the post-adaptation objective before the update) among them."""

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint must keep of this step between iterations (nothing by default)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:  # noqa: B027 (stateless steps keep nothing)
        """Restore :meth:`state_dict`."""


@dataclasses.dataclass
class BetaRepairConfig:
    """The repair of a too-large β for the SGD/Adam/natural-gradient outer step with β by hypergradient
    (``outer.optimizer: sgd | adam | ngd`` with ``outer.lr_mode: hd``; other outer steps and a fixed β ignore it).

    Hypergradient descent [6] lowers β only after a too-large step has left its trace in the next gradients; in
    RL the policy can be destroyed by then, and its gradients carry no signal after. So every step is checked at
    once on the batch that made it, as a backtracking line search checks a step (TRPO's [3]; Armijo's
    sufficient-decrease condition [7]): the meta-loss (the post-adaptation surrogate) must improve by at least
    ``accept_ratio`` times the improvement its first-order model predicts for the step, −⟨∇L, θ_new − θ_old⟩, and,
    with ``max_kl``, the mean KL between the adapted policies before and after the step (π_θ′(θ_old), which sampled
    the validation episodes, and π_θ′(θ_new); with ``outer.meta_loss: all_steps`` the mean over every step's
    policy) must stay within it. While the step fails, it is shrunk by ``cut``
    and β with it (β becomes the rate of the step that remains), up to ``max_cuts`` times; a step that still
    fails is taken back (θ keeps its old value) and β stays cut.

    The check is the step's alone: it adapts with α as it was before the step (α by hypergradient moves in the
    same meta-step, and its change is not β's doing; a meta-learned α, Meta-SGD's, is part of the step). Adam's
    step, unlike a gradient step, need not descend on the batch that made it (its momentum carries earlier
    batches), so the condition is that the surrogate falls short of its prediction p = −⟨∇L, Δθ⟩ by at most
    (1 − ``accept_ratio``)·|p|: Armijo's for a descent step, and for an ascent step a rise of up to (2 − c) times
    the predicted one. A change within float32 rounding of the surrogate (10⁻⁶ of its size, at least 10⁻⁶) is no
    evidence either way and passes.

    The ratio of actual to predicted improvement is scale-free: near 1 for a step of a sound size (measured on
    Navigation2D and HalfCheetahVel at β = 10⁻³), about 0 or negative for a destructive one (β = 0.1 on both),
    whereas the KL of a sound step differs by a factor of about 50 between the two families at one β — hence no
    KL bound by default.
    """

    enabled: bool = ranged(True, doc="check each SGD/Adam/ngd step with beta by hypergradient, cut beta when too large")
    accept_ratio: float | None = ranged(
        0.1, min=0.0, max=1.0, doc="a step must improve the surrogate by this share of its first-order prediction")
    max_kl: float | None = ranged(None, min=0.0, min_exclusive=True,
                                  doc="largest mean KL between the adapted policies before and after a step")
    cut: float = ranged(0.5, min=0.0, max=0.999, min_exclusive=True, doc="factor the step and beta shrink by per cut")
    max_cuts: int = ranged(6, min=1, doc="cuts tried before the step is taken back")

    def validate(self) -> None:
        """An enabled repair checks something."""
        if self.enabled and self.accept_ratio is None and self.max_kl is None:
            raise ValueError("accept_ratio: set it or max_kl (both null check nothing), or set enabled: false")


def adapted_loss_and_kl(learner: MAMLPG, batch: MetaBatch, theta: Params | None = None) -> tuple[Tensor, Tensor]:
    """The meta-loss of ``batch`` (:meth:`~agents.maml_pg.MAMLPG.meta_loss`) and its KL
    (:meth:`~agents.maml_pg.MAMLPG.meta_kl`: KL(π_θ′(θ_old) ‖ π_θ′(θ)) on the validation episodes, or its mean over
    every scored step), θ′ adapted first-order from ``theta`` (default: the meta-parameters), no graph kept: what
    TRPO's line search checks [3] (and the β repair of :class:`GradientStep`)."""
    start = learner.meta.params if theta is None else theta
    path = learner.adaptation_path(batch, {n: v.detach().requires_grad_(True) for n, v in start.items()},
                                   first_order=True)
    with torch.no_grad():
        return learner.meta_loss(batch, path), learner.meta_kl(batch, path)


class GradientStep(OuterStep):
    """SGD or Adam with rate β on the meta-loss, through the core's
    :meth:`~rl_alphamaml.meta.MetaOptimizer.step` (α and β by hypergradient when adapted) [1, 2]; an adapted β is
    repaired after a too-large step (:class:`BetaRepairConfig`; ``repair`` ``None``: never)."""

    def __init__(self, repair: BetaRepairConfig | None = None) -> None:
        self.repair = repair

    @classmethod
    def core_optimizer(cls, name: str) -> CoreOptimizer | None:
        """``sgd`` or ``adam``, as ``outer.optimizer`` names it: the core's optimizer with rate β updates θ."""
        if name not in ("sgd", "adam"):
            raise ValueError(f"GradientStep drives sgd or adam, not {name!r}")
        return "sgd" if name == "sgd" else "adam"

    @classmethod
    def from_config(cls, config: RLConfig) -> GradientStep:
        """β and its mode are the core's (``outer.*``); ``beta_repair`` applies when β follows its hypergradient."""
        repair = config.beta_repair
        return cls(repair if repair.enabled and config.outer.lr_mode == "hd" else None)

    def step(self, learner: MAMLPG, batch: MetaBatch) -> dict[str, float]:
        """Replay the adaptation with its graph, then one :meth:`~rl_alphamaml.meta.MetaOptimizer.step` on the
        meta-loss (:meth:`~agents.maml_pg.MAMLPG.meta_loss`): θ by β, then α and β by their hypergradients; then,
        with a repair, the step checked and shrunk with β while it fails (:meth:`repair_beta`)."""
        meta = learner.meta
        grads = meta.gradients(learner.meta_loss(batch, learner.adaptation_path(batch)))
        directions, out = self.directions(learner, batch, grads)
        before = flatten_params(meta.params).detach().clone() if self.repair is not None else None
        alpha_before = [a.detach().clone() for a in meta.alpha.tensors] if self.repair is not None else []
        info = meta.apply(grads, directions=directions)
        out.update({**info.scalars(), "loss/post_adapt": grads.loss})
        if before is not None and not info.skipped:
            # the surrogate's first-order prediction of the step's improvement, −⟨∇L, θ_new − θ_old⟩ (and α's part of
            # the step where α is a meta-parameter, Meta-SGD)
            expected = -float(torch.dot(flatten_params(grads.theta), flatten_params(meta.params).detach() - before))
            if meta.alpha.mode.meta_parameter:
                assert grads.alpha is not None
                expected -= sum(float((g * (a.detach() - a0)).sum())
                                for g, a, a0 in zip(grads.alpha, meta.alpha.tensors, alpha_before))
                out.update(self.repair_beta(learner, batch, grads.loss, expected))
            else:  # α by hypergradient (or fixed): the check adapts with the α the step was taken with
                with _rates_held(meta.alpha.tensors, alpha_before):
                    out.update(self.repair_beta(learner, batch, grads.loss, expected))
        return out

    def directions(self, learner: MAMLPG, batch: MetaBatch, grads: MetaGradients
                   ) -> tuple[dict[str, Tensor] | None, dict[str, float]]:
        """θ's step directions (``None``: the core optimizer's own, SGD's gradient or Adam's) and their log
        scalars."""
        return None, {}

    def repair_beta(self, learner: MAMLPG, batch: MetaBatch, old_loss: float, expected: float) -> dict[str, float]:
        """Check the step just taken on ``batch`` (:class:`BetaRepairConfig`: the surrogate, down from ``old_loss``,
        improves by at least ``accept_ratio`` × ``expected``, the improvement its first-order model predicts for the
        whole step; with ``max_kl``, the KL within it), as a backtracking line search does [3, 7]; while it fails,
        shrink the step by ``cut`` and β with it (:meth:`~rl_alphamaml.meta.MetaOptimizer.retract`), at most
        ``max_cuts`` times, then take the step back. Returns ``meta/beta_cuts`` (this step's cuts), ``meta/beta``
        (after them) and the first check's values."""
        cfg, meta = self.repair, learner.meta
        assert cfg is not None

        rounding = 1e-6 * max(1.0, abs(old_loss))  # float32 rounding of the surrogate: no evidence

        def passes(loss: float, kl: float, fraction: float) -> bool:
            improvement, predicted = old_loss - loss, fraction * expected
            return (math.isfinite(loss) and math.isfinite(kl)
                    and (cfg.accept_ratio is None
                         or improvement >= predicted - (1 - cfg.accept_ratio) * abs(predicted) - rounding)
                    and (cfg.max_kl is None or kl <= cfg.max_kl))

        loss, kl = (float(x) for x in adapted_loss_and_kl(learner, batch))
        first_loss, first_kl = loss, kl
        cuts = 0
        while not passes(loss, kl, cfg.cut**cuts) and cuts < cfg.max_cuts:
            meta.retract(cfg.cut)
            cuts += 1
            loss, kl = (float(x) for x in adapted_loss_and_kl(learner, batch))
        taken = passes(loss, kl, cfg.cut**cuts)
        if not taken:
            meta.retract(0.0, beta_factor=1.0)
        return {"meta/beta": meta.beta, "meta/beta_cuts": float(cuts), "beta_repair/kl": first_kl,
                "beta_repair/improvement": old_loss - first_loss, "beta_repair/expected_improvement": expected,
                "beta_repair/step_fraction": cfg.cut**cuts if taken else 0.0}


class NaturalGradientStep(GradientStep):
    """Natural-gradient descent on the meta-loss with rate β [8, 9]: θ ← θ − β·F⁻¹∇L, F the curvature of the KL
    between the adapted policies through the adaptation — MAML-TRPO's direction (conjugate gradient with
    ``trpo:``'s ``cg_iters``, ``cg_damping``, ``hvp`` and ``subsample``) without its trust region. The step's length
    is β's: fixed, or with ``outer.lr_mode: hd`` by its hypergradient ``−⟨∇L_t, F⁻¹∇L_{t−1}⟩`` (SGD-HD's for a
    preconditioned step [6]), and an adapted β is repaired as :class:`GradientStep`'s (``beta_repair``). It is
    Alpha MAML [2] with TRPO's direction in place of Adam's: beside ``adam`` (the same β, α and repair) and ``trpo``
    (the same direction) it separates what an outer loop's direction does from what its step size does.

    β is in the natural gradient's units, not Adam's: set ``outer.lr`` and ``outer.lr_max`` for it (the defaults,
    10⁻³ and 1, are Adam's). Logs ``ngd/natural_sq_norm``, ⟨∇L, F⁻¹∇L⟩: a step of rate β has the quadratic model's
    KL ½·β²·⟨∇L, F⁻¹∇L⟩ (times c² when ``outer.max_grad_norm`` clips the gradient by c), and TRPO's step to the radius
    δ is the rate √(2δ / ⟨∇L, F⁻¹∇L⟩). A meta-learned α (Meta-SGD) is refused: it would step along its raw gradient
    at β, a rate in another metric's units.
    """

    def __init__(self, trpo: TRPOConfig, repair: BetaRepairConfig | None = None) -> None:
        super().__init__(repair)
        self.trpo = trpo

    @classmethod
    def core_optimizer(cls, name: str) -> CoreOptimizer | None:
        """``sgd``: the core's SGD with rate β takes the step, along the directions this step gives it."""
        if name != "ngd":
            raise ValueError(f"NaturalGradientStep drives ngd, not {name!r}")
        return "sgd"

    @classmethod
    def validate(cls, config: RLConfig) -> None:
        """A meta-learned α would step along its raw gradient at β, a rate in the natural gradient's units."""
        if RATE_MODES[config.inner.lr_mode].meta_parameter:
            raise ValueError(f"inner.lr_mode: `{config.inner.lr_mode}` makes α a meta-parameter, which ngd would step "
                             "along its raw gradient at a β in the natural gradient's units; use sgd or adam")

    @classmethod
    def from_config(cls, config: RLConfig) -> NaturalGradientStep:
        """The curvature of ``trpo:``; β and its mode are the core's, repaired (``beta_repair``) when adapted."""
        repair = config.beta_repair
        return cls(config.trpo, repair if repair.enabled and config.outer.lr_mode == "hd" else None)

    def directions(self, learner: MAMLPG, batch: MetaBatch, grads: MetaGradients
                   ) -> tuple[dict[str, Tensor] | None, dict[str, float]]:
        """F⁻¹∇L by conjugate gradient on the KL's curvature through the adaptation (as :class:`TRPOStep`); none for
        a non-finite gradient (the core then changes nothing)."""
        if not grads.is_finite():
            return None, {}
        cfg, theta = self.trpo, learner.meta.params
        gradient = flatten_params(grads.theta)
        natural = conjugate_gradient(curvature(learner, theta, batch, cfg), gradient, cfg.cg_iters)
        return unflatten_params(natural, theta), {"ngd/natural_sq_norm": float(torch.dot(gradient, natural))}


@contextlib.contextmanager
def _rates_held(tensors: Sequence[Tensor], values: Sequence[Tensor]) -> Iterator[None]:
    """Within the block, the α ``tensors`` hold ``values`` (their values before the meta-step); after it, their own
    values again."""
    now = [t.detach().clone() for t in tensors]
    with torch.no_grad():
        for t, v in zip(tensors, values):
            t.copy_(v)
    try:
        yield
    finally:
        with torch.no_grad():
            for t, v in zip(tensors, now):
                t.copy_(v)


# ------------------------------------------------------------------------------------------------
# MAML-TRPO
# ------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class TRPOConfig:
    """MAML-TRPO settings (pytorch-maml-rl: max-KL 0.01, 10 CG iterations, damping 1e-5, ratio 0.8). ``ngd`` takes
    its natural gradient with the curvature settings (``cg_iters``, ``cg_damping``, ``hvp``, ``subsample``); every
    other outer step ignores them, and so does ``ngd`` the trust region's (``max_kl`` and its mode, the line search).

    ``subsample`` < 1 computes the conjugate-gradient curvature products (the KL's Hessian through the
    adaptation) on the first ``ceil(subsample · episodes)`` episodes of every task — the
    ``subsample_factor`` of rllab's ``ConjugateGradientOptimizer`` (MAML-RL's code kept its default, 1: every
    episode). The gradient, the step's KL bound and the line search still use every episode, so an accepted step
    satisfies the same constraint and TRPO's fixed point is unchanged; only the metric that shapes the direction
    is estimated from fewer samples.
    """

    max_kl: float = ranged(0.01, min=0.0, min_exclusive=True, doc="trust region: mean KL of a step")
    cg_iters: int = ranged(10, min=1, doc="conjugate-gradient iterations")
    cg_damping: float = ranged(1e-5, min=0.0, doc="damping added to the curvature products")
    ls_max_steps: int = ranged(15, min=1, doc="line-search step sizes tried")
    ls_backtrack_ratio: float = ranged(0.8, min=0.0, max=0.999, min_exclusive=True,
                                       doc="line-search shrink factor")
    hvp: Literal["fisher", "direct"] = ranged(
        "fisher", doc="curvature products: J^T F J (fast, exact at theta_old) or third-order autograd")
    subsample: float = ranged(1.0, min=0.0, max=1.0, min_exclusive=True,
                              doc="fraction of each task's episodes the curvature products use")
    max_kl_mode: Literal["fixed", "hd"] = ranged(
        "fixed", doc="the trust region's radius fixed, or adapted by its hypergradient from max_kl")
    hd_rule: HDRule = ranged("log_adam", doc="the radius's hypergradient rule (max_kl_mode hd)")
    hyper_lr: float | None = ranged(None, min=0.0, doc="hyper-rate of the radius's rule; null: the rule's default")
    max_kl_min: float = ranged(1e-4, min=0.0, min_exclusive=True, doc="lower bound of the adapted radius")
    max_kl_max: float = ranged(1.0, min=0.0, min_exclusive=True, doc="upper bound of the adapted radius")
    max_kl_cut: bool = ranged(
        False, doc="max_kl_mode hd: a step the line search shortens cuts the radius to that of the step taken")

    def validate(self) -> None:
        """An adapted radius has ordered bounds and starts within them."""
        if self.max_kl_mode == "hd" and self.max_kl_min > self.max_kl_max:
            raise ValueError(f"max_kl_min: {self.max_kl_min} is above max_kl_max {self.max_kl_max}")
        if self.max_kl_mode == "hd" and not self.max_kl_min <= self.max_kl <= self.max_kl_max:
            raise ValueError(f"max_kl: {self.max_kl} is outside [max_kl_min, max_kl_max] = "
                             f"[{self.max_kl_min}, {self.max_kl_max}]")


class TRPOStep(OuterStep):
    """MAML-TRPO on θ (in place) [1, 3]; α follows its hypergradient from the same meta-gradient, and with
    ``max_kl_mode: hd`` so does the trust region's radius δ.

    The radius plays β's part: a step of TRPO goes to the boundary of the trust region, s ∝ √δ along the natural
    gradient (then the line search may shorten it), so θ_t = θ_{t−1} + s_{t−1} has ∂θ_t/∂δ = s_{t−1}/(2δ), and the
    hypergradient of the meta-loss L at θ_t with respect to the radius that made the previous step is
    ``h_t = ⟨∇L(θ_t), s_{t−1}⟩ / (2δ)`` — hypergradient descent's [6] product of consecutive gradient and step,
    with TRPO's step: positive when the loss rose along the last step (δ shrinks), negative while it still falls
    (δ grows). δ moves by the rule ``hd_rule`` before the step is taken, as β does in Alpha MAML [2]; a step the line
    search rejects leaves no hypergradient for the next one. The line search still checks every step on its own
    batch, so a step of a radius grown too large is shortened there; the hypergradient alone need not bring the
    radius back (on Navigation2D it stays at its bound for a quarter to a half of a run once the return levels off).

    With ``max_kl_cut``, a step the line search had to shorten to a fraction f of the boundary step also cuts δ to
    f²·δ, the radius whose boundary step is the one taken (the KL grows with the square of the step), as the β
    repair cuts β to the rate of the step that remains: the check on the step's own batch repairs a radius the
    hypergradient has grown too far. A rejected step changes no radius.
    """

    def __init__(self, config: TRPOConfig) -> None:
        self.config = config
        #: the radius of the next step: ``max_kl``, or where its hypergradient has moved it
        self.max_kl = config.max_kl
        self.rule = (make_rule(config.hd_rule, config.hyper_lr, config.max_kl_min, config.max_kl_max)
                     if config.max_kl_mode == "hd" else None)
        self.last_step: Tensor | None = None  # s_{t−1}, the step last taken (only with an adapted radius)

    @classmethod
    def core_optimizer(cls, name: str) -> CoreOptimizer | None:
        """None: TRPO updates θ itself, β is not used (the core only carries α's state)."""
        return None

    @classmethod
    def from_config(cls, config: RLConfig) -> TRPOStep:
        """The step with the run's ``trpo:`` settings."""
        return cls(config.trpo)

    def step(self, learner: MAMLPG, batch: MetaBatch) -> dict[str, float]:
        """One MAML-TRPO step on θ: the meta-gradient of the meta-loss (:meth:`~agents.maml_pg.MAMLPG.meta_loss`),
        conjugate gradient with the KL's curvature through the adaptation (``trpo.hvp``), a step to the ``max_kl``
        boundary and the line search [1, 3]; then α by its hypergradient from the same meta-gradient. A non-finite
        meta-gradient changes nothing (``trpo/accepted`` 0)."""
        cfg = self.config
        meta = learner.meta
        theta = meta.params
        grads = meta.gradients(learner.meta_loss(batch, learner.adaptation_path(batch)))
        if not grads.is_finite():
            info = meta.apply(grads, update_theta=False)
            radius = {"trpo/max_kl": self.max_kl} if self.rule is not None else {}
            return {"trpo/accepted": 0.0, **info.scalars(), **radius, "loss/post_adapt": grads.loss}

        def loss_and_kl(flat: Tensor) -> tuple[Tensor, Tensor]:
            return adapted_loss_and_kl(learner, batch, unflatten_params(flat, theta))

        gradient = flatten_params(grads.theta)
        radius = self.update_radius(gradient) if self.rule is not None else {}
        hvp = curvature(learner, theta, batch, cfg)
        old_flat = flatten_params(theta).detach()
        new_flat, result = trpo_step(
            gradient, hvp, loss_and_kl, old_flat, self.max_kl,
            cg_iters=cfg.cg_iters, max_backtracks=cfg.ls_max_steps, ratio=cfg.ls_backtrack_ratio,
            old_loss=grads.loss,
        )
        set_flat_params_(theta, new_flat)
        if self.rule is not None:
            self.last_step = (new_flat - old_flat).detach().clone() if result.accepted else None
            if cfg.max_kl_cut and result.accepted and result.step_frac < 1.0:
                self.max_kl = self.bounded(self.max_kl * result.step_frac**2)
                radius["trpo/max_kl_after_cut"] = self.max_kl
        info = meta.apply(grads, update_theta=False)
        return {
            **info.scalars(),
            **radius,
            "trpo/accepted": float(result.accepted),
            "trpo/kl": result.kl,
            "trpo/step_fraction": result.step_frac,
            "trpo/backtracks": float(result.backtracks),
            "trpo/improvement": result.improvement,
            "trpo/expected_improvement": result.expected_improvement,
            "loss/post_adapt": grads.loss,
        }

    def bounded(self, radius: float) -> float:
        """``radius`` clamped into ``[trpo.max_kl_min, trpo.max_kl_max]``."""
        return min(max(radius, self.config.max_kl_min), self.config.max_kl_max)

    def update_radius(self, gradient: Tensor) -> dict[str, float]:
        """Move δ by its hypergradient ``⟨∇L(θ_t), s_{t−1}⟩ / (2δ)`` (none before the first accepted step) and
        return ``trpo/max_kl``, the radius of this step, and ``trpo/max_kl_hypergrad`` when there was one."""
        assert self.rule is not None
        out: dict[str, float] = {}
        if self.last_step is not None:
            h = torch.dot(gradient.detach().double(), self.last_step.to(gradient.device).double()) / (2 * self.max_kl)
            self.max_kl = self.rule.update_scalar(self.max_kl, h)
            out["trpo/max_kl_hypergrad"] = float(h)
        out["trpo/max_kl"] = self.max_kl
        return out

    def state_dict(self) -> dict[str, Any]:
        """With an adapted radius: δ, its rule's state and the last step (a resumed run continues exactly)."""
        if self.rule is None:
            return {}
        return {"max_kl": self.max_kl, "rule": self.rule.state_dict(),
                "last_step": None if self.last_step is None else self.last_step.cpu().clone()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` (a fixed radius keeps nothing; the last step goes to the parameters' device
        when the step is next taken). The radius is clamped into this step's bounds: a resume may change them
        (:data:`rl_alphamaml.resume.RADIUS_KEYS`)."""
        if self.rule is None or "max_kl" not in state:
            return
        self.max_kl = self.bounded(float(state["max_kl"]))
        self.rule.load_state_dict(state["rule"])
        self.last_step = None if state["last_step"] is None else state["last_step"].clone()


def curvature(learner: MAMLPG, theta: Params, batch: MetaBatch, config: TRPOConfig) -> Callable[[Tensor], Tensor]:
    """v ↦ (H + damping·I) v, H the curvature of the trust region's KL through the adaptation at θ, as ``config``
    computes it: ``hvp`` (:func:`kl_hvp` or :func:`kl_hvp_direct`) on ``subsample`` of each task's episodes, with
    ``cg_damping``."""
    make_hvp = kl_hvp if config.hvp == "fisher" else kl_hvp_direct
    return make_hvp(learner, theta, batch.subsample(config.subsample), config.cg_damping)


def kl_hvp_direct(learner: MAMLPG, theta: Params, batch: MetaBatch, damping: float) -> Callable[[Tensor], Tensor]:
    """v ↦ (∇²_θ KL + damping·I) v, KL the trust region's (:meth:`~agents.maml_pg.MAMLPG.meta_kl`: the last step's,
    or the mean of every step's), by double backward through the adaptation.

    The textbook form (and pytorch-maml-rl's): third-order autograd through the inner steps. :func:`kl_hvp`
    gives the same product at θ_old much faster; this one is kept as its reference.
    """
    return hessian_vector_product(lambda p: learner.meta_kl(batch, learner.adaptation_path(batch, dict(p))),
                                  theta, damping=damping)


def kl_hvp(learner: MAMLPG, theta: Params, batch: MetaBatch, damping: float) -> Callable[[Tensor], Tensor]:
    """v ↦ (H + damping·I) v with H the Hessian at θ = θ_old of the trust region's KL
    (:meth:`~agents.maml_pg.MAMLPG.meta_kl`: the post-adaptation KL of θ_K, or with ``outer.meta_loss: all_steps``
    the mean over m of θ_m's).

    At θ_old each KL's gradient with respect to the adapted parameters θ_m vanishes (KL(p‖q) is smallest at
    q = p), so the curvature of the adaptation drops out and its Hessian is J_{≤m}ᵀ F_m J_{≤m} exactly: F_m the
    Fisher matrix of each task's policy at θ_m and J_{≤m} = ∂θ_m/∂θ = Π_{j<m} (I − α_j ⊙ ∇²L_j(θ_j)), α_j the rate
    of inner step j (one α for every step, or per-step rates). Each product then costs two Hessian-vector products
    of the inner loss per inner step and one Fisher-vector product per scored step — second-order autograd instead
    of the third-order double backward of :func:`kl_hvp_direct` (tested equal).
    """
    T = batch.num_tasks
    names = list(theta)
    # α_j of each inner step j, detached (the same tensors for every step unless the rates are per step)
    rates = [learner.meta.alpha.for_params(j) for j in range(len(batch.train))]
    alphas = [[rate[n].detach() for n in names] for rate in rates]
    steps: list[tuple[list[Tensor], list[Tensor]]] = []  # (θ_j leaves, ∇L_j(θ_j) with graph)
    current = {n: v.detach() for n, v in expand_params(theta, T).items()}
    for j, phase in enumerate([] if learner.meta.inner_config.first_order else batch.train):  # first order: J = I
        leaves = {n: v.clone().requires_grad_(True) for n, v in current.items()}
        loss = inner_loss(learner.policy, leaves, phase.episodes, phase.adv, learner.estimator, phase.logp)
        grads = torch.autograd.grad(loss, [leaves[n] for n in names], create_graph=True)
        steps.append(([leaves[n] for n in names], list(grads)))
        current = {n: inner_update(leaves[n], g, a).detach() for n, g, a in zip(names, grads, alphas[j])}
    # Each scored θ_m(θ_old) is what sampled its phase's episodes; the KL terms are weighted as meta_kl averages them.
    scored = learner.scored_phases(batch)
    fisher: dict[int, tuple[list[Tensor], list[Tensor]]] = {}  # m → (θ_m leaves, ∇KL_m / |scored| with graph)
    for m, phase in scored:
        adapted = [phase.params[n].detach().clone().requires_grad_(True) for n in names]
        kl = learner.policy.kl(phase.params, dict(zip(names, adapted)), phase.episodes.obs, phase.episodes.mask)
        fisher[m] = (adapted, list(torch.autograd.grad(kl.mean() / len(scored), adapted, create_graph=True)))

    def inner(a: Sequence[Tensor], b: Sequence[Tensor]) -> Tensor:
        return torch.stack([(x * y).sum() for x, y in zip(a, b)]).sum()

    def hessian(j: int, u: list[Tensor]) -> list[Tensor]:
        leaves, grads = steps[j]
        return list(torch.autograd.grad(inner(grads, u), leaves, retain_graph=True))

    def hvp(v_flat: Tensor) -> Tensor:
        v = unflatten_params(v_flat.detach(), theta)
        tangents = [[v[n].unsqueeze(0).expand(T, *v[n].shape) for n in names]]  # J_{≤m} v for m = 0 … K
        for j in range(len(batch.train)):  # J_j = I − α_j ⊙ H_j (I when first order)
            u = tangents[-1]
            tangents.append(inner_update_jvp(u, alphas[j], partial(hessian, j)) if steps else u)
        w: list[Tensor] | None = None  # Σ_m J_{≤m}ᵀ F_m J_{≤m} v, accumulated from m = K back to 0
        for m in reversed(range(len(tangents))):
            if m in fisher:
                adapted, kl_grads = fisher[m]
                f = list(torch.autograd.grad(inner(kl_grads, tangents[m]), adapted, retain_graph=True))
                w = f if w is None else [a + b for a, b in zip(w, f)]
            if m > 0 and w is not None and steps:  # Jᵀ through step m − 1
                w = inner_update_vjp(w, alphas[m - 1], partial(hessian, m - 1))
        assert w is not None
        return torch.cat([x.sum(dim=0).reshape(-1) for x in w]) + damping * v_flat.detach()

    return hvp


# ------------------------------------------------------------------------------------------------
# ProMP
# ------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class ProMPConfig:
    """ProMP's outer loop [4]; β (the Adam rate) is ``outer.lr``. Where the paper leaves a value open the
    defaults are its authors' (``run_scripts/pro-mp_run_mujoco.py`` of jonasrothfuss/ProMP): 5 Adam steps
    per batch, clip range ε = 0.3, a fixed inner-KL penalty coefficient η = 5·10⁻⁴ (adaptive: halved
    below target/1.5, doubled above 1.5·target, target 0.01)."""

    epochs: int = ranged(5, min=1, doc="Adam steps on each batch of samples (ProMP steps without re-sampling)")
    clip_eps: float = ranged(0.3, min=0.0, max=1.0, min_exclusive=True, doc="clip range of the likelihood ratio")
    kl_penalty: float = ranged(5e-4, min=0.0, doc="initial coefficient of the inner KL penalty")
    adaptive_kl: bool = ranged(False, doc="halve or double the KL coefficient towards kl_target after each batch")
    kl_target: float = ranged(0.01, min=0.0, min_exclusive=True,
                              doc="inner KL the adaptive coefficient steers towards")


def clipped_surrogate(policy: Any, params: Params, phase: Phase, clip_eps: float) -> Tensor:
    """J^CLIP to minimise: mean over tasks of −mean min(r·Â, clip(r, 1−ε, 1+ε)·Â), r = π_params/π_old [4, eq. 6; 5].

    At the sampling policy (r = 1) its value and gradient equal :func:`~agents.maml_pg.surrogate`'s.
    """
    logp = policy.log_prob(params, phase.episodes.obs, phase.episodes.actions)
    ratio = torch.exp(logp - phase.logp)
    objective = torch.min(ratio * phase.adv, ratio.clamp(1.0 - clip_eps, 1.0 + clip_eps) * phase.adv)
    return -masked_mean(objective, phase.episodes.mask, dims=(1, 2)).mean()


def adapt_kl_coefficient(coefficient: float, kl: float, target: float) -> float:
    """ProMP's adaptive penalty [4, §5; as in PPO's adaptive KL, 5, §4]: halve the coefficient when the KL
    is below target/1.5, double it above 1.5·target."""
    if kl < target / 1.5:
        return coefficient / 2.0
    if kl > target * 1.5:
        return coefficient * 2.0
    return coefficient


@dataclasses.dataclass
class ProMPObjective:
    """The ProMP meta-objective at the current θ and its parts."""

    loss: Tensor  # J^CLIP of the adapted policies plus the KL penalty, to minimise
    clipped: Tensor
    inner_kls: Tensor  # (k,): per inner step, the mean over tasks of KL(π_θj_old ‖ π_θj) on that step's data
    clip_fraction: float  # share of validation samples whose ratio is outside [1 − ε, 1 + ε]


class ProMPStep(OuterStep):
    """Proximal Meta-Policy Search [4, Alg. 1]: ``epochs`` Adam steps on one batch of samples of

        J^ProMP(θ) = J^CLIP(θ'(θ)) + mean_j η_j · KL(π_θj_old ‖ π_θj(θ)),

    θ' re-adapted from the current θ at every step with the LVC inner objective (set ``inner.estimator:
    lvc``; importance-weighted to the sampling policy, eq. 5), J^CLIP the clipped likelihood ratio of the
    adapted policies to the ones that sampled the validation episodes (eq. 6), and the penalty keeping the
    pre-update policy near the one whose samples the inner step uses (eq. 7; η fixed or adapted after each
    batch). Each Adam step is one :meth:`~rl_alphamaml.meta.MetaOptimizer.step` of the core, so α may be
    fixed, learned (Meta-SGD) or adapted by its hypergradient, and β by Adam-HD — Alpha-ProMP.
    """

    def __init__(self, config: ProMPConfig, inner_steps: int) -> None:
        self.config = config
        self.kl_coefficients = [config.kl_penalty] * inner_steps

    @classmethod
    def core_optimizer(cls, name: str) -> CoreOptimizer | None:
        """``adam``: each of ProMP's steps is an Adam step of the core with rate β [4]."""
        return "adam"

    @classmethod
    def from_config(cls, config: RLConfig) -> ProMPStep:
        """The step with the run's ``promp:`` settings, one KL coefficient per inner step."""
        return cls(config.promp, config.inner.steps)

    def objective(self, learner: MAMLPG, batch: MetaBatch, first_order: bool | None = None) -> ProMPObjective:
        """J^ProMP at the meta-parameters, differentiable to θ and α."""
        path = learner.adaptation_path(batch, first_order=first_order)
        kls = [learner.policy.kl(phase.params, params, phase.episodes.obs, phase.episodes.mask).mean()
               for params, phase in zip(path, batch.train)]
        params = path[-1]
        clipped = learner.meta_loss(batch, path, partial(clipped_surrogate, clip_eps=self.config.clip_eps))
        inner_kls = torch.stack(kls) if kls else torch.zeros(0, device=clipped.device)
        coefficients = torch.tensor(self.kl_coefficients, dtype=clipped.dtype, device=clipped.device)
        loss = clipped + (coefficients * inner_kls).mean() if kls else clipped
        with torch.no_grad():
            logp = learner.policy.log_prob(params, batch.val.episodes.obs, batch.val.episodes.actions)
            outside = ((logp - batch.val.logp).exp() - 1.0).abs() > self.config.clip_eps
            clip_fraction = float(masked_mean(outside.to(logp.dtype), batch.val.episodes.mask, dims=(0, 1, 2)))
        return ProMPObjective(loss, clipped, inner_kls, clip_fraction)

    def step(self, learner: MAMLPG, batch: MetaBatch) -> dict[str, float]:
        """``promp.epochs`` core steps on :meth:`objective` of the one batch, then the KL coefficients adapted
        (with ``promp.adaptive_kl``) from the inner KLs after the last step [4, Alg. 1]."""
        infos = []
        for epoch in range(self.config.epochs):
            objective = self.objective(learner, batch)
            if epoch == 0:
                before = objective
            infos.append(learner.meta.step(objective.loss))
        after = self.objective(learner, batch, first_order=True)
        inner_kls = after.inner_kls.detach().tolist()
        coefficients = list(self.kl_coefficients)
        if self.config.adaptive_kl:
            self.kl_coefficients = [adapt_kl_coefficient(c, kl, self.config.kl_target)
                                    for c, kl in zip(self.kl_coefficients, inner_kls)]
        out = {
            **infos[-1].scalars(),
            "meta/skipped": float(any(info.skipped for info in infos)),
            "loss/post_adapt": float(before.clipped.detach()),
            "promp/loss_before": float(before.loss.detach()),
            "promp/loss_after": float(after.loss.detach()),
            "promp/clip_fraction": after.clip_fraction,
        }
        if inner_kls:
            out["promp/inner_kl"] = sum(inner_kls) / len(inner_kls)
            out["promp/kl_coefficient"] = sum(coefficients) / len(coefficients)
        return out

    def state_dict(self) -> dict[str, Any]:
        """The KL coefficients, which the adaptive penalty changes from batch to batch."""
        return {"kl_coefficients": list(self.kl_coefficients)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` (a checkpoint from before ProMP kept none: the initial coefficients stay)."""
        if "kl_coefficients" in state:
            self.kl_coefficients = [float(c) for c in state["kl_coefficients"]]


#: ``outer.optimizer`` → its step. One line per outer loop.
OUTER_STEPS: dict[str, type[OuterStep]] = {
    "trpo": TRPOStep,
    "sgd": GradientStep,
    "adam": GradientStep,
    "ngd": NaturalGradientStep,
    "promp": ProMPStep,
}
