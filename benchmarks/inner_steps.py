"""Navigation2D after 2 and 3 steps: per-step inner rates by hypergradient against the MAML paper's hand schedule.

The MAML paper [1] meta-trains Navigation2D for one inner step and adapts for three at test time with a hand
schedule of rates (0.5, then 0.25 for the later steps: cbfinn/maml_rl's test script), reaching −3.33 and −3.23
after 2 and 3 steps. The zoo's run does the same and gets −4.3 / −5.8. Issue 24 asks whether meta-training for three
steps with one rate per step, each by its own hypergradient [2, 3] (``inner.lr_per_step``, ``inner.lr_mode: hd``,
the ``log_adam`` rule) beats that with no schedule given at evaluation. Runs (the zoo's recipe otherwise —
MAML-TRPO, ``trpo.subsample=0.1``, α₀ 0.5, 200 iterations × 20 tasks × 20 episodes):

* ``one_step`` — the zoo's recipe, one inner step, evaluated with the paper's schedule and with α 0.5 throughout;
* ``three_fixed`` — meta-trained for three inner steps, α 0.5 for each, not adapted (is it the steps?);
* ``three_hd`` — three inner steps, α₁, α₂, α₃ each by its own hypergradient (is it the rates?);
* ``three_fixed_all``, ``three_hd_all`` — the same two with every step's return in the meta-loss
  (``outer.meta_loss: all_steps``, MAML++'s multi-step loss [3]) instead of the last step's alone: with the last
  step alone, ``three_hd``'s α₁ grew to 2.25, a first step that wrecks the policy (−102 after it) and that the later
  steps repair;
* ``three_hd_all_per_layer`` — ``three_hd_all`` with one α per parameter tensor in each step (``inner.lr_shape:
  per_layer``, MAML++'s LSLR [3] by hypergradient): every three-step run ended with more action noise than the
  one-step one, and one scalar α moves log σ and the mean's weights alike; with its own α, can adaptation cut σ?

Each is evaluated as the paper does: 40 held-out goals, 40 episodes per adaptation step, 0–3 steps, with the
adapted policies' σ after each step (``evaluate``'s ``action_std``).
The rate probe then evaluates ``three_hd_all`` with each step's learned α halved and × 1.5 (the other steps' as
learned): is a step short of the paper's schedule for its rate? The episode probe evaluates ``one_step`` (with the
schedule) and ``three_hd_all`` (as trained) with 100 and 400 episodes per adaptation step: the paper's test adapts on
4,000 environment steps per step, more than 40 episodes once episodes end at the goal.

Usage::

    python benchmarks/inner_steps.py
    python benchmarks/inner_steps.py --runs one_step three_hd_all_per_layer    # some runs; the others' rows kept
    python benchmarks/inner_steps.py --iterations 1 --eval-tasks 2 --eval-episodes 2 --set train.meta_batch=2 \\
        --set sampler.episodes=2 --runs-dir /tmp/steps --out /tmp/steps/inner_steps    # a smoke run

Writes ``benchmarks/results/inner_steps.{md,json}`` (``--out``); finished runs are reused, interrupted ones resumed,
and an evaluation is kept per checkpoint (``eval/<name>_iterN.json``), so a longer budget evaluates anew.

References:
    [1] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
    [2] Behl, Baydin & Torr, "Alpha MAML: Adaptive Model-Agnostic Meta-Learning", 2019.
        https://arxiv.org/abs/1905.07435
    [3] Antoniou, Edwards & Storkey, "How to train your MAML", ICLR 2019 (per-step rates, multi-step loss).
        https://arxiv.org/abs/1810.09502
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path
from typing import Any

from rl_alphamaml.checkpoint import checkpoint_path, load_checkpoint, restore_state
from rl_alphamaml.cli import load_experiment_config
from rl_alphamaml.logging import read_metrics

import results_io
from cli_runs import ROOT, evaluate_kept, last_iteration, relative, train_to
from maml_paper import PAPER

RESULTS = ROOT / "benchmarks" / "results"
RUNS = RESULTS / "inner_steps_runs"
ITERATIONS = 200
#: the zoo's Navigation2D recipe (``benchmarks/build_zoo.py``), ``train.iterations`` aside
COMMON = ["trpo.subsample=0.1", "inner.lr=0.5", "train.checkpoint_every=25"]
PER_STEP_HD = ("inner.steps=3", "inner.lr_per_step=true", "inner.lr_mode=hd", "inner.hd_rule=log_adam")
#: run → (description, extra ``--set`` values)
RUNS_SPEC: dict[str, tuple[str, tuple[str, ...]]] = {
    "one_step": ("one inner step (the zoo's recipe)", ()),
    "three_fixed": ("three inner steps, α 0.5 for each", ("inner.steps=3",)),
    "three_hd": ("three inner steps, α₁ α₂ α₃ by hypergradient (`log_adam`)", PER_STEP_HD),
    "three_fixed_all": ("three inner steps, α 0.5 for each, every step in the meta-loss",
                        ("inner.steps=3", "outer.meta_loss=all_steps")),
    "three_hd_all": ("three inner steps, α₁ α₂ α₃ by hypergradient, every step in the meta-loss",
                     (*PER_STEP_HD, "outer.meta_loss=all_steps")),
    "three_hd_all_per_layer": ("three inner steps, α₁ α₂ α₃ by hypergradient, one per parameter tensor, every step "
                               "in the meta-loss",
                               (*PER_STEP_HD, "outer.meta_loss=all_steps", "inner.lr_shape=per_layer")),
}
#: the runs whose rates are learned per step: issue 24's goal is judged on each of them
LEARNED = ("three_hd", "three_hd_all", "three_hd_all_per_layer")
#: the paper's protocol: 40 held-out goals, 40 episodes per adaptation step
EVAL_TASKS, EVAL_EPISODES = 40, 40
#: the paper's test-time schedule (cbfinn/maml_rl ``maml_examples/test_maml_point.py``): 0.5, then 0.25
SCHEDULE = ["--inner-lr", "0.5", "0.25"]
#: the rate probe: the learned-rate run whose rates are probed, and the factors each step's learned α is scaled by at
#: evaluation, one step at a time (``evaluate --inner-lr``) — is a step short of the paper's schedule for its rate?
PROBED, PROBE_FACTORS = "three_hd_all", (0.5, 1.5)
#: the episode probe (why: :func:`batch_lines`' table text): (run, its evaluation's name and options, episodes)
EPISODE_PROBE = (("one_step", "paper_schedule", SCHEDULE, 100), ("one_step", "paper_schedule", SCHEDULE, 400),
                 ("three_hd_all", "as_trained", [], 400))
#: how the tables name an evaluation (its kept report's name → the main table's "evaluated with")
EVALUATIONS = {"as_trained": "as trained", "paper_schedule": "the paper's schedule (0.5, then 0.25)"}


def cell(result: dict[str, float]) -> str:
    """``mean ± ci95`` of one adaptation step."""
    return f"{result['mean']:.2f} ± {result['ci95']:.2f}"


def evaluate_options(tasks: int, episodes: int) -> list[str]:
    """``rl-alphamaml evaluate`` options: ``tasks`` held-out goals, 0–3 steps, ``episodes`` per adaptation step."""
    return ["--tasks", str(tasks), "--steps", "3", "--episodes", str(episodes)]


def row(report: dict[str, Any]) -> dict[str, Any]:
    return {"adaptation": [{"mean": r["mean"], "ci95": r["ci95"]} for r in report["adaptation"]],
            "alpha": report.get("alpha"), "alpha_steps": report.get("alpha_steps"),
            "action_std": report.get("action_std")}


def log_std_rates(folder: Path, at: int) -> list[float]:
    """log σ's own α in each inner step of a run with one α per parameter tensor (``inner.lr_shape: per_layer``), from
    its checkpoint ``at``: the run's experiment rebuilt from its config, the checkpoint restored, and each step's α
    of ``log_std`` (``InnerRate.for_params``)."""
    config, kind = load_experiment_config(folder / "config.yaml", [])
    experiment = kind.build(config, None)
    try:
        path = checkpoint_path(folder, at)
        restore_state(experiment, load_checkpoint(path, kind="rl"), path)
        return [float(experiment.meta.alpha.for_params(j)["log_std"]) for j in range(config.inner.steps)]
    finally:
        experiment.close()


def verdict(rows: list[dict[str, Any]], paper: list[float]) -> str:
    """Whether each run with per-step rates, evaluated as trained, beats the paper's schedule after 2 and 3 steps
    (each run judged on its own: picking the better one on these same goals would flatter the result)."""
    parts = []
    for r in rows:
        if r["run"] in LEARNED:
            ours = r["adaptation"]
            met = all(ours[k]["mean"] > paper[k] for k in (2, 3))
            cells = "; ".join(f"{cell(ours[k])} against {paper[k]:g} after {k} steps"
                              for k in (2, 3))
            parts.append(f"{r['what']}: {'met' if met else 'not met'} — {cells}")
    return ("Issue 24's goal (per-step rates by hypergradient, no schedule at evaluation, beat the paper's schedule "
            f"after 2 and 3 steps): {'. '.join(parts)}. One seed: the ± is over the held-out goals only.")


def rate_probe(folder: Path, at: int, evaluate: list[str], learned: list[float]) -> list[dict[str, Any]]:
    """The run in ``folder`` evaluated with each step's ``learned`` α scaled by :data:`PROBE_FACTORS`, the other
    steps' α as learned."""
    probes = []
    for step in range(1, len(learned) + 1):
        for factor in PROBE_FACTORS:
            alphas = [float(f"{a * factor if j == step else a:.4g}") for j, a in enumerate(learned, start=1)]
            option = ["--inner-lr", *(f"{a:g}" for a in alphas)]
            report = evaluate_kept(folder, f"probe_step{step}_x{factor:g}_iter{at}", *evaluate, *option)
            probes.append({"step": step, "factor": factor, "alphas": alphas,
                           "evaluate": " ".join([*evaluate, *option]), **row(report)})
    return probes


