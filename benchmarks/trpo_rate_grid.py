"""α by hypergradient under MAML-TRPO's outer step: a robustness grid over the initial inner rate α₀.

Alpha MAML [2] adapts MAML's [1] inner rate α online by hypergradient descent [3] so that its initial value need
not be tuned. ``rl_rate_grid.py`` checks that with Adam in the outer loop; this script checks it with the outer step
the MAML paper's RL results use, TRPO [4] (``outer.optimizer: trpo``), which has no outer rate β: the trust region's
max-KL takes β's place, at the family's value. With the study of ``rate_grid.py`` it meta-trains
``configs/<family>.yaml`` (one second-order inner step) from every α₀ and seed twice, with the same seed — same
initial policy, task and episode streams — and the same budget:

* **fixed α** (MAML-TRPO as the paper runs it; the study's ``maml`` runs), and
* **α by hypergradient** (``inner.lr_mode=hd``, the core's ``normalized`` rule unless ``--hd-rule``, α ∈ [1e-4, 10];
  the study's ``alpha_maml`` runs),

and evaluates each on ``--eval-tasks`` held-out tasks with fresh episodes after one inner step, as
``rl-alphamaml evaluate`` does. The default budgets are those of the locomotion table (``locomotion_paper.py``:
HalfCheetahDir 50, HalfCheetahVel 80 iterations × 20 tasks × 10 episodes, max-KL 0.02) and of Navigation2D's runs
beside it (``promp_comparison.py``: 100 iterations × 20 tasks × 20 episodes, the config's max-KL 0.01); each run
takes one core, ``--processes`` (2) at a time.

Issue 24's goal: from every α₀, α by hypergradient ends within the seed spread of the best fixed α — its cell's mean
over seeds at least the lowest seed of the best fixed-α cell (:func:`goal_line`).

Usage (one family per invocation; resumable: the same command continues, more ``--seeds`` train only the new
seeds, so ``--seeds 0``, then ``--seeds 0 1``, then ``--seeds 0 1 2`` spreads a grid over sessions)::

    python benchmarks/trpo_rate_grid.py --family navigation2d            # α₀ 0.01 … 1, seeds 0 1 2
    python benchmarks/trpo_rate_grid.py --family halfcheetah_dir
    python benchmarks/trpo_rate_grid.py --family navigation2d --seeds 0 --iterations 2 --eval-tasks 4 --alphas 0.1 \\
        --out /tmp/grid                                                  # a smoke run

Writes ``benchmarks/results/trpo_rate_grid_<family>.{json,md,png}`` (every run's wall time and final α in the JSON).

References:
    [1] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
    [2] Behl, Baydin & Torr, "Alpha MAML: Adaptive Model-Agnostic Meta-Learning", 2019.
        https://arxiv.org/abs/1905.07435
    [3] Baydin, Cornish, Martínez Rubio, Schmidt & Wood, "Online Learning Rate Adaptation with Hypergradient
        Descent", ICLR 2018. https://arxiv.org/abs/1703.04782
    [4] Schulman, Levine, Moritz, Jordan & Abbeel, "Trust Region Policy Optimization", ICML 2015.
        https://arxiv.org/abs/1502.05477
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rl_alphamaml.cli import load_experiment_config

import rate_grid as grid
import results_io
from promp_comparison import FAMILIES  # the locomotion table's budgets and Navigation2D's beside them

ALPHAS = [0.01, 0.03, 0.1, 0.3, 1.0]
#: the two methods as this study's tables name them (the store keeps rate_grid's keys)
NAMES = {"maml": "fixed α", "alpha_maml": "α by hypergradient"}


def goal_line(store: grid.GridStore, floor: float) -> tuple[tuple[float, float], float] | None:
    """The best fixed-α cell — (α₀, max-KL) with the highest mean over seeds, a run with no finite return counting
    as ``floor`` (:func:`rate_grid.cell_score`) — and the lower end of its seed spread: its lowest seed, or with one
    seed its return less the 95 % CI over tasks (the range its cell shows); None while no fixed-α run has finished.
    α by hypergradient meets the goal from an α₀ when its cell's score reaches this line."""
    scores = {(a, b): s for a in store.settings["alphas"] for b in store.settings["betas"]
              if (s := grid.cell_score(store.cell("maml", a, b), floor)) is not None}
    if not scores:
        return None
    best = max(scores, key=lambda cell: scores[cell])
    runs = store.cell("maml", *best)
    if len(runs) == 1 and runs[0]["value"] is not None and runs[0]["ci95"] is not None:
        return best, runs[0]["value"] - runs[0]["ci95"]
    return best, min(r["value"] if r["value"] is not None else floor for r in runs)


