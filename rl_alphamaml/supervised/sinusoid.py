"""Sinusoid regression, the classic MAML regression benchmark [1, §5.1].

Each task is ``y = A·sin(x − φ)`` with amplitude ``A ~ U[0.1, 5]``, phase ``φ ~ U[0, π]`` and inputs
``x ~ U[−5, 5]``; the learner sees K = 10 support points, adapts a 1-40-40-1 ReLU MLP by gradient
descent on the mean squared error, and is scored on query points of the same task. All tasks of a
meta-batch are adapted at once (parameters with a leading task dimension, ``torch.func.vmap``).

``kind: sinusoid`` configs: ``configs/sinusoid.yaml`` (MAML: fixed α = 0.01, Adam β = 0.001) and
``configs/sinusoid_alpha.yaml`` (Alpha MAML: α and β adapted by hypergradient descent).

References:
    [1] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from rl_alphamaml import seeding
from rl_alphamaml.compute import resolve_device
from rl_alphamaml.config import ExperimentConfig, TrainConfig, ranged
from rl_alphamaml.evaluation import AdaptationResult
from rl_alphamaml.kind import ExperimentKind
from rl_alphamaml.logging import RunLogger
from rl_alphamaml.meta import (
    InnerConfig,
    MetaOptimizer,
    OuterConfig,
    Params,
    adaptation_curve,
    call_batched,
    expand_params,
)


@dataclasses.dataclass
class SinusoidTaskConfig:
    """The task distribution [1]: amplitude, phase and input ranges, support/query sizes."""

    amplitude: tuple[float, float] = ranged((0.1, 5.0), doc="amplitude range, uniform")
    phase: tuple[float, float] = ranged((0.0, math.pi), doc="phase range, uniform")
    x_range: tuple[float, float] = ranged((-5.0, 5.0), doc="input range, uniform")
    support: int = ranged(10, min=1, doc="K: support points per task")
    query: int = ranged(10, min=1, doc="query points per task")

    def validate(self) -> None:
        for name in ("amplitude", "phase", "x_range"):
            lo, hi = getattr(self, name)
            if not lo < hi:
                raise ValueError(f"{name}: the lower end must be below the upper end, got [{lo}, {hi}]")


@dataclasses.dataclass
class SinusoidEvalConfig:
    """Held-out tasks scored every iteration (``loss/pre_adapt``, ``loss/post_adapt``)."""

    tasks: int = ranged(100, min=1, doc="tasks of the evaluation after training")
    query: int = ranged(100, min=1, doc="query points per held-out task")


@dataclasses.dataclass
class SinusoidConfig(ExperimentConfig):
    """A sinusoid meta-training experiment (``kind: sinusoid``)."""

    kind: Literal["sinusoid"] = "sinusoid"
    hidden: tuple[int, ...] = ranged((40, 40), min=1, doc="hidden layer widths of the regression MLP")
    task: SinusoidTaskConfig = dataclasses.field(default_factory=SinusoidTaskConfig)
    inner: InnerConfig = dataclasses.field(default_factory=lambda: InnerConfig(steps=1, lr=0.01))
    outer: OuterConfig = dataclasses.field(default_factory=lambda: OuterConfig(optimizer="adam", lr=1e-3))
    train: TrainConfig = dataclasses.field(
        default_factory=lambda: TrainConfig(iterations=3000, meta_batch=25, threads=1)
    )
    eval: SinusoidEvalConfig = dataclasses.field(default_factory=SinusoidEvalConfig)


def make_model(hidden: tuple[int, ...], seed: int) -> nn.Module:
    """The MAML regression network: 1 → hidden… → 1 with ReLU."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    width = 1
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers)


@dataclasses.dataclass
class SinusoidBatch:
    """A meta-batch: ``amplitude``/``phase`` (T,), support and query points (T, n, 1)."""

    amplitude: np.ndarray
    phase: np.ndarray
    xs: Tensor
    ys: Tensor
    xq: Tensor
    yq: Tensor

    def tasks(self) -> list[dict[str, float]]:
        return [{"amplitude": float(a), "phase": float(p)} for a, p in zip(self.amplitude, self.phase)]

    def to(self, device: torch.device) -> SinusoidBatch:
        """The batch with its points on ``device``."""
        return dataclasses.replace(self, xs=self.xs.to(device), ys=self.ys.to(device), xq=self.xq.to(device),
                                   yq=self.yq.to(device))


