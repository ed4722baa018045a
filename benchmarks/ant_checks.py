"""Two checks behind the README's Ant paragraph: Alpha MAML [2] against MAML-TRPO [1, 3] on AntVel at equal
environment steps, and the references' action scale against torques at σ = 1 on AntDir.

* **AntVel**: ``configs/ant_vel_alpha.yaml`` (Adam, α and β by hypergradient) trained with the zoo entry's
  budget (150 iterations × 20 tasks × 10 episodes, 12 M steps) and evaluated like it (40 held-out tasks, 0–3
  steps); beside it MAML-TRPO with the same budget, the run the zoo shipped as ``ant_vel`` until the entry moved
  to the paper's Ant (``ant_paper.py``).
* **AntDir, action scale**: the settings of the zoo's former AntDir entry (gymnasium's Ant-v5) with
  ``policy.action_scale=1.0`` for 50 iterations, its training return after one step (mean of iterations 41–50)
  against the same settings at the default 0.1 over the same iterations. Both conventions on both Ant models, at
  equal environment steps: ``ant_paper.py``'s convention stage.

All runs are on gymnasium's Ant-v5, trained, resumed or reused through the CLI (``cli_runs.train_to``): the
Alpha MAML and AntDir runs in ``benchmarks/results/ant_runs/``, the AntVel MAML-TRPO one in
``benchmarks/results/zoo_runs/ant_vel`` (where ``build_zoo.py`` trained it).

Usage::

    python benchmarks/ant_checks.py

Writes ``benchmarks/results/ant_checks.{md,json}``.

References:
    [1] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
    [2] Behl, Baydin & Torr, "Alpha MAML: Adaptive Model-Agnostic Meta-Learning", 2019.
        https://arxiv.org/abs/1905.07435
    [3] Schulman, Levine, Moritz, Jordan & Abbeel, "Trust Region Policy Optimization", ICML 2015.
        https://arxiv.org/abs/1502.05477
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rl_alphamaml.logging import read_metrics

from cli_runs import ROOT, evaluate_once, train_command, train_to

RESULTS = ROOT / "benchmarks" / "results"
SCALE_ITERATIONS, WINDOW = 50, 10
#: MAML-TRPO on Ant-v5's AntVel, the former zoo entry's settings (its run folder is reused)
TRPO_VEL_SETS = ["train.iterations=150", "train.meta_batch=20", "sampler.episodes=10", "trpo.max_kl=0.02",
                 "train.checkpoint_every=10", "env.model=v5"]


def held_out(run_dir: Path) -> list[dict[str, float]]:
    """``rl-alphamaml evaluate RUN --tasks 40 --steps 3`` (reused when it measured the newest checkpoint)."""
    return [{"steps": r["steps"], "mean": r["mean"], "ci95": r["ci95"]}
            for r in evaluate_once(run_dir, "--tasks", "40", "--steps", "3")["adaptation"]]


def training_return(run_dir: Path, last: int) -> float:
    rows = [r for r in read_metrics(run_dir) if last - WINDOW < r["iteration"] <= last]
    return sum(r["returns/post_adapt"] for r in rows) / len(rows)


def markdown(result: dict[str, Any]) -> str:
    vel, scale = result["ant_vel"], result["ant_dir_action_scale"]

    def row(label: str, rows: list[dict[str, float]]) -> str:
        return f"| {label} | " + " | ".join(f"{r['mean']:.1f} ± {r['ci95']:.1f}" for r in rows) + " |"

    return "\n".join([
        "# Ant checks", "",
        "AntVel, 150 iterations × 20 tasks × 10 episodes (12 M environment steps), 40 held-out tasks ± 95 % CI:", "",
        "| method | after 0 steps | after 1 step | after 2 steps | after 3 steps |", "|---|---|---|---|---|",
        row("MAML-TRPO (max-KL 0.02; the former `zoo/ant_vel`)", vel["maml_trpo"]),
        row("Alpha MAML (`configs/ant_vel_alpha.yaml`)", vel["alpha_maml"]), "",
        f"AntDir, training return after one step, mean of iterations {scale['iterations']} (zoo settings): "
        f"`policy.action_scale` 0.1 (the default) {scale['scale_0.1']:.1f}, 1.0 {scale['scale_1.0']:.1f}.", "",
        f"Commands: `{vel['maml_trpo_command']}`; `{vel['alpha_maml_command']}`; `{scale['scale_1_command']}` "
        f"(stopped at its iteration-{SCALE_ITERATIONS} checkpoint); the AntDir run at 0.1: this script. Made by "
        "`python benchmarks/ant_checks.py`.",
    ])


def main() -> None:
    trpo_vel = RESULTS / "zoo_runs" / "ant_vel"
    train_to(trpo_vel, "ant_vel", TRPO_VEL_SETS, 150)
    alpha_vel = RESULTS / "ant_runs" / "ant_vel-alpha-s0"
    alpha_sets = ["train.iterations=150", "train.meta_batch=20", "sampler.episodes=10", "train.checkpoint_every=25",
                  "env.model=v5"]
    train_to(alpha_vel, "ant_vel_alpha", alpha_sets, 150)

    # gymnasium's Ant-v5, with the settings of the zoo's former v5 AntDir entry
    dir_sets = ["train.iterations=350", "train.meta_batch=20", "sampler.episodes=10", "trpo.max_kl=0.02",
                "trpo.subsample=0.1", "train.checkpoint_every=25", "env.model=v5"]
    trpo_dir = RESULTS / "ant_runs" / "ant_dir-s0"
    train_to(trpo_dir, "ant_dir", dir_sets, SCALE_ITERATIONS)
    scale_sets = [*(s for s in dir_sets if not s.startswith(("train.iterations=", "train.checkpoint_every="))),
                  "train.iterations=100", "train.checkpoint_every=25", "policy.action_scale=1.0"]
    scale_dir = RESULTS / "ant_runs" / "ant_dir-scale1-s0"
    train_to(scale_dir, "ant_dir", scale_sets, SCALE_ITERATIONS)  # stopped after 50 of the 100 it was given

    result: dict[str, Any] = {
        "ant_vel": {"maml_trpo": held_out(trpo_vel), "alpha_maml": held_out(alpha_vel),
                    "maml_trpo_command": train_command("ant_vel", TRPO_VEL_SETS),
                    "alpha_maml_command": train_command("ant_vel_alpha", alpha_sets)},
        "ant_dir_action_scale": {"iterations": f"{SCALE_ITERATIONS - WINDOW + 1}-{SCALE_ITERATIONS}",
                                 "scale_0.1": training_return(trpo_dir, SCALE_ITERATIONS),
                                 "scale_1.0": training_return(scale_dir, SCALE_ITERATIONS),
                                 "scale_1_command": train_command("ant_dir", scale_sets)},
    }
    text = markdown(result)
    (RESULTS / "ant_checks.md").write_text(text + "\n")
    (RESULTS / "ant_checks.json").write_text(json.dumps(result, indent=2) + "\n")
    print(text)


if __name__ == "__main__":
    main()
