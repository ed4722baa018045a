"""The MAML paper's HalfCheetah table ([1], Fig. 5), reproduced at a fraction of its samples.

For each family (HalfCheetahDir, HalfCheetahVel) and seed this trains, through the CLI, with the shipped
configs and the overrides in ``FAMILIES`` (meta-batch 20 × 10 episodes, the references' action convention
``policy.action_scale: 0.1``):

* **MAML-TRPO** [1, 3] — ``configs/<family>.yaml`` (α 0.1 fixed, max-KL 0.02);
* **Alpha MAML** [2] — ``configs/<family>_alpha.yaml`` (Adam outer loop, α and β by hypergradient);
* **pretrained** — ``configs/<family>.yaml`` with ``inner.steps=0`` and twice the meta-batch, i.e. the same
  environment steps per iteration as the meta-trained runs (which sample twice per task);

then runs ``rl-alphamaml compare … --methods runs random --tasks 40 --steps 3`` on the family's runs (the
held-out stream of ``rl-alphamaml evaluate``; the pretrained and random-init policies are adapted with the
first MAML run's α), and writes ``benchmarks/results/locomotion_paper.{md,json,png}`` with the paper's rows
beside ours.

Every run folder lives in ``benchmarks/results/locomotion_runs/`` and the script is resumable: a finished run
is reused, an interrupted one continues with ``rl-alphamaml train --resume``.

Usage::

    python benchmarks/locomotion_paper.py                       # both families, seed 0
    python benchmarks/locomotion_paper.py --seeds 0 1 2         # more seeds
    python benchmarks/locomotion_paper.py --families halfcheetah_dir

Writes ``benchmarks/results/locomotion_paper.{md,json,png}`` (each run's wall seconds in the JSON).

References:
    [1] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
    [2] Behl, Baydin & Torr, "Alpha MAML: Adaptive Model-Agnostic Meta-Learning", 2019.
        https://arxiv.org/abs/1905.07435
    [3] Schulman, Levine, Moritz, Jordan & Abbeel, "Trust Region Policy Optimization", ICML 2015.
        https://arxiv.org/abs/1502.05477
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import results_io
from cli_runs import ROOT, compare_once, relative, train_to
from maml_paper import PAPER

RESULTS = ROOT / "benchmarks" / "results"

FAMILIES: dict[str, dict[str, Any]] = {
    "halfcheetah_dir": {"iterations": 50, "max_kl": 0.02},
    "halfcheetah_vel": {"iterations": 80, "max_kl": 0.02},
}
META_BATCH, EPISODES, TASKS, STEPS = 20, 10, 40, 3


def train(run_dir: Path, config: str, overrides: list[str], iterations: int) -> list[str]:
    """Train (or finish) one run; returns the command that trains it from scratch."""
    train_to(run_dir, config, overrides, iterations)
    sets = [x for s in overrides for x in ("--set", s)]
    return ["train", f"configs/{config}.yaml", "--run-dir", str(run_dir.relative_to(ROOT)), *sets]


def wall_seconds(run_dir: Path) -> float:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return sum(json.loads(line).get("time/iteration", 0.0) for line in lines)


def family_runs(family: str, seeds: list[int], runs_root: Path) -> list[dict[str, Any]]:
    spec = FAMILIES[family]
    its = spec["iterations"]
    common = [f"train.iterations={its}", f"train.checkpoint_every={min(10, its)}", f"sampler.episodes={EPISODES}"]
    methods = [
        ("maml", family, [*common, f"train.meta_batch={META_BATCH}", f"trpo.max_kl={spec['max_kl']}"]),
        ("alpha", f"{family}_alpha", [*common, f"train.meta_batch={META_BATCH}"]),
        ("pretrained", family, [*common, f"train.meta_batch={2 * META_BATCH}", "inner.steps=0",
                                f"trpo.max_kl={spec['max_kl']}"]),
    ]
    runs = []
    for seed in seeds:
        for method, config, overrides in methods:
            run_dir = runs_root / f"{family}-{method}-s{seed}"
            command = train(run_dir, config, [*overrides, f"seed={seed}"], its)
            runs.append({"method": method, "seed": seed, "run_dir": run_dir,
                         "command": "rl-alphamaml " + " ".join(command), "wall_seconds": wall_seconds(run_dir)})
    return runs


def compare(family: str, runs: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    """``rl-alphamaml compare`` on the family's runs (reused when it already measured exactly these runs)."""
    return compare_once([Path(r["run_dir"]) for r in runs], out, "--tasks", str(TASKS), "--steps", str(STEPS),
                        "--methods", "runs", "random")


def fmt(mean: float, half: float) -> str:
    return f"{mean:.1f} ± {half:.1f}"


