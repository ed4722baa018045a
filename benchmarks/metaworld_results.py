"""Meta-World ML1 results: MAML-TRPO and Alpha MAML on reach and push (pick-place optional), each trained until its
success rate stops rising or a wall-clock budget is spent, scored with Meta-World's protocol beside the published
numbers.

Runs (``--runs``, default the first four, trained one after another in this order): ``reach_maml``, ``reach_alpha``,
``push_maml``, ``push_alpha``, ``pick_place_maml``, ``pick_place_alpha``. ``*_maml`` is MAML-TRPO [1, 2]
(``configs/metaworld_ml1_reach.yaml``), ``*_alpha`` Alpha MAML [3] (``configs/metaworld_ml1_reach_alpha.yaml``); the
class is the config's ``env.env_name`` (``--set env.env_name=push-v3``), so every class is the same config. Each run
trains through the CLI (``cli_runs.train_to``) in chunks of at most :data:`CHUNK` iterations, a checkpoint after
each, and stops at the first of:

* **budget** — its training seconds reach ``--hours`` (default 2). They are ``time/iteration`` summed over
  ``metrics.jsonl`` up to the newest checkpoint (a resume trims the file there), so the budget accumulates across
  sittings and never counts an iteration a kill lost;
* **plateau** — the success rate after one adaptation step on the training batches (``success/post_adapt``),
  averaged over the last ``--window`` iterations, has not beaten its best by more than ``--min-delta`` for
  ``--patience`` iterations (:func:`plateau`);
* ``--iterations`` (a cap, for smoke runs).

``--sitting-hours`` starts no chunk after that long; rerunning the same command continues where the run folders
stand. A run finished and scored in ``<out>/metaworld.json`` whose folder is not on this machine (a fresh clone) is
kept as recorded, not trained again (:func:`recorded_runs`); one recorded unfinished stays in the results as recorded
until it is trained again, and then starts over, with a warning.

A finished run is scored with Meta-World's protocol [4] on the class's 50 held-out goals (``rl-alphamaml
evaluate RUN --protocol metaworld --tasks 50``: 10 sampled episodes per inner step, then 3 episodes of the mean
action that end on success): the success rate and the return after 0 and 1 steps, ± 95 % CI over goals.

Usage::

    python benchmarks/metaworld_results.py                       # reach and push, both methods (~8.5 h)
    python benchmarks/metaworld_results.py --sitting-hours 1.5   # the same, in sittings
    python benchmarks/metaworld_results.py --runs reach_maml --iterations 2 --set train.meta_batch=2 \\
        --set sampler.episodes=2 --set env.horizon=50 --eval-tasks 2 --out /tmp/mw-smoke   # smoke, ~1 min

Writes ``<out>/metaworld.{md,json,png}`` (default ``benchmarks/results/``), runs in ``<out>/metaworld_runs/``. The
script is not named ``metaworld.py``: beside the scripts (``sys.path[0]``) it would hide the ``metaworld`` package.
Needs the Meta-World extra (``pip install -e ".[metaworld]"``).

References:
    [1] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks", ICML 2017.
        https://arxiv.org/abs/1703.03400
    [2] Schulman, Levine, Moritz, Jordan & Abbeel, "Trust Region Policy Optimization", ICML 2015.
        https://arxiv.org/abs/1502.05477
    [3] Behl, Baydin & Torr, "Alpha MAML: Adaptive Model-Agnostic Meta-Learning", 2019.
        https://arxiv.org/abs/1905.07435
    [4] Yu, Quillen, He, Julian, Narayan, Shively, Bellathur, Hausman, Finn & Levine, "Meta-World: A Benchmark and
        Evaluation for Multi-Task and Meta Reinforcement Learning", CoRL 2019. https://arxiv.org/abs/1910.10897
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rl_alphamaml.logging import read_metrics

import results_io
from cli_runs import ROOT, evaluate_kept, last_iteration, relative, train_to
from metaworld_cost import BACKEND_LABELS

RESULTS = ROOT / "benchmarks" / "results"
#: run-name prefix → Meta-World v3 class (``env.env_name``)
CLASSES = {"reach": "reach-v3", "push": "push-v3", "pick_place": "pick-place-v3"}
#: run-name suffix → (label, config)
METHODS = {"maml": ("MAML-TRPO", "metaworld_ml1_reach"), "alpha": ("Alpha MAML", "metaworld_ml1_reach_alpha")}
RUNS = [f"{c}_{m}" for c in CLASSES for m in METHODS]
CHUNK = 5  # iterations between budget checks, each ending with a checkpoint
EVAL_TASKS = 50  # ML1's test split: 50 goals
SUCCESS = "success/post_adapt"
ML10_COST = RESULTS / "metaworld_cost_metaworld_ml10.json"
RAY = "rl-alphamaml train configs/metaworld_ml10.yaml --set sampler.backend=ray --set sampler.address=auto"
# The published numbers, in %, each from a source read here. The updated Meta-World paper (arXiv 1910.10897v2,
# 2021): Table 1, "the average maximum success rate over all tasks … on 10 seeds" (the maximum over training); the
# batch per iteration from its Tables 9 (MAML) and 10 (RL²). Read from a text copy of that version in the code
# search index (it names no repository). The CoRL 2019 version's ML10 MAML row, as paperswithcode lists it:
# https://paperswithcode.com/paper/meta-world-a-benchmark-and-evaluation-for. Not found here: ML1 numbers (the
# paper shows ML1 only as curves, its Figure 4 and Figures 12-14) and any number of Meta-World+ (McLean et al.
# 2025, arXiv 2505.11289).
V2 = "Yu et al., arXiv 1910.10897v2, Table 1"
CORL = "Yu et al., CoRL 2019 (arXiv v1), via paperswithcode.com/paper/meta-world-a-benchmark-and-evaluation-for"
PUBLISHED: list[dict[str, Any]] = [
    {"benchmark": "ML10", "method": "MAML", "train": 25.0, "test": 36.0, "budget": "not given there", "source": CORL},
    {"benchmark": "ML10", "method": "MAML", "train": 44.4, "test": 31.6, "source": V2,
     "budget": "20 tasks × 10 episodes × 500 steps per iteration (Table 9); total steps not stated"},
    {"benchmark": "ML10", "method": "RL²", "train": 86.9, "test": 35.8, "source": V2,
     "budget": "10 tasks × 10 episodes × 500 steps per iteration (Table 10); total steps not stated"},
    {"benchmark": "ML10", "method": "PEARL", "train": 23.2, "test": 13.0, "source": V2,
     "budget": "off-policy (Appendix D.9); total steps not stated"},
    {"benchmark": "ML45", "method": "MAML", "train": 40.7, "test": 39.9, "source": V2,
     "budget": "45 tasks × 20 episodes × 500 steps per iteration (Table 9); total steps not stated"},
    {"benchmark": "ML45", "method": "RL²", "train": 70.0, "test": 33.3, "source": V2,
     "budget": "25 tasks × 10 episodes × 500 steps per iteration (Table 10); total steps not stated"},
    {"benchmark": "ML45", "method": "PEARL", "train": 14.5, "test": 22.0, "source": V2,
     "budget": "off-policy (Appendix D.9); total steps not stated"},
]


@dataclasses.dataclass(frozen=True)
class Rule:
    """When a run stops: ``hours`` of training, or no new best of the ``window``-iteration moving average of
    :data:`SUCCESS` (by more than ``min_delta``) for ``patience`` iterations; ``iterations`` caps it (0: no cap)."""

    hours: float = 2.0
    window: int = 10
    patience: int = 20
    min_delta: float = 0.02
    iterations: int = 0


def moving_average(values: Sequence[float], window: int) -> list[float]:
    """The mean of each ``window`` consecutive values (the i-th ends at ``values[i + window - 1]``)."""
    return [float(np.mean(values[i - window:i])) for i in range(window, len(values) + 1)]


def plateau(values: Sequence[float], rule: Rule) -> int | None:
    """The number of iterations after which ``values`` (one per iteration) plateaued: the first count whose last
    ``rule.patience`` iterations brought no moving average above the best before them by more than
    ``rule.min_delta``; ``None`` while it is still rising."""
    best, best_at = -math.inf, 0
    for done, mean in enumerate(moving_average(values, rule.window), start=rule.window):
        if mean > best + rule.min_delta:
            best, best_at = mean, done
        elif done - best_at >= rule.patience:
            return done
    return None


def training_seconds(rows: Sequence[dict[str, Any]]) -> float:
    return float(sum(r["time/iteration"] for r in rows))


def status(rows: Sequence[dict[str, Any]], rule: Rule) -> str:
    """``plateau``, ``budget``, ``iterations`` (the cap) or ``training`` for a run whose kept records are ``rows``."""
    if plateau([r[SUCCESS] for r in rows], rule) is not None:
        return "plateau"
    if training_seconds(rows) >= rule.hours * 3600:
        return "budget"
    return "iterations" if rule.iterations and len(rows) >= rule.iterations else "training"


def next_target(rows: Sequence[dict[str, Any]], rule: Rule) -> int:
    """The iteration to train to next: :data:`CHUNK` more, fewer when the budget's rest at the mean seconds per
    iteration so far is shorter, never past the cap."""
    chunk = CHUNK
    if rows:
        left = rule.hours * 3600 - training_seconds(rows)
        chunk = max(1, min(CHUNK, math.ceil(left / (training_seconds(rows) / len(rows)))))
    return min(len(rows) + chunk, rule.iterations) if rule.iterations else len(rows) + chunk


def kept_rows(folder: Path) -> list[dict[str, Any]]:
    """The records up to the newest checkpoint (those after it are trimmed by the next resume)."""
    newest = last_iteration(folder)
    return [r for r in read_metrics(folder) if r["iteration"] <= newest]


def run_spec(name: str, extra: Sequence[str]) -> tuple[str, list[str]]:
    """A run's config and ``--set`` values (without ``train.iterations``)."""
    cls, method = name.rsplit("_", 1)
    return METHODS[method][1], [f"env.env_name={CLASSES[cls]}", f"train.checkpoint_every={CHUNK}", *extra]


