"""The shipped meta-trained policies in zoo/: complete, small, loadable, and adapting as their eval says."""

from __future__ import annotations

import ctypes.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rl_alphamaml.cli import main

ROOT = Path(__file__).resolve().parents[2]
ZOO = ROOT / "zoo"
ENTRIES = ("halfcheetah_dir", "halfcheetah_vel", "navigation2d", "ant_dir", "ant_vel", "ant_goal")


@pytest.mark.parametrize("name", ENTRIES)
def test_a_zoo_entry_is_a_complete_small_run_folder(name: str) -> None:
    entry = ZOO / name
    checkpoints = sorted((entry / "checkpoints").glob("iter_*.pt"))
    assert len(checkpoints) == 1 and checkpoints[0].stat().st_size < 1_000_000
    for part in ("config.yaml", "metrics.jsonl", "eval/adaptation.json", "eval/adaptation.png", "COMMAND"):
        assert (entry / part).is_file(), part
    iterations = len((entry / "metrics.jsonl").read_text().splitlines())
    assert checkpoints[0].name == f"iter_{iterations:06d}.pt"
    report = json.loads((entry / "eval" / "adaptation.json").read_text())
    assert report["num_tasks"] == 40 and report["checkpoint_iteration"] == iterations
    one_step = report["adaptation"][1]
    # The shipped claim: one gradient step on a new task helps, with a paired 95 % interval that excludes 0.
    assert one_step["change"] - one_step["change_ci95"] > 0
    assert "rl-alphamaml train" in (entry / "COMMAND").read_text()


@pytest.mark.parametrize("name", ENTRIES)
def test_a_zoo_policy_evaluates_from_a_fresh_copy(name: str, tmp_path: Path) -> None:
    entry = Path(shutil.copytree(ZOO / name, tmp_path / name))
    shutil.rmtree(entry / "eval")
    assert main(["evaluate", str(entry), "--tasks", "2", "--steps", "1", "--episodes", "2"]) == 0
    report = json.loads((entry / "eval" / "adaptation.json").read_text())
    assert report["num_tasks"] == 2 and report["episodes_per_task"] == 2


def test_the_zoo_cheetah_is_filmed_where_mujoco_can_render(tmp_path: Path) -> None:
    entry = Path(shutil.copytree(ZOO / "halfcheetah_dir", tmp_path / "halfcheetah_dir"))
    gl = os.environ.get("MUJOCO_GL") or ("osmesa" if ctypes.util.find_library("OSMesa") else "egl")
    env = {**os.environ, "MUJOCO_GL": gl, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "rl_alphamaml", "evaluate", str(entry), "--tasks", "1", "--steps", "1",
                           "--episodes", "2", "--video", "--video-tasks", "1"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    if "no videos" in proc.stderr:
        pytest.skip(f"MuJoCo offscreen rendering is unavailable here with MUJOCO_GL={gl}: {proc.stderr.strip()}")
    assert (entry / "eval" / "videos" / "task0_before_after.gif").stat().st_size > 10_000


def test_the_metaworld_entry_is_scored_with_metaworlds_protocol() -> None:
    """zoo/metaworld_reach: a complete run folder whose report is Meta-World's own evaluation (the success rate on
    the class's 50 test goals), one step raising it beyond the paired 95 % interval, on the local sampler."""
    entry = ZOO / "metaworld_reach"
    checkpoints = sorted((entry / "checkpoints").glob("iter_*.pt"))
    iterations = len((entry / "metrics.jsonl").read_text().splitlines())
    assert [c.name for c in checkpoints] == [f"iter_{iterations:06d}.pt"]
    assert (entry / "eval" / "videos" / "task0_before_after.gif").is_file()
    report = json.loads((entry / "eval" / "adaptation.json").read_text())
    assert (report["protocol"], report["metric"], report["num_tasks"]) == ("metaworld", "success_rate", 50)
    assert report["checkpoint_iteration"] == iterations
    one_step = report["adaptation"][1]
    assert one_step["change"] - one_step["change_ci95"] > 0
    assert "backend: local" in (entry / "config.yaml").read_text()
    assert "--protocol metaworld" in (entry / "COMMAND").read_text()


@pytest.mark.metaworld
def test_the_metaworld_entry_evaluates_from_a_fresh_copy(tmp_path: Path) -> None:
    entry = Path(shutil.copytree(ZOO / "metaworld_reach", tmp_path / "metaworld_reach"))
    shutil.rmtree(entry / "eval")
    assert main(["evaluate", str(entry), "--protocol", "metaworld", "--tasks", "1", "--episodes", "2"]) == 0
    report = json.loads((entry / "eval" / "adaptation.json").read_text())
    assert (report["metric"], report["num_tasks"], report["adaptation_episodes"]) == ("success_rate", 1, 2)
