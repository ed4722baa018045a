"""Tasks: small frozen dataclasses that describe one member of a task family.

A task is data, not behaviour: it holds the parameters that make one environment of a family
differ from another (a target velocity, a running direction, a goal position, a set of body
mass/damping scales), serialises to a JSON-compatible ``dict`` with :meth:`Task.to_dict` and comes
back with :func:`task_from_dict` (or ``SomeTask.from_dict``). Which values are *allowed* is the
family's business (HalfCheetahVel accepts velocities in [0, 2], AntVel in [0, 3]), so range
checks live in the environments (:meth:`envs.base.TaskFamily.validate_task`); a task only checks
what holds for every family (finite numbers, a direction of ±1, positive scales).

The task parameters follow the MAML-RL setups [1] and the pytorch-maml-rl reproduction; see
``docs/envs.md`` for each family's distribution.

Example::

    >>> from envs.tasks import VelocityTask, task_from_dict
    >>> t = VelocityTask(velocity=1.25)
    >>> t.to_dict()
    {'kind': 'velocity', 'velocity': 1.25}
    >>> task_from_dict(t.to_dict()) == t
    True

References:
    [1] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
    [2] Yu, Quillen, He, Julian, Hausman, Finn & Levine, "Meta-World: A Benchmark and Evaluation for Multi-Task
        and Meta Reinforcement Learning", CoRL 2019. https://arxiv.org/abs/1910.10897
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar, TypeVar

__all__ = [
    "Direction2DTask",
    "DirectionTask",
    "DynamicsTask",
    "GoalTask",
    "MetaWorldTask",
    "Task",
    "TaskError",
    "VelocityTask",
    "task_from_dict",
    "task_from_json",
]


class TaskError(ValueError):
    """A task that is malformed, belongs to another family, or lies outside the family's range."""


T = TypeVar("T", bound="Task")

_KINDS: dict[str, type[Task]] = {}


def _finite_float(value: Any, name: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise TaskError(f"{name} must be a number, got {value!r}") from exc
    if not math.isfinite(out):
        raise TaskError(f"{name} must be finite, got {value!r}")
    return out


def _float_tuple(values: Any, name: str, *, positive: bool = False) -> tuple[float, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TaskError(f"{name} must be a sequence of numbers, got {values!r}")
    out = tuple(_finite_float(v, f"{name}[{i}]") for i, v in enumerate(values))
    if positive and any(v <= 0.0 for v in out):
        raise TaskError(f"{name} must contain only positive values, got {out}")
    return out


@dataclass(frozen=True)
class Task:
    """Base class of all tasks. Subclasses are frozen dataclasses with a unique ``kind`` tag."""

    kind: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:
            if cls.kind in _KINDS:
                raise TypeError(f"duplicate task kind {cls.kind!r}")
            _KINDS[cls.kind] = cls

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-compatible dict: ``{"kind": ..., <field>: <value>, ...}``."""
        out: dict[str, Any] = {"kind": self.kind}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def to_json(self) -> str:
        """Serialise to a JSON string (floats round-trip exactly)."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
        """Rebuild a task from :meth:`to_dict` output.

        Called on :class:`Task` itself it dispatches on ``data["kind"]``; called on a subclass it
        also checks that the kind matches.
        """
        task = task_from_dict(data)
        if not isinstance(task, cls):
            raise TaskError(f"expected a {cls.__name__} dict, got kind {data.get('kind')!r}")
        return task


@dataclass(frozen=True)
class VelocityTask(Task):
    """Run forward at a target velocity ``velocity`` (m/s along +x). HalfCheetahVel, AntVel."""

    kind: ClassVar[str] = "velocity"
    velocity: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "velocity", _finite_float(self.velocity, "velocity"))


@dataclass(frozen=True)
class DirectionTask(Task):
    """Run along ``direction`` * x, with direction ∈ {−1, +1}. HalfCheetahDir, AntDir."""

    kind: ClassVar[str] = "direction"
    direction: int

    def __post_init__(self) -> None:
        value = _finite_float(self.direction, "direction")
        if value not in (-1.0, 1.0):
            raise TaskError(f"direction must be -1 or +1, got {self.direction!r}")
        object.__setattr__(self, "direction", int(value))


@dataclass(frozen=True)
class Direction2DTask(Task):
    """Run in the plane along the unit vector (cos angle, sin angle); ``angle`` in radians. AntDir2D."""

    kind: ClassVar[str] = "direction2d"
    angle: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "angle", _finite_float(self.angle, "angle"))


