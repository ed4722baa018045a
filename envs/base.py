"""Shared machinery of the task families: the task API and MuJoCo model loading.

Every family is a real :class:`gymnasium.Env` that also implements the meta-learning task API of
the MAML-RL [1] code bases (pytorch-maml-rl's ``sample_tasks`` / ``reset_task``),
in the form this project uses:

* ``sample_tasks(n, rng)`` draws ``n`` tasks from the family's task distribution with the numpy
  ``Generator`` ``rng`` (never a global or hidden RNG, so that one seed drives a run);
* ``set_task(task)`` / ``get_task()``; ``reset(options={"task": task})`` also sets it, and
  ``info["task"]`` reports the task on every ``reset`` and ``step``;
* ``validate_task(task)`` turns a task or its dict form into the family's task type, or raises
  :class:`~envs.tasks.TaskError` (a ``ValueError``) naming the problem;
* ``sample_held_out_tasks(n, rng)`` draws the tasks an evaluation adapts to: a benchmark with a train/test split
  (Meta-World, :mod:`envs.metaworld`) draws them from its test split, every other family from the distribution
  ``sample_tasks`` draws from (a held-out *stream* of it, chosen by the caller's ``rng``);
* ``reports_success``: whether ``info["success"]`` says, at every step, if the task is solved — then an episode
  succeeds if it is 1 at any step, and the learners report the success rate beside the return.

Each family also exposes *vectorised kernels* (observation, reward and termination computed for
a leading batch dimension). The single environment calls them with a batch of one and the
batched backend (:mod:`envs.batched`) with all its slots, so the two cannot drift apart.

References:
    [1] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar, Generic, TypeVar

import mujoco
import numpy as np
from gymnasium import utils

from envs.tasks import DirectionTask, GoalTask, Task, TaskError, VelocityTask, task_from_dict

__all__ = ["MissingDependencyError", "TaskFamily", "load_model", "mujoco_warnings_to_python"]

TaskT = TypeVar("TaskT", bound=Task)


class MissingDependencyError(ImportError):
    """A family whose simulator is an optional package that is missing (or that cannot run with the installed
    MuJoCo); the message says what to install."""


class TaskFamily(Generic[TaskT]):
    """Mixin with the task API. Subclasses set ``task_type`` and implement the range checks.

    Subclasses implement :meth:`_check_task` (range checks), :meth:`_sample` (the distribution),
    :meth:`task_params` (tasks → float array for the kernels) and :meth:`default_task`; a family with a
    held-out split implements :meth:`_sample_held_out` too, and one on an optional package
    :meth:`check_dependencies`.
    """

    task_type: ClassVar[type[Task]]
    #: the registered id without namespace, for error messages (set by subclasses)
    family_name: ClassVar[str] = ""
    #: ``info["success"]`` is 1.0 at a step where the task is solved and 0.0 otherwise (Meta-World); an episode
    #: succeeds if it is 1 at any step, and samplers and evaluations then report the success rate
    reports_success: ClassVar[bool] = False
    _task: TaskT
    _params: np.ndarray

    @classmethod
    def check_dependencies(cls) -> None:
        """Raise :class:`MissingDependencyError`, saying what to install, if this family cannot run here; the
        built-in families need nothing beyond this package's dependencies."""

    # -- the public task API -------------------------------------------------------------------
    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[TaskT]:
        """Draw ``n`` tasks from the family's task distribution using ``rng``."""
        return self._sample(_sample_count(n, rng), rng)

    def sample_held_out_tasks(self, n: int, rng: np.random.Generator) -> list[TaskT]:
        """Draw ``n`` tasks to evaluate on with ``rng``: the benchmark's test split where the family has one
        (:meth:`_sample_held_out`), else the training distribution itself (new tasks from the caller's stream)."""
        return self._sample_held_out(_sample_count(n, rng), rng)

    def set_task(self, task: TaskT | Mapping[str, Any]) -> None:
        """Make ``task`` (a task or its dict form) the current task; it applies from the next step."""
        checked = self.validate_task(task)
        self._task = checked
        self._params = self.task_params([checked])[0]
        self._on_task_set(checked)

    def get_task(self) -> TaskT:
        """Return the current task."""
        return self._task

    def validate_task(self, task: Task | Mapping[str, Any]) -> TaskT:
        """Return ``task`` as this family's task type, or raise :class:`TaskError`."""
        if isinstance(task, Mapping):
            task = task_from_dict(task)
        if not isinstance(task, self.task_type):
            raise TaskError(
                f"{self.family_name} takes {self.task_type.__name__} tasks, got {task!r}; "
                f"use this environment's sample_tasks() to make tasks for it"
            )
        self._check_task(task)  # type: ignore[arg-type]
        return task  # type: ignore[return-value]

    def validate_tasks(self, tasks: Sequence[TaskT | Mapping[str, Any]]) -> list[TaskT]:
        """:meth:`validate_task` applied to every element of ``tasks``."""
        return [self.validate_task(t) for t in tasks]

    # -- to implement ---------------------------------------------------------------------------
    def default_task(self) -> TaskT:
        """The task an environment starts with when none is given."""
        raise NotImplementedError

    def task_params(self, tasks: Sequence[TaskT]) -> np.ndarray:
        """Tasks as a float64 array ``(len(tasks), k)`` for the vectorised reward kernels."""
        raise NotImplementedError

    def _sample(self, n: int, rng: np.random.Generator) -> list[TaskT]:
        raise NotImplementedError

    def _check_task(self, task: TaskT) -> None:
        raise NotImplementedError

    def _sample_held_out(self, n: int, rng: np.random.Generator) -> list[TaskT]:
        """The held-out split's tasks; by default (no split) the training distribution's."""
        return self._sample(n, rng)

    def _on_task_set(self, task: TaskT) -> None:
        """Hook for families whose task changes the simulator (dynamics families)."""

    # -- helpers for subclasses -----------------------------------------------------------------
    def _init_task(self, task: TaskT | Mapping[str, Any] | None) -> None:
        self.set_task(self.default_task() if task is None else task)

    def _range_error(self, what: str, value: Any, low: Any, high: Any) -> TaskError:
        return TaskError(f"{self.family_name}: {what} {value!r} is outside the family's range [{low}, {high}]")


