"""Batched, closed-loop stepping of many slots of one task family: the meta-training hot path.

MAML-RL samples ``meta_batch × episodes_per_task`` episodes per iteration (40 tasks × 20
episodes for HalfCheetahVel in [1]), each slot with its own task, the policy evaluated
once per control step for all slots together. :class:`BatchedEnv` does that without a Python
environment object per slot. The MuJoCo families run on one of two backends (:data:`BACKENDS`,
chosen by :func:`resolve_backend`): ``"batch"``, one ``mujoco.batch.Batch`` (MuJoCo's batch API,
MuJoCo >= 3.17: every slot is one row of integration state, stepped on a native thread pool with the
GIL released), the default where it exists; ``"mjdata"``, one ``MjData`` per slot stepped by
``mujoco.mj_step`` in a Python loop, the default where it does not (MuJoCo 3.2.4-3.16, e.g. the
3.3.0 that Meta-World pins). The navigation families run on numpy arrays. Observations, rewards
and termination come from the same vectorised kernels as the single environments
(:mod:`envs.half_cheetah`, :mod:`envs.ant`, :mod:`envs.navigation`), and each slot's state carries
the constraint solver's warm start, so a slot's transitions equal those of ``gymnasium.make(env_id)``
with the same task, seed and actions on either backend (tested over full episodes of every family).
A family without vectorised kernels — Meta-World (:mod:`envs.metaworld`), whose 50 classes each have a Python
reward, or any :class:`~envs.base.TaskFamily` environment registered with :func:`envs.register_family` — runs on
the ``"gymnasium"`` backend: one single environment per slot, each stepped by its own ``step`` in a Python loop
(what gymnasium's ``SyncVectorEnv`` does, without its autoreset and with the slots' tasks and seeds as here).

Example — one closed-loop batch of episodes::

    >>> import numpy as np, envs
    >>> benv = envs.BatchedEnv("rl_alphamaml/HalfCheetahVel-v0", n_slots=8)
    >>> tasks = benv.sample_tasks(2, np.random.default_rng(0))   # 2 tasks x 4 slots each
    >>> obs = benv.reset(tasks, seeds=0)                          # (8, 17)
    >>> while True:
    ...     actions = np.zeros((8, benv.act_dim))                # the policy goes here
    ...     obs, reward, terminated, truncated = benv.step(actions)
    ...     if benv.done:
    ...         break
    >>> benv.t
    200

The design was chosen by measurement on a 2-core machine (``benchmarks/sampler.py --designs``;
numbers in ``docs/envs.md``): at 800 slots the ``"batch"`` closed loop runs as fast as one open-loop
``mujoco.rollout`` over all slots on all cores (HalfCheetahVel 78k vs 75k steps/s, AntVel 12.1k vs
11.4k); a Python loop over one ``MjData`` per slot was 1.1-2.7x slower (GIL-bound), and a
``mujoco.rollout`` call per control step or worker processes were no faster — the former cannot
return the solver's warm start, the latter add processes for nothing on 2 cores. Where
``mujoco.batch`` is missing, the ``"mjdata"`` loop is the fastest of the exact candidates
(``benchmarks/sampler.py --fallback``: gymnasium's ``SyncVectorEnv`` and ``AsyncVectorEnv`` over the
single environments are slower; a ``mujoco.rollout`` call per control step is not exact).

References:
    [1] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
"""

from __future__ import annotations

import copy
import importlib
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import mujoco
import numpy as np
from gymnasium.utils import seeding

from envs.mujoco_family import MujocoFamily
from envs.navigation import Navigation2DEnv
from envs.registry import horizon_of, make_unwrapped, resolve_id
from envs.tasks import Task

__all__ = ["BACKENDS", "BACKEND_ENV", "BackendError", "BatchStep", "BatchedEnv", "default_threads", "resolve_backend"]


def _import_mujoco_batch() -> Any:
    """``mujoco.batch`` (MuJoCo >= 3.17), or None where this MuJoCo has no batch API."""
    try:
        return importlib.import_module("mujoco.batch")
    except ModuleNotFoundError as err:
        if err.name != "mujoco.batch":
            raise
        return None


