"""Which outer loop and which rate mode: environment steps and seconds to MAML-TRPO's level, per family.

``promp_comparison.py`` found that Alpha MAML [1] (Adam outer loop, α and β by hypergradient [2]) needs about 4×
MAML-TRPO's [3, 4] environment steps on Navigation2D to cover 90 % of MAML-TRPO's gain, and 0.6–0.8× on
HalfCheetah, but it never timed the runs against each other. This study trains, per family and seed, one run at a
time, MAML-TRPO (the reference, as ``promp_comparison.py`` trains it, in the same folders) and the other outer loops
and rate modes (:data:`VARIANTS`): MAML-TRPO with the curvature of a tenth of the episodes (``trpo.subsample=0.1``),
Alpha MAML as shipped (now with the β repair) and with β free to grow faster, MAML-TRPO with the trust region's
radius by hypergradient (``trpo.max_kl_mode=hd``), ProMP [6] and Alpha-ProMP; and reports for each:

* **environment steps** until the 5-iteration average of the training return after adaptation first covers 90 % of
  the same seed's MAML-TRPO gain (from MAML-TRPO's first average to its last), as a multiple of MAML-TRPO's own;
* **wall-clock seconds** to the same point (each run's ``time/iteration``, summed; every run trained alone on this
  machine, one after another), as a multiple of MAML-TRPO's;
* the **held-out return** after one step (``rl-alphamaml evaluate RUN --tasks 40 --steps 1``) and the final α, β.

Usage::

    python benchmarks/outer_loops.py                                  # every family and variant, seeds 0-2
    python benchmarks/outer_loops.py --families navigation2d --variants alpha alpha_log_adam
    python benchmarks/outer_loops.py --tables-only      # the tables again from outer_loops.json (a new format)

Writes ``benchmarks/results/outer_loops.{md,json}``; finished runs are reused, interrupted ones resumed, and a run
the JSON records whose folder is not on this machine is kept as recorded; the variants not asked for stay.

References:
    [1] Behl, Baydin & Torr, "Alpha MAML: Adaptive Model-Agnostic Meta-Learning", 2019.
        https://arxiv.org/abs/1905.07435
    [2] Baydin, Cornish, Martínez Rubio, Schmidt & Wood, "Online Learning Rate Adaptation with Hypergradient
        Descent", ICLR 2018. https://arxiv.org/abs/1703.04782
    [3] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
    [4] Schulman, Levine, Moritz, Jordan & Abbeel, "Trust Region Policy Optimization", ICML 2015.
        https://arxiv.org/abs/1502.05477
    [5] Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015. https://arxiv.org/abs/1412.6980
    [6] Rothfuss, Lee, Clavera, Asfour & Abbeel, "ProMP: Proximal Meta-Policy Search", ICLR 2019.
        https://arxiv.org/abs/1810.06784
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from agents.outer_steps import TRPOConfig

import promp_comparison as pc
import results_io
from cli_runs import ROOT, evaluate_once, relative, train_to

RESULTS = ROOT / "benchmarks" / "results"
RUNS = RESULTS / "outer_loops_runs"
#: variant → (label, config suffix — ``configs/<family><suffix>.yaml`` — and extra ``--set`` values)
VARIANTS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    # MAML-TRPO with the curvature of a tenth of the episodes: slower per step, faster per second?
    "trpo_subsample": ("MAML-TRPO, `trpo.subsample=0.1`", "", ("trpo.subsample=0.1",)),
    "alpha": ("Alpha MAML (shipped config: `normalized` rule, β₀ 1e-3, β repair)", "_alpha", ()),
    # the fast rule for both rates (Adam-style normalisation in log space, η 0.2): β may grow ×e^0.2 per iteration
    # while its hypergradient agrees, and the β repair cuts it back after a destructive step
    "alpha_log_adam": ("Alpha MAML, `log_adam` rule for α and β", "_alpha",
                       ("inner.hd_rule=log_adam", "outer.hd_rule=log_adam")),
    # a ten times larger start for β (the grid's β₀ = 0.01 column), the β repair guarding it
    "alpha_beta0.01": ("Alpha MAML, β₀ 0.01", "_alpha", ("outer.lr=0.01",)),
    # log_adam's pace for ~20 updates, then a decaying hyper-rate (η/√(1 + (t−1)/20)), for both rates
    "alpha_annealed": ("Alpha MAML, `log_adam_annealed` rule for α and β", "_alpha",
                       ("inner.hd_rule=log_adam_annealed", "outer.hd_rule=log_adam_annealed")),
    # the annealed rule from β₀ 0.01
    "alpha_annealed_beta0.01": ("Alpha MAML, `log_adam_annealed`, β₀ 0.01", "_alpha",
                                ("inner.hd_rule=log_adam_annealed", "outer.hd_rule=log_adam_annealed",
                                 "outer.lr=0.01")),
    # the same with the β repair's KL bound (HalfCheetahDir: steps of a mean KL of 0.15-0.8 between the adapted
    # policies never learn from β₀ 0.01, while the shipped config's learn at 0.05; Navigation2D learns through
    # early steps of 0.1-0.5): each step cut until its KL is at most 0.1
    "alpha_annealed_beta0.01_kl": ("Alpha MAML, `log_adam_annealed`, β₀ 0.01, β repair with max-KL 0.1", "_alpha",
                                   ("inner.hd_rule=log_adam_annealed", "outer.hd_rule=log_adam_annealed",
                                    "outer.lr=0.01", "beta_repair.max_kl=0.1")),
    # β₀ 0.01 with the KL bound, α by the shipped `normalized` rule (on HalfCheetahDir α by the faster rules rises to
    # 0.7-2 and the runs stall or collapse)
    "alpha_beta0.01_kl": ("Alpha MAML, β₀ 0.01, β repair with max-KL 0.1", "_alpha",
                          ("outer.lr=0.01", "beta_repair.max_kl=0.1")),
    # the fast annealed rule for β alone, from β₀ 0.01 under the KL bound, α by the shipped `normalized` rule: on
    # Navigation2D the annealed rule for both rates reached MAML-TRPO's level in the fewest steps, on HalfCheetahDir
    # it failed through α (run to 0.7-2), while the KL-bounded β₀ 0.01 with the `normalized` α learnt there
    "alpha_beta_annealed_kl": ("Alpha MAML, β by `log_adam_annealed` from 0.01, β repair with max-KL 0.1", "_alpha",
                               ("outer.hd_rule=log_adam_annealed", "outer.lr=0.01", "beta_repair.max_kl=0.1")),
    # the same with the bound halved to 0.05: HalfCheetahDir never reached MAML-TRPO's level under the bound 0.1,
    # whereas the shipped config's steps, which do learn there, have a KL of about 0.05
    "alpha_beta_annealed_kl0.05": ("Alpha MAML, β by `log_adam_annealed` from 0.01, β repair with max-KL 0.05",
                                   "_alpha", ("outer.hd_rule=log_adam_annealed", "outer.lr=0.01",
                                              "beta_repair.max_kl=0.05")),
    # the same with α fixed at the family's 0.1: on HalfCheetahDir every Alpha MAML run whose α rose (to 0.22 and
    # above) ended below MAML-TRPO, under either KL bound too; is α's rise what costs it there?
    "alpha_fixed_beta_annealed_kl": ("Adam with α fixed, β by `log_adam_annealed` from 0.01, β repair with max-KL 0.1",
                                     "_alpha", ("inner.lr_mode=fixed", "outer.hd_rule=log_adam_annealed",
                                                "outer.lr=0.01", "beta_repair.max_kl=0.1")),
    # MAML-TRPO whose trust-region radius follows its hypergradient from the family's max-KL (β's part under TRPO)
    "trpo_radius_hd": ("MAML-TRPO, trust region by hypergradient (`trpo.max_kl_mode=hd`)", "",
                       ("trpo.max_kl_mode=hd",)),
    # the same, with a step the line search shortened cutting the radius to the step taken (on Navigation2D the
    # hypergradient alone grows the radius to its bound once the return has levelled off)
    "trpo_radius_hd_cut": ("MAML-TRPO, trust region by hypergradient, cut by the line search (`trpo.max_kl_cut=true`)",
                           "", ("trpo.max_kl_mode=hd", "trpo.max_kl_cut=true")),
    # the same with the curvature of a tenth of the episodes: the cheap-per-second variant
    "trpo_radius_hd_subsample": ("MAML-TRPO, trust region by hypergradient, `trpo.subsample=0.1`", "",
                                 ("trpo.max_kl_mode=hd", "trpo.subsample=0.1")),
    # every rate by hypergradient under the TRPO outer step: α (the `normalized` rule, from the family's α) and the
    # radius, which plays β's part there — Alpha MAML's promise with MAML-TRPO's natural-gradient step
    "trpo_hd": ("MAML-TRPO, α and the trust region by hypergradient (`inner.lr_mode=hd`, `trpo.max_kl_mode=hd`)", "",
                ("inner.lr_mode=hd", "trpo.max_kl_mode=hd")),
    # Alpha MAML's rates and repair on MAML-TRPO's direction: `alpha_beta_annealed_kl` with the natural gradient
    # (`outer.optimizer=ngd`, the same conjugate gradient as TRPO's) in place of Adam's direction — which of the two,
    # direction or step size, keeps the Adam loop from MAML-TRPO's level on HalfCheetahDir? β₀ 1: at the start TRPO's
    # step is the rate 0.95 on Navigation2D (radius 0.01) and 4.2 on HalfCheetahDir (radius 0.02, the reference run's;
    # 3.0 at 0.01), from `ngd/natural_sq_norm`
    "ngd_beta_annealed_kl": ("Natural gradient (`ngd`), β by `log_adam_annealed` from 1, β repair with max-KL 0.1",
                             "_alpha", ("outer.optimizer=ngd", "outer.lr=1", "outer.lr_max=100",
                                        "outer.hd_rule=log_adam_annealed", "beta_repair.max_kl=0.1")),
    "promp": ("ProMP (the authors' settings)", "_promp", ()),
    "alpha_promp": ("Alpha-ProMP", "_alpha_promp", ()),
}
DEFAULT_SEEDS = {"navigation2d": [0, 1, 2], "halfcheetah_dir": [0, 1, 2], "halfcheetah_vel": [0, 1, 2]}
EVALUATE = ["--tasks", "40", "--steps", "1"]


def curve(run_dir: Path) -> dict[str, Any]:
    """:func:`promp_comparison.curve` plus the cumulative wall seconds per iteration, and for a TRPO run the line
    search's backtracks (and, with the radius by hypergradient, the radius) per iteration."""
    records = pc.records(run_dir)
    out = pc.curve(run_dir)
    out["seconds"] = np.cumsum([r["time/iteration"] for r in records]).tolist()
    for key, name in (("trpo/backtracks", "backtracks"), ("trpo/max_kl", "max_kl")):
        if key in records[0]:
            out[name] = [r[key] for r in records]
    return out


