"""Run logging: TensorBoard events plus a ``metrics.jsonl`` record of every logged scalar.

Scalars are grouped by prefix (README, "TensorBoard": ``meta/alpha``, ``loss/post_adapt``,
``returns/pre_adapt``, ``time/…``). The JSON-lines file holds the same numbers, one line per
iteration, for scripts and tests. On resume both are cut back to the checkpoint's iteration, so a
resumed run's log reads as if it had never stopped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.tensorboard import SummaryWriter

from rl_alphamaml.atomic import write_text_atomic
from rl_alphamaml.errors import UserError
from rl_alphamaml.rundir import RunDir


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every record in a run's ``metrics.jsonl``, in order. A torn last line (a kill during its write) is
    skipped; a damaged line before it raises :class:`~rl_alphamaml.errors.UserError` — skipping it would let a
    resume, which rewrites the file, delete that iteration's record."""
    path = RunDir(run_dir).metrics
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    records = []
    for number, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            if number == len(lines):
                break
            raise UserError(f"{path}, line {number}: not a JSON record ({err.msg}); the file was damaged or "
                            "edited: repair or delete that line (TensorBoard's events file holds the same "
                            "numbers)") from None
    return records


class RunLogger:
    """Writes scalars, text and histograms for one run; ``start_iteration`` > 1 resumes its logs."""

    def __init__(self, run_dir: str | Path, start_iteration: int = 1) -> None:
        self.run_dir = Path(run_dir)
        self.metrics_path = RunDir(self.run_dir).metrics
        if start_iteration > 1:
            kept = [r for r in read_metrics(self.run_dir) if r.get("iteration", 0) < start_iteration]
            write_text_atomic(self.metrics_path, "".join(json.dumps(r) + "\n" for r in kept))
        elif self.metrics_path.exists():
            self.metrics_path.unlink()
        self.writer = SummaryWriter(
            log_dir=str(self.run_dir), purge_step=start_iteration if start_iteration > 1 else None
        )
        self._metrics = open(self.metrics_path, "a")  # noqa: SIM115 - kept open for the run

    def scalars(self, iteration: int, values: Mapping[str, float]) -> None:
        """Log scalars at ``iteration`` to TensorBoard and as one JSON line."""
        record: dict[str, Any] = {"iteration": iteration}
        for tag, value in values.items():
            value = float(value)
            self.writer.add_scalar(tag, value, iteration)
            record[tag] = value if math.isfinite(value) else str(value)
        self._metrics.write(json.dumps(record) + "\n")
        self._metrics.flush()

    def text(self, tag: str, text: str, iteration: int = 0) -> None:
        self.writer.add_text(tag, text, iteration)

    def hparams(self, values: Mapping[str, Any], metrics: Sequence[str]) -> None:
        """Declare the run's hyperparameters and its key metric tags for TensorBoard's HPARAMS tab, where
        runs can be compared side by side (the metrics' values are the scalars logged under those tags)."""
        from torch.utils.tensorboard.summary import hparams

        def plain(value: Any) -> bool | int | float | str:
            return value if isinstance(value, (bool, int, float, str)) else str(value)

        experiment, start, end = hparams({k: plain(v) for k, v in values.items()}, {tag: 0.0 for tag in metrics})
        for summary in (experiment, start, end):
            self.writer._get_file_writer().add_summary(summary)

    def histogram(self, tag: str, values: Any, iteration: int) -> None:
        self.writer.add_histogram(tag, np.asarray(values, dtype=np.float64), iteration)

    def close(self) -> None:
        self.writer.close()
        self._metrics.close()
