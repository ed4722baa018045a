"""Held-out adaptation of meta-trained policies versus the MAML paper's [1] numbers.

Trains each listed config with the CLI's training loop for a stated budget, then evaluates on new tasks
(returns after 0…3 inner steps, fresh episodes after each step) exactly as `rl-alphamaml evaluate` does.

Usage::

    python benchmarks/rl_adaptation.py navigation2d navigation2d_alpha --iterations 100
    python benchmarks/rl_adaptation.py halfcheetah_dir --iterations 40 --set train.meta_batch=20 \\
        --set sampler.episodes=10

Prints a Markdown table and writes ``benchmarks/results/rl_adaptation_<configs>.{json,md}`` (each run's
training seconds in the JSON).

References:
    [1] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from rl_alphamaml import seeding
from rl_alphamaml.checkpoint import latest_checkpoint, load_checkpoint
from rl_alphamaml.cli import load_experiment_config
from rl_alphamaml.logging import read_metrics
from rl_alphamaml.runner import prepare_run_dir, set_threads, train

import results_io
from cli_runs import ROOT, relative
from maml_paper import PAPER as MAML_PAPER

#: returns after 0/1/2/3 gradient steps in the MAML paper, by environment id
PAPER = {paper["env"]: paper["maml"] for paper in MAML_PAPER.values()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+", help="config names in configs/, e.g. navigation2d")
    parser.add_argument("--iterations", type=int, required=True, help="meta-iterations per run (the budget)")
    parser.add_argument("--set", action="append", default=[], help="extra overrides for every run")
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    rows = []
    for name in args.configs:
        config, kind = load_experiment_config(
            ROOT / "configs" / f"{name}.yaml",
            [*args.set, f"train.iterations={args.iterations}", f"train.checkpoint_every={args.iterations}"],
        )
        run_dir = prepare_run_dir(config, args.out / "rl_runs" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}")
        started = time.perf_counter()
        train(config, kind.build, run_dir)
        train_seconds = time.perf_counter() - started
        records = read_metrics(run_dir)
        set_threads(config)
        experiment = kind.build(config, run_dir)
        payload = load_checkpoint(latest_checkpoint(run_dir))
        experiment.load_state_dict(payload["state"])
        result = kind.evaluate(experiment, args.tasks, args.steps, seed=seeding.evaluation_seed(config.seed))
        summary = result.summary()
        first = records[0]
        last = records[-1]
        rows.append({
            "config": name, "env": config.env.id, "iterations": len(records), "train_seconds": round(train_seconds),
            "env_steps": sum(r["time/env_steps"] for r in records),
            "first_iteration": {"pre": first["returns/pre_adapt"], "post": first["returns/post_adapt"]},
            "last_iteration": {"pre": last["returns/pre_adapt"], "post": last["returns/post_adapt"]},
            "heldout": summary, "final_alpha": last["meta/alpha"], "final_beta": last["meta/beta"],
            "paper": PAPER.get(config.env.id), "run_dir": relative(str(run_dir.resolve())),
        })
        print(json.dumps(rows[-1]), flush=True)
    steps = range(args.steps + 1)
    header = ("| config | iterations (env steps) | " + " | ".join(f"after {k} steps" for k in steps)
              + " | final α | final β |\n|" + " --- |" * (len(steps) + 4))
    lines = [header]
    for r in rows:
        cells = " | ".join(f"{s['mean']:.2f} ± {s['ci95']:.2f}" for s in r["heldout"])
        lines.append(f"| {r['config']} | {r['iterations']} ({r['env_steps'] / 1e6:.1f} M) | {cells} "
                     f"| {r['final_alpha']:.3g} | {r['final_beta']:.3g} |")
    for env in dict.fromkeys(r["env"] for r in rows):  # the paper's numbers once per family, last
        paper = PAPER.get(env)
        if paper and len(paper) >= len(steps):
            lines.append(f"| MAML paper ({env.split('/')[1]}) | — | "
                         + " | ".join(f"{v:.2f}" for v in paper[: len(steps)]) + " | | |")
    table = "\n".join(lines)
    note = (f"{args.tasks} held-out tasks, mean return ± 95% CI after each inner step (fresh episodes per step); "
            f"overrides {args.set or 'none'}; {platform.machine()} CPU, {time.strftime('%Y-%m-%d')}.")
    print(f"\n{note}\n\n{table}")
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "rl_adaptation_" + "_".join(args.configs)
    results_io.write_text(args.out / f"{stem}.json", json.dumps({"note": note, "rows": rows}, indent=2))
    results_io.write_text(args.out / f"{stem}.md", f"{note}\n\n{table}\n")


if __name__ == "__main__":
    results_io.run(main)
