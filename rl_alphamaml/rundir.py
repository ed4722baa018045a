"""Run folders: what is in one, what makes a folder a run, and the checks every command that reads one makes.

A run folder holds ``config.yaml`` (the resolved config, always what is in effect), ``metrics.jsonl`` (one record
per iteration), TensorBoard events, ``checkpoints/iter_NNNNNN.pt``, ``changes.log`` (what resumes changed, from
which iteration) and ``eval/`` (reports, videos, comparisons); while a ``train`` runs in it, also ``.lock``
(:mod:`rl_alphamaml.runlock`).
"""

from __future__ import annotations

from pathlib import Path

from rl_alphamaml.errors import UserError

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
CHANGES_FILE = "changes.log"
EVENTS_GLOB = "events.out.tfevents.*"


class RunDir:
    """The files of one run folder (which need not exist yet)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @property
    def config(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def metrics(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def changes(self) -> Path:
        return self.path / CHANGES_FILE

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def eval(self) -> Path:
        return self.path / "eval"

    def require(self) -> RunDir:
        """``self`` if the folder is a run (it has its config), else a one-line :class:`UserError`."""
        if not self.config.is_file():
            raise UserError(f"{self.path}: not a run folder (no {CONFIG_FILE})")
        return self

    def start_files(self) -> list[Path]:
        """The files a run writes when it starts (config, metrics, TensorBoard events) that are here."""
        return [p for p in (self.config, self.metrics) if p.exists()] + sorted(self.path.glob(EVENTS_GLOB))


def file_in_the_way(path: str | Path) -> Path | None:
    """The file (not folder) at ``path`` or at one of its parents, which would stop a folder being made there."""
    path = Path(path)
    return next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)


def config_path(run_dir: str | Path) -> Path:
    """``RUN_DIR/config.yaml`` of an existing run folder; a folder without one is a one-line :class:`UserError`."""
    return RunDir(run_dir).require().config
