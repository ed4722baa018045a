"""The Ray sampler backend: same episodes as the local backend, dead workers replaced without loss."""

from __future__ import annotations

import importlib
import json
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

import rl_alphamaml.config as cfg
from agents.policy import GaussianMLPPolicy
from agents.sampler import Episodes, Sampler
from agents.trainer import RLConfig, RLExperiment
from rl_alphamaml.errors import UserError
from rl_alphamaml.meta import expand_params

ray = pytest.importorskip("ray", reason="the Ray backend needs the [distributed] extra (.ci/run installs it)")
from agents.ray_sampler import RaySampler, SamplerError, slices  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ENV = "rl_alphamaml/HalfCheetahVel-v0"
TASKS, EPISODES, HORIZON = 5, 2, 25


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
             configure_logging=False)
    yield
    ray.shutdown()


def policy_and_params(obs_dim: int, act_dim: int) -> tuple[GaussianMLPPolicy, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    # The references' action convention with σ large enough that many scaled samples are clipped: the
    # workers must send the environment what the local backend sends it.
    policy = GaussianMLPPolicy(obs_dim, act_dim, (16, 16), init_log_std=2.5, action_scale=0.1,
                               action_bounds=([-1.0] * act_dim, [1.0] * act_dim))
    theta = expand_params(policy.params(), TASKS)
    # Different parameters per task, as after adaptation.
    params = {k: v + 0.05 * torch.randn(v.shape) for k, v in theta.items()}
    return policy, params


def assert_same(a: Episodes, b: Episodes) -> None:
    for name in ("obs", "actions", "rewards", "mask"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.shape == y.shape, name
        assert torch.equal(x, y), f"{name} differs by up to {(x - y).abs().max().item()}"


@pytest.fixture(scope="module")
def reference() -> tuple[list, dict[str, torch.Tensor], GaussianMLPPolicy, Episodes, Episodes]:
    local = Sampler(ENV, TASKS, EPISODES, threads=1, horizon=HORIZON)
    tasks = local.sample_tasks(np.random.default_rng(3))
    policy, params = policy_and_params(local.obs_dim, local.act_dim)
    per_task = local.sample(policy, params, tasks, (0, 1, 0))
    shared = local.sample(policy, expand_params(policy.params(), TASKS), tasks, (0, 1, 1))
    local.close()
    return tasks, params, policy, per_task, shared


def test_slices_cover_every_task_once() -> None:
    assert slices(5, 2) == [(0, 2), (2, 5)] or slices(5, 2) == [(0, 3), (3, 5)]
    for n, w in [(1, 4), (7, 3), (40, 8), (20, 1)]:
        parts = slices(n, w)
        assert len(parts) == min(n, w)
        assert [i for a, b in parts for i in range(a, b)] == list(range(n))


def test_same_seed_same_episodes_as_local(reference: tuple) -> None:
    tasks, params, policy, per_task, shared = reference
    sampler = RaySampler(ENV, TASKS, EPISODES, horizon=HORIZON, workers=2)
    try:
        assert len(sampler.workers) == 2
        assert_same(sampler.sample(policy, params, tasks, (0, 1, 0)), per_task)
        sent_per_task = sampler.bytes_sent
        assert_same(sampler.sample(policy, expand_params(policy.params(), TASKS), tasks, (0, 1, 1)), shared)
        # θ shared by all tasks travels once per worker, not once per task.
        assert sampler.bytes_sent - sent_per_task < sent_per_task
        assert sampler.env_seconds > 0 and sampler.restarts == 0
    finally:
        sampler.close()


def test_a_dead_workers_slice_is_resampled_by_a_survivor(reference: tuple) -> None:
    tasks, params, policy, per_task, _ = reference
    sampler = RaySampler(ENV, TASKS, EPISODES, horizon=HORIZON, workers=2)
    try:
        pids = sampler.worker_pids()
        ray.get(sampler.workers[1].exit_during_next_sample.remote(10))  # the process exits mid-rollout
        episodes = sampler.sample(policy, params, tasks, (0, 1, 0))
        assert sampler.lost == 1 and sampler.worker_pids() == [pids[0]]  # the survivor sampled both slices
        assert_same(episodes, per_task)  # nothing lost, nothing sampled twice
        deadline = time.monotonic() + 30
        while ray.available_resources().get("CPU", 0) < 1:  # the dead worker's CPU comes back
            assert time.monotonic() < deadline
            time.sleep(0.1)
        # The next phase brings the pool back to two workers and slices the tasks over both again.
        assert_same(sampler.sample(policy, params, tasks, (0, 1, 0)), per_task)
        assert sampler.restarts == 1 and len(sampler.workers) == 2 and pids[1] not in sampler.worker_pids()
    finally:
        sampler.close()


def test_worker_that_keeps_dying_fails_the_phase(reference: tuple) -> None:
    tasks, params, policy, _, _ = reference
    sampler = RaySampler(ENV, TASKS, EPISODES, horizon=HORIZON, workers=2, max_retries=0)
    try:
        ray.get(sampler.workers[0].exit_during_next_sample.remote(3))
        with pytest.raises(SamplerError, match="worker died 1 times"):
            sampler.sample(policy, params, tasks, (0, 1, 0))
    finally:
        sampler.close()


def assert_same_up_to_rounding(a: Episodes, b: Episodes) -> None:
    """The same episodes up to float rounding: a batched matmul's result can depend on where each task's matrix
    starts in memory (measured on an AVX-512 CPU, torch 2.13: ``bmm`` of a 5-task batch against each task's slice
    copied alone differs by 1e-6 at an inner size of 17, HalfCheetah's observation, and not at 16), and 25
    simulator steps amplify that to about 1e-3. Episodes sampled with other noise or another task differ by
    orders of magnitude more."""
    for name in ("obs", "actions", "rewards", "mask"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.shape == y.shape, name
        torch.testing.assert_close(x, y, rtol=0.0, atol=1e-2, msg=lambda m, name=name: f"{name}: {m}")


def test_slots_in_passes_give_the_same_episodes_locally_and_on_ray(reference: tuple) -> None:
    """``sampler.max_slots``: 5 tasks × 2 episodes with at most 4 slots at once run one task per pass (the largest
    divisor of 5 that fits), locally and in each Ray worker, and give the episodes of one pass (up to rounding:
    a pass computes each task's actions in a batch of another size)."""
    tasks, params, policy, per_task, _ = reference
    local = Sampler(ENV, TASKS, EPISODES, threads=1, horizon=HORIZON, max_slots=4)
    assert local.pass_tasks == 1 and local.env.n_slots == EPISODES
    assert_same_up_to_rounding(local.sample(policy, params, tasks, (0, 1, 0)), per_task)
    local.close()
    sampler = RaySampler(ENV, TASKS, EPISODES, horizon=HORIZON, workers=2, max_slots=4)
    try:
        assert_same_up_to_rounding(sampler.sample(policy, params, tasks, (0, 1, 0)), per_task)
    finally:
        sampler.close()


@pytest.mark.metaworld
def test_a_metaworld_family_on_ray_gives_the_local_episodes_and_success() -> None:
    env, tasks_n, episodes, horizon = "rl_alphamaml/MetaWorldML1-v0", 4, 2, 30
    local = Sampler(env, tasks_n, episodes, threads=1, horizon=horizon, env_kwargs={"env_name": "push-v3"})
    tasks = local.sample_tasks(np.random.default_rng(0))
    held_out = local.sample_tasks(np.random.default_rng(0), 5, held_out=True)
    torch.manual_seed(0)
    policy = GaussianMLPPolicy(local.obs_dim, local.act_dim, (16,), action_scale=1.0,
                               action_bounds=([-1.0] * 4, [1.0] * 4))
    params = expand_params(policy.params(), tasks_n)
    expected = local.sample(policy, params, tasks, (0, 1, 0))
    local.close()
    assert expected.success is not None and expected.success.shape == (tasks_n, episodes)
    sampler = RaySampler(env, tasks_n, episodes, horizon=horizon, workers=2, env_kwargs={"env_name": "push-v3"})
    try:
        got = sampler.sample(policy, params, tasks, (0, 1, 0))
        assert_same(got, expected)
        assert got.success is not None and torch.equal(got.success, expected.success)
        assert sampler.sample_tasks(np.random.default_rng(0), 5, held_out=True) == held_out  # the test goals
        assert not set(held_out) & set(sampler.sample_tasks(np.random.default_rng(0), 50))
    finally:
        sampler.close()


def test_meta_training_iteration_matches_local_backend() -> None:
    def run(backend: str) -> dict[str, torch.Tensor]:
        config = cfg.from_dict(RLConfig, {
            "env": {"id": "rl_alphamaml/Navigation2D-v0"},
            "policy": {"hidden": [16, 16]},
            "sampler": {"episodes": 4, "threads": 1, "backend": backend, "workers": 2 if backend == "ray" else 0},
            "outer": {"optimizer": "adam", "lr": 0.01},
            "train": {"meta_batch": 4, "iterations": 2},
        })
        experiment = RLExperiment(config)
        try:
            for iteration in (1, 2):
                experiment.train_iteration(iteration, None)
            return {k: v.clone() for k, v in experiment.policy.state_dict().items()}
        finally:
            experiment.close()

    local, distributed = run("local"), run("ray")
    for name, value in local.items():
        assert torch.equal(value, distributed[name]), name


def test_local_backend_rejects_ray_options() -> None:
    with pytest.raises(cfg.ConfigError, match="backend ray"):
        cfg.from_dict(RLConfig, {"sampler": {"workers": 4}})


def test_missing_ray_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    monkeypatch.delitem(sys.modules, "agents.ray_sampler")
    with pytest.raises(UserError, match=r"\[distributed\]"):
        importlib.import_module("agents.ray_sampler")


def test_cli_train_and_evaluate_with_the_ray_backend(tmp_path: Path) -> None:
    from agents import trainer
    from rl_alphamaml.checkpoint import latest_checkpoint, load_checkpoint
    from rl_alphamaml.cli import load_experiment_config, main

    run_dir = tmp_path / "run"
    settings = ["sampler.backend=ray", "sampler.workers=2", "sampler.episodes=2", "sampler.threads=1",
                "train.meta_batch=3", "train.iterations=2", "policy.hidden=[8]"]
    assert main(["train", str(ROOT / "configs" / "navigation2d_alpha.yaml"), "--run-dir", str(run_dir),
                 *[x for s in settings for x in ("--set", s)]]) == 0
    assert main(["evaluate", str(run_dir), "--tasks", "4", "--steps", "1", "--seed", "3"]) == 0
    measured = json.loads((run_dir / "eval" / "adaptation.json").read_text())["per_task"]
    # The same checkpoint evaluated on the local backend gives the same numbers.
    config, _ = load_experiment_config(run_dir / "config.yaml", ["sampler.backend=local", "sampler.workers=0"])
    experiment = trainer.build(config, run_dir)
    experiment.load_state_dict(load_checkpoint(latest_checkpoint(run_dir))["state"])
    assert trainer.evaluate(experiment, 4, 1, 3).values == measured
