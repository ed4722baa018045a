"""``benchmarks/inner_steps.py`` end to end on a tiny budget: its six runs, its seven evaluations, the rate probe's six
and the episode probe's three, its table and verdict, a rerun that reuses the finished runs and their kept
evaluations, and ``--runs``, which measures some runs and keeps the others' rows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "inner_steps.py"), "--iterations", "1", "--eval-tasks", "2",
         "--eval-episodes", "2", "--set", "train.meta_batch=2", "--set", "sampler.episodes=2",
         "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "inner_steps"), *extra],
        capture_output=True, text=True, cwd=ROOT, check=True)


def test_the_inner_steps_study_runs_reports_and_reuses_its_runs(tmp_path: Path) -> None:
    run(tmp_path)
    result = json.loads((tmp_path / "inner_steps.json").read_text())
    rows = {(r["run"], r["evaluation"]): r for r in result["rows"]}
    assert set(rows) == {("one_step", "as trained"), ("one_step", "the paper's schedule (0.5, then 0.25)"),
                         ("three_fixed", "as trained"), ("three_hd", "as trained"), ("three_fixed_all", "as trained"),
                         ("three_hd_all", "as trained"), ("three_hd_all_per_layer", "as trained")}
    assert all(len(r["adaptation"]) == 4 for r in rows.values())  # after 0-3 steps
    for (name, _), r in rows.items():  # the action noise each run ends with (its last iteration's policy/std), which
        # is the noise its evaluation starts from, and the noise after each adaptation step
        last = json.loads((tmp_path / "runs" / f"navigation2d-{name}" / "metrics.jsonl").read_text().splitlines()[-1])
        assert r["policy_std"] == last["policy/std"] > 0
        assert len(r["action_std"]) == 4 and abs(r["action_std"][0] - r["policy_std"]) < 1e-6
    assert len(rows[("three_hd", "as trained")]["alpha_steps"]) == 3  # one α per trained step
    per_layer = rows[("three_hd_all_per_layer", "as trained")]
    assert "--set inner.lr_shape=per_layer" in per_layer["command"] and len(per_layer["log_std_alpha"]) == 3
    assert "(the mean over tensors; log σ's: " in (tmp_path / "inner_steps.md").read_text()
    assert "--set outer.meta_loss=all_steps" in rows[("three_hd_all", "as trained")]["command"]
    assert "meta_loss: all_steps" in (tmp_path / "runs" / "navigation2d-three_hd_all" / "config.yaml").read_text()
    assert "--inner-lr 0.5 0.25" in rows[("one_step", "the paper's schedule (0.5, then 0.25)")]["evaluate"]
    table = (tmp_path / "inner_steps.md").read_text()
    assert "Issue 24's goal" in table and "-3.33 after 2 steps" in table and "-3.23 after 3 steps" in table
    assert f"rl-alphamaml evaluate {tmp_path / 'runs' / 'navigation2d-three_hd'}" in table
    kept = {p.name for p in (tmp_path / "runs" / "navigation2d-one_step" / "eval").glob("*_iter1.json")}
    assert kept == {"as_trained_iter1.json", "paper_schedule_iter1.json", "paper_schedule_episodes100_iter1.json",
                    "paper_schedule_episodes400_iter1.json"}
    # the episode probe: the schedule run and the per-step run adapted on 100 and 400 episodes per step
    batch = {(b["run"], b["episodes"]): b for b in result["episode_probe"]}
    assert set(batch) == {("one_step", 100), ("one_step", 400), ("three_hd_all", 400)}
    assert "--episodes 400 --inner-lr 0.5 0.25" in batch[("one_step", 400)]["evaluate"]
    assert "--inner-lr" not in batch[("three_hd_all", 400)]["evaluate"]
    assert all(len(b["adaptation"]) == 4 for b in batch.values())
    assert "Episode probe" in table and "| as trained | 400 |" in table
    # the rate probe: each step of the per-step run with its learned α halved and × 1.5, the rest as learned
    learned = rows[("three_hd_all", "as trained")]["alpha_steps"]
    probe = {(p["step"], p["factor"]): p for p in result["rate_probe"]}
    assert set(probe) == {(step, factor) for step in (1, 2, 3) for factor in (0.5, 1.5)}
    assert probe[(2, 0.5)]["alphas"] == [float(f"{a:.4g}") for a in (learned[0], learned[1] / 2, learned[2])]
    assert all(len(p["adaptation"]) == 4 for p in probe.values())
    assert "Rate probe" in table and f"--inner-lr {probe[(3, 1.5)]['alphas'][0]:.4g}" in table
    kept = {p.name for p in (tmp_path / "runs" / "navigation2d-three_hd_all" / "eval").glob("probe_*_iter1.json")}
    assert kept == {f"probe_step{step}_x{factor}_iter1.json" for step in (1, 2, 3) for factor in (0.5, 1.5)}
    metrics = (tmp_path / "runs" / "navigation2d-three_hd" / "metrics.jsonl").read_text()
    again = run(tmp_path)
    assert "done (1 iterations)" in again.stdout
    assert (tmp_path / "runs" / "navigation2d-three_hd" / "metrics.jsonl").read_text() == metrics
    assert json.loads((tmp_path / "inner_steps.json").read_text()) == result
    # one run measured (here reused), every other row, probe included, kept from the JSON
    some = run(tmp_path, "--runs", "one_step")
    assert "navigation2d-three_hd" not in some.stdout.split("# Navigation2D")[0]
    assert json.loads((tmp_path / "inner_steps.json").read_text()) == result
    # rows made with other settings are not kept beside new ones: refused before anything trains
    with pytest.raises(subprocess.CalledProcessError) as refused:
        run(tmp_path, "--runs", "one_step", "--iterations", "2")
    assert refused.value.returncode == 2 and "which were made with" in refused.value.stderr
    assert json.loads((tmp_path / "inner_steps.json").read_text()) == result
