"""Adaptation reports: a metric after 0…K inner steps on held-out tasks, with 95 % confidence intervals.

Every learner's ``evaluate`` produces an :class:`AdaptationResult`; :func:`write_report` prints it as a
table and writes ``RUN_DIR/eval/adaptation.json``, a PNG plot and TensorBoard scalars. A result may carry other
metrics measured on the same episodes beside its headline one (``other_metrics``: the success rate of a family that
reports success beside the return, or the return beside Meta-World's success rate); each gets its own columns, JSON
entry, panel and TensorBoard tags, and a result without them looks as it always did.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rl_alphamaml.atomic import write_figure_atomic, write_text_atomic
from rl_alphamaml.errors import UserError
from rl_alphamaml.logging import EventFile
from rl_alphamaml.rundir import file_in_the_way
from rl_alphamaml.stats import format_ci, json_safe, mean_ci95


@dataclasses.dataclass
class AdaptationResult:
    """``values[k][i]``: the metric on task ``i`` after ``k`` inner steps."""

    metric: str  # e.g. "return" or "mse" or "accuracy"
    values: list[list[float]]
    tasks: list[Any]
    checkpoint: str
    checkpoint_iteration: int
    seed: int
    higher_is_better: bool
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: other metrics on the same tasks and steps, ``{name: values}`` laid out as :attr:`values` (higher is better)
    other_metrics: dict[str, list[list[float]]] = dataclasses.field(default_factory=dict)

    def summary(self) -> list[dict[str, float]]:
        """Per number of steps: the mean and its 95 % CI half-width, and the paired change from step 0
        (each task against itself, which removes the task-to-task spread) with its CI."""
        return summarize(self.values)

    def metrics(self) -> dict[str, list[list[float]]]:
        """Every metric's values, the headline one first."""
        return {self.metric: self.values, **self.other_metrics}

    def to_json(self) -> dict[str, Any]:
        """The report's JSON: the headline metric's summary and per-task values at the top (as always), the others
        under ``metrics``."""
        out = {
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "checkpoint": self.checkpoint,
            "checkpoint_iteration": self.checkpoint_iteration,
            "seed": self.seed,
            "num_tasks": len(self.tasks),
            "adaptation": self.summary(),
            "per_task": self.values,
            "tasks": self.tasks,
            **self.extra,
        }
        if self.other_metrics:
            out["metrics"] = {name: {"higher_is_better": True, "adaptation": summarize(values), "per_task": values}
                              for name, values in self.other_metrics.items()}
        return out


def summarize(values: Sequence[Sequence[float]]) -> list[dict[str, float]]:
    """:meth:`AdaptationResult.summary` of ``values[k][i]`` (task ``i`` after ``k`` steps)."""
    rows = []
    for k, vals in enumerate(values):
        mean, half = mean_ci95(vals)
        gain, gain_half = mean_ci95([v - v0 for v, v0 in zip(vals, values[0])])
        rows.append({"steps": k, "mean": mean, "ci95": half, "change": gain, "change_ci95": gain_half})
    return rows


def format_table(result: AdaptationResult) -> str:
    """The report's table: per number of steps, each metric's mean, its 95 % CI and its paired change from 0
    steps."""
    summaries = {name: summarize(values) for name, values in result.metrics().items()}
    head = [f"{'steps':>5}"]
    for name in summaries:
        head.append(f"{'mean ' + name:>16}  {'95% CI':>10}  {'change from 0 steps':>22}")
    lines = ["  ".join(head)]
    for k in range(len(result.values)):
        cells = [f"{k:>5}"]
        for rows in summaries.values():
            row = rows[k]
            cells.append(f"{row['mean']:>16.4f}  ±{format_ci(row['ci95'], 4):>9}  "
                         f"{row['change']:>+12.4f} ±{format_ci(row['change_ci95'], 4):>8}")
        lines.append("  ".join(cells))
    return "\n".join(lines)


