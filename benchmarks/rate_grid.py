"""The rate-robustness study shared by ``rl_rate_grid.py``, ``omniglot_rate_grid.py`` and ``trpo_rate_grid.py``.

For every cell of an initial-α × initial-β grid and every seed, a study meta-trains a shipped config twice
with the same seed — same initial model, same task and episode streams — and the same budget:

* **MAML** [1]: α and β fixed at the cell's values, and
* **Alpha MAML** [2]: α and β *start* at the cell's values and follow their hypergradients [3] (the core's
  scale-free ``normalized`` rule; α ∈ [1e-4, 10], β ∈ [1e-6, 1]; Adam for θ in both),

(a study may train only some of the methods: ``methods`` in its settings; ``trpo_rate_grid.py`` trains both with
MAML-TRPO's outer step [1, 4] instead of Adam, which has no β: the trust region's max-KL takes its place, and only
α is fixed or adapted),

then evaluates both as ``rl-alphamaml evaluate`` does (the kind's held-out stream, 95 % confidence interval
over tasks). A run whose meta-steps stay non-finite is stopped by the core's safety rule and marked diverged.
Every run goes through the kind's public ``build``/``evaluate`` (:class:`rl_alphamaml.kind.ExperimentKind`)
in a fresh process, ``--processes`` at a time.

Results go to ``benchmarks/results/rate_grid_<study>.{json,md,png}``: the JSON holds one record per run
(method, α₀, β₀, seed) and is saved as each run finishes, so a rerun of the same command continues, and a
rerun with more ``--seeds`` only trains the new seeds (other settings than the grid and the seeds: the file
is refused, ``--fresh`` replaces it). The tables show, per cell, the metric's mean over seeds with the range
over seeds (one seed: ± the 95 % CI over held-out tasks); the measured wall time of every run is in the JSON.

References:
    [1] Finn, Abbeel & Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks",
        ICML 2017. https://arxiv.org/abs/1703.03400
    [2] Behl, Baydin & Torr, "Alpha MAML: Adaptive Model-Agnostic Meta-Learning", 2019.
        https://arxiv.org/abs/1905.07435
    [3] Baydin, Cornish, Martínez Rubio, Schmidt & Wood, "Online Learning Rate Adaptation with Hypergradient
        Descent", ICLR 2018. https://arxiv.org/abs/1703.04782
    [4] Schulman, Levine, Moritz, Jordan & Abbeel, "Trust Region Policy Optimization", ICML 2015.
        https://arxiv.org/abs/1502.05477
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import multiprocessing
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import torch

from rl_alphamaml import seeding
from rl_alphamaml.cli import load_experiment_config
from rl_alphamaml.config import to_dict
from rl_alphamaml.errors import NonFiniteError
from rl_alphamaml.meta.hypergradient import HD_RULES
from rl_alphamaml.runner import close_experiment

import results_io

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
METHODS = ("maml", "alpha_maml")
LABELS = {"maml": "MAML (fixed α, β)", "alpha_maml": "Alpha MAML (α, β by hypergradient)"}
#: the methods' names in running text and table headers (:func:`pairs_table`)
NAMES = {"maml": "MAML", "alpha_maml": "Alpha MAML"}
ALPHA_BOUNDS = (1e-4, 10.0)
BETA_BOUNDS = (1e-6, 1.0)
#: settings that may differ between reruns of a study: the runs are keyed by them
GRID_KEYS = ("alphas", "betas", "seeds", "methods")
#: the hypergradient rule of the study's files without a suffix (``--hd-rule``)
DEFAULT_RULE = "normalized"


def rule_spec(text: str) -> str:
    """``--hd-rule``'s value: one hypergradient rule for α and β, or ``ALPHA_RULE:BETA_RULE``; an unknown rule is
    an :class:`argparse.ArgumentTypeError` (one error line)."""
    parts = text.split(":")
    if len(parts) > 2 or any(p not in HD_RULES for p in parts):
        raise argparse.ArgumentTypeError(f"{text!r}: give a rule or ALPHA_RULE:BETA_RULE, each one of "
                                         f"{', '.join(sorted(HD_RULES))}")
    return text


def rules(spec: str) -> tuple[str, str]:
    """α's and β's rule from a :func:`rule_spec`."""
    alpha_rule, _, beta_rule = spec.partition(":")
    return alpha_rule, beta_rule or alpha_rule


def rate_overrides(method: str, alpha: float, beta: float, rule: str = DEFAULT_RULE, outer: str = "adam") -> list[str]:
    """``--set`` values for one run: α, β fixed (MAML) or adapted by the hypergradient rules ``rule`` names
    (:func:`rule_spec`; Alpha MAML), bounds widened to include the start, Adam for θ; with ``outer="trpo"``,
    MAML-TRPO's outer step [4], which has no β: ``beta`` is then the trust region's max-KL, and only α is fixed or
    adapted."""
    mode = "hd" if method == "alpha_maml" else "fixed"
    alpha_rule, beta_rule = rules(rule)
    inner = [f"inner.lr={alpha}", f"inner.lr_mode={mode}", f"inner.hd_rule={alpha_rule}",
             f"inner.lr_min={min(ALPHA_BOUNDS[0], alpha)}", f"inner.lr_max={max(ALPHA_BOUNDS[1], alpha)}"]
    if outer == "trpo":
        return [*inner, "outer.optimizer=trpo", f"trpo.max_kl={beta}"]
    return [
        *inner, "outer.optimizer=adam", f"outer.lr={beta}", f"outer.lr_mode={mode}", f"outer.hd_rule={beta_rule}",
        f"outer.lr_min={min(BETA_BOUNDS[0], beta)}", f"outer.lr_max={max(BETA_BOUNDS[1], beta)}",
    ]


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One run of the grid: a config, its ``--set`` values, and what to measure."""

    method: str
    alpha: float
    beta: float
    seed: int
    config: str
    overrides: tuple[str, ...]
    iterations: int
    eval_tasks: int
    eval_steps: int
    train_metric: str  # the scalar of train_iteration averaged over the last ``train_window`` iterations
    train_window: int
    hd_rule: str = DEFAULT_RULE  # Alpha MAML's rule for α and β, or α's and β's (:func:`rule_spec`)
    outer: str = "adam"  # the outer step (:func:`rate_overrides`): adam (β) or trpo (``beta`` is the max-KL)


