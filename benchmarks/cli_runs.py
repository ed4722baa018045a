"""Resumable CLI runs for the benchmark scripts that train through ``rl-alphamaml`` (locomotion_paper.py,
build_zoo.py): every run is a real ``rl-alphamaml train`` in its own process, so a killed script loses at most
the iterations since the last checkpoint."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from rl_alphamaml.checkpoint import checkpoint_path, list_checkpoints
from rl_alphamaml.cli import load_experiment_config
from rl_alphamaml.config import flat_config

import results_io

ROOT = Path(__file__).resolve().parents[1]
#: settings that do not change a run's numbers: a finished or interrupted run may differ in them (the Omniglot
#: data and cache folders are where the same files lie on this machine; the Ray backend samples the episodes the
#: local one does, agents/ray_sampler.py)
EXECUTION = frozenset({"train.iterations", "train.checkpoint_every", "train.keep_checkpoints", "train.threads",
                       "train.device", "sampler.threads", "sampler.backend", "sampler.address", "sampler.workers",
                       "sampler.max_retries", "data.root", "data.cache_dir"})
#: Omniglot on the project's own machines: a copy in ``shared/omniglot`` beside the checkout
PROJECT_OMNIGLOT = ROOT.parent / "shared" / "omniglot"
OMNIGLOT_HELP = ("Omniglot root (default: $RL_ALPHAMAML_OMNIGLOT, else shared/omniglot beside the checkout when it "
                 "exists, as on the project's machines, else the user data folder that `rl-alphamaml data omniglot` "
                 "fills; docs/omniglot.md)")


def omniglot_root(data: Path | None) -> Path | None:
    """The Omniglot root a benchmark passes as ``data.root`` (see :data:`OMNIGLOT_HELP`): ``data`` when given, else
    :data:`PROJECT_OMNIGLOT` when it exists and ``$RL_ALPHAMAML_OMNIGLOT`` is unset, else ``None`` (the loader's
    own default: the variable, else the user data folder)."""
    if data is not None:
        return data
    return PROJECT_OMNIGLOT if PROJECT_OMNIGLOT.exists() and not os.environ.get("RL_ALPHAMAML_OMNIGLOT") else None


def cli(*args: str) -> None:
    """Run ``rl-alphamaml ARGS`` from the repository root; a failure stops the script with the command's status,
    after its own one-line error (a full disk: the run folder continues with the same script)."""
    print("$ rl-alphamaml " + " ".join(args), flush=True)
    done = subprocess.run([sys.executable, "-m", "rl_alphamaml", *args], cwd=ROOT, check=False)
    if done.returncode != 0:
        sys.exit(done.returncode)


def last_iteration(run_dir: Path) -> int:
    """The newest checkpoint's iteration (0 when there is none)."""
    found = list_checkpoints(run_dir)
    return found[-1][0] if found else 0


def train_command(config: str, sets: list[str]) -> str:
    """The ``rl-alphamaml train`` command of ``configs/<config>.yaml`` with the ``--set`` values ``sets``, as a
    results file records it (no run folder)."""
    return f"rl-alphamaml train configs/{config}.yaml " + " ".join(f"--set {s}" for s in sets)


def train_to(run_dir: Path, config: str, sets: list[str], iterations: int) -> None:
    """Make ``run_dir`` a finished run of ``configs/<config>.yaml`` with ``--set`` values ``sets`` (which set
    ``train.iterations`` to ``iterations``): reuse it when done, resume it when interrupted or shorter (to
    ``iterations``, with the :data:`EXECUTION` settings of ``sets``: a run may continue on another sampler
    backend), else train it."""
    done = last_iteration(run_dir)
    if done > 0:
        differ = config_differences(run_dir, config, sets)
        if differ:
            sys.exit(f"{run_dir} is not a run of configs/{config}.yaml with {sets}: {'; '.join(differ)} "
                     "(move or remove the folder to train it anew)")
    if done >= iterations:
        print(f"{run_dir.name}: done ({done} iterations)", flush=True)
    elif done > 0:
        execution = [s for s in sets if s.split("=", 1)[0] in EXECUTION - {"train.iterations"}]
        cli("train", "--resume", str(run_dir), "--set", f"train.iterations={iterations}",
            *[x for s in execution for x in ("--set", s)])
    else:
        if run_dir.exists():
            shutil.rmtree(run_dir)  # killed before its first checkpoint: nothing to keep
        cli("train", f"configs/{config}.yaml", "--run-dir", str(run_dir), *[x for s in sets for x in ("--set", s)])


def config_differences(run_dir: Path, config: str, sets: list[str]) -> list[str]:
    """``key: in the folder → requested`` for every setting but :data:`EXECUTION` in which the run in
    ``run_dir`` differs from ``configs/<config>.yaml`` with ``sets``."""
    have = flat_config(load_experiment_config(run_dir / "config.yaml")[0])
    want = flat_config(load_experiment_config(ROOT / "configs" / f"{config}.yaml", sets)[0])
    return [f"{k}: {have.get(k)!r} → {want.get(k)!r}" for k in sorted(have.keys() | want.keys())
            if k not in EXECUTION and have.get(k) != want.get(k)]


def evaluate_once(run_dir: Path, *options: str, needs: str | None = None) -> dict[str, Any]:
    """``rl-alphamaml evaluate RUN_DIR OPTIONS`` and its ``eval/adaptation.json``; an earlier report is reused when
    it measured the newest checkpoint (and, with ``needs``, a file matching that glob under ``eval/`` exists). The
    report's checkpoint path is relative to where :func:`cli` runs, the repository root, when not absolute."""
    report = run_dir / "eval" / "adaptation.json"
    newest = checkpoint_path(run_dir, last_iteration(run_dir)).resolve()
    if not (report.is_file() and (ROOT / json.loads(report.read_text())["checkpoint"]).resolve() == newest
            and (needs is None or any((run_dir / "eval").glob(needs)))):
        cli("evaluate", str(run_dir), *options)
    return json.loads(report.read_text())


def evaluate_kept(run_dir: Path, name: str, *options: str) -> dict[str, Any]:
    """``rl-alphamaml evaluate RUN_DIR OPTIONS``, its report kept as ``eval/<name>.json`` beside the newest one (reused
    when there, so ``name`` must stand for the options), e.g. an older checkpoint's or another protocol's."""
    kept = run_dir / "eval" / f"{name}.json"
    if not kept.is_file():
        cli("evaluate", str(run_dir), *options)
        results_io.write_text(kept, (run_dir / "eval" / "adaptation.json").read_text())
    return json.loads(kept.read_text())


def compare_once(dirs: list[Path], out: Path, *options: str) -> dict[str, Any]:
    """``rl-alphamaml compare DIRS --out OUT OPTIONS`` and its ``compare.json``; an earlier report in ``out`` is
    reused when it measured exactly these runs at their newest checkpoints."""
    names = [str(d) for d in dirs]
    done = out / "compare.json"
    if done.is_file():
        runs = json.loads(done.read_text())["runs"]
        if list(runs) == names and all(runs[d]["checkpoint_iteration"] == last_iteration(Path(d)) for d in names):
            return json.loads(done.read_text())
    cli("compare", *names, *options, "--out", str(out))
    return json.loads(done.read_text())


def relative(text: str) -> str:
    """``text`` with this checkout's absolute path removed (commands in the results work from any clone)."""
    return text.replace(str(ROOT) + "/", "")
