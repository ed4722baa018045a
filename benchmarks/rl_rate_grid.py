"""RL rate robustness: MAML versus Alpha MAML over a grid of initial α × β, same fixed budget.

Alpha MAML (Behl, Baydin & Torr 2019) claims that adapting the inner rate α and the outer rate β online
by hypergradient descent removes MAML's sensitivity to their initial values; the paper checked it on
supervised tasks only. This script checks it in reinforcement learning: for every cell of the grid it
meta-trains a policy-gradient MAML learner (the ``*_alpha.yaml`` config of a family, Adam outer loop, one
second-order inner VPG step) twice with the same seed — same initial policy, same task and episode streams:

* MAML — α and β fixed at the cell's values, and
* Alpha MAML — α and β *start* at the cell's values and follow their hypergradients (the core's
  ``normalized`` rule; α ∈ [1e-4, 10], β ∈ [1e-6, 1]),

then evaluates both exactly as ``rl-alphamaml evaluate`` does: the mean return on ``--eval-tasks`` new
tasks after ``--eval-steps`` inner steps with fresh episodes (95 % confidence interval over tasks). A run
whose meta-steps stay non-finite is stopped by the core's safety rule and marked diverged. Two cells run at
a time, each on one core (``--processes``).

Output: ``benchmarks/results/rl_rate_grid_<family>.{json,md,png}``; finished cells are saved as they
complete and a rerun of the same command continues (``--fresh`` starts over).

    python benchmarks/rl_rate_grid.py                                   # Navigation2D: about an hour, 2 cores
    python benchmarks/rl_rate_grid.py --config halfcheetah_vel_alpha --alphas 0.01 0.1 1 --betas 1e-4 1e-3 1e-2 \\
        --iterations 60 --meta-batch 20 --episodes 10                   # a locomotion family on a smaller grid
    python benchmarks/rl_rate_grid.py --iterations 3 --eval-tasks 4 --out /tmp/grid   # a smoke run
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any

import torch

from rl_alphamaml import seeding
from rl_alphamaml.cli import load_experiment_config
from rl_alphamaml.errors import NonFiniteError

from rate_grid import GridStore, heatmap, tables

ROOT = Path(__file__).resolve().parents[1]
ALPHA_BOUNDS = (1e-4, 10.0)
BETA_BOUNDS = (1e-6, 1.0)


def overrides(method: str, alpha: float, beta: float, settings: dict[str, Any]) -> list[str]:
    mode = "hd" if method == "alpha_maml" else "fixed"
    return [
        f"seed={settings['seed']}", f"train.iterations={settings['iterations']}",
        f"train.meta_batch={settings['meta_batch']}", f"sampler.episodes={settings['episodes']}",
        "sampler.threads=1", "train.threads=1",
        f"inner.lr={alpha}", f"inner.lr_mode={mode}", "inner.hd_rule=normalized",
        f"inner.lr_min={min(ALPHA_BOUNDS[0], alpha)}", f"inner.lr_max={max(ALPHA_BOUNDS[1], alpha)}",
        "outer.optimizer=adam", f"outer.lr={beta}", f"outer.lr_mode={mode}", "outer.hd_rule=normalized",
        f"outer.lr_min={min(BETA_BOUNDS[0], beta)}", f"outer.lr_max={max(BETA_BOUNDS[1], beta)}",
    ]


def run_cell(spec: tuple[str, float, float, dict[str, Any]]) -> dict[str, Any]:
    method, alpha, beta, settings = spec
    torch.set_num_threads(1)
    config, kind = load_experiment_config(ROOT / "configs" / f"{settings['config']}.yaml",
                                            overrides(method, alpha, beta, settings))
    experiment = kind.build(config, None)
    started = time.perf_counter()
    diverged, done, recent = False, 0, []
    try:
        for iteration in range(1, settings["iterations"] + 1):
            try:
                scalars = experiment.train_iteration(iteration, None)
            except NonFiniteError:
                diverged = True
                break
            done = iteration
            recent = [*recent, scalars["returns/post_adapt"]][-20:]
        train_seconds = time.perf_counter() - started
        result = kind.evaluate(experiment, settings["eval_tasks"], settings["eval_steps"],
                                 seeding.evaluation_seed(settings["seed"]))
    finally:
        experiment.close()
    rows = result.summary()
    value, half = rows[-1]["mean"], rows[-1]["ci95"]
    finite = math.isfinite(value)
    return {
        "method": method, "alpha0": alpha, "beta0": beta,
        "return": value if finite else None, "ci95": half if finite else None,
        "return_by_steps": [r["mean"] if math.isfinite(r["mean"]) else None for r in rows],
        "final_alpha": float(result.extra["alpha"]), "final_beta": float(experiment.meta.beta),
        "diverged": diverged, "iterations_done": done, "skipped_steps": experiment.meta.nonfinite_total,
        "train_post_adapt_return_last20": sum(recent) / len(recent) if recent else None,
        "train_seconds": train_seconds, "total_seconds": time.perf_counter() - started,
    }


def fmt(cell: dict[str, Any] | None) -> str:
    if cell is None:
        return "—"
    if cell["return"] is None:
        return "diverged"
    return f"{cell['return']:.1f} ± {cell['ci95']:.1f}" + (" (diverged)" if cell["diverged"] else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="navigation2d_alpha", help="a kind: rl config in configs/")
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.01, 0.1, 1.0, 10.0], help="initial α values")
    parser.add_argument("--betas", type=float, nargs="+", default=[1e-4, 1e-3, 1e-2, 1e-1], help="initial β values")
    parser.add_argument("--iterations", type=int, default=300, help="meta-iterations per run (the budget)")
    parser.add_argument("--meta-batch", type=int, default=20)
    parser.add_argument("--episodes", type=int, default=20, help="episodes per task and phase")
    parser.add_argument("--eval-tasks", type=int, default=40, help="held-out tasks per run")
    parser.add_argument("--eval-steps", type=int, default=1, help="inner steps at test time")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--processes", type=int, default=2, help="cells trained at the same time (one core each)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results", help="output folder")
    parser.add_argument("--fresh", action="store_true", help="ignore finished cells from an earlier run")
    args = parser.parse_args()

    config, _ = load_experiment_config(ROOT / "configs" / f"{args.config}.yaml")
    family = config.env.id.split("/")[-1].split("-")[0]
    settings = {"config": args.config, "env": config.env.id, "iterations": args.iterations,
                "meta_batch": args.meta_batch, "episodes": args.episodes, "eval_tasks": args.eval_tasks,
                "eval_steps": args.eval_steps, "seed": args.seed, "alphas": args.alphas, "betas": args.betas,
                "alpha_bounds": ALPHA_BOUNDS, "beta_bounds": BETA_BOUNDS, "inner_steps": 1, "second_order": True,
                "outer_optimizer": "adam", "hd_rule": "normalized"}
    stem = f"rl_rate_grid_{family.lower()}"
    store = GridStore(args.out / f"{stem}.json", settings, args.fresh)
    todo = store.todo(args.alphas, args.betas)
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(args.processes) as pool:
        specs = [(m, a, b, settings) for m, a, b in todo]
        for n, cell in enumerate(pool.imap_unordered(run_cell, specs), 1):
            store.add(cell)
            elapsed = time.perf_counter() - started
            print(f"[{n}/{len(todo)}] {cell['method']:>10} α₀={cell['alpha0']:g} β₀={cell['beta0']:g}: {fmt(cell)}, "
                  f"final α {cell['final_alpha']:.3g} β {cell['final_beta']:.2g} ({cell['total_seconds']:.0f} s; "
                  f"{elapsed / 60:.1f} min so far, ~{elapsed / n * (len(todo) - n) / 60:.0f} min to go)",
                  file=sys.stderr, flush=True)
    store.save()
    scores = [c["return"] for c in store.cells.values() if c["return"] is not None]
    floor = min(scores) if scores else 0.0
    header = [f"# {family}: MAML versus Alpha MAML over initial α × β", "",
              f"Budget per run: {args.iterations} meta-iterations × {args.meta_batch} tasks × {args.episodes} episodes "
              f"(config `{args.config}`, Adam outer loop, one second-order inner step, seed {args.seed}). Cell: mean "
              f"return on {args.eval_tasks} held-out tasks after {args.eval_steps} inner step(s) ± 95 % CI.", "",
              f"Command: `python benchmarks/rl_rate_grid.py --config {args.config} --alphas "
              f"{' '.join(f'{a:g}' for a in args.alphas)} --betas {' '.join(f'{b:g}' for b in args.betas)} "
              f"--iterations {args.iterations} --meta-batch {args.meta_batch} --episodes {args.episodes}`", ""]
    best = max(scores) if scores else 0.0
    threshold = best - 0.2 * abs(best)
    text = tables(store, args.alphas, args.betas, header, fmt,
                  score=lambda c: c["return"] if c["return"] is not None else floor,
                  summary_note=f"(A diverged run counts as the grid's worst return, {floor:.1f}; 'near best' = within "
                               f"20 % of the best cell's return {best:.1f}, i.e. ≥ {threshold:.1f}.)",
                  good=lambda v: v >= threshold, good_text="near best")
    print("\n" + text)
    (args.out / f"{stem}.md").write_text(text + "\n")
    title = (f"{family}: {args.iterations} its × {args.meta_batch} tasks × {args.episodes} episodes per run; "
             f"return after {args.eval_steps} step(s) on {args.eval_tasks} held-out tasks")
    # Returns span orders of magnitude (a collapsed policy is 30× worse than a good one): the colour scale
    # saturates at 5×|best| below the best cell so that differences among working cells stay visible.
    low = max(floor, best - 5 * abs(best)) if best > floor else floor - 1
    heatmap(store, args.alphas, args.betas, args.out / f"{stem}.png", title + f"; colour saturates below {low:.0f}",
            value=lambda c: c["return"], label="held-out return after adaptation", vmin=low, vmax=best)
    print(f"\nwrote {args.out / stem}.{{json,md,png}} ({(time.perf_counter() - started) / 60:.1f} min)")


if __name__ == "__main__":
    main()