def sample_batch(task: SinusoidTaskConfig, n: int, rng: np.random.Generator, query: int | None = None) -> SinusoidBatch:
    """``n`` sinusoid tasks with their support and query points."""
    amp = rng.uniform(*task.amplitude, size=n)
    phase = rng.uniform(*task.phase, size=n)
    nq = task.query if query is None else query

    def points(k: int) -> tuple[Tensor, Tensor]:
        x = rng.uniform(*task.x_range, size=(n, k, 1))
        y = amp[:, None, None] * np.sin(x - phase[:, None, None])
        return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)

    xs, ys = points(task.support)
    xq, yq = points(nq)
    return SinusoidBatch(amp, phase, xs, ys, xq, yq)


def _task_mse(pred: Tensor, target: Tensor) -> Tensor:
    """Mean squared error of each task: (T,)."""
    return (pred - target).pow(2).mean(dim=(1, 2))


class SinusoidExperiment:
    """MAML / Alpha MAML / Meta-SGD on sinusoid regression through the shared :class:`MetaOptimizer`."""

    def __init__(self, config: SinusoidConfig, run_dir: Path | None = None) -> None:
        self.config = config
        self.device = resolve_device(config.train.device)
        self.model = make_model(config.hidden, config.seed).to(self.device)
        self.meta = MetaOptimizer(self.model, config.inner, config.outer, config.train.max_nonfinite_steps)
        self.eval_batch = sample_batch(config.task, config.eval.tasks, seeding.rng(config.seed, "heldout"),
                                       query=config.eval.query).to(self.device)

    def _support_loss(self, xs: Tensor, ys: Tensor) -> Any:
        # Sum over tasks of each task's mean: every task's inner gradient is its own.
        return lambda p: _task_mse(call_batched(self.model, p, {}, xs), ys).sum()

    def train_iteration(self, iteration: int, logger: RunLogger) -> dict[str, float]:
        cfg = self.config
        batch = sample_batch(cfg.task, cfg.train.meta_batch, seeding.rng(cfg.seed, "train", iteration)).to(self.device)
        params = expand_params(self.meta.params, cfg.train.meta_batch)
        fast = self.meta.adapt(self._support_loss(batch.xs, batch.ys), params)
        query_loss = _task_mse(call_batched(self.model, fast.params, {}, batch.xq), batch.yq).mean()
        info = self.meta.step(query_loss)
        pre, post = self.heldout_losses()
        out = {"loss/pre_adapt": pre, "loss/post_adapt": post, "train/loss_post_adapt": info.loss}
        if fast.inner_losses:
            out["train/loss_pre_adapt"] = fast.inner_losses[0] / cfg.train.meta_batch
        out.update(info.scalars())
        if cfg.inner.lr_shape != "scalar":
            logger.histogram("meta/alpha_values", self.meta.alpha.values().cpu().numpy(), iteration)
        return out

    def losses_after_steps(self, batch: SinusoidBatch, steps: int) -> list[list[float]]:
        """Per-task query MSE after 0…steps inner steps (no meta-gradient; step k with α_{k+1} with per-step rates,
        α_K past the trained steps)."""
        loss_fn = self._support_loss(batch.xs, batch.ys)

        @torch.no_grad()
        def measure(params: Params, k: int) -> list[float]:
            return _task_mse(call_batched(self.model, params, {}, batch.xq), batch.yq).tolist()

        def step(params: Params, k: int, _: list[float]) -> Params:
            return self.meta.adapt(loss_fn, params, steps=1, first_order=True, start=k).params

        return adaptation_curve(expand_params(self.meta.params, batch.xs.shape[0]), steps, measure, step)[1]

    def heldout_losses(self) -> tuple[float, float]:
        per_step = self.losses_after_steps(self.eval_batch, self.config.inner.steps)
        return float(np.mean(per_step[0])), float(np.mean(per_step[-1]))

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "meta": self.meta.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.meta.load_state_dict(state["meta"])


def build(config: SinusoidConfig, run_dir: Path | None) -> SinusoidExperiment:
    return SinusoidExperiment(config, run_dir)


def evaluate(experiment: SinusoidExperiment, tasks: int, steps: int, seed: int) -> AdaptationResult:
    """Query MSE on ``tasks`` new sinusoids after 0…``steps`` inner steps with the learned α."""
    batch = sample_batch(experiment.config.task, tasks, seeding.rng(seed, "evaluate"),
                         query=experiment.config.eval.query).to(experiment.device)
    values = experiment.losses_after_steps(batch, steps)
    return AdaptationResult("mse", values, batch.tasks(), "", 0, seed, higher_is_better=False)


KIND = ExperimentKind("sinusoid", SinusoidConfig, build, evaluate, eval_tasks=100, eval_steps=10)
