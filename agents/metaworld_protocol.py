"""Meta-World's evaluation protocol [1, 2] for a meta-trained policy: ``rl-alphamaml evaluate --protocol metaworld``.

metaworld's ``metaworld.evaluation.metalearning_evaluation`` adapts every test task on
:data:`ADAPTATION_EPISODES` (10) episodes sampled from the policy (one inner step by default), then scores the
adapted policy on :data:`EVALUATION_EPISODES` (3) episodes of its deterministic action that end at the first
success; the headline number is the success rate, the share of those episodes that succeeded, averaged over the test
classes. The deterministic action is the policy's mean, as the MAML-TRPO of metaworld-algorithms
(github.com/rainx0r/metaworld-algorithms) acts in evaluation; metaworld's resets are deterministic given the task, so
a task's 3 scoring episodes are one episode three times (they are run as the protocol says). Here every held-out task
(:meth:`envs.base.TaskFamily.sample_held_out_tasks`: the benchmark's test split) is adapted by the learner's own
test-time step (:meth:`agents.maml_pg.MAMLPG.evaluation_step`, the sampled episodes of the stream ``evaluate``
uses) and scored the same way after 0, 1, …, K inner steps, so the report shows the success rate (and the return of
the scoring episodes) before adaptation too. A draw of the test split spreads the tasks evenly over its classes, so
the mean over tasks weighs the classes equally, as metaworld's mean over classes does.

metaworld's function steps one vector environment per class-and-goal subset and counts, per class, the first 3
episodes to *end* across that class's environments; with one environment per class (``meta_batch_size`` equal to
the number of test classes) that is each task's 3 episodes, and on the same policy, tasks and seed its numbers are
the ones here (``tests/agents/test_metaworld_protocol.py`` runs both). With several environments per class it
scores only the 3 earliest-ending episodes of each class per round — those that succeed soonest — and not every
task's; this protocol scores every task.

References:
    [1] Yu, Quillen, He, Julian, Hausman, Finn & Levine, "Meta-World: A Benchmark and Evaluation for Multi-Task
        and Meta Reinforcement Learning", CoRL 2019. https://arxiv.org/abs/1910.10897
    [2] McLean, Chatzaroulas, McCutcheon, Röder, Yu, He, Julian, Hausman, Finn, Levine & Castro, "Meta-World+: An
        Improved, Standardized, RL Benchmark", 2025. https://arxiv.org/abs/2505.11289
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

import envs
from agents.maml_pg import MAMLPG
from agents.policy import GaussianMLPPolicy
from agents.sampler import Episodes, tasks_per_pass
from envs.metaworld import MetaWorldFamily
from envs.tasks import Task
from rl_alphamaml.errors import UserError
from rl_alphamaml.meta import Params, adaptation_curve, expand_params

__all__ = ["ADAPTATION_EPISODES", "EVALUATION_EPISODES", "Scores", "check_family", "evaluate", "score"]

#: episodes sampled per task for each inner step (metaworld's ``adaptation_episodes``)
ADAPTATION_EPISODES = 10
#: deterministic episodes that score each task, each ending at its first success (``evaluation_episodes``)
EVALUATION_EPISODES = 3


@dataclasses.dataclass
class Scores:
    """Scoring episodes of ``T`` tasks, ``E`` each: ``success`` and ``returns`` (T, E) (the return up to the episode's
    end, its first success or the horizon), ``lengths`` (T, E) in steps."""

    success: np.ndarray
    returns: np.ndarray
    lengths: np.ndarray


def check_family(env_id: str) -> None:
    """Refuse, as a :class:`~rl_alphamaml.errors.UserError`, a family that is not one of Meta-World's."""
    if not issubclass(envs.family_class(env_id), MetaWorldFamily):
        raise UserError(f"--protocol metaworld is Meta-World's evaluation, for its families (MetaWorldML1-v0, "
                        f"MetaWorldML10-v0, MetaWorldML45-v0), not {env_id}")


