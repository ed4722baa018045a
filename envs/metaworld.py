"""Meta-World's meta-learning benchmarks ML1, ML10 and ML45 [1] as task families, on the metaworld package (v3 [2]).

=================================  ========================================  ===========================  =======
id                                 task                                      split                        horizon
=================================  ========================================  ===========================  =======
rl_alphamaml/MetaWorldML1-v0       a goal of one class (``env_name``)        50 train / 50 test goals     500
rl_alphamaml/MetaWorldML10-v0      a class and one of its goals              10 train / 5 test classes    500
rl_alphamaml/MetaWorldML45-v0      a class and one of its goals              45 train / 5 test classes    500
=================================  ========================================  ===========================  =======

A task is a :class:`~envs.tasks.MetaWorldTask`: the class's name (``reach-v3``) and its ``rand_vec``, the object
and goal positions Meta-World fixes per task. The goals are the benchmark's own: ``metaworld.ML1(env_name,
seed)``, ``metaworld.ML10(seed)`` and ``metaworld.ML45(seed)`` generate 50 per class, with ``seed`` the family's
``benchmark_seed`` (default 0; ML1's test goals come from ``seed + 1``, as in metaworld). :meth:`sample_tasks`
draws from the **train** split — meta-training's tasks — and :meth:`sample_held_out_tasks` from the **test** split,
the tasks ``rl-alphamaml evaluate`` adapts to: for ML1 other goals of the same class, for ML10 and ML45 the
held-out classes. Both spread a draw evenly over the split's classes (each class gets ⌊n/C⌋ or ⌈n/C⌉ tasks, as
metaworld's vector environments give each class the same number) and take a class's goals without repetition
until all 50 are used. The split is read from the benchmark objects themselves, not from the
``Meta-World/ML1-train`` gymnasium id, which metaworld 3.1.1 registers with the test goals (its registration loop
captures its loop variable).

The environment is metaworld's own (``metaworld.env_dict.ALL_V3_ENVIRONMENTS[name]``) with the meta-learning
benchmarks' settings: the goal is zeroed in the 39-D observation (``partially_observable``), the action is
``Box(−1, 1, (4,))`` (end-effector motion and gripper), the reward metaworld's v2 reward in [0, 10]. ``info``
carries metaworld's terms and ``success`` (1.0 when the task is solved at that step); an episode succeeds if it
is 1 at any step (:attr:`~envs.base.TaskFamily.reports_success`). ``terminate_on_success=True`` ends an episode
at its first success, as metaworld's evaluation does. Episodes otherwise end only at the horizon, which the
registry (500, Meta-World's ``max_path_length``) or ``envs.BatchedEnv`` sets.

:class:`envs.BatchedEnv` steps these families on its ``"gymnasium"`` backend: one environment per slot, stepped in
a Python loop (metaworld's reward functions are Python, one per class). Every environment of a class costs one
compiled model (~20 MB), so the environments of a process live in one pool per class: a slot
whose task changes class returns its simulator to the pool and takes one of the new class, and a closed family's
simulator stays in the pool for the next one (at most :data:`POOL_LIMIT` idle ones; the least recently returned is
closed first). ``metaworld`` is imported only when a family is made, so
``import envs`` works without it; a family made without it raises :class:`~envs.base.MissingDependencyError`
saying ``pip install -e ".[metaworld]"``.

Example::

    import numpy as np, envs
    env = envs.make("rl_alphamaml/MetaWorldML1-v0", env_name="push-v3")
    train = env.unwrapped.sample_tasks(20, np.random.default_rng(0))           # 20 of the 50 train goals
    test = env.unwrapped.sample_held_out_tasks(5, np.random.default_rng(1))    # 5 of the 50 test goals
    obs, info = env.reset(options={"task": train[0]})
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    info["success"]                                                             # 0.0 or 1.0

References:
    [1] Yu, Quillen, He, Julian, Hausman, Finn & Levine, "Meta-World: A Benchmark and Evaluation for Multi-Task
        and Meta Reinforcement Learning", CoRL 2019. https://arxiv.org/abs/1910.10897
    [2] McLean, Chatzaroulas, McCutcheon, Röder, Yu, He, Julian, Hausman, Finn, Levine & Castro, "Meta-World+: An
        Improved, Standardized, RL Benchmark", 2025. https://arxiv.org/abs/2505.11289
"""

from __future__ import annotations

