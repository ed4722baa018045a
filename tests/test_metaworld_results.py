"""The Meta-World results script's bookkeeping (``benchmarks/metaworld_results.py``): when a run has plateaued, that
its budget accumulates across sittings from the kept records only, how far each chunk trains, and what its tables
say. The last two tests need metaworld (skipped without it): the runs' configs, and a tiny study end to end (and
again on a "fresh clone": its results file without its run folders)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rl_alphamaml.checkpoint import checkpoint_path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import metaworld_results as mw

RULE = mw.Rule(hours=1.0, window=3, patience=4, min_delta=0.02)


def rows(success: list[float], seconds: float = 100.0) -> list[dict[str, Any]]:
    return [{"iteration": i + 1, mw.SUCCESS: s, "success/pre_adapt": 0.0, "time/iteration": seconds,
             "time/env_steps": 200_000.0} for i, s in enumerate(success)]


def test_a_rising_success_rate_has_not_plateaued() -> None:
    assert mw.plateau([i / 20 for i in range(20)], RULE) is None
    assert mw.plateau([0.5] * (RULE.window + RULE.patience - 1), RULE) is None  # too short to tell


def test_the_plateau_fires_patience_iterations_after_the_last_new_best() -> None:
    values = [0.1, 0.2, 0.3, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    # moving averages end at iterations 3…10: 0.2, 0.33, 0.43, 0.5, 0.5 …; the last new best is at iteration 6
    assert mw.plateau(values, RULE) == 6 + RULE.patience
    assert mw.plateau(values[:9], RULE) is None


def test_gains_below_min_delta_do_not_reset_the_patience() -> None:
    creeping = [0.5 + 0.001 * i for i in range(12)]  # 0.1 point per iteration: below the 2-point threshold
    assert mw.plateau(creeping, RULE) == RULE.window + RULE.patience
    jump = creeping[:6] + [0.9] * 4  # a real gain before the patience ran out: it starts again
    assert mw.plateau(jump, RULE) is None


def test_status_stops_a_run_at_its_plateau_its_budget_or_its_cap() -> None:
    assert mw.status(rows([0.1, 0.2, 0.3]), RULE) == "training"
    assert mw.status(rows([0.5] * 12), RULE) == "plateau"
    assert mw.status(rows([0.1, 0.2, 0.3], seconds=1200.0), RULE) == "budget"  # 3 × 20 min = the hour
    assert mw.status(rows([0.1, 0.2, 0.3]), mw.Rule(iterations=3)) == "iterations"


def test_the_budget_counts_only_the_iterations_kept_at_the_newest_checkpoint(tmp_path: Path) -> None:
    """A kill after iteration 7 with the newest checkpoint at 5: the resume will redo 6 and 7, so only 5 count."""
    run = tmp_path / "run"
    checkpoint_path(run, 5).parent.mkdir(parents=True)
    checkpoint_path(run, 5).write_bytes(b"")
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows([0.1] * 7, seconds=600.0)))
    kept = mw.kept_rows(run)
    assert [r["iteration"] for r in kept] == [1, 2, 3, 4, 5]
    assert mw.training_seconds(kept) == 3000.0
    assert mw.status(kept, RULE) == "training"  # 50 of 60 minutes; the lost two would have made it 70


def test_each_chunk_stops_near_the_budget_and_at_the_cap() -> None:
    assert mw.next_target([], RULE) == mw.CHUNK
    assert mw.next_target(rows([0.1] * 2, seconds=60.0), RULE) == 2 + mw.CHUNK
    assert mw.next_target(rows([0.1] * 4, seconds=800.0), RULE) == 5  # 400 s left at 800 s per iteration: one more
    assert mw.next_target(rows([0.1] * 2), mw.Rule(iterations=3)) == 3


def test_push_is_the_reach_config_with_another_class() -> None:
    config, sets = mw.run_spec("push_maml", ["train.meta_batch=2"])
    assert config == "metaworld_ml1_reach" and sets[0] == "env.env_name=push-v3" and sets[-1] == "train.meta_batch=2"
    assert mw.run_spec("pick_place_alpha", [])[0] == "metaworld_ml1_reach_alpha"
    assert mw.run_spec("pick_place_alpha", [])[1][0] == "env.env_name=pick-place-v3"


def run_summary(evaluated: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"method": "MAML-TRPO", "env_name": "reach-v3", "command": "rl-alphamaml train …",
                           "status": "plateau" if evaluated else "training", "iterations": 40,
                           "train_seconds": 5400.0, "env_steps": 8_000_000, "train_success": 0.874}
    if evaluated:
        out["evaluation"] = {"success": [{"steps": 0, "mean": 0.42, "ci95": 0.137},
                                         {"steps": 1, "mean": 0.9, "ci95": 0.08}],
                             "return": [{"steps": 0, "mean": 1200.0, "ci95": 90.0},
                                        {"steps": 1, "mean": 3456.4, "ci95": 120.6}]}
    return out


def test_the_table_gives_each_runs_budget_and_held_out_success() -> None:
    lines = mw.table({"reach_maml": run_summary(True), "reach_alpha": run_summary(False)})
    assert lines[0].count("|") == lines[1].count("|") == 10
    assert lines[2] == ("| MAML-TRPO, reach-v3 | plateau | 40 | 8.0 M | 1.50 h | 87 % | 42 ± 14 % | 90 ± 8 % | "
                        "3456 ± 121 |")
    assert lines[3].startswith("| MAML-TRPO, reach-v3 | in progress | 40 |") and lines[3].count("not evaluated") == 3


def test_the_markdown_quotes_the_published_numbers_with_their_sources() -> None:
    result = {"machine": "a test machine", "rule": vars(RULE), "eval_tasks": 50,
              "runs": {"reach_maml": run_summary(True)}, "ml10": mw.ml10_line(Path("/nonexistent.json"))}
    text = mw.markdown(result)
    assert "| ML10 | MAML | 44.4 % | 31.6 % |" in text and "arXiv 1910.10897v2, Table 1" in text
    assert "| ML10 | MAML | 25 % | 36 % |" in text and "paperswithcode" in text
    assert "ML1: the paper shows it only as curves" in text and "Meta-World+" in text
    assert "sampler.backend=ray --set sampler.address=auto" in text
    assert all(row["source"] and row["budget"] for row in mw.PUBLISHED)


def test_the_ml10_line_reads_the_cost_per_iteration(tmp_path: Path) -> None:
    cost = {"planned_iterations": 300, "iterations": [{"time/iteration": 200.0, "time/env_steps": 200000.0},
                                                      {"time/iteration": 240.0, "time/env_steps": 200000.0}]}
    (tmp_path / "cost.json").write_text(json.dumps(cost))
    line = mw.ml10_line(tmp_path / "cost.json")
    assert "220 s sampling in the learner's process (one core) per iteration" in line
    assert "300 iterations would take 18 h" in line and "200,000" in line
    # metaworld_cost.py times both backends: the line names each and plans with the faster
    ray = {"iterations": [{"time/iteration": 120.0, "time/env_steps": 200000.0}]}
    cost = {"planned_iterations": 300, "backends": {"local": {"iterations": cost["iterations"]}, "ray": ray}}
    (tmp_path / "cost.json").write_text(json.dumps(cost))
    line = mw.ml10_line(tmp_path / "cost.json")
    assert "220 s sampling in the learner's process (one core), 120 s on a local Ray instance" in line
    assert "300 iterations would take 10 h" in line and "(mean of 1," in line


@pytest.mark.metaworld
def test_every_run_is_a_valid_config_of_the_class_it_names() -> None:
    from rl_alphamaml.cli import load_experiment_config

    for name in mw.RUNS:
        config, sets = mw.run_spec(name, [])
        loaded = load_experiment_config(mw.ROOT / "configs" / f"{config}.yaml", sets)[0]
        assert loaded.env.env_name == mw.CLASSES[name.rsplit("_", 1)[0]]


@pytest.mark.metaworld
def test_a_tiny_study_writes_its_three_files_and_a_rerun_trains_nothing(tmp_path: Path) -> None:
    tiny = ["--runs", "reach_alpha", "--iterations", "1", "--eval-tasks", "2", "--out", str(tmp_path)]
    for setting in ("train.meta_batch=2", "sampler.episodes=2", "env.horizon=20", "policy.hidden=[8]",
                    "train.threads=1", "sampler.max_slots=4"):
        tiny += ["--set", setting]
    script = [sys.executable, str(mw.ROOT / "benchmarks" / "metaworld_results.py"), *tiny]
    done = subprocess.run(script, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads((tmp_path / "metaworld.json").read_text())
    run = result["runs"]["reach_alpha"]
    assert run["status"] == "iterations" and run["env_steps"] == 2 * 2 * 20 * 2  # tasks × episodes × steps × phases
    assert [row["steps"] for row in run["evaluation"]["success"]] == [0, 1]
    assert "| Alpha MAML, reach-v3 | iterations | 1 |" in (tmp_path / "metaworld.md").read_text()
    assert (tmp_path / "metaworld.png").read_bytes()[:4] == b"\x89PNG"
    again = subprocess.run(script, capture_output=True, text=True, timeout=600, check=False)
    assert again.returncode == 0 and "rl-alphamaml train" not in again.stdout and "evaluate" not in again.stdout
    # a fresh clone has the results file but not the run folders: the finished run is kept, not trained again
    shutil.rmtree(tmp_path / "metaworld_runs")
    fresh = subprocess.run(script, capture_output=True, text=True, timeout=600, check=False)
    assert fresh.returncode == 0 and "rl-alphamaml train" not in fresh.stdout, fresh.stdout + fresh.stderr
    assert "reach_alpha: kept as metaworld.json records it" in fresh.stdout
    assert json.loads((tmp_path / "metaworld.json").read_text())["runs"]["reach_alpha"] == run
    # a recorded unfinished run without its folder stays in the results, as recorded, while no sitting trains it
    result["runs"]["reach_alpha"] = unfinished = {**run, "status": "training"}
    del unfinished["evaluation"]
    (tmp_path / "metaworld.json").write_text(json.dumps(result))
    rerun = subprocess.run([*script[:2], "--runs", "--out", str(tmp_path)], capture_output=True, text=True,
                           timeout=600, check=False)
    assert rerun.returncode == 0 and "rl-alphamaml train" not in rerun.stdout, rerun.stdout + rerun.stderr
    assert json.loads((tmp_path / "metaworld.json").read_text())["runs"]["reach_alpha"] == unfinished