def train(folder: Path, name: str, extra: Sequence[str], rule: Rule, deadline: float) -> None:
    """Train ``name`` in ``folder`` chunk by chunk until :func:`status` says it is done or ``deadline`` passes."""
    config, sets = run_spec(name, extra)
    while status(rows := kept_rows(folder), rule) == "training" and time.monotonic() < deadline:
        target = next_target(rows, rule)
        train_to(folder, config, [*sets, f"train.iterations={target}"], target)


def summary(folder: Path, name: str, extra: Sequence[str], rule: Rule, tasks: int) -> dict[str, Any]:
    """A run's curve, stop reason, budget used and (when finished) Meta-World's protocol on ``tasks`` held-out
    goals at its newest checkpoint."""
    config, sets = run_spec(name, extra)
    rows = kept_rows(folder)
    out: dict[str, Any] = {
        "method": METHODS[name.rsplit("_", 1)[1]][0], "env_name": CLASSES[name.rsplit("_", 1)[0]],
        "command": relative(f"rl-alphamaml train configs/{config}.yaml --run-dir {folder} "
                            + " ".join(f"--set {s}" for s in sets)),
        "status": status(rows, rule), "iterations": len(rows), "train_seconds": training_seconds(rows),
        "env_steps": int(sum(r["time/env_steps"] for r in rows)),
        "train_success": float(np.mean([r[SUCCESS] for r in rows[-rule.window:]])),
        "curve": {"steps": np.cumsum([r["time/env_steps"] for r in rows]).tolist(),
                  "pre_adapt": [r["success/pre_adapt"] for r in rows], "post_adapt": [r[SUCCESS] for r in rows],
                  "seconds": [r["time/iteration"] for r in rows]}}  # per iteration: the sampler backends compared
    if out["status"] != "training":
        options = ["--protocol", "metaworld", "--tasks", str(tasks), "--steps", "1"]
        report = evaluate_kept(folder, f"metaworld_{tasks}tasks_iter{last_iteration(folder):06d}", *options)
        out["evaluation"] = {"iteration": report["checkpoint_iteration"], "tasks": tasks,
                             "command": "rl-alphamaml evaluate RUN " + " ".join(options),
                             "success": report["adaptation"], "return": report["metrics"]["return"]["adaptation"]}
    return out


