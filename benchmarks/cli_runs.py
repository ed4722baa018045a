"""Resumable CLI runs for the benchmark scripts that train through ``rl-alphamaml`` (locomotion_paper.py,
build_zoo.py): every run is a real ``rl-alphamaml train`` in its own process, so a killed script loses at most
the iterations since the last checkpoint."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from rl_alphamaml.checkpoint import list_checkpoints

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str) -> None:
    """Run ``rl-alphamaml ARGS`` from the repository root; a failure stops the script."""
    print("$ rl-alphamaml " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "rl_alphamaml", *args], cwd=ROOT, check=True)


def last_iteration(run_dir: Path) -> int:
    """The newest checkpoint's iteration (0 when there is none)."""
    found = list_checkpoints(run_dir)
    return found[-1][0] if found else 0


def train_to(run_dir: Path, config: str, sets: list[str], iterations: int) -> None:
    """Make ``run_dir`` a finished run of ``configs/<config>.yaml`` with ``--set`` values ``sets`` (which set
    ``train.iterations`` to ``iterations``): reuse it when done, resume it when interrupted, else train it."""
    done = last_iteration(run_dir)
    if done >= iterations:
        print(f"{run_dir.name}: done ({done} iterations)", flush=True)
    elif done > 0:
        cli("train", "--resume", str(run_dir))
    else:
        if run_dir.exists():
            shutil.rmtree(run_dir)  # killed before its first checkpoint: nothing to keep
        cli("train", f"configs/{config}.yaml", "--run-dir", str(run_dir), *[x for s in sets for x in ("--set", s)])