import collections
import dataclasses
import difflib
import functools
import importlib
import pickle
import threading
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces, utils

from envs.base import MissingDependencyError, TaskFamily
from envs.tasks import MetaWorldTask, TaskError

__all__ = [
    "BENCHMARKS",
    "INSTALL_HINT",
    "POOL_LIMIT",
    "BenchmarkTasks",
    "MetaWorldFamily",
    "MetaWorldML1Env",
    "MetaWorldML10Env",
    "MetaWorldML45Env",
    "benchmark_tasks",
    "check_env_name",
    "import_metaworld",
]

#: what a user runs to get the optional dependency
INSTALL_HINT = 'pip install -e ".[metaworld]"'
#: the meta-learning benchmarks of Meta-World that are families here
BENCHMARKS: tuple[str, ...] = ("ML1", "ML10", "ML45")
#: metaworld 3.1.1 writes this many numbers per weld constraint (MuJoCo's ``mjNEQDATA`` before MuJoCo 3.5)
_METAWORLD_EQDATA = 11
_MAX_SEED = 2**32 - 2  # numpy's legacy seeding takes < 2**32, and ML1's test goals use seed + 1


def import_metaworld() -> Any:
    """The ``metaworld`` module, or :class:`~envs.base.MissingDependencyError` saying how to install it (also when the
    installed MuJoCo is one metaworld 3.1.1 cannot build its environments on)."""
    try:
        module = importlib.import_module("metaworld")
    except ImportError as err:
        raise MissingDependencyError(
            f"the Meta-World families need the metaworld package: {INSTALL_HINT} (metaworld 3.1.1, which installs "
            f"MuJoCo 3.3.0)") from err
    eq_data = getattr(mujoco, "mjNEQDATA", _METAWORLD_EQDATA)
    if eq_data != _METAWORLD_EQDATA:
        raise MissingDependencyError(
            f"metaworld cannot build its environments on MuJoCo {mujoco.__version__} (its weld constraints have "
            f"{_METAWORLD_EQDATA} parameters, this MuJoCo's {eq_data}): use MuJoCo 3.3.0, which {INSTALL_HINT} "
            "installs in a fresh environment")
    return module


def check_env_name(env_name: str) -> None:
    """Raise ``ValueError`` naming the closest match unless ``env_name`` is one of Meta-World's 50 v3 classes."""
    names = list(import_metaworld().ML1.ENV_NAMES)
    if env_name not in names:
        close = difflib.get_close_matches(str(env_name), names, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"env_name {env_name!r} is not a Meta-World v3 environment.{hint} "
                         f"Known: {', '.join(sorted(names))}")


@dataclasses.dataclass(frozen=True)
class BenchmarkTasks:
    """The tasks of one Meta-World benchmark: per split and class, the class's goals (``rand_vec`` s) in the
    benchmark's order, and each class's environment class."""

    benchmark: str
    seed: int
    train: Mapping[str, tuple[tuple[float, ...], ...]]
    test: Mapping[str, tuple[tuple[float, ...], ...]]
    classes: Mapping[str, type]


@functools.cache
def benchmark_tasks(benchmark: str, seed: int, env_name: str | None = None) -> BenchmarkTasks:
    """The train and test goals of ``metaworld.<benchmark>(…, seed=seed)`` (``env_name`` for ML1), read from the
    benchmark object's ``train_tasks`` and ``test_tasks``; computed once per process (metaworld builds every
    class of the benchmark and resets it 50 times, which takes seconds for ML10 and ML45)."""
    mw = import_metaworld()
    if benchmark not in BENCHMARKS:
        raise ValueError(f"benchmark must be one of {', '.join(BENCHMARKS)}, got {benchmark!r}")
    if benchmark == "ML1":
        if env_name is None:
            raise ValueError("ML1 needs an env_name")
        check_env_name(env_name)
        bench = mw.ML1(env_name, seed=seed)
    else:
        bench = getattr(mw, benchmark)(seed=seed)

    def goals(classes: Mapping[str, type], tasks: Sequence[Any]) -> dict[str, tuple[tuple[float, ...], ...]]:
        out: dict[str, list[tuple[float, ...]]] = {name: [] for name in classes}
        for task in tasks:
            data = pickle.loads(task.data)  # metaworld's own task record: rand_vec, env_cls, partially_observable
            out[task.env_name].append(tuple(float(x) for x in data["rand_vec"]))
        return {name: tuple(values) for name, values in out.items()}

    classes = {**dict(bench.train_classes), **dict(bench.test_classes)}
    return BenchmarkTasks(benchmark, seed, goals(bench.train_classes, bench.train_tasks),
                          goals(bench.test_classes, bench.test_tasks), classes)


