"""The scripts in ``examples/`` run, each at the tiny budget of its ``--tiny`` flag (seconds), as a user runs them."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def run_example(name: str, *args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> str:
    """Run ``examples/<name>`` with ``--tiny`` in a fresh interpreter; return its output (fails on a non-zero exit)."""
    environ = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    done = subprocess.run([sys.executable, str(EXAMPLES / name), "--tiny", *args], cwd=cwd, env=environ,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{name} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def adaptation_rows(output: str) -> list[int]:
    """The step column of the adaptation table the RL examples print (``rl_alphamaml.evaluation.format_table``)."""
    return [int(m.group(1)) for m in re.finditer(r"^\s+(\d+)\s+-?\d+\.\d+\s+±", output, flags=re.MULTILINE)]


def test_every_example_is_tested() -> None:
    tested = {"custom_task_family.py", "meta_optimizer_sinusoid.py", "custom_outer_step.py", "zoo_policy.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


def test_custom_task_family() -> None:
    out = run_example("custom_task_family.py")
    goal = re.search(r"rl_alphamaml/RingNavigation-v0: task \{\"kind\": \"goal\", \"goal\": \[(\S+), (\S+)\]\}", out)
    assert goal, out
    assert abs(math.hypot(float(goal.group(1)), float(goal.group(2))) - 0.4) < 1e-9  # drawn from the new family
    assert "iteration   2:" in out  # meta-trained through the RL learner on it
    assert adaptation_rows(out) == [0, 1]  # and evaluated on held-out goals


def test_meta_optimizer_on_your_own_model() -> None:
    out = run_example("meta_optimizer_sinusoid.py")
    first = re.search(r"iteration\s+1: query MSE\s+[\d.]+\s+α ([\d.]+)\s+β ([\d.]+)", out)
    final = re.search(r"held-out MSE .*: before adaptation ([\d.]+), after 1 step ([\d.]+), after 10 steps ([\d.]+)\n"
                      r"final rates: α ([\d.]+), β ([\d.]+)", out)
    assert first and final, out
    # α and β moved by their hypergradients from their starting values (0.01 and 1e-3)
    assert float(final.group(4)) != 0.01 and float(final.group(5)) != 0.001


def test_custom_outer_step_is_registered_and_trains() -> None:
    out = run_example("custom_outer_step.py")
    shifts = [float(x) for x in re.findall(r"\|mean θ′ − θ\| ([\d.]+)", out)]
    assert len(shifts) == 2 and all(s > 0 for s in shifts), out  # the Reptile step ran each iteration
    assert adaptation_rows(out) == [0, 1, 2]


def test_zoo_policy_adapts_and_renders(tmp_path: Path) -> None:
    gif = tmp_path / "zoo.gif"
    out = run_example("zoo_policy.py", "--velocity", "1.2", "--out", str(gif), env={"MUJOCO_GL": "egl"},
                      cwd=tmp_path)
    assert "zoo/halfcheetah_vel/checkpoints/iter_000300.pt" in out
    assert re.search(r"after 0 steps: mean return\s+-?[\d.]+\n\s+after 1 step: mean return\s+-?[\d.]+", out), out
    if "no video:" in out:
        pytest.skip(f"rendering is unavailable here: {out.split('no video:', 1)[1].strip()}")
    assert gif.read_bytes()[:6] == b"GIF89a"