def recorded_runs(path: Path) -> dict[str, dict[str, Any]]:
    """The runs an earlier ``metaworld.json`` holds (their folders may be gone), finished or not."""
    return json.loads(path.read_text())["runs"] if path.is_file() else {}


def ml10_line(path: Path = ML10_COST) -> str:
    if not path.is_file():
        return f"ML10: not measured yet (`python benchmarks/metaworld_cost.py`). For a cluster: `{RAY}`."
    cost = json.loads(path.read_text())
    backends = cost.get("backends") or {"local": cost}  # files written before metaworld_cost timed both backends
    seconds = {name: float(np.mean([r["time/iteration"] for r in b["iterations"]])) for name, b in backends.items()}
    # every backend samples the same episodes, so the same steps
    steps = float(np.mean([r["time/env_steps"] for r in next(iter(backends.values()))["iterations"]]))
    best = min(seconds, key=seconds.__getitem__)
    hours = cost["planned_iterations"] * seconds[best] / 3600
    per_backend = ", ".join(f"{seconds[name]:.0f} s {BACKEND_LABELS.get(name, name)}" for name in seconds)
    return (f"ML10 (`configs/metaworld_ml10.yaml`, MAML-TRPO, {steps:,.0f} environment steps per iteration): "
            f"{per_backend} per iteration here (mean of {len(backends[best]['iterations'])}, `python "
            f"benchmarks/metaworld_cost.py`, `benchmarks/results/metaworld_cost_metaworld_ml10.md`), so its "
            f"{cost['planned_iterations']} iterations would take {hours:.0f} h on these cores. "
            "On a Ray cluster (`ray start --head` on one node, `ray start --address=HEAD:6379` on "
            f"the others, `pip install -e \".[distributed,metaworld]\"` on each): `{RAY}`, then `rl-alphamaml "
            "evaluate RUN --protocol metaworld` (40 held-out tasks, 8 per test class).")


