"""Atomic, verifiable checkpoints.

A checkpoint is a dict of plain tensors and Python scalars saved with :func:`torch.save` and read back
with ``torch.load(weights_only=True)``, so loading never runs code from the file. It is written to a
temporary file in the same folder, flushed to disk and renamed over the final name: a process killed
mid-save leaves the previous checkpoints intact, never a truncated newest one.

Files are ``RUN_DIR/checkpoints/iter_000123.pt``; the newest iteration is the one ``--resume`` uses.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from rl_alphamaml.atomic import temporary, write_atomic
from rl_alphamaml.errors import CheckpointError
from rl_alphamaml.rundir import RunDir

FORMAT = "rl_alphamaml.checkpoint"
VERSION = 1
_NAME = re.compile(r"^iter_(\d+)\.pt$")


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def checkpoint_path(run_dir: str | Path, iteration: int) -> Path:
    return checkpoint_dir(run_dir) / f"iter_{iteration:06d}.pt"


def remove_stale_temporaries(run_dir: str | Path) -> list[Path]:
    """Delete the temporaries that a write killed mid-way (SIGKILL, power loss) left in ``run_dir`` — of its
    checkpoints, ``config.yaml``, ``metrics.jsonl`` and ``changes.log`` (:mod:`rl_alphamaml.atomic`); returns
    them. Call only when no other process writes to the run."""
    run = RunDir(run_dir)
    targets = (checkpoint_dir(run_dir) / "iter_*.pt", run.config, run.metrics, run.changes)
    stale = sorted(p for t in targets if t.parent.is_dir() for p in t.parent.glob(temporary(t, "*").name))
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def save_checkpoint(path: str | Path, kind: str, iteration: int, state: dict[str, Any],
                    record: dict[str, str] | None = None) -> Path:
    """Atomically write ``state`` (tensors and Python scalars only) for ``iteration`` to ``path``; ``record``:
    what a resume that changed the rates is about to write to the run folder
    (:func:`rl_alphamaml.resume.finish_interrupted`)."""
    payload = {"format": FORMAT, "version": VERSION, "kind": kind, "iteration": iteration, "state": state}
    if record is not None:
        payload["record"] = record
    return write_atomic(path, lambda f: torch.save(payload, f))


def load_checkpoint(path: str | Path, kind: str | None = None) -> dict[str, Any]:
    """Read and check a checkpoint; a missing, corrupt or foreign file raises :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"{path}: not a readable checkpoint (corrupt, truncated, or not saved by rl_alphamaml): {reason}. "
            "Delete it to resume from the previous checkpoint."
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an rl_alphamaml checkpoint (no '{FORMAT}' header)")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {payload.get('version')}, expected {VERSION}")
    if kind is not None and payload.get("kind") != kind:
        raise CheckpointError(f"{path}: a checkpoint of a {payload.get('kind')!r} run, not of a {kind!r} run")
    return payload


def restore_state(target: Any, payload: dict[str, Any], path: str | Path) -> None:
    """``target.load_state_dict(payload["state"])``; a state that does not fit ``target`` (another model size,
    another task family, no model at all) raises :class:`CheckpointError` instead of a traceback."""
    try:
        target.load_state_dict(payload["state"])
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError, AttributeError) as err:
        text = str(err).strip()
        reason = text.splitlines()[0] if text else type(err).__name__
        raise CheckpointError(f"{path}: this checkpoint does not match the run's config (a different model, task "
                              f"family or kind of experiment?): {type(err).__name__}: {reason}") from None


def list_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """``(iteration, path)`` of every checkpoint in the run, oldest first."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return sorted(found)


def latest_checkpoint(run_dir: str | Path) -> Path:
    """The newest checkpoint of a run, or :class:`CheckpointError` if it has none."""
    found = list_checkpoints(run_dir)
    if not found:
        raise CheckpointError(f"{run_dir}: no checkpoints in {checkpoint_dir(run_dir)}")
    return found[-1][1]


def prune_checkpoints(run_dir: str | Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints (``keep == 0`` keeps all)."""
    if keep <= 0:
        return
    for _, path in list_checkpoints(run_dir)[:-keep]:
        path.unlink(missing_ok=True)
