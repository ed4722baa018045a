"""Episode sampling for meta-RL: every task's policy on its own task, all slots stepped together.

The environment side is :class:`envs.BatchedEnv` (MuJoCo's batch API, every slot one row of state, or one
``MjData`` per slot where MuJoCo has no batch API);
this module is the torch side: one policy call per control step for all tasks at once (parameters
stacked per task, see :class:`agents.policy.GaussianMLPPolicy`), actions drawn from a seeded
:class:`torch.Generator`, environments reset from seeds of the same stream. Same stream, same episodes.

Layout of an :class:`Episodes` batch: ``(tasks, time, episodes_per_task, ...)`` — the layout of
:mod:`agents.returns` and :mod:`agents.baseline` with the task as the leading batch dimension.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

import envs
from agents.policy import GaussianMLPPolicy
from envs.tasks import Task
from rl_alphamaml.errors import IterationFailedError


@dataclasses.dataclass
class Episodes:
    """A batch of episodes: ``obs`` (T, H, E, obs_dim), ``actions`` (T, H, E, act_dim), ``rewards`` and
    ``mask`` (T, H, E; 1 where the step happened); for a family that reports success
    (:attr:`envs.base.TaskFamily.reports_success`) ``success`` (T, E): 1 where ``info["success"]`` was 1 at any step
    of the episode, else ``None``."""

    obs: Tensor
    actions: Tensor
    rewards: Tensor
    mask: Tensor
    success: Tensor | None = None

    @property
    def num_steps(self) -> int:
        """Environment steps in the batch."""
        return int(self.mask.sum())

    def episode_returns(self) -> Tensor:
        """Undiscounted return of every episode, (T, E)."""
        return (self.rewards * self.mask).sum(dim=1)

    def task_returns(self) -> Tensor:
        """Mean episode return of each task, (T,)."""
        return self.episode_returns().mean(dim=1)

    def task_success(self) -> Tensor | None:
        """Each task's success rate, the share of its episodes that succeeded, (T,); ``None`` for a family that
        reports no success."""
        return None if self.success is None else self.success.mean(dim=1)

    def head(self, count: int) -> Episodes:
        """The first ``count`` episodes of every task."""
        return Episodes(self.obs[:, :, :count], self.actions[:, :, :count], self.rewards[:, :, :count],
                        self.mask[:, :, :count], None if self.success is None else self.success[:, :count])

    def to(self, like: Tensor) -> Episodes:
        """The episodes in the dtype and on the device of ``like`` (the learner's parameters); no copy when
        they already are. Sampling always runs in float32 on the CPU."""
        return Episodes(self.obs.to(like), self.actions.to(like), self.rewards.to(like), self.mask.to(like),
                        None if self.success is None else self.success.to(like))

    @staticmethod
    def cat(parts: Sequence[Episodes]) -> Episodes:
        """The episodes of ``parts`` (consecutive slices of the tasks) as one batch, in order."""
        obs, actions, rewards, mask = (torch.cat([getattr(p, name) for p in parts])
                                       for name in ("obs", "actions", "rewards", "mask"))
        success = None if parts[0].success is None else torch.cat([p.success for p in parts])  # type: ignore[misc]
        return Episodes(obs, actions, rewards, mask, success)


class EpisodeSampler(Protocol):
    """What the learner needs of a sampler: the local :class:`Sampler` and :class:`agents.ray_sampler.RaySampler`
    both provide it."""

    num_tasks: int
    episodes: int
    obs_dim: int
    act_dim: int
    horizon: int
    action_space: Any
    env_seconds: float
    policy_seconds: float

    def sample_tasks(self, rng: np.random.Generator, n: int | None = None, held_out: bool = False) -> list[Task]:
        """``n`` tasks (default: ``num_tasks``) from the family's distribution, drawn with ``rng``; with
        ``held_out`` the tasks to evaluate on (:meth:`envs.BatchedEnv.sample_held_out_tasks`)."""
        ...

    def sample(self, policy: GaussianMLPPolicy, params: Mapping[str, Tensor], tasks: Sequence[Task],
               seed: Sequence[int]) -> Episodes:
        """``episodes`` episodes of every task with its own parameters (a leading task dimension), on the random
        stream ``seed``; the same stream gives the same episodes on every backend."""
        ...

    def close(self) -> None:
        """Release the simulators (and workers)."""
        ...


def tasks_per_pass(num_tasks: int, episodes: int, max_slots: int = 0) -> int:
    """How many of ``num_tasks`` tasks one pass of the simulators holds when at most ``max_slots`` slots may be
    stepped at once (0: no limit): the largest divisor of ``num_tasks`` whose slots fit (at least one task)."""
    if max_slots <= 0 or num_tasks * episodes <= max_slots:
        return num_tasks
    fits = [d for d in range(1, num_tasks + 1) if num_tasks % d == 0 and d * episodes <= max_slots]
    return max(fits, default=1)


class Sampler:
    """Samples ``episodes`` episodes of every task in a meta-batch with per-task policy parameters.

    With ``max_slots`` (0: no limit) at most that many slots are stepped at once: the tasks are rolled out in passes
    of :func:`tasks_per_pass` tasks each, on a :class:`envs.BatchedEnv` of that size, giving the episodes of one
    pass over all of them (:func:`rollout` gives every slot its seed and noise in the whole meta-batch). It bounds
    the simulators' memory, which for a family stepped one environment per slot (Meta-World: ~20 MB each) grows
    with the slots.

    Example::

        sampler = Sampler("rl_alphamaml/Navigation2D-v0", num_tasks=20, episodes=20)
        tasks = sampler.sample_tasks(np.random.default_rng(0))
        batch = sampler.sample(policy, expand_params(policy.params(), 20), tasks, seed=(0, 1))
    """

    def __init__(
        self, env_id: str, num_tasks: int, episodes: int, threads: int | None = None, horizon: int | None = None,
        env_kwargs: Mapping[str, Any] | None = None, max_slots: int = 0,
    ) -> None:
        self.env_id = env_id
        self.num_tasks = num_tasks
        self.episodes = episodes
        #: tasks rolled out together (``num_tasks`` unless ``max_slots`` asks for passes)
        self.pass_tasks = tasks_per_pass(num_tasks, episodes, max_slots)
        self.env = envs.BatchedEnv(env_id, n_slots=self.pass_tasks * episodes, n_threads=threads or None,
                                   horizon=horizon, **dict(env_kwargs or {}))
        self.obs_dim = int(self.env.obs_dim)
        self.act_dim = int(self.env.act_dim)
        self.action_space = self.env.action_space
        self.horizon = int(self.env.horizon)
        self.env_seconds = 0.0  # cumulative stepping and policy time, for the time/sampling_* scalars
        self.policy_seconds = 0.0

    def sample_tasks(self, rng: np.random.Generator, n: int | None = None, held_out: bool = False) -> list[Task]:
        """``n`` tasks (default: ``num_tasks``) from the family's distribution, drawn with ``rng``; with
        ``held_out`` the tasks to evaluate on (the family's test split where it has one)."""
        draw = self.env.sample_held_out_tasks if held_out else self.env.sample_tasks
        return draw(self.num_tasks if n is None else n, rng)

    @torch.no_grad()
    def sample(
        self,
        policy: GaussianMLPPolicy,
        params: Mapping[str, Tensor],
        tasks: Sequence[Task],
        seed: Sequence[int],
    ) -> Episodes:
        """Roll out task ``i``'s parameters ``params[name][i]`` on ``tasks[i]`` for ``episodes`` episodes.

        ``seed`` names the random stream (e.g. ``(config_seed, iteration, phase)``): it seeds the
        environments' initial states and the action noise.
        """
        if len(tasks) != self.num_tasks:
            raise ValueError(f"the sampler was built for {self.num_tasks} tasks, got {len(tasks)}")
        env_seed, noise_seed = stream_seeds(seed)
        params = {k: v.detach().to("cpu", torch.float32) for k, v in params.items()}  # the simulators' side
        # The per-step policy call is tiny; torch's idle OpenMP workers would spin on the cores MuJoCo's
        # batch threads step on (measured on 2 cores: 1.7× the time per 40,000 HalfCheetah steps).
        torch_threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            out = rollout_in_passes(self.env, policy, params, tasks, self.episodes, env_seed, noise_seed)
        finally:
            torch.set_num_threads(torch_threads)
        self.env_seconds += out.env_seconds
        self.policy_seconds += out.policy_seconds
        return out.episodes

    def close(self) -> None:
        """Release the batched simulator."""
        self.env.close()


def stream_seeds(seed: Sequence[int]) -> tuple[int, int]:
    """The environment seed and the action-noise seed of the random stream named by ``seed``."""
    env_seed, noise_seed = np.random.SeedSequence(list(seed)).generate_state(2, dtype=np.uint64)
    return int(env_seed) & (2**31 - 1), int(noise_seed) & (2**63 - 1)


@dataclasses.dataclass
class Rollout:
    """What :func:`rollout` returns: the episodes and the seconds spent stepping and in the policy."""

    episodes: Episodes
    env_seconds: float
    policy_seconds: float


def rollout(
    env: envs.BatchedEnv,
    policy: GaussianMLPPolicy,
    params: Mapping[str, Tensor],
    tasks: Sequence[Task],
    episodes: int,
    env_seed: int,
    noise_seed: int,
    task_offset: int = 0,
    total_tasks: int | None = None,
    on_step: Callable[[int], None] | None = None,
) -> Rollout:
    """Roll out ``tasks`` (task ``i`` with ``params[name][i]``) on ``env``, ``episodes`` slots per task.

    The environment receives :meth:`GaussianMLPPolicy.env_action` of each sample; the episodes record the
    samples themselves (what the log-probabilities are taken of).

    The rollout may be one slice of a larger meta-batch — tasks ``task_offset … task_offset + len(tasks)``
    of ``total_tasks`` — and then yields exactly the rows that the whole meta-batch would: slot ``s`` of
    the whole batch starts from seed ``env_seed + s`` and the action noise of every step is drawn for the
    whole batch from one generator seeded with ``noise_seed`` and sliced. This is what lets a distributed
    backend split the slots across workers and still return the local backend's trajectories. Observations
    and actions after an episode ended are zero (their mask is 0), so the result does not depend on which
    other slots shared the simulator. ``on_step(t)`` is called before every control step.
    """
    T, E, H = len(tasks), episodes, env.horizon
    total = T if total_tasks is None else total_tasks
    track_success = bool(getattr(env.family, "reports_success", False))
    if env.n_slots != T * E:
        raise ValueError(f"the environment has {env.n_slots} slots, {T} tasks × {E} episodes need {T * E}")
    bad = [name for name, value in params.items() if not bool(torch.isfinite(value).all())]
    if bad:  # checked once here, not per step: the simulators refuse non-finite actions with a ValueError
        raise IterationFailedError(f"the policy's parameters {', '.join(bad)} are not finite: no episodes sampled")
    generator = torch.Generator().manual_seed(noise_seed)
    started = time.perf_counter()
    first = env_seed + task_offset * E
    obs_np = env.reset(list(tasks), seeds=list(range(first, first + T * E)))
    env_time = time.perf_counter() - started
    obs_dim, act_dim = int(env.obs_dim), int(env.act_dim)
    obs_buf = torch.zeros(T, H, E, obs_dim)
    act_buf = torch.zeros(T, H, E, act_dim)
    rew_buf = torch.zeros(T, H, E)
    mask_buf = torch.zeros(T, H, E)
    success = torch.zeros(T, E) if track_success else None
    policy_time = 0.0
    for t in range(H):
        if on_step is not None:
            on_step(t)
        active = torch.from_numpy(env.active).view(T, E, 1).float()
        obs = torch.from_numpy(np.asarray(obs_np, dtype=np.float32)).view(T, E, obs_dim)
        t0 = time.perf_counter()
        noise = torch.randn((total, E, act_dim), generator=generator)[task_offset:task_offset + T]
        actions = policy.sample(params, obs, noise=noise)
        t1 = time.perf_counter()
        step = env.step(policy.env_action(actions).reshape(T * E, act_dim).numpy().astype(np.float64))
        env_time += time.perf_counter() - t1
        policy_time += t1 - t0
        obs_buf[:, t] = obs * active
        act_buf[:, t] = actions * active
        rew_buf[:, t] = torch.from_numpy(step.reward.astype(np.float32)).view(T, E)
        mask_buf[:, t] = active.squeeze(-1)
        if success is not None:  # an ended slot's terms are 0 (BatchedEnv)
            solved = torch.from_numpy(np.asarray(env.last_info["success"], dtype=np.float32) >= 1.0).view(T, E)
            success = torch.maximum(success, solved.float())
        obs_np = step.obs
        if env.done:
            break
    return Rollout(Episodes(obs_buf, act_buf, rew_buf * mask_buf, mask_buf, success), env_time, policy_time)


def rollout_in_passes(
    env: envs.BatchedEnv,
    policy: GaussianMLPPolicy,
    params: Mapping[str, Tensor],
    tasks: Sequence[Task],
    episodes: int,
    env_seed: int,
    noise_seed: int,
    task_offset: int = 0,
    total_tasks: int | None = None,
    on_step: Callable[[int], None] | None = None,
) -> Rollout:
    """:func:`rollout` of ``tasks`` on an ``env`` that holds ``env.n_slots // episodes`` of them at a time, pass after
    pass (one pass when it holds them all). Each pass is a slice of the meta-batch for :func:`rollout`, so the
    episodes are those of one pass over all the tasks, whatever the size of ``env``."""
    per_pass = env.n_slots // episodes
    if env.n_slots % episodes or per_pass < 1 or len(tasks) % per_pass:
        raise ValueError(f"the environment has {env.n_slots} slots: {len(tasks)} tasks × {episodes} episodes need "
                         f"a multiple of {episodes} slots that divides them")
    total = len(tasks) + task_offset if total_tasks is None else total_tasks
    parts = []
    for start in range(0, len(tasks), per_pass):
        part = {k: v[start:start + per_pass] for k, v in params.items()}
        parts.append(rollout(env, policy, part, tasks[start:start + per_pass], episodes, env_seed, noise_seed,
                             task_offset + start, total, on_step))
    if len(parts) == 1:
        return parts[0]
    return Rollout(Episodes.cat([p.episodes for p in parts]), sum(p.env_seconds for p in parts),
                   sum(p.policy_seconds for p in parts))
