"""``evaluate --protocol metaworld`` against metaworld's own ``metalearning_evaluation`` on the same policy and seed.

metaworld's function drives an agent through its vector environments (``gymnasium.make_vec("Meta-World/ML1-test",
…)``): per round it samples a task, collects 10 adaptation episodes, calls ``agent.adapt()`` and scores 3
episodes that end on success. The agent here is our learner: the actions of our policy with the noise our sampler
draws for that task and seed, our inner step on the episodes metaworld's loop collected, the mean action after it.
Our protocol runs the same tasks through ``envs.BatchedEnv`` and our sampler. Equal numbers mean the same test
goals in the same environments, the same transitions, the same ending on success and the same statistic; with one
environment per class metaworld's statistic is each task's 3 episodes (``agents.metaworld_protocol``), so the
comparison is exact.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.metaworld

ROOT = Path(__file__).resolve().parents[2]
H = 60  # steps per episode, both sides (metaworld's TimeLimit, our horizon): a reach takes ~30
SEED = 4  # metaworld's seed: its test goals (ML1: seed + 1) and its task order; our benchmark_seed


class LearnerAgent:
    """metaworld's ``MetaLearningAgent`` protocol, played by our learner (one environment, one task per round)."""

    def __init__(self, learner: object, eval_envs: object, rounds_seeds: list[int]) -> None:
        from agents.sampler import stream_seeds
        from envs import MetaWorldTask
        from rl_alphamaml.seeding import EVALUATION_SAMPLING

        self.learner, self.envs, self.seeds = learner, eval_envs, rounds_seeds
        self._stream_seeds, self._task, self._sampling = stream_seeds, MetaWorldTask, EVALUATION_SAMPLING
        self.tasks: list = []

    def init(self) -> None:
        """A new round: read its task from metaworld's environment, start from θ with our sampler's noise."""
        from rl_alphamaml.meta import expand_params

        wrapper = self.envs.envs[0]
        current = wrapper.get_wrapper_attr("tasks")[wrapper.get_wrapper_attr("current_task_idx")]
        self.tasks.append(self._task(current.env_name, tuple(float(x) for x in wrapper.unwrapped._last_rand_vec)))
        sampler = self.learner.sampler
        _, noise_seed = self._stream_seeds((self.seeds[len(self.tasks) - 1], self._sampling, 0))
        generator = torch.Generator().manual_seed(noise_seed)
        E, A = sampler.episodes, sampler.act_dim
        self.noise = [torch.randn((1, E, A), generator=generator) for _ in range(H)]  # as rollout draws them
        self.params = expand_params({n: p.detach() for n, p in self.learner.meta.params.items()}, 1)
        self.obs = torch.zeros(1, H, E, sampler.obs_dim)
        self.actions = torch.zeros(1, H, E, A)
        self.rewards = torch.zeros(1, H, E)
        self.t = 0

    def adapt_action(self, observations: np.ndarray) -> tuple[np.ndarray, dict]:
        e, h = divmod(self.t, H)
        policy = self.learner.policy
        obs = torch.zeros(1, self.obs.shape[2], self.obs.shape[3])  # our sampler's layout: episode e in row e
        obs[0, e] = torch.from_numpy(observations[0].astype(np.float32))
        action = policy.sample({n: p.float() for n, p in self.params.items()}, obs, noise=self.noise[h])[0, e]
        self.obs[0, h, e], self.actions[0, h, e] = obs[0, e], action
        return policy.env_action(action)[None].numpy().astype(np.float64), {}

    def step(self, timestep: object) -> None:
        e, h = divmod(self.t, H)
        self.rewards[0, h, e] = float(np.float32(timestep.reward[0]))
        self.t += 1

    def adapt(self) -> None:
        from agents.sampler import Episodes

        episodes = Episodes(self.obs, self.actions, self.rewards, torch.ones_like(self.rewards))
        leaves = {n: p.detach().clone().requires_grad_(True) for n, p in self.params.items()}
        with torch.enable_grad():
            adapted = self.learner.evaluation_step()(leaves, 0, episodes)
        self.params = {n: p.detach() for n, p in adapted.items()}

    def eval_action(self, observations: np.ndarray) -> np.ndarray:
        obs = torch.from_numpy(observations[0].astype(np.float32)).expand(1, 3, -1)  # the 3 scoring slots
        mean, _ = self.learner.policy(obs, {n: p.float() for n, p in self.params.items()})
        return self.learner.policy.env_action(mean[0, 0])[None].numpy().astype(np.float64)

    def reset(self, env_mask: np.ndarray) -> None:
        """A feed-forward policy keeps nothing between episodes."""


