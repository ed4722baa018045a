"""How fast each hypergradient rule moves the inner rate α from a bad start: updates, not final quality.

In an RL budget of 50–300 meta-iterations a rule that changes α by at most about 2 % per update (the
``normalized`` rule [1, 3] at its default η = 0.02) cannot get α from 0.01 or from 1 to where the
hypergradient wants it. This script runs each rule for a few dozen updates from both starts, on the two
small problems of the project — Navigation2D (config ``navigation2d_alpha``, a smaller meta-batch) and the
sinusoid (config ``sinusoid_alpha``) — and records α after every update: the ``normalized`` rule at its
default, and ``log_adam`` (Adam [2] on log α) at η = 0.1 and 0.2. Everything else is the config's (β by the
``normalized`` rule). For Navigation2D it counts the updates until α is within [0.1, 1] (fixed α = 0.1 and
α = 1 are both within the seed spread of the best cell of the Navigation2D rate grid at β = 10⁻³,
``rate_grid_navigation2d.md``); the sinusoid has no such grid, so its rows only show where α goes.

Usage::

    python benchmarks/rate_rules.py                                  # 3 seeds: 36 short runs
    python benchmarks/rate_rules.py --seeds 0 --out /tmp/rules       # one seed

Writes ``benchmarks/results/rate_rules.{json,md}`` (every run's α after each update and its wall time in the JSON).
Runs already in the JSON are reused, so ``--seeds 0``, then ``--seeds 0 1``, then ``--seeds 0 1 2`` build the
study a seed at a time.

References:
    [1] Baydin, Cornish, Martínez Rubio, Schmidt & Wood, "Online Learning Rate Adaptation with Hypergradient
        Descent", ICLR 2018. https://arxiv.org/abs/1703.04782
    [2] Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015. https://arxiv.org/abs/1412.6980
    [3] Chandra, Xie, Ragan-Kelley & Meijer, "Gradient Descent: The Ultimate Optimizer", NeurIPS 2022.
        https://arxiv.org/abs/1909.13371
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from rl_alphamaml import seeding
from rl_alphamaml.cli import load_experiment_config

import results_io

ROOT = Path(__file__).resolve().parents[1]
RULES = [("normalized", 0.02), ("log_adam", 0.1), ("log_adam", 0.2), ("log_adam_annealed", 0.2)]
STARTS = [0.01, 1.0]
# (problem, config, updates, overrides)
PROBLEMS = [
    ("Navigation2D", "navigation2d_alpha", 30, ["train.meta_batch=10", "sampler.episodes=10", "sampler.threads=1"]),
    ("sinusoid", "sinusoid_alpha", 40, []),
]
GOOD = {"Navigation2D": (0.1, 1.0)}
SHOW = (5, 10, 20, 30, 40)


def alphas(config_name: str, updates: int, overrides: list[str]) -> list[float]:
    """α after each of ``updates`` meta-iterations of the config with ``overrides``, in-process (no run folder)."""
    config, kind = load_experiment_config(ROOT / "configs" / f"{config_name}.yaml", overrides)
    experiment = kind.build(config, None)
    out = []
    for i in range(1, updates + 1):
        if config.kind == "rl":
            tasks = experiment.sampler.sample_tasks(seeding.rng(config.seed, "tasks", i))
            scalars = experiment.learner.iteration(tasks, (config.seed, i))
        else:
            scalars = experiment.train_iteration(i, _NoLogger())
        out.append(scalars["meta/alpha"])
    if hasattr(experiment, "close"):
        experiment.close()
    return out


class _NoLogger:
    def histogram(self, *args: object) -> None:
        pass


def _key(run: dict) -> tuple:
    return run["problem"], run["rule"], run["hyper_lr"], run["alpha0"], run["seed"]


def first_within(values: list[float], low: float, high: float) -> int | None:
    """The first update (1-based) after which α is within [low, high], or None."""
    return next((i + 1 for i, a in enumerate(values) if low <= a <= high), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    torch.set_num_threads(1)
    saved = args.out / "rate_rules.json"
    done = {_key(r): r for r in (json.loads(saved.read_text())["runs"] if saved.is_file() else [])}
    runs = []
    for problem, config_name, updates, overrides in PROBLEMS:
        for rule, eta in RULES:
            for start in STARTS:
                for seed in args.seeds:
                    key = (problem, rule, eta, start, seed)
                    if key in done and len(done[key]["alphas"]) == updates:
                        runs.append(done[key])
                        continue
                    started = time.perf_counter()
                    values = alphas(config_name, updates, [*overrides, f"inner.hd_rule={rule}",
                                                           f"inner.hyper_lr={eta}", f"inner.lr={start}",
                                                           f"seed={seed}"])
                    runs.append({"problem": problem, "config": config_name, "overrides": overrides, "rule": rule,
                                 "hyper_lr": eta, "alpha0": start, "seed": seed, "alphas": values,
                                 "seconds": round(time.perf_counter() - started, 1)})
                    print(f"{problem} {rule} η={eta} α₀={start} seed {seed}: "
                          f"{' '.join(f'{a:.3g}' for a in values[4::5])}", flush=True)
    sections = []
    for problem, config_name, updates, overrides in PROBLEMS:
        shown = [k for k in SHOW if k <= updates]
        good = GOOD.get(problem)
        head = ["rule", "η", "α₀", *(f"α after {k}" for k in shown)]
        if good:
            head.append(f"updates to [{good[0]:g}, {good[1]:g}]")
        lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
        for rule, eta in RULES:
            for start in STARTS:
                mine = [r for r in runs if (r["problem"], r["rule"], r["hyper_lr"], r["alpha0"])
                        == (problem, rule, eta, start)]
                cells = []
                for k in shown:
                    at = [r["alphas"][k - 1] for r in mine]
                    cells.append(f"{np.mean(at):.3g} ({min(at):.3g} … {max(at):.3g})" if len(at) > 1
                                 else f"{at[0]:.3g}")
                if good:
                    reached = [first_within(r["alphas"], *good) for r in mine]
                    cells.append(" / ".join("—" if n is None else str(n) for n in reached))
                lines.append(f"| `{rule}` | {eta:g} | {start:g} | " + " | ".join(cells) + " |")
        setting = f"config `{config_name}`" + (f" with `{' '.join(overrides)}`" if overrides else "")
        sections.append(f"**{problem}** ({setting}; {updates} updates)\n\n" + "\n".join(lines))
    machine = f"{platform.processor() or platform.machine()}, {platform.system()}"
    seeds = ", ".join(map(str, args.seeds))
    minutes = sum(r["seconds"] for r in runs) / 60
    note = (f"α after n hypergradient updates from α₀ = 0.01 and 1 (mean over seeds {seeds}, lowest … highest; "
            f"the last column one value per seed, — when never reached). Command: `python benchmarks/rate_rules.py "
            f"--seeds {seeds.replace(',', '')}`; machine: {machine}; {minutes:.1f} min of runs.")
    text = f"# How fast each hypergradient rule moves α\n\n{note}\n\n" + "\n\n".join(sections) + "\n"
    print(f"\n{text}")
    args.out.mkdir(parents=True, exist_ok=True)
    results_io.write_text(args.out / "rate_rules.json", json.dumps({"note": note, "runs": runs}, indent=2) + "\n")
    results_io.write_text(args.out / "rate_rules.md", text)


if __name__ == "__main__":
    results_io.run(main)
