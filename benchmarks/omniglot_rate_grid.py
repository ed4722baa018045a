"""Omniglot rate robustness: MAML versus Alpha MAML over a grid of initial α × β, same fixed budget.

Alpha MAML [2] adapts MAML's [1] inner rate α and outer rate β online by hypergradient descent [3] and
claims that this removes MAML's sensitivity to their initial values. This script checks the claim on
5-way 1-shot Omniglot [4] (the split of [5]) with the study of ``rate_grid.py``: every run meta-trains
``configs/omniglot_5w1s_alpha.yaml`` (second order, Adam for θ, the trainer's two worker threads; one run at
a time) and is evaluated on new tasks from the held-out test characters: accuracy after ``--eval-steps``
inner steps.

Usage::

    python benchmarks/omniglot_rate_grid.py                     # the study, seeds 0 1 2
    python benchmarks/omniglot_rate_grid.py --seeds 0 --iterations 5 --eval-tasks 10 --out /tmp/grid   # a smoke run

Writes ``benchmarks/results/rate_grid_omniglot.{json,md,png}`` (every run's wall time is in the JSON).

References:
    [1] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
    [2] Behl, Baydin & Torr, "Alpha MAML: Adaptive Model-Agnostic Meta-Learning", 2019.
        https://arxiv.org/abs/1905.07435
    [3] Baydin, Cornish, Martínez Rubio, Schmidt & Wood, "Online Learning Rate Adaptation with Hypergradient
        Descent", ICLR 2018. https://arxiv.org/abs/1703.04782
    [4] Lake, Salakhutdinov & Tenenbaum, "Human-level concept learning through probabilistic program
        induction", Science 2015. https://doi.org/10.1126/science.aab3050
    [5] Vinyals, Blundell, Lillicrap, Kavukcuoglu & Wierstra, "Matching Networks for One Shot Learning",
        NeurIPS 2016. https://arxiv.org/abs/1606.04080
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import rate_grid as grid
import results_io
from cli_runs import OMNIGLOT_HELP, omniglot_root

CONFIG = "omniglot_5w1s_alpha"
CHANCE = 0.2  # 5-way: what a run with no finite accuracy counts as


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=1, help="query examples per class while meta-training (MAML: 1)")
    parser.add_argument("--workers", type=int, default=2, help="compute.workers of each run")
    parser.add_argument("--data", type=Path, default=None, help=OMNIGLOT_HELP)
    grid.add_arguments(parser, alphas=[0.004, 0.04, 0.4, 4.0], betas=[1e-4, 1e-3, 1e-2, 1e-1], iterations=600,
                  meta_batch=32, eval_tasks=200, eval_steps=3, processes=1)
    args = parser.parse_args()

    root = omniglot_root(args.data)
    fixed = (*([f"data.root={root}"] if root is not None else []), f"data.q_query={args.queries}",
             f"train.meta_batch={args.meta_batch}", "train.threads=1", "eval.val_every=0",
             f"eval.test_steps={args.eval_steps}", "eval.q_query=15", "compute.tasks_per_pass=8",
             f"compute.workers={args.workers}")
    settings = {"config": CONFIG, "iterations": args.iterations, "meta_batch": args.meta_batch,
                "queries": args.queries, "eval_tasks": args.eval_tasks, "eval_steps": args.eval_steps,
                "seeds": args.seeds, "alphas": args.alphas, "betas": args.betas, "alpha_bounds": grid.ALPHA_BOUNDS,
                "beta_bounds": grid.BETA_BOUNDS, "inner_steps": 1, "second_order": True, "outer_optimizer": "adam",
                "hd_rule": args.hd_rule, "methods": args.methods, "metric": "accuracy", "train_window": 50,
                "resolved_config": grid.resolved_config(CONFIG, fixed)}
    study = "rate_grid_omniglot"
    stem = grid.stem(study, args.hd_rule)
    store = grid.GridStore(args.out / f"{stem}.json", settings, args.fresh)
    metric = grid.Metric("accuracy", scale=100.0)
    started = time.perf_counter()

    def spec(method: str, alpha: float, beta: float, seed: int) -> grid.RunSpec:
        return grid.RunSpec(method, alpha, beta, seed, CONFIG, fixed, args.iterations, args.eval_tasks,
                            args.eval_steps, "accuracy/post_adapt", 50, args.hd_rule)

    grid.run_all(store, spec, args.processes, metric)

    header = [f"5-way 1-shot Omniglot, {args.iterations} meta-iterations × {args.meta_batch} tasks "
              f"({args.queries} query/class) per run, {grid.seeds_text(args.seeds)}; test accuracy (%) after "
              f"{args.eval_steps} steps on {args.eval_tasks} tasks of held-out characters; one seed: ± 95 % CI over "
              "tasks, several: the mean over seeds (lowest … highest seed).", "",
              f"Command: `{grid.command('omniglot_rate_grid.py', args, f'--queries {args.queries}')}`", ""]
    text = grid.tables(store, header, metric, floor=CHANCE,
                  summary_note="(Percentages; a run with no finite accuracy counts as chance, 20 %, in these "
                               "summaries.)",
                  good=lambda v: v >= 0.80, good_text="≥ 80 %")
    default = (grid.default_rule_store(args.out / f"{study}.json", settings)
               if args.hd_rule != grid.DEFAULT_RULE else None)
    if default is not None:
        text += "\n\n" + "\n".join(grid.rule_comparison(store, default, metric, CHANCE))
    print("\n" + text)
    results_io.write_text(args.out / f"{stem}.md", text + "\n")
    title = (f"5-way 1-shot Omniglot, {args.iterations} iterations × {args.meta_batch} tasks per run, "
             f"{grid.seeds_text(args.seeds)}; test accuracy (%) after {args.eval_steps} steps on {args.eval_tasks} "
             "held-out tasks")
    grid.heatmap(store, args.out / f"{stem}.png", title, metric, floor=CHANCE, label="test accuracy (%)", vmin=20,
                 vmax=100)
    print(f"\nwrote {args.out / stem}.{{json,md,png}} ({(time.perf_counter() - started) / 60:.1f} min)")


if __name__ == "__main__":
    results_io.run(main)