def _learner() -> object:
    from agents.trainer import RLExperiment
    from rl_alphamaml.cli import load_experiment_config

    config, _ = load_experiment_config(ROOT / "configs" / "metaworld_ml1_reach.yaml", [
        "train.meta_batch=1", "sampler.episodes=10", f"env.horizon={H}", f"env.benchmark_seed={SEED}",
        "policy.hidden=[16]", "train.threads=1"])
    experiment = RLExperiment(config, num_tasks=1)
    with torch.no_grad():  # a small policy that heads for the goals' side (+y), so that some tasks succeed
        policy = experiment.policy
        out = [m for m in policy.modules() if isinstance(m, torch.nn.Linear)][-1]
        out.weight.mul_(0.05)
        out.bias.copy_(torch.tensor([0.0, 0.8, 0.0, 0.0]))
        policy.log_std.fill_(-0.7)
    return experiment


def test_our_protocol_reproduces_metaworlds_evaluation_function() -> None:
    import gymnasium
    from metaworld.evaluation import metalearning_evaluation

    from agents import metaworld_protocol
    from rl_alphamaml.seeding import EVALUATION_SAMPLING

    rounds = 4
    seeds = [100 + i for i in range(rounds)]
    experiment = _learner()
    learner = experiment.learner
    eval_envs = gymnasium.make_vec("Meta-World/ML1-test", env_name="reach-v3", meta_batch_size=1, seed=SEED,
                                   max_episode_steps=H)
    agent = LearnerAgent(learner, eval_envs, seeds)
    try:
        theirs_success, theirs_return, _ = metalearning_evaluation(agent, eval_envs, num_evals=rounds,
                                                                   adaptation_steps=1, adaptation_episodes=10,
                                                                   evaluation_episodes=3)
    finally:
        eval_envs.close()
    assert len(agent.tasks) == rounds and len(set(agent.tasks)) == rounds
    # metaworld's test tasks are ours: the held-out split of the family
    held_out = experiment.sampler.sample_tasks(np.random.default_rng(0), 50, held_out=True)
    assert set(agent.tasks) <= set(held_out)

    total_success = total_return = 0.0
    per_task = []
    for task, seed in zip(agent.tasks, seeds):
        ours = metaworld_protocol.evaluate(learner, "rl_alphamaml/MetaWorldML1-v0", [task], 1,
                                           (seed, EVALUATION_SAMPLING), horizon=H,
                                           env_kwargs={"benchmark_seed": SEED, "env_name": "reach-v3"})
        per_task.append(ours["success_rate"][1][0])
        total_success += ours["success_rate"][1][0]  # after the inner step, as metaworld scores
        total_return += ours["return"][1][0]
    experiment.close()
    assert 0.0 < np.mean(per_task) < 1.0, per_task  # a comparison that could tell successes from failures
    assert total_success / rounds == theirs_success
    # The returns were equal to the last bit on the machine this test was written on. On this project's later VM,
    # metaworld's side of the comparison is not even equal to itself: from run to run its mean return here was
    # 284.8788 or 284.7378 (ours, 284.8788, every time) — the simulator amplifies a last-bit difference in the
    # policy's float32 actions, and the agent's actions (one at a time, beside metaworld's vector environment) are
    # not computed as our protocol computes them (three scoring slots at once). So the success rates must agree
    # exactly and the returns to 1e-3.
    assert total_return / rounds == pytest.approx(theirs_return, rel=1e-3)