@dataclass(frozen=True)
class GoalTask(Task):
    """Reach the planar goal position ``goal`` = (x, y). Navigation2D(Sparse), AntGoal."""

    kind: ClassVar[str] = "goal"
    goal: tuple[float, float]

    def __post_init__(self) -> None:
        goal = _float_tuple(self.goal, "goal")
        if len(goal) != 2:
            raise TaskError(f"goal must have 2 coordinates, got {len(goal)}")
        object.__setattr__(self, "goal", goal)


@dataclass(frozen=True)
class DynamicsTask(Task):
    """Multipliers of the robot's physical parameters (dynamics adaptation, not goal adaptation).

    ``body_mass_scale[i]`` scales the mass *and* rotational inertia of the i-th non-world body
    (a uniform change of density), ``dof_damping_scale[j]`` the damping of the j-th actuated
    joint, and ``friction_scale`` the sliding friction of every geom. HalfCheetahRandParams.
    """

    kind: ClassVar[str] = "dynamics"
    body_mass_scale: tuple[float, ...]
    dof_damping_scale: tuple[float, ...]
    friction_scale: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "body_mass_scale", _float_tuple(self.body_mass_scale, "body_mass_scale", positive=True)
        )
        object.__setattr__(
            self,
            "dof_damping_scale",
            _float_tuple(self.dof_damping_scale, "dof_damping_scale", positive=True),
        )
        friction = _finite_float(self.friction_scale, "friction_scale")
        if friction <= 0.0:
            raise TaskError(f"friction_scale must be positive, got {friction}")
        object.__setattr__(self, "friction_scale", friction)


@dataclass(frozen=True)
class MetaWorldTask(Task):
    """One task of a Meta-World benchmark [2]: the environment class ``env_name`` (e.g. ``"reach-v3"``) and its
    ``rand_vec``, the object and goal positions that Meta-World draws per task (3 or 6 numbers, depending on the
    class). Meta-World ML1, ML10 and ML45 (:mod:`envs.metaworld`); which ones a family accepts is the benchmark's
    goal set.
    """

    kind: ClassVar[str] = "metaworld"
    env_name: str
    rand_vec: tuple[float, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.env_name, str) or not self.env_name:
            raise TaskError(f"env_name must be a Meta-World environment name such as 'reach-v3', got {self.env_name!r}")
        rand_vec = _float_tuple(self.rand_vec, "rand_vec")
        if not rand_vec:
            raise TaskError("rand_vec must not be empty")
        object.__setattr__(self, "rand_vec", rand_vec)


def task_from_dict(data: Mapping[str, Any]) -> Task:
    """Rebuild any task from its :meth:`Task.to_dict` form (dispatches on ``data["kind"]``)."""
    if isinstance(data, Task):
        return data
    if not isinstance(data, Mapping):
        raise TaskError(f"a task dict must be a mapping, got {type(data).__name__}")
    kind = data.get("kind")
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise TaskError(f"unknown task kind {kind!r}; known kinds: {sorted(_KINDS)}")
    names = {f.name for f in fields(cls)}
    extra = set(data) - names - {"kind"}
    if extra:
        raise TaskError(f"unexpected keys for a {kind!r} task: {sorted(extra)}")
    try:
        return cls(**{k: v for k, v in data.items() if k != "kind"})
    except TypeError as exc:  # missing fields
        raise TaskError(f"bad {kind!r} task {dict(data)!r}: {exc}") from exc


def task_from_json(text: str) -> Task:
    """Inverse of :meth:`Task.to_json`."""
    return task_from_dict(json.loads(text))
