"""``kind: rl`` — meta-train a Gaussian MLP policy on a task family with MAML-TRPO or Alpha MAML.

The config (``configs/<family>.yaml`` for MAML-TRPO, ``configs/<family>_alpha.yaml`` for Alpha MAML)
selects the family (``env.id``), the policy, the sampler, advantages, the inner loop (α) and the outer
loop (``outer.optimizer``: ``trpo``, ``sgd``/``adam`` with β, ``ngd`` (β along the natural gradient) or ``promp``;
see :mod:`agents.outer_steps`).
Hyperparameters default to the MAML paper's [1]: a 100×100 tanh policy, α = 0.1, one inner
step, 20 episodes per task, MAML-TRPO with max-KL 0.01, γ = 0.99, the linear feature baseline.

``rl-alphamaml evaluate RUN_DIR`` adapts the trained policy to new tasks with K inner steps, sampling
fresh episodes after every step, and reports the mean return after 0…K steps; with ``--video`` it
also renders a few of those tasks before and after adaptation (:func:`videos`, :mod:`agents.video`).

References:
    [1] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import torch

import envs
from agents import metaworld_protocol, video
from agents.maml_pg import MAMLPG, AdvantageConfig, Estimator, MetaLoss
from agents.outer_steps import OUTER_STEPS, BetaRepairConfig, ProMPConfig, TRPOConfig
from agents.policy import GaussianMLPPolicy
from agents.sampler import EpisodeSampler, Sampler
from envs.ant import AntModel
from envs.metaworld import MetaWorldFamily, check_env_name
from envs.tasks import Task
from rl_alphamaml import seeding
from rl_alphamaml.compute import resolve_device
from rl_alphamaml.config import ExperimentConfig, TrainConfig, ranged
from rl_alphamaml.errors import UserError
from rl_alphamaml.evaluation import AdaptationResult
from rl_alphamaml.kind import ExperimentKind
from rl_alphamaml.logging import RunLogger
from rl_alphamaml.meta import RATE_MODES, InnerConfig, MetaOptimizer, OuterConfig
from rl_alphamaml.rendering import Clip


@dataclasses.dataclass
class EnvConfig:
    """The task family: a registered id (``rl_alphamaml/HalfCheetahVel-v0``), an optional horizon; for the
    navigation families an optional ``goal_tolerance`` that ends an episode at the goal (the references' 0.01);
    for the Ant families the simulator ``model`` (``v5``: gymnasium's Ant-v5; ``maml2017``: the Ant the MAML
    paper ran, see :mod:`envs.ant`) and ``terminate_when_unhealthy`` (null: the model's default); for the MuJoCo
    families ``task_in_observation``, the MAML paper's oracle (with ``inner.steps: 0``: a policy told its task); for
    the Meta-World families (:mod:`envs.metaworld`) ``benchmark_seed``, the seed of the benchmark's goals, and for
    ML1 ``env_name``, its environment class."""

    id: str = ranged("rl_alphamaml/Navigation2D-v0", doc="the task family: a registered id, full or short")
    horizon: int | None = ranged(None, min=1, doc="episode length; null: the family's (MAML-RL's) horizon")
    goal_tolerance: float | None = ranged(None, min=0.0, min_exclusive=True,
                                          doc="navigation: end an episode within this distance of the goal")
    model: AntModel | None = ranged(
        None, doc="Ant: the simulator model, v5 (gymnasium's Ant-v5) or maml2017 (the MAML paper's); null: v5")
    terminate_when_unhealthy: bool | None = ranged(
        None, doc="Ant: end an episode when the torso leaves z in [0.2, 1]; null: the model's default")
    task_in_observation: bool = ranged(
        False, doc="MuJoCo families: append the task to the observation (the MAML paper's oracle)")
    env_name: str | None = ranged(
        None, doc="Meta-World ML1: the environment class, e.g. reach-v3 or push-v3; null: reach-v3")
    benchmark_seed: int | None = ranged(
        None, min=0, max=2**32 - 2, doc="Meta-World: the seed metaworld draws the benchmark's goals with; null: 0")

    def validate(self) -> None:
        """Resolve ``id`` to the full registered id; refuse options the family does not take, and a family whose
        optional dependency is missing (one ``rl-alphamaml: error:`` line saying what to install)."""
        try:
            self.id = envs.resolve_id(self.id)
        except envs.UnknownEnvError as err:
            raise ValueError(f"id: {err}") from None
        family: Any = envs.family_class(self.id)
        try:
            family.check_dependencies()
        except envs.MissingDependencyError as err:
            raise UserError(f"env.id {self.id}: {err}") from None
        metaworld = issubclass(family, MetaWorldFamily)
        if self.benchmark_seed is not None and not metaworld:
            raise ValueError(f"benchmark_seed: applies to the Meta-World families, not {self.id}")
        if self.env_name is not None:
            if not issubclass(family, envs.MetaWorldML1Env):
                raise ValueError(f"env_name: applies to Meta-World ML1 (rl_alphamaml/MetaWorldML1-v0), not {self.id}")
            try:
                check_env_name(self.env_name)
            except ValueError as err:
                raise ValueError(f"env_name: {err}") from None
        if self.goal_tolerance is not None and not issubclass(family, envs.Navigation2DEnv):
            raise ValueError(f"goal_tolerance: applies to the navigation families, not {self.id}")
        for name in ("model", "terminate_when_unhealthy"):
            if getattr(self, name) is not None and not issubclass(family, envs.ant.ANT_FAMILIES):
                raise ValueError(f"{name}: applies to the Ant families, not {self.id}")
        if self.task_in_observation and not issubclass(family, envs.mujoco_family.MujocoFamily):
            raise ValueError(f"task_in_observation: applies to the MuJoCo families, not {self.id}")

    def kwargs(self) -> dict[str, Any]:
        """The family's constructor arguments this config sets (for ``envs.make`` and ``envs.BatchedEnv``)."""
        names = ("goal_tolerance", "model", "terminate_when_unhealthy", "env_name", "benchmark_seed")
        kwargs = {name: getattr(self, name) for name in names if getattr(self, name) is not None}
        if self.task_in_observation:
            kwargs["task_in_observation"] = True
        return kwargs


@dataclasses.dataclass
class PolicyConfig:
    """The Gaussian MLP policy (MAML-RL: two hidden layers of 100, tanh, σ = 1 at the start) and how its
    samples become the environment's actions.

    The environment receives ``clip(action_scale · a, low, high)`` for a sample ``a`` (``clip_actions``:
    clipped to the action space; the control cost is charged on that action), while log-probabilities are
    taken of ``a`` — the convention of the MAML-RL and ProMP reference implementations, whose policies
    act with exploration noise 0.1 in torque units (:meth:`agents.policy.GaussianMLPPolicy.env_action`).
    ``action_scale: 1`` with ``clip_actions: false`` sends the raw sample (MuJoCo clamps it, the cost
    sees it unclipped), the behaviour before this setting existed. ``min_std`` floors σ in the policy's own units
    (before ``action_scale``); the default never binds in practice.
    """

    hidden: tuple[int, ...] = ranged((100, 100), min=1, doc="hidden layer widths of the policy MLP")
    activation: Literal["tanh", "relu"] = ranged("tanh", doc="hidden-layer nonlinearity")
    init_log_std: float = ranged(0.0, doc="initial log standard deviation of the Gaussian (0: sigma = 1)")
    min_std: float = ranged(1e-6, min=0.0, min_exclusive=True, max=1e6,
                            doc="floor on the Gaussian's sigma, a lower bound on exploration (1e-6: pytorch-maml-rl's)")
    action_scale: float = ranged(0.1, min=0.0, min_exclusive=True, max=1e6,
                                 doc="environment action = clip(action_scale · sampled action)")
    clip_actions: bool = ranged(True, doc="clip the environment action to the action space")


@dataclasses.dataclass
class SamplerConfig:
    """Episodes per task and per phase, and where the simulators run.

    ``backend: local`` steps every slot in this process (``threads`` MuJoCo threads, 0: every CPU);
    ``backend: ray`` spreads the tasks over ``workers`` Ray actors (0: one per cluster CPU; ``threads``
    then counts per actor, 0 meaning 1) on the cluster at ``address`` (``auto`` or ``HOST:PORT``; null
    starts a local Ray instance), re-sampling a dead worker's slice up to ``max_retries`` times.
    ``max_slots`` (0: no limit) steps at most that many slots at once, the tasks in passes (the same episodes:
    :class:`agents.sampler.Sampler`) — for Meta-World, whose every slot is a simulator of ~20 MB.
    """

    episodes: int = ranged(20, min=1, doc="episodes per task and per sampling phase")
    threads: int = ranged(0, min=0, doc="MuJoCo threads (per Ray actor with backend ray); 0: every CPU (1 per actor)")
    backend: Literal["local", "ray"] = ranged("local", doc="where the simulators run: this process or Ray actors")
    address: str | None = ranged(None, doc="Ray cluster: auto or HOST:PORT; null starts a local Ray instance")
    workers: int = ranged(0, min=0, doc="Ray actors; 0: one per cluster CPU")
    max_retries: int = ranged(3, min=0, doc="re-samples of a slice whose Ray worker died, per phase")
    max_slots: int = ranged(0, min=0, doc="slots stepped at once (per Ray actor); fewer samples the tasks in passes, "
                                          "the same episodes with less simulator memory; 0: all")

    def validate(self) -> None:
        """Refuse Ray settings (``address``, ``workers``) on the local backend, and a simulator backend that
        ``$RL_ALPHAMAML_BATCHED_BACKEND`` names but this MuJoCo cannot run (:func:`envs.resolve_backend`)."""
        if self.backend == "local" and (self.address is not None or self.workers):
            raise ValueError("address and workers apply to backend ray; set sampler.backend=ray to use them")
        try:
            envs.resolve_backend()
        except envs.BackendError as err:  # the environment's setting, not the config's: no key to name
            raise UserError(str(err)) from None

    def build(self, env_id: str, num_tasks: int, horizon: int | None,
              env_kwargs: Mapping[str, Any] | None = None) -> EpisodeSampler:
        """The sampler this config describes (the Ray backend is imported only when chosen)."""
        if self.backend == "ray":
            from agents.ray_sampler import RaySampler

            return RaySampler(env_id, num_tasks, self.episodes, horizon=horizon, address=self.address,
                              workers=self.workers, threads=self.threads or 1, max_retries=self.max_retries,
                              env_kwargs=env_kwargs, max_slots=self.max_slots)
        return Sampler(env_id, num_tasks, self.episodes, threads=self.threads or None, horizon=horizon,
                       env_kwargs=env_kwargs, max_slots=self.max_slots)


@dataclasses.dataclass
class RLInnerConfig(InnerConfig):
    """The inner loop (α, steps, …) and the surrogate it descends: ``estimator`` ``vpg`` (MAML-RL's REINFORCE
    surrogate) or ``lvc`` (ProMP's low-variance curvature objective; see :func:`agents.maml_pg.inner_loss`)."""

    estimator: Estimator = ranged("vpg", doc="inner surrogate: vpg (MAML-RL) or lvc (ProMP's low-variance curvature)")


@dataclasses.dataclass
class RLOuterConfig(OuterConfig):
    """The outer loop, one of :data:`agents.outer_steps.OUTER_STEPS`: ``trpo`` (MAML-TRPO; β unused),
    ``sgd``/``adam`` with β (Alpha MAML proper), ``ngd`` (SGD with β along the natural gradient, its curvature
    settings under ``trpo``) or ``promp`` (ProMP: Adam with β, settings under ``promp``), on the meta-loss
    ``meta_loss`` names (:meth:`agents.maml_pg.MAMLPG.meta_loss`)."""

    optimizer: str = ranged("trpo", doc="outer step: " + ", ".join(OUTER_STEPS))  # type: ignore[assignment]
    meta_loss: MetaLoss = ranged(
        "last_step", doc="meta-objective: the surrogate after the last inner step (MAML) or the mean of every step's "
                         "(all_steps, MAML++'s multi-step loss)")

    def validate(self) -> None:
        """Refuse an outer step that is not registered, then check the core settings."""
        if self.optimizer not in OUTER_STEPS:
            raise ValueError(f"optimizer: must be one of {', '.join(OUTER_STEPS)}, got {self.optimizer!r}")
        super().validate()

    @property
    def uses_beta(self) -> bool:
        """Whether the outer step updates θ with the core's optimizer and its rate β."""
        return OUTER_STEPS[self.optimizer].core_optimizer(self.optimizer) is not None

    def core(self) -> OuterConfig:
        """The core's outer config; for a step that uses no β (TRPO) the core's optimizer only carries α's
        state."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(OuterConfig)}
        values["optimizer"] = OUTER_STEPS[self.optimizer].core_optimizer(self.optimizer) or "sgd"
        return OuterConfig(**values)


@dataclasses.dataclass
class RLConfig(ExperimentConfig):
    """A meta-RL experiment (``kind: rl``)."""

    kind: Literal["rl"] = "rl"
    env: EnvConfig = dataclasses.field(default_factory=EnvConfig)
    policy: PolicyConfig = dataclasses.field(default_factory=PolicyConfig)
    sampler: SamplerConfig = dataclasses.field(default_factory=SamplerConfig)
    advantage: AdvantageConfig = dataclasses.field(default_factory=AdvantageConfig)
    inner: RLInnerConfig = dataclasses.field(default_factory=lambda: RLInnerConfig(steps=1, lr=0.1))
    outer: RLOuterConfig = dataclasses.field(default_factory=RLOuterConfig)
    trpo: TRPOConfig = dataclasses.field(default_factory=TRPOConfig)
    promp: ProMPConfig = dataclasses.field(default_factory=ProMPConfig)
    beta_repair: BetaRepairConfig = dataclasses.field(default_factory=BetaRepairConfig)
    train: TrainConfig = dataclasses.field(
        default_factory=lambda: TrainConfig(iterations=500, meta_batch=20, checkpoint_every=50, threads=1)
    )

    def validate(self) -> None:
        """Refuse rate modes the chosen outer step cannot use (an adapted β without β, Meta-SGD without β)."""
        with_beta = ", ".join(name for name, step in OUTER_STEPS.items() if step.core_optimizer(name))
        if not self.outer.uses_beta and self.outer.lr_mode == "hd":
            radius = " (or trpo.max_kl_mode: hd, the trust region's radius by hypergradient)" \
                if self.outer.optimizer == "trpo" else ""
            raise ValueError(f"outer.lr_mode: `hd` adapts β, which a {self.outer.optimizer.upper()} outer loop does "
                             f"not use; choose outer.optimizer {with_beta} for Alpha MAML's β{radius}")
        if not self.outer.uses_beta and RATE_MODES[self.inner.lr_mode].meta_parameter:
            raise ValueError(f"inner.lr_mode: `{self.inner.lr_mode}` makes α a meta-parameter, which needs an outer "
                             f"optimizer with β: {with_beta}")
        OUTER_STEPS[self.outer.optimizer].validate(self)


class RLExperiment:
    """MAML-PG on one task family; see :class:`agents.maml_pg.MAMLPG`."""

    hparam_metrics = ("returns/pre_adapt", "returns/post_adapt", "meta/alpha", "meta/beta")

    def __init__(self, config: RLConfig, run_dir: Path | None = None, num_tasks: int | None = None) -> None:
        self.config = config
        num_tasks = config.train.meta_batch if num_tasks is None else num_tasks
        self.sampler = config.sampler.build(config.env.id, num_tasks, config.env.horizon, config.env.kwargs())
        torch.manual_seed(config.seed)
        space = self.sampler.action_space
        self.device = resolve_device(config.train.device)
        self.policy = GaussianMLPPolicy(
            self.sampler.obs_dim, self.sampler.act_dim, config.policy.hidden, config.policy.activation,
            config.policy.init_log_std, math.log(config.policy.min_std), action_scale=config.policy.action_scale,
            action_bounds=(space.low, space.high) if config.policy.clip_actions else None).to(self.device)
        self.meta = MetaOptimizer(self.policy, config.inner, config.outer.core(), config.train.max_nonfinite_steps)
        outer_step = OUTER_STEPS[config.outer.optimizer].from_config(config)
        self.learner = MAMLPG(self.policy, self.meta, self.sampler, outer_step, config.advantage,
                              estimator=config.inner.estimator, meta_loss=config.outer.meta_loss)

    def train_iteration(self, iteration: int, logger: RunLogger | None) -> dict[str, float]:
        """Meta-iteration ``iteration``: draw its tasks, sample, adapt and take the outer step (see
        :meth:`agents.maml_pg.MAMLPG.iteration`); returns the scalars to log, and logs the per-task histograms."""
        cfg = self.config
        tasks = self.sampler.sample_tasks(seeding.rng(cfg.seed, "tasks", iteration))
        out = self.learner.iteration(tasks, (cfg.seed, iteration))
        if logger is None:
            return out
        # The distribution over tasks of the mean return before and after adaptation (the scalars are its mean).
        for phase, values in self.learner.last_task_returns.items():
            logger.histogram(f"returns/{phase}_per_task", values.cpu().numpy(), iteration)
        for phase, values in self.learner.last_task_success.items():  # families that report success
            logger.histogram(f"success/{phase}_per_task", values.cpu().numpy(), iteration)
        if cfg.inner.lr_shape != "scalar":
            logger.histogram("meta/alpha_values", self.meta.alpha.values().cpu().numpy(), iteration)
        return out

    def state_dict(self) -> dict[str, Any]:
        """The policy, the meta-optimizer (α, β and their state) and the outer step's state, for a checkpoint."""
        return {"policy": self.policy.state_dict(), "meta": self.meta.state_dict(),
                "outer_step": self.learner.outer_step.state_dict()}

    def close(self) -> None:
        """Release the sampler's simulators (and its Ray workers with ``sampler.backend: ray``)."""
        self.sampler.close()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved."""
        self.policy.load_state_dict(state["policy"])
        self.meta.load_state_dict(state["meta"])
        self.learner.outer_step.load_state_dict(state.get("outer_step", {}))


def build(config: RLConfig, run_dir: Path | None) -> RLExperiment:
    """The ``kind: rl`` experiment of ``config`` (the runner's entry point for this kind)."""
    return RLExperiment(config, run_dir)


def held_out_tasks(experiment: RLExperiment, n: int, seed: int) -> list[Task]:
    """The ``n`` held-out tasks of ``seed`` — a stream apart from training's, and the family's test split where it
    has one (:meth:`envs.base.TaskFamily.sample_held_out_tasks`: Meta-World's) — that ``evaluate``, ``compare`` and
    ``evaluate --video`` all use."""
    return experiment.sampler.sample_tasks(seeding.rng(seed, "evaluate"), n, held_out=True)


#: ``evaluate``'s protocols: ``maml``, the mean return (and the success rate of a family that reports success) of
#: sampled episodes after 0…K steps; ``metaworld``, Meta-World's (:mod:`agents.metaworld_protocol`)
PROTOCOLS = ("maml", "metaworld")


def evaluate(experiment: RLExperiment, tasks: int, steps: int, seed: int, episodes: int | None = None,
             inner_lrs: Sequence[float] | None = None, protocol: str = "maml") -> AdaptationResult:
    """Mean return of ``tasks`` new tasks after 0…``steps`` inner steps (fresh episodes per step), and beside it
    the success rate for a family that reports success; with ``protocol="metaworld"`` Meta-World's evaluation
    (:func:`agents.metaworld_protocol.evaluate`), whose headline is the success rate.

    ``episodes`` per task and per step defaults to the run's ``sampler.episodes`` (Meta-World's protocol: its 10
    adaptation episodes); ``inner_lrs`` replaces the meta-learned α step by step (see
    :meth:`agents.maml_pg.MAMLPG.adapt_params`). When ``tasks`` or ``episodes`` differ from the experiment's
    sampler, that sampler is closed (its Ray workers would otherwise hold the CPUs the new ones need) and one of
    the requested size is used.
    """
    if protocol not in PROTOCOLS:
        raise UserError(f"--protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    config = experiment.config
    if protocol == "metaworld":
        metaworld_protocol.check_family(config.env.id)
        episodes = metaworld_protocol.ADAPTATION_EPISODES if episodes is None else episodes
    episodes = config.sampler.episodes if episodes is None else episodes
    if tasks != experiment.sampler.num_tasks or episodes != experiment.sampler.episodes:
        state = experiment.state_dict()
        experiment.close()
        resized = dataclasses.replace(config, sampler=dataclasses.replace(config.sampler, episodes=episodes))
        experiment = RLExperiment(resized, num_tasks=tasks)
        experiment.load_state_dict(state)
        try:
            return evaluate(experiment, tasks, steps, seed, episodes, inner_lrs, protocol)
        finally:
            experiment.close()
    task_list = held_out_tasks(experiment, tasks, seed)
    stream = (seed, seeding.EVALUATION_SAMPLING)
    extra: dict[str, Any] = {"env": config.env.id, "protocol": protocol, "episodes_per_task": episodes,
                             "alpha": experiment.meta.alpha.mean()}
    if (alphas := experiment.meta.alpha_steps()) is not None:
        extra["alpha_steps"] = alphas  # α₁ … α_K; evaluation steps past K take α_K
    if inner_lrs is not None:
        extra["inner_lrs"] = list(inner_lrs)
    if protocol == "metaworld":
        metrics = metaworld_protocol.evaluate(experiment.learner, config.env.id, task_list, steps, stream,
                                              config.env.horizon, config.env.kwargs(), inner_lrs,
                                              config.sampler.max_slots)
        extra.update(adaptation_episodes=episodes, evaluation_episodes=metaworld_protocol.EVALUATION_EPISODES,
                     scoring_episode_length=metrics.pop("length"))
        headline = "success_rate"
    else:
        metrics = experiment.learner.adaptation_metrics(task_list, steps, stream, inner_lrs)
        # the adapted policies' action noise, per step: a diagnostic kept in the JSON, not a score with its own columns
        extra["action_std"] = [sum(stds) / len(stds) for stds in metrics.pop("action_std")]
        headline = "return"
    values = metrics.pop(headline)
    return AdaptationResult(headline, values, [t.to_dict() for t in task_list], "", 0, seed, higher_is_better=True,
                            extra=extra, other_metrics=metrics)


def videos(experiment: RLExperiment, tasks: int, steps: int, seed: int, count: int, episodes: int | None = None,
           inner_lrs: Sequence[float] | None = None) -> list[Clip]:
    """Before|after clips of the first ``count`` of the ``tasks`` tasks ``evaluate`` draws with ``seed``.

    Rendering is tried first (:func:`agents.video.check_rendering` raises
    :class:`~rl_alphamaml.rendering.RenderingUnavailableError` with how to enable it). The tasks are adapted
    by their own experiment of ``count`` tasks on the local sampler backend (a few tasks need no Ray
    workers), with ``episodes`` and ``inner_lrs`` as :func:`evaluate` takes them; see
    :func:`agents.video.adaptation_clips`.
    """
    config = experiment.config
    video.check_rendering(config.env.id)
    local = dataclasses.replace(config, sampler=dataclasses.replace(
        config.sampler, backend="local", address=None, workers=0,
        episodes=config.sampler.episodes if episodes is None else episodes))
    small = RLExperiment(local, num_tasks=count)
    try:
        small.load_state_dict(experiment.state_dict())
        task_list = held_out_tasks(small, tasks, seed)[:count]
        return video.adaptation_clips(small.learner, config.env.id, task_list, steps, seed, config.env.horizon,
                                      env_kwargs=config.env.kwargs(), inner_lrs=inner_lrs)
    finally:
        small.close()


KIND = ExperimentKind("rl", RLConfig, build, evaluate, eval_tasks=40, eval_steps=3, videos=videos,
                      evaluate_options=("episodes", "inner_lrs", "protocol"))