def run(spec: RunSpec) -> dict[str, Any]:
    """Train ``spec`` for its iterations (stopping at a divergence), evaluate it, and return its record."""
    torch.set_num_threads(1)
    config, kind = load_experiment_config(
        ROOT / "configs" / f"{spec.config}.yaml",
        [*spec.overrides, f"seed={spec.seed}", f"train.iterations={spec.iterations}",
         *rate_overrides(spec.method, spec.alpha, spec.beta, spec.hd_rule, spec.outer)])
    experiment = kind.build(config, None)
    started = time.perf_counter()
    diverged, done, cuts, cut_steps = False, 0, 0, 0
    recent: list[float] = []
    try:
        for iteration in range(1, spec.iterations + 1):
            try:
                scalars = experiment.train_iteration(iteration, None)
            except NonFiniteError:
                diverged = True
                break
            done = iteration
            cuts += int(scalars.get("meta/beta_cuts", 0))  # the β repair's cuts (agents.outer_steps.BetaRepairConfig)
            cut_steps += bool(scalars.get("meta/beta_cuts", 0))
            if not scalars.get("meta/skipped"):
                recent = [*recent, float(scalars[spec.train_metric])][-spec.train_window:]
        train_seconds = time.perf_counter() - started
        result = kind.evaluate(experiment, spec.eval_tasks, spec.eval_steps, seeding.evaluation_seed(spec.seed))
        final_alpha = experiment.meta.alpha.mean()
        final_beta = float(experiment.meta.beta) if spec.outer != "trpo" else None  # TRPO uses no β
        skipped = experiment.meta.nonfinite_total
    finally:
        close_experiment(experiment)
    rows = result.summary()
    value, half = rows[-1]["mean"], rows[-1]["ci95"]
    finite = math.isfinite(value)
    return {
        "method": spec.method, "alpha0": spec.alpha, "beta0": spec.beta, "seed": spec.seed,
        "value": value if finite else None, "ci95": half if finite and math.isfinite(half) else None,
        "value_by_steps": [r["mean"] if math.isfinite(r["mean"]) else None for r in rows],
        "final_alpha": final_alpha, "final_beta": final_beta,
        "diverged": diverged, "iterations_done": done, "skipped_steps": skipped, "beta_cuts": cuts,
        "beta_cut_steps": cut_steps,
        "train_value_last": sum(recent) / len(recent) if recent else None,
        "train_seconds": train_seconds, "total_seconds": time.perf_counter() - started,
    }


