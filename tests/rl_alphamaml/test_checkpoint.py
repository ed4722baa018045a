"""Checkpoints: atomic writes, weights-only loading, clear errors for corrupt or foreign files."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from rl_alphamaml.checkpoint import (
    checkpoint_path,
    latest_checkpoint,
    load_checkpoint,
    prune_checkpoints,
    save_checkpoint,
)
from rl_alphamaml.errors import CheckpointError


def test_round_trip_and_latest(tmp_path: Path) -> None:
    state = {"model": {"w": torch.arange(3.0)}, "beta": 0.5, "steps": [1, 2]}
    for it in (10, 20, 5):
        save_checkpoint(checkpoint_path(tmp_path, it), "sinusoid", it, state)
    assert latest_checkpoint(tmp_path).name == "iter_000020.pt"
    payload = load_checkpoint(latest_checkpoint(tmp_path), kind="sinusoid")
    assert payload["iteration"] == 20 and torch.equal(payload["state"]["model"]["w"], torch.arange(3.0))
    assert not list((tmp_path / "checkpoints").glob(".*tmp*"))
    prune_checkpoints(tmp_path, keep=2)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["iter_000010.pt", "iter_000020.pt"]


def test_corrupt_truncated_and_foreign_files(tmp_path: Path) -> None:
    good = save_checkpoint(tmp_path / "good.pt", "sinusoid", 1, {"x": torch.ones(100)})
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(truncated)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00\x01 this is not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(garbage)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.ones(2)}}, foreign)
    with pytest.raises(CheckpointError, match="not an rl_alphamaml checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="not of a 'rl' run"):
        load_checkpoint(good, kind="rl")
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="no checkpoints"):
        latest_checkpoint(tmp_path / "empty")


def test_code_in_a_checkpoint_is_never_run(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self) -> tuple:
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"format": "rl_alphamaml.checkpoint", "evil": Evil()}, f)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_a_failed_save_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save_checkpoint(tmp_path / "c.pt", "sinusoid", 1, {"x": torch.ones(2)})

    def broken_save(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, "sinusoid", 2, {"x": torch.zeros(2)})
    assert load_checkpoint(path)["iteration"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]