#: idle simulators a process keeps for reuse (~20 MB each); past it the least recently returned one is closed
POOL_LIMIT = 200


class _SimulatorPool:
    """Metaworld environments of this process that no family holds, per class: a family takes one when its task's
    class changes and gives it back on the next change or on ``close``. At most ``limit`` idle ones are kept (the
    least recently returned is closed first), so that ML45's 50 classes do not keep a simulator per class and
    slot. Rendering environments are not shared (their renderer is tied to their size and camera): they are made
    for their family and closed with it."""

    def __init__(self, limit: int = POOL_LIMIT) -> None:
        self.limit = limit
        self._free: dict[str, list[Any]] = {}
        self._order: collections.OrderedDict[int, tuple[str, Any]] = collections.OrderedDict()  # oldest first
        self._lock = threading.Lock()

    def idle(self) -> int:
        """Simulators in the pool."""
        return len(self._order)

    def take(self, env_name: str, env_class: type, render: Mapping[str, Any] | None) -> Any:
        if render is None:
            with self._lock:
                free = self._free.get(env_name)
                if free:
                    env = free.pop()
                    del self._order[id(env)]
                    return env
        env = env_class(**(render or {}))
        # The horizon is the family's (its registration, or BatchedEnv's): metaworld's own limit of 500 steps,
        # past which its step raises, is lifted. Nothing else in metaworld reads it.
        env.max_path_length = np.iinfo(np.int64).max
        return env

    def give_back(self, env_name: str, env: Any, rendering: bool) -> None:
        if rendering:
            env.close()
            return
        evicted = []
        with self._lock:
            self._free.setdefault(env_name, []).append(env)
            self._order[id(env)] = (env_name, env)
            while len(self._order) > self.limit:
                _, (name, old) = self._order.popitem(last=False)
                self._free[name].remove(old)
                evicted.append(old)
        for old in evicted:
            old.close()


_POOL = _SimulatorPool()


