"""Omniglot few-shot classification meta-trained on the shared core (``kind: omniglot``).

MAML [1, §5.2], its first-order variant (FOMAML), Alpha MAML [2] (α and β adapted by hypergradient descent)
and Meta-SGD [3] (a learned per-parameter α) — all through one :class:`~rl_alphamaml.meta.MetaOptimizer`: its
``adapt`` is the inner loop, its ``gradients``/``apply`` the outer step. The configuration chooses the method
(``inner.lr_mode``: ``fixed`` / ``hd`` / ``learned``, ``inner.first_order``, ``outer.lr_mode``).

Tasks are N-way K-shot problems [4] over Omniglot characters (split and sampler in
:mod:`rl_alphamaml.supervised.omniglot`), the network MAML's 4-block conv net
(:class:`~rl_alphamaml.supervised.convnet.ConvNet`) with batch statistics.

All tasks of a pass are evaluated at once by :func:`~rl_alphamaml.supervised.convnet.forward_tasks`: fast
weights carry a leading task dimension (:func:`~rl_alphamaml.meta.expand_params`) and the convolutions become
one grouped convolution (``groups = tasks``); batch norm on the ``(batch, tasks × channels, H, W)`` layout
normalises each task's channels over that task's own examples, exactly as a per-task loop does (tested in
float64 against the loop, meta-gradient and α hypergradient included). A meta-batch is cut into passes of
``compute.tasks_per_pass`` tasks, ``compute.workers`` threads run the passes concurrently (each with
single-threaded torch ops), and the passes' meta-gradients are summed in order. Passes of a few tasks
amortise the per-op cost of the small support-set convolutions yet keep the activations in the CPU
caches; independent passes on threads use two cores without the
per-op OpenMP barriers that make small convolutions crawl on a busy machine (``docs/omniglot.md``,
"Speed"; ``benchmarks/omniglot_speed.py``).

The run folder holds the character split (``omniglot_split.json``), reloaded on resume and evaluation.
Randomness comes from per-iteration streams of ``seed`` (:mod:`rl_alphamaml.seeding`): iteration *i*
always meta-trains on the same tasks, so a killed and resumed run logs the same numbers.

Example::

    from pathlib import Path
    from rl_alphamaml.cli import load_experiment_config
    from rl_alphamaml.runner import prepare_run_dir, train

    config, module = load_experiment_config(Path("configs/omniglot_5w1s.yaml"), ["train.iterations=100"])
    run_dir = prepare_run_dir(config, "runs/omniglot_try")
    train(config, module.build, run_dir)
    result = module.evaluate(module.build(config, run_dir), tasks=600, steps=3, seed=1)

References:
    [1] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
    [2] Behl, Baydin & Torr, "Alpha MAML: Adaptive Model-Agnostic Meta-Learning", 2019.
        https://arxiv.org/abs/1905.07435
    [3] Li, Zhou, Chen & Li, "Meta-SGD: Learning to Learn Quickly for Few-Shot Learning", 2017.
        https://arxiv.org/abs/1707.09835
    [4] Vinyals, Blundell, Lillicrap, Kavukcuoglu & Wierstra, "Matching Networks for One Shot Learning",
        NeurIPS 2016. https://arxiv.org/abs/1606.04080
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from rl_alphamaml import seeding
from rl_alphamaml.atomic import write_text_atomic
from rl_alphamaml.compute import resolve_device, reuse_freed_memory, thread_pool
from rl_alphamaml.config import ExperimentConfig, TrainConfig, ranged
from rl_alphamaml.errors import CheckpointError, UserError
from rl_alphamaml.evaluation import AdaptationResult, write_outputs
from rl_alphamaml.kind import ExperimentKind
from rl_alphamaml.logging import RunLogger
from rl_alphamaml.meta import (
    InnerConfig,
    MetaGradients,
    MetaOptimizer,
    OuterConfig,
    Params,
    adaptation_curve,
    expand_params,
)
from rl_alphamaml.stats import format_ci, json_safe, mean_ci95
from rl_alphamaml.supervised.convnet import ConvNet, forward_tasks
from rl_alphamaml.supervised.omniglot import (
    NUM_DRAWERS,
    FewShotTask,
    OmniglotDataError,
    OmniglotDataset,
    OmniglotSplit,
    OmniglotTaskSampler,
    Part,
    load_omniglot,
    make_split,
)

SPLIT_FILE = "omniglot_split.json"
ACCURACY_FILE = "accuracy.json"


# ------------------------------------------------------------------------------------------- config


@dataclasses.dataclass
class OmniglotDataConfig:
    """Where the images are, how characters are split and what a task looks like."""

    root: str | None = ranged(
        None, doc="folder with images_background[.zip] and images_evaluation[.zip]; null: $RL_ALPHAMAML_OMNIGLOT"
    )
    cache_dir: str | None = ranged(None, doc="preprocessed-array cache; null: $RL_ALPHAMAML_CACHE/omniglot or ~/.cache")
    protocol: Literal["vinyals", "lake"] = ranged(
        "vinyals", doc="character split: MAML/Vinyals (1200/423 with rotations) or Lake's alphabets")
    split_seed: int = ranged(0, min=0, max=seeding.MAX_SEED,
                             doc="seed of the character split (fixed, independent of the run's seed)")
    num_val: int = ranged(100, min=1, doc="validation characters carved from the meta-training characters")
    n_way: int = ranged(5, min=2, doc="N: classes per task")
    k_shot: int = ranged(1, min=1, doc="K: support examples per class")
    q_query: int = ranged(15, min=1, doc="query examples per class of meta-training tasks")

    def validate(self) -> None:
        if self.k_shot + self.q_query > NUM_DRAWERS:
            raise ValueError(f"q_query: k_shot + q_query = {self.k_shot + self.q_query} exceeds the "
                             f"{NUM_DRAWERS} drawings of an Omniglot character")


@dataclasses.dataclass
class OmniglotModelConfig:
    """MAML's 4-block conv net (:class:`~rl_alphamaml.supervised.convnet.ConvNet`), batch statistics always."""

    hidden_channels: int = ranged(64, min=1, doc="filters per conv block")
    num_blocks: int = ranged(4, min=1, doc="conv blocks")
    downsample: Literal["stride", "maxpool"] = ranged("stride", doc="stride-2 convs (MAML Omniglot) or max pooling")
    init: Literal["maml", "pytorch"] = ranged("maml", doc="weight initialisation")


