"""The action convention: what the policy samples, what reaches the simulator and what the cost is charged on.

The policy samples ``a``; the environment gets ``clip(action_scale · a, low, high)`` (the MAML-RL and ProMP
references' convention); log-probabilities are of ``a``. Every path that steps an environment — the sampler
(the Ray backend runs the same rollout, see test_ray_sampler), ``evaluate`` and ``--video`` — must apply the
scale exactly once.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import envs
from agents import video
from agents.policy import GaussianMLPPolicy, task_params
from agents.sampler import Sampler, stream_seeds
from agents.trainer import RLExperiment
from rl_alphamaml.cli import load_experiment_config

ROOT = Path(__file__).resolve().parents[2]
DIR_ENV = "rl_alphamaml/HalfCheetahDir-v0"


class RecordingEnv:
    """Wraps a :class:`envs.BatchedEnv` and records every action array it is stepped with."""

    def __init__(self, env: envs.BatchedEnv) -> None:
        self.env = env
        self.actions: list[np.ndarray] = []

    def step(self, actions: np.ndarray) -> envs.BatchStep:
        self.actions.append(np.array(actions, copy=True))
        return self.env.step(actions)

    def __getattr__(self, name: str) -> object:
        return getattr(self.env, name)


def experiment(*overrides: str) -> RLExperiment:
    config, _ = load_experiment_config(ROOT / "configs" / "halfcheetah_dir.yaml",
                                       ["train.meta_batch=2", "sampler.episodes=3", "env.horizon=15",
                                        "sampler.threads=1", "policy.hidden=[16]", *overrides])
    return RLExperiment(config)


def test_the_shipped_locomotion_configs_use_the_reference_convention() -> None:
    for name in ("quickstart", "halfcheetah_dir", "halfcheetah_vel", "halfcheetah_vel_alpha", "ant_vel"):
        config, _ = load_experiment_config(ROOT / "configs" / f"{name}.yaml", [])
        assert config.policy.action_scale == 0.1 and config.policy.clip_actions, name


def test_no_out_of_range_control_reaches_mujoco_and_the_scale_is_applied_once() -> None:
    # σ = e³ ≈ 20: most scaled samples (0.1 · a) fall outside the torque range [−1, 1].
    exp = experiment("policy.init_log_std=3.0")
    try:
        recorder = RecordingEnv(exp.sampler.env)
        exp.sampler.env = recorder  # type: ignore[assignment]
        tasks = exp.sampler.sample_tasks(np.random.default_rng(0))
        params = {k: v.detach().unsqueeze(0).expand(2, *v.shape) for k, v in exp.policy.params().items()}
        episodes = exp.sampler.sample(exp.policy, params, tasks, (0, 1))
    finally:
        exp.close()
    sent = np.stack(recorder.actions)  # (H, T·E, act_dim)
    assert np.abs(sent).max() <= 1.0
    T, H, E, A = episodes.actions.shape
    sampled = episodes.actions.permute(1, 0, 2, 3).reshape(H, T * E, A).double().numpy()
    assert np.abs(0.1 * sampled).max() > 2.0  # clipping did happen
    assert np.mean(np.abs(0.1 * sampled) > 1.0) > 0.3
    np.testing.assert_allclose(sent, np.clip(0.1 * sampled, -1.0, 1.0), rtol=1e-6, atol=1e-7)


def test_a_sampled_transition_is_the_gymnasium_envs_for_the_applied_action() -> None:
    exp = experiment("policy.init_log_std=1.5")
    try:
        tasks = exp.sampler.sample_tasks(np.random.default_rng(1))
        params = {k: v.detach().unsqueeze(0).expand(2, *v.shape) for k, v in exp.policy.params().items()}
        seed = (0, 5)
        episodes = exp.sampler.sample(exp.policy, params, tasks, seed)
    finally:
        exp.close()
    env_seed, _ = stream_seeds(seed)
    task, slot = 1, 2  # slot s of the batch starts from env_seed + s
    env = envs.make(DIR_ENV, task=tasks[task], max_episode_steps=15)
    obs, _ = env.reset(seed=env_seed + task * 3 + slot)
    ctrl_costs = []
    for t in range(15):
        np.testing.assert_allclose(episodes.obs[task, t, slot].numpy(), obs, rtol=1e-5, atol=1e-5)
        applied = np.clip(0.1 * episodes.actions[task, t, slot].double().numpy(), -1.0, 1.0)
        obs, reward, _, _, info = env.step(applied)
        assert float(episodes.rewards[task, t, slot]) == pytest.approx(reward, rel=1e-5, abs=1e-5)
        # The control cost is charged on the applied (scaled, clipped) action.
        assert info["reward_ctrl"] == pytest.approx(-0.05 * float(np.sum(applied**2)), rel=1e-9)
        ctrl_costs.append(-info["reward_ctrl"])
    env.close()
    assert max(ctrl_costs) <= 0.05 * 6 + 1e-9


def test_raw_actions_remain_available() -> None:
    exp = experiment("policy.action_scale=1", "policy.clip_actions=false")
    try:
        actions = torch.tensor([[3.0, -0.5, 0.2, -4.0, 1.0, 0.0]])
        assert torch.equal(exp.policy.env_action(actions), actions)
    finally:
        exp.close()
    with pytest.raises(ValueError, match="action_scale"):
        GaussianMLPPolicy(2, 2, action_scale=0.0)


def test_the_video_path_applies_the_scale_once() -> None:
    # Navigation2D renders without OpenGL; its action space is ±0.1, so a doubled scale (±0.01) or a missing
    # one (the env's own clip at ±0.1 of an unscaled mean) would give a different return.
    config, _ = load_experiment_config(ROOT / "configs" / "navigation2d.yaml",
                                       ["train.meta_batch=1", "sampler.episodes=1", "policy.hidden=[8]"])
    exp = RLExperiment(config)
    try:
        policy = exp.policy
        with torch.no_grad():
            policy.mean.bias.copy_(torch.tensor([0.6, -0.3]))  # a mean action well inside ±1, outside ±0.1
        theta = task_params({k: v.detach().unsqueeze(0) for k, v in policy.params().items()}, 0)
        task = exp.sampler.sample_tasks(np.random.default_rng(0), 1)[0]
        frames, ret, _ = video.render_episode(policy, theta, "rl_alphamaml/Navigation2D-v0", task, seed=4,
                                              horizon=12, width=32, height=32)
    finally:
        exp.close()
    env = envs.make("rl_alphamaml/Navigation2D-v0", task=task, max_episode_steps=12)
    obs, _ = env.reset(seed=4)
    expected = 0.0
    for _ in range(12):
        with torch.no_grad():
            mean, _ = policy(torch.as_tensor(np.asarray(obs, dtype=np.float32)), theta)
        obs, reward, terminated, truncated, _ = env.step(np.clip(0.1 * mean.double().numpy(), -0.1, 0.1))
        expected += float(reward)
        if terminated or truncated:
            break
    env.close()
    assert len(frames) == 13
    assert math.isclose(ret, expected, rel_tol=1e-6, abs_tol=1e-9)


def test_a_policy_without_bounds_sends_the_scaled_sample() -> None:
    sampler = Sampler(DIR_ENV, num_tasks=1, episodes=2, threads=1, horizon=5)
    try:
        policy = GaussianMLPPolicy(sampler.obs_dim, sampler.act_dim, (8,), action_scale=0.5)
        recorder = RecordingEnv(sampler.env)
        sampler.env = recorder  # type: ignore[assignment]
        tasks = sampler.sample_tasks(np.random.default_rng(0))
        theta = {k: v.detach().unsqueeze(0) for k, v in policy.params().items()}
        episodes = sampler.sample(policy, theta, tasks, (1, 2))
    finally:
        sampler.close()
    sampled = episodes.actions[0].reshape(5, 2, -1).double().numpy()
    np.testing.assert_allclose(np.stack(recorder.actions), 0.5 * sampled, rtol=1e-6, atol=1e-7)


def test_non_finite_policy_parameters_fail_the_iteration_not_the_simulator() -> None:
    from rl_alphamaml.errors import IterationFailedError

    exp = experiment()
    try:
        tasks = exp.sampler.sample_tasks(np.random.default_rng(0))
        params = {k: v.detach().unsqueeze(0).expand(2, *v.shape).clone() for k, v in exp.policy.params().items()}
        params["mean.bias"][1, 0] = float("nan")
        with pytest.raises(IterationFailedError, match=r"mean\.bias are not finite"):
            exp.sampler.sample(exp.policy, params, tasks, (0, 1))
    finally:
        exp.close()


@pytest.mark.parametrize(("overrides", "sigma"), [((), math.exp(-4.0)), (("policy.min_std=0.5",), 0.5)])
def test_policy_min_std_floors_the_noise_the_sampler_draws(overrides: tuple[str, ...], sigma: float) -> None:
    exp = experiment("policy.init_log_std=-4.0", *overrides)
    try:
        tasks = exp.sampler.sample_tasks(np.random.default_rng(2))
        params = {k: v.detach().unsqueeze(0).expand(2, *v.shape) for k, v in exp.policy.params().items()}
        episodes = exp.sampler.sample(exp.policy, params, tasks, (0, 3))
        with torch.no_grad():
            mean, _ = exp.policy(episodes.obs, params)
    finally:
        exp.close()
    noise = (episodes.actions - mean).double()
    assert float(exp.policy.std().detach().mean()) == pytest.approx(sigma, rel=1e-6)
    # 2 tasks × 15 steps × 3 episodes × 6 joints = 540 draws: their SD is σ to about 3 % (one SD of its own)
    assert float(noise.std()) == pytest.approx(sigma, rel=0.1)


def test_policy_min_std_must_be_positive() -> None:
    with pytest.raises(ValueError, match="min_std"):
        load_experiment_config(ROOT / "configs" / "halfcheetah_dir.yaml", ["policy.min_std=0"])
