"""Meta-World through the command line: train, evaluate (both protocols), compare and --video on tiny budgets, the
success rate where a family reports it and nowhere else, and the one-line errors (no metaworld; a protocol that
does not apply)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rl_alphamaml.cli import main
from rl_alphamaml.logging import read_metrics

ROOT = Path(__file__).resolve().parents[2]
ML1 = ROOT / "configs" / "metaworld_ml1_reach.yaml"
TINY = ["--set", "train.iterations=2", "--set", "train.meta_batch=2", "--set", "sampler.episodes=2",
        "--set", "env.horizon=20", "--set", "policy.hidden=[8]", "--set", "train.checkpoint_every=1",
        "--set", "train.threads=1", "--set", "sampler.max_slots=2"]


@pytest.fixture(scope="module")
def ml1_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("metaworld") / "ml1"
    assert main(["train", str(ML1), "--run-dir", str(run_dir), *TINY]) == 0
    return run_dir


@pytest.mark.metaworld
def test_training_logs_the_success_rate_beside_the_return(ml1_run: Path) -> None:
    records = read_metrics(ml1_run)
    assert len(records) == 2
    for record in records:
        for phase in ("pre_adapt", "post_adapt"):
            assert 0.0 <= record[f"success/{phase}"] <= 1.0 and f"returns/{phase}" in record
    events = b"".join(p.read_bytes() for p in ml1_run.glob("events.out.tfevents.*"))
    assert b"success/post_adapt" in events and b"success/post_adapt_per_task" in events


@pytest.mark.metaworld
def test_evaluate_reports_the_success_rate_in_the_table_the_json_and_the_plot(
        ml1_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(ml1_run), "--tasks", "3", "--steps", "1", "--episodes", "2"]) == 0
    table = capsys.readouterr().out
    assert "mean return" in table and "mean success_rate" in table
    report = json.loads((ml1_run / "eval" / "adaptation.json").read_text())
    assert report["metric"] == "return" and report["protocol"] == "maml"
    success = report["metrics"]["success_rate"]
    assert len(success["per_task"]) == 2 and all(v in (0.0, 0.5, 1.0) for v in success["per_task"][1])
    assert [r["steps"] for r in success["adaptation"]] == [0, 1]
    # the held-out tasks are ML1's test goals
    from envs.metaworld import benchmark_tasks

    test_goals = set(benchmark_tasks("ML1", 0, "reach-v3").test["reach-v3"])
    assert {tuple(t["rand_vec"]) for t in report["tasks"]} <= test_goals
    events = b"".join(p.read_bytes() for p in (ml1_run / "eval").glob("events.out.tfevents.*"))
    assert b"eval/success_rate_mean" in events


@pytest.mark.metaworld
def test_evaluate_with_metaworlds_protocol(ml1_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(ml1_run), "--tasks", "2", "--protocol", "metaworld", "--episodes", "2"]) == 0
    out = capsys.readouterr().out
    assert "Meta-World's protocol" in out
    report = json.loads((ml1_run / "eval" / "adaptation.json").read_text())
    assert report["metric"] == "success_rate" and report["protocol"] == "metaworld"
    assert [r["steps"] for r in report["adaptation"]] == [0, 1]  # --steps defaults to metaworld's one step
    assert report["evaluation_episodes"] == 3 and report["adaptation_episodes"] == 2
    assert "return" in report["metrics"]
    # an episode that ends on success is shorter than the horizon; one that does not is the horizon
    lengths = report["scoring_episode_length"]
    for k, rates in enumerate(report["per_task"]):
        for rate, length in zip(rates, lengths[k]):
            assert (rate == 1.0 and length < 20) or (rate == 0.0 and length == 20)


@pytest.mark.metaworld
def test_compare_and_video_take_a_metaworld_run(ml1_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "compare"
    assert main(["compare", str(ml1_run), "--tasks", "2", "--steps", "1", "--ppo-budgets", "1", "--ppo-tasks", "1",
                 "--out", str(out)]) == 0
    report = json.loads((out / "compare.json").read_text())
    assert report["env"] == "rl_alphamaml/MetaWorldML1-v0" and len(report["methods"]) == 3
    for method in report["methods"]:  # the success rate beside the return, for every method, PPO included
        rates = method["success_rate"]["per_task"]
        assert len(rates) == len(method["per_task"]) and all(0.0 <= v <= 1.0 for row in rates for v in row)
    assert "Success rate on the same episodes" in (out / "compare.md").read_text()
    probe = subprocess.run([sys.executable, "-c", "import envs; e = envs.make('MetaWorldML1-v0', "
                            "render_mode='rgb_array', width=32, height=32); e.reset(); print(e.render().shape)"],
                           cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                           timeout=120)
    if probe.returncode != 0:
        pytest.skip(f"no offscreen OpenGL here (MUJOCO_GL={os.environ.get('MUJOCO_GL')}): {probe.stderr[-200:]}")
    assert main(["evaluate", str(ml1_run), "--tasks", "2", "--steps", "1", "--episodes", "2", "--video",
                 "--video-tasks", "1"]) == 0
    gif = ml1_run / "eval" / "videos" / "task0_before_after.gif"
    assert gif.stat().st_size > 1000


def test_a_family_without_success_reports_no_success(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "nav"
    assert main(["train", str(ROOT / "configs" / "navigation2d.yaml"), "--run-dir", str(run_dir),
                 "--set", "train.iterations=1", "--set", "train.meta_batch=2", "--set", "sampler.episodes=2",
                 "--set", "policy.hidden=[8]"]) == 0
    assert not any(k.startswith("success/") for k in read_metrics(run_dir)[0])
    capsys.readouterr()
    assert main(["evaluate", str(run_dir), "--tasks", "2", "--steps", "1"]) == 0
    assert "success_rate" not in capsys.readouterr().out
    report = json.loads((run_dir / "eval" / "adaptation.json").read_text())
    assert "metrics" not in report and report["metric"] == "return"
    # Meta-World's protocol is Meta-World's
    assert main(["evaluate", str(run_dir), "--protocol", "metaworld"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--protocol metaworld is Meta-World's evaluation" in err


def test_a_metaworld_config_without_metaworld_is_one_line_saying_what_to_install(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from envs.base import MissingDependencyError
    from envs.metaworld import import_metaworld

    try:
        import_metaworld()
    except MissingDependencyError:
        pass
    else:
        pytest.skip("metaworld is installed here")
    proc = subprocess.run([sys.executable, "-m", "rl_alphamaml", "train", str(ML1), "--run-dir", str(tmp_path / "r")],
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("rl-alphamaml: error: env.id rl_alphamaml/MetaWorldML1-v0: ")
    assert 'pip install -e ".[metaworld]"' in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "r").exists()  # a run that cannot start leaves nothing behind