@dataclasses.dataclass
class OmniglotEvalConfig:
    """Validation during training and the test-time protocol."""

    val_every: int = ranged(100, min=0, doc="validate every N iterations (and at the last); 0: never")
    val_tasks: int = ranged(100, min=1, doc="fixed validation tasks (validation characters)")
    test_steps: int = ranged(3, min=0, doc="inner steps at validation and test time (MAML: 3 for 5-way, 5 for 20-way)")
    q_query: int = ranged(15, min=1, doc="query examples per class of validation and test tasks")


@dataclasses.dataclass
class OmniglotComputeConfig:
    """How the work is laid out on the CPU. Speed only: results agree to rounding (docs/omniglot.md, "Speed")."""

    tasks_per_pass: int = ranged(8, min=1, doc="tasks adapted together in one batched (grouped-conv) pass")
    workers: int = ranged(
        2, min=1, doc="threads that run passes concurrently, each with single-threaded ops; 1: the main thread"
    )
    reuse_memory: bool = ranged(
        True, doc="keep freed memory in the process (glibc mallopt) instead of page-faulting it back")


@dataclasses.dataclass
class OmniglotConfig(ExperimentConfig):
    """An Omniglot meta-training experiment (``kind: omniglot``)."""

    kind: Literal["omniglot"] = "omniglot"
    data: OmniglotDataConfig = dataclasses.field(default_factory=OmniglotDataConfig)
    model: OmniglotModelConfig = dataclasses.field(default_factory=OmniglotModelConfig)
    inner: InnerConfig = dataclasses.field(default_factory=lambda: InnerConfig(steps=1, lr=0.4))
    outer: OuterConfig = dataclasses.field(default_factory=lambda: OuterConfig(optimizer="adam", lr=1e-3))
    train: TrainConfig = dataclasses.field(
        default_factory=lambda: TrainConfig(iterations=3000, meta_batch=32, checkpoint_every=250, threads=1)
    )
    eval: OmniglotEvalConfig = dataclasses.field(default_factory=OmniglotEvalConfig)
    compute: OmniglotComputeConfig = dataclasses.field(default_factory=OmniglotComputeConfig)

    def validate(self) -> None:
        if self.data.k_shot + self.eval.q_query > NUM_DRAWERS:
            raise ValueError(f"eval.q_query: data.k_shot + eval.q_query = {self.data.k_shot + self.eval.q_query} "
                             f"exceeds the {NUM_DRAWERS} drawings of an Omniglot character")