def rows_table(store: grid.GridStore, metric: grid.Metric, floor: float) -> list[str]:
    """Markdown: per α₀ (and max-KL) the fixed-α and the hypergradient cell, the hypergradient runs' final α seed by
    seed, and whether the hypergradient cell meets the goal (:func:`goal_line`); then a closing line with the count."""
    line = goal_line(store, floor)
    out = [f"| α₀ | max-KL | {NAMES['maml']} | {NAMES['alpha_maml']} | final α ({NAMES['alpha_maml']}, per seed) | "
           "goal met |", "| --- | --- | --- | --- | --- | --- |"]
    met, judged = 0, 0
    for a in store.settings["alphas"]:
        for b in store.settings["betas"]:
            fixed, adapted = store.cell("maml", a, b), store.cell("alpha_maml", a, b)
            score = grid.cell_score(adapted, floor)
            goal = "—"
            if line is not None and score is not None:
                judged += 1
                met += score >= line[1]
                goal = "yes" if score >= line[1] else "no"
            final = ", ".join(f"{r['final_alpha']:.3g}" for r in adapted) or "—"
            best = "**" if line is not None and line[0] == (a, b) else ""
            out.append(f"| {a:g} | {b:g} | {best}{metric.cell(fixed)}{best} | {metric.cell(adapted)} | {final} | "
                       f"{goal} |")
    if line is not None:
        (a, b), low = line
        out += ["", f"Goal line: the best fixed-α cell (bold: α₀ {a:g}, max-KL {b:g}) reaches down to "
                    f"{metric.show(low)}; α by hypergradient meets it from {met} of the {judged} finished rows."]
    return out


def runs_table(store: grid.GridStore, metric: grid.Metric) -> list[str]:
    """Markdown: every finished run, seed by seed — the held-out return ± 95 % CI over tasks — with its final α."""
    out = [f"| α₀ | max-KL | seed | {NAMES['maml']} | {NAMES['alpha_maml']} | final α ({NAMES['alpha_maml']}) |",
           "| --- | --- | --- | --- | --- | --- |"]
    for a in store.settings["alphas"]:
        for b in store.settings["betas"]:
            for seed in store.settings["seeds"]:
                found = {m: store.runs.get(grid.key(m, a, b, seed)) for m in grid.METHODS}
                if not any(found.values()):
                    continue
                final = f"{adapted['final_alpha']:.3g}" if (adapted := found["alpha_maml"]) else "—"
                out.append(f"| {a:g} | {b:g} | {seed} | "
                           + " | ".join(metric.cell([r] if r else []) for r in found.values()) + f" | {final} |")
    return out