def resolved_config(config: str, overrides: Sequence[str]) -> dict[str, Any]:
    """The study's config as every run resolves it before its own seed, budget and rates (the data location
    left out): recorded in the settings, so that runs made under another version of a config are never
    mixed with new ones."""
    resolved, _ = load_experiment_config(ROOT / "configs" / f"{config}.yaml", list(overrides))
    out = json.loads(json.dumps(to_dict(resolved)))  # as config.yaml saves it, tuples as lists
    for section, name in (("data", "root"), ("data", "cache_dir")):
        out.get(section, {}).pop(name, None)
    return out


def settings_differences(old: dict[str, Any], new: dict[str, Any], skip: Iterable[str] = GRID_KEYS) -> list[str]:
    """The settings other than ``skip`` in which study settings ``new`` differ from ``old`` (a results file's),
    sorted; config fields added since ``old`` was resolved are no difference (:func:`common`)."""
    skipped = set(skip)
    old = {k: v for k, v in old.items() if k not in skipped}
    new = {k: v for k, v in json.loads(json.dumps(new)).items() if k not in skipped}  # tuples as lists
    if "resolved_config" in old and "resolved_config" in new:
        new["resolved_config"] = common(old["resolved_config"], new["resolved_config"])
    return sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))


def common(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``new`` restricted to the keys ``old`` has (recursively): a config field added since ``old`` was resolved — at
    its default, which keeps the earlier behaviour — is no difference between a study's runs."""
    return {k: common(old[k], v) if isinstance(v, dict) and isinstance(old[k], dict) else v
            for k, v in new.items() if k in old}


def key(method: str, alpha: float, beta: float, seed: int) -> str:
    return f"{method}|{alpha:g}|{beta:g}|{seed}"


class GridStore:
    """The finished runs of a study in ``path``, saved after each one.

    An earlier file is continued when its settings other than :data:`GRID_KEYS` are the same (config fields added
    since it was made aside: :func:`common`); a file made with other settings is refused (its runs are not thrown
    away by accident) unless ``fresh``."""

    def __init__(self, path: Path, settings: dict[str, Any], fresh: bool) -> None:
        self.path = path
        self.settings = json.loads(json.dumps(settings))  # tuples as lists, as they read back
        self.runs: dict[str, dict[str, Any]] = {}
        self.load_average_at_start = os.getloadavg()
        if path.exists() and not fresh:
            previous = json.loads(path.read_text())
            differ = settings_differences(previous.get("settings", {}), self.settings)
            if differ:
                print(f"{path} holds runs made with other settings ({', '.join(differ)}): pass --fresh to "
                      "replace them, or --out for another folder", file=sys.stderr)
                sys.exit(2)
            self.runs = {key(r["method"], r["alpha0"], r["beta0"], r["seed"]): r for r in previous["runs"]}
            if self.runs:
                print(f"continuing: {len(self.runs)} finished runs in {path}", file=sys.stderr)

    @classmethod
    def read(cls, path: Path) -> GridStore:
        """The study in the results file ``path``, to read (nothing saves it)."""
        previous = json.loads(path.read_text())
        store = cls(path, previous["settings"], fresh=True)
        store.runs = {key(r["method"], r["alpha0"], r["beta0"], r["seed"]): r for r in previous["runs"]}
        return store

    def todo(self) -> list[tuple[str, float, float, int]]:
        s = self.settings
        return [(m, a, b, seed) for seed in s["seeds"] for a in s["alphas"] for b in s["betas"]
                for m in s.get("methods", METHODS) if key(m, a, b, seed) not in self.runs]

    def add(self, record: dict[str, Any]) -> None:
        self.runs[key(record["method"], record["alpha0"], record["beta0"], record["seed"])] = record
        self.save()

    def cell(self, method: str, alpha: float, beta: float) -> list[dict[str, Any]]:
        """The finished runs of one cell, one per seed of the settings."""
        return [r for seed in self.settings["seeds"] if (r := self.runs.get(key(method, alpha, beta, seed)))]

    def save(self) -> None:
        """Write the file (atomically); a full disk is a :class:`results_io.ResultsWriteError` saying that the file
        still holds the runs saved before (a rerun of the command trains only the others)."""
        kept = (f"{self.path} still holds the runs saved before, which the same command keeps" if self.path.exists()
                else "no run of this study was saved")
        results_io.write_text(self.path, json.dumps({
            "settings": self.settings,
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
                        "load_average_at_start": self.load_average_at_start},
            "runs": sorted(self.runs.values(), key=lambda r: (r["seed"], r["alpha0"], r["beta0"], r["method"])),
        }, indent=2) + "\n", kept)


