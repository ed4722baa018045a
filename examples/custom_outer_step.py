"""A new outer step for the RL learner, registered in one line: Reptile.

The RL learner splits a meta-iteration in two (:class:`agents.maml_pg.MAMLPG`): ``collect`` samples every task,
adapts θ → θ′ᵢ with the inner steps and samples again (a :class:`agents.maml_pg.MetaBatch`); an outer step —
chosen by ``outer.optimizer`` from :data:`agents.outer_steps.OUTER_STEPS` — then updates θ from that batch.
MAML-TRPO, SGD/Adam (Alpha MAML) and ProMP are such steps; this script adds Reptile (Nichol, Achiam & Schulman
2018), which needs no meta-gradient at all: it moves θ towards the adapted parameters,

    θ ← θ + ε · meanᵢ (θ′ᵢ − θ),

with ε the run's ``outer.lr``. With one inner step Reptile is joint training on the pre-update loss; it
differs from it from two inner steps on (the paper's §5), so the run below takes two. α stays fixed (Reptile
has no hypergradient; ``inner.lr_mode: hd`` would need a meta-gradient through the adaptation, see
:class:`agents.outer_steps.TRPOStep` for how a step that updates θ itself still lets α follow it).

After the registration line the step is an ``outer.optimizer`` value like the built-in ones: a config file, or
``--set outer.optimizer=reptile`` on a program that imports this module, selects it.

Usage::

    python examples/custom_outer_step.py          # 40 meta-iterations on Navigation2D, about a minute here
    python examples/custom_outer_step.py --tiny   # 2 iterations of 2 tasks × 2 episodes: seconds
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import torch

from agents.maml_pg import MAMLPG, MetaBatch
from agents.outer_steps import OUTER_STEPS, CoreOptimizer, OuterStep
from agents.trainer import RLConfig, RLExperiment, evaluate
from rl_alphamaml.cli import load_experiment_config
from rl_alphamaml.evaluation import format_table

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


class ReptileStep(OuterStep):
    """Reptile (Nichol, Achiam & Schulman, "On First-Order Meta-Learning Algorithms", 2018,
    https://arxiv.org/abs/1803.02999): θ ← θ + ε · meanᵢ (θ′ᵢ − θ), ε = ``outer.lr``."""

    def __init__(self, epsilon: float) -> None:
        self.epsilon = epsilon

    @classmethod
    def core_optimizer(cls, name: str) -> CoreOptimizer | None:
        return None  # θ is updated here, not by the core's SGD/Adam with rate β

    @classmethod
    def from_config(cls, config: RLConfig) -> ReptileStep:
        return cls(epsilon=config.outer.lr)

    def step(self, learner: MAMLPG, batch: MetaBatch) -> dict[str, float]:
        adapted = batch.val.params  # θ′ᵢ(θ_old), one per task: what sampled the validation episodes
        with torch.no_grad():  # the meta-loss at θ_old, for the logs: θ_j(θ_old) sampled phase j
            loss = learner.meta_loss(batch, [*(phase.params for phase in batch.train), adapted])
            shift = 0.0
            for name, theta in learner.meta.params.items():
                delta = adapted[name].mean(dim=0) - theta
                theta.add_(self.epsilon * delta)
                shift += float(delta.pow(2).sum())
        return {"loss/post_adapt": float(loss), "reptile/shift_norm": shift**0.5}


OUTER_STEPS["reptile"] = ReptileStep  # the one line that makes `outer.optimizer: reptile` a valid config


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a few seconds' budget (what the tests run)")
    args = parser.parse_args(argv)
    budget = (["train.iterations=2", "train.meta_batch=2", "sampler.episodes=2", "env.horizon=20"] if args.tiny
              else ["train.iterations=40"])
    # The shipped MAML-TRPO navigation config with the outer step swapped: two inner steps at α 0.1, ε 1.
    config, _ = load_experiment_config(CONFIGS / "navigation2d.yaml",
                                       ["outer.optimizer=reptile", "outer.lr=1.0", "inner.steps=2", *budget])
    experiment = RLExperiment(config)
    try:
        for i in range(1, config.train.iterations + 1):
            scalars = experiment.train_iteration(i, None)
            if i == 1 or i % 10 == 0 or i == config.train.iterations:
                print(f"iteration {i:3d}: return before adaptation {scalars['returns/pre_adapt']:8.2f}, "
                      f"after two steps {scalars['returns/post_adapt']:8.2f}, "
                      f"|mean θ′ − θ| {scalars['reptile/shift_norm']:.4f}")
        result = evaluate(experiment, tasks=2 if args.tiny else 20, steps=2, seed=12345)
    finally:
        experiment.close()
    print(format_table(result))


if __name__ == "__main__":
    main()
