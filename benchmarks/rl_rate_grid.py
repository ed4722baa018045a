"""RL rate robustness: MAML versus Alpha MAML over a grid of initial α × β, same fixed budget.

Alpha MAML [2] claims that adapting the inner rate α and the outer rate β online by hypergradient descent
[3] removes MAML's [1] sensitivity to their initial values; the paper checked it on supervised tasks only.
This script checks it in reinforcement learning with the study of ``rate_grid.py``: every run meta-trains
the ``*_alpha.yaml`` config of a family (policy-gradient MAML, one second-order inner VPG step, Adam outer
loop; one core per run, two runs at a time) and is evaluated on new tasks with fresh episodes after
``--eval-steps`` inner steps, as ``rl-alphamaml evaluate`` does.

Usage::

    python benchmarks/rl_rate_grid.py                                   # Navigation2D, seeds 0 1 2
    python benchmarks/rl_rate_grid.py --config halfcheetah_vel_alpha --alphas 0.01 0.1 1 --betas 1e-4 1e-3 1e-2 \\
        --iterations 60 --meta-batch 20 --episodes 10                   # a locomotion family on a smaller grid
    python benchmarks/rl_rate_grid.py --seeds 0 --iterations 3 --eval-tasks 4 --out /tmp/grid   # a smoke run

Writes ``benchmarks/results/rate_grid_<family>.{json,md,png}`` (every run's wall time is in the JSON).

References:
    [1] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
    [2] Behl, Baydin & Torr, "Alpha MAML: Adaptive Model-Agnostic Meta-Learning", 2019.
        https://arxiv.org/abs/1905.07435
    [3] Baydin, Cornish, Martínez Rubio, Schmidt & Wood, "Online Learning Rate Adaptation with Hypergradient
        Descent", ICLR 2018. https://arxiv.org/abs/1703.04782
"""

from __future__ import annotations

import argparse
import time

from rl_alphamaml.cli import load_experiment_config

import rate_grid as grid
import results_io


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="navigation2d_alpha", help="a kind: rl config in configs/")
    parser.add_argument("--episodes", type=int, default=20, help="episodes per task and phase")
    grid.add_arguments(parser, alphas=[0.01, 0.1, 1.0, 10.0], betas=[1e-4, 1e-3, 1e-2, 1e-1], iterations=300,
                  meta_batch=20, eval_tasks=40, eval_steps=1, processes=2)
    args = parser.parse_args()

    config, _ = load_experiment_config(grid.ROOT / "configs" / f"{args.config}.yaml")
    family = config.env.id.split("/")[-1].split("-")[0]
    fixed = (f"train.meta_batch={args.meta_batch}", f"sampler.episodes={args.episodes}", "sampler.threads=1",
             "train.threads=1")
    settings = {"config": args.config, "env": config.env.id, "iterations": args.iterations,
                "meta_batch": args.meta_batch, "episodes": args.episodes, "eval_tasks": args.eval_tasks,
                "eval_steps": args.eval_steps, "seeds": args.seeds, "alphas": args.alphas, "betas": args.betas,
                "alpha_bounds": grid.ALPHA_BOUNDS, "beta_bounds": grid.BETA_BOUNDS, "inner_steps": 1,
                "second_order": True, "outer_optimizer": "adam", "hd_rule": args.hd_rule, "methods": args.methods,
                "metric": "return", "train_window": 20, "resolved_config": grid.resolved_config(args.config, fixed)}
    study = f"rate_grid_{family.lower()}"
    stem = grid.stem(study, args.hd_rule)
    store = grid.GridStore(args.out / f"{stem}.json", settings, args.fresh)
    metric = grid.Metric("return")
    started = time.perf_counter()

    def spec(method: str, alpha: float, beta: float, seed: int) -> grid.RunSpec:
        return grid.RunSpec(method, alpha, beta, seed, args.config, fixed, args.iterations, args.eval_tasks,
                            args.eval_steps, "returns/post_adapt", 20, args.hd_rule)

    grid.run_all(store, spec, args.processes, metric)

    values = [r["value"] for r in store.runs.values() if r["value"] is not None]
    floor = min(values) if values else 0.0
    cells = [s for m in ("maml", "alpha_maml") for a in args.alphas for b in args.betas
             if (s := grid.cell_score(store.cell(m, a, b), floor)) is not None]
    best = max(cells) if cells else 0.0
    threshold = best - 0.2 * abs(best)
    episodes = f"--episodes {args.episodes}"
    header = [f"# {family}: MAML versus Alpha MAML over initial α × β", "",
              f"Budget per run: {args.iterations} meta-iterations × {args.meta_batch} tasks × {args.episodes} episodes "
              f"(config `{args.config}`, Adam outer loop, one second-order inner step, {grid.seeds_text(args.seeds)}). "
              f"Cell: mean return on {args.eval_tasks} held-out tasks after {args.eval_steps} inner step(s); one seed: "
              "± 95 % CI over tasks, several: the mean over seeds (lowest … highest seed).", "",
              f"Command: `{grid.command('rl_rate_grid.py', args, f'--config {args.config}', episodes)}`", ""]
    text = grid.tables(store, header, metric, floor,
                  summary_note=f"(A run with no finite return counts as the grid's worst return, {floor:.1f}; "
                               f"'near best' = within 20 % of the best cell's return {best:.1f}, i.e. "
                               f"≥ {threshold:.1f}.)",
                  good=lambda v: v >= threshold, good_text="near best")
    default = (grid.default_rule_store(args.out / f"{study}.json", settings)
               if args.hd_rule != grid.DEFAULT_RULE else None)
    if default is not None:
        text += "\n\n" + "\n".join(grid.rule_comparison(store, default, metric, floor))
    print("\n" + text)
    results_io.write_text(args.out / f"{stem}.md", text + "\n")
    title = (f"{family}: {args.iterations} its × {args.meta_batch} tasks × {args.episodes} episodes per run, "
             f"{grid.seeds_text(args.seeds)}; return after {args.eval_steps} step(s) on {args.eval_tasks} held-out "
             "tasks")
    # Returns span orders of magnitude (a collapsed policy is 30× worse than a good one): the colour scale
    # saturates at 5×|best| below the best cell so that differences among working cells stay visible.
    low = max(floor, best - 5 * abs(best)) if best > floor else floor - 1
    grid.heatmap(store, args.out / f"{stem}.png", title + f"; colour saturates below {low:.0f}", metric, floor,
            label="held-out return after adaptation", vmin=low, vmax=best)
    print(f"\nwrote {args.out / stem}.{{json,md,png}} ({(time.perf_counter() - started) / 60:.1f} min)")


if __name__ == "__main__":
    results_io.run(main)