mjbatch: Any = _import_mujoco_batch()

#: the backends of the MuJoCo families: ``"batch"``, one ``mujoco.batch.Batch`` (MuJoCo >= 3.17, the default
#: there); ``"mjdata"``, one ``MjData`` per slot stepped by ``mujoco.mj_step`` (any MuJoCo; the default
#: where ``mujoco.batch`` is missing). Both give the single environment's transitions bit for bit.
BACKENDS: tuple[str, ...] = ("batch", "mjdata")
#: the environment variable that chooses the backend when ``BatchedEnv(backend=None)``
BACKEND_ENV = "RL_ALPHAMAML_BATCHED_BACKEND"


class BackendError(ValueError):
    """A :class:`BatchedEnv` backend that is not one of :data:`BACKENDS`, or that this MuJoCo cannot run."""


def resolve_backend(backend: str | None = None) -> str:
    """The backend :class:`BatchedEnv` steps the MuJoCo families on.

    ``backend`` if given, else the environment variable ``RL_ALPHAMAML_BATCHED_BACKEND`` if set and not
    empty, else ``"batch"`` where ``mujoco.batch`` exists (MuJoCo >= 3.17) and ``"mjdata"`` where it does not.
    Raises :class:`BackendError` for a name not in :data:`BACKENDS` and for ``"batch"`` on a MuJoCo without
    ``mujoco.batch``.
    """
    source = "backend"
    if backend is None:
        backend = os.environ.get(BACKEND_ENV) or None
        source = BACKEND_ENV
    if backend is None:
        return "batch" if mjbatch is not None else "mjdata"
    if backend not in BACKENDS:
        raise BackendError(f"{source}={backend!r} is not a BatchedEnv backend; choose one of {', '.join(BACKENDS)}")
    if backend == "batch" and mjbatch is None:
        instead = f"unset {BACKEND_ENV}" if source == BACKEND_ENV else "pass backend=None"
        raise BackendError(
            f"{source}='batch' needs mujoco.batch, which MuJoCo {mujoco.__version__} does not have (it came with "
            f"MuJoCo 3.17): {instead} or choose 'mjdata', which gives the same transitions"
        )
    return backend


class BatchStep(NamedTuple):
    """What :meth:`BatchedEnv.step` returns; unpacks as ``obs, reward, terminated, truncated``."""

    obs: np.ndarray  #: (n_slots, obs_dim), the observation space's dtype
    reward: np.ndarray  #: (n_slots,) float64
    terminated: np.ndarray  #: (n_slots,) bool — the episode ended in this step (MDP termination)
    truncated: np.ndarray  #: (n_slots,) bool — the episode reached the horizon in this step


