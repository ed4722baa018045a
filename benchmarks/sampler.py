"""Environment steps per second of the batched sampler backend against two references.

For each family (default HalfCheetahVel and AntVel) at meta-batch × episodes slots (default
40 × 20 = 800), horizon 200, uniformly random actions, measured in one run on one machine:

  (a) ``envs.BatchedEnv``: closed loop, one ``step`` per control step for all slots (reset
      included), with fresh random actions every step as a policy would give;
  (b) gymnasium's ``AsyncVectorEnv`` over the registered env (``--async-envs`` worker
      processes, one env each, default 4 per core), over ``--async-rounds`` rounds of episodes
      (its steps/s does not depend on the number of slots; ``--async-rounds 0`` runs them all);
  (c) the raw limit: one open-loop ``mujoco.rollout`` call [1] over all slots and the whole horizon
      (``horizon × frame_skip`` substeps, controls repeated over each control step's substeps)
      on all cores, with a persistent thread pool and the family's own model.

It prints a table with the ratios (a)/(c) and (a)/(b) and writes them, with every repeat and the
machine's load average, to ``benchmarks/results/sampler.json``. ``--designs`` also measures the
backends that were considered for (a): ``mujoco.batch`` in persistent mode, one ``MjData`` per
slot stepped by a Python loop (``BatchedEnv(backend="mjdata")`` on one thread, or one Python thread per
core: MuJoCo releases the GIL), a closed-loop ``mujoco.rollout`` call per control step, and worker
processes that each own a share of the slots. ``--fallback`` measures, instead of (a)-(c), the candidates
for the backend where ``mujoco.batch`` is missing (MuJoCo < 3.17): ``BatchedEnv(backend="mjdata")`` on one
thread and on ``--threads``, gymnasium's ``SyncVectorEnv`` and ``AsyncVectorEnv`` over the registered env, a
``mujoco.rollout`` call per control step, and ``BatchedEnv(backend="batch")`` as the reference where this
MuJoCo has it. ``--metaworld`` measures, instead, Meta-World ML1 (``rl_alphamaml/MetaWorldML1-v0``, reach-v3 by
default; it needs the metaworld extra): the sampler (:class:`agents.sampler.Sampler`, a 100×100 policy sampling
every step), ``envs.BatchedEnv`` alone (its ``"gymnasium"`` backend, random actions), and gymnasium's own vector
environments as metaworld builds them (``gymnasium.make_vec("Meta-World/ML1-train", vector_strategy="sync"`` and
``"async"``, ``--meta-batch`` environments each running ``--episodes`` episodes back to back, random actions), with
the ratio of each to the sync vector env. Each measurement is repeated ``--repeats`` times, interleaved; the table
shows the best repeat. On a shared machine other processes steal CPU: every measurement records
the share of the CPUs they used meanwhile (from /proc/stat), and ``--retries N`` repeats a
measurement (after ``--retry-wait`` seconds) while that share exceeds ``--max-others``.

Usage::

    python benchmarks/sampler.py                         # the full benchmark
    python benchmarks/sampler.py --quick                 # 8 x 5 slots, horizon 50, 1 repeat
    python benchmarks/sampler.py --designs --repeats 3   # with the alternative designs
    python benchmarks/sampler.py --fallback --repeats 3 --out benchmarks/results/sampler_fallback.json
    python benchmarks/sampler.py --metaworld --meta-batch 4 --episodes 5 --horizon 500 --repeats 2 \
        --out benchmarks/results/sampler_metaworld.json      # needs pip install -e ".[metaworld]"

References:
    [1] Todorov, Erez & Tassa, "MuJoCo: A physics engine for model-based control", IROS 2012.
        https://doi.org/10.1109/IROS.2012.6386109
"""

from __future__ import annotations

import argparse
import functools
import importlib.metadata
import itertools
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from multiprocessing import shared_memory
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

import gymnasium  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402
from mujoco import rollout as mjrollout  # noqa: E402

import envs  # noqa: E402
from envs.batched import default_threads, mjbatch  # noqa: E402

import results_io  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "sampler.json"