def plot(store: grid.GridStore, path: Path, title: str, floor: float) -> None:
    """The held-out return per α₀ (mean over seeds, bars to the lowest and highest seed) of both methods with the goal
    line, and beside it the final α of every hypergradient run against its α₀."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    alphas, betas = store.settings["alphas"], store.settings["betas"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2), dpi=120, constrained_layout=True)
    for method, marker in (("maml", "o"), ("alpha_maml", "s")):
        for b in betas:
            cells = [(a, [r["value"] if r["value"] is not None else floor for r in runs])
                     for a in alphas if (runs := store.cell(method, a, b))]
            if not cells:
                continue
            xs, means = [a for a, _ in cells], [sum(v) / len(v) for _, v in cells]
            bars = [[m - min(v) for m, (_, v) in zip(means, cells)], [max(v) - m for m, (_, v) in zip(means, cells)]]
            left.errorbar(xs, means, yerr=bars, marker=marker, capsize=3,
                          label=NAMES[method] + (f", max-KL {b:g}" if len(betas) > 1 else ""))
    if line := goal_line(store, floor):
        left.axhline(line[1], color="grey", linestyle="--", label="goal line (the best fixed-α cell's lower end)")
    left.set_xscale("log")
    left.set_xlabel("initial α (inner rate)")
    left.set_ylabel("held-out return after one step")
    left.legend(fontsize=7)
    finals = [(r["alpha0"], r["final_alpha"]) for r in store.runs.values() if r["method"] == "alpha_maml"]
    right.plot(alphas, alphas, color="grey", linestyle="--", label="fixed α (final = initial)")
    right.scatter([a for a, _ in finals], [f for _, f in finals], marker="s", color="C1", label=NAMES["alpha_maml"])
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("initial α")
    right.set_ylabel("final α (one point per run)")
    right.legend(fontsize=7)
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=9)
    results_io.save_figure(fig, path)


def main() -> None:
    family_parser = argparse.ArgumentParser(add_help=False)
    family_parser.add_argument("--family", default="navigation2d", choices=list(FAMILIES),
                               help="the task family: its MAML-TRPO config and budget")
    family = family_parser.parse_known_args()[0].family
    budget = FAMILIES[family]
    config, _ = load_experiment_config(grid.ROOT / "configs" / f"{family}.yaml")
    max_kl = budget["max_kl"] or config.trpo.max_kl
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[family_parser])
    parser.add_argument("--episodes", type=int, default=budget["episodes"], help="episodes per task and phase")
    grid.add_arguments(parser, alphas=ALPHAS, betas=[max_kl], iterations=budget["iterations"],
                       meta_batch=budget["meta_batch"], eval_tasks=40, eval_steps=1, processes=2, beta_flag="--max-kl",
                       beta_help="the trust region's max-KL (TRPO has no β; several values: a grid over them)")
    args = parser.parse_args()
    if ":" in args.hd_rule:
        parser.error(f"--hd-rule {args.hd_rule}: TRPO's outer step has no β, so give α's rule alone")

    fixed = (f"train.meta_batch={args.meta_batch}", f"sampler.episodes={args.episodes}", "sampler.threads=1",
             "train.threads=1")
    settings = {"config": family, "env": config.env.id, "iterations": args.iterations, "meta_batch": args.meta_batch,
                "episodes": args.episodes, "eval_tasks": args.eval_tasks, "eval_steps": args.eval_steps,
                "seeds": args.seeds, "alphas": args.alphas, "betas": args.betas, "betas_are": "trpo.max_kl",
                "alpha_bounds": grid.ALPHA_BOUNDS, "inner_steps": 1, "second_order": True, "outer_optimizer": "trpo",
                "hd_rule": args.hd_rule, "methods": args.methods, "metric": "return", "train_window": 20,
                "resolved_config": grid.resolved_config(family, fixed)}
    stem = grid.stem(f"trpo_rate_grid_{family}", args.hd_rule)
    store = grid.GridStore(args.out / f"{stem}.json", settings, args.fresh)
    metric = grid.Metric("return")
    started = time.perf_counter()

    def spec(method: str, alpha: float, beta: float, seed: int) -> grid.RunSpec:
        return grid.RunSpec(method, alpha, beta, seed, family, fixed, args.iterations, args.eval_tasks,
                            args.eval_steps, "returns/post_adapt", 20, args.hd_rule, outer="trpo")

    grid.run_all(store, spec, args.processes, metric)

    values = [r["value"] for r in store.runs.values() if r["value"] is not None]
    floor = min(values) if values else 0.0
    name = config.env.id.split("/")[-1].split("-")[0]
    command = grid.command("trpo_rate_grid.py", args, f"--family {family}", f"--episodes {args.episodes}",
                           beta_flag="--max-kl")
    header = [f"# {name}: MAML-TRPO with α fixed versus α by hypergradient, over initial α", "",
              f"Budget per run: {args.iterations} meta-iterations × {args.meta_batch} tasks × {args.episodes} episodes "
              f"(config `{family}`, TRPO outer step, one second-order inner step, {grid.seeds_text(args.seeds)}); α by "
              f"hypergradient: the `{args.hd_rule}` rule, α ∈ [{grid.ALPHA_BOUNDS[0]:g}, {grid.ALPHA_BOUNDS[1]:g}]. "
              f"Cell: mean return on {args.eval_tasks} held-out tasks after {args.eval_steps} inner step(s); one seed: "
              "± 95 % CI over tasks, several: the mean over seeds (lowest … highest seed).", "",
              "Goal (issue 24): from every α₀, α by hypergradient within the seed spread of the best fixed α — its "
              "cell's mean over seeds at least the lowest seed of the best fixed-α cell (with one seed: that run's "
              "return less its 95 % CI); a run with no finite return counts as the study's worst return, "
              f"{floor:.1f}.", "", f"Command: `{command}`", ""]
    line = goal_line(store, floor)
    good_text = "on or above the goal line"
    text = "\n".join([
        *header, *rows_table(store, metric, floor), "", "**Every run** (held-out return ± 95 % CI over tasks)", "",
        *runs_table(store, metric), "",
        *grid.pairs_table(store, metric, floor, lambda v: line is not None and v >= line[1], good_text, NAMES, "α₀"),
        "", grid.run_time(store)])
    print("\n" + text)
    results_io.write_text(args.out / f"{stem}.md", text + "\n")
    title = (f"{name}, MAML-TRPO: {args.iterations} its × {args.meta_batch} tasks × {args.episodes} episodes per run, "
             f"{grid.seeds_text(args.seeds)}; return after {args.eval_steps} step(s) on {args.eval_tasks} held-out "
             "tasks")
    plot(store, args.out / f"{stem}.png", title, floor)
    print(f"\nwrote {args.out / stem}.{{json,md,png}} ({(time.perf_counter() - started) / 60:.1f} min)")


if __name__ == "__main__":
    results_io.run(main)