def pct(row: dict[str, float]) -> str:
    return f"{100 * row['mean']:.0f} ± {100 * row['ci95']:.0f} %"


def table(runs: dict[str, dict[str, Any]]) -> list[str]:
    """Our rows: budget used, stop reason, training success, held-out success and return after 0 and 1 steps."""
    lines = ["| run | stopped by | iterations | env steps | training time | training success, 1 step | held-out "
             "success, 0 steps | held-out success, 1 step | held-out return, 1 step |", "|---" * 9 + "|"]
    for r in runs.values():
        ev = r.get("evaluation")
        held = [pct(ev["success"][0]), pct(ev["success"][1]),
                f"{ev['return'][1]['mean']:.0f} ± {ev['return'][1]['ci95']:.0f}"] if ev else ["not evaluated"] * 3
        lines.append(f"| {r['method']}, {r['env_name']} | {'in progress' if r['status'] == 'training' else r['status']}"
                     f" | {r['iterations']} | {r['env_steps'] / 1e6:.1f} M | {r['train_seconds'] / 3600:.2f} h | "
                     f"{100 * r['train_success']:.0f} % | " + " | ".join(held) + " |")
    return lines


def published_table() -> list[str]:
    lines = ["| benchmark | method | meta-train | meta-test | budget | source |", "|---" * 6 + "|"]
    return lines + [f"| {p['benchmark']} | {p['method']} | {p['train']:g} % | {p['test']:g} % | {p['budget']} | "
                    f"{p['source']} |" for p in PUBLISHED]


