"""Episodes that end early (the MAML paper's Ant ends one when the torso leaves z ∈ [0.2, 1]) are masked through
sampling, returns, the baseline, advantages, the losses and the evaluation's returns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import envs
from agents.baseline import LinearFeatureBaseline
from agents.maml_pg import AdvantageConfig, advantages, inner_loss
from agents.policy import GaussianMLPPolicy
from agents.sampler import Episodes, Sampler, stream_seeds
from rl_alphamaml.cli import main
from rl_alphamaml.meta import expand_params

ROOT = Path(__file__).resolve().parents[2]
ANT = "rl_alphamaml/AntDir-v0"
KW = {"model": "maml2017"}


def _sample() -> tuple[Sampler, GaussianMLPPolicy, Episodes, list[envs.DirectionTask], tuple[int, int]]:
    sampler = Sampler(ANT, num_tasks=2, episodes=4, env_kwargs=KW)
    torch.manual_seed(0)
    # σ = 1 over the full torque range (action_scale 1): the ant tumbles and most episodes end early
    policy = GaussianMLPPolicy(sampler.obs_dim, sampler.act_dim, hidden_sizes=(16,), action_scale=1.0,
                               action_bounds=(sampler.action_space.low, sampler.action_space.high))
    tasks = [envs.DirectionTask(1), envs.DirectionTask(-1)]
    seed = (5, 1, 0)
    episodes = sampler.sample(policy, expand_params(policy.params(), 2), tasks, seed)
    return sampler, policy, episodes, tasks, stream_seeds(seed)


def test_sampled_episodes_replay_in_the_single_env_and_end_where_it_ends() -> None:
    sampler, policy, episodes, tasks, (env_seed, _) = _sample()
    env = envs.make(ANT, **KW)
    lengths = episodes.mask.sum(dim=1)  # (T, E)
    assert lengths.min() < 200 and lengths.max() <= 200 and len(set(lengths.flatten().tolist())) > 2
    for i, task in enumerate(tasks):
        for e in range(sampler.episodes):
            length = int(lengths[i, e])
            mask = episodes.mask[i, :, e]
            assert torch.equal(mask[:length], torch.ones(length)) and not mask[length:].any()  # leading ones
            assert not episodes.obs[i, length:, e].any() and not episodes.rewards[i, length:, e].any()
            obs, _ = env.reset(seed=env_seed + i * sampler.episodes + e, options={"task": task})
            total = 0.0
            for t in range(length):
                np.testing.assert_allclose(episodes.obs[i, t, e].numpy(), obs.astype(np.float32), rtol=1e-6)
                action = policy.env_action(episodes.actions[i, t, e]).double().numpy()
                obs, reward, terminated, truncated, _ = env.step(action)
                total += reward
                assert (terminated or truncated) == (t == length - 1)
            np.testing.assert_allclose(float(episodes.episode_returns()[i, e]), total, rtol=1e-4)
    env.close()
    sampler.close()


def test_steps_after_an_episode_ended_change_no_return_value_advantage_or_loss() -> None:
    sampler, policy, episodes, _, _ = _sample()
    sampler.close()
    ended = episodes.mask == 0
    assert ended.any()
    # what a buggy pipeline would leak: garbage observations, actions and rewards after each episode's end
    garbage = Episodes(torch.where(ended[..., None], torch.full_like(episodes.obs, 1e3), episodes.obs),
                       torch.where(ended[..., None], torch.full_like(episodes.actions, 7.0), episodes.actions),
                       torch.where(ended, torch.full_like(episodes.rewards, 1e3), episodes.rewards), episodes.mask)
    cfg = AdvantageConfig()
    clean_adv = advantages(episodes, cfg, LinearFeatureBaseline())
    dirty_adv = advantages(garbage, cfg, LinearFeatureBaseline())
    assert not clean_adv[ended].any()
    torch.testing.assert_close(dirty_adv, clean_adv)
    params = expand_params(policy.params(), 2)
    torch.testing.assert_close(inner_loss(policy, params, garbage, dirty_adv),
                               inner_loss(policy, params, episodes, clean_adv))
    torch.testing.assert_close(policy.kl(params, params, garbage.obs, garbage.mask), torch.zeros(2))
    # the returns the evaluation reports: mean over a task's episodes of each episode's masked sum
    torch.testing.assert_close(garbage.task_returns(), episodes.task_returns())
    lengths = episodes.mask.sum(dim=1)
    per_step = torch.stack([episodes.rewards[i, : int(n), e].sum() for i, row in enumerate(lengths)
                            for e, n in enumerate(row)]).view(2, -1)
    torch.testing.assert_close(episodes.task_returns(), per_step.mean(dim=1))


def test_train_and_evaluate_run_on_the_paper_ant(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert main(["train", str(ROOT / "configs" / "ant_dir.yaml"), "--run-dir", str(run), "--set", "env.model=maml2017",
                 "--set", "train.iterations=1", "--set", "train.meta_batch=2", "--set", "sampler.episodes=2",
                 "--set", "policy.hidden=[8]", "--set", "policy.action_scale=1"]) == 0
    assert "model: maml2017" in (run / "config.yaml").read_text()
    assert main(["evaluate", str(run), "--tasks", "2", "--steps", "1", "--episodes", "2"]) == 0
    report = (run / "eval" / "adaptation.json").read_text()
    assert '"steps": 1' in report