def _sample_count(n: int, rng: np.random.Generator) -> int:
    """``n`` as an int after checking the arguments of a task draw."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    return int(n)


@contextmanager
def mujoco_warnings_to_python() -> Iterator[None]:
    """Route MuJoCo's warning handler to :func:`warnings.warn` for the duration of the block.

    MuJoCo's default handler prints compile warnings and appends them to ``MUJOCO_LOG.TXT`` in
    the current directory; here a message becomes a ``DeprecationWarning`` (or ``RuntimeWarning``)
    that Python's warning filters control.
    """
    previous = mujoco.get_mju_user_warning()

    def _handler(message: str) -> None:
        category = DeprecationWarning if "deprecated" in message else RuntimeWarning
        warnings.warn(message, category, stacklevel=2)

    mujoco.set_mju_user_warning(_handler)
    try:
        yield
    finally:
        mujoco.set_mju_user_warning(previous)


_RNE_SITE = "rl_alphamaml_rne_trigger"


def load_model(
    xml_path: str, *, contact_forces: bool = False, edit: Callable[[mujoco.MjSpec], None] | None = None
) -> mujoco.MjModel:
    """Compile a gymnasium v5 MuJoCo model, optionally edited and with a force-sensor trigger.

    ``edit(spec)``, if given, changes the parsed model (``mujoco.MjSpec``) before it is compiled: this is
    how a family builds another simulator model of the same robot (e.g. the MAML paper's Ant,
    :mod:`envs.ant`) from gymnasium's file instead of shipping a copy of it.

    With ``contact_forces=True`` an accelerometer is attached to a massless site on body 1. Its
    only purpose is that MuJoCo then runs ``mj_rnePostConstraint`` inside every ``mj_step``
    (during ``mj_sensorAcc``), so ``cfrc_ext`` holds the external contact forces of the state
    at the start of the last physics substep — inside the step itself, where the batched
    backend (``mujoco.batch``) computes exactly the same values. A sensor does not change the
    dynamics: ``qpos``/``qvel`` trajectories are bit-identical with and without it.
    """
    spec = mujoco.MjSpec.from_file(xml_path)
    if edit is not None:
        edit(spec)
    if contact_forces:
        body = spec.bodies[1]
        body.add_site(name=_RNE_SITE)
        spec.add_sensor(
            type=mujoco.mjtSensor.mjSENS_ACCELEROMETER,
            objtype=mujoco.mjtObj.mjOBJ_SITE,
            objname=_RNE_SITE,
            name=_RNE_SITE,
        )
    with mujoco_warnings_to_python(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = spec.compile()
    for w in caught:  # MjSpec.compile reports compiler warnings as UserWarning
        message = str(w.message)
        category = DeprecationWarning if "deprecated" in message else w.category
        warnings.warn(message, category, stacklevel=2)
    return model


# ------------------------------------------------------------------ task distributions shared by families


class UniformRangeTasks(TaskFamily[TaskT]):
    """Mixin for families whose task values are drawn from ``U[low, high]``: the range and its check.

    Its constructor is the cooperative one of the MuJoCo families (:mod:`envs.mujoco_family`), whose
    next base takes ``(task, **kwargs)``; :class:`Navigation2DEnv` has its own constructor and only
    calls :meth:`_set_range`.
    """

    low: float
    high: float

    def __init__(
        self, task: TaskT | Mapping[str, Any] | None = None, *, low: float, high: float, **kwargs: Any
    ) -> None:
        self._set_range(low, high)
        super().__init__(task, **kwargs)  # type: ignore[call-arg]
        utils.EzPickle.__init__(self, task, low=low, high=high, **kwargs)  # type: ignore[arg-type]

    def _set_range(self, low: float, high: float) -> None:
        if not low <= high:
            raise ValueError(f"need low <= high, got low={low}, high={high}")
        self.low, self.high = float(low), float(high)


class GoalTasks(UniformRangeTasks[GoalTask]):
    """Mixin: goal tasks ``g ~ U[low, high]²``, each coordinate in range; by default the centre."""

    task_type = GoalTask

    def default_task(self) -> GoalTask:
        mid = 0.5 * (self.low + self.high)
        return GoalTask((mid, mid))

    def _sample(self, n: int, rng: np.random.Generator) -> list[GoalTask]:
        goals = rng.uniform(self.low, self.high, size=(n, 2))
        return [GoalTask((float(g[0]), float(g[1]))) for g in goals]

    def _check_task(self, task: GoalTask) -> None:
        for c in task.goal:
            if not self.low <= c <= self.high:
                raise self._range_error("goal coordinate", c, self.low, self.high)

    def task_params(self, tasks: Sequence[GoalTask]) -> np.ndarray:
        return np.array([t.goal for t in tasks], dtype=np.float64).reshape(len(tasks), 2)


class VelocityTasks(UniformRangeTasks[VelocityTask]):
    """Mixin: target-velocity tasks ``v* ~ U[low, high]``, checked in range; by default the centre."""

    task_type = VelocityTask

    def default_task(self) -> VelocityTask:
        return VelocityTask(0.5 * (self.low + self.high))

    def _sample(self, n: int, rng: np.random.Generator) -> list[VelocityTask]:
        return [VelocityTask(float(v)) for v in rng.uniform(self.low, self.high, size=n)]

    def _check_task(self, task: VelocityTask) -> None:
        if not self.low <= task.velocity <= self.high:
            raise self._range_error("target velocity", task.velocity, self.low, self.high)

    def task_params(self, tasks: Sequence[VelocityTask]) -> np.ndarray:
        return np.array([[t.velocity] for t in tasks], dtype=np.float64).reshape(len(tasks), 1)


class DirectionTasks(TaskFamily[DirectionTask]):
    """Mixin: direction tasks ``d ∈ {−1, +1}`` with probability ½ each; by default forward."""

    task_type = DirectionTask

    def __init__(self, task: DirectionTask | Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(task, **kwargs)  # type: ignore[call-arg]
        utils.EzPickle.__init__(self, task, **kwargs)  # type: ignore[arg-type]

    def default_task(self) -> DirectionTask:
        return DirectionTask(1)

    def _sample(self, n: int, rng: np.random.Generator) -> list[DirectionTask]:
        return [DirectionTask(int(d)) for d in 2 * rng.integers(0, 2, size=n) - 1]

    def _check_task(self, task: DirectionTask) -> None:
        """Any DirectionTask is valid (its constructor enforces ±1)."""

    def task_params(self, tasks: Sequence[DirectionTask]) -> np.ndarray:
        return np.array([[t.direction] for t in tasks], dtype=np.float64).reshape(len(tasks), 1)


# ---------------------------------------------------------------------------------------------
# HalfCheetah
# ---------------------------------------------------------------------------------------------


# gymnasium annotates MujocoEnv.step's reward as np.float64; ours returns a Python float
