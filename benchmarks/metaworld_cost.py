"""The cost of a Meta-World meta-iteration here: a short run of a shipped Meta-World config, timed per phase.

Meta-World's simulators are single Python environments, one per slot (``envs.BatchedEnv``'s ``gymnasium``
backend), so a meta-iteration of ML10 (Yu et al. 2019 [1]) — 20 tasks × 10 episodes × 500 steps, before and after
adaptation: 200,000 environment steps — costs minutes on a laptop-sized machine. This trains ``--iterations`` of
``configs/<config>.yaml`` through the CLI and reports the seconds per iteration, per phase (sampling, adaptation,
the outer step) and the environment steps per second, from the run's ``metrics.jsonl``; a full run's length
follows, and with it the case for the Ray backend (``--set sampler.backend=ray --set sampler.address=auto``).

Needs the Meta-World extra (``pip install -e ".[metaworld]"``). Usage::

    python benchmarks/metaworld_cost.py                          # ML10, 2 iterations
    python benchmarks/metaworld_cost.py --config metaworld_ml1_reach

Writes ``benchmarks/results/metaworld_cost_<config>.{md,json}``; the run folder is reused when finished.

References:
    [1] Yu, Quillen, He, Julian, Hausman, Finn & Levine, "Meta-World: A Benchmark and Evaluation for Multi-Task
        and Meta Reinforcement Learning", CoRL 2019. https://arxiv.org/abs/1910.10897
"""

from __future__ import annotations

import argparse
import json
import os
import platform

from rl_alphamaml.cli import load_experiment_config
from rl_alphamaml.logging import read_metrics

import results_io
from cli_runs import ROOT, relative, train_to

RESULTS = ROOT / "benchmarks" / "results"
PHASES = ("time/sampling", "time/adaptation", "time/outer", "time/iteration")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="metaworld_ml10", help="a Meta-World config in configs/")
    parser.add_argument("--iterations", type=int, default=2, help="meta-iterations to time")
    args = parser.parse_args()
    folder = RESULTS / "metaworld_cost_runs" / args.config
    sets = [f"train.iterations={args.iterations}", "train.checkpoint_every=1"]
    train_to(folder, args.config, sets, args.iterations)
    rows = read_metrics(folder)
    config = load_experiment_config(ROOT / "configs" / f"{args.config}.yaml", sets)[0]
    planned = load_experiment_config(ROOT / "configs" / f"{args.config}.yaml")[0].train.iterations
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in PHASES}
    steps = sum(r["time/env_steps"] for r in rows) / len(rows)
    command = relative(f"rl-alphamaml train configs/{args.config}.yaml --run-dir {folder} "
                       + " ".join(f"--set {s}" for s in sets))
    result = {"config": args.config, "env": config.env.id, "command": command, "iterations": rows,
              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "planned_iterations": planned}
    lines = [f"# The cost of a meta-iteration: `configs/{args.config}.yaml`", "",
             f"{config.env.id}, {config.train.meta_batch} tasks × {config.sampler.episodes} episodes × "
             f"{config.env.horizon} steps before and after adaptation ({steps:,.0f} environment steps per iteration); "
             f"{len(rows)} iterations on this project's {result['machine']}. Command: `{command}`.", "",
             "| iteration | sampling (s) | adaptation (s) | outer step (s) | whole iteration (s) | env steps/s |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['iteration']} | {r['time/sampling']:.1f} | {r['time/adaptation']:.1f} | {r['time/outer']:.1f} | "
              f"{r['time/iteration']:.1f} | {r['time/env_steps_per_second']:,.0f} |" for r in rows]
    lines += ["", f"At the mean, {mean['time/iteration']:.0f} s per iteration: the config's {planned} iterations "
              f"would take {planned * mean['time/iteration'] / 3600:.1f} h here.", ""]
    out = RESULTS / f"metaworld_cost_{args.config}"
    results_io.write_text(out.with_suffix(".md"), "\n".join(lines))
    results_io.write_text(out.with_suffix(".json"), json.dumps(result, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    results_io.run(main)
