"""Omniglot rate robustness: MAML versus Alpha MAML over a grid of initial α × β, same fixed budget.

Alpha MAML (Behl, Baydin & Torr 2019) adapts MAML's inner rate α and outer rate β online by
hypergradient descent (Baydin et al. 2018) and claims that this removes MAML's sensitivity to their
initial values. This script checks the claim on 5-way 1-shot Omniglot (Finn et al. 2017; Vinyals et al.
2016 split): for every cell of the grid it meta-trains

* MAML — α and β fixed at the cell's values (second order, Adam for θ), and
* Alpha MAML — α and β *start* at the cell's values and follow their hypergradients (the core's scale-free
  ``normalized`` rule; α ∈ [1e-4, 10], β ∈ [1e-6, 1]),

with the same seed (same initial network, same task stream) and the same budget (iterations × meta-batch),
then evaluates both on new tasks from the held-out test characters (accuracy after ``--eval-steps``
inner steps, with a 95 % confidence interval). A run whose meta-steps stay non-finite is stopped by the
core's safety rule and marked diverged.

Output: a Markdown table per method (rows α₀, columns β₀), the final α and β of each Alpha-MAML run, a
heat-map PNG, and JSON — ``benchmarks/results/omniglot_rate_grid.{json,md,png}``. Finished cells are
saved as they complete; rerunning the same command continues where it stopped (``--fresh`` starts over).

    python benchmarks/omniglot_rate_grid.py                       # the study: about an hour on 2 cores
    python benchmarks/omniglot_rate_grid.py --iterations 5 --eval-tasks 10 --out /tmp/grid   # a smoke run
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

from rl_alphamaml import seeding
from rl_alphamaml.config import from_dict
from rl_alphamaml.errors import NonFiniteError
from rl_alphamaml.supervised.omniglot import OmniglotDataset, load_omniglot
from rl_alphamaml.supervised.omniglot_trainer import OmniglotConfig, OmniglotExperiment, evaluate

from rate_grid import GridStore, heatmap, tables

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "omniglot"
ALPHA_BOUNDS = (1e-4, 10.0)
BETA_BOUNDS = (1e-6, 1.0)


def make_config(method: str, alpha: float, beta: float, args: argparse.Namespace) -> OmniglotConfig:
    hd = method == "alpha_maml"
    return from_dict(OmniglotConfig, {
        "experiment": f"grid_{method}_a{alpha:g}_b{beta:g}",
        "seed": args.seed,
        "data": {"n_way": 5, "k_shot": 1, "q_query": args.queries},
        "inner": {"steps": 1, "lr": alpha, "lr_mode": "hd" if hd else "fixed", "hd_rule": "normalized",
                  "lr_min": min(ALPHA_BOUNDS[0], alpha), "lr_max": max(ALPHA_BOUNDS[1], alpha)},
        "outer": {"optimizer": "adam", "lr": beta, "lr_mode": "hd" if hd else "fixed", "hd_rule": "normalized",
                  "lr_min": min(BETA_BOUNDS[0], beta), "lr_max": max(BETA_BOUNDS[1], beta)},
        "train": {"iterations": args.iterations, "meta_batch": args.meta_batch, "threads": 1},
        "eval": {"val_every": 0, "test_steps": args.eval_steps, "q_query": 15},
        "compute": {"tasks_per_pass": 8, "workers": args.workers},
    })


def run_cell(method: str, alpha: float, beta: float, args: argparse.Namespace, data: OmniglotDataset) -> dict[str, Any]:
    config = make_config(method, alpha, beta, args)
    exp = OmniglotExperiment(config, None, dataset=data)
    started = time.perf_counter()
    diverged, done = False, 0
    recent: list[float] = []
    for iteration in range(1, args.iterations + 1):
        try:
            scalars = exp.train_iteration(iteration, None)
        except NonFiniteError:
            diverged = True
            break
        done = iteration
        if not scalars["meta/skipped"]:
            recent = ([*recent, scalars["accuracy/post_adapt"]])[-50:]
    train_seconds = time.perf_counter() - started
    result = evaluate(exp, args.eval_tasks, args.eval_steps, seeding.evaluation_seed(args.seed))
    rows = result.summary()
    accuracy, half = rows[args.eval_steps]["mean"], rows[args.eval_steps]["ci95"]
    finite = math.isfinite(accuracy)
    return {
        "method": method, "alpha0": alpha, "beta0": beta,
        "accuracy": accuracy if finite else None, "ci95": half if finite else None,
        "accuracy_by_steps": [r["mean"] if math.isfinite(r["mean"]) else None for r in rows],
        "final_alpha": exp.meta.alpha.mean(), "final_beta": exp.meta.beta,
        "diverged": diverged, "iterations_done": done, "skipped_steps": exp.meta.nonfinite_total,
        "train_post_adapt_accuracy_last50": sum(recent) / len(recent) if recent else None,
        "train_seconds": train_seconds, "total_seconds": time.perf_counter() - started,
    }


def fmt_accuracy(cell: dict[str, Any] | None) -> str:
    if cell is None:
        return "—"
    if cell["accuracy"] is None:
        return "diverged"
    text = f"{100 * cell['accuracy']:.1f} ± {100 * cell['ci95']:.1f}"
    return text + (" (diverged)" if cell["diverged"] else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.004, 0.04, 0.4, 4.0], help="initial α values")
    parser.add_argument("--betas", type=float, nargs="+", default=[1e-4, 1e-3, 1e-2, 1e-1], help="initial β values")
    parser.add_argument("--iterations", type=int, default=600, help="meta-iterations per run (the budget)")
    parser.add_argument("--meta-batch", type=int, default=32)
    parser.add_argument("--queries", type=int, default=1, help="query examples per class while meta-training (MAML: 1)")
    parser.add_argument("--eval-tasks", type=int, default=200, help="test tasks per run")
    parser.add_argument("--eval-steps", type=int, default=3, help="inner steps at test time (MAML: 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="compute.workers of each run")
    parser.add_argument("--data", type=Path, default=None,
                        help="Omniglot root (default: $RL_ALPHAMAML_OMNIGLOT, else the user data folder that "
                             "`rl-alphamaml data omniglot` fills; docs/omniglot.md)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results", help="output folder")
    parser.add_argument("--fresh", action="store_true", help="ignore finished cells from an earlier run")
    args = parser.parse_args()

    torch.set_num_threads(1)
    settings = {"iterations": args.iterations, "meta_batch": args.meta_batch, "queries": args.queries,
                "eval_tasks": args.eval_tasks, "eval_steps": args.eval_steps, "seed": args.seed,
                "alphas": args.alphas, "betas": args.betas, "alpha_bounds": ALPHA_BOUNDS, "beta_bounds": BETA_BOUNDS,
                "inner_steps": 1, "second_order": True, "outer_optimizer": "adam", "hd_rule": "normalized"}
    json_path = args.out / "omniglot_rate_grid.json"
    store = GridStore(json_path, settings, args.fresh)

    # --data, else $RL_ALPHAMAML_OMNIGLOT, else the project machines' copy beside the checkout, else (root None)
    # the user data folder.
    fallback = DEFAULT_DATA if DEFAULT_DATA.exists() and not os.environ.get("RL_ALPHAMAML_OMNIGLOT") else None
    root = args.data if args.data is not None else fallback
    data = load_omniglot(root)
    started = time.perf_counter()
    todo = store.todo(args.alphas, args.betas)

    for n, (method, alpha, beta) in enumerate(todo, 1):
        cell = run_cell(method, alpha, beta, args, data)
        store.add(cell)
        elapsed = time.perf_counter() - started
        print(f"[{n}/{len(todo)}] {method:>10} α₀={alpha:g} β₀={beta:g}: {fmt_accuracy(cell)} %, final α "
              f"{cell['final_alpha']:.3g} β {cell['final_beta']:.2g} ({cell['total_seconds']:.0f} s; "
              f"{elapsed / 60:.1f} min so far, ~{elapsed / n * (len(todo) - n) / 60:.0f} min to go)",
              file=sys.stderr, flush=True)
    store.save()
    header = [f"5-way 1-shot Omniglot, {args.iterations} meta-iterations × {args.meta_batch} tasks "
              f"({args.queries} query/class) per run, seed {args.seed}; test accuracy (%) after "
              f"{args.eval_steps} steps on {args.eval_tasks} tasks of held-out characters, ± 95 % CI.", ""]
    text = tables(store, args.alphas, args.betas, header, fmt_accuracy,
                  score=lambda c: 100 * c["accuracy"] if c["accuracy"] is not None else 25.0,
                  summary_note="(Percentages; a diverged run's accuracy counts as 25 % in these summaries.)",
                  good=lambda v: v >= 80.0, good_text="≥ 80 %")
    print("\n" + text)
    (args.out / "omniglot_rate_grid.md").write_text(text + "\n")
    title = (f"5-way 1-shot Omniglot, {args.iterations} iterations × {args.meta_batch} tasks per run; test accuracy "
             f"(%) after {args.eval_steps} steps on {args.eval_tasks} held-out tasks")
    heatmap(store, args.alphas, args.betas, args.out / "omniglot_rate_grid.png", title,
            value=lambda c: None if c["accuracy"] is None else 100 * c["accuracy"], label="test accuracy (%)",
            vmin=20, vmax=100)
    print(f"\nwrote {json_path}, {args.out / 'omniglot_rate_grid.md'}, {args.out / 'omniglot_rate_grid.png'} "
          f"({(time.perf_counter() - started) / 60:.1f} min)")


if __name__ == "__main__":
    main()
