"""Seconds per meta-iteration of the RL learner, by phase, at the issue's setting: HalfCheetahVel,
meta-batch 20, 10 episodes per task, horizon 200 (80,000 environment steps per iteration).

Variants, measured in the same run on the same machine:
  * MAML-TRPO [1, 2] with the Fisher-form Hessian-vector product (this toolkit's default, ``trpo.hvp: fisher``);
  * MAML-TRPO with the textbook third-order double-backward HVP through the adaptation
    (``trpo.hvp: direct``, the way pytorch-maml-rl computes it) — the in-run reference;
  * MAML-TRPO with the curvature products on 10 % of each task's episodes (``trpo.subsample: 0.1``, rllab's
    ``subsample_factor`` [3]): same gradient, KL bound and line search on every episode;
  * Alpha MAML [4] (Adam outer loop, α and β by hypergradient) — no conjugate gradient at all;
  * ProMP [5] and Alpha-ProMP (5 Adam steps per batch on the clipped objective, each re-adapting the policy).

All with the references' action convention (``policy.action_scale: 0.1``, the default).

Usage::

    python benchmarks/rl_speed.py                       # 4 timed iterations per variant after 1 warm-up
    python benchmarks/rl_speed.py --iterations 2 --threads 2
    python benchmarks/rl_speed.py --variants Fisher ProMP --out benchmarks/results/rl_speed_promp.json

Prints a table and writes ``benchmarks/results/rl_speed.json``.

References:
    [1] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
    [2] Schulman, Levine, Moritz, Jordan & Abbeel, "Trust Region Policy Optimization", ICML 2015.
        https://arxiv.org/abs/1502.05477
    [3] Duan, Chen, Houthooft, Schulman & Abbeel, "Benchmarking Deep Reinforcement Learning for Continuous
        Control", ICML 2016 (rllab). https://arxiv.org/abs/1604.06778
    [4] Behl, Baydin & Torr, "Alpha MAML: Adaptive Model-Agnostic Meta-Learning", 2019.
        https://arxiv.org/abs/1905.07435
    [5] Rothfuss, Lee, Clavera, Asfour & Abbeel, "ProMP: Proximal Meta-Policy Search", ICLR 2019.
        https://arxiv.org/abs/1810.06784
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
from pathlib import Path

import torch

from rl_alphamaml import seeding
from rl_alphamaml.cli import load_experiment_config

import results_io

ROOT = Path(__file__).resolve().parents[1]
SETTING = ["train.meta_batch=20", "sampler.episodes=10"]
VARIANTS = [
    ("MAML-TRPO, Fisher-form HVP (default)", "halfcheetah_vel", ["trpo.hvp=fisher"]),
    ("MAML-TRPO, double-backward HVP (reference)", "halfcheetah_vel", ["trpo.hvp=direct"]),
    ("MAML-TRPO, Fisher-form HVP on 10 % of the episodes", "halfcheetah_vel",
     ["trpo.hvp=fisher", "trpo.subsample=0.1"]),
    ("Alpha MAML (Adam-HD outer)", "halfcheetah_vel_alpha", []),
    ("ProMP (5 Adam steps per batch)", "halfcheetah_vel_promp", []),
    ("Alpha-ProMP (α and β by hypergradient)", "halfcheetah_vel_alpha_promp", []),
]
PHASES = ["time/sampling", "time/adaptation", "time/outer", "time/iteration"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "rl_speed.json")
    parser.add_argument("--variants", nargs="+", metavar="TEXT",
                        help="only the variants whose name contains one of these (default: all)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    chosen = [v for v in VARIANTS if not args.variants or any(t in v[0] for t in args.variants)]
    for name, config_name, overrides in chosen:
        config, kind = load_experiment_config(ROOT / "configs" / f"{config_name}.yaml", [*SETTING, *overrides])
        experiment = kind.build(config, None)
        times: dict[str, list[float]] = {k: [] for k in PHASES}
        steps_per_s = []
        for it in range(args.iterations + 1):
            tasks = experiment.sampler.sample_tasks(seeding.rng(0, "tasks", it))
            out = experiment.learner.iteration(tasks, (0, it))
            if it == 0:
                continue  # warm-up
            for k in PHASES:
                times[k].append(out[k])
            steps_per_s.append(out["time/env_steps"] / out["time/iteration"])
        row = {"variant": name, **{k.split("/")[1]: statistics.median(v) for k, v in times.items()},
               "env_steps_per_s_overall": statistics.median(steps_per_s)}
        rows.append(row)
        print(row, flush=True)
    # The in-run reference: the double-backward MAML-TRPO when measured, else the first variant measured.
    reference = next((r for r in rows if "reference" in r["variant"]), rows[0])
    for r in rows:
        r["reference"] = reference["variant"]
        r["speedup_vs_reference"] = reference["iteration"] / r["iteration"]
    header = ("| variant | s/iteration | sampling | adaptation | outer step | iteration / sampling "
              f"| env steps/s overall | speed-up vs {reference['variant']} |\n"
              "| --- | --- | --- | --- | --- | --- | --- | --- |")
    lines = [header] + [
        f"| {r['variant']} | {r['iteration']:.2f} | {r['sampling']:.2f} | {r['adaptation']:.2f} | {r['outer']:.2f} "
        f"| {r['iteration'] / r['sampling']:.2f} | {r['env_steps_per_s_overall']:,.0f} "
        f"| {r['speedup_vs_reference']:.2f}× |" for r in rows
    ]
    note = (f"HalfCheetahVel, meta-batch 20 × 10 episodes × horizon 200; median of {args.iterations} iterations after "
            f"a warm-up; torch threads {torch.get_num_threads()}; {platform.machine()} with "
            f"{len(os.sched_getaffinity(0))} CPUs.")
    print(f"\n{note}\n\n" + "\n".join(lines))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results_io.write_text(args.out, json.dumps({"note": note, "rows": rows}, indent=2))


if __name__ == "__main__":
    results_io.run(main)