class SupportLoss:
    """The inner loss of a pass: the sum over tasks of each task's mean support loss (each inner gradient its own).

    Remembers the logits of its first evaluation, the support set before adaptation (the ``pre_adapt`` metrics).
    """

    def __init__(self, net: ConvNet, xs: Tensor, ys: Tensor) -> None:
        self.net, self.xs, self.ys = net, xs, ys
        self.first_logits: Tensor | None = None

    def __call__(self, params: Params) -> Tensor:
        logits = forward_tasks(self.net, params, self.xs)
        if self.first_logits is None:
            self.first_logits = logits.detach()
        return task_losses(logits, self.ys).sum()


@dataclasses.dataclass(frozen=True)
class PassMetrics:
    """Sums over a pass's tasks: support loss and accuracy before adaptation, query loss and accuracy after."""

    loss_pre: float
    accuracy_pre: float
    loss_post: float
    accuracy_post: float

    @staticmethod
    def sum(parts: Sequence[PassMetrics]) -> PassMetrics:
        """The sums over several passes, added in order."""
        total = [0.0, 0.0, 0.0, 0.0]
        for p in parts:
            total = [t + v for t, v in zip(total, (p.loss_pre, p.accuracy_pre, p.loss_post, p.accuracy_post))]
        return PassMetrics(*total)