def radius_bound(command: str) -> float:
    """The adapted radius's upper bound a run's recorded command gave it (``--set trpo.max_kl_max=…``), else the
    default of :class:`agents.outer_steps.TRPOConfig`."""
    given = re.search(r"--set trpo\.max_kl_max=(\S+)", command)
    return float(given.group(1)) if given else TRPOConfig().max_kl_max


def radius_line(record: dict[str, Any]) -> str | None:
    """How a run's adapted trust-region radius moved (None for a run without one): the first iteration at 0.1 or
    more, the iterations at its upper bound (:func:`radius_bound`), the final radius, the mean backtracks."""
    radii = record["curve"].get("max_kl")
    if not radii:
        return None
    bound = radius_bound(record["command"])
    first = next((i + 1 for i, r in enumerate(radii) if r >= 0.1), None)
    at_bound = sum(r >= bound * (1 - 1e-9) for r in radii)
    return (f"seed {record['seed']}: δ {radii[0]:g} → {radii[-1]:.2g}, ≥ 0.1 from iteration "
            f"{first if first else 'never'}, at its bound {bound:g} for {at_bound} of {len(radii)} iterations; "
            f"{np.mean(record['curve']['backtracks']):.2f} line-search backtracks per iteration")


def reach(c: dict[str, Any], target: float) -> tuple[float | None, float | None]:
    """(environment steps, wall seconds) at which the smoothed curve first reaches ``target``; None: never."""
    for steps, seconds, value in zip(c["env_steps"], c["seconds"], c["smoothed"]):
        if value >= target:
            return steps, seconds
    return None, None


