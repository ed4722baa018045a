"""Writing a benchmark's results files: each whole or not at all, and a full disk as one line.

The scripts write ``benchmarks/results/…`` through :func:`write_text` and :func:`save_figure` (a temporary renamed
over the file: :mod:`rl_alphamaml.atomic`) and run their ``main`` through :func:`run`, which turns a file that
cannot be written (a full disk, a read-only checkout) into one ``<script>: error: cannot write …`` line saying
what is safe, and exit status 2, as ``rl-alphamaml`` does. A failed ``rl-alphamaml`` command that a script runs
ends it with that command's own line and status (:func:`cli_runs.cli`).

Usage::

    results_io.write_text(args.out / "study.md", text)
    results_io.save_figure(fig, args.out / "study.png")
    if __name__ == "__main__":
        results_io.run(main)
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rl_alphamaml.atomic import write_figure_atomic, write_text_atomic


class ResultsWriteError(Exception):
    """A results file could not be written; ``kept`` says what is safe."""

    def __init__(self, path: Path, err: OSError, kept: str = "") -> None:
        self.path, self.err = path, err
        self.kept = kept or f"{path} is as it was"
        super().__init__(f"cannot write {path}: {err.strerror or err}; {self.kept}: free space and run the same "
                         "command again")


def write_text(path: Path, text: str, kept: str = "") -> Path:
    """Write ``text`` to ``path`` atomically; a failure is a :class:`ResultsWriteError` (``kept``: what is safe,
    by default that ``path`` is as it was)."""
    try:
        return write_text_atomic(path, text)
    except OSError as err:
        raise ResultsWriteError(Path(path), err, kept) from None


def save_figure(fig: Any, path: Path) -> Path:
    """Save a matplotlib figure to ``path`` atomically, in the format its suffix names, and close it."""
    try:
        return write_figure_atomic(fig, path)
    except OSError as err:
        raise ResultsWriteError(Path(path), err) from None


def run(main: Callable[[], object]) -> None:
    """Run a script's ``main``; a results file it cannot write ends it with one line and status 2."""
    try:
        main()
    except ResultsWriteError as err:
        print(f"{Path(sys.argv[0]).name}: error: {err}", file=sys.stderr)
        sys.exit(2)
