"""``rl-alphamaml compare``: the report's numbers are the measured ones, with correct intervals."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from rl_alphamaml.cli import load_experiment_config, main
from rl_alphamaml.stats import mean_ci95

if TYPE_CHECKING:
    from conftest import SmallDisk  # tests/conftest.py

ROOT = Path(__file__).resolve().parents[2]
# Episodes of fixed length (no goal tolerance), so that every budget below is exact.
TINY = ["--set", "train.iterations=2", "--set", "train.meta_batch=3", "--set", "sampler.episodes=2",
        "--set", "policy.hidden=[8]", "--set", "train.checkpoint_every=1", "--set", "env.goal_tolerance=null"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("compare")
    dirs = {"maml": base / "maml", "alpha": base / "alpha", "pretrain": base / "pretrain"}
    assert main(["train", str(ROOT / "configs" / "navigation2d.yaml"), "--run-dir", str(dirs["maml"]), *TINY]) == 0
    assert main(["train", str(ROOT / "configs" / "navigation2d_alpha.yaml"), "--run-dir", str(dirs["alpha"]),
                 *TINY]) == 0
    assert main(["train", str(ROOT / "configs" / "navigation2d_pretrain.yaml"), "--run-dir", str(dirs["pretrain"]),
                 *TINY]) == 0
    return dirs


def table_rows(markdown: str) -> dict[str, list[tuple[float, float]]]:
    """Method name -> [(mean, ci95), …] from the report's tables."""
    rows: dict[str, list[tuple[float, float]]] = {}
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        pairs = [re.fullmatch(r"([-+]?[\d.]+) ± ([\d.]+)", c) for c in cells]
        found = [(float(m.group(1)), float(m.group(2))) for m in pairs if m]
        if found:
            rows[cells[0]] = found
    return rows