def run_spec(family: str, method: str, seed: int) -> tuple[Path, str, list[str]]:
    """The run folder, config and ``--set`` values of one run; ``maml`` is promp_comparison.py's MAML-TRPO run."""
    if method == "maml":
        return pc.run_spec(family, "maml", seed, RESULTS)
    _, suffix, extra = VARIANTS[method]
    # promp_comparison's budget and seed (and MAML-TRPO's max-KL for a variant of MAML-TRPO), then the variant's
    _, _, base = pc.run_spec(family, "maml" if not suffix else "alpha", seed, RESULTS)
    return RUNS / f"{family}-{method}-s{seed}", family + suffix, [*base, *extra]


def train_command(run_dir: Path, config: str, sets: list[str]) -> str:
    """The ``rl-alphamaml train`` command of a run, as its record keeps it."""
    return relative(" ".join(["rl-alphamaml", "train", f"configs/{config}.yaml", "--run-dir", str(run_dir),
                              *[x for s in sets for x in ("--set", s)]]))


def run(family: str, method: str, seed: int) -> dict[str, Any]:
    """Train (or reuse) one run and evaluate it."""
    run_dir, config, sets = run_spec(family, method, seed)
    train_to(run_dir, config, sets, pc.FAMILIES[family]["iterations"])
    report = evaluate_once(run_dir, *EVALUATE)
    records = pc.records(run_dir)
    return {"method": method, "seed": seed, "run_dir": relative(str(run_dir)),
            "command": train_command(run_dir, config, sets),
            "curve": curve(run_dir), "held_out": report["adaptation"][1],
            "final_alpha": records[-1].get("meta/alpha"), "final_beta": records[-1].get("meta/beta"),
            "final_max_kl": records[-1].get("trpo/max_kl"),  # the trust region's radius, when adapted
            "load_average": os.getloadavg()[0]}  # the 1-minute load when the record was made


