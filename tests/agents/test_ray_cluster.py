"""The Ray backend on real multi-node clusters (several raylets on this machine, ``ray.cluster_utils.Cluster``),
through the cluster path docs/rl-learner.md documents (``sampler.address``): a worker node that dies in the middle of a
run (the run finishes on the survivors with the local backend's numbers) and a head node that dies (the run
ends with a checkpoint and one line, and resumes elsewhere to the same numbers)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rl_alphamaml.checkpoint import list_checkpoints
from rl_alphamaml.cli import main
from rl_alphamaml.logging import read_metrics

ray = pytest.importorskip("ray", reason="the Ray backend needs the [distributed] extra (.ci/run installs it)")
from ray.cluster_utils import Cluster  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
NAV = ["configs/navigation2d.yaml", "--set", "train.meta_batch=4", "--set", "sampler.episodes=2", "--set",
       "policy.hidden=[16]", "--set", "outer.optimizer=adam", "--set", "train.checkpoint_every=1"]
ITERATIONS = 8


def numbers(run_dir: Path) -> list[dict[str, float]]:
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in read_metrics(run_dir)]


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same run on the local backend: what the cluster runs must log, number for number."""
    run_dir = tmp_path_factory.mktemp("local") / "run"
    args = [*NAV, "--set", f"train.iterations={ITERATIONS}"]
    assert main(["train", str(ROOT / args[0]), "--run-dir", str(run_dir), *args[1:]]) == 0
    return run_dir


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A head node without CPUs (no worker lands on it) and two one-CPU worker nodes; this process stays out
    of it (the run under test is its own process, as on a real cluster)."""
    made = Cluster(initialize_head=True, connect=False, head_node_args={"num_cpus": 0, "include_dashboard": False})
    for _ in range(2):
        made.add_node(num_cpus=1)
    made.wait_for_nodes()
    yield made
    made.shutdown()


def start_run(cluster: Cluster, run_dir: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "rl_alphamaml", "train", *NAV, "--run-dir", str(run_dir),
           "--set", f"train.iterations={ITERATIONS}", "--set", "sampler.backend=ray",
           "--set", f"sampler.address={cluster.address}", "--set", "sampler.workers=2", "--set", "sampler.threads=1"]
    return subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_iterations(run_dir: Path, n: int, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not (run_dir / "metrics.jsonl").exists() or len(read_metrics(run_dir)) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.05)


def machine_processes(node: object) -> list[int]:
    """Every process of a cluster node: its Ray daemons and everything they started (the actors' workers)."""
    roots = {info.process.pid for infos in node.all_processes.values() for info in infos}  # type: ignore[attr-defined]
    parent = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = set(roots), set(roots)
    while frontier:
        frontier = {pid for pid, ppid in parent.items() if ppid in frontier and pid not in found}
        found |= frontier
    return sorted(found)


def test_a_worker_node_that_dies_mid_run_loses_nothing(cluster: Cluster, local_run: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = start_run(cluster, run_dir)
    wait_for_iterations(run_dir, 2, proc)
    node = cluster.worker_nodes.copy().pop()
    pids = machine_processes(node)
    cluster.remove_node(node, allow_graceful=False)  # a machine goes away: its daemons and its workers at once
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "sampler worker died" in err  # the loss happened, and was survived
    # The dead worker's slice was sampled again by the survivor: the same episodes, so the same numbers.
    assert numbers(run_dir) == numbers(local_run)


def test_losing_the_head_ends_the_run_with_a_checkpoint(cluster: Cluster, local_run: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = start_run(cluster, run_dir)
    wait_for_iterations(run_dir, 3, proc)
    cluster.remove_node(cluster.head_node, allow_graceful=False)
    _, err = proc.communicate(timeout=120)  # Ray alone would end the process a minute later, uncheckpointed
    assert proc.returncode == 2, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("rl-alphamaml: error:") and "lost the Ray cluster" in last and "Traceback" not in err
    done = list_checkpoints(run_dir)[-1][0]
    assert done >= 3 and f"iter_{done:06d}.pt" in last
    # Nothing computed is lost: the run resumes (here on the local backend) and ends where the local run ends.
    assert main(["train", "--resume", str(run_dir), "--set", "sampler.backend=local", "--set",
                 "sampler.address=null", "--set", "sampler.workers=0"]) == 0
    assert numbers(run_dir) == numbers(local_run)
