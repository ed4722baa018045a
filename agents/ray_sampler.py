"""The Ray sampler backend: the meta-batch's environment slots spread over Ray actors.

Meta-RL spends most of its time stepping simulators, so this backend lets meta-training add machines
instead of changing code (``sampler.backend: ray`` in the config; ``pip install -e ".[distributed]"``).
Each :class:`RolloutWorker` actor owns a contiguous slice of the meta-batch's tasks — all
``episodes`` slots of each — in its own :class:`envs.BatchedEnv`, and a CPU copy of the policy module.
Per sampling phase the learner sends every worker its tasks' parameters (θ once when all tasks share it,
each task's θ'ᵢ after adaptation) and gets back batched trajectories, which are concatenated in task
order. Both backends run :func:`agents.sampler.rollout`, which gives every slot the seed and the action
noise it has in the whole meta-batch, so the same seed gives the same episodes as the local backend.

A worker that dies (its process or its node) leaves the pool and its slice is sampled again, from the same
seeds, by a surviving worker, so the phase's data is exactly what it would have been: nothing lost, nothing
sampled twice, and no waiting for a replacement that a smaller cluster may have no CPU for. Before each
phase the pool is brought back to its size with new actors as far as the cluster has free CPUs, and the
tasks are sliced over the workers there are. After ``max_retries`` failed attempts of one slice, or with
no worker left, the phase fails with :class:`SamplerError` (the runner then checkpoints the previous
iteration and stops); so does losing the connection to the cluster (its head node).

This is the only module that imports Ray; the learner sees the interface of
:class:`agents.sampler.Sampler` (``sample_tasks``, ``sample``, ``close`` and the size attributes).
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import logging
import os
import socket
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

import envs
from agents.policy import GaussianMLPPolicy
from agents.sampler import Episodes, rollout_in_passes, stream_seeds, tasks_per_pass
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
    """A Ray actor that rolls out any slice of the meta-batch it is given, with one :class:`envs.BatchedEnv` per
    slice size (made on first use: a worker takes over a dead one's slice without a new actor); with ``max_slots``
    a slice goes in passes of at most that many slots (:func:`agents.sampler.rollout_in_passes`)."""

    def __init__(self, env_id: str, episodes: int, horizon: int | None, threads: int,
                 env_kwargs: Mapping[str, Any] | None = None, max_slots: int = 0) -> None:
        torch.set_num_threads(1)
        self.env_id, self.horizon, self.threads = env_id, horizon, threads
        self.max_slots = max_slots
        self.env_kwargs = dict(env_kwargs or {})
        self.envs: dict[int, envs.BatchedEnv] = {}
        self.episodes = episodes
        self.policy: GaussianMLPPolicy | None = None
        self._exit_at_step: int | None = None

    def _env(self, num_tasks: int) -> envs.BatchedEnv:
        if num_tasks not in self.envs:
            slots = tasks_per_pass(num_tasks, self.episodes, self.max_slots) * self.episodes
            self.envs[num_tasks] = envs.BatchedEnv(self.env_id, n_slots=slots, n_threads=self.threads,
                                                   horizon=self.horizon, **self.env_kwargs)
        return self.envs[num_tasks]

    def set_policy(self, policy: GaussianMLPPolicy) -> None:
        """The policy module to evaluate (its architecture; the parameters come with every sample call)."""
        self.policy = policy

    def pid(self) -> int:
        """This worker's process id (for tests and diagnostics)."""
        return os.getpid()

    def node_id(self) -> str:
        """The Ray node this worker runs on (for tests and diagnostics)."""
        return str(ray.get_runtime_context().get_node_id())

    def exit_during_next_sample(self, step: int) -> None:
        """Fault injection for tests: the process exits (as a crash would) at control step ``step``."""
        self._exit_at_step = step

    @torch.no_grad()
    def sample(self, params: Mapping[str, np.ndarray], shared: bool, tasks: Sequence[Task], env_seed: int,
               noise_seed: int, total_tasks: int, task_offset: int) -> dict[str, Any]:
        """Roll out tasks ``task_offset … task_offset + len(tasks)`` of a meta-batch of ``total_tasks``."""
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

        out = rollout_in_passes(self._env(T), self.policy, tensors, tasks, self.episodes, env_seed, noise_seed,
                                task_offset=task_offset, total_tasks=total_tasks, on_step=on_step)
        ep = out.episodes
        return {"obs": ep.obs.numpy(), "actions": ep.actions.numpy(), "rewards": ep.rewards.numpy(),
                "mask": ep.mask.numpy(), "success": None if ep.success is None else ep.success.numpy(),
                "env_seconds": out.env_seconds, "policy_seconds": out.policy_seconds}


def slices(num_tasks: int, workers: int) -> list[tuple[int, int]]:
    """Contiguous ``(start, stop)`` task ranges, as even as possible, one per worker."""
    workers = max(1, min(workers, num_tasks))
    bounds = np.linspace(0, num_tasks, workers + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(bounds)]


class RaySampler:
    """Drop-in for :class:`agents.sampler.Sampler` that steps the slots on Ray actors.

    Args:
        env_id: as for :class:`agents.sampler.Sampler`.
        num_tasks: as for :class:`agents.sampler.Sampler`.
        episodes: as for :class:`agents.sampler.Sampler`.
        horizon: as for :class:`agents.sampler.Sampler`.
        address: an existing cluster (``"auto"`` or ``"HOST:PORT"``, as for ``ray.init``); ``None``
            starts a local Ray instance (or joins the one this process already started).
        workers: actors; ``0`` means one per CPU of the cluster. Never more than ``num_tasks``.
        threads: MuJoCo batch threads per actor (each actor reserves that many CPUs).
        max_retries: attempts to re-sample a slice after its worker died, per phase.
        env_kwargs: as for :class:`agents.sampler.Sampler`.
        max_slots: slots a worker steps at once (0: its whole slice), as for :class:`agents.sampler.Sampler`.
    """

    def __init__(self, env_id: str, num_tasks: int, episodes: int, horizon: int | None = None,
                 address: str | None = None, workers: int = 0, threads: int = 1, max_retries: int = 3,
                 env_kwargs: Mapping[str, Any] | None = None, max_slots: int = 0) -> None:
        self.env_id = env_id
        self.num_tasks = num_tasks
        self.episodes = episodes
        self.horizon_arg = horizon
        self.threads = max(1, threads)
        self.max_retries = max_retries
        self.max_slots = max_slots
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
        self.gcs_address = str(ray.get_runtime_context().gcs_address)
        self.cluster_lost = False
        cpus = int(ray.cluster_resources().get("CPU", 1))
        #: the pool's size: the workers asked for, never more than the tasks
        self.target = len(slices(num_tasks, workers or max(1, cpus // self.threads)))
        self._actor_cls = ray.remote(num_cpus=self.threads, max_restarts=0)(RolloutWorker)
        self.workers = [self._new_worker() for _ in range(self.target)]
        self._policy: GaussianMLPPolicy | None = None
        self._policy_ref: Any = None
        self.env_seconds = 0.0  # summed over phases: the slowest worker's stepping and policy time
        self.policy_seconds = 0.0
        self.restarts = 0  # workers started after a failure to bring the pool back to its size
        self.lost = 0  # workers lost
        self.bytes_sent = 0  # parameters sent to workers (numpy payload), for the scaling estimate
        self.bytes_received = 0  # trajectories received

    @property
    def slices(self) -> list[tuple[int, int]]:
        """The task range of each worker of the pool."""
        return slices(self.num_tasks, len(self.workers))

    def _new_worker(self) -> Any:
        return self._actor_cls.remote(self.env_id, self.episodes, self.horizon_arg, self.threads, self.env_kwargs,
                                      self.max_slots)

    def sample_tasks(self, rng: np.random.Generator, n: int | None = None, held_out: bool = False) -> list[Task]:
        """``n`` tasks (default: ``num_tasks``) from the family's distribution, drawn here with ``rng``; with
        ``held_out`` the tasks to evaluate on (the family's test split where it has one)."""
        draw = self._probe.sample_held_out_tasks if held_out else self._probe.sample_tasks
        return draw(self.num_tasks if n is None else n, rng)

    def _send_policy(self, workers: Sequence[Any]) -> None:
        ray.get([w.set_policy.remote(self._policy_ref) for w in workers])

    def _refill(self) -> None:
        """Bring the pool back to its size with new workers, as far as the cluster has free CPUs now."""
        missing = self.target - len(self.workers)
        if missing <= 0:
            return
        free = int(ray.available_resources().get("CPU", 0) // self.threads)
        new = [self._new_worker() for _ in range(min(missing, free))]
        if new:
            self.restarts += len(new)
            if self._policy_ref is not None:
                self._send_policy(new)
            self.workers += new
        if not self.workers:
            raise SamplerError("no sampler workers left and no free CPU in the cluster to start one")

    @torch.no_grad()
    def sample(self, policy: GaussianMLPPolicy, params: Mapping[str, Tensor], tasks: Sequence[Task],
               seed: Sequence[int]) -> Episodes:
        """As :meth:`agents.sampler.Sampler.sample`, with the slots stepped on the workers."""
        if len(tasks) != self.num_tasks:
            raise ValueError(f"the sampler was built for {self.num_tasks} tasks, got {len(tasks)}")
        self._check_cluster()
        return self._sample(policy, params, tasks, seed)

    def _check_cluster(self) -> None:
        """Fail the phase at once when the cluster's head (its GCS) is gone. Ray itself would keep the workers
        stepping and, a minute later, end this process from its C++ core with no checkpoint."""
        host, _, port = self.gcs_address.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=5):
                pass
        except OSError as err:
            self.cluster_lost = True
            raise SamplerError(f"lost the Ray cluster: its head node ({self.gcs_address}) does not answer "
                               f"({err.strerror or err})") from None

    def _sample(self, policy: GaussianMLPPolicy, params: Mapping[str, Tensor], tasks: Sequence[Task],
                seed: Sequence[int]) -> Episodes:
        env_seed, noise_seed = stream_seeds(seed)
        self._refill()
        if policy is not self._policy:  # the policy module travels once, not per phase (as a CPU copy)
            on_cpu = all(t.device.type == "cpu" for t in itertools.chain(policy.parameters(), policy.buffers()))
            self._policy, self._policy_ref = policy, ray.put(policy if on_cpu else copy.deepcopy(policy).cpu())
            self._send_policy(self.workers)
        # θ expanded over the tasks (stride 0 on the task dim) is sent once, not once per task.
        shared = all(v.dim() > 0 and v.stride(0) == 0 for v in params.values())
        payload = {k: v.detach().to("cpu", torch.float32) for k, v in params.items()}
        parts = self.slices

        def submit(worker: Any, index: int) -> Any:
            start, stop = parts[index]
            part = {k: (v[0] if shared else v[start:stop]).contiguous().numpy() for k, v in payload.items()}
            self.bytes_sent += sum(a.nbytes for a in part.values())
            return worker.sample.remote(part, shared, list(tasks[start:stop]), env_seed, noise_seed,
                                        self.num_tasks, start)

        pending = {submit(w, i): (w, i) for i, w in enumerate(self.workers)}
        attempts = [0] * len(parts)
        results: list[dict[str, Any] | None] = [None] * len(parts)
        handed = 0
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            worker, index = pending.pop(ready[0])
            try:
                results[index] = ray.get(ready[0])
            except WORKER_LOST as err:
                attempts[index] += 1
                if worker in self.workers:
                    self.workers.remove(worker)
                    self.lost += 1
                    with contextlib.suppress(Exception):  # the actor is already gone
                        ray.kill(worker)
                if attempts[index] > self.max_retries:
                    raise SamplerError(
                        f"tasks {parts[index]} could not be sampled: their worker died "
                        f"{attempts[index]} times (last error: {type(err).__name__})"
                    ) from err
                if not self.workers:
                    self._refill()  # raises when no worker can be started
                survivor = self.workers[handed % len(self.workers)]
                handed += 1
                log.warning("sampler worker died (%s); a surviving worker samples its tasks %s again",
                            type(err).__name__, parts[index])
                pending[submit(survivor, index)] = (survivor, index)
        done = [r for r in results if r is not None]
        self.env_seconds += max(r["env_seconds"] for r in done)
        self.policy_seconds += max(r["policy_seconds"] for r in done)
        self.bytes_received += sum(r[k].nbytes for r in done for k in ("obs", "actions", "rewards", "mask"))
        # np.concatenate copies out of Ray's read-only object store into fresh, writable arrays.
        success = None if done[0]["success"] is None else torch.from_numpy(np.concatenate([r["success"] for r in done]))
        obs, actions, rewards, mask = (torch.from_numpy(np.concatenate([r[k] for r in done]))
                                       for k in ("obs", "actions", "rewards", "mask"))
        return Episodes(obs, actions, rewards, mask, success)

    def close(self) -> None:
        """Stop the workers (and the Ray instance, if this sampler started it)."""
        for worker in [] if self.cluster_lost else self.workers:  # with the head gone, killing would hang
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