def summarise(family: str, runs: list[dict[str, Any]], report: dict[str, Any]) -> dict[str, Any]:
    by_path = {str(r["run_dir"]): r for r in runs}
    rows = []
    for m in report["methods"]:
        source = by_path.get(m["source"])
        steps = report["runs"][m["source"]]["meta_training_env_steps"] if source else 0
        rows.append({
            "name": m["name"], "method": source["method"] if source else "random",
            "seed": source["seed"] if source else None,
            "env_steps": steps, "wall_seconds": source["wall_seconds"] if source else 0.0,
            "summary": m["summary"], "per_task": m["per_task"], "command": source["command"] if source else None,
        })
    return {"family": family, "env": report["env"], "rows": rows, "paper": PAPER[family],
            "compare_command": relative(str(report.get("command"))), "iterations": FAMILIES[family]["iterations"]}


def markdown(results: list[dict[str, Any]], note: str) -> str:
    lines = ["# The MAML paper's HalfCheetah table, reproduced", "", note, ""]
    for res in results:
        paper = res["paper"]
        lines += [f"## {res['env']}", "",
                  "| method | meta-training env steps | wall time here | after 0 steps | after 1 step | after 2 steps "
                  "| after 3 steps | change 0 → 1 (paired) |", "|---|---|---|---|---|---|---|---|"]
        for row in res["rows"]:
            s = row["summary"]
            cells = " | ".join(fmt(r["mean"], r["ci95"]) for r in s)
            wall = f"{row['wall_seconds'] / 60:.1f} min" if row["wall_seconds"] else "—"
            steps = f"{row['env_steps'] / 1e6:.1f} M" if row["env_steps"] else "0"
            change = f"{s[1]['change']:+.1f} ± {s[1]['change_ci95']:.1f}"
            lines.append(f"| {row['name']} | {steps} | {wall} | {cells} | {change} |")
        m = paper["maml"]
        lines.append(f"| MAML paper ({paper['settings']}) | {paper['env_steps'] / 1e6:.0f} M | — | "
                     + " | ".join(f"{v:.1f}" for v in m) + f" | {m[1] - m[0]:+.1f} |")
        p = paper["pretrained"]
        lines.append(f"| MAML paper, pretrained | — | — | {p[0]:.1f} | {p[1]:.1f} | | | {p[1] - p[0]:+.1f} |")
        lines += ["", f"The paper's oracle (a policy trained on each test task): {paper['oracle']}.", "",
                  "Commands:", "", "```bash"]
        lines += [row["command"] for row in res["rows"] if row["command"]]
        lines += [str(res["compare_command"]), "```", ""]
    return "\n".join(lines)


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4.2), dpi=110, squeeze=False)
    for ax, res in zip(axes[0], results):
        for row in res["rows"]:
            ys = [r["mean"] for r in row["summary"]]
            ax.errorbar(range(len(ys)), ys, yerr=[r["ci95"] for r in row["summary"]], marker="o", capsize=3,
                        label=f"{row['name'].split(' [')[0]}" + (f" s{row['seed']}" if row["seed"] is not None else ""))
        ours = max(row["env_steps"] for row in res["rows"])
        ax.plot(range(4), res["paper"]["maml"], "k--", marker="x",
                label=f"MAML paper ({res['paper']['env_steps'] / ours:.0f}× these runs' env steps)")
        ax.axhline(res["paper"]["oracle"], color="grey", linestyle=":", label="paper's oracle")
        ax.set_xticks(range(4))
        ax.set_xlabel("inner gradient steps on the new task")
        ax.set_ylabel("return (40 held-out tasks, ± 95 % CI)")
        ax.set_title(res["env"].split("/")[-1], fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    results_io.save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    runs_root = args.out / "locomotion_runs"
    runs_root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results = []
    for family in args.families:
        runs = family_runs(family, args.seeds, runs_root)
        report = compare(family, runs, runs_root / f"{family}-compare")
        results.append(summarise(family, runs, report))
    note = (f"{TASKS} held-out tasks (the `rl-alphamaml evaluate` stream), return after 0–3 inner steps with fresh "
            f"episodes ({EPISODES} per task) after each step, ± 95 % CI over tasks; meta-training at meta-batch "
            f"{META_BATCH} × {EPISODES} episodes, policy.action_scale 0.1 (the references' convention), seeds "
            f"{args.seeds}; pretrained and random init adapted with the MAML run's α. Our cheetah is Gymnasium's v5 "
            f"(dt 0.05), the paper's rllab's (dt 0.01): per-step rewards are in the same units (m/s). "
            f"Machine: {platform.machine()} CPU, 2 cores, {time.strftime('%Y-%m-%d')}; "
            f"`python benchmarks/locomotion_paper.py --families {' '.join(args.families)} --seeds "
            f"{' '.join(map(str, args.seeds))}`.")
    md = markdown(results, note)
    print(md)
    args.out.mkdir(parents=True, exist_ok=True)
    results_io.write_text(args.out / "locomotion_paper.md", md + "\n![adaptation](locomotion_paper.png)\n")
    payload = {"note": note, "results": results}
    results_io.write_text(args.out / "locomotion_paper.json", relative(json.dumps(payload, indent=2, default=str)))
    plot(results, args.out / "locomotion_paper.png")
    print(f"wrote {args.out / 'locomotion_paper.md'} ({(time.perf_counter() - started) / 60:.1f} min)", file=sys.stderr)


if __name__ == "__main__":
    results_io.run(main)