def add_arguments(parser: argparse.ArgumentParser, *, alphas: list[float], betas: list[float], iterations: int,
                  meta_batch: int, eval_tasks: int, eval_steps: int, processes: int, beta_flag: str = "--betas",
                  beta_help: str = "initial β values") -> None:
    """The options every study takes, with the study's defaults; the grid's second axis (``args.betas``) is given
    with ``beta_flag`` (a study whose outer step has no β names what takes its place)."""
    parser.add_argument("--alphas", type=float, nargs="+", default=alphas, help="initial α values")
    parser.add_argument(beta_flag, dest="betas", type=float, nargs="+", default=betas, help=beta_help,
                        metavar=beta_flag.lstrip("-").replace("-", "_").upper())
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of every cell")
    parser.add_argument("--iterations", type=int, default=iterations, help="meta-iterations per run (the budget)")
    parser.add_argument("--meta-batch", type=int, default=meta_batch, help="tasks per meta-iteration")
    parser.add_argument("--eval-tasks", type=int, default=eval_tasks, help="held-out tasks per run")
    parser.add_argument("--eval-steps", type=int, default=eval_steps, help="inner steps at test time")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS,
                        help="the methods to train (the tables show every method's finished runs)")
    parser.add_argument("--hd-rule", default=DEFAULT_RULE, type=rule_spec, metavar="RULE[:BETA_RULE]",
                        help=f"Alpha MAML's hypergradient rule for α (and β, where the outer step has one), or α's "
                             f"and β's ({', '.join(sorted(HD_RULES))}; not {DEFAULT_RULE}: a results file of its "
                             "own, set beside the default rule's)")
    parser.add_argument("--processes", type=int, default=processes, help="runs trained at the same time")
    parser.add_argument("--out", type=Path, default=RESULTS, help="output folder")
    parser.add_argument("--fresh", action="store_true", help="replace the results file of an earlier run")


@dataclasses.dataclass(frozen=True)
class Metric:
    """How a study reports its held-out metric: ``scale`` × value with ``digits`` decimals."""

    name: str
    scale: float = 1.0
    digits: int = 1

    def show(self, value: float) -> str:
        return f"{self.scale * value:.{self.digits}f}"

    def cell(self, runs: Sequence[dict[str, Any]]) -> str:
        """A cell's text: one seed, value ± CI; several, the mean over seeds (min … max over seeds)."""
        if not runs:
            return "—"
        values = [r["value"] for r in runs if r["value"] is not None]
        diverged = sum(r["value"] is None or r["diverged"] for r in runs)
        if not values:
            text = "diverged"
        elif len(runs) == 1:
            ci = runs[0]["ci95"]
            text = self.show(values[0]) + (f" ± {self.show(ci)}" if ci is not None else "")
        else:
            text = (f"{self.show(sum(values) / len(values))} ({self.show(min(values))} … {self.show(max(values))})"
                    if len(values) > 1 else self.show(values[0]))
        if diverged and values:
            text += f" ({diverged}/{len(runs)} diverged)" if len(runs) > 1 else " (diverged)"
        return text


