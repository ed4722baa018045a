"""The rate-grid study's bookkeeping (``benchmarks/rate_grid.py``): which runs remain, what a cell shows, and
that a results file made with other settings is never overwritten."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import rate_grid as grid
import results_io

if TYPE_CHECKING:
    from conftest import SmallDisk  # tests/conftest.py


def settings(seeds: list[int], iterations: int = 3) -> dict[str, Any]:
    return {"config": "navigation2d_alpha", "iterations": iterations, "alphas": [0.1, 1.0], "betas": [1e-3],
            "seeds": seeds}


def record(method: str, alpha: float, seed: int, value: float | None, diverged: bool = False) -> dict[str, Any]:
    return {"method": method, "alpha0": alpha, "beta0": 1e-3, "seed": seed, "value": value, "ci95": 2.0,
            "final_alpha": alpha, "final_beta": 1e-3, "diverged": diverged}


def test_more_seeds_train_only_the_new_runs(tmp_path: Path) -> None:
    path = tmp_path / "grid.json"
    store = grid.GridStore(path, settings([0]), fresh=False)
    assert len(store.todo()) == 4  # 2 α × 1 β × 2 methods
    for method, alpha, _, seed in store.todo():
        store.add(record(method, alpha, seed, -20.0))
    again = grid.GridStore(path, settings([0, 1]), fresh=False)
    assert sorted(again.todo()) == sorted((m, a, 1e-3, 1) for m in grid.METHODS for a in (0.1, 1.0))
    assert [r["seed"] for r in again.cell("maml", 0.1, 1e-3)] == [0]


def test_a_file_with_other_settings_is_refused_not_overwritten(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "grid.json"
    store = grid.GridStore(path, settings([0]), fresh=False)
    store.add(record("maml", 0.1, 0, -20.0))
    before = path.read_text()
    with pytest.raises(SystemExit) as exit_info:
        grid.GridStore(path, settings([0], iterations=4), fresh=False)
    assert exit_info.value.code == 2
    assert "other settings (iterations)" in capsys.readouterr().err
    assert path.read_text() == before
    assert grid.GridStore(path, settings([0], iterations=4), fresh=True).runs == {}
    assert json.loads(path.read_text())["runs"]  # --fresh replaces the file only when a run finishes


def test_a_full_disk_keeps_the_runs_saved_before(small_disk: SmallDisk, capsys: pytest.CaptureFixture[str]) -> None:
    path = small_disk.path / "grid.json"
    store = grid.GridStore(path, settings([0]), fresh=False)
    store.add(record("maml", 0.1, 0, -20.0))
    saved = path.read_text()
    small_disk.leave(0)
    with pytest.raises(SystemExit) as stop:  # as a study's main ends: results_io.run
        results_io.run(lambda: store.add(record("alpha_maml", 0.1, 0, -10.0)))
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.endswith(
        f": error: cannot write {path}: No space left on device; {path} still holds the runs saved before, which the "
        "same command keeps: free space and run the same command again\n"), err
    assert path.read_text() == saved and [p.name for p in small_disk.path.glob(".*")] == []
    small_disk.make_room()
    store.save()
    assert len(grid.GridStore(path, settings([0]), fresh=False).runs) == 2


def test_cell_text_one_seed_several_seeds_and_divergence() -> None:
    metric = grid.Metric("accuracy", scale=100.0)
    assert metric.cell([]) == "—"
    assert metric.cell([record("maml", 0.1, 0, 0.8)]) == "80.0 ± 200.0"
    runs = [record("maml", 0.1, s, v) for s, v in ((0, 0.8), (1, 0.7), (2, 0.9))]
    assert metric.cell(runs) == "80.0 (70.0 … 90.0)"
    runs[2] = record("maml", 0.1, 2, None, diverged=True)
    assert metric.cell(runs) == "75.0 (70.0 … 80.0) (1/3 diverged)"
    assert grid.cell_score(runs, floor=0.25) == pytest.approx((0.8 + 0.7 + 0.25) / 3)
    assert metric.cell([record("maml", 0.1, 0, None, diverged=True)]) == "diverged"


def test_the_command_beside_the_tables_gives_back_the_same_settings() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--episodes", type=int, default=20)
    grid.add_arguments(parser, alphas=[0.01, 10.0], betas=[1e-4, 0.1], iterations=300, meta_batch=20, eval_tasks=40,
                       eval_steps=1, processes=2)
    args = parser.parse_args(["--alphas", "0.01", "1", "--seeds", "0", "1", "--iterations", "60", "--eval-tasks", "20",
                              "--eval-steps", "2", "--episodes", "10", "--processes", "1"])
    line = grid.command("rl_rate_grid.py", args, f"--episodes {args.episodes}")
    assert line.startswith("python benchmarks/rl_rate_grid.py ")
    again = parser.parse_args(shlex.split(line)[2:])
    assert {**vars(again), "processes": 1} == vars(args)  # the number of processes is not a setting


def test_same_seed_pairs_compare_run_for_run() -> None:
    store = grid.GridStore(Path("/nonexistent/grid.json"), {**settings([0, 1]), "betas": [1e-3, 1e-2]}, fresh=False)
    for method, alpha, beta, seed, value in (
            ("maml", 0.1, 1e-3, 0, -20.0), ("alpha_maml", 0.1, 1e-3, 0, -12.0),
            ("maml", 0.1, 1e-3, 1, -10.0), ("alpha_maml", 0.1, 1e-3, 1, -14.0),
            ("maml", 1.0, 1e-3, 0, None), ("alpha_maml", 1.0, 1e-3, 0, -11.0),
            ("alpha_maml", 1.0, 1e-3, 1, -30.0),  # its MAML run has not finished: no pair
            ("maml", 0.1, 1e-2, 0, -11.0), ("alpha_maml", 0.1, 1e-2, 0, -13.0),
            ("maml", 1.0, 1e-2, 1, -12.0)):  # its Alpha-MAML run has not finished: no pair
        store.runs[grid.key(method, alpha, beta, seed)] = {**record(method, alpha, seed, value, diverged=value is None),
                                                           "beta0": beta}
    assert sorted(grid.pairs(store, 1e-3, floor=-100.0)) == [(-100.0, -11.0), (-20.0, -12.0), (-10.0, -14.0)]
    assert grid.pairs(store, 1e-2, floor=-100.0) == [(-11.0, -13.0)]
    assert len(grid.pairs(store, None, floor=-100.0)) == 4
    table = grid.pairs_table(store, grid.Metric("return"), floor=-100.0, good=lambda v: v >= -12.0,
                             good_text="near best")
    # β₀ 1e-3: Alpha ahead in 2 of 3, mean difference (8 − 4 + 89) / 3 = +31.0, MAML 1 run near best, Alpha 2;
    # β₀ 1e-2: behind by 2.0; over the grid (8 − 4 + 89 − 2) / 4 = +22.75
    assert table[-3:] == ["| 0.001 | 3 | 2 | +31.0 | 1 | 2 |", "| 0.01 | 1 | 0 | −2.0 | 1 | 0 |",
                          "| all | 4 | 2 | +22.8 | 2 | 2 |"]
    assert grid.pairs_table(grid.GridStore(Path("/nonexistent/grid.json"), settings([0]), fresh=False),
                            grid.Metric("return"), floor=-100.0, good=bool, good_text="good") == []


def test_a_study_may_train_only_some_methods(tmp_path: Path) -> None:
    store = grid.GridStore(tmp_path / "grid.json", {**settings([0, 1]), "methods": ["alpha_maml"]}, fresh=False)
    assert sorted(store.todo()) == sorted(("alpha_maml", a, 1e-3, s) for a in (0.1, 1.0) for s in (0, 1))


def test_the_beta_repair_study_refuses_a_reference_made_otherwise(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import beta_repair

    ours = {**settings([0]), "resolved_config": {"seed": 0, "beta_repair": {"enabled": True}}}
    path = tmp_path / "reference.json"
    reference = {**ours, "resolved_config": {"seed": 0}}  # made before the repair existed
    path.write_text(json.dumps({"settings": reference, "runs": [record("maml", 0.1, 0, -20.0)]}))
    assert list(beta_repair.reference_store(path, ours).runs) == [grid.key("maml", 0.1, 1e-3, 0)]
    added = {**ours, "resolved_config": {**ours["resolved_config"], "inner": {"lr_per_step": False}}}
    assert beta_repair.reference_store(path, added).runs  # a config field added since the reference is no difference
    for other, why in (({**reference, "iterations": 4}, "other settings (iterations)"),
                       ({**reference, "resolved_config": {"seed": 1}}, "other settings (resolved_config)"),
                       ({**reference, "resolved_config": {"seed": 0, "beta_repair": {"enabled": True}}},
                        "the β repair on")):
        path.write_text(json.dumps({"settings": other, "runs": []}))
        with pytest.raises(SystemExit) as exit_info:
            beta_repair.reference_store(path, ours)
        assert exit_info.value.code == 2 and why in capsys.readouterr().err


def test_another_rule_is_set_beside_the_default_rule_cell_for_cell(tmp_path: Path) -> None:
    path = tmp_path / "rate_grid_x.json"
    default = grid.GridStore(path, {**settings([0, 1]), "hd_rule": "normalized"}, fresh=False)
    for seed, value in ((0, -20.0), (1, -12.0)):
        default.add(record("alpha_maml", 0.1, seed, value))
    ours = {**settings([0, 1]), "hd_rule": "log_adam"}
    store = grid.GridStore(tmp_path / "rate_grid_x_log_adam.json", ours, fresh=False)
    for seed, value in ((0, -15.0), (1, -13.0)):
        store.add({**record("alpha_maml", 0.1, seed, value), "final_alpha": 0.5})
    assert grid.stem("rate_grid_x", "log_adam") == "rate_grid_x_log_adam" and grid.stem("a", "normalized") == "a"
    assert grid.default_rule_store(path, {**ours, "iterations": 4}) is None  # made with other settings
    reference = grid.default_rule_store(path, ours)
    assert reference is not None
    lines = grid.rule_comparison(store, reference, grid.Metric("return"), floor=-100.0)
    assert "| 0.1 | 0.001 | -16.0 (-20.0 … -12.0) | -14.0 (-15.0 … -13.0) | 0.1 → 0.5 | 0.001 → 0.001 |" in lines
    assert lines[-1] == "`log_adam` ahead in 1 of 2 same-seed pairs."


def test_a_config_field_added_since_is_no_difference(tmp_path: Path) -> None:
    path = tmp_path / "grid.json"
    before = {**settings([0]), "resolved_config": {"inner": {"lr": 0.1}}}
    grid.GridStore(path, before, fresh=False).add(record("maml", 0.1, 0, -20.0))
    later = {**settings([0]), "resolved_config": {"inner": {"lr": 0.1, "lr_per_step": False}, "beta_repair": {}}}
    assert len(grid.GridStore(path, later, fresh=False).runs) == 1
    changed = {**settings([0]), "resolved_config": {"inner": {"lr": 0.2, "lr_per_step": False}}}
    with pytest.raises(SystemExit):
        grid.GridStore(path, changed, fresh=False)


def test_trpo_runs_set_alpha_alone_and_the_max_kl_in_beta_s_place() -> None:
    from rl_alphamaml.cli import load_experiment_config

    for method, mode in (("maml", "fixed"), ("alpha_maml", "hd")):
        config, _ = load_experiment_config(grid.ROOT / "configs" / "halfcheetah_dir.yaml",
                                           grid.rate_overrides(method, 0.01, 0.02, outer="trpo"))
        assert (config.outer.optimizer, config.trpo.max_kl, config.inner.lr, config.inner.lr_mode) == (
            "trpo", 0.02, 0.01, mode)
        assert config.outer.lr_mode == "fixed"  # TRPO has no β to adapt (the config refuses outer.lr_mode=hd)


def test_the_trpo_grid_s_goal_line_is_the_best_fixed_cell_s_lowest_seed(tmp_path: Path) -> None:
    import trpo_rate_grid as trpo

    store = grid.GridStore(tmp_path / "grid.json", {**settings([0, 1]), "alphas": [0.01, 0.1, 1.0], "betas": [0.02]},
                           fresh=False)
    assert trpo.goal_line(store, floor=-100.0) is None
    for method, alpha, seed, value in (
            ("maml", 0.01, 0, -30.0), ("maml", 0.01, 1, -20.0),  # mean −25
            ("maml", 0.1, 0, -14.0), ("maml", 0.1, 1, -10.0),  # mean −12: the best fixed cell, lowest seed −14
            ("maml", 1.0, 0, None), ("maml", 1.0, 1, -5.0),  # the best seed, but a diverged one: mean −52.5
            ("alpha_maml", 0.01, 0, -15.0), ("alpha_maml", 0.01, 1, -13.0),  # mean −14: on the line
            ("alpha_maml", 0.1, 0, -13.0), ("alpha_maml", 0.1, 1, -16.0),  # mean −14.5: below it
            ("alpha_maml", 1.0, 0, -11.0)):  # one seed of two so far
        store.runs[grid.key(method, alpha, 0.02, seed)] = {**record(method, alpha, seed, value, value is None),
                                                           "beta0": 0.02, "final_alpha": 0.5 * alpha}
    assert trpo.goal_line(store, floor=-100.0) == ((0.1, 0.02), -14.0)
    rows = trpo.rows_table(store, grid.Metric("return"), floor=-100.0)
    assert rows[2:5] == ["| 0.01 | 0.02 | -25.0 (-30.0 … -20.0) | -14.0 (-15.0 … -13.0) | 0.005, 0.005 | yes |",
                         "| 0.1 | 0.02 | **-12.0 (-14.0 … -10.0)** | -14.5 (-16.0 … -13.0) | 0.05, 0.05 | no |",
                         "| 1 | 0.02 | -5.0 (1/2 diverged) | -11.0 ± 2.0 | 0.5 | yes |"]
    assert rows[-1].endswith("reaches down to -14.0; α by hypergradient meets it from 2 of the 3 finished rows.")
    table = grid.pairs_table(store, grid.Metric("return"), floor=-100.0, good=lambda v: v >= -14.0,
                             good_text="on the line", names=trpo.NAMES, by="α₀")
    assert table[2].startswith("| α₀ | pairs | α by hypergradient ahead | mean difference | fixed α runs on the line")
    # α₀ 0.01: ahead in both (+15, +7); 0.1: ahead in one (+1, −6); 1: +89 over the diverged run (counted as −100)
    assert table[-4:] == ["| 0.01 | 2 | 2 | +11.0 | 0 | 1 |", "| 0.1 | 2 | 1 | −2.5 | 2 | 1 |",
                          "| 1 | 1 | 1 | +89.0 | 0 | 1 |", "| all | 5 | 4 | +21.2 | 2 | 3 |"]
    one = grid.GridStore(tmp_path / "one.json", {**settings([0]), "betas": [0.02]}, fresh=False)
    one.runs[grid.key("maml", 0.1, 0.02, 0)] = {**record("maml", 0.1, 0, -12.0), "beta0": 0.02}
    assert trpo.goal_line(one, floor=-100.0) == ((0.1, 0.02), -14.0)  # one seed: its return less the CI (2.0)


def test_the_trpo_grid_s_command_names_the_max_kl() -> None:
    parser = argparse.ArgumentParser()
    grid.add_arguments(parser, alphas=[0.1], betas=[0.02], iterations=50, meta_batch=20, eval_tasks=40, eval_steps=1,
                       processes=2, beta_flag="--max-kl")
    args = parser.parse_args(["--max-kl", "0.01", "0.02", "--seeds", "0"])
    line = grid.command("trpo_rate_grid.py", args, beta_flag="--max-kl")
    assert "--max-kl 0.01 0.02" in line and "--betas" not in line
    assert vars(parser.parse_args(shlex.split(line)[2:])) == vars(args)


def test_alpha_and_beta_may_follow_different_rules(capsys: pytest.CaptureFixture[str]) -> None:
    """``--hd-rule A:B``: α by rule A, β by rule B, in the runs' configs, the results files' name and the command; an
    unknown rule is one error line."""
    from rl_alphamaml.cli import load_experiment_config

    config, _ = load_experiment_config(grid.ROOT / "configs" / "navigation2d_alpha.yaml",
                                       grid.rate_overrides("alpha_maml", 0.1, 1e-3, "log_adam_annealed:normalized"))
    assert (config.inner.hd_rule, config.outer.hd_rule) == ("log_adam_annealed", "normalized")
    config, _ = load_experiment_config(grid.ROOT / "configs" / "navigation2d_alpha.yaml",
                                       grid.rate_overrides("alpha_maml", 0.1, 1e-3, "log_adam"))
    assert (config.inner.hd_rule, config.outer.hd_rule) == ("log_adam", "log_adam")
    assert grid.stem("rate_grid_x", "log_adam_annealed:normalized") == "rate_grid_x_log_adam_annealed_beta_normalized"
    parser = argparse.ArgumentParser()
    grid.add_arguments(parser, alphas=[0.1], betas=[1e-3], iterations=3, meta_batch=2, eval_tasks=2, eval_steps=1,
                       processes=1)
    args = parser.parse_args(["--hd-rule", "log_adam_annealed:normalized"])
    assert "--hd-rule log_adam_annealed:normalized" in grid.command("rl_rate_grid.py", args)
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--hd-rule", "log_adam:fast"])
    assert exit_info.value.code == 2 and "ALPHA_RULE:BETA_RULE" in capsys.readouterr().err
