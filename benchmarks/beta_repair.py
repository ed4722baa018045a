"""The β repair measured: Alpha MAML on the Navigation2D rate grid with and without it, run for run.

At β₀ = 0.1 on Navigation2D most runs of the rate grid (``rl_rate_grid.py``) collapse, with or without β by
hypergradient [2, 3]: once a too-large Adam step has destroyed the policy, its meta-gradients carry no signal
that could lower β. The β repair (``beta_repair:`` in a config, :class:`agents.outer_steps.BetaRepairConfig`,
on by default for Alpha MAML) checks every step on the batch that made it, as a backtracking line search does
(TRPO [4]; Armijo's sufficient-decrease condition [5]), and cuts the step and β while the surrogate improves
by less than a tenth of what its first-order model predicts.

This study trains Alpha MAML — the grid's ``alpha_maml`` method, now with the repair — on the cells of the rate
grid's results file (``--reference``, made before the repair existed: the same config, budget, seeds and
evaluation) and sets each run beside the same cell and seed without it. The goals (issue 24): at β₀ = 0.1, at
least 2 of 3 seeds per α₀ end within 20 % of the grid's best cell; no cell with β₀ ≤ 0.01 gets worse (its mean
over seeds below the lowest seed without the repair).

Usage::

    python benchmarks/beta_repair.py                          # β₀ 0.1 and 0.01 first, seeds 0 1 2
    python benchmarks/beta_repair.py --betas 0.0001 0.001 0.01 0.1   # then the rest of the grid (continues)

Writes ``benchmarks/results/beta_repair_navigation2d.{json,md}``; the JSON is saved after every run, so the same
command continues an interrupted study.

References:
    [1] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
    [2] Behl, Baydin & Torr, "Alpha MAML: Adaptive Model-Agnostic Meta-Learning", 2019.
        https://arxiv.org/abs/1905.07435
    [3] Baydin, Cornish, Martínez Rubio, Schmidt & Wood, "Online Learning Rate Adaptation with Hypergradient
        Descent", ICLR 2018. https://arxiv.org/abs/1703.04782
    [4] Schulman, Levine, Moritz, Jordan & Abbeel, "Trust Region Policy Optimization", ICML 2015.
        https://arxiv.org/abs/1502.05477
    [5] Armijo, "Minimization of functions having Lipschitz continuous first partial derivatives", Pacific
        Journal of Mathematics 16(1), 1966.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from rl_alphamaml.cli import load_experiment_config

import rate_grid as grid
import results_io
from cli_runs import relative

STUDY = "beta_repair_navigation2d"
#: a held-out return below this is a collapsed run (the grid's good cells are near −12, the policies before
#: adaptation near −40)
COLLAPSED = -100.0


def reference_store(path: Path, settings: dict[str, Any]) -> grid.GridStore:
    """The rate grid's study without the repair; refused (exit 2) unless it was made with the same settings (its
    config resolved without the ``beta_repair`` section, which did not exist then, nor any field added since)."""
    if not path.is_file():
        print(f"{path}: no reference study; run benchmarks/rl_rate_grid.py first", file=sys.stderr)
        sys.exit(2)
    reference = grid.GridStore.read(path)
    theirs, ours = (json.loads(json.dumps(x)) for x in (reference.settings, settings))  # copies to compare
    if theirs.get("resolved_config", {}).pop("beta_repair", {}).get("enabled"):
        print(f"{path} was made with the β repair on: nothing to compare against", file=sys.stderr)
        sys.exit(2)
    ours.get("resolved_config", {}).pop("beta_repair", None)
    differ = grid.settings_differences(theirs, ours)
    if differ:
        print(f"{path} was made with other settings ({', '.join(differ)}): pass the same ones", file=sys.stderr)
        sys.exit(2)
    return reference


def report(store: grid.GridStore, reference: grid.GridStore, reference_path: Path, command: str) -> str:
    """Markdown: per cell, Alpha MAML without and with the repair (and MAML for scale), the cuts, and the goals."""
    s, metric = store.settings, grid.Metric("return")
    values = [r["value"] for r in [*reference.runs.values(), *store.runs.values()] if r["value"] is not None]
    floor = min(values)
    cells = [v for m in grid.METHODS for a in reference.settings["alphas"] for b in reference.settings["betas"]
             if (v := grid.cell_score(reference.cell(m, a, b), floor)) is not None]
    best = max(cells)
    near = best - 0.2 * abs(best)
    lines = ["# Navigation2D: Alpha MAML with the β repair, run for run against the rate grid without it", "",
             f"Budget per run: {s['iterations']} meta-iterations × {s['meta_batch']} tasks × {s['episodes']} episodes "
             f"(config `{s['config']}`, Adam outer loop with α and β by hypergradient, one second-order inner step, "
             f"{grid.seeds_text(s['seeds'])}). Cell: mean return on {s['eval_tasks']} held-out tasks after "
             f"{s['eval_steps']} inner step; several seeds: the mean over seeds (lowest … highest seed). Without the "
             f"repair and MAML: `{relative(str(reference_path))}` (same config, budget, seeds and "
             f"evaluation). The grid's best cell: {best:.1f}; within 20 % of it: ≥ {near:.1f}.", "",
             f"Command: `{command}`", "",
             "| α₀ | β₀ | MAML (fixed α, β) | Alpha MAML without the repair | Alpha MAML with the β repair "
             "| seeds within 20 % of the best cell (without → with) | steps cut (of all, per seed) "
             "| final β with the repair |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    goals = []
    for b in sorted(s["betas"], reverse=True):
        for a in s["alphas"]:
            runs = store.cell("alpha_maml", a, b)
            if not runs:
                continue
            before = reference.cell("alpha_maml", a, b)
            good = [sum((r["value"] if r["value"] is not None else floor) >= near for r in x) for x in (before, runs)]
            cut = ", ".join(f"{r['beta_cut_steps']}/{r['iterations_done']}" for r in runs)
            final = ", ".join(f"{r['final_beta']:.2g}" for r in runs)
            lines.append(f"| {a:g} | {b:g} | {metric.cell(reference.cell('maml', a, b))} | {metric.cell(before)} | "
                         f"{metric.cell(runs)} | {good[0]}/{len(before)} → {good[1]}/{len(runs)} | {cut} | {final} |")
            complete = len(runs) == len(s["seeds"])
            if b >= 0.1 - 1e-12:
                goals.append((f"β₀ {b:g}, α₀ {a:g}: {good[1]} of {len(runs)} seeds within 20 % of the best cell",
                              3 * good[1] >= 2 * len(runs), complete))
            else:
                lowest = min((r["value"] if r["value"] is not None else floor) for r in before)
                mean = grid.cell_score(runs, floor)
                assert mean is not None
                goals.append((f"β₀ {b:g}, α₀ {a:g}: mean {mean:.1f} against the lowest seed without the repair "
                              f"{lowest:.1f}", mean >= lowest, complete))
    lines += ["", "**Goals** (issue 24, item 3)", ""]
    lines += [f"- {text}: {'met' if ok else 'not met'}{'' if complete else ' (cell unfinished)'}"
              for text, ok, complete in goals]
    pairs = [(r, reference.runs.get(grid.key("alpha_maml", r["alpha0"], r["beta0"], r["seed"])))
             for r in store.runs.values()]
    same = sum(1 for r, old in pairs if old is not None and r["beta_cut_steps"] == 0 and r["value"] == old["value"])
    untouched = sum(1 for r, _ in pairs if r["beta_cut_steps"] == 0)
    seconds = sum(r["total_seconds"] for r in store.runs.values())

    def value(run: dict[str, Any]) -> float:
        return floor if run["value"] is None else run["value"]

    def collapsed(run: dict[str, Any]) -> bool:
        return run["value"] is None or run["value"] < COLLAPSED

    paired = [(r, old) for r, old in pairs if old is not None]
    lines += ["", f"Runs in which the repair cut no step: {untouched} of {len(pairs)}; of them, {same} end with "
              "exactly the held-out return they had without it.", "",
              f"Collapsed runs (held-out return below {COLLAPSED:g} or none), same cells and seeds: without the repair "
              f"{sum(collapsed(old) for _, old in paired)} of {len(paired)}, with it "
              f"{sum(collapsed(r) for r, _ in paired)}; within 20 % of the best cell: "
              f"{sum(value(old) >= near for _, old in paired)} and {sum(value(r) >= near for r, _ in paired)}.", "",
              f"Run time (every run's `total_seconds`, summed): {seconds / 60:.1f} min."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="navigation2d_alpha", help="a kind: rl config in configs/")
    parser.add_argument("--episodes", type=int, default=20, help="episodes per task and phase")
    parser.add_argument("--reference", type=Path, default=grid.RESULTS / "rate_grid_navigation2d.json",
                        help="the rate grid's study without the repair")
    grid.add_arguments(parser, alphas=[0.01, 0.1, 1.0, 10.0], betas=[0.1, 0.01], iterations=300, meta_batch=20,
                       eval_tasks=40, eval_steps=1, processes=2)
    args = parser.parse_args()
    fixed = (f"train.meta_batch={args.meta_batch}", f"sampler.episodes={args.episodes}", "sampler.threads=1",
             "train.threads=1")
    config, _ = load_experiment_config(grid.ROOT / "configs" / f"{args.config}.yaml")
    settings = {"config": args.config, "env": config.env.id, "iterations": args.iterations,
                "meta_batch": args.meta_batch, "episodes": args.episodes, "eval_tasks": args.eval_tasks,
                "eval_steps": args.eval_steps, "seeds": args.seeds, "alphas": args.alphas, "betas": args.betas,
                "alpha_bounds": grid.ALPHA_BOUNDS, "beta_bounds": grid.BETA_BOUNDS, "inner_steps": 1,
                "second_order": True, "outer_optimizer": "adam", "hd_rule": args.hd_rule, "metric": "return",
                "train_window": 20, "methods": ["alpha_maml"],
                "resolved_config": grid.resolved_config(args.config, fixed)}
    settings = json.loads(json.dumps(settings))  # tuples as lists, as the reference reads back
    reference = reference_store(args.reference, settings)
    store = grid.GridStore(args.out / f"{STUDY}.json", settings, args.fresh)
    started = time.perf_counter()

    def spec(method: str, alpha: float, beta: float, seed: int) -> grid.RunSpec:
        return grid.RunSpec(method, alpha, beta, seed, args.config, fixed, args.iterations, args.eval_tasks,
                            args.eval_steps, "returns/post_adapt", 20, args.hd_rule)

    grid.run_all(store, spec, args.processes, grid.Metric("return"))
    command = grid.command("beta_repair.py", args, f"--config {args.config}", f"--episodes {args.episodes}")
    text = report(store, reference, args.reference, command)
    print("\n" + text)
    results_io.write_text(args.out / f"{STUDY}.md", text + "\n")
    print(f"\nwrote {args.out / STUDY}.{{json,md}} ({(time.perf_counter() - started) / 60:.1f} min)")


if __name__ == "__main__":
    results_io.run(main)