@torch.no_grad()
def score(env: envs.BatchedEnv, policy: GaussianMLPPolicy, params: Mapping[str, Tensor], tasks: Sequence[Task],
          episodes: int = EVALUATION_EPISODES) -> Scores:
    """``episodes`` episodes of every task's parameters (``params[name][i]`` on ``tasks[i]``) with the policy's mean
    action, each ending at its first success; ``env`` is a :class:`envs.BatchedEnv` of a Meta-World family made with
    ``terminate_on_success=True`` and ``len(tasks) * episodes`` slots. The rewards are summed in float64, as
    gymnasium's ``RecordEpisodeStatistics`` sums them for metaworld."""
    T, E = len(tasks), episodes
    if env.n_slots != T * E or not getattr(env.family, "terminate_on_success", False):
        raise ValueError(f"score needs a terminate_on_success environment of {T * E} slots, got {env!r}")
    params = {k: v.detach().to("cpu", torch.float32) for k, v in params.items()}
    obs = env.reset(list(tasks), seeds=0)  # metaworld's reset does not depend on the seed
    returns = np.zeros(env.n_slots)
    success = np.zeros(env.n_slots, dtype=bool)
    lengths = np.zeros(env.n_slots, dtype=np.int64)
    while not env.done:
        active = env.active
        mean, _ = policy(torch.from_numpy(np.asarray(obs, dtype=np.float32)).view(T, E, -1), params)
        step = env.step(policy.env_action(mean).reshape(T * E, -1).numpy().astype(np.float64))
        returns += step.reward  # 0 for an ended slot
        success |= env.last_info["success"] >= 1.0
        lengths += active
        obs = step.obs
    return Scores(success.reshape(T, E), returns.reshape(T, E), lengths.reshape(T, E))


def evaluate(learner: MAMLPG, env_id: str, tasks: Sequence[Task], steps: int, seed: Sequence[int],
             horizon: int | None = None, env_kwargs: Mapping[str, Any] | None = None,
             inner_lrs: Sequence[float] | None = None, max_slots: int = 0) -> dict[str, Any]:
    """Meta-World's protocol on ``tasks``: after 0…``steps`` inner steps, each task's success rate and mean return
    over :data:`EVALUATION_EPISODES` scoring episodes; between the scorings one inner step on the episodes the
    learner's sampler draws (its ``episodes`` per task: :data:`ADAPTATION_EPISODES` for the protocol) from the stream
    ``(*seed, j)``, as ``evaluate`` adapts. ``max_slots`` bounds the scoring simulators as ``sampler.max_slots`` bounds
    the sampler's. Returns ``{"success_rate": [[…] per step], "return": …, "length": …}`` (per step, per task)."""
    check_family(env_id)
    T = len(tasks)
    if learner.sampler.num_tasks != T:
        raise ValueError(f"the learner's sampler holds {learner.sampler.num_tasks} tasks, not {T}")
    per_pass = tasks_per_pass(T, EVALUATION_EPISODES, max_slots)
    inner_step = learner.evaluation_step(inner_lrs)
    with envs.BatchedEnv(env_id, per_pass * EVALUATION_EPISODES, horizon=horizon, terminate_on_success=True,
                         **dict(env_kwargs or {})) as scorer:

        def measure(params: Params, j: int) -> tuple[Episodes | None, Scores]:
            parts = [score(scorer, learner.policy, {k: v[a:a + per_pass] for k, v in params.items()},
                           tasks[a:a + per_pass]) for a in range(0, T, per_pass)]
            scores = Scores(*(np.concatenate([getattr(p, f.name) for p in parts])
                              for f in dataclasses.fields(Scores)))
            episodes = None
            if j < steps:  # the adaptation batch of the next inner step
                episodes = learner.sampler.sample(learner.policy, params, tasks, (*seed, j)).to(params["log_std"])
            return episodes, scores

        def step(params: Params, j: int, measured: tuple[Episodes | None, Scores]) -> Params:
            assert measured[0] is not None
            return inner_step(params, j, measured[0])

        _, measured = adaptation_curve(expand_params(learner.meta.params, T), steps, measure, step)
    scores = [m[1] for m in measured]
    return {"success_rate": [s.success.mean(axis=1).tolist() for s in scores],
            "return": [s.returns.mean(axis=1).tolist() for s in scores],
            "length": [s.lengths.mean(axis=1).tolist() for s in scores]}