def task_losses(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy of each task: logits ``(T, B, N)``, labels ``(T, B)`` → ``(T,)``."""
    per_example = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), reduction="none")
    return per_example.view(labels.shape).mean(dim=1)


def task_accuracies(logits: Tensor, labels: Tensor) -> Tensor:
    """Fraction of correct predictions of each task: ``(T,)``."""
    return (logits.argmax(dim=-1) == labels).to(logits.dtype).mean(dim=1)


def stack_tasks(tasks: Iterable[FewShotTask]) -> FewShotTask:
    """Single tasks stacked into a meta-batch (the layout of ``OmniglotTaskSampler.sample_batch``)."""
    items = list(tasks)
    return FewShotTask(
        torch.stack([t.support_x for t in items]), torch.stack([t.support_y for t in items]),
        torch.stack([t.query_x for t in items]), torch.stack([t.query_y for t in items]),
        np.stack([t.classes for t in items]), np.stack([t.drawers for t in items]),
    )


# --------------------------------------------------------------------------------------- data, split


def _data_error(err: Exception, root: str | None) -> UserError:
    """One line for the CLI: what is wrong with the data and where it was looked for."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    problems = [ln[2:] for ln in lines[1:] if ln.startswith("- ")]
    head = lines[0].rstrip(":") if lines else str(err)
    detail = f": {'; '.join(problems)}" if problems else ""
    where = "data.root" if root else "RL_ALPHAMAML_OMNIGLOT (data.root is null)"
    if head.startswith("No Omniglot data:"):  # nothing given and nothing in the user data folder
        return UserError("no Omniglot data: " + head.split(":", 1)[1].strip().split("\n")[0])
    return UserError(
        f"{head}{detail}. Expected images_background and images_evaluation (folders or .zip files) under the "
        f"folder named by {where}; set data.root in the config (or --set data.root=PATH) or the environment "
        "variable RL_ALPHAMAML_OMNIGLOT, or run `rl-alphamaml data omniglot` to download them"
    )


def load_data(config: OmniglotDataConfig) -> OmniglotDataset:
    """Load the images named by ``data.root`` (or ``$RL_ALPHAMAML_OMNIGLOT``); a bad path is a one-line UserError."""
    try:
        return load_omniglot(config.root, cache_dir=config.cache_dir)
    except OmniglotDataError as err:
        raise _data_error(err, config.root) from None


def run_split(config: OmniglotConfig, dataset: OmniglotDataset, run_dir: Path | None) -> OmniglotSplit:
    """The run's character split: read from ``run_dir/omniglot_split.json``, or drawn and saved there."""
    path = None if run_dir is None else Path(run_dir) / SPLIT_FILE
    if path is not None and path.is_file():
        try:
            split = OmniglotSplit.load(path)
        except ValueError as err:
            raise UserError(str(err).replace("\n", " ")) from None
        if split.protocol != config.data.protocol:
            raise UserError(f"{path} holds a {split.protocol!r} split but data.protocol is "
                            f"{config.data.protocol!r}; a run keeps the split it started with")
        try:
            split.check(dataset)
        except OmniglotDataError as err:
            raise UserError(str(err).replace("\n", " ")) from None
        return split
    try:
        split = make_split(dataset, config.data.protocol, seed=config.data.split_seed, num_val=config.data.num_val)
    except ValueError as err:
        raise UserError(f"data: {err}") from None
    if path is not None:
        split.save(path)
    return split


# ---------------------------------------------------------------------------------------- experiment

_R = TypeVar("_R")


class OmniglotExperiment:
    """MAML / FOMAML / Alpha MAML / Meta-SGD on Omniglot through the shared :class:`MetaOptimizer`.

    One meta-iteration [1, Algorithm 2]: sample ``train.meta_batch`` tasks from the
    meta-training characters; for each, adapt θ on the support set with ``inner.steps`` steps of rate α
    (``MetaOptimizer.adapt``); score the adapted weights on the query set; step θ on the mean query loss
    with rate β, then α and β by their hypergradients when adapted [2].

    Args:
        config: the experiment.
        run_dir: the run folder (the split is saved and reloaded there); ``None`` for in-memory use.
        dataset: the images, if already loaded (tests, benchmarks); default: :func:`load_data`.
        dtype: floating-point type of the network, α and the images (float64 for gradient checks).

    Example::

        exp = OmniglotExperiment(config, None, dataset=load_omniglot())
        for it in range(1, 101):
            scalars = exp.train_iteration(it, logger=None)
        result = evaluate(exp, tasks=600, steps=3, seed=1)
    """

    hparam_metrics = ("accuracy/val_post_adapt", "accuracy/post_adapt", "loss/post_adapt", "meta/alpha", "meta/beta")

    def __init__(
        self,
        config: OmniglotConfig,
        run_dir: Path | None = None,
        *,
        dataset: OmniglotDataset | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.config = config
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.dtype = dtype
        if config.compute.reuse_memory:
            reuse_freed_memory()
        self.dataset = load_data(config.data) if dataset is None else dataset
        self.split = run_split(config, self.dataset, self.run_dir)
        m = config.model
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.model = ConvNet(config.data.n_way, hidden_channels=m.hidden_channels, num_blocks=m.num_blocks,
                                 downsample=m.downsample, init=m.init).to(dtype)
        self.device = resolve_device(config.train.device)
        self.model.to(self.device)
        self.meta = MetaOptimizer(self.model, config.inner, config.outer, config.train.max_nonfinite_steps)
        self.iteration = 0
        self._samplers: dict[Part, OmniglotTaskSampler] = {}

    # -- tasks

    def sampler(self, part: Part) -> OmniglotTaskSampler:
        """The task sampler of a split part (meta-training tasks use ``data.q_query``, others ``eval.q_query``)."""
        if part not in self._samplers:
            d = self.config.data
            q = d.q_query if part == "train" else self.config.eval.q_query
            try:
                self._samplers[part] = OmniglotTaskSampler(self.dataset, self.split, part, n_way=d.n_way,
                                                           k_shot=d.k_shot, q_query=q, dtype=self.dtype)
            except ValueError as err:
                raise UserError(f"data: {err}") from None
        return self._samplers[part]

    def fixed_tasks(self, part: Part, count: int, seed: int, stream: str) -> Iterable[FewShotTask]:
        """``count`` tasks of ``part``, task ``i`` drawn from the stream ``(seed, stream, i)``."""
        sampler = self.sampler(part)
        return (sampler.sample(seeding.rng(seed, stream, i)) for i in range(count))

    # -- the meta-gradient

    def _passes(self, count: int) -> list[slice]:
        size = self.config.compute.tasks_per_pass
        return [slice(s, min(s + size, count)) for s in range(0, count, size)]

    def _map(self, fn: Callable[[Any], _R], items: list[Any]) -> list[_R]:
        """``[fn(x) for x in items]``, on ``compute.workers`` threads when more than one (order kept)."""
        workers = min(self.config.compute.workers, len(items))
        if workers <= 1:
            return [fn(x) for x in items]
        return list(thread_pool(self.config.compute.workers).map(fn, items))

    def _support_loss(self, xs: Tensor, ys: Tensor) -> SupportLoss:
        """The inner loss: the sum over tasks of each task's mean support loss (each inner gradient its own)."""
        return SupportLoss(self.model, xs, ys)

    def _pass_gradients(self, batch: FewShotTask, part: slice, total_tasks: int) -> tuple[MetaGradients, PassMetrics]:
        xs, ys = batch.support_x[part], batch.support_y[part]
        xq, yq = batch.query_x[part], batch.query_y[part]
        params = expand_params(self.meta.params, xs.shape[0])
        support_loss = self._support_loss(xs, ys)
        fast = self.meta.adapt(support_loss, params)
        first = support_loss.first_logits
        if first is None:  # inner.steps == 0
            with torch.no_grad():
                first = forward_tasks(self.model, params, xs)
        logits = forward_tasks(self.model, fast.params, xq)
        losses = task_losses(logits, yq)
        grads = self.meta.gradients(losses.sum() / total_tasks)
        return grads, PassMetrics(float(task_losses(first, ys).sum()), float(task_accuracies(first, ys).sum()),
                                  float(losses.detach().sum()), float(task_accuracies(logits.detach(), yq).sum()))

    def meta_gradients(self, batch: FewShotTask) -> tuple[MetaGradients, dict[str, float]]:
        """∇θ (and ∂/∂α) of the mean post-adaptation query loss over ``batch``, and the batch's metrics.

        Tasks go ``compute.tasks_per_pass`` at a time through :meth:`MetaOptimizer.adapt` and
        :meth:`MetaOptimizer.gradients`; the passes' gradients are summed in order (the loss is a sum
        over tasks). Metrics: ``pre_adapt`` — the support set before adaptation, as the first inner step
        sees it (its expected accuracy is 1/N: labels are shuffled per task); ``post_adapt`` — the query
        set after adaptation.
        """
        T = len(batch)
        results = self._map(lambda part: self._pass_gradients(batch, part, T), self._passes(T))
        total = MetaGradients.sum([grads for grads, _ in results])
        sums = PassMetrics.sum([metrics for _, metrics in results])
        return total, {
            "loss/pre_adapt": sums.loss_pre / T, "accuracy/pre_adapt": sums.accuracy_pre / T,
            "loss/post_adapt": sums.loss_post / T, "accuracy/post_adapt": sums.accuracy_post / T,
        }

    # -- training

    def train_iteration(self, iteration: int, logger: RunLogger | None) -> dict[str, float]:
        """Meta-iteration ``iteration`` (1-based) on the tasks of the stream ``(seed, "train", iteration)``."""
        cfg = self.config
        start = time.perf_counter()
        batch = self.sampler("train").sample_batch(cfg.train.meta_batch, seeding.rng(cfg.seed, "train", iteration))
        batch = batch.to(self.device)
        grads, metrics = self.meta_gradients(batch)
        info = self.meta.apply(grads)
        steps = info.scalars()
        # the first four are what the progress line shows
        out = {"accuracy/post_adapt": metrics["accuracy/post_adapt"], "meta/alpha": steps["meta/alpha"],
               "meta/beta": steps["meta/beta"], "time/iteration_s": time.perf_counter() - start}
        out.update(metrics)
        out.update(steps)
        self.iteration = iteration
        if cfg.inner.lr_shape != "scalar" and logger is not None:
            logger.histogram("meta/alpha_values", self.meta.alpha.values().float().cpu().numpy(), iteration)
        every = cfg.eval.val_every
        if every and (iteration % every == 0 or iteration == cfg.train.iterations):
            start = time.perf_counter()
            acc, loss = self.adaptation_curves(
                self.fixed_tasks("val", cfg.eval.val_tasks, cfg.seed, "val"), cfg.eval.test_steps)
            out["accuracy/val_pre_adapt"] = float(np.mean(acc[0]))
            out["accuracy/val_post_adapt"] = float(np.mean(acc[-1]))
            out["loss/val_post_adapt"] = float(np.mean(loss[-1]))
            out["time/validation_s"] = time.perf_counter() - start
        return out

    # -- adaptation to new tasks

    def adaptation_curves(
        self, tasks: Iterable[FewShotTask], steps: int
    ) -> tuple[list[list[float]], list[list[float]]]:
        """Per-task query accuracy and loss after 0…``steps`` inner steps with the current α (no meta-gradient;
        step k with α_{k+1} with per-step rates, α_K past the trained steps).

        Returns ``(accuracy, loss)``, each ``[step][task]``. Batch norm uses the statistics of the set at
        hand — support while adapting, query when scoring — as MAML does at test time.
        """
        acc: list[list[float]] = [[] for _ in range(steps + 1)]
        loss: list[list[float]] = [[] for _ in range(steps + 1)]
        size = self.config.compute.tasks_per_pass
        group = size * max(1, self.config.compute.workers)

        def run(chunk: list[FewShotTask]) -> tuple[list[list[float]], list[list[float]]]:
            batch = stack_tasks(chunk).to(self.device)
            loss_fn = self._support_loss(batch.support_x, batch.support_y)

            @torch.no_grad()
            def measure(params: Params, k: int) -> tuple[list[float], list[float]]:
                logits = forward_tasks(self.model, params, batch.query_x)
                return task_accuracies(logits, batch.query_y).tolist(), task_losses(logits, batch.query_y).tolist()

            def step(params: Params, k: int, _: tuple[list[float], list[float]]) -> Params:
                return self.meta.adapt(loss_fn, params, steps=1, first_order=True, start=k).params

            curve = adaptation_curve(expand_params(self.meta.params, len(chunk)), steps, measure, step)[1]
            return [a for a, _ in curve], [b for _, b in curve]

        def flush(pending: list[FewShotTask]) -> None:
            chunks = [pending[i:i + size] for i in range(0, len(pending), size)]
            for a, b in self._map(run, chunks):
                for k in range(steps + 1):
                    acc[k] += a[k]
                    loss[k] += b[k]

        pending: list[FewShotTask] = []
        for task in tasks:
            pending.append(task)
            if len(pending) == group:
                flush(pending)
                pending = []
        if pending:
            flush(pending)
        return acc, loss

    # -- state

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "meta": self.meta.state_dict(), "iteration": self.iteration}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        try:
            self.model.load_state_dict(state["model"])
            self.meta.load_state_dict(state["meta"])
        except (RuntimeError, ValueError, KeyError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise CheckpointError(f"the checkpoint does not fit this config's network or rates ({first}); "
                                  "was it written with another data.n_way, model or inner.lr_shape?") from None
        self.iteration = int(state.get("iteration", 0))


# ------------------------------------------------------------------------------ the kind's interface


def build(config: OmniglotConfig, run_dir: Path | None) -> OmniglotExperiment:
    """The experiment of a run folder (the CLI's entry point; loads the data and the run's split)."""
    return OmniglotExperiment(config, run_dir)


def evaluate(experiment: OmniglotExperiment, tasks: int, steps: int, seed: int) -> AdaptationResult:
    """Accuracy on ``tasks`` new tasks from the test characters after 0…``steps`` inner steps.

    MAML's protocol [1]: 600 test tasks; the headline is the mean accuracy after
    ``eval.test_steps`` steps (3 for 5-way, 5 for 20-way), with its 95 % confidence interval. Task ``i``
    is drawn from the stream ``(seed, "evaluate", i)``. Besides the adaptation report, writes
    ``RUN_DIR/eval/accuracy.json`` (mean accuracy, 95 % CI half-width, number of test tasks, protocol).
    """
    cfg = experiment.config
    sampler = experiment.sampler("test")
    drawn: list[dict[str, list[Any]]] = []

    def recorded(stream: Iterable[FewShotTask]) -> Iterable[FewShotTask]:
        for task in stream:
            drawn.append({"characters": [sampler.class_character(int(c)).key for c in task.classes],
                          "rotations": [int(sampler.class_rotations[c]) for c in task.classes]})
            yield task

    acc, loss = experiment.adaptation_curves(recorded(experiment.fixed_tasks("test", tasks, seed, "evaluate")), steps)
    head = min(cfg.eval.test_steps, steps)
    mean, half = mean_ci95(acc[head])
    summary = {
        "metric": "accuracy",
        "mean": mean,
        "ci95": half,
        "steps": head,
        "num_tasks": tasks,
        "protocol": cfg.data.protocol,
        "n_way": cfg.data.n_way,
        "k_shot": cfg.data.k_shot,
        "q_query": cfg.eval.q_query,
        "split_seed": experiment.split.seed,
        "seed": seed,
        "checkpoint_iteration": experiment.iteration,
        "alpha": experiment.meta.alpha.mean(),
        "alpha_steps": experiment.meta.alpha_steps(),
        "by_steps": [{"steps": k, "mean": m, "ci95": h} for k, (m, h) in enumerate(mean_ci95(a) for a in acc)],
        "loss_by_steps": [float(np.mean(v)) for v in loss],
    }
    print(f"{cfg.experiment}: {cfg.data.n_way}-way {cfg.data.k_shot}-shot accuracy after {head} steps on "
          f"{tasks} test tasks ({cfg.data.protocol} split): {100 * mean:.2f} ± {format_ci(100 * half, 2)} % (95 % CI)",
          file=sys.stderr)
    if experiment.run_dir is not None:
        path = experiment.run_dir / "eval" / ACCURACY_FILE
        write_outputs([(str(path), lambda: write_text_atomic(path, json.dumps(json_safe(summary), indent=2) + "\n"))],
                      "the accuracy above is the result")
    return AdaptationResult("accuracy", acc, drawn, "", experiment.iteration, seed, higher_is_better=True,
                            extra={"accuracy": summary})


KIND = ExperimentKind("omniglot", OmniglotConfig, build, evaluate, eval_tasks=600, eval_steps=5)