def plot_adaptation(results: Sequence[tuple[str, AdaptationResult]], path: str | Path, title: str) -> None:
    """A PNG of mean ± 95 % CI against the number of inner steps, one line per labelled result and one panel per
    metric (the headline one first; written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    names = list(dict.fromkeys(name for _, result in results for name in result.metrics()))
    fig, axes = plt.subplots(1, len(names), figsize=(6 * len(names), 3.8), dpi=120, squeeze=False)
    for ax, name in zip(axes[0], names):
        for label, result in results:
            values = result.metrics().get(name)
            if values is None:
                continue
            rows = summarize(values)
            ks = [r["steps"] for r in rows]
            means = [r["mean"] for r in rows]
            halves = [r["ci95"] for r in rows]
            ax.errorbar(ks, means, yerr=halves, marker="o", capsize=3, label=label)
        ax.set_xlabel("inner gradient steps")
        ax.set_ylabel(name)
        ax.set_xticks(range(max(len(r.values) for _, r in results)))
        ax.grid(alpha=0.3)
        if len(results) > 1:
            ax.legend()
    if len(names) > 1:
        fig.suptitle(title, fontsize=9)
    else:
        axes[0][0].set_title(title, fontsize=9)
    fig.tight_layout()
    write_figure_atomic(fig, path)


def check_writable(folder: str | Path) -> None:
    """Fail now, with one clear message, if results cannot be written to ``folder`` (created if missing): a
    read-only run folder, a path under a file, a full disk. Evaluations call it before computing anything (a disk
    that fills meanwhile is :func:`write_outputs`'s to report)."""
    folder = Path(folder)
    blocking = file_in_the_way(folder)
    if blocking is not None:
        raise UserError(f"cannot write results to {folder}: {blocking} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder) as f:  # a byte, not an empty file: a full disk has room for those
            f.write(b"\0")
            f.flush()
            os.fsync(f.fileno())
    except OSError as err:
        hint = "free space first" if err.errno in (errno.ENOSPC, errno.EDQUOT) else (
            "make it writable, or copy the run folder somewhere writable")
        raise UserError(f"cannot write results to {folder}: {err.strerror or err} ({hint})") from None


def write_outputs(outputs: Sequence[tuple[str, Callable[[], object]]], kept: str) -> None:
    """Call each ``(what, write)`` of ``outputs`` in turn. A write that fails (a full disk) ends in one
    :class:`UserError` naming ``what`` it was writing, what was written before it, and ``kept``: where the results
    still are (e.g. "the table above holds the results"). Each write must leave no torn file behind."""
    done: list[str] = []
    for what, write in outputs:
        try:
            write()
        except OSError as err:
            written = f"{' and '.join(done)} {'was' if len(done) == 1 else 'were'}" if done else "nothing was"
            raise UserError(f"cannot write {what}: {err.strerror or err}; {kept} ({written} written): free space and "
                            "run the command again") from None
        done.append(what)


def log_events(folder: Path, write: Callable[[EventFile], object]) -> None:
    """``write`` TensorBoard events to a new event file in ``folder``; if a write fails, the file is removed (a
    part of an evaluation's events would read as the whole) and the :class:`OSError` raised."""
    events = EventFile(folder)
    try:
        write(events)
    except OSError:
        events.close()
        events.path.unlink(missing_ok=True)
        raise
    events.close()


def write_report(run_dir: str | Path, result: AdaptationResult, title: str) -> Path:
    """Write ``eval/adaptation.json`` and ``eval/adaptation.png``, log to TensorBoard, print the table; a write
    that fails (a full disk) is one :class:`UserError` (:func:`write_outputs`)."""
    out = Path(run_dir) / "eval"
    print(f"{title}\n{format_table(result)}", flush=True)  # the numbers first: a failed write cannot lose them
    path = out / "adaptation.json"

    def scalars(events: EventFile) -> None:
        for name, values in result.metrics().items():
            for row in summarize(values):
                events.add_scalar(f"eval/{name}_mean", row["mean"], int(row["steps"]))
                events.add_scalar(f"eval/{name}_ci95", row["ci95"], int(row["steps"]))

    write_outputs([
        (str(path), lambda: write_text_atomic(path, json.dumps(json_safe(result.to_json()), indent=2))),
        (str(out / "adaptation.png"), lambda: plot_adaptation([("", result)], out / "adaptation.png", title)),
        (f"TensorBoard events in {out}", lambda: log_events(out, scalars)),
    ], "the table above holds the results")
    print(f"wrote {path} and {out / 'adaptation.png'}")
    return path
