"""One process at a time in a run folder (``RUN_DIR/.lock``, :mod:`rl_alphamaml.runlock`), with real processes: two
resumes started at once, a run killed with SIGKILL, a lock file of another host; evaluate reads a folder in use."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from rl_alphamaml.checkpoint import list_checkpoints
from rl_alphamaml.cli import main
from rl_alphamaml.logging import read_metrics
from rl_alphamaml.runlock import LOCK_FILE, STALE_AFTER, Holder, RunInUseError, RunLock, _proc_start

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "sinusoid_alpha.yaml"
SMALL = ["--set", "train.meta_batch=4", "--set", "eval.tasks=5", "--set", "eval.query=10"]
LONG = ["--set", "train.iterations=100000", "--set", "train.checkpoint_every=100000"]  # runs until it is stopped


def cli(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "rl_alphamaml", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def started_run(tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    assert main(["train", str(CONFIG), "--run-dir", str(run_dir), "--set", "train.iterations=2", *SMALL]) == 0
    return run_dir


def wait_for_iterations(run_dir: Path, n: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while len(read_metrics(run_dir)) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run did not make progress"
        time.sleep(0.05)


def test_two_resumes_of_one_folder_at_once_one_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = started_run(tmp_path)
    first = cli("train", "--resume", str(run_dir), *LONG)
    second = cli("train", "--resume", str(run_dir), *LONG, "--set", "inner.lr=0.5")
    procs = {first.pid: first, second.pid: second}
    deadline = time.monotonic() + 120
    while all(p.poll() is None for p in procs.values()):
        assert time.monotonic() < deadline, "neither process ended"
        time.sleep(0.05)
    refused = next(p for p in procs.values() if p.poll() is not None)
    running = next(p for p in procs.values() if p is not refused)
    try:
        _, err = refused.communicate()
        assert refused.returncode == 2, err
        holder = f"PID {running.pid} on host {socket.gethostname()} (since "
        assert err.count("\n") == 1 and err.startswith(f"rl-alphamaml: error: {run_dir} is in use by {holder}"), err
        # the folder says what the running one does: its --set values only
        wait_for_iterations(run_dir, 4, running)
        alpha = yaml.safe_load((run_dir / "config.yaml").read_text())["inner"]["lr"]
        assert alpha == (0.5 if running is second else 0.01)
        assert ("inner.lr" in (run_dir / "changes.log").read_text()) == (running is second)
        # evaluate reads the run in use and writes only under eval/; compare may not write beside it
        outside = sorted(p.name for p in run_dir.iterdir())
        assert main(["evaluate", str(run_dir), "--tasks", "2"]) == 0
        assert sorted(p.name for p in run_dir.iterdir()) == sorted({*outside, "eval"})
        capsys.readouterr()
        assert main(["compare", str(run_dir), "--out", str(run_dir / "report")]) == 2
        assert f"{run_dir} is in use by PID {running.pid}" in capsys.readouterr().err
        running.send_signal(signal.SIGTERM)  # a clean stop removes the lock
        _, err = running.communicate(timeout=120)
        assert running.returncode == 143, err
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
    assert not (run_dir / LOCK_FILE).exists()


def test_a_lock_left_by_a_killed_run_is_taken_over(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = started_run(tmp_path)
    killed = cli("train", "--resume", str(run_dir), *LONG)
    try:
        wait_for_iterations(run_dir, 4, killed)
    finally:
        killed.kill()  # SIGKILL: no chance to remove its lock file
        killed.wait()
    assert json.loads((run_dir / LOCK_FILE).read_text())["pid"] == killed.pid
    capsys.readouterr()
    assert main(["train", "--resume", str(run_dir), "--set", "train.iterations=3"]) == 0
    err = capsys.readouterr().err
    assert f"{run_dir}: took over the lock of PID {killed.pid} on host {socket.gethostname()} (since " in err
    assert "which is no longer running" in err
    assert [r["iteration"] for r in read_metrics(run_dir)] == [1, 2, 3] and list_checkpoints(run_dir)[-1][0] == 3
    assert not (run_dir / LOCK_FILE).exists()


def test_a_lock_of_another_host_holds_until_its_heartbeat_stops(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    # on a file system whose locks do not reach across machines, only the heartbeat says the other node still runs
    run_dir = started_run(tmp_path)
    lock = run_dir / LOCK_FILE
    lock.write_text(json.dumps({"pid": 4242, "host": "node-17", "started": time.time() - 3600}))
    capsys.readouterr()
    assert main(["train", "--resume", str(run_dir), "--set", "train.iterations=3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rl-alphamaml: error: {run_dir} is in use by PID 4242 on host node-17 (since "), err
    assert re.search(r"whose heartbeat is [0-9] s old", err) and err.count("\n") == 1
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["train"]["iterations"] == 2  # nothing changed
    beat = time.time() - STALE_AFTER - 5  # the node is gone: its heartbeat stopped
    os.utime(lock, (beat, beat))
    assert main(["train", "--resume", str(run_dir), "--set", "train.iterations=3"]) == 0
    err = capsys.readouterr().err
    assert "took over the lock of PID 4242 on host node-17 (since " in err
    assert re.search(r"no heartbeat for 6[5-9] s \(the process or its node is gone\)", err), err
    assert not lock.exists()


def test_a_refusal_names_a_holder_that_writes_its_name_just_after_taking_the_lock(tmp_path: Path) -> None:
    """The holder takes the flock, then writes who it is: a process refused in between waits for the name instead of
    saying "another process" (seen once under load in the two-resumes test above)."""
    path = tmp_path / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # taken, its name not written yet
        me = Holder(os.getpid(), socket.gethostname(), time.time(), _proc_start(os.getpid()))
        writer = threading.Timer(0.3, lambda: os.pwrite(fd, json.dumps(dataclasses.asdict(me)).encode(), 0))
        writer.start()
        with pytest.raises(RunInUseError, match=f"is in use by PID {os.getpid()} on host"):
            RunLock(tmp_path).acquire()
        writer.join()
    finally:
        os.close(fd)
