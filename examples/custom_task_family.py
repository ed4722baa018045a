"""Meta-train on a task family of your own: a new parametric Gymnasium environment, registered in a few lines.

RingNavigation: a point robot starts at the origin and must reach a goal on a circle of radius ``radius``
around it. It reuses Navigation2D's numpy kernels (moves clipped to ±0.1, reward −‖p − g‖₂ after each move,
the goal tolerance, rendering), so :class:`envs.BatchedEnv` steps it for meta-training like a built-in family,
and only the task distribution is new. What a family needs:

* a task type: here the built-in :class:`envs.GoalTask`; a family whose tasks are other data defines a frozen
  dataclass deriving from :class:`envs.Task` with a unique ``kind`` (tasks are data and round-trip through
  JSON, so a run's held-out tasks can be written down);
* the task API of :class:`envs.base.TaskFamily`: the distribution (``_sample``, drawing only from the ``rng``
  it is given), the range check (``_check_task``), ``default_task`` and ``task_params`` (tasks → the float
  array the vectorised kernels read; for the navigation kernels, the goal — :class:`envs.base.GoalTasks`
  already provides it);
* one call to :func:`envs.register_family`.

Then Alpha MAML (``configs/navigation2d_alpha.yaml``: Adam outer loop, α and β by hypergradient) meta-trains a
policy on it through the RL learner's Python API, and the policy is measured on goals it never trained on,
before and after one inner step. Everything but the family is the toolkit's.

Usage::

    python examples/custom_task_family.py           # 60 meta-iterations: a few minutes on 2 CPU cores
    python examples/custom_task_family.py --tiny    # 2 iterations of 2 tasks × 2 episodes: seconds
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import utils

import envs
from agents.trainer import RLExperiment, evaluate
from envs import GoalTask, TaskError
from rl_alphamaml.cli import load_experiment_config
from rl_alphamaml.evaluation import format_table

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


class RingNavigationEnv(envs.Navigation2DEnv):
    """Navigation2D with goals drawn uniformly on a circle of radius ``radius`` (default 0.4) around the start."""

    family_name = "RingNavigation-v0"

    def __init__(self, task: GoalTask | Mapping[str, Any] | None = None, *, radius: float = 0.4,
                 **kwargs: Any) -> None:
        self.radius = float(radius)
        super().__init__(task, low=-self.radius, high=self.radius, **kwargs)  # low/high: the area drawn
        utils.EzPickle.__init__(self, task, radius=radius, **kwargs)

    def default_task(self) -> GoalTask:
        return GoalTask((self.radius, 0.0))

    def _sample(self, n: int, rng: np.random.Generator) -> list[GoalTask]:
        angles = rng.uniform(0.0, 2 * math.pi, size=n)
        return [GoalTask((self.radius * math.cos(a), self.radius * math.sin(a))) for a in angles]

    def _check_task(self, task: GoalTask) -> None:
        if abs(math.hypot(*task.goal) - self.radius) > 1e-9:
            raise TaskError(f"{self.family_name}: goal {task.goal} is not on the circle of radius {self.radius}")


ENV_ID = envs.register_family("RingNavigation-v0", RingNavigationEnv, max_episode_steps=100)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a few seconds' budget (what the tests run)")
    args = parser.parse_args(argv)

    # The family behaves like a built-in one: a gymnasium env with the task API ...
    env = envs.make(ENV_ID)
    family = env.unwrapped
    assert isinstance(family, RingNavigationEnv)
    task = family.sample_tasks(1, np.random.default_rng(0))[0]
    obs, info = env.reset(seed=0, options={"task": task})
    print(f"{ENV_ID}: task {info['task'].to_json()}, start {obs.tolist()}")

    # ... and the shipped Alpha-MAML navigation config trains on it with env.id set to the new family.
    budget = (["train.iterations=2", "train.meta_batch=2", "sampler.episodes=2", "env.horizon=20"] if args.tiny
              else ["train.iterations=60"])
    config, _ = load_experiment_config(CONFIGS / "navigation2d_alpha.yaml", [f"env.id={ENV_ID}", *budget])
    experiment = RLExperiment(config)
    try:
        for i in range(1, config.train.iterations + 1):
            scalars = experiment.train_iteration(i, None)
            if i == 1 or i % 10 == 0 or i == config.train.iterations:
                print(f"iteration {i:3d}: return before adaptation {scalars['returns/pre_adapt']:8.2f}, "
                      f"after one step {scalars['returns/post_adapt']:8.2f}, α {scalars['meta/alpha']:.3f}, "
                      f"β {scalars['meta/beta']:.5f}")
        # Held-out goals (a seed stream apart from training's), adapted with fresh episodes per step.
        result = evaluate(experiment, tasks=2 if args.tiny else 20, steps=1, seed=12345)
    finally:
        experiment.close()
    print(format_table(result))


if __name__ == "__main__":
    main()
