"""A full disk, on a real file system: each of train's write paths in turn (config, TensorBoard events,
metrics.jsonl, checkpoint), evaluate's and its videos' fills a tmpfs (``small_disk``, tests/conftest.py) sized for
it, and ends with one ``rl-alphamaml: error:`` line naming the file and what is safe, status 2, no torn file, and a
folder that the next command continues once there is space again (compare's and ``data omniglot``'s are tested
beside their other tests)."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from rl_alphamaml.checkpoint import list_checkpoints, load_checkpoint
from rl_alphamaml.cli import main
from rl_alphamaml.errors import UserError
from rl_alphamaml.logging import read_metrics
from rl_alphamaml.rendering import Clip, write_videos

if TYPE_CHECKING:
    from conftest import SmallDisk  # tests/conftest.py

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "sinusoid_alpha.yaml"
SMALL = ["--set", "train.meta_batch=4", "--set", "eval.tasks=5", "--set", "eval.query=10"]
PAGE = 4096


def train(run_dir: Path, *sets: str) -> int:
    return main(["train", str(CONFIG), "--run-dir", str(run_dir), *SMALL, *[x for s in sets for x in ("--set", s)]])


def resume(run_dir: Path, *sets: str) -> int:
    return main(["train", "--resume", str(run_dir), *[x for s in sets for x in ("--set", s)]])


def error_line(capsys: pytest.CaptureFixture[str], *expected: str) -> str:
    """The one error line that ended the command, with each of ``expected`` in it; no traceback."""
    lines = capsys.readouterr().err.splitlines()
    errors = [line for line in lines if line.startswith("rl-alphamaml: error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], lines
    assert not any("Traceback" in line for line in lines), lines
    for text in expected:
        assert text in errors[0], errors[0]
    return errors[0]


def no_temporaries(run_dir: Path) -> None:
    """Nothing torn: no temporary of an atomic write, no lock file, every events file ends with a whole record."""
    assert not [p for p in run_dir.rglob(".*") if p.is_file()], list(run_dir.rglob(".*"))
    for events in run_dir.glob("events.out.tfevents.*"):
        data, offset = events.read_bytes(), 0
        while offset < len(data):  # a record: length (8 bytes), its CRC (4), the data, its CRC (4)
            offset += 16 + int.from_bytes(data[offset:offset + 8], "little")
        assert offset == len(data), f"{events} ends in a torn record"


def test_a_full_disk_at_the_config_leaves_the_folder_for_the_same_command(small_disk: SmallDisk,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = small_disk.path / "run"
    small_disk.leave(0)
    assert train(run_dir, "train.iterations=2") == 2
    error_line(capsys, f"cannot write the lock file {run_dir / '.lock'}: No space left on device",
               f"nothing in {run_dir} was changed")
    small_disk.leave(1)  # the lock file's page
    assert train(run_dir, "train.iterations=2") == 2
    error_line(capsys, f"cannot write {run_dir / 'config.yaml'}: No space left on device", "nothing was written",
               "run the same command again")
    assert list(run_dir.iterdir()) == []
    small_disk.make_room()
    assert train(run_dir, "train.iterations=2") == 0


def test_a_full_disk_in_the_tensorboard_events_still_saves_the_checkpoint(small_disk: SmallDisk,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    # train.keep_checkpoints=2: on a full disk a checkpoint is written after removing the older one, which it would
    # prune anyway; per-parameter α: the events (its histogram each iteration) fill their page before metrics.jsonl
    run_dir = small_disk.path / "run"
    assert train(run_dir, "train.iterations=2", "train.checkpoint_every=1", "train.keep_checkpoints=2",
                 "inner.lr_shape=per_parameter") == 0
    # the resume writes the lock, config.yaml (a temporary, then renamed), changes.log, metrics.jsonl (likewise)
    # and a new events file: three pages more, then the disk is full
    small_disk.leave(3)
    capsys.readouterr()
    assert resume(run_dir, "train.iterations=40") == 2
    line = error_line(capsys, "cannot write TensorBoard events in", "No space left on device",
                      "saved the checkpoint of iteration", f"continue with `rl-alphamaml train --resume {run_dir}`")
    iteration = read_metrics(run_dir)[-1]["iteration"]
    assert 2 < iteration < 40 and f"at iteration {iteration}:" in line
    assert [it for it, _ in list_checkpoints(run_dir)] == [iteration - 1, iteration]
    assert load_checkpoint(list_checkpoints(run_dir)[-1][1])["iteration"] == iteration
    no_temporaries(run_dir)
    small_disk.make_room()
    assert resume(run_dir) == 0
    assert [r["iteration"] for r in read_metrics(run_dir)] == list(range(1, 41))


def test_a_full_disk_in_metrics_jsonl_keeps_the_newest_checkpoint(tmp_path: Path, small_disk: SmallDisk,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    # where metrics.jsonl needs its second page: lines are the same in every run of the config (seeded streams)
    reference = tmp_path / "reference"
    assert train(reference, "train.iterations=16", "train.checkpoint_every=100") == 0
    sizes = [len(line) + 1 for line in (reference / "metrics.jsonl").read_text().splitlines()]
    fits = max(n for n in range(len(sizes) + 1) if sum(sizes[:n]) <= PAGE)
    assert fits < len(sizes)
    run_dir = small_disk.path / "run"
    assert train(run_dir, f"train.iterations={fits}", "train.checkpoint_every=1") == 0
    # three pages for the resume's start (as above); the events of its first iteration fit in the new file's page
    small_disk.leave(3)
    capsys.readouterr()
    assert resume(run_dir, f"train.iterations={fits + 5}") == 2
    error_line(capsys, f"cannot write metrics.jsonl in {run_dir} at iteration {fits + 1}: No space left on device",
               f"the newest checkpoint is {run_dir / 'checkpoints' / f'iter_{fits:06d}.pt'}",
               f"(it trains iteration {fits + 1} again)")
    assert (run_dir / "metrics.jsonl").stat().st_size == sum(sizes[:fits])  # the failed line is not in it
    assert list_checkpoints(run_dir)[-1][0] == fits  # no checkpoint of an iteration the record lacks
    no_temporaries(run_dir)
    small_disk.make_room()
    assert resume(run_dir) == 0
    assert read_metrics(run_dir) == read_metrics(reference)[:fits + 5]


def test_a_full_disk_at_a_checkpoint_keeps_the_one_before(tmp_path: Path, small_disk: SmallDisk,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    reference = tmp_path / "reference"
    assert train(reference, "train.iterations=1") == 0
    pages = math.ceil((reference / "checkpoints" / "iter_000001.pt").stat().st_size / PAGE)
    run_dir = small_disk.path / "run"
    # the lock, config.yaml, the events, metrics.jsonl, one checkpoint and a page for the events' growth
    small_disk.leave(4 + pages + 1)
    capsys.readouterr()
    assert train(run_dir, "train.iterations=3", "train.checkpoint_every=1") == 2
    error_line(capsys, f"cannot write the checkpoint of iteration 2 in {run_dir}: No space left on device",
               f"the newest checkpoint is {run_dir / 'checkpoints' / 'iter_000001.pt'}",
               "(it trains iteration 2 again)")
    assert [it for it, _ in list_checkpoints(run_dir)] == [1]
    no_temporaries(run_dir)
    small_disk.make_room()
    assert resume(run_dir) == 0
    assert [r["iteration"] for r in read_metrics(run_dir)] == [1, 2, 3]


def test_a_full_disk_under_a_resumes_new_rate_changes_nothing(small_disk: SmallDisk,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    # a new α is first written into the checkpoint the run resumes from: a whole checkpoint more, for a moment
    run_dir = small_disk.path / "run"
    assert train(run_dir, "train.iterations=2", "train.checkpoint_every=1") == 0
    config = (run_dir / "config.yaml").read_text()
    small_disk.leave(1)  # the lock file's page
    capsys.readouterr()
    assert resume(run_dir, "train.iterations=3", "inner.lr=0.2") == 2
    newest = run_dir / "checkpoints" / "iter_000002.pt"
    error_line(capsys, f"cannot write the new rates into {newest}: No space left on device; the newest checkpoint is "
                       f"{newest}, the --set values are not in effect: free space and run the same command again")
    assert (run_dir / "config.yaml").read_text() == config and not (run_dir / "changes.log").exists()
    assert "record" not in load_checkpoint(newest)
    no_temporaries(run_dir)
    small_disk.make_room()
    assert resume(run_dir, "train.iterations=3", "inner.lr=0.2") == 0
    assert 0.19 < read_metrics(run_dir)[-1]["meta/alpha"] < 0.21


def test_a_full_disk_under_evaluate(small_disk: SmallDisk, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = small_disk.path / "run"
    assert train(run_dir, "train.iterations=1") == 0
    small_disk.leave(0)
    capsys.readouterr()
    assert main(["evaluate", str(run_dir), "--tasks", "2"]) == 2  # found before evaluating
    error_line(capsys, f"cannot write results to {run_dir / 'eval'}: No space left on device (free space first)")
    small_disk.leave(1)  # adaptation.json (2 KB) fits, the plot (20 KB) does not
    assert main(["evaluate", str(run_dir), "--tasks", "2"]) == 2
    captured = capsys.readouterr()
    assert "steps" in captured.out  # the table
    line = captured.err.splitlines()[-1]
    assert line == (f"rl-alphamaml: error: cannot write {run_dir / 'eval' / 'adaptation.png'}: No space left on device;"
                    f" the table above holds the results ({run_dir / 'eval' / 'adaptation.json'} was written): free "
                    "space and run the command again"), line
    assert sorted(p.name for p in (run_dir / "eval").iterdir()) == ["adaptation.json"]
    assert json.loads((run_dir / "eval" / "adaptation.json").read_text())["num_tasks"] == 2
    small_disk.make_room()
    assert main(["evaluate", str(run_dir), "--tasks", "2"]) == 0
    assert (run_dir / "eval" / "adaptation.png").stat().st_size > 1000


def test_a_full_disk_under_the_videos_keeps_what_was_written_whole(small_disk: SmallDisk) -> None:
    # the clips as `evaluate --video` makes them (their GIF bytes need no renderer to be written)
    clips = [Clip("task0_before_after", b"GIF89a" + bytes(100), 8, 8, 2, "small"),
             Clip("task1_before_after", b"GIF89a" + random.Random(0).randbytes(50_000), 8, 8, 2, "large")]
    run_dir = small_disk.path / "run"
    small_disk.leave(1)  # the first clip fits
    with pytest.raises(UserError) as raised:
        write_videos(run_dir, clips, 1)
    videos = run_dir / "eval" / "videos"
    assert str(raised.value) == (f"cannot write {videos / 'task1_before_after.gif'}: No space left on device; the "
                                 f"adaptation report is written ({videos / 'task0_before_after.gif'} was written): "
                                 "free space and run the command again")
    assert sorted(p.name for p in videos.iterdir()) == ["task0_before_after.gif"]
    small_disk.make_room()
    assert write_videos(run_dir, clips, 1) == [videos / f"{c.name}.gif" for c in clips]
    assert (videos / "task1_before_after.gif").read_bytes() == clips[1].gif
