"""Policy-gradient MAML [1, §5.3] with Alpha-MAML rates.

One meta-iteration (:meth:`MAMLPG.iteration`) is two calls, as stable-baselines3 splits
``collect_rollouts`` from ``train``:

1. :meth:`MAMLPG.collect` → a :class:`MetaBatch`: roll out θ on every task (``episodes`` each), fit the
   linear feature baseline per task, GAE; adapt θ → θ'ᵢ with k inner steps of the inner surrogate
   (:func:`inner_loss`) at rate α, sampling fresh episodes after each step (MAML's protocol); roll out
   every θ'ᵢ on its own task (the validation phase). Only values are kept, no autograd graph.
2. an outer step (:class:`agents.outer_steps.OuterStep`, chosen by ``outer.optimizer``) replays the
   adaptation from θ with the graph it needs (:meth:`MAMLPG.adaptation_path`) and updates θ on the meta-loss
   (:meth:`MAMLPG.meta_loss`: the surrogate after the last inner step, or with ``outer.meta_loss: all_steps`` the
   mean over every step's, MAML++'s multi-step loss [4]) — MAML-TRPO, SGD/Adam with rate β (Alpha MAML [2]: β and
   α by hypergradient), natural-gradient descent with rate β, or ProMP [3]. α follows its hypergradient
   ``∂L_val/∂α`` whenever ``inner.lr_mode`` is ``hd``.

All tasks are adapted at once: θ is expanded to one copy per task (a leading task dimension), the
inner loss sums the tasks' surrogates so that each task's gradient is its own, and the policy
evaluates every task's parameters in one batched call per time step.

References:
    [1] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
    [2] Behl, Baydin & Torr, "Alpha MAML: Adaptive Model-Agnostic Meta-Learning", 2019.
        https://arxiv.org/abs/1905.07435
    [3] Rothfuss, Lee, Clavera, Asfour & Abbeel, "ProMP: Proximal Meta-Policy Search", ICLR 2019.
        https://arxiv.org/abs/1810.06784
    [4] Antoniou, Edwards & Storkey, "How to train your MAML", ICLR 2019. https://arxiv.org/abs/1810.09502
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Literal, get_args

import torch
from torch import Tensor

from agents.baseline import LinearFeatureBaseline
from agents.policy import GaussianMLPPolicy
from agents.returns import discounted_returns, gae, masked_mean, normalize_advantages
from agents.sampler import Episodes, EpisodeSampler
from envs.tasks import Task
from rl_alphamaml.config import ranged
from rl_alphamaml.meta import Adapted, MetaOptimizer, Params, adapt, adaptation_curve, expand_params

if TYPE_CHECKING:
    from agents.outer_steps import OuterStep


@dataclasses.dataclass
class AdvantageConfig:
    """Returns and advantages: discount γ, GAE λ (1.0 = Monte-Carlo return minus baseline, as MAML-RL)."""

    gamma: float = ranged(0.99, min=0.0, max=1.0, doc="discount")
    gae_lambda: float = ranged(1.0, min=0.0, max=1.0, doc="GAE lambda (1: return minus baseline)")
    normalize: bool = ranged(True, doc="normalise advantages per task")


def advantages(episodes: Episodes, cfg: AdvantageConfig, baseline: LinearFeatureBaseline) -> Tensor:
    """GAE advantages (T, H, E) with a linear feature baseline fitted per task to the returns."""
    returns = discounted_returns(episodes.rewards, cfg.gamma, episodes.mask)
    values = baseline.fit_predict(episodes.obs, returns, episodes.mask)
    adv = gae(episodes.rewards, values, cfg.gamma, cfg.gae_lambda, episodes.mask)
    if cfg.normalize:
        adv = normalize_advantages(adv, episodes.mask)
    return adv.detach()


Estimator = Literal["vpg", "lvc"]
#: the meta-objective: the post-adaptation surrogate after the last inner step (MAML [1]), or the mean of every inner
#: step's (MAML++'s multi-step loss [4])
MetaLoss = Literal["last_step", "all_steps"]


def inner_loss(
    policy: GaussianMLPPolicy, params: Params, episodes: Episodes, adv: Tensor, estimator: Estimator = "vpg",
    old_logp: Tensor | None = None,
) -> Tensor:
    """The inner surrogate summed over tasks (each task's gradient is its own).

    * ``vpg`` — Σᵢ −mean log π_θᵢ(a|s)·Â, the REINFORCE surrogate of MAML-RL [1]. Its
      second derivative lacks the score-function term E[∇log π ∇log πᵀ Â] of the true objective's Hessian,
      so the meta-gradient through the adaptation is biased [3, §4].
    * ``lvc`` — the low-variance curvature objective of ProMP [3, §5, eq. 5]: per time step
      π_θ(a|s)/π_θo(a|s)·Â with π_θo the policy that sampled the episodes (``old_logp``, its
      log-probabilities; by default the current ones with the gradient stopped). Written here as
      −mean (π/π_θo − 1 + log π_θo)·Â, so that at the sampling policy its value and gradient equal VPG's
      while its Hessian, ∇²log π + ∇log π ∇log πᵀ weighted by Â, adds the score-function term; away from
      it the gradient is importance-weighted.
    """
    logp = policy.log_prob(params, episodes.obs, episodes.actions)
    if estimator == "lvc":
        fixed = logp.detach() if old_logp is None else old_logp
        weight = torch.exp(logp - fixed) - 1.0 + fixed
    elif estimator == "vpg":
        weight = logp
    else:
        raise ValueError(f"unknown estimator {estimator!r}; choose vpg or lvc")
    return -masked_mean(weight * adv, episodes.mask, dims=(1, 2)).sum()


@dataclasses.dataclass
class Phase:
    """One phase of sampling in a meta-iteration: the episodes every task got, their advantages, the
    (batched, detached) parameters that sampled them — π_old — and the log-probabilities under those."""

    episodes: Episodes
    adv: Tensor
    params: Params
    logp: Tensor

    def head(self, episodes: int) -> Phase:
        """The same phase restricted to the first ``episodes`` episodes of every task."""
        return Phase(self.episodes.head(episodes), self.adv[:, :, :episodes], self.params,
                     self.logp[:, :, :episodes])


def surrogate(policy: GaussianMLPPolicy, params: Params, phase: Phase) -> Tensor:
    """The post-adaptation objective: mean over tasks of −mean ratio·Â, ratio = π_params/π_old (1 where sampled)."""
    logp = policy.log_prob(params, phase.episodes.obs, phase.episodes.actions)
    return -masked_mean(torch.exp(logp - phase.logp) * phase.adv, phase.episodes.mask, dims=(1, 2)).mean()


@dataclasses.dataclass
class MetaBatch:
    """What :meth:`MAMLPG.collect` sampled for one meta-iteration: one :class:`Phase` per inner step
    (``train``) and the validation phase sampled by the adapted parameters θ'ᵢ(θ_old) (``val``), with each
    phase's per-task mean returns, its per-task success rates (``success``; empty for a family that reports no
    success) and the inner losses (mean per task) for logging."""

    tasks: Sequence[Task]
    train: list[Phase]
    val: Phase
    returns: dict[str, Tensor]
    inner_losses: list[float]
    success: dict[str, Tensor] = dataclasses.field(default_factory=dict)

    @property
    def num_tasks(self) -> int:
        """Tasks in the meta-batch."""
        return len(self.tasks)

    @property
    def env_steps(self) -> int:
        """Environment steps sampled for this batch, all phases."""
        return sum(p.episodes.num_steps for p in [*self.train, self.val])

    def subsample(self, fraction: float) -> MetaBatch:
        """The same data restricted to the first ``ceil(fraction · E)`` episodes of every task (E: episodes per
        task; episodes are i.i.d., so the first ones are a random subset). ``fraction`` 1 returns ``self``."""
        episodes = self.val.episodes.obs.shape[2]
        keep = max(1, math.ceil(fraction * episodes))
        if keep >= episodes:
            return self
        return dataclasses.replace(self, train=[p.head(keep) for p in self.train], val=self.val.head(keep))

    def scalars(self) -> dict[str, float]:
        """The returns, success rates (families that report success) and inner losses under their TensorBoard
        tags."""
        out = {f"returns/{phase}": float(values.mean()) for phase, values in self.returns.items()}
        out.update({f"success/{phase}": float(values.mean()) for phase, values in self.success.items()})
        for j, loss in enumerate(self.inner_losses):
            out["loss/pre_adapt" if j == 0 else f"loss/inner_step{j}"] = loss
        return out


class Stopwatch:
    """Seconds spent per named phase of an iteration: ``with watch("sampling"): …``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start