# --------------------------------------------------------------------------------------------
# (a) the batched stepper
# --------------------------------------------------------------------------------------------
def bench_stepper(env_id: str, n: int, horizon: int, threads: int, seed: int, backend: str | None = None,
                  **env_kwargs: Any) -> float:
    """Steps per second of ``envs.BatchedEnv`` on ``backend`` (None: its default; ``env_kwargs``: the family's
    options) with uniformly random actions, resets and rewards included."""
    rng = np.random.default_rng(seed)
    with envs.BatchedEnv(env_id, n, horizon=horizon, n_threads=threads, backend=backend, **env_kwargs) as benv:
        tasks = benv.sample_tasks(n, rng)
        low, high = benv.action_space.low, benv.action_space.high
        start = time.perf_counter()
        benv.reset(tasks, seeds=seed)
        while not benv.done:
            benv.step(rng.uniform(low, high, size=(n, benv.act_dim)))
        elapsed = time.perf_counter() - start
    return n * horizon / elapsed


# --------------------------------------------------------------------------------------------
# (b) gymnasium AsyncVectorEnv over the registered environment
# --------------------------------------------------------------------------------------------
def _make_env(env_id: str, task: dict[str, Any]) -> Callable[[], gymnasium.Env]:
    def thunk() -> gymnasium.Env:
        import envs as _envs  # the worker process registers the families itself

        return _envs.make(env_id, task=task)

    return thunk


ASYNC_ROUNDS = 2  # set from --async-rounds