def probe_lines(probe: list[dict[str, Any]], trained: dict[str, Any]) -> list[str]:
    """The rate probe's table: the return after each probed step, and after the last, with its α as learned and
    scaled."""
    last = len(trained["adaptation"]) - 1
    header = " | ".join(f"α × {f:g}" for f in PROBE_FACTORS)
    lines = [f"Rate probe ({trained['what']}): each step's learned α scaled at evaluation, the other steps' α as "
             f"learned; the return after that step and after {last} steps:", "",
             f"| step | learned α | after that step: as learned | {header} | after {last} steps: as learned | "
             f"{header} |", "|---" * (4 + 2 * len(PROBE_FACTORS)) + "|"]

    for step in sorted({p["step"] for p in probe}):
        scaled = [p for f in PROBE_FACTORS for p in probe if p["step"] == step and p["factor"] == f]
        lines.append(f"| {step} | {trained['alpha_steps'][step - 1]:.3g} | {cell(trained['adaptation'][step])} | "
                     + " | ".join(cell(p["adaptation"][step]) for p in scaled)
                     + f" | {cell(trained['adaptation'][last])} | "
                     + " | ".join(cell(p["adaptation"][last]) for p in scaled) + " |")
    return [*lines, ""]


def batch_lines(batch: list[dict[str, Any]], rows: list[dict[str, Any]], episodes: int) -> list[str]:
    """The episode probe's table: each probed evaluation with ``episodes`` per adaptation step (the main table's) and
    with more."""
    lines = ["Episode probe: the paper's test script adapts on 4,000 environment steps per step (rllab's VPG batch "
             "counts steps, in whole episodes), so once episodes end at the goal its batch holds more than 40 episodes "
             "— 400 if they lasted 10 steps. The same runs and goals with more episodes per adaptation step:", "",
             "| meta-trained with | evaluated with | episodes per step | after 0 steps | after 1 step | after 2 steps "
             "| after 3 steps |", "|---|---|---|---|---|---|---|"]
    for key in dict.fromkeys((b["run"], b["evaluation"]) for b in batch):
        main = next(r for r in rows if (r["run"], r["evaluation"]) == key)
        for r, n in ((main, episodes), *((b, b["episodes"]) for b in batch if (b["run"], b["evaluation"]) == key)):
            lines.append(f"| {r['what']} | {r['evaluation']} | {n} | {' | '.join(map(cell, r['adaptation']))} |")
    return [*lines, ""]


