"""Small measured ablations quoted in the README, each a CLI run of a shipped config with a few ``--set`` values.

* ``trpo.subsample`` (rllab's ``subsample_factor`` [2]) for MAML-TRPO [1] on the main job
  (``configs/quickstart.yaml``, HalfCheetahDir): exact curvature products against products on 20 % and 10 %
  of the episodes at equal iterations (40), and 10 % at about equal wall time (80 iterations);
* the MAML paper's navigation evaluation (α 0.5 then 0.25, 40 episodes) on a policy meta-trained at α 0.1 —
  against the same policy evaluated with its own α — to show why the zoo's navigation entry trains at α 0.5.

Every run is trained (or reused, or resumed) in ``benchmarks/results/ablation_runs/`` and evaluated on 40
held-out tasks.

Usage::

    python benchmarks/ablations.py

Writes ``benchmarks/results/ablations.{md,json}`` (each run's training seconds in the JSON).

References:
    [1] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
    [2] Duan, Chen, Houthooft, Schulman & Abbeel, "Benchmarking Deep Reinforcement Learning for Continuous
        Control", ICML 2016 (rllab). https://arxiv.org/abs/1604.06778
"""

from __future__ import annotations

import json
import time

import results_io
from cli_runs import ROOT, cli, last_iteration, train_to

RUNS = ROOT / "benchmarks" / "results" / "ablation_runs"
NAV_PAPER_EVAL = ["--episodes", "40", "--inner-lr", "0.5", "0.25"]

# (name, config, overrides, [(evaluation label, extra evaluate arguments), ...])
ENTRIES: list[tuple[str, str, list[str], list[tuple[str, list[str]]]]] = [
    ("quickstart exact curvature, 40 its", "quickstart", ["train.iterations=40"], [("own α", [])]),
    ("quickstart trpo.subsample=0.2, 40 its", "quickstart", ["train.iterations=40", "trpo.subsample=0.2"],
     [("own α", [])]),
    ("quickstart trpo.subsample=0.1, 40 its", "quickstart", ["train.iterations=40", "trpo.subsample=0.1"],
     [("own α", [])]),
    ("quickstart trpo.subsample=0.1, 80 its", "quickstart", ["train.iterations=80", "trpo.subsample=0.1"],
     [("own α", [])]),
    ("navigation2d trained at α 0.1, 200 its", "navigation2d", ["train.iterations=200", "trpo.subsample=0.1"],
     [("own α 0.1, 40 episodes", ["--episodes", "40"]), ("paper: α 0.5 then 0.25, 40 episodes", NAV_PAPER_EVAL)]),
]


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")


def main() -> None:
    RUNS.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, config, overrides, evaluations in ENTRIES:
        run_dir = RUNS / slug(name)
        iterations = int(next(o for o in overrides if o.startswith("train.iterations=")).split("=")[1])
        train_to(run_dir, config, overrides, iterations)
        records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        for label, extra in evaluations:
            out = run_dir / "eval" / f"adaptation_{slug(label)}.json"
            if not out.is_file():
                cli("evaluate", str(run_dir), "--tasks", "40", "--steps", "3", *extra)
                (run_dir / "eval" / "adaptation.json").replace(out)
            summary = json.loads(out.read_text())["adaptation"]
            rows.append({
                "run": name, "evaluation": label, "iterations": last_iteration(run_dir),
                "train_seconds": sum(r["time/iteration"] for r in records),
                "env_steps": sum(r["time/env_steps"] for r in records), "adaptation": summary,
                "command": " ".join(["rl-alphamaml train", f"configs/{config}.yaml", "--run-dir RUN",
                                     *[x for o in overrides for x in ("--set", o)],
                                     "&& rl-alphamaml evaluate RUN --tasks 40 --steps 3", *extra]),
            })
    lines = ["# Ablations quoted in the README", "",
             f"40 held-out tasks, return after 0–3 inner steps ± 95 % CI; 2-core CPU, {time.strftime('%Y-%m-%d')}; "
             "`python benchmarks/ablations.py`.", "",
             "| run | evaluation | env steps | training time | after 0 | after 1 | after 2 | after 3 |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = " | ".join(f"{s['mean']:.1f} ± {s['ci95']:.1f}" for s in r["adaptation"])
        lines.append(f"| {r['run']} | {r['evaluation']} | {r['env_steps'] / 1e6:.1f} M | "
                     f"{r['train_seconds']:.0f} s | {cells} |")
    lines += ["", "Commands:", "", "```bash", *dict.fromkeys(r["command"] for r in rows), "```", ""]
    md = "\n".join(lines)
    print(md)
    results_io.write_text(ROOT / "benchmarks" / "results" / "ablations.md", md)
    results_io.write_text(ROOT / "benchmarks" / "results" / "ablations.json", json.dumps(rows, indent=2))


if __name__ == "__main__":
    results_io.run(main)
