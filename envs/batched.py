"""Batched, closed-loop stepping of many slots of one task family: the meta-training hot path.

MAML-RL samples ``meta_batch × episodes_per_task`` episodes per iteration (40 tasks × 20
episodes for HalfCheetahVel in [1]), each slot with its own task, the policy evaluated
once per control step for all slots together. :class:`BatchedEnv` does that without a Python
environment object per slot: the MuJoCo families run on one ``mujoco.batch.Batch`` (MuJoCo's
batch API: every slot is one row of integration state, stepped on a native thread pool with the
GIL released), the navigation families on numpy arrays. Observations, rewards and termination
come from the same vectorised kernels as the single environments (:mod:`envs.half_cheetah`, :mod:`envs.ant`,
:mod:`envs.navigation`), and each slot's state row carries the constraint solver's warm start,
so a slot's transitions equal those of ``gymnasium.make(env_id)`` with the same task, seed and
actions (tested over full episodes of every family).

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
numbers in ``docs/envs.md``): at 800 slots this closed loop runs as fast as one open-loop
``mujoco.rollout`` over all slots on all cores (HalfCheetahVel 78k vs 75k steps/s, AntVel 12.1k vs
11.4k); a Python loop over one ``MjData`` per slot was 1.1-2.7x slower (GIL-bound), and a
``mujoco.rollout`` call per control step or worker processes were no faster — the former cannot
return the solver's warm start, the latter add processes for nothing on 2 cores.

References:
    [1] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, NamedTuple

import mujoco
import numpy as np
from gymnasium.utils import seeding
from mujoco import batch as mjbatch

from envs.mujoco_family import MujocoFamily
from envs.navigation import Navigation2DEnv
from envs.registry import horizon_of, make_unwrapped, resolve_id
from envs.tasks import Task

__all__ = ["BatchStep", "BatchedEnv", "default_threads"]


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


class _NavigationBackend:
    """All slots of a navigation family as one ``(n_slots, 2)`` position array."""

    def __init__(self, family: Navigation2DEnv, n_slots: int) -> None:
        self.family = family
        self.n = n_slots
        self.state = family.initial_state(n_slots)

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


class BatchedEnv:
    """``n_slots`` episodes of one task family stepped together, one task per slot.

    Args:
        env_id: a registered family, e.g. ``"rl_alphamaml/AntVel-v0"`` (or ``"AntVel-v0"``).
        n_slots: number of parallel episodes (meta_batch × episodes_per_task).
        horizon: episode length in control steps; default: the family's registered
            ``max_episode_steps`` (200 locomotion, 100 navigation). Every slot is truncated
            when ``t`` reaches it.
        n_threads: threads of MuJoCo's batch thread pool (the caller's included); default: all
            CPUs this process may use. Ignored for the navigation families.
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
        #: the family's single environment: spaces, task sampling/validation and the kernels
        self.family = make_unwrapped(self.env_id, **env_kwargs)
        self.observation_space = self.family.observation_space
        self.action_space = self.family.action_space
        self.obs_dim = int(self.observation_space.shape[0])
        self.act_dim = int(self.action_space.shape[0])
        self._backend: _MujocoBackend | _NavigationBackend
        if isinstance(self.family, MujocoFamily):
            self._backend = _MujocoBackend(self.family, self.n_slots, threads)
        elif isinstance(self.family, Navigation2DEnv):
            self._backend = _NavigationBackend(self.family, self.n_slots)
        else:  # pragma: no cover - every registered family is one of the two
            raise TypeError(f"no batched backend for {type(self.family).__name__}")
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
        """Release the MuJoCo batch and its thread pool."""
        if isinstance(self._backend, _MujocoBackend):
            self._backend.batch = None
        self.family.close()

    def __enter__(self) -> BatchedEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"BatchedEnv({self.env_id!r}, n_slots={self.n_slots}, horizon={self.horizon}, n_threads={self.n_threads})"
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
