"""Policy-gradient MAML (Finn, Abbeel & Levine, ICML 2017, §5.3) with Alpha-MAML rates.

One meta-iteration on a meta-batch of tasks (:meth:`MAMLPG.iteration`):

1. roll out θ on every task (``episodes`` each), fit the linear feature baseline per task, GAE;
2. adapt θ → θ'ᵢ with k inner steps of the REINFORCE/VPG surrogate ``−E[log π(a|s)·Â]`` at rate α
   through the shared core (:class:`rl_alphamaml.meta.MetaOptimizer`); with k > 1 each inner step
   samples fresh episodes from the policy adapted so far (MAML's evaluation protocol);
3. roll out every θ'ᵢ on its own task (validation episodes), advantages again;
4. outer update from the post-adaptation surrogate ``−E[π_θ'(a|s)/π_old(a|s)·Â]``:

   * ``trpo`` (classic MAML-TRPO): conjugate gradient with Hessian-vector products of the KL taken
     *through the inner adaptation*, a step to the max-KL boundary and a backtracking line search
     that checks the surrogate improves and the KL holds (Schulman et al. 2015);
   * ``sgd`` / ``adam`` with rate β, fixed or adapted by hypergradient (Alpha MAML, Behl, Baydin &
     Torr 2019; Baydin et al. 2018).

   α follows its hypergradient ``∂L_val/∂α`` in both cases when ``inner.lr_mode`` is ``hd``.

All tasks are adapted at once: θ is expanded to one copy per task (a leading task dimension), the
inner loss sums the tasks' surrogates so that each task's gradient is its own, and the policy
evaluates every task's parameters in one batched call per time step.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Literal

import torch
from torch import Tensor

from agents.baseline import LinearFeatureBaseline
from agents.policy import GaussianMLPPolicy
from agents.returns import discounted_returns, gae, masked_mean, normalize_advantages
from agents.sampler import Episodes, Sampler
from agents.trpo import flatten_params, hessian_vector_product, set_flat_params_, trpo_step, unflatten_params
from envs.tasks import Task
from rl_alphamaml.config import ranged
from rl_alphamaml.meta import Adapted, MetaOptimizer, Params, adapt, expand_params


@dataclasses.dataclass
class AdvantageConfig:
    """Returns and advantages: discount γ, GAE λ (1.0 = Monte-Carlo return minus baseline, as MAML-RL)."""

    gamma: float = ranged(0.99, min=0.0, max=1.0)
    gae_lambda: float = ranged(1.0, min=0.0, max=1.0)
    normalize: bool = True


@dataclasses.dataclass
class TRPOConfig:
    """MAML-TRPO settings (pytorch-maml-rl: max-KL 0.01, 10 CG iterations, damping 1e-5, ratio 0.8).

    ``subsample`` < 1 computes the conjugate-gradient curvature products (the KL's Hessian through the
    adaptation) on the first ``ceil(subsample · episodes)`` episodes of every task — the
    ``subsample_factor`` of rllab's ``ConjugateGradientOptimizer``, which MAML-RL ran on. The gradient, the
    step's KL bound and the line search still use every episode, so an accepted step satisfies the same
    constraint and TRPO's fixed point is unchanged; only the metric that shapes the direction is estimated
    from fewer samples.
    """

    max_kl: float = ranged(0.01, min=0.0, min_exclusive=True)
    cg_iters: int = ranged(10, min=1)
    cg_damping: float = ranged(1e-5, min=0.0)
    ls_max_steps: int = ranged(15, min=1)
    ls_backtrack_ratio: float = ranged(0.8, min=0.0, max=0.999, min_exclusive=True)
    hvp: Literal["fisher", "direct"] = "fisher"  # Jᵀ F J (fast, exact at θ_old) or third-order autograd
    subsample: float = ranged(1.0, min=0.0, max=1.0, min_exclusive=True,
                              doc="fraction of each task's episodes the curvature products use")


def advantages(episodes: Episodes, cfg: AdvantageConfig, baseline: LinearFeatureBaseline) -> Tensor:
    """GAE advantages (T, H, E) with a linear feature baseline fitted per task to the returns."""
    returns = discounted_returns(episodes.rewards, cfg.gamma, episodes.mask)
    values = baseline.fit_predict(episodes.obs, returns, episodes.mask)
    adv = gae(episodes.rewards, values, cfg.gamma, cfg.gae_lambda, episodes.mask)
    if cfg.normalize:
        adv = normalize_advantages(adv, episodes.mask)
    return adv.detach()


Estimator = Literal["vpg", "lvc"]


def inner_loss(
    policy: GaussianMLPPolicy, params: Params, episodes: Episodes, adv: Tensor, estimator: Estimator = "vpg"
) -> Tensor:
    """The inner surrogate summed over tasks (each task's gradient is its own).

    * ``vpg`` — Σᵢ −mean log π_θᵢ(a|s)·Â, the REINFORCE surrogate of MAML-RL (Finn et al. 2017). Its
      second derivative lacks the score-function term E[∇log π ∇log πᵀ Â] of the true objective's Hessian,
      so the meta-gradient through the adaptation is biased (Rothfuss et al. 2019, §4).
    * ``lvc`` — the low-variance curvature objective of ProMP (Rothfuss, Lee, Clavera, Asfour & Abbeel,
      ICLR 2019, §5, eq. 5): per time step π_θ(a|s)/⊥π_θ(a|s)·Â, ⊥ stopping the gradient. Written here as
      −mean (π/⊥π − 1 + ⊥log π)·Â, so that its value and gradient equal VPG's at the sampling policy while
      its Hessian, ∇²log π + ∇log π ∇log πᵀ weighted by Â, adds the score-function term.
    """
    logp = policy.log_prob(params, episodes.obs, episodes.actions)
    if estimator == "lvc":
        fixed = logp.detach()
        weight = torch.exp(logp - fixed) - 1.0 + fixed
    elif estimator == "vpg":
        weight = logp
    else:
        raise ValueError(f"unknown estimator {estimator!r}; choose vpg or lvc")
    return -masked_mean(weight * adv, episodes.mask, dims=(1, 2)).sum()


def surrogate(policy: GaussianMLPPolicy, params: Params, episodes: Episodes, adv: Tensor, old_logp: Tensor) -> Tensor:
    """The post-adaptation objective: mean over tasks of −mean ratio·Â (ratio = 1 where sampled)."""
    logp = policy.log_prob(params, episodes.obs, episodes.actions)
    return -masked_mean(torch.exp(logp - old_logp) * adv, episodes.mask, dims=(1, 2)).mean()


@dataclasses.dataclass
class InnerData:
    """What an iteration sampled: each inner step's episodes and advantages, the validation batch."""

    train: list[tuple[Episodes, Tensor]]
    val: Episodes
    val_adv: Tensor
    val_params: Params  # θ'ᵢ at sampling time (detached, batched): π_old of the surrogate and KL
    val_old_logp: Tensor

    def subsample(self, fraction: float) -> InnerData:
        """The same data restricted to the first ``ceil(fraction · E)`` episodes of every task (E: episodes per
        task; episodes are i.i.d., so the first ones are a random subset). ``fraction`` 1 returns ``self``."""
        episodes = self.val.obs.shape[2]
        keep = max(1, math.ceil(fraction * episodes))
        if keep >= episodes:
            return self

        def cut(e: Episodes) -> Episodes:
            return Episodes(e.obs[:, :, :keep], e.actions[:, :, :keep], e.rewards[:, :, :keep], e.mask[:, :, :keep])

        return InnerData([(cut(e), a[:, :, :keep]) for e, a in self.train], cut(self.val), self.val_adv[:, :, :keep],
                         self.val_params, self.val_old_logp[:, :, :keep])


class MAMLPG:
    """The meta-learner: a Gaussian MLP policy, its :class:`MetaOptimizer`, a sampler and the baseline.

    ``outer`` is ``"trpo"``, ``"sgd"`` or ``"adam"`` (the last two through ``meta``'s outer optimizer);
    ``estimator`` the inner surrogate (:func:`inner_loss`: ``vpg`` or ProMP's ``lvc``).
    """

    def __init__(
        self,
        policy: GaussianMLPPolicy,
        meta: MetaOptimizer,
        sampler: Sampler,
        outer: str,
        adv_config: AdvantageConfig,
        trpo_config: TRPOConfig,
        estimator: Estimator = "vpg",
    ) -> None:
        self.policy = policy
        self.estimator = estimator
        self.meta = meta
        self.sampler = sampler
        self.outer = outer
        self.adv_config = adv_config
        self.trpo_config = trpo_config
        self.baseline = LinearFeatureBaseline()
        #: each task's mean episode return in the last iteration, by phase (``pre_adapt``, ``post_adapt``, …)
        self.last_task_returns: dict[str, Tensor] = {}

    def adapt_step(self, params: Params, episodes: Episodes, adv: Tensor, first_order: bool | None = None,
                   lr: float | None = None) -> Adapted:
        """One inner step θ → θ − α∇L for every task (batched params), with the loss it descended; α is the
        meta-optimizer's, or the scalar ``lr`` when given (an evaluation schedule, see :meth:`adapt_params`)."""
        loss = partial(inner_loss, self.policy, episodes=episodes, adv=adv, estimator=self.estimator)
        if lr is None:
            return self.meta.adapt(loss, params, steps=1, first_order=first_order)
        fo = self.meta.inner_config.first_order if first_order is None else first_order
        return adapt(params, loss, dict.fromkeys(params, torch.tensor(float(lr))), 1, first_order=fo)

    def adapt_from(self, theta: Params, train: Sequence[tuple[Episodes, Tensor]], num_tasks: int,
                   first_order: bool | None = None) -> Params:
        """θ'ᵢ for ``num_tasks`` tasks from θ by replaying the recorded inner steps (differentiable to θ and α)."""
        params = expand_params(theta, num_tasks)
        for episodes, adv in train:
            params = self.adapt_step(params, episodes, adv, first_order).params
        return params

    def iteration(self, tasks: Sequence[Task], seed: Sequence[int]) -> dict[str, float]:
        """One meta-iteration on ``tasks``; ``seed`` names the random stream. Returns the log scalars."""
        k = self.meta.inner_config.steps
        T = len(tasks)
        timing = {"sampling": 0.0, "adaptation": 0.0, "outer": 0.0}
        env_steps = 0
        started = time.perf_counter()
        env_before, policy_before = self.sampler.env_seconds, self.sampler.policy_seconds
        params = expand_params(self.meta.params, T)
        train: list[tuple[Episodes, Tensor]] = []
        out: dict[str, float] = {}
        for j in range(k + 1):
            t0 = time.perf_counter()
            episodes = self.sampler.sample(self.policy, params, tasks, (*seed, j))
            timing["sampling"] += time.perf_counter() - t0
            env_steps += episodes.num_steps
            task_returns = episodes.task_returns()
            self.last_task_returns["pre_adapt" if j == 0 else "post_adapt" if j == k else f"post_adapt_step{j}"] = (
                task_returns)
            ret = float(task_returns.mean())
            if j == 0:
                out["returns/pre_adapt"] = ret
            elif j < k:
                out[f"returns/post_adapt_step{j}"] = ret
            else:
                out["returns/post_adapt"] = ret
            t0 = time.perf_counter()
            adv = advantages(episodes, self.adv_config, self.baseline)
            if j < k:
                train.append((episodes, adv))
                step = self.adapt_step(params, episodes, adv)
                out["loss/pre_adapt" if j == 0 else f"loss/inner_step{j}"] = step.inner_losses[0] / T
                params = step.params
            timing["adaptation"] += time.perf_counter() - t0
        val_params = {n: p.detach() for n, p in params.items()}
        with torch.no_grad():
            old_logp = self.policy.log_prob(val_params, episodes.obs, episodes.actions)
        data = InnerData(train, episodes, adv, val_params, old_logp)
        t0 = time.perf_counter()
        loss = surrogate(self.policy, params, episodes, adv, old_logp)
        if self.outer == "trpo":
            out.update(self._trpo_step(loss, data))
        else:
            out.update(self.meta.step(loss).scalars())
        timing["outer"] = time.perf_counter() - t0
        total = time.perf_counter() - started
        out["loss/post_adapt"] = float(loss.detach())
        with torch.no_grad():
            out["policy/std"] = float(self.policy.log_std.exp().mean())
        out.update({f"time/{name}": sec for name, sec in timing.items()})
        out["time/sampling_env"] = self.sampler.env_seconds - env_before
        out["time/sampling_policy"] = self.sampler.policy_seconds - policy_before
        out["time/iteration"] = total
        out["time/env_steps_per_second"] = env_steps / max(timing["sampling"], 1e-9)
        out["time/env_steps"] = float(env_steps)
        return out

    def _trpo_step(self, loss: Tensor, data: InnerData) -> dict[str, float]:
        """MAML-TRPO on θ (in place); α by its hypergradient from the same meta-gradient."""
        cfg = self.trpo_config
        theta = self.meta.params
        grads = self.meta.gradients(loss)
        if not grads.is_finite():
            info = self.meta.apply(grads, update_theta=False)
            return {"trpo/accepted": 0.0, **info.scalars()}

        def loss_and_kl(flat: Tensor) -> tuple[Tensor, Tensor]:
            p = {n: v.detach().requires_grad_(True) for n, v in unflatten_params(flat, theta).items()}
            adapted = self.adapt_from(p, data.train, data.val.obs.shape[0], first_order=True)
            with torch.no_grad():
                new_loss = surrogate(self.policy, adapted, data.val, data.val_adv, data.val_old_logp)
                kl = self.policy.kl(data.val_params, adapted, data.val.obs, data.val.mask).mean()
            return new_loss, kl

        make_hvp = self.kl_hvp if cfg.hvp == "fisher" else self.kl_hvp_direct
        hvp = make_hvp(theta, data.subsample(cfg.subsample), cfg.cg_damping)
        g = flatten_params(grads.theta)
        new_flat, result = trpo_step(
            g, hvp, loss_and_kl, flatten_params(theta).detach(), cfg.max_kl, cg_iters=cfg.cg_iters,
            max_backtracks=cfg.ls_max_steps, ratio=cfg.ls_backtrack_ratio, old_loss=grads.loss,
        )
        set_flat_params_(theta, new_flat)
        info = self.meta.apply(grads, update_theta=False)
        return {
            **info.scalars(),
            "trpo/accepted": float(result.accepted),
            "trpo/kl": result.kl,
            "trpo/step_fraction": result.step_frac,
            "trpo/backtracks": float(result.backtracks),
            "trpo/improvement": result.improvement,
            "trpo/expected_improvement": result.expected_improvement,
        }

    def kl_hvp_direct(self, theta: Params, data: InnerData, damping: float) -> Callable[[Tensor], Tensor]:
        """v ↦ (∇²_θ KL(π_old ‖ π_θ'(θ)) + damping·I) v by double backward through the adaptation.

        The textbook form (and pytorch-maml-rl's): third-order autograd through the inner steps.
        :meth:`kl_hvp` gives the same product at θ_old much faster; this one is kept as its reference.
        """

        def kl_fn(p: Mapping[str, Tensor]) -> Tensor:
            adapted = self.adapt_from(dict(p), data.train, data.val.obs.shape[0])
            return self.policy.kl(data.val_params, adapted, data.val.obs, data.val.mask).mean()

        return hessian_vector_product(kl_fn, theta, damping=damping)

    def kl_hvp(self, theta: Params, data: InnerData, damping: float) -> Callable[[Tensor], Tensor]:
        """v ↦ (H + damping·I) v with H the Hessian of the mean post-adaptation KL at θ = θ_old.

        At θ_old the KL's gradient with respect to the adapted parameters θ' vanishes (KL(p‖q) is
        smallest at q = p), so the curvature of the adaptation drops out and H = Jᵀ F J exactly:
        F the Fisher matrix of each task's policy at θ'ᵢ and J = ∂θ'/∂θ = Π_j (I − α ⊙ ∇²L_j(θ_j)).
        Each product then costs two Hessian-vector products of the inner loss per inner step and one
        Fisher-vector product — second-order autograd instead of the third-order double backward of
        :meth:`kl_hvp_direct` (tested equal).
        """
        T = data.val.obs.shape[0]
        alpha = self.meta.alpha.for_params()
        names = list(theta)
        first_order = self.meta.inner_config.first_order
        steps: list[tuple[list[Tensor], list[Tensor]]] = []  # (θ_j leaves, ∇L_j(θ_j) with graph)
        current = {n: v.detach() for n, v in expand_params(theta, T).items()}
        for episodes, adv in ([] if first_order else data.train):  # first order: J = I
            leaves = {n: v.clone().requires_grad_(True) for n, v in current.items()}
            loss = inner_loss(self.policy, leaves, episodes, adv, self.estimator)
            grads = torch.autograd.grad(loss, [leaves[n] for n in names], create_graph=True)
            steps.append(([leaves[n] for n in names], list(grads)))
            current = {n: (leaves[n] - alpha[n] * g).detach() for n, g in zip(names, grads)}
        # θ'(θ_old) is what the validation episodes were sampled with.
        adapted = {n: v.detach().clone().requires_grad_(True) for n, v in data.val_params.items()}
        kl = self.policy.kl(data.val_params, adapted, data.val.obs, data.val.mask).mean()
        kl_grads = torch.autograd.grad(kl, [adapted[n] for n in names], create_graph=True)
        alphas = [alpha[n].detach() for n in names]

        def inner(a: Sequence[Tensor], b: Sequence[Tensor]) -> Tensor:
            return torch.stack([(x * y).sum() for x, y in zip(a, b)]).sum()

        def hessian(j: int, u: list[Tensor]) -> list[Tensor]:
            leaves, grads = steps[j]
            return list(torch.autograd.grad(inner(grads, u), leaves, retain_graph=True))

        def hvp(v_flat: Tensor) -> Tensor:
            v = unflatten_params(v_flat.detach(), theta)
            u = [v[n].unsqueeze(0).expand(T, *v[n].shape) for n in names]
            for j in range(len(steps)):  # J v = J_k … J_1 v, J_j = I − α ⊙ H_j
                u = [x - a * h for x, a, h in zip(u, alphas, hessian(j, u))]
            u = list(torch.autograd.grad(inner(kl_grads, u), [adapted[n] for n in names], retain_graph=True))  # F u
            for j in reversed(range(len(steps))):  # Jᵀ w = J_1ᵀ … J_kᵀ w, J_jᵀ = I − H_j (α ⊙ ·)
                u = [x - h for x, h in zip(u, hessian(j, [a * x for a, x in zip(alphas, u)]))]
            return torch.cat([x.sum(dim=0).reshape(-1) for x in u]) + damping * v_flat.detach()

        return hvp

    def adaptation_curve(self, tasks: Sequence[Task], steps: int, seed: Sequence[int],
                         inner_lrs: Sequence[float] | None = None) -> list[list[float]]:
        """Per-task mean return after 0…``steps`` inner steps, sampling fresh episodes after each step."""
        return self.adapt_params(tasks, steps, seed, inner_lrs)[1]

    def adapt_params(self, tasks: Sequence[Task], steps: int, seed: Sequence[int],
                     inner_lrs: Sequence[float] | None = None) -> tuple[Params, list[list[float]]]:
        """θ'ᵢ after ``steps`` inner steps on every task (batched, detached) and the returns along the way.

        What ``rl-alphamaml evaluate`` measures (:meth:`adaptation_curve` is its second value): fresh episodes
        from the policy adapted so far before every first-order step, the stream ``(*seed, j)`` at step j.
        Step j uses the meta-learned α, or with ``inner_lrs`` the scalar rate ``inner_lrs[j]`` (the last one
        for every later step) — e.g. ``(0.5, 0.25)``, the MAML paper's navigation evaluation.
        """
        if inner_lrs is not None and (not inner_lrs or any(not lr > 0 for lr in inner_lrs)):
            raise ValueError(f"inner_lrs must be positive rates, got {list(inner_lrs)}")
        theta = expand_params(self.meta.params, len(tasks))
        params = {n: p.detach().clone().requires_grad_(True) for n, p in theta.items()}
        values: list[list[float]] = []
        for j in range(steps + 1):
            episodes = self.sampler.sample(self.policy, params, tasks, (*seed, j))
            values.append(episodes.task_returns().tolist())
            if j < steps:
                adv = advantages(episodes, self.adv_config, self.baseline)
                lr = None if inner_lrs is None else inner_lrs[min(j, len(inner_lrs) - 1)]
                adapted = self.adapt_step(params, episodes, adv, first_order=True, lr=lr).params
                params = {n: p.detach().requires_grad_(True) for n, p in adapted.items()}
        return {n: p.detach() for n, p in params.items()}, values
