"""The cost of a Meta-World meta-iteration here: a short run of a shipped Meta-World config, timed per phase.

Meta-World's simulators are single Python environments, one per slot (``envs.BatchedEnv``'s ``gymnasium``
backend), so a meta-iteration of ML10 (Yu et al. 2019 [1]) — 20 tasks × 10 episodes × 500 steps, before and after
adaptation: 200,000 environment steps — costs minutes on a laptop-sized machine. This trains ``--iterations`` of
``configs/<config>.yaml`` through the CLI and reports the seconds per iteration, per phase (sampling, adaptation,
the outer step) and the environment steps per second, from the run's ``metrics.jsonl``; a full run's length
follows. It times both sampler backends (``--backends``): the local one steps every slot in this process, on one
core (Meta-World's simulators are Python objects), and the Ray one spreads the tasks over one actor per CPU —
here, a local Ray instance — with the same episodes (``agents/ray_sampler.py``); on a cluster the same setting
adds machines (``--set sampler.backend=ray --set sampler.address=auto``).

Needs the Meta-World extra (``pip install -e ".[metaworld]"``). Usage::

    python benchmarks/metaworld_cost.py                          # ML10, 2 iterations on each backend
    python benchmarks/metaworld_cost.py --config metaworld_ml1_reach --backends local ray

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
from typing import Any

from rl_alphamaml.cli import load_experiment_config
from rl_alphamaml.logging import read_metrics

import results_io
from cli_runs import ROOT, last_iteration, relative, train_to

RESULTS = ROOT / "benchmarks" / "results"
#: backend → the ``--set`` values that select it (``ray``: a local Ray instance, one actor per CPU)
BACKENDS = {"local": [], "ray": ["sampler.backend=ray"]}
#: how the results (and metaworld_results.py's ML10 line) name each backend
BACKEND_LABELS = {"local": "sampling in the learner's process (one core)",
                  "ray": "on a local Ray instance (one actor per CPU)"}


def measure(config: str, backend: str, iterations: int, earlier: dict[str, Any] | None) -> dict[str, Any]:
    """Train ``iterations`` of ``configs/<config>.yaml`` on ``backend`` and return its command, per-iteration
    metrics and the 1-minute load average before and after training. A finished run folder is reused, with the
    load its ``earlier`` record measured (none when there is no record)."""
    folder = RESULTS / "metaworld_cost_runs" / (config if backend == "local" else f"{config}_{backend}")
    sets = [f"train.iterations={iterations}", "train.checkpoint_every=1", *BACKENDS[backend]]
    trains = last_iteration(folder) < iterations
    load_before = os.getloadavg()[0]
    train_to(folder, config, sets, iterations)
    load = [load_before, os.getloadavg()[0]] if trains else (earlier or {}).get("load_average")
    return {"command": relative(f"rl-alphamaml train configs/{config}.yaml --run-dir {folder} "
                                + " ".join(f"--set {s}" for s in sets)),
            "iterations": read_metrics(folder), "load_average": load}


def mean(rows: list[dict[str, float]], key: str) -> float:
    """The mean of ``key`` over the iterations' metrics ``rows``."""
    return sum(r[key] for r in rows) / len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="metaworld_ml10", help="a Meta-World config in configs/")
    parser.add_argument("--iterations", type=int, default=2, help="meta-iterations to time per backend")
    parser.add_argument("--backends", nargs="+", default=["local", "ray"], choices=list(BACKENDS),
                        help="sampler backends to time, one after another (ray needs the distributed extra)")
    args = parser.parse_args()
    config = load_experiment_config(ROOT / "configs" / f"{args.config}.yaml")[0]
    out = RESULTS / f"metaworld_cost_{args.config}"
    kept = out.with_suffix(".json")
    earlier = json.loads(kept.read_text()).get("backends", {}) if kept.is_file() else {}
    backends = {b: measure(args.config, b, args.iterations, earlier.get(b)) for b in args.backends}
    result = {"config": args.config, "env": config.env.id, "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
              "planned_iterations": config.train.iterations, "backends": backends}
    first = next(iter(backends.values()))["iterations"]
    steps = mean(first, "time/env_steps")
    lines = [f"# The cost of a meta-iteration: `configs/{args.config}.yaml`", "",
             f"{config.env.id}, {config.train.meta_batch} tasks × {config.sampler.episodes} episodes × "
             f"{config.env.horizon} steps before and after adaptation ({steps:,.0f} environment steps per iteration); "
             f"{args.iterations} iterations per sampler backend, one backend after the other, on this project's "
             f"{result['machine']} (1-minute load average before and after each in the JSON).", "",
             "| backend | iteration | sampling (s) | adaptation (s) | outer step (s) | whole iteration (s) "
             "| env steps/s |",
             "|---|---|---|---|---|---|---|"]
    for name, b in backends.items():
        lines += [f"| {name} | {r['iteration']} | {r['time/sampling']:.1f} | {r['time/adaptation']:.1f} | "
                  f"{r['time/outer']:.1f} | {r['time/iteration']:.1f} | {r['time/env_steps_per_second']:,.0f} |"
                  for r in b["iterations"]]
    lines.append("")
    reference, reference_name = mean(first, "time/iteration"), next(iter(backends))
    for name, b in backends.items():
        seconds, sampling = mean(b["iterations"], "time/iteration"), mean(b["iterations"], "time/sampling")
        lines.append(f"- {name}, {BACKEND_LABELS[name]}: {seconds:.0f} s per iteration at the mean "
                     f"({seconds / reference:.2f}× {reference_name}'s; sampling {sampling:.0f} s), so the config's "
                     f"{config.train.iterations} iterations would take "
                     f"{config.train.iterations * seconds / 3600:.1f} h here. Command: `{b['command']}`")
    lines.append("")
    results_io.write_text(out.with_suffix(".md"), "\n".join(lines))
    results_io.write_text(out.with_suffix(".json"), json.dumps(result, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    results_io.run(main)