def cell_score(runs: Sequence[dict[str, Any]], floor: float) -> float | None:
    """The mean over seeds, a diverged seed counting as ``floor``; None for an unfinished cell."""
    if not runs:
        return None
    return sum(r["value"] if r["value"] is not None else floor for r in runs) / len(runs)


def run_all(store: GridStore, make: Callable[[str, float, float, int], RunSpec], processes: int,
            metric: Metric) -> None:
    """Train every unfinished run, ``processes`` at a time, saving each record as it arrives (a study with
    nothing left to train leaves its results file as it was)."""
    todo = store.todo()
    started = time.perf_counter()
    specs = [make(m, a, b, seed) for m, a, b, seed in todo]
    with multiprocessing.get_context("spawn").Pool(max(1, processes)) as pool:
        for n, record in enumerate(pool.imap_unordered(run, specs), 1):
            store.add(record)
            elapsed = time.perf_counter() - started
            beta = f" β {record['final_beta']:.2g}" if record["final_beta"] is not None else ""
            print(f"[{n}/{len(todo)}] {record['method']:>10} α₀={record['alpha0']:g} β₀={record['beta0']:g} "
                  f"seed {record['seed']}: {metric.cell([record])}, final α {record['final_alpha']:.3g}{beta} "
                  f"({record['total_seconds']:.0f} s; {elapsed / 60:.1f} min so far, "
                  f"~{elapsed / n * (len(todo) - n) / 60:.0f} min to go)", file=sys.stderr, flush=True)


def tables(store: GridStore, header: list[str], metric: Metric, floor: float, summary_note: str,
           good: Callable[[float], bool], good_text: str) -> str:
    """Markdown: a table per method (rows α₀, columns β₀), Alpha MAML's final rates (mean over seeds), the
    same-seed pairs (:func:`pairs_table`), and per method the mean and worst cell score (:func:`cell_score`)
    and the cells that are ``good``."""
    alphas, betas = store.settings["alphas"], store.settings["betas"]
    columns = ["| α₀ \\ β₀ | " + " | ".join(f"{b:g}" for b in betas) + " |", "| --- |" + " --- |" * len(betas)]
    out = list(header)
    for method in METHODS:
        out += [f"**{LABELS[method]}**", "", *columns]
        out += [f"| {a:g} | " + " | ".join(metric.cell(store.cell(method, a, b)) for b in betas) + " |"
                for a in alphas]
        out.append("")
    out += ["**Alpha MAML: final α / β** (started at the row's α₀ and the column's β₀; mean over seeds)", "",
            *columns]
    for a in alphas:
        texts = []
        for b in betas:
            runs = store.cell("alpha_maml", a, b)
            texts.append("—" if not runs else f"{_mean(r['final_alpha'] for r in runs):.3g} / "
                                              f"{_mean(r['final_beta'] for r in runs):.2g}")
        out.append(f"| {a:g} | " + " | ".join(texts) + " |")
    if table := pairs_table(store, metric, floor, good, good_text):
        out += ["", *table]
    summary = []
    for method in METHODS:
        scores = [s for a in alphas for b in betas if (s := cell_score(store.cell(method, a, b), floor)) is not None]
        if scores:
            summary.append(f"{LABELS[method]}: mean over cells {metric.show(_mean(scores))}, worst cell "
                           f"{metric.show(min(scores))}, cells {good_text}: {sum(map(good, scores))}/{len(scores)}")
    return "\n".join([*out, "", *summary, "", summary_note, "", run_time(store)])


def run_time(store: GridStore) -> str:
    """A line with the study's run time per seed and in all (every run's ``total_seconds``, summed)."""
    seconds = {seed: sum(r["total_seconds"] for r in store.runs.values() if r["seed"] == seed)
               for seed in store.settings["seeds"]}
    return ("Run time (every run's `total_seconds`, summed): "
            + ", ".join(f"seed {seed} {s / 60:.1f} min" for seed, s in seconds.items())
            + f"; {sum(seconds.values()) / 60:.1f} min in all.")


