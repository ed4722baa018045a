"""MAML-TRPO, Alpha MAML, ProMP and Alpha-ProMP at equal environment steps, on Navigation2D and HalfCheetah.

Checks the claim of ProMP [1] (Fig. 2): the same post-adaptation return as MAML-TRPO [2, 3] with half the
samples or fewer. For each family, seed and method this trains through the CLI with the shipped configs —

* **MAML-TRPO** ``configs/<family>.yaml``, **Alpha MAML** [4] ``configs/<family>_alpha.yaml`` (Adam, α and β by
  hypergradient), **ProMP** ``configs/<family>_promp.yaml`` (the authors' settings) and **Alpha-ProMP**
  ``configs/<family>_alpha_promp.yaml`` —

with the same policy, meta-batch, episodes and iterations, so every method samples the same number of
episodes (HalfCheetah: the same environment steps; on Navigation2D episodes end at the goal, and the curves
use each run's own count). Then:

* the **learning curve**: post-adaptation return of the training meta-batches (fresh tasks every iteration)
  against cumulative environment steps, a 5-iteration moving average, mean over seeds;
* **samples to MAML-TRPO's level**: the environment steps at which a method's moving average first covers
  90 % of MAML-TRPO's gain (from MAML-TRPO's first moving-average value to its last, same seed), as a multiple
  of the steps MAML-TRPO itself needs — below 0.5 is ProMP's claim;
* the **held-out table**: ``rl-alphamaml compare … --methods runs --tasks 40 --steps 3`` (the stream of
  ``rl-alphamaml evaluate``), return after 0–3 inner steps ± 95 % CI.

The HalfCheetah MAML-TRPO and Alpha MAML runs are the ones ``benchmarks/locomotion_paper.py`` trains (same
folder, same overrides): reused when present. Resumable: a finished run is reused, an interrupted one
continues with ``rl-alphamaml train --resume``.

Usage::

    python benchmarks/promp_comparison.py                                   # all families
    python benchmarks/promp_comparison.py --families navigation2d --seeds 0 1 2

Writes ``benchmarks/results/promp_comparison.{md,json,png}`` (each run's wall seconds in the JSON).

References:
    [1] Rothfuss, Lee, Clavera, Asfour & Abbeel, "ProMP: Proximal Meta-Policy Search", ICLR 2019.
        https://arxiv.org/abs/1810.06784
    [2] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
    [3] Schulman, Levine, Moritz, Jordan & Abbeel, "Trust Region Policy Optimization", ICML 2015.
        https://arxiv.org/abs/1502.05477
    [4] Behl, Baydin & Torr, "Alpha MAML: Adaptive Model-Agnostic Meta-Learning", 2019.
        https://arxiv.org/abs/1905.07435
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import results_io
from cli_runs import ROOT, compare_once, relative, train_to

RESULTS = ROOT / "benchmarks" / "results"
METHODS = {"maml": ("MAML-TRPO", ""), "alpha": ("Alpha MAML", "_alpha"), "promp": ("ProMP", "_promp"),
           "alpha_promp": ("Alpha-ProMP", "_alpha_promp")}
# iterations, meta-batch, episodes per task; max_kl: MAML-TRPO's (locomotion_paper.py's runs); shared: the folder
# of locomotion_paper.py's runs, whose MAML-TRPO and Alpha MAML runs this script reuses.
FAMILIES: dict[str, dict[str, Any]] = {
    "navigation2d": {"iterations": 100, "meta_batch": 20, "episodes": 20, "max_kl": None, "seeds": [0, 1, 2]},
    "halfcheetah_dir": {"iterations": 50, "meta_batch": 20, "episodes": 10, "max_kl": 0.02, "seeds": [0]},
    "halfcheetah_vel": {"iterations": 80, "meta_batch": 20, "episodes": 10, "max_kl": 0.02, "seeds": [0]},
}
TASKS, STEPS, SMOOTH, LEVEL = 40, 3, 5, 0.9


def run_spec(family: str, method: str, seed: int, out: Path) -> tuple[Path, str, list[str]]:
    """The run folder, config and ``--set`` values of one run."""
    spec = FAMILIES[family]
    its = spec["iterations"]
    sets = [f"train.iterations={its}", f"train.checkpoint_every={min(10, its)}", f"sampler.episodes={spec['episodes']}",
            f"train.meta_batch={spec['meta_batch']}"]
    if method == "maml" and spec["max_kl"] is not None:
        sets.append(f"trpo.max_kl={spec['max_kl']}")
    sets.append(f"seed={seed}")
    shared = family.startswith("halfcheetah") and method in ("maml", "alpha")
    folder = out / ("locomotion_runs" if shared else "promp_runs")
    return folder / f"{family}-{method}-s{seed}", family + METHODS[method][1], sets


def records(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def curve(run_dir: Path) -> dict[str, list[float]]:
    """Cumulative env steps and the moving average of the post-adaptation return, per iteration."""
    recs = records(run_dir)
    steps = np.cumsum([r["time/env_steps"] for r in recs])
    post = np.array([r["returns/post_adapt"] for r in recs])
    smooth = np.array([post[max(0, i - SMOOTH + 1): i + 1].mean() for i in range(len(post))])
    return {"env_steps": steps.tolist(), "post_adapt": post.tolist(), "smoothed": smooth.tolist(),
            "wall_seconds": float(sum(r["time/iteration"] for r in recs))}


def steps_to_reach(c: dict[str, list[float]], target: float) -> float | None:
    """Env steps at which the smoothed curve first reaches ``target`` (None: never)."""
    for steps, value in zip(c["env_steps"], c["smoothed"]):
        if value >= target:
            return steps
    return None


def family_result(family: str, seeds: list[int], out: Path) -> dict[str, Any]:
    runs = []
    for seed in seeds:
        for method in METHODS:
            run_dir, config, sets = run_spec(family, method, seed, out)
            train_to(run_dir, config, sets, FAMILIES[family]["iterations"])
            command = ["rl-alphamaml", "train", f"configs/{config}.yaml", "--run-dir", str(run_dir),
                       *[x for s in sets for x in ("--set", s)]]
            runs.append({"method": method, "seed": seed, "run_dir": str(run_dir),
                         "command": relative(" ".join(command)), "curve": curve(run_dir)})
    report = compare_once([Path(r["run_dir"]) for r in runs], out / "promp_runs" / f"{family}-compare",
                          "--tasks", str(TASKS), "--steps", str(STEPS), "--methods", "runs")
    by_source = {m["source"]: m for m in report["methods"]}
    for r in runs:
        r["held_out"] = by_source[r["run_dir"]]["summary"]
        maml = next(m for m in runs if m["method"] == "maml" and m["seed"] == r["seed"])["curve"]["smoothed"]
        r["target"] = maml[0] + LEVEL * (maml[-1] - maml[0])
        r["steps_to_target"] = steps_to_reach(r["curve"], r["target"])
    return {"family": family, "env": report["env"], "runs": runs, "compare_command": relative(str(report["command"])),
            **{k: v for k, v in FAMILIES[family].items() if k != "seeds"}}


def fmt(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{np.mean(values):.1f} (" + ", ".join(f"{v:.1f}" for v in values) + ")"


def markdown(results: list[dict[str, Any]], note: str) -> str:
    lines = ["# ProMP and Alpha-ProMP against MAML-TRPO at equal environment steps", "", note, "",
             "![learning curves](promp_comparison.png)", ""]
    for res in results:
        seeds = sorted({r["seed"] for r in res["runs"]})
        lines += [f"## {res['env']}", "", f"{res['iterations']} iterations × {res['meta_batch']} tasks × "
                  f"{res['episodes']} episodes per phase; seeds {seeds}. Held-out: {TASKS} tasks, ± 95 % CI over tasks "
                  "(with several seeds: the mean over seeds, then each seed). Last column: environment steps until "
                  f"the {SMOOTH}-iteration average of the training return covers {LEVEL:.0%} of MAML-TRPO's gain, "
                  "per seed, and as a multiple of MAML-TRPO's own.", "",
                  "| method | env steps | wall time here | after 0 steps | after 1 step | after 2 steps "
                  f"| after 3 steps | steps to {LEVEL:.0%} of MAML-TRPO's gain |", "|---|---|---|---|---|---|---|---|"]
        for method, (label, _) in METHODS.items():
            rows = [r for r in res["runs"] if r["method"] == method]
            steps = np.mean([r["curve"]["env_steps"][-1] for r in rows])
            wall = np.mean([r["curve"]["wall_seconds"] for r in rows]) / 60
            cells = []
            for k in range(STEPS + 1):
                means = [r["held_out"][k]["mean"] for r in rows]
                cells.append(fmt(means) if len(rows) > 1 else f"{means[0]:.1f} ± {rows[0]['held_out'][k]['ci95']:.1f}")
            reach = []
            for r in rows:
                maml = next(m for m in res["runs"] if m["method"] == "maml" and m["seed"] == r["seed"])
                own = maml["steps_to_target"]
                s = r["steps_to_target"]
                reach.append("not within the budget" if s is None else f"{s / 1e6:.2f} M ({s / own:.2f}×)")
            lines.append(f"| {label} | {steps / 1e6:.2f} M | {wall:.1f} min | " + " | ".join(cells) + " | "
                         + "; ".join(reach) + " |")
        lines += ["", "Commands:", "", "```bash"]
        lines += [r["command"] for r in res["runs"]] + [res["compare_command"], "```", ""]
    return "\n".join(lines)


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4.2), dpi=110, squeeze=False)
    for ax, res in zip(axes[0], results):
        for i, (method, (label, _)) in enumerate(METHODS.items()):
            rows = [r for r in res["runs"] if r["method"] == method]
            color = f"C{i}"
            for r in rows:
                if len(rows) > 1:
                    ax.plot(np.array(r["curve"]["env_steps"]) / 1e6, r["curve"]["smoothed"], color=color, alpha=0.25,
                            linewidth=0.8)
            x = np.mean([r["curve"]["env_steps"] for r in rows], axis=0) / 1e6
            y = np.mean([r["curve"]["smoothed"] for r in rows], axis=0)
            ax.plot(x, y, color=color, label=label + (f" (mean of {len(rows)} seeds)" if len(rows) > 1 else ""))
        ax.set_xlabel("meta-training environment steps (M)")
        ax.set_ylabel(f"post-adaptation return ({SMOOTH}-iteration average)")
        ax.set_title(res["env"].split("/")[-1], fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    results_io.save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    parser.add_argument("--seeds", nargs="+", type=int, default=None,
                        help="seeds for every family (default: 0 1 2 on navigation2d, 0 on HalfCheetah)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    started = time.perf_counter()
    results = [family_result(f, args.seeds or FAMILIES[f]["seeds"], args.out) for f in args.families]
    seeds = " ".join(map(str, args.seeds)) if args.seeds else None
    note = (f"Return after adaptation; curves from the training meta-batches, table from {TASKS} held-out tasks "
            f"(fresh episodes after each inner step). policy.action_scale 0.1 (the references' convention), 100×100 "
            f"policy for every method. Machine: {platform.machine()} CPU, 2 cores, {time.strftime('%Y-%m-%d')}; "
            f"`python benchmarks/promp_comparison.py --families {' '.join(args.families)}"
            + (f" --seeds {seeds}`." if seeds else "`."))
    md = markdown(results, note)
    print(md)
    results_io.write_text(args.out / "promp_comparison.md", md)
    results_io.write_text(args.out / "promp_comparison.json",
                         relative(json.dumps({"note": note, "results": results}, indent=1)))
    plot(results, args.out / "promp_comparison.png")
    print(f"wrote {args.out / 'promp_comparison.md'} ({(time.perf_counter() - started) / 60:.1f} min)", file=sys.stderr)


if __name__ == "__main__":
    results_io.run(main)
