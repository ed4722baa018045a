"""Omniglot 5-way 1-shot at a CPU budget: MAML [1] against Alpha MAML [2] from the same start (docs/benchmarks.md).

Two CLI runs of the shipped configs — ``configs/omniglot_5w1s.yaml`` (MAML: α 0.4, Adam β 0.001, fixed) and
``configs/omniglot_5w1s_alpha.yaml`` (Alpha MAML: both rates by hypergradient descent [3] from the same values)
— trained for ``--iterations`` meta-iterations of 32 tasks (the MAML paper trains 60,000) on the split of [4]
and evaluated with MAML's protocol: accuracy after 3 steps on 600 tasks of the held-out characters of
Omniglot [5] (± 95 % CI). Runs are trained (or reused, or resumed) in ``benchmarks/results/omniglot_runs/``.

Usage::

    python benchmarks/omniglot_budget.py                  # 3000 iterations per run
    python benchmarks/omniglot_budget.py --data /path/to/omniglot

Writes ``benchmarks/results/omniglot_budget.{md,json}`` (each run's training seconds in the JSON).

References:
    [1] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
    [2] Behl, Baydin & Torr, "Alpha MAML: Adaptive Model-Agnostic Meta-Learning", 2019.
        https://arxiv.org/abs/1905.07435
    [3] Baydin, Cornish, Martínez Rubio, Schmidt & Wood, "Online Learning Rate Adaptation with Hypergradient
        Descent", ICLR 2018. https://arxiv.org/abs/1703.04782
    [4] Vinyals, Blundell, Lillicrap, Kavukcuoglu & Wierstra, "Matching Networks for One Shot Learning",
        NeurIPS 2016. https://arxiv.org/abs/1606.04080
    [5] Lake, Salakhutdinov & Tenenbaum, "Human-level concept learning through probabilistic program
        induction", Science 2015. https://doi.org/10.1126/science.aab3050
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rl_alphamaml.logging import read_metrics

import results_io
from cli_runs import OMNIGLOT_HELP, ROOT, evaluate_once, last_iteration, omniglot_root, train_to

RUNS = ROOT / "benchmarks" / "results" / "omniglot_runs"
OUT = ROOT / "benchmarks" / "results" / "omniglot_budget"
ENTRIES = [("MAML (α 0.4, Adam β 0.001, fixed)", "omniglot_5w1s"),
           ("Alpha MAML (same start, both by hypergradient)", "omniglot_5w1s_alpha")]
PAPER = ("MAML paper, 60,000 iterations", 98.7, 0.4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=3000, help="meta-iterations per run (default 3000)")
    parser.add_argument("--data", type=Path, default=None, help=OMNIGLOT_HELP)
    args = parser.parse_args()
    root = omniglot_root(args.data)
    sets = [f"train.iterations={args.iterations}", *([f"data.root={root}"] if root is not None else [])]

    rows = []
    for name, config in ENTRIES:
        run_dir = RUNS / config
        train_to(run_dir, config, sets, args.iterations)
        accuracy = evaluate_once(run_dir, "--tasks", "600", "--steps", "3")["accuracy"]
        records = read_metrics(run_dir)
        last = records[-1]
        rows.append({
            "run": name, "config": config, "iterations": last_iteration(run_dir),
            "train_seconds": sum(r.get("time/iteration_s", 0.0) + r.get("time/validation_s", 0.0) for r in records),
            "accuracy": accuracy, "final_alpha": last["meta/alpha"], "final_beta": last["meta/beta"],
            "command": " ".join(["RL_ALPHAMAML_OMNIGLOT=/path/to/omniglot rl-alphamaml train",
                                 f"configs/{config}.yaml", "--run-dir RUN --set", f"train.iterations={args.iterations}",
                                 "&& rl-alphamaml evaluate RUN --tasks 600 --steps 3"]),
        })

    lines = ["# Omniglot 5-way 1-shot at a CPU budget", "",
             f"{args.iterations} meta-iterations × 32 tasks per run, then 600 tasks of held-out characters: "
             f"accuracy after 3 steps ± 95 % CI; 2-core CPU, {time.strftime('%Y-%m-%d')}; "
             f"`python benchmarks/omniglot_budget.py --iterations {args.iterations}`.",
             "", "| config | accuracy | final α | final β | training time |", "| --- | --- | --- | --- | --- |"]
    for r in rows:
        a = r["accuracy"]
        lines.append(f"| {r['run']} | {100 * a['mean']:.2f} ± {100 * a['ci95']:.2f} % | {r['final_alpha']:.3g} "
                     f"| {r['final_beta']:.2g} | {r['train_seconds'] / 60:.1f} min |")
    lines += [f"| {PAPER[0]} | {PAPER[1]} ± {PAPER[2]} % | | | |", "",
              "Commands (RUN: any new folder; the data root holds the two official zips, docs/omniglot.md):", "",
              "```bash", *[r["command"] for r in rows], "```", ""]
    md = "\n".join(lines)
    print(md)
    results_io.write_text(OUT.with_suffix(".md"), md)
    results_io.write_text(OUT.with_suffix(".json"), json.dumps({"iterations": args.iterations, "rows": rows}, indent=2))


if __name__ == "__main__":
    results_io.run(main)
