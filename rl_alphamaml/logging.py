"""Run logging: TensorBoard events plus a ``metrics.jsonl`` record of every logged scalar.

Scalars are grouped by prefix (README, "TensorBoard": ``meta/alpha``, ``loss/post_adapt``,
``returns/pre_adapt``, ``time/…``). The JSON-lines file holds the same numbers, one line per
iteration, for scripts and tests. On resume both are cut back to the checkpoint's iteration, so a
resumed run's log reads as if it had never stopped.

Both files are appended one whole record at a time: a write that fails (a full disk) is cut back off the
file, so neither ends in a torn record, and :class:`RunLogger` keeps the failure (:attr:`RunLogger.failures`)
instead of raising it in the middle of an iteration — the runner decides what to save and stops. The events
are written by :class:`EventFile`, synchronously: TensorBoard's own writer appends from a background thread,
which prints a traceback of its own when the disk fills and raises the error later, at any call.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import socket
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tensorboard.compat.proto.event_pb2 import Event, SessionLog
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.summary.writer.record_writer import RecordWriter
from torch.utils.tensorboard import summary

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


def append_whole(fd: int, data: bytes) -> None:
    """Append ``data`` to the file open as ``fd`` (``O_APPEND``), all or nothing: a write that fails part-way (a
    full disk) is cut back off before the :class:`OSError` is raised."""
    size = os.fstat(fd).st_size
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view):]
    except OSError:
        os.ftruncate(fd, size)
        raise


_EVENT_FILES = itertools.count()


def _histogram_bins() -> list[float]:
    """TensorBoard's default histogram bucket edges (as ``SummaryWriter.default_bins``)."""
    edges, v = [], 1e-12
    while v < 1e20:
        edges.append(v)
        v *= 1.1
    return [-e for e in reversed(edges)] + [0.0] + edges


class EventFile:
    """A TensorBoard event file in ``log_dir`` (``events.out.tfevents.<time>.<host>.<pid>.<n>``, the name
    TensorBoard's ``SummaryWriter`` gives it), written synchronously one whole record at a time.

    ``purge_step`` (a resume's first iteration) tells TensorBoard to hide the events of earlier files at and after
    that step, as ``SummaryWriter(purge_step=…)`` does. A write that fails raises :class:`OSError` and leaves the
    file as it was; a file that cannot be started is removed.
    """

    BINS = _histogram_bins()

    def __init__(self, log_dir: str | Path, purge_step: int | None = None) -> None:
        self.path = Path(log_dir) / (f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}."
                                     f"{os.getpid()}.{next(_EVENT_FILES)}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        self._records = RecordWriter(self)
        try:
            self.add_event(Event(file_version="brain.Event:2"))
            if purge_step is not None:
                self.add_event(Event(file_version="brain.Event:2"), purge_step)
                self.add_event(Event(session_log=SessionLog(status=SessionLog.START)), purge_step)
        except OSError:
            self.close()
            self.path.unlink(missing_ok=True)
            raise

    def write(self, data: bytes) -> None:
        """One encoded record (called by TensorBoard's ``RecordWriter``)."""
        if self._fd is None:
            raise ValueError(f"{self.path} is closed")
        append_whole(self._fd, data)

    def flush(self) -> None:
        """Nothing to do: every record is written when it is added."""

    def add_event(self, event: Event, step: int | None = None) -> None:
        event.wall_time = time.time()
        if step is not None:
            event.step = int(step)
        self._records.write(event.SerializeToString())

    def add_summary(self, value: Summary, step: int | None = None) -> None:
        self.add_event(Event(summary=value), step)

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.add_summary(summary.scalar(tag, float(value)), step)

    def add_text(self, tag: str, text: str, step: int = 0) -> None:
        self.add_summary(summary.text(tag, text), step)

    def add_histogram(self, tag: str, values: Any, step: int) -> None:
        self.add_summary(summary.histogram(tag, np.asarray(values, dtype=np.float64), self.BINS), step)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class RunLogger:
    """Writes scalars, text and histograms for one run; ``start_iteration`` > 1 resumes its logs.

    A write that fails — starting the files (a resume's trimmed ``metrics.jsonl``, a new events file) or adding
    to them — is kept in :attr:`failures` (``{"metrics.jsonl" | "TensorBoard events": error}``), that file is
    written no more, and the call returns normally: the caller checks :attr:`failures` after each iteration."""

    METRICS = "metrics.jsonl"
    EVENTS = "TensorBoard events"

    def __init__(self, run_dir: str | Path, start_iteration: int = 1) -> None:
        self.run_dir = Path(run_dir)
        self.metrics_path = RunDir(self.run_dir).metrics
        self.failures: dict[str, OSError] = {}
        self._metrics: int | None = None
        self.events: EventFile | None = None
        try:
            if start_iteration > 1:
                kept = [r for r in read_metrics(self.run_dir) if r.get("iteration", 0) < start_iteration]
                write_text_atomic(self.metrics_path, "".join(json.dumps(r) + "\n" for r in kept))
            elif self.metrics_path.exists():
                self.metrics_path.unlink()
            self._metrics = os.open(self.metrics_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as err:
            self.failures[self.METRICS] = err
        if self.failures:  # the run stops at once: no events file to leave behind
            return
        try:
            self.events = EventFile(self.run_dir, purge_step=start_iteration if start_iteration > 1 else None)
        except OSError as err:
            self.failures[self.EVENTS] = err

    def _events(self, method: str, *args: Any) -> None:
        if self.events is not None and self.EVENTS not in self.failures:
            try:
                getattr(self.events, method)(*args)
            except OSError as err:
                self.failures[self.EVENTS] = err

    def scalars(self, iteration: int, values: Mapping[str, float]) -> None:
        """Log scalars at ``iteration`` as one JSON line, then to TensorBoard."""
        record: dict[str, Any] = {"iteration": iteration}
        for tag, value in values.items():
            value = float(value)
            record[tag] = value if math.isfinite(value) else str(value)
        if self._metrics is not None and self.METRICS not in self.failures:
            try:
                append_whole(self._metrics, (json.dumps(record) + "\n").encode())
            except OSError as err:
                self.failures[self.METRICS] = err
        for tag, value in values.items():
            self._events("add_scalar", tag, float(value), iteration)

    def text(self, tag: str, text: str, iteration: int = 0) -> None:
        self._events("add_text", tag, text, iteration)

    def hparams(self, values: Mapping[str, Any], metrics: Sequence[str]) -> None:
        """Declare the run's hyperparameters and its key metric tags for TensorBoard's HPARAMS tab, where
        runs can be compared side by side (the metrics' values are the scalars logged under those tags)."""

        def plain(value: Any) -> bool | int | float | str:
            return value if isinstance(value, (bool, int, float, str)) else str(value)

        experiment, start, end = summary.hparams({k: plain(v) for k, v in values.items()},
                                                 {tag: 0.0 for tag in metrics})
        for part in (experiment, start, end):
            self._events("add_summary", part)

    def histogram(self, tag: str, values: Any, iteration: int) -> None:
        self._events("add_histogram", tag, values, iteration)

    def close(self) -> None:
        if self.events is not None:
            self.events.close()
        if self._metrics is not None:
            os.close(self._metrics)
            self._metrics = None