def phase_name(step: int, steps: int) -> str:
    """``pre_adapt``, ``post_adapt_step{j}`` … ``post_adapt``: the name of the phase sampled after ``step`` inner
    steps of ``steps``."""
    return "pre_adapt" if step == 0 else "post_adapt" if step == steps else f"post_adapt_step{step}"


class MAMLPG:
    """The meta-learner: a Gaussian MLP policy, its :class:`MetaOptimizer`, a sampler, the baseline and the
    outer step (:mod:`agents.outer_steps`); ``estimator`` is the inner surrogate (:func:`inner_loss`).

    Policy-gradient MAML as in [1, §5.3]: α and β fixed or by hypergradient (Alpha MAML [2]); the outer step
    MAML-TRPO, SGD/Adam, natural-gradient descent or ProMP [3]; the meta-loss scores the last inner step or every
    one (``meta_loss``, [4]).

    Example (what :meth:`iteration` does, without the timing)::

        batch = learner.collect(tasks, seed=(0, iteration))     # sample, adapt, sample again
        scalars = learner.outer_step.step(learner, batch)       # update θ (and α, β)
    """

    def __init__(
        self,
        policy: GaussianMLPPolicy,
        meta: MetaOptimizer,
        sampler: EpisodeSampler,
        outer_step: OuterStep,
        adv_config: AdvantageConfig,
        estimator: Estimator = "vpg",
        meta_loss: MetaLoss = "last_step",
    ) -> None:
        if meta_loss not in get_args(MetaLoss):
            raise ValueError(f"unknown meta-loss {meta_loss!r}; choose {' or '.join(get_args(MetaLoss))}")
        self.policy = policy
        self.estimator = estimator
        self.meta_loss_steps = meta_loss
        self.meta = meta
        self.sampler = sampler
        self.outer_step = outer_step
        self.adv_config = adv_config
        self.baseline = LinearFeatureBaseline()
        #: each task's mean episode return in the last iteration, by phase (``pre_adapt``, ``post_adapt``, …)
        self.last_task_returns: dict[str, Tensor] = {}
        #: each task's success rate in the last iteration, by phase (empty for a family that reports no success)
        self.last_task_success: dict[str, Tensor] = {}

    def collect(self, tasks: Sequence[Task], seed: Sequence[int], watch: Stopwatch | None = None) -> MetaBatch:
        """Sample and adapt on ``tasks`` (phase j samples the stream ``(*seed, j)``); see :class:`MetaBatch`."""
        watch = Stopwatch() if watch is None else watch
        k = self.meta.inner_config.steps
        # A copy: the phases keep the parameters that sampled them while the outer step updates θ in place.
        params = expand_params({n: p.detach().clone() for n, p in self.meta.params.items()}, len(tasks))
        phases: list[Phase] = []
        returns: dict[str, Tensor] = {}
        success: dict[str, Tensor] = {}
        inner_losses: list[float] = []
        for j in range(k + 1):
            with watch("sampling"):
                episodes = self.sampler.sample(self.policy, params, tasks, (*seed, j)).to(params["log_std"])
            with watch("adaptation"):
                returns[phase_name(j, k)] = episodes.task_returns()
                if (rates := episodes.task_success()) is not None:
                    success[phase_name(j, k)] = rates
                with torch.no_grad():
                    logp = self.policy.log_prob(params, episodes.obs, episodes.actions)
                phase = Phase(episodes, advantages(episodes, self.adv_config, self.baseline), params, logp)
                phases.append(phase)
                if j < k:
                    leaves = {n: p.detach().requires_grad_(True) for n, p in params.items()}
                    step = self.adapt_step(leaves, phase, first_order=True, step=j)
                    inner_losses.append(step.inner_losses[0] / len(tasks))
                    params = {n: p.detach() for n, p in step.params.items()}
        return MetaBatch(tasks, phases[:-1], phases[-1], returns, inner_losses, success)

    def iteration(self, tasks: Sequence[Task], seed: Sequence[int]) -> dict[str, float]:
        """One meta-iteration on ``tasks``; ``seed`` names the random stream. Returns the log scalars."""
        watch = Stopwatch()
        started = time.perf_counter()
        env_before, policy_before = self.sampler.env_seconds, self.sampler.policy_seconds
        batch = self.collect(tasks, seed, watch)
        with watch("outer"):
            out = {**batch.scalars(), **self.outer_step.step(self, batch)}
        self.last_task_returns = batch.returns
        self.last_task_success = batch.success
        with torch.no_grad():
            out["policy/std"] = float(self.policy.std().mean())
        out.update({f"time/{name}": watch.seconds[name] for name in ("sampling", "adaptation", "outer")})
        out["time/sampling_env"] = self.sampler.env_seconds - env_before
        out["time/sampling_policy"] = self.sampler.policy_seconds - policy_before
        out["time/iteration"] = time.perf_counter() - started
        out["time/env_steps_per_second"] = batch.env_steps / max(watch.seconds["sampling"], 1e-9)
        out["time/env_steps"] = float(batch.env_steps)
        return out

    def adapt_step(self, params: Params, phase: Phase, first_order: bool | None = None,
                   lr: float | None = None, step: int = 0) -> Adapted:
        """Inner step ``step`` (0-based) θ_j → θ_j − α∇L for every task (batched params) on ``phase``, with the
        loss it descended; α is the meta-optimizer's (that step's, with per-step rates: α_K past the last trained
        step), or the scalar ``lr`` when given (an evaluation schedule, see :meth:`adapt_params`)."""
        loss = partial(inner_loss, self.policy, episodes=phase.episodes, adv=phase.adv, estimator=self.estimator,
                       old_logp=phase.logp)
        if lr is None:
            return self.meta.adapt(loss, params, steps=1, first_order=first_order, start=step)
        fo = self.meta.inner_config.first_order if first_order is None else first_order
        return adapt(params, loss, dict.fromkeys(params, torch.tensor(float(lr))), 1, first_order=fo)

    def adapt(self, batch: MetaBatch, theta: Params | None = None, first_order: bool | None = None) -> Params:
        """θ'ᵢ(θ) for every task of ``batch`` by replaying its inner steps from ``theta`` (default: the
        meta-parameters), differentiable to θ and α (second order unless ``first_order``)."""
        return self.adaptation_path(batch, theta, first_order)[-1]

    def adaptation_path(self, batch: MetaBatch, theta: Params | None = None,
                        first_order: bool | None = None) -> list[Params]:
        """θ₀ … θ_K of every task of ``batch`` (θ₀: ``theta``, by default the meta-parameters, one copy per task;
        θ_K = :meth:`adapt`), replaying its inner steps, differentiable to θ and α."""
        path = [expand_params(self.meta.params if theta is None else theta, batch.num_tasks)]
        for j, phase in enumerate(batch.train):
            path.append(self.adapt_step(path[-1], phase, first_order, step=j).params)
        return path

    def scored_phases(self, batch: MetaBatch) -> list[tuple[int, Phase]]:
        """The (j, phase j) pairs the meta-loss scores, θ_j against the episodes θ_j(θ_old) sampled: (K, the
        validation phase) — MAML's [1] — or, with ``meta_loss`` ``all_steps``, every j = 1 … K (phase j is inner
        step j's training data for j < K) — MAML++'s multi-step loss [4]."""
        steps = len(batch.train)
        if self.meta_loss_steps == "last_step" or steps <= 1:
            return [(steps, batch.val)]
        return list(enumerate([*batch.train[1:], batch.val], start=1))

    def meta_loss(self, batch: MetaBatch, path: Sequence[Params],
                  objective: Callable[[GaussianMLPPolicy, Params, Phase], Tensor] = surrogate) -> Tensor:
        """The meta-loss of the adaptation ``path`` (:meth:`adaptation_path`): the mean over :meth:`scored_phases` of
        ``objective`` (the post-adaptation surrogate by default) of θ_j on phase j — θ_K's on the validation
        episodes (MAML [1]) or, with ``all_steps``, every step's with equal weights (MAML++ [4]), so that every step,
        not only the last, is judged, and each per-step rate's hypergradient ∂L/∂α_j with it."""
        return torch.stack([objective(self.policy, path[j], phase) for j, phase in self.scored_phases(batch)]).mean()

    def meta_kl(self, batch: MetaBatch, path: Sequence[Params]) -> Tensor:
        """The mean KL(π_θj(θ_old) ‖ π_θj) over :meth:`scored_phases`, each on its phase's episodes: what MAML-TRPO's
        trust region bounds [1] — every policy whose episodes the meta-loss importance-weights."""
        return torch.stack([self.policy.kl(phase.params, path[j], phase.episodes.obs, phase.episodes.mask).mean()
                            for j, phase in self.scored_phases(batch)]).mean()

    def adaptation_curve(self, tasks: Sequence[Task], steps: int, seed: Sequence[int],
                         inner_lrs: Sequence[float] | None = None) -> list[list[float]]:
        """Per-task mean return after 0…``steps`` inner steps, sampling fresh episodes after each step."""
        return self.adapt_params(tasks, steps, seed, inner_lrs)[1]

    def adaptation_metrics(self, tasks: Sequence[Task], steps: int, seed: Sequence[int],
                           inner_lrs: Sequence[float] | None = None) -> dict[str, list[list[float]]]:
        """:meth:`adaptation_curve` as ``{"return": …}``, with ``"success_rate"`` beside it (each task's share of
        successful episodes after 0…``steps`` inner steps) for a family that reports success, and ``"action_std"``
        (each task's σ after 0…``steps`` steps, :meth:`adapt_and_sample`)."""
        _, sampled, stds = self.adapt_and_sample(tasks, steps, seed, inner_lrs)
        out = {"return": [episodes.task_returns().tolist() for episodes in sampled], "action_std": stds}
        rates = [episodes.task_success() for episodes in sampled]
        if all(r is not None for r in rates):
            out["success_rate"] = [r.tolist() for r in rates if r is not None]
        return out

    def adapt_params(self, tasks: Sequence[Task], steps: int, seed: Sequence[int],
                     inner_lrs: Sequence[float] | None = None) -> tuple[Params, list[list[float]]]:
        """θ'ᵢ after ``steps`` inner steps on every task (batched, detached) and the returns along the way.

        What ``rl-alphamaml evaluate`` measures (:meth:`adaptation_curve` is its second value): fresh episodes
        from the policy adapted so far before every first-order step, the stream ``(*seed, j)`` at step j.
        Step j uses the meta-learned α (with per-step rates α_{j+1}, and α_K for every step past the K trained
        ones), or with ``inner_lrs`` the scalar rate ``inner_lrs[j]`` (the last one for every later step) — e.g.
        ``(0.5, 0.25)``, the MAML paper's navigation evaluation.
        """
        adapted, sampled, _ = self.adapt_and_sample(tasks, steps, seed, inner_lrs)
        return adapted, [episodes.task_returns().tolist() for episodes in sampled]

    def adapt_and_sample(self, tasks: Sequence[Task], steps: int, seed: Sequence[int],
                         inner_lrs: Sequence[float] | None = None
                         ) -> tuple[Params, list[Episodes], list[list[float]]]:
        """:meth:`adapt_params`, returning the episodes sampled after 0…``steps`` inner steps and, beside them, the
        σ each task's policy sampled them with (the mean over action dimensions; the inner steps move ``log_std``
        with the mean's weights, so the adapted policy's action noise is its own)."""
        stds: list[list[float]] = []

        def measure(params: Params, j: int) -> Episodes:
            with torch.no_grad():
                stds.append(self.policy.std(params).mean(-1).tolist())
            return self.sampler.sample(self.policy, params, tasks, (*seed, j)).to(params["log_std"])

        adapted, sampled = adaptation_curve(expand_params(self.meta.params, len(tasks)), steps, measure,
                                            self.evaluation_step(inner_lrs))
        return adapted, sampled, stds

    def evaluation_step(self, inner_lrs: Sequence[float] | None = None
                        ) -> Callable[[Params, int, Episodes], Params]:
        """Test-time inner step j on the episodes just sampled (first order, values only): the meta-learned α of
        step j, or ``inner_lrs[j]`` (the last one for every later step); see :meth:`adapt_params`."""
        if inner_lrs is not None and (not inner_lrs or any(not lr > 0 for lr in inner_lrs)):
            raise ValueError(f"inner_lrs must be positive rates, got {list(inner_lrs)}")

        def step(params: Params, j: int, episodes: Episodes) -> Params:
            adv = advantages(episodes, self.adv_config, self.baseline)
            with torch.no_grad():
                logp = self.policy.log_prob(params, episodes.obs, episodes.actions)
            phase = Phase(episodes, adv, {n: p.detach() for n, p in params.items()}, logp)
            lr = None if inner_lrs is None else inner_lrs[min(j, len(inner_lrs) - 1)]
            return self.adapt_step(params, phase, first_order=True, lr=lr, step=j).params

        return step
