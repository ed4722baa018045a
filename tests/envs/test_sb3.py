"""stable-baselines3 trains on a family directly (envs needs no torch; SB3 brings its own)."""

from __future__ import annotations

import numpy as np
import pytest

import envs
from envs import VelocityTask


def test_sb3_ppo_trains_on_one_fixed_task() -> None:
    torch = pytest.importorskip("torch")
    from stable_baselines3 import PPO

    torch.set_num_threads(1)
    env = envs.make("rl_alphamaml/HalfCheetahVel-v0", task=VelocityTask(1.0))
    model = PPO("MlpPolicy", env, n_steps=512, batch_size=128, n_epochs=2, seed=0, device="cpu", verbose=0)
    model.learn(total_timesteps=2048)
    assert model.num_timesteps >= 2048
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert action.shape == (6,) and np.all(np.isfinite(action))
    _, reward, _, _, info = env.step(action)
    assert np.isfinite(reward) and info["task"] == VelocityTask(1.0)
    env.close()