def pairs(store: GridStore, beta: float | None, floor: float, alpha: float | None = None) -> list[tuple[float, float]]:
    """(MAML, Alpha MAML) values of the runs that share a cell and a seed — the same initial model, task
    stream and starting rates — in column ``beta`` and row ``alpha`` (None: every column, every row); a run with
    no finite result counts as ``floor``."""
    def value(record: dict[str, Any]) -> float:
        return record["value"] if record["value"] is not None else floor

    out = []
    for a in store.settings["alphas"] if alpha is None else [alpha]:
        for b in store.settings["betas"] if beta is None else [beta]:
            alpha_runs = {r["seed"]: r for r in store.cell("alpha_maml", a, b)}
            out += [(value(r), value(alpha_runs[r["seed"]])) for r in store.cell("maml", a, b)
                    if r["seed"] in alpha_runs]
    return out


def pairs_table(store: GridStore, metric: Metric, floor: float, good: Callable[[float], bool],
                good_text: str, names: dict[str, str] = NAMES, by: Literal["β₀", "α₀"] = "β₀") -> list[str]:
    """Markdown: per initial β (``by="α₀"``: per initial α) and over the grid, in how many same-seed pairs Alpha
    MAML's run is ahead of MAML's (a tie is not), the mean difference, and how many runs of each method are
    ``good``, the methods called by their ``names``; no lines while no pair has finished."""
    rows = []
    for at in [*store.settings["alphas" if by == "α₀" else "betas"], None]:
        if found := (pairs(store, None, floor, at) if by == "α₀" else pairs(store, at, floor)):
            difference = metric.show(_mean(alpha - maml for maml, alpha in found))
            signed = f"−{difference[1:]}" if float(difference) < 0 else f"+{difference.lstrip('-')}"  # no "−0.0"
            rows.append(f"| {'all' if at is None else f'{at:g}'} | {len(found)} | "
                        f"{sum(alpha > maml for maml, alpha in found)} | {signed} | "
                        f"{sum(good(maml) for maml, _ in found)} | {sum(good(alpha) for _, alpha in found)} |")
    if not rows:
        return []
    fixed, adapted = names["maml"], names["alpha_maml"]
    return [f"**Run for run** (same cell, same seed: {adapted} − {fixed}; a run with no finite result counts as in "
            "the summaries)", "", f"| {by} | pairs | {adapted} ahead | mean difference | {fixed} runs {good_text} | "
            f"{adapted} runs {good_text} |", "| --- | --- | --- | --- | --- | --- |", *rows]


def heatmap(store: GridStore, path: Path, title: str, metric: Metric, floor: float, label: str, vmin: float,
            vmax: float, beta_label: str = "initial β (outer rate, Adam)") -> None:
    """Two heat-maps (MAML, Alpha MAML) of the cell scores; Alpha-MAML cells also show the final α, β."""
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    from matplotlib import pyplot as plt

    alphas, betas = store.settings["alphas"], store.settings["betas"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4), dpi=120, constrained_layout=True)
    image: Any = None
    midpoint = vmin + 0.6 * (vmax - vmin)
    for ax, method in zip(axes, METHODS):
        grid = np.full((len(alphas), len(betas)), np.nan)
        for i, a in enumerate(alphas):
            for j, b in enumerate(betas):
                runs = store.cell(method, a, b)
                if any(r["value"] is not None for r in runs):
                    grid[i, j] = metric.scale * cell_score(runs, floor)  # type: ignore[operator]
        image = ax.imshow(grid, vmin=vmin, vmax=vmax, cmap="viridis", origin="lower")
        for i, a in enumerate(alphas):
            for j, b in enumerate(betas):
                runs = store.cell(method, a, b)
                text = "" if not runs else ("div." if np.isnan(grid[i, j]) else f"{grid[i, j]:.0f}")
                if method == "alpha_maml" and runs:
                    text += (f"\nα {_mean(r['final_alpha'] for r in runs):.2g}"
                             f"\nβ {_mean(r['final_beta'] for r in runs):.1g}")
                ax.text(j, i, text, ha="center", va="center", fontsize=7,
                        color="white" if np.isnan(grid[i, j]) or grid[i, j] < midpoint else "black")
        ax.set_xticks(range(len(betas)), [f"{b:g}" for b in betas])
        ax.set_yticks(range(len(alphas)), [f"{a:g}" for a in alphas])
        ax.set_xlabel(beta_label)
        ax.set_ylabel("initial α (inner rate)")
        ax.set_title(LABELS[method], fontsize=10)
    fig.colorbar(image, ax=list(axes), label=label, shrink=0.9)
    fig.suptitle(title, fontsize=9)
    results_io.save_figure(fig, path)


