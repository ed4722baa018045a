"""Run folders: the file that makes a folder a run, and the check every command that reads one makes."""

from __future__ import annotations

from pathlib import Path

from rl_alphamaml.errors import UserError

CONFIG_FILE = "config.yaml"


def config_path(run_dir: str | Path) -> Path:
    """``RUN_DIR/config.yaml`` of an existing run folder; a folder without one is a one-line :class:`UserError`."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise UserError(f"{run_dir}: not a run folder (no {CONFIG_FILE})")
    return path
