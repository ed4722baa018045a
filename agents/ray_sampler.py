"""The Ray sampler backend: the meta-batch's environment slots spread over Ray actors.

Meta-RL spends most of its time stepping simulators, so this backend lets meta-training add machines
instead of changing code (``sampler.backend: ray`` in the config; ``pip install -e ".[distributed]"``).
Each :class:`RolloutWorker` actor owns a contiguous slice of the meta-batch's tasks — all
``episodes`` slots of each — in its own :class:`envs.BatchedEnv`, and a CPU copy of the policy module.
Per sampling phase the learner sends every worker its tasks' parameters (θ once when all tasks share it,
each task's θ'ᵢ after adaptation) and gets back batched trajectories, which are concatenated in task
order. Both backends run :func:`agents.sampler.rollout`, which gives every slot the seed and the action
noise it has in the whole meta-batch, so the same seed gives the same episodes as the local backend.

A worker that dies (its process or its node) is replaced by a new actor and its slice is sampled again
from the same seeds, so the phase's data is exactly what it would have been: nothing lost, nothing
sampled twice. After ``max_retries`` failed attempts of one slice the phase fails with
:class:`SamplerError`.

This is the only module that imports Ray; the learner sees the interface of
:class:`agents.sampler.Sampler` (``sample_tasks``, ``sample``, ``close`` and the size attributes).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

import envs
from agents.policy import GaussianMLPPolicy
from agents.sampler import Episodes, rollout, stream_seeds
from envs.tasks import Task
from rl_alphamaml.errors import IterationFailedError, UserError

try:
    import ray
    from ray.exceptions import ActorUnavailableError, RayActorError
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise UserError(
        'sampler.backend "ray" needs Ray: pip install -e ".[distributed]" (or pip install "ray>=2.30")'
    ) from err

log = logging.getLogger(__name__)

#: errors that mean "the worker is gone", as opposed to an exception raised by the rollout code itself
WORKER_LOST = (RayActorError, ActorUnavailableError)


class SamplerError(IterationFailedError):
    """A slice of the meta-batch could not be sampled: its workers kept failing. Sampling happens before
    any update of the iteration, so the runner checkpoints the previous iteration's state and stops."""


class RolloutWorker:
    """A Ray actor: one :class:`envs.BatchedEnv` for tasks ``task_offset … task_offset + num_tasks``."""

    def __init__(self, env_id: str, num_tasks: int, episodes: int, horizon: int | None, task_offset: int,
                 threads: int, env_kwargs: Mapping[str, Any] | None = None) -> None:
        torch.set_num_threads(1)
        self.env = envs.BatchedEnv(env_id, n_slots=num_tasks * episodes, n_threads=threads, horizon=horizon,
                                   **dict(env_kwargs or {}))
        self.episodes = episodes
        self.task_offset = task_offset
        self.policy: GaussianMLPPolicy | None = None
        self._exit_at_step: int | None = None

    def set_policy(self, policy: GaussianMLPPolicy) -> None:
        self.policy = policy

    def pid(self) -> int:
        return os.getpid()

    def node_id(self) -> str:
        """The Ray node this worker runs on (for tests and diagnostics)."""
        return str(ray.get_runtime_context().get_node_id())

    def exit_during_next_sample(self, step: int) -> None:
        """Fault injection for tests: the process exits (as a crash would) at control step ``step``."""
        self._exit_at_step = step

    @torch.no_grad()
    def sample(self, params: Mapping[str, np.ndarray], shared: bool, tasks: Sequence[Task], env_seed: int,
               noise_seed: int, total_tasks: int) -> dict[str, Any]:
        if self.policy is None:
            raise RuntimeError("set_policy() must come before sample()")
        T = len(tasks)
        tensors = {k: torch.from_numpy(np.asarray(v)) for k, v in params.items()}
        if shared:
            tensors = {k: v.unsqueeze(0).expand(T, *v.shape) for k, v in tensors.items()}
        exit_at, self._exit_at_step = self._exit_at_step, None

        def on_step(t: int) -> None:
            if t == exit_at:
                os._exit(1)

        out = rollout(self.env, self.policy, tensors, tasks, self.episodes, env_seed, noise_seed,
                      task_offset=self.task_offset, total_tasks=total_tasks, on_step=on_step)
        ep = out.episodes
        return {"obs": ep.obs.numpy(), "actions": ep.actions.numpy(), "rewards": ep.rewards.numpy(),
                "mask": ep.mask.numpy(), "env_seconds": out.env_seconds, "policy_seconds": out.policy_seconds}


def slices(num_tasks: int, workers: int) -> list[tuple[int, int]]:
    """Contiguous ``(start, stop)`` task ranges, as even as possible, one per worker."""
    workers = max(1, min(workers, num_tasks))
    bounds = np.linspace(0, num_tasks, workers + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(bounds)]