def family_result(family: str, seeds: list[int], variants: list[str], recorded: list[dict[str, Any]]
                  ) -> dict[str, Any]:
    """Train or reuse MAML-TRPO and ``variants`` for ``seeds`` and measure each against its seed's MAML-TRPO.

    The ``recorded`` runs (the family's in ``outer_loops.json``) stay: one asked for again whose folder is not on
    this machine (run folders are not committed) is kept as recorded instead of trained again, provided it was
    trained with the command it would be trained with now; the other methods and seeds are kept beside the new ones.
    A run measured now against a MAML-TRPO run kept as recorded is marked ``reference_timed_elsewhere``: its
    seconds multiple compares wall times measured on different machines (of the same kind) and sessions."""
    kept = {(r["method"], r["seed"]): r for r in recorded if r["method"] == "maml" or r["method"] in VARIANTS}
    runs: dict[tuple[str, int], dict[str, Any]] = {}
    fresh: set[tuple[str, int]] = set()
    for seed in seeds:
        for method in ["maml", *variants]:
            record = kept.get((method, seed))
            if record is not None and not (ROOT / record["run_dir"]).is_dir():
                if record["command"] == train_command(*run_spec(family, method, seed)):
                    print(f"{family}, {method}, seed {seed}: kept as recorded ({record['run_dir']} is not on this "
                          "machine)", flush=True)
                    runs[method, seed] = record
                    continue
                print(f"warning: {family}, {method}, seed {seed}: the recorded run was trained with another command "
                      "and its folder is not here: it is trained again", file=sys.stderr, flush=True)
            runs[method, seed] = run(family, method, seed)
            fresh.add((method, seed))
    for k, record in kept.items():
        runs.setdefault(k, record)
    order = ["maml", *VARIANTS]
    runs_list = sorted(runs.values(), key=lambda r: (r["seed"], order.index(r["method"])))
    all_seeds = sorted({r["seed"] for r in runs_list})
    references = {r["seed"]: r for r in runs_list if r["method"] == "maml"}
    for r in runs_list:
        maml = references.get(r["seed"])
        if maml is None:
            raise SystemExit(f"outer_loops.py: error: {family} seed {r['seed']} has no MAML-TRPO run to measure "
                             f"{r['method']} against")
        if (r["method"], r["seed"]) in fresh and r["method"] != "maml":
            r["reference_timed_elsewhere"] = ("maml", r["seed"]) not in fresh
        smooth = maml["curve"]["smoothed"]
        r["target"] = smooth[0] + pc.LEVEL * (smooth[-1] - smooth[0])
        r["steps_to_target"], r["seconds_to_target"] = reach(r["curve"], r["target"])
    return {**pc.FAMILIES[family], "family": family, "seeds": all_seeds, "runs": runs_list}


def ratio_cells(rows: list[dict[str, Any]], runs: list[dict[str, Any]], key: str, unit: float, fmt: str,
                suffix: str) -> str:
    """Per seed: the value (÷ ``unit``, then ``suffix``) and its multiple of the same seed's MAML-TRPO value."""
    cells = []
    for r in rows:
        own = next(m for m in runs if m["method"] == "maml" and m["seed"] == r["seed"])[key]
        elsewhere = ELSEWHERE if key == "seconds_to_target" and r.get("reference_timed_elsewhere") else ""
        cells.append("not within the budget" if r[key] is None or own is None
                     else f"{r[key] / unit:{fmt}}{suffix} ({r[key] / own:.2f}×{elsewhere})")
    return "; ".join(cells)