def default_threads() -> int:
    """The number of CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class _MujocoBackend:
    """All slots of a MuJoCo family as the rows of one ``mujoco.batch.Batch``."""

    def __init__(self, family: MujocoFamily[Any], n_slots: int, n_threads: int) -> None:
        self.family = family
        self.n = n_slots
        self.batch = mjbatch.Batch(family.model, n_slots, nthread=n_threads)
        family.batch_setup(self.batch)
        # outputs are copied out after every call, so only those the kernels read are bound
        self.views = family.sim_views(self.batch.bind, n_slots)
        self.ctrl = self.batch.bind("ctrl")
        self.frame_skip = int(family.frame_skip)
        # mjSTAGE_ACC: mj_forward at the new state after the step, as the single env does when asked
        self.stage = int(mujoco.mjtStage.mjSTAGE_ACC if family.forward_after_step else mujoco.mjtStage.mjSTAGE_NONE)

    def close(self) -> None:
        """Release the MuJoCo batch (and its thread pool)."""
        self.batch = None

    def reset(self, tasks: Sequence[Task], rngs: Sequence[np.random.Generator], params: np.ndarray) -> np.ndarray:
        fam, b = self.family, self.batch
        fam.batch_apply_tasks(b, np.arange(self.n), tasks)
        # mj_resetData on every row (time, ctrl, warm start, ... back to the model's defaults)
        b.reset(stage=mujoco.mjtStage.mjSTAGE_NONE)
        qpos = np.empty(self.views.qpos.shape)
        qvel = np.empty(self.views.qvel.shape)
        for i, rng in enumerate(rngs):
            qpos[i], qvel[i] = fam.sample_initial_state(rng)
        self.views.qpos[...] = qpos
        self.views.qvel[...] = qvel
        b.forward()  # as gymnasium's set_state: mj_forward at the initial state
        return fam.observation(self.views, params)

    def step(
        self, actions: np.ndarray, params: np.ndarray, ids: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        fam, v = self.family, self.views
        before = fam.pre_step(v)
        self.ctrl[...] = actions
        self.batch.step(ids, nstep=self.frame_skip, stage=self.stage)
        obs = fam.observation(v, params)
        reward, terminated, terms = fam.transition(v, before, actions, params)
        return obs, reward, terminated, terms


class _MjDataBackend:
    """Every slot its own ``MjData``, stepped by ``mujoco.mj_step`` in a Python loop over the slots (split over
    ``n_threads`` Python threads: MuJoCo releases the GIL while it steps).

    Each slot gets the single environment's calls (``mj_resetData``, ``mj_forward``, ``mj_step`` with the family's
    ``frame_skip``, an ``mj_forward`` after it where the family asks) on a model equal to the single environment's,
    so its transitions are the env's by construction; a family whose tasks change the model
    (:meth:`~envs.mujoco_family.MujocoFamily.model_fields`) gets one ``MjModel`` per slot. After every call the
    arrays the kernels read are gathered from the slots into ``(n_slots, ...)`` arrays (``np.stack`` over views of
    each slot's ``MjData``).
    """

    def __init__(self, family: MujocoFamily[Any], n_slots: int, n_threads: int) -> None:
        if type(family).batch_apply_tasks is not MujocoFamily.batch_apply_tasks:
            raise BackendError(
                f"{type(family).__name__} applies its tasks through batch_apply_tasks, which "
                f"only the 'batch' backend calls: give the family model_fields(params) instead, or use backend "
                f"'batch'"
            )
        self.family = family
        self.n = n_slots
        self.per_slot_models = bool(family.model_fields(family.task_params([family.default_task()])))
        self.models = [copy.copy(family.model) if self.per_slot_models else family.model for _ in range(n_slots)]
        self.datas = [mujoco.MjData(m) for m in self.models]
        self._scratch = mujoco.MjData(family.model)  # mj_setConst's workspace, as the single env's
        names = ("qpos", "qvel", *sorted(family.sim_outputs))
        # live views of each slot's arrays, and the (n_slots, ...) arrays they are gathered into
        self._slot_arrays = {name: [getattr(d, name) for d in self.datas] for name in names}
        self._gathered = {name: np.empty((n_slots, *arrays[0].shape)) for name, arrays in self._slot_arrays.items()}
        self.views = family.sim_views(self._gathered.__getitem__, n_slots)
        self._ctrl = [d.ctrl for d in self.datas]
        self.frame_skip = int(family.frame_skip)
        self.forward_after_step = bool(family.forward_after_step)
        self.n_threads = max(1, min(n_threads, n_slots))
        self.pool = ThreadPoolExecutor(self.n_threads) if self.n_threads > 1 else None

    def _gather(self) -> None:
        for name, arrays in self._slot_arrays.items():
            np.stack(arrays, out=self._gathered[name])

    def reset(self, tasks: Sequence[Task], rngs: Sequence[np.random.Generator], params: np.ndarray) -> np.ndarray:
        fam = self.family
        if self.per_slot_models:  # as the single env's set_task: the task's fields, then mj_setConst
            for name, values in fam.model_fields(params).items():
                for model, value in zip(self.models, values):
                    getattr(model, name)[...] = value
            for model in self.models:
                mujoco.mj_setConst(model, self._scratch)
        for model, data, rng in zip(self.models, self.datas, rngs):  # as gymnasium's reset and set_state
            mujoco.mj_resetData(model, data)
            data.qpos[:], data.qvel[:] = fam.sample_initial_state(rng)
            mujoco.mj_forward(model, data)
        self._gather()
        return fam.observation(self.views, params)

    def _run(self, ids: np.ndarray, actions: np.ndarray) -> None:
        models, datas, ctrl, nstep = self.models, self.datas, self._ctrl, self.frame_skip
        for i in ids.tolist():
            ctrl[i][:] = actions[i]
            mujoco.mj_step(models[i], datas[i], nstep=nstep)
            if self.forward_after_step:
                mujoco.mj_forward(models[i], datas[i])

    def step(
        self, actions: np.ndarray, params: np.ndarray, ids: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        fam, v = self.family, self.views
        before = fam.pre_step(v)
        slots = np.arange(self.n) if ids is None else ids
        if self.pool is None:
            self._run(slots, actions)
        else:
            list(self.pool.map(self._run, np.array_split(slots, self.n_threads), [actions] * self.n_threads))
        self._gather()
        obs = fam.observation(v, params)
        reward, terminated, terms = fam.transition(v, before, actions, params)
        return obs, reward, terminated, terms

    def close(self) -> None:
        """Stop the thread pool."""
        if self.pool is not None:
            self.pool.shutdown()
            self.pool = None


class _NavigationBackend:
    """All slots of a navigation family as one ``(n_slots, 2)`` position array."""

    def __init__(self, family: Navigation2DEnv, n_slots: int) -> None:
        self.family = family
        self.n = n_slots
        self.state = family.initial_state(n_slots)

    def close(self) -> None:
        """Nothing to release: the slots are numpy arrays."""

    def reset(self, tasks: Sequence[Task], rngs: Sequence[np.random.Generator], params: np.ndarray) -> np.ndarray:
        self.state = self.family.initial_state(self.n)
        return self.family.observe(self.state)

    def step(
        self, actions: np.ndarray, params: np.ndarray, ids: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        state, reward, terms = self.family.transition(self.state, actions, params)
        if ids is None:
            self.state = state
        else:
            self.state[ids] = state[ids]
        return self.family.observe(self.state), reward, self.family.terminated(state, params), terms


class _EnvLoopBackend:
    """Every slot its own single environment of the family, stepped by its ``step`` in a Python loop: the backend of
    a family without vectorised kernels (Meta-World, :mod:`envs.metaworld`; any :class:`~envs.base.TaskFamily`
    environment), exact by construction. Slot ``i``'s environment takes the slot's random generator as its
    ``np_random`` and is reset with ``options={"task": task}``, so it starts as ``env.reset(seed=s_i, …)`` would.
    ``info``'s numbers become the reward terms of :attr:`BatchedEnv.last_info` (e.g. ``success``); a family's own
    ``truncated`` is ignored (the horizon is :class:`BatchedEnv`'s)."""

    def __init__(self, env_id: str, family: Any, n_slots: int, env_kwargs: dict[str, Any]) -> None:
        self.family = family
        self.n = n_slots
        self.envs = [make_unwrapped(env_id, **env_kwargs) for _ in range(n_slots)]
        self.obs = np.zeros((n_slots, *family.observation_space.shape), dtype=family.observation_space.dtype)

    def close(self) -> None:
        """Close every slot's environment."""
        for env in self.envs:
            env.close()
        self.envs = []

    def reset(self, tasks: Sequence[Task], rngs: Sequence[np.random.Generator], params: np.ndarray) -> np.ndarray:
        for i, (env, task, rng) in enumerate(zip(self.envs, tasks, rngs)):
            env.np_random = rng
            self.obs[i], _ = env.reset(options={"task": task})
        return self.obs.copy()

    def step(
        self, actions: np.ndarray, params: np.ndarray, ids: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        reward = np.zeros(self.n)
        terminated = np.zeros(self.n, dtype=bool)
        terms: dict[str, np.ndarray] = {}
        for i in (range(self.n) if ids is None else ids.tolist()):
            self.obs[i], reward[i], terminated[i], _, info = self.envs[i].step(actions[i])
            for key, value in info.items():
                if isinstance(value, (bool, int, float, np.number)):
                    terms.setdefault(key, np.zeros(self.n))[i] = value
        return self.obs.copy(), reward, terminated, terms


class BatchedEnv:
    """``n_slots`` episodes of one task family stepped together, one task per slot.

    Args:
        env_id: a registered family, e.g. ``"rl_alphamaml/AntVel-v0"`` (or ``"AntVel-v0"``).
        n_slots: number of parallel episodes (meta_batch × episodes_per_task).
        horizon: episode length in control steps; default: the family's registered
            ``max_episode_steps`` (200 locomotion, 100 navigation). Every slot is truncated
            when ``t`` reaches it.
        n_threads: threads of MuJoCo's batch thread pool (the caller's included), or of the Python threads
            that share the slots on the ``"mjdata"`` backend; default: all CPUs this process may use. Ignored
            for the navigation families and on the ``"gymnasium"`` backend.
        backend: how the MuJoCo families are stepped, one of :data:`BACKENDS`: ``"batch"`` (one
            ``mujoco.batch.Batch``, MuJoCo >= 3.17) or ``"mjdata"`` (one ``MjData`` per slot, any MuJoCo).
            Default: the environment variable ``RL_ALPHAMAML_BATCHED_BACKEND`` if set, else ``"batch"`` where
            ``mujoco.batch`` exists and ``"mjdata"`` where it does not (:func:`resolve_backend`). Both give the
            single environment's transitions bit for bit; they differ in speed only. The navigation families
            run on numpy and families without kernels (Meta-World) on their single environments (``"gymnasium"``)
            whatever the backend.
        **env_kwargs: constructor arguments of the family (``low=``, ``terminate_when_unhealthy=``,
            ``goal_radius=``, ...), as for ``gymnasium.make``.

    Episode protocol: :meth:`reset` starts an episode in every slot; each :meth:`step` advances
    the slots whose episode is still running (``active``). A slot whose episode ended
    (``terminated`` or ``truncated`` in an earlier step) is no longer simulated: its entries
    in later steps are reward 0, ``terminated = truncated = False`` and its last observation,
    and ``active`` is False for it. Use ``active`` *before* a step as the mask of that step's
    valid transitions. After the horizon (or when every slot has ended) ``done`` is True and
    :meth:`step` raises until the next :meth:`reset`.

    Layout: ``reset(tasks)`` with ``len(tasks) == k`` dividing ``n_slots`` runs ``tasks[j]`` in
    the ``n_slots // k`` consecutive slots ``j*n_slots//k ...``, so a meta-batch of 40 tasks on
    800 slots gives 20 episodes per task. :attr:`tasks` lists each slot's task.
    """

    def __init__(
        self,
        env_id: str,
        n_slots: int,
        *,
        horizon: int | None = None,
        n_threads: int | None = None,
        backend: str | None = None,
        **env_kwargs: Any,
    ) -> None:
        self.env_id = resolve_id(env_id)
        if isinstance(n_slots, bool) or not isinstance(n_slots, (int, np.integer)) or n_slots < 1:
            raise ValueError(f"n_slots must be a positive integer, got {n_slots!r}")
        self.n_slots = int(n_slots)
        if horizon is None:
            horizon = horizon_of(self.env_id)
        if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
            raise ValueError(f"horizon must be a positive integer, got {horizon!r}")
        self.horizon = int(horizon)
        threads = default_threads() if n_threads is None else int(n_threads)
        if threads < 1:
            raise ValueError(f"n_threads must be >= 1, got {n_threads!r}")
        self.n_threads = threads
        mujoco_backend = resolve_backend(backend)
        #: the family's single environment: spaces, task sampling/validation and the kernels
        self.family = make_unwrapped(self.env_id, **env_kwargs)
        self.observation_space = self.family.observation_space
        self.action_space = self.family.action_space
        self.obs_dim = int(self.observation_space.shape[0])
        self.act_dim = int(self.action_space.shape[0])
        self._backend: _MujocoBackend | _MjDataBackend | _NavigationBackend | _EnvLoopBackend
        #: the backend that steps the slots: ``"batch"`` or ``"mjdata"`` (MuJoCo families), ``"numpy"`` (navigation),
        #: ``"gymnasium"`` (a family without vectorised kernels, e.g. Meta-World: one environment per slot)
        self.backend: str
        if isinstance(self.family, MujocoFamily):
            backend_class = _MujocoBackend if mujoco_backend == "batch" else _MjDataBackend
            self._backend = backend_class(self.family, self.n_slots, threads)
            self.backend = mujoco_backend
        elif isinstance(self.family, Navigation2DEnv):
            self._backend = _NavigationBackend(self.family, self.n_slots)
            self.backend = "numpy"
        else:  # a family without vectorised kernels: its single environments
            self._backend = _EnvLoopBackend(self.env_id, self.family, self.n_slots, env_kwargs)
            self.backend = "gymnasium"
        self._rngs: list[np.random.Generator | None] = [None] * self.n_slots
        self._tasks: tuple[Task, ...] | None = None
        self._params = np.zeros((self.n_slots, 0))
        self._active = np.zeros(self.n_slots, dtype=bool)
        self._obs: np.ndarray | None = None
        self._t = 0
        #: reward terms and kinematics of the last step, each ``(n_slots,)`` (as ``info`` of the
        #: single environment, e.g. ``x_velocity``, ``reward_task``, ``reward_ctrl``)
        self.last_info: dict[str, np.ndarray] = {}

    # -- tasks -------------------------------------------------------------------------------------
    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[Task]:
        """Draw ``n`` tasks from the family's distribution (``family.sample_tasks``)."""
        return list(self.family.sample_tasks(n, rng))

    def sample_held_out_tasks(self, n: int, rng: np.random.Generator) -> list[Task]:
        """Draw ``n`` tasks to evaluate on (``family.sample_held_out_tasks``: a benchmark's test split, else the
        training distribution)."""
        return list(self.family.sample_held_out_tasks(n, rng))

    @property
    def tasks(self) -> tuple[Task, ...]:
        """Each slot's task, ``len == n_slots`` (after :meth:`reset`)."""
        if self._tasks is None:
            raise RuntimeError("no tasks yet: call reset(tasks, seeds) first")
        return self._tasks

    @property
    def task_params(self) -> np.ndarray:
        """Each slot's task as the float array the reward kernels use, ``(n_slots, k)``."""
        return self._params.copy()

    # -- episode state -------------------------------------------------------------------------
    @property
    def t(self) -> int:
        """Control steps taken since the last :meth:`reset`."""
        return self._t

    @property
    def active(self) -> np.ndarray:
        """Slots whose episode is still running (a copy), ``(n_slots,)`` bool."""
        return self._active.copy()

    @property
    def done(self) -> bool:
        """True when no slot is running (horizon reached or all terminated)."""
        return not self._active.any()

    # -- stepping ------------------------------------------------------------------------------
    def reset(
        self,
        tasks: Task | Sequence[Task | dict[str, Any]],
        seeds: int | Sequence[int] | None = None,
    ) -> np.ndarray:
        """Start an episode in every slot; return the observations ``(n_slots, obs_dim)``.

        Args:
            tasks: one task for all slots, or ``k`` tasks with ``n_slots % k == 0`` (task-major
                layout, see the class docstring). Tasks may be given in dict form.
            seeds: ``None`` continues each slot's random stream (as ``env.reset()``); an int
                ``s`` seeds slot ``i`` with ``s + i`` (as gymnasium's vector envs do); a
                sequence gives one non-negative int per slot. Slot ``i`` with seed ``s_i``
                starts exactly like ``env.reset(seed=s_i, options={"task": tasks_i})``.
        """
        task_list: list[Any] = [tasks] if isinstance(tasks, (Task, dict)) else list(tasks)
        if not task_list or self.n_slots % len(task_list) != 0:
            raise ValueError(
                f"got {len(task_list)} tasks for {self.n_slots} slots; give 1 task, one per slot, "
                f"or a number of tasks that divides n_slots"
            )
        checked = self.family.validate_tasks(task_list)
        per_task = self.n_slots // len(checked)
        slot_tasks = tuple(checked[i // per_task] for i in range(self.n_slots))
        self._seed(seeds)
        rngs = [self._rng(i) for i in range(self.n_slots)]
        params = self.family.task_params(slot_tasks)
        obs = self._backend.reset(slot_tasks, rngs, params)
        self._tasks = slot_tasks
        self._params = params
        self._active[:] = True
        self._t = 0
        self._obs = obs
        self.last_info = {}
        return obs

    def step(self, actions: np.ndarray) -> BatchStep:
        """Apply ``actions`` ``(n_slots, act_dim)`` to every running slot for one control step.

        Actions are used as given (no clipping; MuJoCo clamps controls to their range and the
        control cost is taken on the given action, as in the single environments; the
        navigation families clip to ±0.1). Returns a :class:`BatchStep` of fresh arrays.
        """
        if self._tasks is None or self._obs is None:
            raise RuntimeError("call reset(tasks, seeds) before step()")
        if not self._active.any():
            raise RuntimeError(f"every slot's episode has ended (t={self._t}, horizon={self.horizon}); call reset()")
        a = np.asarray(actions, dtype=np.float64)
        if a.shape != (self.n_slots, self.act_dim):
            raise ValueError(f"actions must have shape ({self.n_slots}, {self.act_dim}), got {a.shape}")
        if not np.isfinite(a[self._active]).all():
            bad = np.flatnonzero(~np.isfinite(a).all(axis=1) & self._active)
            raise ValueError(f"actions must be finite; slots {bad.tolist()[:10]} are not")
        all_active = bool(self._active.all())
        ids = None if all_active else np.flatnonzero(self._active).astype(np.int32)
        obs, reward, terminated, terms = self._backend.step(a, self._params, ids)
        self._t += 1
        truncated = np.full(self.n_slots, self._t >= self.horizon)
        if not all_active:
            ended = ~self._active
            obs[ended] = self._obs[ended]
            reward[ended] = 0.0
            terminated[ended] = False
            truncated[ended] = False
            for value in terms.values():
                value[ended] = 0.0
        self._active &= ~(terminated | truncated)
        self._obs = obs
        self.last_info = terms
        return BatchStep(obs, reward, terminated, truncated)

    def close(self) -> None:
        """Release the MuJoCo batch or the slots' thread pool."""
        self._backend.close()
        self.family.close()

    def __enter__(self) -> BatchedEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"BatchedEnv({self.env_id!r}, n_slots={self.n_slots}, horizon={self.horizon}, n_threads={self.n_threads}, "
            f"backend={self.backend!r})"
        )

    # -- seeding -----------------------------------------------------------------------------
    def _seed(self, seeds: int | Sequence[int] | None) -> None:
        if seeds is None:
            return
        if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
            per_slot = [int(seeds) + i for i in range(self.n_slots)]
        else:
            per_slot = [int(s) for s in seeds]  # type: ignore[union-attr]
            if len(per_slot) != self.n_slots:
                raise ValueError(f"got {len(per_slot)} seeds for {self.n_slots} slots")
        if any(s < 0 for s in per_slot):
            raise ValueError("seeds must be non-negative integers")
        self._rngs = [seeding.np_random(s)[0] for s in per_slot]

    def _rng(self, i: int) -> np.random.Generator:
        rng = self._rngs[i]
        if rng is None:
            rng = self._rngs[i] = seeding.np_random()[0]
        return rng