def _bench_vector(make_vec: Any, env_id: str, n: int, horizon: int, workers: int, seed: int) -> float:
    """Throughput of the gymnasium vector env ``make_vec(env_fns)`` over ``workers`` registered envs (one per task),
    over ``ASYNC_ROUNDS`` rounds of ``workers`` episodes (0: ``n``). Start-up (process spawn, model compile) and the
    first reset are not timed."""
    rng = np.random.default_rng(seed)
    probe = envs.make_unwrapped(env_id)
    tasks = [t.to_dict() for t in probe.sample_tasks(workers, rng)]
    probe.close()
    vec = make_vec([_make_env(env_id, t) for t in tasks])
    try:
        vec.reset(seed=seed)
        rounds = ASYNC_ROUNDS or -(-n // workers)
        low, high = vec.single_action_space.low, vec.single_action_space.high
        start = time.perf_counter()
        for r in range(rounds):
            vec.reset(seed=seed + r * workers)
            for _ in range(horizon):
                vec.step(rng.uniform(low, high, size=(workers, len(low))))
        elapsed = time.perf_counter() - start
    finally:
        vec.close()
    return rounds * workers * horizon / elapsed


def bench_async(env_id: str, n: int, horizon: int, workers: int, seed: int) -> float:
    """Throughput of ``workers`` processes (``AsyncVectorEnv``) over ``ASYNC_ROUNDS`` rounds of ``workers`` episodes.

    The vector env steps ``workers`` episodes at a time, so its steps/s does not depend on how
    many slots a meta-batch has; a few rounds measure it (``--async-rounds 0``: ``n`` episodes).
    """
    return _bench_vector(lambda fns: gymnasium.vector.AsyncVectorEnv(fns, context="spawn"), env_id, n, horizon,
                         workers, seed)


def bench_sync(env_id: str, n: int, horizon: int, workers: int, seed: int) -> float:
    """Throughput of gymnasium's ``SyncVectorEnv`` over ``workers`` registered envs (stepped one after the other
    in this process), as :func:`bench_async` measures it."""
    return _bench_vector(gymnasium.vector.SyncVectorEnv, env_id, n, horizon, workers, seed)


# --------------------------------------------------------------------------------------------
# (c) the raw limit: open-loop mujoco.rollout over all slots
# --------------------------------------------------------------------------------------------
def _initial_states(family: Any, n: int, seed: int) -> np.ndarray:
    model = family.model
    data = mujoco.MjData(model)
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    states = np.empty((n, mujoco.mj_stateSize(model, spec)))
    rng = np.random.default_rng(seed)
    for i in range(n):
        mujoco.mj_resetData(model, data)
        data.qpos[:], data.qvel[:] = family.sample_initial_state(rng)
        mujoco.mj_getState(model, data, states[i], spec)
    return states


def bench_rollout(env_id: str, n: int, horizon: int, threads: int, seed: int) -> float:
    family = envs.make_unwrapped(env_id)
    model, fs = family.model, family.frame_skip
    rng = np.random.default_rng(seed)
    state0 = _initial_states(family, n, seed)
    control = np.repeat(rng.uniform(-1, 1, size=(n, horizon, model.nu)), fs, axis=1)
    datas = [mujoco.MjData(model) for _ in range(threads)]
    out = np.empty((n, horizon * fs, state0.shape[1]))
    sensors = np.empty((n, horizon * fs, model.nsensordata))
    mjrollout.rollout(model, datas, state0[:2], control[:2, :fs], persistent_pool=True)  # warm up
    start = time.perf_counter()
    mjrollout.rollout(model, datas, state0, control, state=out, sensordata=sensors, persistent_pool=True)
    elapsed = time.perf_counter() - start
    mjrollout.shutdown_persistent_pool()
    family.close()
    return n * horizon / elapsed


# --------------------------------------------------------------------------------------------
# alternative designs for (a), measured with --designs
# --------------------------------------------------------------------------------------------
def bench_batch_persistent(env_id: str, n: int, horizon: int, threads: int, seed: int) -> float:
    """(a) with ``mujoco.batch.Batch(persistent=True)``: one MjData per slot inside MuJoCo."""
    from mujoco import batch as mjbatch

    rng = np.random.default_rng(seed)
    with envs.BatchedEnv(env_id, n, horizon=horizon, n_threads=threads) as benv:
        backend: Any = benv._backend
        backend.batch = mjbatch.Batch(benv.family.model, n, nthread=threads, persistent=True)
        benv.family.batch_setup(backend.batch)
        b = backend.batch
        backend.views = benv.family.sim_views(b.bind, n)
        backend.ctrl = b.bind("ctrl")
        tasks = benv.sample_tasks(n, rng)
        start = time.perf_counter()
        benv.reset(tasks, seeds=seed)
        while not benv.done:
            benv.step(rng.uniform(-1, 1, size=(n, benv.act_dim)))
        elapsed = time.perf_counter() - start
    return n * horizon / elapsed


def bench_rollout_closed(env_id: str, n: int, horizon: int, threads: int, seed: int) -> float:
    """One ``mujoco.rollout`` call per control step (frame_skip substeps), state carried in numpy.

    Speed reference only: rollout takes a warm start but does not return one (the next call
    starts cold, so contacts drift from the gymnasium env) and has no ``xpos``/``cfrc_ext``, so
    the observation is built from ``qpos``/``qvel`` alone.
    """
    family = envs.make_unwrapped(env_id)
    model, fs = family.model, family.frame_skip
    rng = np.random.default_rng(seed)
    datas = [mujoco.MjData(model) for _ in range(threads)]
    nq, nv = model.nq, model.nv
    start = time.perf_counter()
    state = _initial_states(family, n, seed)
    out = np.empty((n, fs, state.shape[1]))
    sensors = np.empty((n, fs, model.nsensordata))
    for _ in range(horizon):
        control = np.repeat(rng.uniform(-1, 1, size=(n, 1, model.nu)), fs, axis=1)
        x_before = state[:, 1].copy()
        mjrollout.rollout(model, datas, state, control, state=out, sensordata=sensors, persistent_pool=True)
        state = out[:, -1].copy()
        _obs = np.concatenate((state[:, 2 : 1 + nq], state[:, 1 + nq : 1 + nq + nv]), axis=1)
        _vel = (state[:, 1] - x_before) / family.dt
    elapsed = time.perf_counter() - start
    mjrollout.shutdown_persistent_pool()
    return n * horizon / elapsed


def _process_worker(env_id: str, lo: int, hi: int, n: int, names: dict[str, str], conn: Any) -> None:
    """Worker of the process design: owns slots [lo, hi) as a single-threaded BatchedEnv."""
    shms = {k: shared_memory.SharedMemory(name=v) for k, v in names.items()}
    benv = envs.BatchedEnv(env_id, hi - lo, n_threads=1)
    act = np.ndarray((n, benv.act_dim), np.float64, shms["act"].buf)
    obs = np.ndarray((n, benv.obs_dim), np.float64, shms["obs"].buf)
    rew = np.ndarray((n,), np.float64, shms["rew"].buf)
    conn.send(True)  # ready: start-up is not timed
    while True:
        msg = conn.recv()
        if msg is None:
            break
        if msg[0] == "reset":
            tasks = [envs.task_from_dict(t) for t in msg[1]]
            obs[lo:hi] = benv.reset(tasks, seeds=msg[2] + lo)
        else:
            step = benv.step(act[lo:hi])
            obs[lo:hi], rew[lo:hi] = step.obs, step.reward
        conn.send(True)
    benv.close()
    for s in shms.values():
        s.close()


def bench_processes(env_id: str, n: int, horizon: int, threads: int, seed: int) -> float:
    """``threads`` worker processes, each stepping n/threads slots; actions/obs in shared memory."""
    rng = np.random.default_rng(seed)
    probe = envs.make_unwrapped(env_id)
    obs_dim, act_dim = probe.observation_space.shape[0], probe.action_space.shape[0]
    tasks = [t.to_dict() for t in probe.sample_tasks(n, rng)]
    probe.close()
    sizes = {"act": n * act_dim * 8, "obs": n * obs_dim * 8, "rew": n * 8}
    shms = {k: shared_memory.SharedMemory(create=True, size=s) for k, s in sizes.items()}
    names = {k: s.name for k, s in shms.items()}
    act = np.ndarray((n, act_dim), np.float64, shms["act"].buf)
    ctx = mp.get_context("spawn")
    bounds = np.linspace(0, n, threads + 1).astype(int)
    pipes, procs = [], []
    for lo, hi in itertools.pairwise(bounds):
        parent, child = ctx.Pipe()
        p = ctx.Process(target=_process_worker, args=(env_id, int(lo), int(hi), n, names, child))
        p.start()
        pipes.append(parent)
        procs.append(p)
    try:
        for pipe in pipes:
            pipe.recv()
        start = time.perf_counter()
        for (lo, hi), pipe in zip(itertools.pairwise(bounds), pipes):
            pipe.send(("reset", tasks[lo:hi], seed))
        for pipe in pipes:
            pipe.recv()
        for _ in range(horizon):
            act[:] = rng.uniform(-1, 1, size=(n, act_dim))
            for pipe in pipes:
                pipe.send(("step",))
            for pipe in pipes:
                pipe.recv()
        elapsed = time.perf_counter() - start
    finally:
        for pipe in pipes:
            pipe.send(None)
        for p in procs:
            p.join()
        for s in shms.values():
            s.close()
            s.unlink()
    return n * horizon / elapsed


# --------------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------------
def _cpu_ticks() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat (Linux)."""
    try:
        with open("/proc/stat") as f:
            fields = [float(x) for x in f.readline().split()[1:]]
    except OSError:
        return 0.0, 0.0
    hz = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
    return (sum(fields) - idle) / hz, sum(fields) / hz


def measure(fn: Callable[[], float]) -> tuple[float, float]:
    """Run one measurement; return (steps/s, share of the machine other processes used meanwhile).

    The share is the machine's busy CPU time during the call minus this process's own (threads
    and joined children included), over the call's wall time × CPUs: 0 on an otherwise idle
    machine, 0.5 when other processes kept one of two cores busy.
    """
    busy0, total0 = _cpu_ticks()
    own0, wall0 = os.times(), time.perf_counter()
    sps = fn()
    own1, wall1 = os.times(), time.perf_counter()
    busy1, total1 = _cpu_ticks()
    own = sum(own1[:4]) - sum(own0[:4])
    capacity = total1 - total0 or (wall1 - wall0) * (os.cpu_count() or 1)
    return sps, max(0.0, (busy1 - busy0) - own) / capacity if capacity else 0.0


MAIN = {
    "a_stepper": ("(a) envs.BatchedEnv", bench_stepper),
    "b_async_vector_env": ("(b) gymnasium AsyncVectorEnv", bench_async),
    "c_rollout_raw": ("(c) mujoco.rollout open loop", bench_rollout),
}
def bench_mjdata(env_id: str, n: int, horizon: int, threads: int, seed: int) -> float:
    """(a) on the ``"mjdata"`` backend: one ``MjData`` per slot, ``threads`` Python threads."""
    return bench_stepper(env_id, n, horizon, threads, seed, backend="mjdata")


def bench_mjdata_1thread(env_id: str, n: int, horizon: int, threads: int, seed: int) -> float:
    """(a) on the ``"mjdata"`` backend, one thread: a plain Python loop over the slots."""
    return bench_stepper(env_id, n, horizon, 1, seed, backend="mjdata")


def bench_batch(env_id: str, n: int, horizon: int, threads: int, seed: int) -> float:
    """(a) on the ``"batch"`` backend (``mujoco.batch``)."""
    return bench_stepper(env_id, n, horizon, threads, seed, backend="batch")


DESIGNS = {
    "batch_persistent": ("mujoco.batch, persistent=True", bench_batch_persistent),
    "mjdata_loop_1thread": ("MjData per slot, Python loop", bench_mjdata_1thread),
    "mjdata_loop_threads": ("MjData per slot, 1 Python thread/core", bench_mjdata),
    "rollout_per_step": ("mujoco.rollout per control step", bench_rollout_closed),
    "worker_processes": ("worker processes (1/core)", bench_processes),
}
#: the candidates for BatchedEnv's backend where mujoco.batch is missing (--fallback), and the one the others
#: are divided by
FALLBACK_REFERENCE = "mjdata_loop_threads"
FALLBACK = {
    "batch": ("BatchedEnv, backend batch (reference)", bench_batch),
    "mjdata_loop_1thread": ("BatchedEnv, backend mjdata, 1 thread", bench_mjdata_1thread),
    "mjdata_loop_threads": ("BatchedEnv, backend mjdata, 1 thread/core", bench_mjdata),
    "sync_vector_env": ("gymnasium SyncVectorEnv", bench_sync),
    "b_async_vector_env": ("gymnasium AsyncVectorEnv", bench_async),
    "rollout_per_step": ("mujoco.rollout per control step (not exact)", bench_rollout_closed),
}


# --------------------------------------------------------------------------------------------
# Meta-World (--metaworld): the sampler, BatchedEnv, and metaworld's own vector environments
# --------------------------------------------------------------------------------------------
METAWORLD_ENV = "reach-v3"  # set from --metaworld-env


def bench_mw_sampler(env_id: str, n: int, horizon: int, meta_batch: int, seed: int) -> float:
    """Steps per second of :class:`agents.sampler.Sampler` (a 100×100 tanh policy, one sample per step for all
    slots) on ``meta_batch`` tasks × ``n // meta_batch`` episodes: what meta-training's sampling phases cost."""
    import torch

    from agents.policy import GaussianMLPPolicy
    from agents.sampler import Sampler
    from rl_alphamaml.meta import expand_params

    sampler = Sampler(env_id, meta_batch, n // meta_batch, threads=1, horizon=horizon,
                      env_kwargs={"env_name": METAWORLD_ENV})
    try:
        tasks = sampler.sample_tasks(np.random.default_rng(seed))
        torch.manual_seed(seed)
        policy = GaussianMLPPolicy(sampler.obs_dim, sampler.act_dim, (100, 100), action_scale=1.0,
                                   action_bounds=(sampler.action_space.low, sampler.action_space.high))
        params = expand_params(policy.params(), meta_batch)
        start = time.perf_counter()
        episodes = sampler.sample(policy, params, tasks, (seed, 0, 0))
        elapsed = time.perf_counter() - start
    finally:
        sampler.close()
    return episodes.num_steps / elapsed


def bench_mw_batched(env_id: str, n: int, horizon: int, meta_batch: int, seed: int) -> float:
    """(a) on Meta-World: ``envs.BatchedEnv`` (its ``"gymnasium"`` backend) with random actions."""
    return bench_stepper(env_id, n, horizon, 1, seed, env_name=METAWORLD_ENV)


def _bench_mw_vector(strategy: str, n: int, horizon: int, meta_batch: int, seed: int) -> float:
    import metaworld  # noqa: F401  (registers the Meta-World/ ids)

    vec = gymnasium.make_vec("Meta-World/ML1-train", env_name=METAWORLD_ENV, meta_batch_size=meta_batch,
                             vector_strategy=strategy, seed=seed, max_episode_steps=horizon,
                             total_tasks_per_cls=meta_batch)  # a meta-batch that does not divide 50 trips metaworld
    try:
        rng = np.random.default_rng(seed)
        vec.call("sample_tasks")  # metaworld's environments have no task (and cannot reset) before it
        vec.reset(seed=seed)
        low, high = vec.single_action_space.low, vec.single_action_space.high
        steps = (n // meta_batch) * horizon  # every environment runs n // meta_batch episodes back to back
        start = time.perf_counter()
        for _ in range(steps):
            vec.step(rng.uniform(low, high, size=(meta_batch, len(low))))
        elapsed = time.perf_counter() - start
    finally:
        vec.close()
    return meta_batch * steps / elapsed


def bench_mw_sync(env_id: str, n: int, horizon: int, meta_batch: int, seed: int) -> float:
    """metaworld's ``gymnasium.make_vec("Meta-World/ML1-train", vector_strategy="sync")``, random actions."""
    return _bench_mw_vector("sync", n, horizon, meta_batch, seed)


def bench_mw_async(env_id: str, n: int, horizon: int, meta_batch: int, seed: int) -> float:
    """The same with ``vector_strategy="async"`` (one worker process per environment)."""
    return _bench_mw_vector("async", n, horizon, meta_batch, seed)


METAWORLD_REFERENCE = "mw_sync_vector_env"
METAWORLD = {
    "mw_sampler": ("agents.sampler.Sampler (policy included)", bench_mw_sampler),
    "mw_batched_env": ("envs.BatchedEnv, backend gymnasium", bench_mw_batched),
    "mw_sync_vector_env": ("metaworld make_vec, sync", bench_mw_sync),
    "mw_async_vector_env": ("metaworld make_vec, async (processes)", bench_mw_async),
}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", default=["HalfCheetahVel-v0", "AntVel-v0"])
    parser.add_argument("--meta-batch", type=int, default=40)
    parser.add_argument("--episodes", type=int, default=20, help="episodes per task")
    parser.add_argument("--horizon", type=int, default=200)
    parser.add_argument("--threads", type=int, default=default_threads(), help="cores for (a), (c)")
    parser.add_argument("--async-envs", type=int, default=None, help="worker processes for (b); default 4 per core")
    parser.add_argument(
        "--async-rounds", type=int, default=2, help="(b) runs this many rounds of episodes; 0: all slots"
    )
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--max-others",
        type=float,
        default=0.05,
        help="repeat a measurement if other processes used more than this share of the CPUs",
    )
    parser.add_argument("--retries", type=int, default=0, help="how often to repeat such a measurement")
    parser.add_argument("--retry-wait", type=float, default=10.0, help="seconds to wait before a retry")
    parser.add_argument("--designs", action="store_true", help="also measure the alternative designs")
    parser.add_argument("--fallback", action="store_true",
                        help="measure the candidates for the backend where mujoco.batch is missing, instead of (a)-(c)")
    parser.add_argument("--metaworld", action="store_true",
                        help="measure Meta-World ML1 through the sampler against metaworld's vector envs instead")
    parser.add_argument("--metaworld-env", default="reach-v3", help="the ML1 class for --metaworld")
    parser.add_argument("--skip", nargs="*", default=[], choices=sorted({*MAIN, *FALLBACK, *METAWORLD}),
                        help="measurements to leave out")
    parser.add_argument("--quick", action="store_true", help="8 x 5 slots, horizon 50, 1 repeat")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON output ('-' for none)")
    args = parser.parse_args(argv)
    if args.quick:
        args.meta_batch, args.episodes, args.horizon, args.repeats = 8, 5, 50, 1
    n = args.meta_batch * args.episodes
    global ASYNC_ROUNDS
    ASYNC_ROUNDS = args.async_rounds
    async_envs = args.async_envs or 4 * args.threads
    global METAWORLD_ENV
    METAWORLD_ENV = args.metaworld_env
    if args.metaworld:
        args.families = ["MetaWorldML1-v0"]
        if args.out == DEFAULT_OUT:
            args.out = ROOT / "benchmarks" / "results" / "sampler_metaworld.json"
    chosen = METAWORLD if args.metaworld else FALLBACK if args.fallback else MAIN
    benches = {k: v for k, v in chosen.items() if k not in args.skip}
    if args.designs:
        benches.update(DESIGNS)
    if mjbatch is None:  # this MuJoCo has no batch API (before 3.17)
        benches = {k: v for k, v in benches.items() if k not in ("batch", "batch_persistent")}

    print(
        f"{n} slots ({args.meta_batch} x {args.episodes}), horizon {args.horizon}, {args.threads} threads, "
        f"{args.meta_batch if args.metaworld else async_envs} AsyncVectorEnv workers, "
        f"{args.repeats} repeat(s); {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    results: dict[str, Any] = {}
    for fam in args.families:
        env_id = envs.resolve_id(fam)
        runs: dict[str, list[float]] = {k: [] for k in benches}
        contention: dict[str, list[float]] = {k: [] for k in benches}
        loads: list[float] = []
        for rep in range(args.repeats):
            for key, (label, fn) in benches.items():
                workers = {"b_async_vector_env": async_envs, "sync_vector_env": args.meta_batch}.get(key, args.threads)
                if key in METAWORLD:
                    workers = args.meta_batch
                for attempt in range(1 + args.retries):
                    loads.append(os.getloadavg()[0])
                    sps, others = measure(functools.partial(fn, env_id, n, args.horizon, workers, args.seed + rep))
                    print(
                        f"  {fam:<20} {label:<44} repeat {rep}: {sps:10.0f} steps/s"
                        f"   (other processes used {100 * others:3.0f}% of the CPUs)",
                        flush=True,
                    )
                    if others <= args.max_others or attempt == args.retries:
                        break
                    time.sleep(args.retry_wait)
                runs[key].append(sps)
                contention[key].append(others)
        best = {k: max(v) for k, v in runs.items()}
        entry: dict[str, Any] = {
            "steps_per_s": best,
            "steps_per_s_median": {k: statistics.median(v) for k, v in runs.items()},
            "steps_per_s_all": runs,
            "other_processes_cpu_share": contention,
            "load_average_1min": loads,
        }
        for ref, key in (("c_rollout_raw", "ratio_a_over_c"), ("b_async_vector_env", "ratio_a_over_b")):
            if "a_stepper" in best and ref in best:
                entry[key] = best["a_stepper"] / best[ref]
                # measured back to back, so both saw the same load
                entry[f"{key}_per_repeat"] = [a / r for a, r in zip(runs["a_stepper"], runs[ref])]
        reference = next((r for r in (FALLBACK_REFERENCE, METAWORLD_REFERENCE) if r in runs), None)
        if reference is not None:
            # each candidate over the reference, per repeat (back to back: the same load)
            entry["reference"] = reference
            entry["ratio_to_reference_per_repeat"] = {
                k: [x / r for x, r in zip(v, runs[reference])] for k, v in runs.items()
            }
            entry["ratio_to_reference_median"] = {
                k: statistics.median(v) for k, v in entry["ratio_to_reference_per_repeat"].items()
            }
        results[fam] = entry

    labels = {k: v[0] for k, v in benches.items()}
    print()
    header = f"| {'measurement':<44} | " + " | ".join(f"{f:>18}" for f in args.families) + " |"
    print(header)
    print("|" + "-" * 46 + "|" + "|".join("-" * 20 for _ in args.families) + "|")
    for key, label in labels.items():
        cells = " | ".join(f"{results[f]['steps_per_s'][key]:>12.0f} st/s" for f in args.families)
        print(f"| {label:<44} | {cells} |")
    for key, label in (("ratio_a_over_c", "(a)/(c)"), ("ratio_a_over_b", "(a)/(b)")):
        if all(key in results[f] for f in args.families):
            cells = " | ".join(f"{results[f][key]:>18.2f}" for f in args.families)
            print(f"| {label:<44} | {cells} |")
    if all("ratio_to_reference_median" in results[f] for f in args.families):
        reference_label = labels[results[args.families[0]]["reference"]]
        print(f"\nmedian over repeats of each measurement / {reference_label} in the same repeat:")
        for key, label in labels.items():
            cells = " | ".join(f"{results[f]['ratio_to_reference_median'][key]:>18.2f}" for f in args.families)
            print(f"| {label:<44} | {cells} |")

    report = {
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "config": {
            "families": args.families,
            "slots": n,
            "meta_batch": args.meta_batch,
            "episodes_per_task": args.episodes,
            "horizon": args.horizon,
            "threads": args.threads,
            "async_envs": args.meta_batch if args.metaworld else async_envs,
            "async_rounds": args.async_rounds,
            "repeats": args.repeats,
            "seed": args.seed,
            "statistic": "best of repeats (steps_per_s); median in steps_per_s_median",
            "max_others": args.max_others,
            "retries": args.retries,
            **({"metaworld_env": args.metaworld_env} if args.metaworld else {}),
        },
        "machine": {
            "cpus": os.cpu_count(),
            "usable_cpus": default_threads(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "mujoco": mujoco.__version__,
            "gymnasium": gymnasium.__version__,
            **({"metaworld": importlib.metadata.version("metaworld")} if args.metaworld else {}),
        },
        "labels": labels,
        "results": results,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if str(args.out) != "-":
        args.out.parent.mkdir(parents=True, exist_ok=True)
        results_io.write_text(args.out, json.dumps(report, indent=2) + "\n")
        print(f"\nwrote {args.out}")
    return report


if __name__ == "__main__":
    results_io.run(main)