class RaySampler:
    """Drop-in for :class:`agents.sampler.Sampler` that steps the slots on Ray actors.

    Args:
        env_id, num_tasks, episodes, horizon, env_kwargs: as for :class:`agents.sampler.Sampler`.
        address: an existing cluster (``"auto"`` or ``"HOST:PORT"``, as for ``ray.init``); ``None``
            starts a local Ray instance (or joins the one this process already started).
        workers: actors; ``0`` means one per CPU of the cluster. Never more than ``num_tasks``.
        threads: MuJoCo batch threads per actor (each actor reserves that many CPUs).
        max_retries: attempts to re-sample a slice after its worker died, per phase.
    """

    def __init__(self, env_id: str, num_tasks: int, episodes: int, horizon: int | None = None,
                 address: str | None = None, workers: int = 0, threads: int = 1, max_retries: int = 3,
                 env_kwargs: Mapping[str, Any] | None = None) -> None:
        self.env_id = env_id
        self.num_tasks = num_tasks
        self.episodes = episodes
        self.horizon_arg = horizon
        self.threads = max(1, threads)
        self.max_retries = max_retries
        # A one-slot environment here gives the spaces, the horizon and the task distribution.
        self.env_kwargs = dict(env_kwargs or {})
        self._probe = envs.BatchedEnv(env_id, n_slots=1, n_threads=1, horizon=horizon, **self.env_kwargs)
        self.obs_dim = int(self._probe.obs_dim)
        self.act_dim = int(self._probe.act_dim)
        self.action_space = self._probe.action_space
        self.horizon = int(self._probe.horizon)
        self._started_ray = False
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING,
                     log_to_driver=False, configure_logging=False)
            self._started_ray = True  # a local instance, or this process's connection to a cluster
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.slices = slices(num_tasks, workers or max(1, cpus // self.threads))
        self._actor_cls = ray.remote(num_cpus=self.threads, max_restarts=0)(RolloutWorker)
        self.workers = [self._new_worker(i) for i in range(len(self.slices))]
        self._policy: GaussianMLPPolicy | None = None
        self._policy_ref: Any = None
        self.env_seconds = 0.0  # summed over phases: the slowest worker's stepping and policy time
        self.policy_seconds = 0.0
        self.restarts = 0  # workers replaced after a failure
        self.bytes_sent = 0  # parameters sent to workers (numpy payload), for the scaling estimate
        self.bytes_received = 0  # trajectories received

    def _new_worker(self, index: int) -> Any:
        start, stop = self.slices[index]
        return self._actor_cls.remote(self.env_id, stop - start, self.episodes, self.horizon_arg, start,
                                      self.threads, self.env_kwargs)

    def sample_tasks(self, rng: np.random.Generator, n: int | None = None) -> list[Task]:
        return self._probe.sample_tasks(self.num_tasks if n is None else n, rng)

    def _send_policy(self, indices: Sequence[int]) -> None:
        ray.get([self.workers[i].set_policy.remote(self._policy_ref) for i in indices])

    @torch.no_grad()
    def sample(self, policy: GaussianMLPPolicy, params: Mapping[str, Tensor], tasks: Sequence[Task],
               seed: Sequence[int]) -> Episodes:
        """As :meth:`agents.sampler.Sampler.sample`, with the slots stepped on the workers."""
        if len(tasks) != self.num_tasks:
            raise ValueError(f"the sampler was built for {self.num_tasks} tasks, got {len(tasks)}")
        env_seed, noise_seed = stream_seeds(seed)
        if policy is not self._policy:  # the policy module travels once, not per phase
            self._policy, self._policy_ref = policy, ray.put(policy)
            self._send_policy(range(len(self.workers)))
        # θ expanded over the tasks (stride 0 on the task dim) is sent once, not once per task.
        shared = all(v.dim() > 0 and v.stride(0) == 0 for v in params.values())
        payload = {k: v.detach().to("cpu", torch.float32) for k, v in params.items()}

        def submit(i: int) -> Any:
            start, stop = self.slices[i]
            part = {k: (v[0] if shared else v[start:stop]).contiguous().numpy() for k, v in payload.items()}
            self.bytes_sent += sum(a.nbytes for a in part.values())
            return self.workers[i].sample.remote(part, shared, list(tasks[start:stop]), env_seed, noise_seed,
                                                 self.num_tasks)

        pending = {submit(i): i for i in range(len(self.workers))}
        attempts = [0] * len(self.workers)
        results: list[dict[str, Any] | None] = [None] * len(self.workers)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            index = pending.pop(ready[0])
            try:
                results[index] = ray.get(ready[0])
            except WORKER_LOST as err:
                attempts[index] += 1
                if attempts[index] > self.max_retries:
                    raise SamplerError(
                        f"tasks {self.slices[index]} could not be sampled: their worker died "
                        f"{attempts[index]} times (last error: {type(err).__name__})"
                    ) from err
                log.warning("sampler worker %d died (%s); restarting it and sampling its tasks again",
                            index, type(err).__name__)
                self._replace(index)
                pending[submit(index)] = index
        done = [r for r in results if r is not None]
        self.env_seconds += max(r["env_seconds"] for r in done)
        self.policy_seconds += max(r["policy_seconds"] for r in done)
        self.bytes_received += sum(r[k].nbytes for r in done for k in ("obs", "actions", "rewards", "mask"))
        # np.concatenate copies out of Ray's read-only object store into fresh, writable arrays.
        return Episodes(*(torch.from_numpy(np.concatenate([r[k] for r in done]))
                          for k in ("obs", "actions", "rewards", "mask")))

    def _replace(self, index: int) -> None:
        with contextlib.suppress(Exception):  # the actor is already gone
            ray.kill(self.workers[index])
        self.workers[index] = self._new_worker(index)
        self.restarts += 1
        self._send_policy([index])

    def close(self) -> None:
        """Stop the workers (and the Ray instance, if this sampler started it)."""
        for worker in self.workers:
            with contextlib.suppress(Exception):  # already gone
                ray.kill(worker)
        self.workers = []
        self._probe.close()
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False

    def worker_pids(self) -> list[int]:
        """Process ids of the workers (for tests and diagnostics)."""
        return [int(p) for p in ray.get([w.pid.remote() for w in self.workers])]