def kept(previous: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``new`` rows, with the ``previous`` ones of every run not measured anew (and still in :data:`RUNS_SPEC`), in
    :data:`RUNS_SPEC`'s order."""
    measured, order = {r["run"] for r in new}, list(RUNS_SPEC)
    old = [r for r in previous if r["run"] in RUNS_SPEC and r["run"] not in measured]
    return sorted([*old, *new], key=lambda r: order.index(r["run"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--iterations", type=int, default=ITERATIONS, help=f"per run (default {ITERATIONS})")
    parser.add_argument("--eval-tasks", type=int, default=EVAL_TASKS, help=f"held-out goals (default {EVAL_TASKS})")
    parser.add_argument("--eval-episodes", type=int, default=EVAL_EPISODES,
                        help=f"episodes per adaptation step (default {EVAL_EPISODES})")
    parser.add_argument("--set", action="append", default=[], dest="sets", metavar="KEY=VALUE",
                        help="more --set values for every run (a smoke run's smaller batch)")
    parser.add_argument("--runs-dir", type=Path, default=RUNS, help="where the run folders go")
    parser.add_argument("--out", type=Path, default=RESULTS / "inner_steps", help="results path without suffix")
    parser.add_argument("--runs", nargs="+", choices=list(RUNS_SPEC), default=list(RUNS_SPEC),
                        help="the runs to train and evaluate (default all); the others keep their rows from the "
                        "JSON of --out")
    args = parser.parse_args()
    settings = {"iterations": args.iterations, "eval_tasks": args.eval_tasks, "eval_episodes": args.eval_episodes,
                "sets": args.sets}
    previous = json.loads(args.out.with_suffix(".json").read_text()) if args.out.with_suffix(".json").is_file() else {}
    # a report from before its settings were recorded was made with the defaults (its table says so)
    recorded = previous.get("settings", {"iterations": ITERATIONS, "eval_tasks": EVAL_TASKS,
                                         "eval_episodes": EVAL_EPISODES, "sets": []})
    if previous and set(args.runs) != set(RUNS_SPEC) and recorded != settings:
        parser.error(f"--runs keeps the other runs' rows from {args.out.with_suffix('.json')}, which were made with "
                     f"{recorded}, not {settings}: give the same settings, or another --out")
    evaluate = evaluate_options(args.eval_tasks, args.eval_episodes)
    rows: list[dict[str, Any]] = []
    probe: list[dict[str, Any]] = []
    batch: list[dict[str, Any]] = []
    for name, (what, extra) in RUNS_SPEC.items():
        if name not in args.runs:
            continue
        folder = args.runs_dir / f"navigation2d-{name}"
        sets = [f"train.iterations={args.iterations}", *COMMON, *extra, *args.sets]
        train_to(folder, "navigation2d", sets, args.iterations)
        records = read_metrics(folder)
        at = last_iteration(folder)
        base = {"run": name, "what": what, "run_dir": relative(str(folder)), "iteration": at,
                "seconds": sum(r["time/iteration"] for r in records),
                "env_steps": sum(r["time/env_steps"] for r in records),
                "policy_std": records[-1]["policy/std"],  # the meta-learned σ of the policy's actions (±1 → ±0.1)
                "command": relative(" ".join(["rl-alphamaml train configs/navigation2d.yaml --run-dir", str(folder),
                                              *[x for s in sets for x in ("--set", s)]]))}
        if "inner.lr_shape=per_layer" in extra:
            base["log_std_alpha"] = log_std_rates(folder, at)
        rows.append({**base, "evaluation": EVALUATIONS["as_trained"], "evaluate": " ".join(evaluate),
                     **row(evaluate_kept(folder, f"as_trained_iter{at}", *evaluate))})
        if name == "one_step":
            rows.append({**base, "evaluation": EVALUATIONS["paper_schedule"],
                         "evaluate": " ".join([*evaluate, *SCHEDULE]),
                         **row(evaluate_kept(folder, f"paper_schedule_iter{at}", *evaluate, *SCHEDULE))})
        if name == PROBED and rows[-1]["alpha_steps"]:
            probe = rate_probe(folder, at, evaluate, rows[-1]["alpha_steps"])
        for run, label, option, episodes in EPISODE_PROBE:
            if run == name:
                more = [*evaluate_options(args.eval_tasks, episodes), *option]
                batch.append({"run": name, "what": what, "run_dir": base["run_dir"], "episodes": episodes,
                              "evaluation": EVALUATIONS[label], "evaluate": " ".join(more),
                              **row(evaluate_kept(folder, f"{label}_episodes{episodes}_iter{at}", *more))})
    rows, batch = kept(previous.get("rows", []), rows), kept(previous.get("episode_probe", []), batch)
    probe = probe or ([] if PROBED in args.runs else previous.get("rate_probe", []))
    paper = list(PAPER["navigation2d"]["maml"])
    lines = ["# Navigation2D after 1–3 steps: per-step rates by hypergradient against the paper's hand schedule", "",
             f"Made by `python benchmarks/inner_steps.py` on this project's {platform.machine()} VM (2 CPUs). "
             f"MAML-TRPO, {args.iterations} iterations × 20 tasks × 20 episodes, `trpo.subsample=0.1`, α₀ 0.5"
             + (f" (and {', '.join(args.sets)})" if args.sets else "") + f"; seed 0; evaluated on {args.eval_tasks} "
             f"held-out goals with {args.eval_episodes} episodes per adaptation step (± 95 % CI over goals).", "",
             "| meta-trained with | evaluated with | env steps | wall time | after 0 steps | after 1 step "
             "| after 2 steps | after 3 steps | α per step | σ after 0 / 1 / 2 / 3 steps |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = " | ".join(map(cell, r["adaptation"]))
        alphas = (" / ".join(f"{a:.3g}" for a in r["alpha_steps"]) if r["alpha_steps"]
                  else "0.5 / 0.25 / 0.25" if r["evaluation"] == EVALUATIONS["paper_schedule"] else f"{r['alpha']:.3g}")
        if r.get("log_std_alpha"):
            alphas += " (the mean over tensors; log σ's: " + " / ".join(f"{a:.3g}" for a in r["log_std_alpha"]) + ")"
        stds = " / ".join(f"{s:.2f}" for s in r["action_std"]) if r.get("action_std") else f"{r['policy_std']:.2f}"
        lines.append(f"| {r['what']} | {r['evaluation']} | {r['env_steps'] / 1e6:.1f} M | {r['seconds'] / 60:.1f} min "
                     f"| {cells} | {alphas} | {stds} |")
    lines += ["| MAML paper (one inner step in training) | the schedule (0.5, then 0.25) | | | "
              + " | ".join(f"{v:g}" for v in paper) + " | 0.5 / 0.25 / 0.25 | |", "",
              "σ: the policy's action noise (its Gaussian's mean standard deviation, before the ±1 → ±0.1 scaling) "
              "after 0–3 adaptation steps, the mean over the held-out goals (`evaluate`'s `action_std`; the inner "
              "steps move log σ too); a single value: the trained policy's (`policy/std` of the run's last iteration), "
              "from a report that predates `action_std`.", "",
              verdict(rows, paper), ""]
    trained = next((r for r in rows if r["run"] == PROBED and r["evaluation"] == EVALUATIONS["as_trained"]), None)
    if probe and trained:
        lines += probe_lines(probe, trained)
    if batch:
        lines += batch_lines(batch, rows, args.eval_episodes)
    lines += ["Commands:", "", "```bash"]
    for r in rows:
        if r["evaluation"] == EVALUATIONS["as_trained"]:
            lines.append(r["command"])
        lines.append(f"rl-alphamaml evaluate {r['run_dir']} {r['evaluate']}")
    lines += [f"rl-alphamaml evaluate {trained['run_dir']} {p['evaluate']}" for p in probe if trained]
    lines += [f"rl-alphamaml evaluate {b['run_dir']} {b['evaluate']}" for b in batch]
    lines += ["```", ""]
    results_io.write_text(args.out.with_suffix(".md"), "\n".join(lines))
    result = {"settings": settings, "rows": rows, "paper": paper, "rate_probe": probe, "episode_probe": batch}
    results_io.write_text(args.out.with_suffix(".json"), json.dumps(result, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    results_io.run(main)