class MetaWorldFamily(TaskFamily[MetaWorldTask], gym.Env[np.ndarray, np.ndarray], utils.EzPickle):
    """A Meta-World meta-learning benchmark [1] as a task family (the base of :class:`MetaWorldML1Env`,
    :class:`MetaWorldML10Env` and :class:`MetaWorldML45Env`; see the module docstring).

    Args:
        task: the first task (default: the first train goal of the first train class).
        benchmark_seed: the seed metaworld generates the benchmark's goals with (ML1's test goals: ``seed + 1``).
        terminate_on_success: end an episode at the first step with ``info["success"] == 1`` (metaworld's
            evaluation); by default episodes end only at the horizon.
        render_mode: ``None`` or ``"rgb_array"``.
        width: the width of a rendered frame in pixels.
        height: its height.
        camera_name: the metaworld camera that films (``corner2`` by default; ``corner``, ``corner3``,
            ``corner4``, ``topview``, ``behindGripper``, ``gripperPOV``). The corner cameras of metaworld's models
            are rolled upside down (their up axis points below the horizon); :meth:`render` turns such a camera's
            frames by 180°, which shows the scene upright (a vertical flip would mirror it).

    A task takes effect at the next :meth:`reset` (which places the objects and the goal); :meth:`step` after
    :meth:`set_task` without a reset raises.
    """

    task_type = MetaWorldTask
    reports_success = True
    benchmark: ClassVar[str] = ""
    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 80}  # type: ignore[misc]

    def __init__(
        self,
        task: MetaWorldTask | Mapping[str, Any] | None = None,
        *,
        benchmark_seed: int = 0,
        terminate_on_success: bool = False,
        render_mode: str | None = None,
        width: int = 480,
        height: int = 480,
        camera_name: str = "corner2",
        env_name: str | None = None,
    ) -> None:
        self.check_dependencies()
        if isinstance(benchmark_seed, bool) or not isinstance(benchmark_seed, (int, np.integer)) or not (
                0 <= benchmark_seed <= _MAX_SEED):
            raise ValueError(f"benchmark_seed must be an integer in [0, {_MAX_SEED}], got {benchmark_seed!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.benchmark_seed = int(benchmark_seed)
        self.terminate_on_success = bool(terminate_on_success)
        self.render_mode = render_mode
        self._render = None if render_mode is None else {
            "render_mode": render_mode, "width": int(width), "height": int(height), "camera_name": camera_name}
        self.tasks = benchmark_tasks(self.benchmark, self.benchmark_seed, env_name)
        #: the benchmark's classes, train then test: a task's class index in :meth:`task_params`
        self.class_names: tuple[str, ...] = (*self.tasks.train,
                                             *(n for n in self.tasks.test if n not in self.tasks.train))
        self._class_index = {name: i for i, name in enumerate(self.class_names)}
        self._goals = {name: {*self.tasks.train.get(name, ()), *self.tasks.test.get(name, ())}
                       for name in self.class_names}
        self._width = max(len(g) for goals in self._goals.values() for g in goals)
        self.action_space = spaces.Box(-1.0, 1.0, (4,), dtype=np.float32)
        self._sim: Any = None
        self._sim_name: str | None = None
        self._reset_needed = True
        self._init_task(task)
        sim: Any = self._sim  # set by the task
        space = sim.sawyer_observation_space
        self.observation_space = spaces.Box(space.low, space.high, dtype=np.float64)

    @classmethod
    def check_dependencies(cls) -> None:
        """Raise :class:`~envs.base.MissingDependencyError` without metaworld or with a MuJoCo it cannot run on."""
        import_metaworld()

    # -- tasks ------------------------------------------------------------------------------------
    def default_task(self) -> MetaWorldTask:
        """The first train goal of the first train class."""
        name = next(iter(self.tasks.train))
        return MetaWorldTask(name, self.tasks.train[name][0])

    def _sample(self, n: int, rng: np.random.Generator) -> list[MetaWorldTask]:
        return self._draw(self.tasks.train, n, rng)

    def _sample_held_out(self, n: int, rng: np.random.Generator) -> list[MetaWorldTask]:
        return self._draw(self.tasks.test, n, rng)

    @staticmethod
    def _draw(goals: Mapping[str, tuple[tuple[float, ...], ...]], n: int,
              rng: np.random.Generator) -> list[MetaWorldTask]:
        """``n`` tasks spread evenly over the classes of ``goals`` (in random order), each class's goals taken in a
        random order without repetition until all are used."""
        names = list(goals)
        rounds = -(-n // len(names))
        order: list[int] = []
        for _ in range(rounds):
            order += rng.permutation(len(names)).tolist()
        queues: dict[int, list[int]] = {}
        tasks = []
        for c in order[:n]:
            queue = queues.setdefault(c, [])
            if not queue:
                queue.extend(rng.permutation(len(goals[names[c]])).tolist())
            tasks.append(MetaWorldTask(names[c], goals[names[c]][queue.pop(0)]))
        return tasks

    def _check_task(self, task: MetaWorldTask) -> None:
        goals = self._goals.get(task.env_name)
        if goals is None:
            raise TaskError(f"{self.family_name}: {task.env_name!r} is not one of this benchmark's classes "
                            f"({', '.join(self.class_names)})")
        if task.rand_vec not in goals:
            raise TaskError(f"{self.family_name}: {task.rand_vec} is not one of the benchmark's goals of "
                            f"{task.env_name} (benchmark_seed={self.benchmark_seed}); draw tasks with sample_tasks() "
                            f"or sample_held_out_tasks()")

    def task_params(self, tasks: Sequence[MetaWorldTask]) -> np.ndarray:
        """``(len(tasks), 1 + k)``: each task's class index in :attr:`class_names`, then its ``rand_vec`` padded with
        zeros to the longest of the benchmark's (k)."""
        out = np.zeros((len(tasks), 1 + self._width))
        for row, task in zip(out, tasks):
            row[0] = self._class_index[task.env_name]
            row[1:1 + len(task.rand_vec)] = task.rand_vec
        return out

    def _on_task_set(self, task: MetaWorldTask) -> None:
        if task.env_name != self._sim_name:
            self._give_back()
            self._sim = _POOL.take(task.env_name, self.tasks.classes[task.env_name], self._render)
            self._sim_name = task.env_name
        data = {"rand_vec": np.array(task.rand_vec), "env_cls": self.tasks.classes[task.env_name],
                "partially_observable": True}  # the goal hidden, as in metaworld's meta-learning benchmarks
        self._sim.set_task(import_metaworld().types.Task(env_name=task.env_name, data=pickle.dumps(data)))
        self._reset_needed = True

    def _give_back(self) -> None:
        if self._sim is not None and self._sim_name is not None:
            _POOL.give_back(self._sim_name, self._sim, self._render is not None)
        self._sim, self._sim_name = None, None

    # -- gymnasium API ----------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Place the robot, the objects and the goal of the task; ``options={"task": task}`` first sets the task.
        Metaworld's reset is deterministic given the task: ``seed`` seeds :attr:`np_random` only."""
        super().reset(seed=seed)
        if options is not None and "task" in options:
            self.set_task(options["task"])
        if self._sim is None:
            raise RuntimeError("this environment is closed")
        obs, _ = self._sim.reset()
        self._reset_needed = False
        return np.asarray(obs, dtype=np.float64), {"task": self._task}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """One control step of metaworld's environment; ``info`` holds its terms (``success``, ``near_object``, …)
        as floats and the task."""
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (4,):
            raise ValueError(f"action must have shape (4,), got {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"action must be finite, got {a.tolist()}")
        if self._reset_needed:
            raise RuntimeError("call reset() after set_task(): a Meta-World task places its objects at reset")
        obs, reward, _, _, info = self._sim.step(a)
        out: dict[str, Any] = {k: float(v) for k, v in info.items() if isinstance(v, (bool, int, float, np.number))}
        out["success"] = float(info["success"])
        out["task"] = self._task
        terminated = self.terminate_on_success and out["success"] >= 1.0
        return np.asarray(obs, dtype=np.float64), float(reward), terminated, False, out

    def render(self) -> np.ndarray | None:
        """An RGB frame ``(height, width, 3)`` from metaworld's renderer (``render_mode="rgb_array"``)."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='rgb_array'")
            return None
        frame = self._sim.render()
        if frame is None:
            return None
        camera = self._sim.data.camera(self._render["camera_name"]) if self._render else None
        if camera is not None and camera.xmat[7] < 0.0:  # the camera's up axis points down: upright the frame
            return np.ascontiguousarray(np.asarray(frame)[::-1, ::-1])
        return np.asarray(frame)

    def close(self) -> None:
        """Give the simulator back to the process's pool (a rendering one is closed)."""
        self._give_back()
        super().close()


class MetaWorldML1Env(MetaWorldFamily):
    """Meta-World ML1 [1]: one environment class, ``env_name`` (default ``reach-v3``; any of the 50 v3 classes);
    a task is one of its goals. Meta-training draws from the 50 train goals of ``metaworld.ML1(env_name,
    benchmark_seed)``, evaluation from its 50 test goals (generated with ``benchmark_seed + 1``)."""

    benchmark = "ML1"
    family_name = "MetaWorldML1-v0"

    def __init__(self, task: MetaWorldTask | Mapping[str, Any] | None = None, *, env_name: str = "reach-v3",
                 **kwargs: Any) -> None:
        super().__init__(task, env_name=env_name, **kwargs)
        utils.EzPickle.__init__(self, task, env_name=env_name, **kwargs)
        self.env_name = env_name


class MetaWorldML10Env(MetaWorldFamily):
    """Meta-World ML10 [1]: a task is a class and one of its goals. Meta-training draws from the 10 train classes
    of ``metaworld.ML10(benchmark_seed)`` (reach, push, pick-place, door-open, drawer-close, button-press-topdown,
    peg-insert-side, window-open, sweep, basketball), evaluation from its 5 held-out test classes (drawer-open,
    door-close, shelf-place, sweep-into, lever-pull), 50 goals each."""

    benchmark = "ML10"
    family_name = "MetaWorldML10-v0"

    def __init__(self, task: MetaWorldTask | Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(task, **kwargs)
        utils.EzPickle.__init__(self, task, **kwargs)


class MetaWorldML45Env(MetaWorldFamily):
    """Meta-World ML45 [1]: a task is a class and one of its goals. Meta-training draws from the 45 train classes of
    ``metaworld.ML45(benchmark_seed)``, evaluation from its 5 held-out test classes (bin-picking, box-close,
    door-lock, door-unlock, hand-insert), 50 goals each."""

    benchmark = "ML45"
    family_name = "MetaWorldML45-v0"

    def __init__(self, task: MetaWorldTask | Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(task, **kwargs)
        utils.EzPickle.__init__(self, task, **kwargs)