def seeds_text(seeds: Sequence[int]) -> str:
    return f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {', '.join(map(str, seeds))}"


def command(script: str, args: argparse.Namespace, *own: str, beta_flag: str = "--betas") -> str:
    """The command that remakes a study's results file: the study's ``own`` options and every option of
    :func:`add_arguments` that is part of its settings (not ``--processes``, ``--out``, ``--fresh``), the second
    axis under ``beta_flag`` as :func:`add_arguments` took it."""
    def numbers(values: Sequence[float]) -> str:
        return " ".join(f"{v:g}" for v in values)

    rule = [f"--hd-rule {args.hd_rule}"] if args.hd_rule != DEFAULT_RULE else []
    methods = [f"--methods {' '.join(args.methods)}"] if list(args.methods) != list(METHODS) else []
    return " ".join([f"python benchmarks/{script}", *own, *rule, *methods, f"--alphas {numbers(args.alphas)}",
                     f"{beta_flag} {numbers(args.betas)}", f"--seeds {numbers(args.seeds)}",
                     f"--iterations {args.iterations}", f"--meta-batch {args.meta_batch}",
                     f"--eval-tasks {args.eval_tasks}", f"--eval-steps {args.eval_steps}"])


def stem(study: str, rule: str) -> str:
    """The results files' stem of a study under Alpha MAML's hypergradient rule(s) ``rule`` (:func:`rule_spec`)."""
    return study if rule == DEFAULT_RULE else f"{study}_{rule.replace(':', '_beta_')}"


def default_rule_store(path: Path, settings: dict[str, Any]) -> GridStore | None:
    """The same study under the default rule (the file ``path``), for :func:`rule_comparison`: None when there is
    none or it was made with other settings than ``settings`` (the grid, the seeds and the rule aside)."""
    if not path.is_file():
        return None
    store = GridStore.read(path)
    return None if settings_differences(store.settings, settings, {*GRID_KEYS, "hd_rule"}) else store


def rule_comparison(store: GridStore, default: GridStore, metric: Metric, floor: float) -> list[str]:
    """Markdown: Alpha MAML under the study's rule beside the default rule, cell for cell (the cells this study
    has finished), with the same-seed pairs in which the study's rule is ahead."""
    rule = store.settings["hd_rule"]
    rows, ahead, total = [], 0, 0
    for a in store.settings["alphas"]:
        for b in store.settings["betas"]:
            runs, before = store.cell("alpha_maml", a, b), default.cell("alpha_maml", a, b)
            if not runs or not before:
                continue
            old = {r["seed"]: r for r in before}
            paired = [(old[r["seed"]], r) for r in runs if r["seed"] in old]
            total += len(paired)
            ahead += sum((n["value"] if n["value"] is not None else floor)
                         > (o["value"] if o["value"] is not None else floor) for o, n in paired)
            alphas = [_mean(r["final_alpha"] for r in x) for x in (before, runs)]
            betas = [_mean(r["final_beta"] for r in x) for x in (before, runs)]
            rows.append(f"| {a:g} | {b:g} | {metric.cell(before)} | {metric.cell(runs)} | "
                        f"{alphas[0]:.3g} → {alphas[1]:.3g} | {betas[0]:.2g} → {betas[1]:.2g} |")
    if not rows:
        return []
    return [f"**Alpha MAML: the `{rule}` rule beside the `{DEFAULT_RULE}` rule** (same cells, same seeds; the "
            f"`{DEFAULT_RULE}` runs from the study's file without a suffix)", "",
            f"| α₀ | β₀ | `{DEFAULT_RULE}` | `{rule}` | final α | final β |", "| --- | --- | --- | --- | --- | --- |",
            *rows, "", f"`{rule}` ahead in {ahead} of {total} same-seed pairs."]


def _mean(values: Any) -> float:
    items = list(values)
    return sum(items) / len(items)