def markdown(result: dict[str, Any]) -> str:
    rule, runs = result["rule"], result["runs"]
    lines = ["# Meta-World ML1: MAML-TRPO and Alpha MAML", "",
             f"Made by `python benchmarks/metaworld_results.py` on {result['machine']}. Each run stops when its "
             f"training success after one step (mean of {rule['window']} iterations) has not risen by more than "
             f"{100 * rule['min_delta']:g} points for {rule['patience']} iterations, or after {rule['hours']:g} h of "
             "training. Held-out: Meta-World's protocol on the class's test goals (`rl-alphamaml evaluate RUN "
             f"--protocol metaworld --tasks {result['eval_tasks']}`), ± 95 % CI over goals; training success: sampled "
             f"episodes of the training batches, last {rule['window']} iterations.", ""]
    lines += table(runs) if runs else ["No run yet."]
    lines += ["", "Commands: " + "; ".join(f"`{r['command']}`" for r in runs.values()), "",
              "## Published numbers", "",
              "Not comparable one to one: the papers ran earlier Meta-World environments (ours: v3 classes, v2 "
              "rewards), their success is the maximum over training (ours: the newest checkpoint), their total "
              "budgets are not stated, and their MAML (v2, Table 9: 128 × 128 tanh policy, inner rate 1e-4, max-KL "
              "0.01, 20 tasks × 10 episodes of 500 steps for ML1 and ML10) is our configs' except the inner rate "
              "(ours α 0.1, the MAML paper's). "
              "ML1: the paper shows it only as curves (v2, Figures 4 and 12-14) — no number found. Meta-World+ "
              "(McLean et al. 2025, arXiv 2505.11289): no number found.", "",
              *published_table(), "", "## ML10", "", result["ml10"], ""]
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    classes = sorted({r["env_name"] for r in result["runs"].values()}) or ["reach-v3"]
    fig, axes = plt.subplots(1, len(classes), figsize=(6 * len(classes), 4.2), squeeze=False)
    window = result["rule"]["window"]
    for ax, cls in zip(axes[0], classes):
        for r in (r for r in result["runs"].values() if r["env_name"] == cls):
            steps = np.array(r["curve"]["steps"]) / 1e6
            w = min(window, len(steps))
            line, = ax.plot(steps[w - 1:], moving_average(r["curve"]["post_adapt"], w), label=f"{r['method']}, 1 step")
            ax.plot(steps[w - 1:], moving_average(r["curve"]["pre_adapt"], w), color=line.get_color(), ls=":",
                    label=f"{r['method']}, 0 steps")
            if "evaluation" in r:
                ax.errorbar(steps[-1], r["evaluation"]["success"][1]["mean"], r["evaluation"]["success"][1]["ci95"],
                            color=line.get_color(), marker="o", label=f"{r['method']}, held-out, 1 step")
        ax.set(title=f"ML1 {cls}", xlabel="environment steps (M)", ylabel=f"success rate ({window}-iteration mean)",
               ylim=(-0.02, 1.02))
        ax.legend(fontsize=8)
    fig.tight_layout()
    results_io.save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="*", default=RUNS[:4], choices=RUNS)
    parser.add_argument("--hours", type=float, default=Rule.hours, help="training budget per run (default 2)")
    parser.add_argument("--window", type=int, default=Rule.window)
    parser.add_argument("--patience", type=int, default=Rule.patience)
    parser.add_argument("--min-delta", type=float, default=Rule.min_delta)
    parser.add_argument("--iterations", type=int, default=0, help="cap per run (smoke runs; 0: none)")
    parser.add_argument("--sitting-hours", type=float, default=math.inf, help="start no training chunk after this")
    parser.add_argument("--set", dest="sets", action="append", default=[], help="extra setting for every run")
    parser.add_argument("--eval-tasks", type=int, default=EVAL_TASKS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rule = Rule(args.hours, args.window, args.patience, args.min_delta, args.iterations)
    deadline = time.monotonic() + args.sitting_hours * 3600
    runs_dir, out = args.out / "metaworld_runs", args.out / "metaworld"
    previous = {name: run for name, run in recorded_runs(out.with_suffix(".json")).items()
                if last_iteration(runs_dir / name) == 0}  # recorded, folder not here
    recorded = {name: run for name, run in previous.items() if "evaluation" in run}  # and finished
    for name in args.runs:
        if name in recorded:
            print(f"{name}: kept as {out.name}.json records it (its folder is not here; delete the entry to retrain)")
            continue
        if name in previous:
            print(f"warning: {name} is recorded unfinished but its folder is not here: it starts over")
        train(runs_dir / name, name, args.sets, rule, deadline)
    here = {name for name in RUNS if last_iteration(runs_dir / name) > 0}  # trained on this machine
    runs = {name: summary(runs_dir / name, name, args.sets, rule, args.eval_tasks) if name in here else previous[name]
            for name in RUNS if name in here or name in previous}
    result = {"machine": f"this project's {platform.machine()} VM, {len(os.sched_getaffinity(0))} CPUs",
              "rule": dataclasses.asdict(rule), "extra_sets": args.sets, "eval_tasks": args.eval_tasks, "runs": runs,
              "published": PUBLISHED, "ml10": ml10_line()}
    results_io.write_text(out.with_suffix(".json"), json.dumps(result, indent=1) + "\n")
    results_io.write_text(out.with_suffix(".md"), markdown(result))
    plot(result, out.with_suffix(".png"))
    print(relative(f"wrote {out}.json, .md and .png"))


if __name__ == "__main__":
    results_io.run(main)
