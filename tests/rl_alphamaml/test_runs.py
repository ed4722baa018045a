"""End-to-end runs on sinusoid regression: learning, kill-and-resume, Ctrl-C, evaluate, divergence."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from rl_alphamaml.checkpoint import list_checkpoints, load_checkpoint
from rl_alphamaml.cli import load_experiment_config, main
from rl_alphamaml.logging import read_metrics
from rl_alphamaml.runner import prepare_run_dir, train
from rl_alphamaml.supervised import sinusoid

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "sinusoid_alpha.yaml"
FAST = ["eval.tasks=20", "eval.query=20"]


def cli(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "rl_alphamaml", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_lines(run_dir: Path, n: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while len(read_metrics(run_dir)) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run did not make progress"
        time.sleep(0.01)


def test_alpha_maml_learns_to_adapt(tmp_path: Path) -> None:
    config, kind = load_experiment_config(CONFIG, ["train.iterations=400", "train.checkpoint_every=400"])
    run_dir = prepare_run_dir(config, tmp_path / "run")
    assert train(config, kind.build, run_dir) == 0
    records = read_metrics(run_dir)
    assert len(records) == 400
    last = records[-1]
    # Held-out tasks: one inner step must more than halve the loss (measured: 2.64 -> 0.80).
    assert last["loss/post_adapt"] < 0.5 * last["loss/pre_adapt"]
    assert last["loss/post_adapt"] < 0.5 * records[0]["loss/post_adapt"]
    # Both rates moved under hypergradient descent.
    assert abs(last["meta/alpha"] - 0.01) > 1e-3 and abs(last["meta/beta"] - 1e-3) > 1e-4
    assert (run_dir / "config.yaml").is_file() and list(run_dir.glob("events.out.tfevents.*"))


def test_per_step_rates_train_apart_and_evaluate_step_by_step(tmp_path: Path) -> None:
    """Sinusoid with α₁, α₂ (``inner.lr_per_step``): each follows its own hypergradient, ``meta/alpha_1`` and
    ``meta/alpha_2`` are logged, and test-time step k adapts with α_{k+1} — α₂ for every step past the second."""
    config, kind = load_experiment_config(CONFIG, [*FAST, "train.iterations=20", "train.checkpoint_every=20",
                                                   "inner.steps=2", "inner.lr_per_step=true",
                                                   "inner.hd_rule=log_adam"])
    run_dir = prepare_run_dir(config, tmp_path / "run")
    assert train(config, kind.build, run_dir) == 0
    last = read_metrics(run_dir)[-1]
    assert last["meta/alpha_1"] != last["meta/alpha_2"]
    assert last["meta/alpha"] == pytest.approx((last["meta/alpha_1"] + last["meta/alpha_2"]) / 2)
    experiment = kind.build(config, run_dir)
    with torch.no_grad():  # α₂ = 0: the second step and every later one leave the parameters as they are
        for t in experiment.meta.alpha.step_tensors(1):
            t.zero_()
    losses = [float(np.mean(v)) for v in experiment.losses_after_steps(experiment.eval_batch, 4)]
    assert losses[1] < losses[0] and losses[1] == losses[2] == losses[3] == losses[4]


def test_a_killed_and_resumed_run_logs_the_same_numbers(tmp_path: Path) -> None:
    args = ["--set", "train.iterations=300", "--set", "train.checkpoint_every=40", *[
        x for s in FAST for x in ("--set", s)]]
    reference = tmp_path / "reference"
    proc = cli("train", str(CONFIG), "--run-dir", str(reference), *args)
    assert proc.wait(timeout=600) == 0, proc.communicate()

    killed = tmp_path / "killed"
    proc = cli("train", str(CONFIG), "--run-dir", str(killed), *args)
    wait_for_lines(killed, 100, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(read_metrics(killed)) < 300, "the run finished before it could be killed"
    assert list_checkpoints(killed)[-1][0] < 300
    proc = cli("train", "--resume", str(killed))
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert "resuming" in err
    assert read_metrics(killed) == read_metrics(reference)


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_or_sigterm_saves_a_checkpoint_and_the_run_resumes(tmp_path: Path, signum: int, status: int) -> None:
    run_dir = tmp_path / "run"
    proc = cli("train", str(CONFIG), "--run-dir", str(run_dir), "--set", "train.iterations=100000",
               *[x for s in FAST for x in ("--set", s)])
    wait_for_lines(run_dir, 20, proc)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == status, err
    assert "Traceback" not in err
    last_logged = read_metrics(run_dir)[-1]["iteration"]
    assert list_checkpoints(run_dir)[-1][0] == last_logged
    assert f"--resume {run_dir}" in err
    # A checkpoint (or metrics) write killed mid-way leaves a temporary file; resuming removes it.
    stale = [run_dir / "checkpoints" / f".iter_{last_logged + 1:06d}.pt.tmp-12345",
             run_dir / ".metrics.jsonl.tmp-12345"]
    for path in stale:
        path.write_bytes(b"half a file")
    assert main(["train", "--resume", str(run_dir), "--set", f"train.iterations={last_logged + 5}"]) == 0
    assert read_metrics(run_dir)[-1]["iteration"] == last_logged + 5
    assert not any(path.exists() for path in stale)


def test_a_second_ctrl_c_stops_at_once_without_a_traceback(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = cli("train", str(CONFIG), "--run-dir", str(run_dir), "--set", "train.iterations=100000",
               *[x for s in FAST for x in ("--set", s)])
    wait_for_lines(run_dir, 5, proc)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err


def test_evaluate_writes_the_adaptation_report(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    assert main(["train", str(CONFIG), "--run-dir", str(run_dir), "--set", "train.iterations=30",
                 "--set", "train.checkpoint_every=10", *[x for s in FAST for x in ("--set", s)]]) == 0
    assert main(["evaluate", str(run_dir), "--tasks", "25", "--steps", "3",
                 "--checkpoint", str(run_dir / "checkpoints" / "iter_000010.pt")]) == 0
    report = json.loads((run_dir / "eval" / "adaptation.json").read_text())
    assert report["checkpoint_iteration"] == 10 and report["num_tasks"] == 25
    assert [r["steps"] for r in report["adaptation"]] == [0, 1, 2, 3]
    assert len(report["tasks"]) == 25 and len(report["per_task"]) == 4
    mean0 = sum(report["per_task"][0]) / 25
    assert report["adaptation"][0]["mean"] == pytest.approx(mean0)
    assert (run_dir / "eval" / "adaptation.png").stat().st_size > 1000


def test_user_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", str(CONFIG), "--set", "inner.lr=abc"]) == 2
    assert "inner.lr: must be a number" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err
    run_dir = tmp_path / "run"
    assert main(["train", str(CONFIG), "--run-dir", str(run_dir), "--set", "train.iterations=2"]) == 0
    assert main(["train", str(CONFIG), "--run-dir", str(run_dir)]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main(["evaluate", str(run_dir), "--seed", "-1"]) == 2
    assert "--seed must be between 0 and" in capsys.readouterr().err
    (run_dir / "checkpoints" / "iter_000002.pt").write_bytes(b"junk")
    assert main(["evaluate", str(run_dir)]) == 2
    assert "not a readable checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "expected"), [
    (["frobnicate"], "argument command: invalid choice: 'frobnicate' (choose from"),
    (["compare"], "the following arguments are required: RUN_DIR (usage: rl-alphamaml compare --help)"),
    (["evaluate", "run", "--tasks", "many"], "argument --tasks: invalid int value: 'many'"),
])
def test_bad_arguments_are_one_line(capsys: pytest.CaptureFixture[str], argv: list[str], expected: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and err.startswith("rl-alphamaml: error:")
    assert expected in err, err


@pytest.mark.parametrize("case", ["kind_not_a_string", "not_utf8", "run_dir_is_a_file", "run_dir_under_a_file",
                                  "experiment_outside_runs"])
def test_more_user_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    config, args = tmp_path / "c.yaml", []
    config.write_text(CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
    if case == "kind_not_a_string":
        config.write_text("kind: [rl]\n")
        expected = "kind: must be one of"
    elif case == "experiment_outside_runs":
        config.write_text(CONFIG.read_text(encoding="utf-8") + "\nexperiment: ../../escaped\n", encoding="utf-8")
        expected = "must be a plain name"
    elif case == "not_utf8":
        config.write_bytes(b"kind: sinusoid\nexperiment: caf\xe9\n")
        expected = "not a UTF-8 text file"
    else:
        blocker = tmp_path / "file"
        blocker.write_text("")
        args = ["--run-dir", str(blocker if case == "run_dir_is_a_file" else blocker / "run")]
        expected = "is a file, not a folder"
    assert main(["train", str(config), *args]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1 and err.startswith("rl-alphamaml: error:")


def test_a_diverging_run_stops_with_its_last_good_state(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "run"
    # An absurd fixed inner rate makes the post-adaptation loss overflow to inf within a few iterations.
    code = main(["train", str(ROOT / "configs" / "sinusoid.yaml"), "--run-dir", str(run_dir),
                 "--set", "inner.lr=10", "--set", "inner.steps=5", "--set", "inner.lr_max=10",
                 "--set", "train.iterations=50", "--set", "train.max_nonfinite_steps=3"])
    assert code == 2
    err = capsys.readouterr().err
    assert "non-finite" in err and "last good state" in err
    records = read_metrics(run_dir)
    assert records and all(r["meta/skipped"] == 1.0 for r in records[-2:])
    iteration, path = list_checkpoints(run_dir)[-1]
    assert iteration == records[-1]["iteration"]
    # Every step was skipped, so the saved state is still the untouched initial network.
    saved = load_checkpoint(path)["state"]["model"]
    initial = sinusoid.make_model((40, 40), seed=0).state_dict()
    assert all(torch.equal(saved[k], initial[k]) for k in initial)


def test_sinusoid_tasks_follow_the_maml_distribution() -> None:
    batch = sinusoid.sample_batch(sinusoid.SinusoidTaskConfig(), 500, np.random.default_rng(0))
    assert batch.amplitude.min() >= 0.1 and batch.amplitude.max() <= 5.0
    assert batch.phase.min() >= 0.0 and batch.phase.max() <= np.pi
    assert batch.xs.shape == (500, 10, 1) and float(batch.xs.abs().max()) <= 5.0
    expected = batch.amplitude[:, None, None] * np.sin(batch.xs.numpy() - batch.phase[:, None, None])
    np.testing.assert_allclose(batch.ys.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_a_failed_start_leaves_the_run_folder_reusable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rl_alphamaml.errors import UserError

    def broken_build(config: object, run_dir: Path) -> None:
        raise UserError("data missing")

    monkeypatch.setattr(sinusoid, "KIND", dataclasses.replace(sinusoid.KIND, build=broken_build))
    run_dir = tmp_path / "run"
    assert main(["train", str(CONFIG), "--run-dir", str(run_dir), "--set", "train.iterations=2"]) == 2
    monkeypatch.undo()
    assert main(["train", str(CONFIG), "--run-dir", str(run_dir), "--set", "train.iterations=2"]) == 0


def test_a_failed_iteration_saves_the_previous_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from rl_alphamaml.errors import IterationFailedError

    original = sinusoid.SinusoidExperiment.train_iteration

    def failing(self: sinusoid.SinusoidExperiment, iteration: int, logger: object) -> dict[str, float]:
        if iteration == 3:  # e.g. the Ray sampler's workers kept dying before any update was made
            raise IterationFailedError("tasks (0, 10) could not be sampled")
        return original(self, iteration, logger)

    monkeypatch.setattr(sinusoid.SinusoidExperiment, "train_iteration", failing)
    run_dir = tmp_path / "run"
    assert main(["train", str(CONFIG), "--run-dir", str(run_dir), "--set", "train.iterations=5",
                 "--set", "train.checkpoint_every=100"]) == 2
    err = capsys.readouterr().err
    assert "iteration 3: tasks (0, 10) could not be sampled; the last good state is in" in err
    assert [it for it, _ in list_checkpoints(run_dir)] == [2]
    monkeypatch.undo()
    assert main(["train", "--resume", str(run_dir)]) == 0
    assert [r["iteration"] for r in read_metrics(run_dir)] == [1, 2, 3, 4, 5]
