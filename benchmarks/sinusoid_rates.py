"""Sinusoid regression: MAML [1] (fixed rates) versus Alpha MAML [2] (rates by hypergradient [3]).

From good and bad initial rates, same budget. Each run is the CLI's ``rl-alphamaml train`` in-process,
followed by ``evaluate`` on 100 new tasks.

Usage::

    python benchmarks/sinusoid_rates.py                 # 3000 iterations per run
    python benchmarks/sinusoid_rates.py --iterations 500 --out /tmp/quick

Prints a Markdown table and writes ``benchmarks/results/sinusoid_rates.{json,md}`` (each run's seconds in the
JSON).

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
import json
import platform
import time
from pathlib import Path

from rl_alphamaml.cli import load_experiment_config
from rl_alphamaml.logging import read_metrics
from rl_alphamaml.runner import prepare_run_dir, train
from rl_alphamaml.supervised import sinusoid

import results_io

ROOT = Path(__file__).resolve().parents[1]

# (name, config, overrides): the MAML paper's rates, then deliberately bad starts (too small / too large).
RUNS = [
    ("MAML, α=0.01 β=1e-3 (paper)", "sinusoid", []),
    ("Alpha MAML, α₀=0.01 β₀=1e-3", "sinusoid_alpha", []),
    ("Alpha MAML additive rule, α₀=0.01 β₀=1e-3", "sinusoid_alpha",
     ["inner.hd_rule=additive", "outer.hd_rule=additive"]),
    ("MAML, α=1e-4 β=1e-5 (too small)", "sinusoid", ["inner.lr=1e-4", "outer.lr=1e-5"]),
    ("Alpha MAML, α₀=1e-4 β₀=1e-5", "sinusoid_alpha", ["inner.lr=1e-4", "outer.lr=1e-5"]),
    ("MAML, α=0.3 β=0.03 (too large)", "sinusoid", ["inner.lr=0.3", "outer.lr=0.03"]),
    ("Alpha MAML, α₀=0.3 β₀=0.03", "sinusoid_alpha", ["inner.lr=0.3", "outer.lr=0.03"]),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    rows = []
    for i, (name, config_name, overrides) in enumerate(RUNS):
        config, kind = load_experiment_config(
            ROOT / "configs" / f"{config_name}.yaml",
            [*overrides, f"train.iterations={args.iterations}", f"train.checkpoint_every={args.iterations}"],
        )
        run_dir = prepare_run_dir(config, args.out / "sinusoid_runs" / f"run{i}-{time.strftime('%Y%m%d-%H%M%S')}")
        started = time.perf_counter()
        status = train(config, kind.build, run_dir)
        seconds = time.perf_counter() - started
        records = read_metrics(run_dir)
        last = records[-1]
        experiment = kind.build(config, run_dir)
        from rl_alphamaml.checkpoint import latest_checkpoint, load_checkpoint

        experiment.load_state_dict(load_checkpoint(latest_checkpoint(run_dir))["state"])
        result = sinusoid.evaluate(experiment, tasks=100, steps=10, seed=12345)
        summary = result.summary()
        rows.append({
            "run": name, "config": config_name, "overrides": overrides, "status": status,
            "iterations": last["iteration"], "seconds": round(seconds, 1),
            "heldout_pre_mse": summary[0]["mean"], "heldout_post1_mse": summary[1]["mean"],
            "heldout_post1_ci95": summary[1]["ci95"], "heldout_post10_mse": summary[10]["mean"],
            "final_alpha": last["meta/alpha"], "final_beta": last["meta/beta"],
        })
        print(f"{name}: {rows[-1]}", flush=True)
    header = ("| run | held-out MSE before | after 1 step (±95% CI) | after 10 steps | final α | final β |\n"
              "| --- | --- | --- | --- | --- | --- |")
    lines = [header] + [
        f"| {r['run']} | {r['heldout_pre_mse']:.3f} | {r['heldout_post1_mse']:.3f} ± {r['heldout_post1_ci95']:.3f} "
        f"| {r['heldout_post10_mse']:.3f} | {r['final_alpha']:.4g} | {r['final_beta']:.3g} |"
        for r in rows
    ]
    table = "\n".join(lines)
    machine = f"{platform.processor() or platform.machine()}, {platform.system()}"
    note = (f"{args.iterations} meta-iterations per run, meta-batch 25, 100 new tasks for evaluation "
            f"(seed 12345); machine: {machine}.")
    print(f"\n{note}\n\n{table}")
    args.out.mkdir(parents=True, exist_ok=True)
    results_io.write_text(args.out / "sinusoid_rates.json", json.dumps({"note": note, "rows": rows}, indent=2))
    results_io.write_text(args.out / "sinusoid_rates.md", f"{note}\n\n{table}\n")


if __name__ == "__main__":
    results_io.run(main)