#: marks a seconds multiple against a MAML-TRPO run timed in another session (:func:`family_result`)
ELSEWHERE = "†"
ELSEWHERE_NOTE = (f"{ELSEWHERE}: measured against MAML-TRPO runs timed in an earlier session, on another machine of "
                  "the same kind (their folders are gone and their records were kept).")


def timed_elsewhere(results: list[dict[str, Any]]) -> bool:
    """Whether any run's seconds multiple is against a MAML-TRPO run timed in another session."""
    return any(r.get("reference_timed_elsewhere") for res in results for r in res["runs"])


LABELS = {"maml": "MAML-TRPO (`configs/<family>.yaml`)", **{k: v[0] for k, v in VARIANTS.items()}}


def choice_table(results: list[dict[str, Any]]) -> list[str]:
    """Markdown: per method and family, environment steps / wall seconds to MAML-TRPO's level as multiples of
    MAML-TRPO's own (mean over seeds; ``—`` where a seed never got there, with how many did when some did) and the
    held-out return after one step (mean over seeds) — the README's table."""
    def cell(res: dict[str, Any], method: str) -> str:
        rows = [r for r in res["runs"] if r["method"] == method]
        if not rows:
            return "not run"

        def multiple(key: str) -> str:
            own = {m["seed"]: m[key] for m in res["runs"] if m["method"] == "maml"}
            ratios = [r[key] / own[r["seed"]] for r in rows if r[key] is not None and own[r["seed"]]]
            if len(ratios) == len(rows):
                return f"{np.mean(ratios):.2f}×"
            return f"— ({len(ratios)} of {len(rows)} seeds)" if ratios else "—"

        held = np.mean([r["held_out"]["mean"] for r in rows])
        elsewhere = ELSEWHERE if any(r.get("reference_timed_elsewhere") for r in rows) else ""
        return (f"{multiple('steps_to_target')} / {multiple('seconds_to_target')}{elsewhere} / "
                f"{held:.1f}").replace("-", "−")

    head = ["| outer loop, rate mode | "
            + " | ".join(f"{r['family']} ({len(r['seeds'])} seed{'s' * (len(r['seeds']) > 1)})" for r in results)
            + " |", "|---|" + "---|" * len(results)]
    methods = ["maml", *[m for m in VARIANTS if any(r["method"] == m for res in results for r in res["runs"])]]
    return head + [f"| {LABELS[m]} | " + " | ".join(cell(res, m) for res in results) + " |" for m in methods]


#: the README's block that :func:`update_readme` rewrites from the results
README_BEGIN = "<!-- outer_loops.py: choice table -->"
README_END = "<!-- /outer_loops.py -->"


def readme_block(results: list[dict[str, Any]]) -> str:
    """The README's table, between its markers: :func:`choice_table` with how to read a cell."""
    return "\n".join([README_BEGIN, *choice_table(results), "",
                      "Each cell: environment steps / wall seconds until the training return after adaptation covers "
                      f"{pc.LEVEL:.0%} of MAML-TRPO's gain, as multiples of MAML-TRPO's own, the mean over seeds "
                      "(— : not within the budget in some seed; in brackets, how many seeds got there when some did) "
                      "/ the held-out return after one step on 40 tasks, the mean over seeds."
                      + (f" {ELSEWHERE_NOTE}" if timed_elsewhere(results) else ""), README_END])


def update_readme(results: list[dict[str, Any]], readme: Path = ROOT / "README.md") -> None:
    """Rewrite the README's block between :data:`README_BEGIN` and :data:`README_END` from ``results``."""
    text = readme.read_text(encoding="utf-8")
    if README_BEGIN not in text or README_END not in text:
        print(f"outer_loops.py: error: {readme} has no {README_BEGIN} … {README_END} block to rewrite; the results "
              "files are written, put the two lines back and run the same command again", file=sys.stderr)
        raise SystemExit(2)
    start, end = text.index(README_BEGIN), text.index(README_END) + len(README_END)
    results_io.write_text(readme, text[:start] + readme_block(results) + text[end:])