def test_compare_report_numbers_equal_the_json_and_evaluate(runs: dict[str, Path], tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    code = main(["compare", str(runs["maml"]), str(runs["alpha"]), str(runs["pretrain"]), "--tasks", "4",
                 "--steps", "2", "--seed", "11", "--ppo-budgets", "1", "--ppo-tasks", "2", "--out", str(out)])
    assert code == 0
    report = json.loads((out / "compare.json").read_text())
    markdown = (out / "compare.md").read_text()
    assert (out / "compare.png").stat().st_size > 0
    names = [m["name"] for m in report["methods"]]
    assert names[0].startswith("MAML [") and names[1].startswith("Alpha MAML [")
    assert names[2].startswith("pretrained (no meta-learning) [") and names[3] == "random init"
    assert names[4] == "PPO from scratch, 1× budget"
    # Every table cell is the JSON's summary, and every summary is mean_ci95 of the per-task values.
    table = table_rows(markdown)
    for m in report["methods"]:
        assert len(m["per_task"]) == len(m["summary"])
        for row, values in zip(m["summary"], m["per_task"]):
            mean, half = mean_ci95(values)
            assert row["mean"] == pytest.approx(mean) and row["ci95"] == pytest.approx(half)
        cells = table[m["name"]]
        assert len(cells) == len(m["summary"]) + (m["family"] == "adaptation")
        for (mean, half), row in zip(cells, m["summary"]):
            assert mean == pytest.approx(row["mean"], abs=0.051) and half == pytest.approx(row["ci95"], abs=0.051)
        if m["family"] == "adaptation":  # the last cell: the paired change from step 0 to step K
            diffs = [v - v0 for v, v0 in zip(m["per_task"][-1], m["per_task"][0])]
            change, change_half = mean_ci95(diffs)
            assert cells[-1][0] == pytest.approx(change, abs=0.051)
            assert cells[-1][1] == pytest.approx(change_half, abs=0.051)
    adapt = [m for m in report["methods"] if m["family"] == "adaptation"]
    assert all(len(m["per_task"]) == 3 and all(len(v) == 4 for v in m["per_task"]) for m in adapt)
    per_step = report["episodes_per_step"] * report["horizon"]
    assert adapt[0]["summary"][-1]["env_steps"] == 2 * per_step
    ppo = report["methods"][4]
    assert ppo["summary"][0]["env_steps"] == 2 * per_step and ppo["summary"][0]["tasks"] == 2
    # Same tasks and seeds as `evaluate`: the MAML row equals what evaluate measures for that seed.
    assert main(["evaluate", str(runs["maml"]), "--tasks", "4", "--steps", "2", "--seed", "11"]) == 0
    evaluated = json.loads((runs["maml"] / "eval" / "adaptation.json").read_text())
    assert evaluated["per_task"] == report["methods"][0]["per_task"]
    assert evaluated["tasks"] == report["tasks"]
    assert "rl-alphamaml compare" in markdown and "rl-alphamaml train" in markdown
    # Navigation2D reports no success: no success rate anywhere
    assert not any("success_rate" in m for m in report["methods"]) and "Success rate" not in markdown
    # Each run's meta-training budget: 2 iterations × (1 + inner steps) phases × 3 tasks × 2 episodes × 100 steps.
    budgets = {run["label"].split(" [")[0]: run["meta_training_env_steps"] for run in report["runs"].values()}
    assert budgets == {"MAML": 2 * 2 * 3 * 2 * 100, "Alpha MAML": 2 * 2 * 3 * 2 * 100,
                       "pretrained (no meta-learning)": 2 * 1 * 3 * 2 * 100}


def test_compare_rejects_bad_input(runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(runs["pretrain"]), "--methods", "random"]) == 2
    assert "meta-trained run" in capsys.readouterr().err
    assert main(["compare", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert main(["compare", str(runs["maml"]), "--tasks", "1"]) == 2
    assert "at least 2" in capsys.readouterr().err
    assert main(["compare", str(runs["maml"]), "--ppo-budgets", "0"]) == 2
    assert "positive multiples" in capsys.readouterr().err
    assert main(["compare", str(runs["maml"]), "--tasks", "2", "--ppo-budgets", "0.0001"]) == 2
    assert "at least one environment step" in capsys.readouterr().err
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert main(["compare", str(runs["maml"]), "--out", str(blocker / "report")]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and "compare:" not in err  # refused before measuring anything


def test_a_full_disk_under_compare_is_one_line_after_the_tables(runs: dict[str, Path], small_disk: SmallDisk,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = small_disk.path / "report"
    small_disk.leave(1)  # compare.json fits in a page, the plot does not
    assert main(["compare", str(runs["maml"]), "--tasks", "2", "--steps", "1", "--methods", "runs", "--out",
                 str(out)]) == 2
    captured = capsys.readouterr()
    assert "| method |" in captured.out  # the tables, printed before anything is written
    line = captured.err.splitlines()[-1]
    assert line == (f"rl-alphamaml: error: cannot write {out / 'compare.png'}: No space left on device; the tables "
                    f"above hold the results ({out / 'compare.json'} was written): free space and run the command "
                    "again"), line
    assert sorted(p.name for p in out.iterdir()) == ["compare.json"]  # no torn plot, no temporary


def test_student_t_interval_matches_tables() -> None:
    # Known two-sided 95 % t quantiles: df 3 -> 3.182, df 40 -> 2.021, df 120 -> 1.980.
    values = [1.0, 2.0, 3.0, 4.0]
    mean, half = mean_ci95(values)
    assert mean == 2.5 and half == pytest.approx(3.182 * (1.6666666 ** 0.5) / 2, rel=1e-4)
    for n, t in [(41, 2.021), (121, 1.980)]:
        vals = [float(i % 2) for i in range(n)]
        _, h = mean_ci95(vals)
        sd = (sum((v - sum(vals) / n) ** 2 for v in vals) / (n - 1)) ** 0.5
        assert h / (sd / n ** 0.5) == pytest.approx(t, abs=1e-3)


def test_tensorboard_has_per_task_returns_and_hparams(runs: dict[str, Path]) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(runs["maml"]), size_guidance={"histograms": 0})
    events.Reload()
    histograms = events.Tags()["histograms"]
    assert {"returns/pre_adapt_per_task", "returns/post_adapt_per_task"} <= set(histograms)
    last = events.Histograms("returns/post_adapt_per_task")[-1]
    assert last.step == 2 and last.histogram_value.num == 3  # one value per task of the meta-batch
    records = [json.loads(line) for line in (runs["maml"] / "metrics.jsonl").read_text().splitlines()]
    assert last.histogram_value.sum / 3 == pytest.approx(records[-1]["returns/post_adapt"], rel=1e-5)
    assert set(events.PluginTagToContent("hparams")) >= {"_hparams_/experiment", "_hparams_/session_start_info"}


@pytest.mark.parametrize(("pretrain", "meta"), [("navigation2d_pretrain", "navigation2d"),
                                                ("halfcheetah_vel_pretrain", "halfcheetah_vel")])
def test_a_pretrained_config_spends_its_meta_runs_environment_steps(pretrain: str, meta: str) -> None:
    def steps_per_iteration(name: str) -> tuple[int, int]:
        config, _ = load_experiment_config(ROOT / "configs" / f"{name}.yaml")
        per_phase = config.train.meta_batch * config.sampler.episodes
        return per_phase * (config.inner.steps + 1), config.train.iterations

    assert steps_per_iteration(pretrain) == steps_per_iteration(meta)


def test_the_success_rate_gets_its_own_table_from_the_same_episodes() -> None:
    """A family that reports success: the success-rate table's cells are the JSON's success summaries (in %), with
    the paired change; the PPO table gains a success column; a method without success rates gets no row."""
    from agents.compare import MethodResult, render_markdown

    success = [[0.0, 0.5, 0.0, 1.0], [0.5, 1.0, 0.5, 1.0]]
    adapted = MethodResult("MAML [run]", "adaptation", [[1.0, 2.0, 3.0, 4.0], [2.0, 3.0, 5.0, 6.0]], [0, 100],
                           "run", 1.0, success)
    no_success = MethodResult("random init", "adaptation", [[0.0, 1.0, 0.0, 1.0]] * 2, [0, 100], "init", 1.0)
    ppo = MethodResult("PPO from scratch, 1× budget", "from_scratch", [[1.0, 3.0]], [100], "sb3", 1.0, [[0.0, 1.0]])
    report = {"env": "E", "num_tasks": 4, "steps": 1, "seed": 0, "episodes_per_step": 2, "horizon": 50,
              "runs": {"run": {"label": "MAML [run]", "checkpoint_iteration": 3, "meta_training_env_steps": 600}},
              "methods": [r.to_json() for r in (adapted, no_success, ppo)]}
    markdown = render_markdown(report, "rl-alphamaml compare run")
    head, tail = markdown.split("Success rate on the same episodes")
    assert table_rows(head)["MAML [run]"][0][0] == pytest.approx(2.5)  # the return table is unchanged
    rows = table_rows(tail)
    assert "random init" not in rows
    (m0, h0), (m1, h1), (change, change_half) = rows["MAML [run]"]
    for (mean, half), values in zip([(m0, h0), (m1, h1)], success):
        expected, expected_half = mean_ci95(values)
        assert mean == pytest.approx(100 * expected, abs=0.051)
        assert half == pytest.approx(100 * expected_half, abs=0.051)
    diff_mean, diff_half = mean_ci95([b - a for a, b in zip(*success)])
    assert change == pytest.approx(100 * diff_mean, abs=0.051)
    assert change_half == pytest.approx(100 * diff_half, abs=0.051)
    ppo_line = next(line for line in markdown.splitlines() if line.startswith("| PPO from scratch"))
    assert "| 2.0 ± " in ppo_line and "| 50.0 ± " in ppo_line