def outer_rate(record: dict[str, Any]) -> str:
    """A run's final outer rate: β, the trust region's radius δ when it was adapted, — when TRPO's was fixed."""
    if record.get("final_max_kl") is not None:
        return f"δ {record['final_max_kl']:.2g}"
    trpo = record["method"] == "maml" or record["method"].startswith("trpo")  # no β: the trust region sets the step
    return "—" if trpo or record["final_beta"] is None else f"{record['final_beta']:.2g}"


def markdown(results: list[dict[str, Any]], note: str) -> str:
    lines = ["# Which outer loop: environment steps and seconds to MAML-TRPO's level", "", note, "",
             f"Environment steps and wall seconds until the training return after adaptation covers {pc.LEVEL:.0%} of "
             "MAML-TRPO's gain, as multiples of MAML-TRPO's own (mean over seeds; — : not within the budget in some "
             "seed; in brackets, how many seeds got there when some did), then the held-out return after one step "
             "on 40 tasks (mean over seeds):", "",
             *choice_table(results), *([ELSEWHERE_NOTE] if timed_elsewhere(results) else []), ""]
    labels = LABELS
    for res in results:
        lines += [f"## {res['family']}", "",
                  f"{res['iterations']} iterations × {res['meta_batch']} tasks × {res['episodes']} episodes per phase; "
                  f"seeds {res['seeds']}. Per seed: environment steps and wall seconds until the {pc.SMOOTH}-iteration "
                  f"average of the training return after adaptation covers {pc.LEVEL:.0%} of MAML-TRPO's gain (× "
                  "MAML-TRPO's own); held-out return after one step on 40 tasks (mean over seeds, then each seed).", "",
                  f"| method | steps to {pc.LEVEL:.0%} of MAML-TRPO's gain | seconds to it | held-out, after 1 step "
                  "| wall time (whole run) | final α / β (δ: the trust region's radius) |", "|---|---|---|---|---|---|"]
        for method in ["maml", *[m for m in VARIANTS if any(r["method"] == m for r in res["runs"])]]:
            rows = [r for r in res["runs"] if r["method"] == method]
            held = pc.fmt([r["held_out"]["mean"] for r in rows])
            wall = np.mean([r["curve"]["seconds"][-1] for r in rows]) / 60
            rates = "; ".join(f"{r['final_alpha']:.3g} / {outer_rate(r)}" for r in rows)
            steps = ratio_cells(rows, res["runs"], "steps_to_target", 1e6, ".2f", " M")
            seconds = ratio_cells(rows, res["runs"], "seconds_to_target", 1, ".0f", " s")
            lines.append(f"| {labels[method]} | {steps} | {seconds} | {held} | {wall:.1f} min | {rates} |")
        radii = [f"- {labels[r['method']]}, {line}" for r in res["runs"] if (line := radius_line(r))]
        if radii:
            lines += ["", "The trust region's radius where it follows its hypergradient:", "", *radii]
        lines += ["", "Commands:", "", "```bash", *[r["command"] for r in res["runs"]],
                  f"rl-alphamaml evaluate RUN {' '.join(EVALUATE)}", "```", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=list(DEFAULT_SEEDS), choices=list(DEFAULT_SEEDS))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=None,
                        help="seeds for every family (default: 0 1 2)")
    parser.add_argument("--tables-only", action="store_true",
                        help="rewrite outer_loops.md and the README's table from outer_loops.json; train nothing")
    args = parser.parse_args()
    started = time.perf_counter()
    out = RESULTS / "outer_loops"
    previous = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").is_file() else {}
    kept = {r["family"]: r for r in previous.get("results", [])}
    for family in [] if args.tables_only else args.families:
        kept[family] = family_result(family, args.seeds or DEFAULT_SEEDS[family], args.variants,
                                     kept.get(family, {}).get("runs", []))
    results = [kept[f] for f in DEFAULT_SEEDS if f in kept]
    note = (f"Machine: {platform.machine()} CPU, 2 cores; runs trained one at a time (the 1-minute load average as "
            "each run's record was made is in the JSON). Command: "
            "`python benchmarks/outer_loops.py` (per family: `--families F --variants …`).")
    text = markdown(results, note)
    print(text)
    results_io.write_text(out.with_suffix(".md"), text)
    results_io.write_text(out.with_suffix(".json"), json.dumps({"note": note, "results": results}, indent=1) + "\n")
    update_readme(results)
    print(f"wrote {relative(str(out))}.{{md,json}} ({(time.perf_counter() - started) / 60:.1f} min)")


if __name__ == "__main__":
    results_io.run(main)
